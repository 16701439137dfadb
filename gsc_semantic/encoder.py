"""Semantic encoder: a frozen foundation backbone with a learned projection (layer ``z1``)
and a small trained convolutional encoder for the perceptual latent (layers ``z2 .. zL``).

All outputs are bounded to [-1, 1] by ``tanh`` so that they fit the uniform quantiser of
:mod:`gsc_semantic.quantizer`. Which layer takes which values is given by the
:class:`~gsc_semantic.quantizer.LayerSpec` list: the ``semantic`` layers share one
projection of the backbone features, the ``perceptual`` layers share one vector of the
perceptual encoder, each taking consecutive slices in layer order. The importance order of
the perceptual values is learned (nested layer dropout during training: layer ``l + 1`` is
only seen by the decoder when layer ``l`` is, so early layers carry the most information).

Example::

    >>> import torch
    >>> from gsc_semantic.quantizer import LayerSpec
    >>> specs = [LayerSpec("z1", 8, 2, "semantic"), LayerSpec("z2", 16, 2)]
    >>> enc = CodecEncoder((1, 28, 28), specs, backbone_pretrained=False)
    >>> [v.shape for v in enc(torch.rand(2, 1, 28, 28))]
    [torch.Size([2, 8]), torch.Size([2, 16])]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gsc_semantic.foundation import FeatureBackbone, load_backbone
from gsc_semantic.quantizer import LayerSpec

__all__ = ["SemanticProjection", "PerceptualEncoder", "CodecEncoder"]


def _gn(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class SemanticProjection(nn.Module):
    """Learned projection of frozen backbone features to ``dims`` values in [-1, 1]:
    ``tanh(Linear(LayerNorm(f)))``, or with ``hidden > 0`` a one-hidden-layer MLP
    ``tanh(Linear(SiLU(Linear(LayerNorm(f)))))`` (room to separate classes when the
    semantic layer is trained to be class-predictive, see :mod:`gsc_semantic.train`).

    Example::

        >>> SemanticProjection(1280, 8)(torch.rand(3, 1280)).shape
        torch.Size([3, 8])
        >>> SemanticProjection(1280, 4, hidden=64)(torch.rand(3, 1280)).shape
        torch.Size([3, 4])
    """

    def __init__(self, num_features: int, dims: int, hidden: int = 0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(num_features)
        self.hidden = nn.Sequential(nn.Linear(num_features, hidden), nn.SiLU()) if hidden \
            else None
        self.proj = nn.Linear(hidden or num_features, dims)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.norm(features)
        if self.hidden is not None:
            h = self.hidden(h)
        return torch.tanh(self.proj(h))


class PerceptualEncoder(nn.Module):
    """Small conv encoder: stride-2 conv stages down to a ``map_side`` x ``map_side`` map,
    a 1x1 conv to ``flat_channels``, flatten, linear to ``dims`` values, ``tanh``.

    :param in_channels: image channels.
    :param size: image side (square images).
    :param channels: channels of the stages; each stage halves the side.
    :param flat_channels: channels of the map that is flattened.
    :param dims: output values.

    Example::

        >>> PerceptualEncoder(1, 28, (32, 64), 32, 112)(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 112])
    """

    def __init__(self, in_channels: int, size: int, channels: Sequence[int],
                 flat_channels: int, dims: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels[0], 3, padding=1),
                                   _gn(channels[0]), nn.SiLU()]
        side, cin = size, channels[0]
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), _gn(cout), nn.SiLU(),
                       nn.Conv2d(cout, cout, 3, padding=1), _gn(cout), nn.SiLU()]
            side, cin = (side + 1) // 2, cout
        layers += [nn.Conv2d(cin, flat_channels, 1)]
        self.net = nn.Sequential(*layers)
        self.map_side = side
        self.fc = nn.Linear(flat_channels * side * side, dims)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.net(2.0 * images - 1.0)
        return torch.tanh(self.fc(h.flatten(1)))


class CodecEncoder(nn.Module):
    """Images -> per-layer values in [-1, 1] (before quantisation).

    :param image_shape: ``(C, H, W)`` with ``H == W``.
    :param specs: the layers; ``source="semantic"`` layers come from the backbone
        projection, ``"perceptual"`` ones from :class:`PerceptualEncoder`.
    :param backbone: registry name of the frozen feature extractor
        (:data:`gsc_semantic.foundation.FOUNDATION_ENCODERS`), default EfficientNet-Lite0.
    :param backbone_size: side the images are resized to for the backbone.
    :param backbone_path: local weights for open_clip / transformers / sd-vae backbones.
    :param backbone_pretrained: False builds an untrained EfficientNet (tests only).
    :param semantic_hidden: hidden width of the semantic projection (0: linear).

    The backbone is frozen and is *not* part of :meth:`state_dict` (its weights come from
    its own package or path), so checkpoints hold only the trained parts.

    :input images: ``[N, C, H, W]`` in [0, 1].
    :output: list of ``[N, dims_l]`` tensors, one per layer.

    Example::

        >>> specs = [LayerSpec("z1", 4, 2, "semantic"), LayerSpec("z2", 8, 2)]
        >>> enc = CodecEncoder((3, 64, 64), specs, channels=(16, 32), flat_channels=8,
        ...                    backbone_pretrained=False)
        >>> [v.abs().max() <= 1 for v in enc(torch.rand(1, 3, 64, 64))]
        [tensor(True), tensor(True)]
    """

    def __init__(self, image_shape: Sequence[int], specs: Sequence[LayerSpec],
                 backbone: str = "efficientnet-lite0", backbone_size: int = 64,
                 backbone_path: str | None = None, channels: Sequence[int] = (32, 64),
                 flat_channels: int = 32, backbone_pretrained: bool = True,
                 semantic_hidden: int = 0) -> None:
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        if h != w:
            raise ValueError(f"square images only, got {h}x{w}")
        self.image_shape = (c, h, w)
        self.specs = list(specs)
        for s in self.specs:
            if s.source not in ("semantic", "perceptual"):
                raise ValueError(f"layer {s.name}: source must be semantic or perceptual")
        self.sem_dims = sum(s.dims for s in self.specs if s.source == "semantic")
        self.per_dims = sum(s.dims for s in self.specs if s.source == "perceptual")
        if backbone.startswith("efficientnet"):
            bb = load_backbone(backbone, input_size=backbone_size,
                               pretrained=backbone_pretrained)
        else:
            bb = load_backbone(backbone, path=backbone_path, input_size=backbone_size)
        # kept out of the module tree: frozen, not saved in checkpoints
        self.__dict__["backbone"] = bb
        self.semantic = SemanticProjection(bb.num_features, self.sem_dims, semantic_hidden) \
            if self.sem_dims else None
        self.perceptual = PerceptualEncoder(c, h, channels, flat_channels, self.per_dims) \
            if self.per_dims else None

    @property
    def backbone(self) -> FeatureBackbone:
        """The frozen feature extractor (not in ``state_dict``)."""
        return self.__dict__["backbone"]

    def backbone_features(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen backbone features ``[N, F]`` (no gradient)."""
        bb = self.backbone
        p = next(bb.parameters(), None)
        if p is not None and p.device != images.device:
            bb.to(images.device)
        return bb(images)

    def forward(self, images: torch.Tensor, features: torch.Tensor | None = None
                ) -> list[torch.Tensor]:
        """:param features: precomputed :meth:`backbone_features` (optional)."""
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"expected images [N, {', '.join(map(str, self.image_shape))}], "
                             f"got {tuple(images.shape)}")
        sem = per = None
        if self.semantic is not None:
            f = self.backbone_features(images) if features is None else features
            sem = self.semantic(f)
        if self.perceptual is not None:
            per = self.perceptual(images)
        out, si, pi = [], 0, 0
        for s in self.specs:
            if s.source == "semantic":
                out.append(sem[:, si:si + s.dims])
                si += s.dims
            else:
                out.append(per[:, pi:pi + s.dims])
                pi += s.dims
        return out

