"""Road-monitoring networks and the class-map layer of ``gsc scenario road``.

- :class:`RoadSegmenter` — a small encoder-decoder CNN (5 classes of
  :data:`gsc_semantic.data.road.ROAD_CLASSES`) used as the *task metric* (segmentation of
  the original and the regenerated image) and, at the transmitter, to produce the class map.
- :func:`class_grid` / :func:`pack_class_grid` / :func:`unpack_class_grid` — the most
  important layer: a coarse class map (``grid`` x ``grid`` cells, the highest-priority
  object class present in a cell wins), fixed length, three cells per 7 bits (5³ = 125).
- :class:`RoadCodec` — a perceptual latent in layers (conv encoder, tanh, scalar
  quantisation with natural-binary indices, channels split into layers) and a conditional
  decoder that regenerates the scene from the class map and whichever latent layers
  arrived (erasure flags as inputs). Deterministic (a conv decoder, not diffusion).

Example::

    >>> import torch
    >>> grid = torch.randint(0, 5, (2, 16, 16))
    >>> bits = pack_class_grid(grid)
    >>> bits.shape, bool((unpack_class_grid(bits, 16) == grid).all())
    ((2, 598), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gsc_semantic.data.road import LANE, PEDESTRIAN, ROAD, VEHICLE

__all__ = ["NUM_CLASSES", "RoadSegmenter", "class_grid", "class_grid_bits",
           "pack_class_grid", "unpack_class_grid", "RoadCodecConfig", "RoadCodec"]

NUM_CLASSES = 5
#: (class, minimum pixels in a cell) checked in this order; then road vs background majority
_PRIORITY = ((PEDESTRIAN, 2), (VEHICLE, 2), (LANE, 3))


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.GroupNorm(8, cout), nn.SiLU())


class RoadSegmenter(nn.Module):
    """Small U-Net working at half resolution (a full-resolution head sees the input again),
    ``[N, 3, H, W]`` in [0, 1] -> logits ``[N, 5, H, W]`` (H, W % 8 == 0).

    Example::

        >>> RoadSegmenter()(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 5, 64, 64])
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.width = w
        self.enc1 = _block(3, w, 2)
        self.enc2 = _block(w, 2 * w, 2)
        self.mid = _block(2 * w, 3 * w, 2)
        self.dec2 = _block(5 * w, 2 * w)
        self.dec1 = _block(3 * w, w)
        self.head = nn.Sequential(nn.Conv2d(w + 3, w, 3, 1, 1), nn.SiLU(),
                                  nn.Conv2d(w, NUM_CLASSES, 1))

    def features_and_logits(self, x: torch.Tensor
                            ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Encoder features at 1/2, 1/4 and 1/8 resolution, and the logits (a training
        loss may compare the features of two images)."""
        s1 = self.enc1(x * 2 - 1)
        s2 = self.enc2(s1)
        m = self.mid(s2)
        d2 = self.dec2(torch.cat([F.interpolate(m, scale_factor=2.0), s2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), s1], 1))
        up = F.interpolate(d1, scale_factor=2.0, mode="bilinear", align_corners=False)
        return [s1, s2, m], self.head(torch.cat([up, x * 2 - 1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Class index per pixel, int64 ``[N, H, W]``."""
        return torch.cat([self(images[i:i + batch]).argmax(1)
                          for i in range(0, images.shape[0], batch)])


def class_grid(mask: torch.Tensor, grid: int) -> torch.Tensor:
    """Per-pixel classes ``[N, H, W]`` -> cell classes ``[N, grid, grid]``: pedestrian,
    vehicle or lane when the cell holds enough of its pixels (in that order), otherwise the
    majority of road vs background.

    Example::

        >>> m = torch.zeros(1, 8, 8, dtype=torch.long); m[0, :2, :2] = 4
        >>> class_grid(m, 2).tolist()
        [[[4, 0], [0, 0]]]
    """
    n, h, w = mask.shape
    if h % grid or w % grid:
        raise ValueError(f"a {h}x{w} mask does not split into {grid}x{grid} cells")
    cells = F.one_hot(mask.long(), NUM_CLASSES).permute(0, 3, 1, 2).float()
    counts = F.avg_pool2d(cells, (h // grid, w // grid)) * (h // grid) * (w // grid)
    out = torch.where(counts[:, ROAD] > counts[:, 0], ROAD, 0)
    for cls, need in reversed(_PRIORITY):
        out = torch.where(counts[:, cls] >= need, cls, out)
    return out.long()


def class_grid_bits(grid: int) -> int:
    """Bits of a packed ``grid`` x ``grid`` class map (7 bits per 3 cells, 3 per leftover)."""
    cells = grid * grid
    return 7 * (cells // 3) + 3 * (cells % 3)


def pack_class_grid(cells: torch.Tensor) -> np.ndarray:
    """``[N, g, g]`` classes 0..4 -> uint8 bits ``[N, class_grid_bits(g)]`` (MSB first)."""
    c = cells.reshape(cells.shape[0], -1).cpu().numpy().astype(np.int64)
    n, m = c.shape
    full = m // 3
    groups = c[:, :3 * full].reshape(n, full, 3) @ np.array([25, 5, 1])
    out = [((groups[..., None] >> np.arange(6, -1, -1)) & 1).reshape(n, -1)]
    if m % 3:
        rest = c[:, 3 * full:]
        out.append(((rest[..., None] >> np.arange(2, -1, -1)) & 1).reshape(n, -1))
    return np.concatenate(out, 1).astype(np.uint8)


def unpack_class_grid(bits: np.ndarray, grid: int) -> torch.Tensor:
    """Inverse of :func:`pack_class_grid`; out-of-range codes (bit errors) wrap modulo 5."""
    b = np.asarray(bits, dtype=np.int64)
    n, m = b.shape[0], grid * grid
    if b.shape[1] != class_grid_bits(grid):
        raise ValueError(f"{b.shape[1]} bits do not hold a {grid}x{grid} class map")
    full = m // 3
    vals = b[:, :7 * full].reshape(n, full, 7) @ (1 << np.arange(6, -1, -1))
    digits = [np.stack([(vals // 25) % 5, (vals // 5) % 5, vals % 5], -1).reshape(n, -1)]
    if m % 3:
        rest = b[:, 7 * full:].reshape(n, m % 3, 3) @ (1 << np.arange(2, -1, -1))
        digits.append(rest % 5)
    return torch.from_numpy(np.concatenate(digits, 1).reshape(n, grid, grid))


@dataclass
class RoadCodecConfig:
    """Sizes of :class:`RoadCodec`: image ``size``, class-map ``grid``, latent ``latent_grid``
    x ``latent_grid`` with ``layer_channels[l]`` channels in layer ``l`` at ``bits`` bits each,
    decoder ``width``."""

    size: int = 64
    grid: int = 16
    latent_grid: int = 8
    layer_channels: list[int] = field(default_factory=lambda: [2, 4, 6])
    bits: int = 2
    width: int = 64

    def to_dict(self) -> dict:
        return asdict(self)


class _Res(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, c, 3, 1, 1),
                                  nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, c, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RoadCodec(nn.Module):
    """Layered perceptual latent + class-map-conditioned regeneration.

    :param config: :class:`RoadCodecConfig`.

    Layers (bits per image, :attr:`layer_bits`): the packed class map, then the latent
    channel groups of ``layer_channels``.

    Example::

        >>> codec = RoadCodec(RoadCodecConfig())
        >>> x = torch.rand(2, 3, 64, 64); cells = torch.randint(0, 5, (2, 16, 16))
        >>> layers = codec.encode_layers(x, cells)
        >>> [a.shape[1] for a in layers] == codec.layer_bits
        True
        >>> codec.decode_layers(layers, torch.zeros(2, 4, dtype=torch.bool)).shape
        torch.Size([2, 3, 64, 64])
    """

    def __init__(self, config: RoadCodecConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.size % c.grid or c.grid % c.latent_grid:
            raise ValueError("size, grid and latent_grid must divide each other")
        lat = sum(c.layer_channels)
        down = []
        ch, res = 3, c.size
        for cout in (24, 48, 64, 64, 64)[: int(np.log2(c.size // c.latent_grid))]:
            down += [nn.Conv2d(ch, cout, 4, 2, 1), nn.SiLU(), nn.Conv2d(cout, cout, 3, 1, 1),
                     nn.SiLU()]
            ch, res = cout, res // 2
        self.encoder = nn.Sequential(*down, nn.Conv2d(ch, lat, 1))
        cin = NUM_CLASSES + 1 + lat + len(c.layer_channels)
        w = c.width
        ups: list[nn.Module] = []
        res, ch = c.grid, w
        while res < c.size:  # each doubling: upsample, conv to 3/4 of the width, residual
            nxt = max(16, ch * 3 // 4 // 8 * 8)
            ups += [nn.Upsample(scale_factor=2.0), nn.Conv2d(ch, nxt, 3, 1, 1), _Res(nxt)]
            ch, res = nxt, res * 2
        self.decoder = nn.Sequential(nn.Conv2d(cin, w, 3, 1, 1), _Res(w), _Res(w),
                                     *ups, nn.GroupNorm(8, ch), nn.SiLU(),
                                     nn.Conv2d(ch, 3, 3, 1, 1))

    @property
    def layer_bits(self) -> list[int]:
        c = self.config
        return [class_grid_bits(c.grid)] + [k * c.latent_grid ** 2 * c.bits
                                            for k in c.layer_channels]

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        """Continuous latent in (-1, 1), ``[N, sum(layer_channels), g, g]``."""
        return torch.tanh(self.encoder(images * 2 - 1))

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Integer levels 0 .. 2^bits-1 of the latent (no gradient)."""
        levels = 2 ** self.config.bits - 1
        return torch.round((y + 1) / 2 * levels).clamp(0, levels)

    def dequantize(self, q: torch.Tensor) -> torch.Tensor:
        return q / (2 ** self.config.bits - 1) * 2 - 1

    def condition(self, cells: torch.Tensor, cells_ok: torch.Tensor, latent: torch.Tensor,
                  layer_ok: torch.Tensor) -> torch.Tensor:
        """Decoder input at class-map resolution: one-hot cells (zero when erased), the
        class-map flag, latent (erased layers zeroed) and one flag per latent layer."""
        c = self.config
        n = cells.shape[0]
        onehot = F.one_hot(cells.long(), NUM_CLASSES).permute(0, 3, 1, 2).float()
        onehot = onehot * cells_ok.view(n, 1, 1, 1)
        keep = torch.repeat_interleave(layer_ok.float(),
                                       torch.tensor(c.layer_channels), dim=1)
        lat = F.interpolate(latent * keep[..., None, None], size=(c.grid, c.grid))
        flags = torch.cat([cells_ok.view(n, 1), layer_ok.float()], 1)[..., None, None]
        flags = flags.expand(n, flags.shape[1], c.grid, c.grid)
        return torch.cat([onehot, lat, flags], 1)

    def regenerate(self, cells: torch.Tensor, cells_ok: torch.Tensor, latent: torch.Tensor,
                   layer_ok: torch.Tensor) -> torch.Tensor:
        """Image ``[N, 3, size, size]`` in [0, 1] from what arrived (differentiable)."""
        return torch.sigmoid(self.decoder(self.condition(cells, cells_ok.float(), latent,
                                                         layer_ok)))

    @torch.no_grad()
    def encode_layers(self, images: torch.Tensor, cells: torch.Tensor) -> list[np.ndarray]:
        """Images + their class map -> uint8 bit arrays ``[N, b_l]`` per layer."""
        c = self.config
        q = self.quantize(self.latent(images)).long().cpu().numpy()
        out = [pack_class_grid(cells)]
        start = 0
        shifts = np.arange(c.bits - 1, -1, -1)
        for k in c.layer_channels:
            part = q[:, start:start + k].reshape(q.shape[0], -1)
            out.append(((part[..., None] >> shifts) & 1).reshape(q.shape[0], -1)
                       .astype(np.uint8))
            start += k
        return out

    @torch.no_grad()
    def decode_layers(self, layers: Sequence[np.ndarray], erased: torch.Tensor
                      ) -> torch.Tensor:
        """Received bit arrays + erasure mask ``[N, L]`` -> regenerated images. A latent layer
        after an erased one is ignored (the decoder was trained on leading layers)."""
        c = self.config
        n = erased.shape[0]
        erased = torch.as_tensor(erased, dtype=torch.bool)
        cells_ok = ~erased[:, 0]
        lat_ok = torch.cumprod((~erased[:, 1:]).long(), dim=1).bool()
        cells = unpack_class_grid(layers[0], c.grid) * cells_ok.view(n, 1, 1)
        weights = torch.tensor(1 << np.arange(c.bits - 1, -1, -1))
        parts = []
        for k, bits in zip(c.layer_channels, layers[1:], strict=True):
            b = torch.from_numpy(np.asarray(bits, dtype=np.int64)).view(n, -1, c.bits)
            parts.append((b * weights).sum(-1).view(n, k, c.latent_grid, c.latent_grid))
        latent = self.dequantize(torch.cat(parts, 1).float())
        return self.regenerate(cells, cells_ok, latent, lat_ok).clamp(0, 1)
