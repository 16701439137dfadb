"""Rate-scalable photo layers: an importance-ordered ladder of coded thumbnails and residuals.

The transmitter turns one image (any size, RGB) into ``L`` layers of bytes that together
fill the per-image budget ``B`` bits of the link (:class:`LayerLadder`):

* the **cut points** scale with the image area (for 256x256: cumulative 96, 240, 600,
  1,500, 3,750, 9,400, 23,500, 58,600 bits, ×2.5 per layer): layers ``1..k-1`` get their
  nominal sizes and the last layer sent takes the rest of the budget, so any budget from
  about 72 bits upwards is used in full (below that nothing is sent); cut points closer
  than :data:`SPLIT_BYTES` to the previous one or to the end of the budget are merged
  (small images);
* every layer is one **coded picture** at a resolution of the ladder ``2^(-i/2)`` of the
  image size (``i = 0..20``: full size down to 1/1024 per side, steps of √2), coded by
  Pillow's JPEG or WebP (the receiver-known header parts stripped, as in
  :mod:`gsc_semantic.baselines`), either **independent** or as a **residual** over the
  previous layer's reconstruction upsampled to its resolution (gain 1, 2 or 4 around
  mid-gray);
* the transmitter chooses codec, resolution, mode and quality per layer by a signal
  criterion only: the MSE against the original of the reconstruction bicubically upsampled
  to full size (never an evaluation network), quality binary-searched to fit the layer.

One header byte per layer says which choice was taken (bit 7: WebP, bits 5-6: mode,
bits 0-4: resolution index). Layers go into their own CRC-24A-checked transport blocks;
the receiver decodes the prefix of layers that arrived (a lost layer is erased, and every
layer after it is dropped: a residual needs its predecessor), and returns the
reconstruction at the resolution of the last decoded layer for the generative receiver
(:mod:`gsc_semantic.photo_receiver`) to bring to full size.

Example::

    >>> import torch
    >>> from gsc_semantic.photo_layers import LayerLadder, decode_layers, encode_layers
    >>> ladder = LayerLadder()
    >>> layers = encode_layers(torch.rand(3, 256, 256), 2000, ladder)
    >>> [len(b) for b in layers]   # bytes per layer, cut at 96/240/600/1500 bits
    [12, 18, 45, 175]
    >>> thumb = decode_layers(layers, (256, 256))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .baselines import CodecError, decode, encode_to_fit

__all__ = ["LayerLadder", "LayerChoice", "encode_layers", "decode_layers", "layer_summary",
           "thumbnail_size",
           "MODES", "MIN_LAYER_BYTES"]

#: residual gains by mode (mode 0: independent picture)
MODES: tuple[float | None, ...] = (None, 1.0, 2.0, 4.0)
_CODECS = ("jpeg", "webp")
#: smallest layer worth sending: header byte + the smallest JPEG thumbnail
MIN_LAYER_BYTES = 9
#: no layer boundary closer than this (bytes) to the previous one or to the budget's end
SPLIT_BYTES = 12
_MAX_RES_INDEX = 20


@dataclass(frozen=True)
class LayerLadder:
    """Cumulative layer cut points in bits for a 256x256 image (scaled by area for others).

    :param cuts_256: Cumulative cut points (bits) at 256x256, increasing.
    :param min_bpp, max_bpp: Bits per thumbnail pixel tried when choosing a resolution.
    """

    cuts_256: tuple[int, ...] = (96, 240, 600, 1500, 3750, 9400, 23500, 58600)
    min_bpp: float = 0.1
    max_bpp: float = 4.0

    def cuts(self, hw: tuple[int, int]) -> list[int]:
        """Cut points in bits for an image of ``hw`` = (H, W)."""
        scale = hw[0] * hw[1] / 65536.0
        return [int(c * scale) for c in self.cuts_256]

    def layer_bytes(self, budget_bits: int, hw: tuple[int, int]) -> list[int]:
        """Bytes of each layer sent within ``budget_bits`` (empty: nothing fits)."""
        total = budget_bits // 8
        if total < MIN_LAYER_BYTES:
            return []
        bounds = [0]
        for c in self.cuts(hw):  # small images: cuts closer than a useful layer are merged
            if c // 8 - bounds[-1] >= SPLIT_BYTES and total - c // 8 >= SPLIT_BYTES:
                bounds.append(c // 8)
        bounds = bounds[:-1] if len(bounds) > 1 else bounds  # the last layer takes the rest
        bounds.append(total)
        return [b - a for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def to_dict(self) -> dict:
        return {"cuts_256": list(self.cuts_256), "min_bpp": self.min_bpp,
                "max_bpp": self.max_bpp}


@dataclass(frozen=True)
class LayerChoice:
    """What one layer holds: codec, residual mode (0 = independent) and resolution index."""

    codec: str
    mode: int
    res_index: int

    def header(self) -> int:
        return (0x80 if self.codec == "webp" else 0) | (self.mode << 5) | self.res_index

    @classmethod
    def from_header(cls, byte: int) -> LayerChoice:
        return cls("webp" if byte & 0x80 else "jpeg", (byte >> 5) & 0x3, byte & 0x1F)


def thumbnail_size(hw: tuple[int, int], res_index: int) -> tuple[int, int]:
    """(h, w) of ladder resolution ``res_index``: the image size times 2^(-i/2), >= 1 px.

    >>> thumbnail_size((256, 256), 4), thumbnail_size((512, 768), 8)
    ((64, 64), (32, 48))
    """
    f = 2.0 ** (-res_index / 2.0)
    return max(1, round(hw[0] * f)), max(1, round(hw[1] * f))


def _resize(x: torch.Tensor, hw: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    shrink = hw[0] < x.shape[-2]
    if mode == "area" or shrink:
        y = F.interpolate(x[None], size=hw, mode="bicubic", align_corners=False,
                          antialias=True)
    else:
        y = F.interpolate(x[None], size=hw, mode="bicubic", align_corners=False)
    return y[0].clamp(0.0, 1.0)


def _reconstruct(choice: LayerChoice, picture: torch.Tensor,
                 previous: torch.Tensor | None) -> torch.Tensor:
    gain = MODES[choice.mode]
    if gain is None:
        return picture
    if previous is None:
        raise CodecError("a residual layer needs the previous layer")
    pred = _resize(previous, tuple(picture.shape[-2:]), "up")
    return (pred + (picture - 0.5) / gain).clamp(0.0, 1.0)


def _candidates(num_bytes: int, hw: tuple[int, int], ladder: LayerLadder,
                previous: torch.Tensor | None) -> list[LayerChoice]:
    out = []
    bits = 8 * (num_bytes - 1)
    prev_pixels = 0 if previous is None else previous.shape[-2] * previous.shape[-1]
    for i in range(_MAX_RES_INDEX + 1):
        h, w = thumbnail_size(hw, i)
        bpp = bits / (h * w)
        if not ladder.min_bpp <= bpp <= ladder.max_bpp:
            continue
        for codec in _CODECS:
            out.append(LayerChoice(codec, 0, i))
            if previous is not None and h * w >= prev_pixels:
                out.extend(LayerChoice(codec, m, i) for m in (1, 2, 3))
    if not out:  # budget outside the bpp window: the nearest resolution
        i = _MAX_RES_INDEX if bits / (hw[0] * hw[1]) < ladder.min_bpp else 0
        out = [LayerChoice(c, 0, i) for c in _CODECS]
    return out


def _encode_layer(image: torch.Tensor, num_bytes: int, ladder: LayerLadder,
                  previous: torch.Tensor | None) -> tuple[bytes, torch.Tensor] | None:
    """Best (by full-size MSE) layer of at most ``num_bytes`` bytes, with its reconstruction
    at its own resolution; ``None`` when nothing fits."""
    hw = tuple(image.shape[-2:])
    best: tuple[float, bytes, torch.Tensor] | None = None
    if previous is not None:  # a layer must improve on what the receiver already has
        best = (float((_resize(previous, hw, "up") - image).square().mean()), b"", previous)
    for choice in _candidates(num_bytes, hw, ladder, previous):
        size = thumbnail_size(hw, choice.res_index)
        target = _resize(image, size, "area")
        gain = MODES[choice.mode]
        if gain is not None:
            pred = _resize(previous, size, "up")
            target = (0.5 + gain * (target - pred)).clamp(0.0, 1.0)
        enc = encode_to_fit(target, choice.codec, num_bytes - 1)
        if enc is None:
            continue
        picture = decode(enc.data, choice.codec, (3, *size))
        recon = _reconstruct(choice, picture, previous)
        mse = float((_resize(recon, hw, "up") - image).square().mean())
        if best is None or mse < best[0]:
            best = (mse, bytes([choice.header()]) + enc.data, recon)
    return None if best is None or not best[1] else (best[1], best[2])


def encode_layers(image: torch.Tensor, budget_bits: int, ladder: LayerLadder | None = None
                  ) -> list[bytes]:
    """The layers of ``image`` ([3, H, W] in [0, 1]) that fill ``budget_bits``; each is
    padded with zeros to its planned size (``ladder.layer_bytes``). A layer whose best
    choice does not fit, or does not improve on the previous layers, is sent as zeros (the
    receiver stops there)."""
    ladder = ladder or LayerLadder()
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an RGB image [3, H, W], got {tuple(image.shape)}")
    hw = tuple(int(v) for v in image.shape[-2:])
    image = image.detach().to("cpu", torch.float32).clamp(0, 1)
    out, previous, broken = [], None, False
    for n in ladder.layer_bytes(budget_bits, hw):
        got = None if broken else _encode_layer(image, n, ladder, previous)
        if got is None:  # the receiver stops at an undecodable layer: zeros from here on
            broken = True
            out.append(bytes(n))
            continue
        data, previous = got
        out.append(data + bytes(n - len(data)))
    return out


def decode_layers(layers: list[bytes | None], hw: tuple[int, int]) -> torch.Tensor | None:
    """Reconstruction from the layers that arrived (``None`` = erased), at the resolution of
    the last decodable layer of the unbroken prefix; ``None`` when not even layer 1 decodes.
    """
    recon = None
    for data in layers:
        if data is None or len(data) < 2:
            break
        choice = LayerChoice.from_header(data[0])
        if choice.res_index > _MAX_RES_INDEX or (choice.mode and recon is None):
            break
        size = thumbnail_size(hw, choice.res_index)
        try:
            picture = decode(data[1:], choice.codec, (3, *size))
            recon = _reconstruct(choice, picture, recon)
        except CodecError:
            break
    return recon


def layer_summary(layers: list[bytes]) -> list[dict]:
    """Per layer: bytes, codec, mode, resolution index (for reports)."""
    out = []
    for data in layers:
        c = LayerChoice.from_header(data[0]) if data and any(data) else None
        out.append({"bytes": len(data), "codec": c.codec if c else None,
                    "mode": c.mode if c else None, "res_index": c.res_index if c else None})
    return out
