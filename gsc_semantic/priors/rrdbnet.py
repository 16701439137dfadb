"""RRDBNet, the ESRGAN / Real-ESRGAN x4 super-resolution generator (Wang et al. 2018/2021).

Parameter names follow the released PyTorch checkpoints (``conv_first``,
``body.N.rdbK.convM``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
``conv_last``), so their state dicts load with ``strict=True``; the pretrained weights this
project uses come from the ncnn files read by :func:`gsc_semantic.priors.load_realesrgan`.

Example::

    >>> import torch
    >>> from gsc_semantic.priors import RRDBNet
    >>> net = RRDBNet(num_block=1, num_feat=8, num_grow_ch=4).eval()
    >>> net(torch.rand(1, 3, 6, 5)).shape
    torch.Size([1, 3, 24, 20])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResidualDenseBlock", "RRDB", "RRDBNet"]


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convolutions, LeakyReLU(0.2) after the first four, and a
    residual connection scaled by 0.2.

    :param num_feat: channels in and out
    :param num_grow_ch: channels each of the first four convolutions adds

    :input: ``[B, num_feat, H, W]``
    :output: ``[B, num_feat, H, W]``, ``x + 0.2 * conv5(cat(x, x1, x2, x3, x4))``
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.conv1 = _conv(num_feat, num_grow_ch)
        self.conv2 = _conv(num_feat + num_grow_ch, num_grow_ch)
        self.conv3 = _conv(num_feat + 2 * num_grow_ch, num_grow_ch)
        self.conv4 = _conv(num_feat + 3 * num_grow_ch, num_grow_ch)
        self.conv5 = _conv(num_feat + 4 * num_grow_ch, num_feat)
        self.lrelu = nn.LeakyReLU(0.2)

    def convs(self) -> list[nn.Conv2d]:
        """conv1..conv5, in execution order."""
        return [self.conv1, self.conv2, self.conv3, self.conv4, self.conv5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs()[:4]:
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three :class:`ResidualDenseBlock` and a residual
    connection scaled by 0.2.

    :input: ``[B, num_feat, H, W]``
    :output: ``[B, num_feat, H, W]``
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """The x4 RRDBNet generator.

    ``conv_first`` -> ``num_block`` x :class:`RRDB` -> ``conv_body`` (+ the ``conv_first``
    features) -> two times (nearest x2 upsampling, ``conv_upK``, LeakyReLU(0.2)) ->
    ``conv_hr``, LeakyReLU(0.2) -> ``conv_last``. Real-ESRGAN x4plus is ``num_block=23,
    num_feat=64, num_grow_ch=32`` (16.7 M parameters); the x4plus-anime model has
    ``num_block=6``.

    :param num_in_ch: input channels (3: RGB)
    :param num_out_ch: output channels
    :param num_feat: feature channels
    :param num_block: number of RRDB blocks
    :param num_grow_ch: growth channels of the dense blocks

    :input: ``[B, num_in_ch, H, W]`` float; the Real-ESRGAN weights expect RGB in [0, 1]
    :output: ``[B, num_out_ch, 4H, 4W]``, same range (not clamped: clamp at the caller)

    Example::

        >>> net = RRDBNet(num_block=1, num_feat=8, num_grow_ch=4)
        >>> sum(p.numel() for p in net.parameters())
        5955
    """

    scale = 4

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                 num_block: int = 23, num_grow_ch: int = 32):
        super().__init__()
        self.num_in_ch, self.num_out_ch = num_in_ch, num_out_ch
        self.num_feat, self.num_block, self.num_grow_ch = num_feat, num_block, num_grow_ch
        self.conv_first = _conv(num_in_ch, num_feat)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = _conv(num_feat, num_feat)
        self.conv_up1 = _conv(num_feat, num_feat)
        self.conv_up2 = _conv(num_feat, num_feat)
        self.conv_hr = _conv(num_feat, num_feat)
        self.conv_last = _conv(num_feat, num_out_ch)
        self.lrelu = nn.LeakyReLU(0.2)

    def convs(self) -> list[nn.Conv2d]:
        """All convolutions in execution order (the order of an exported ncnn graph)."""
        out = [self.conv_first]
        for block in self.body:
            for rdb in (block.rdb1, block.rdb2, block.rdb3):
                out += rdb.convs()
        return out + [self.conv_body, self.conv_up1, self.conv_up2, self.conv_hr,
                      self.conv_last]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))
