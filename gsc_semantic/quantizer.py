"""Bit-robust layered quantiser: fixed-length natural-binary scalar codes in importance layers.

Every layer ``z_l`` is a vector of ``dims`` values in [-1, 1] quantised with a uniform
mid-rise scalar quantiser of ``bits_per_dim`` bits (``2**B`` levels at
``-1 + (2k + 1) / 2**B``, ``k = 0 .. 2**B - 1``). The index ``k`` is sent in *natural
binary*, MSB first, with no entropy coder, so every layer has a fixed length
``dims * bits_per_dim`` and every bit position has a fixed meaning:

* a flipped bit of weight ``2**j`` moves the value by exactly ``2**j`` quantiser steps
  (``2**(j + 1) / 2**B`` in value), whatever the other bits are; an error in the LSB is the
  smallest possible move. For a uniform source and a uniform quantiser on a binary symmetric
  channel the natural binary code minimises the mean-square error over all index
  assignments (Crimmins, Horwitz, Palermo & Palermo, IEEE Trans. IT 1969), which is why it
  is used here rather than a Gray code (Gray codes make single-bit moves larger on average);
* soft decoding is linear: with independent bit posteriors ``p_j = P(b_j = 1)`` (from LLRs
  ``log p(1)/p(0)``, the Sionna sign convention), the posterior-mean index is
  ``E[k] = sum_j p_j 2**(B-1-j)`` and the MMSE value is ``-1 + (2 E[k] + 1) / 2**B``; an
  all-zero LLR (no information) gives 0, the prior mean;
* an erased layer (the receiver never decoded it) is replaced by 0, the prior mean, and
  the decoder is told which layers are missing through an erasure mask.

Layers are importance ordered: ``z1`` is the semantic vector, later layers refine. A
receiver holding only the first ``l`` layers still decodes (see :mod:`gsc_semantic.codec`).

Example::

    >>> import torch
    >>> q = LayeredQuantizer([LayerSpec("z1", 4, 2), LayerSpec("z2", 8, 1)])
    >>> lb = q.quantize([torch.zeros(3, 4), torch.ones(3, 8)])
    >>> lb.bits_per_layer, lb.layers[0].dtype
    ([8, 8], torch.uint8)
    >>> [v.shape for v in q.dequantize(lb)[0]]
    [torch.Size([3, 4]), torch.Size([3, 8])]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "LayerSpec",
    "LayeredBits",
    "LayeredQuantizer",
    "flip_bits",
    "bsc_llr",
    "erasure_mask_from_prefix",
]


@dataclass(frozen=True)
class LayerSpec:
    """One importance layer: ``dims`` values of ``bits_per_dim`` bits (1..8).

    :param name: layer name (``"z1"``, ...).
    :param dims: number of scalar values.
    :param bits_per_dim: bits per value (natural binary, MSB first).
    :param source: what the values come from (``"semantic"`` or ``"perceptual"``).

    Example::

        >>> LayerSpec("z1", 8, 2, "semantic").num_bits
        16
    """

    name: str
    dims: int
    bits_per_dim: int
    source: str = "perceptual"

    def __post_init__(self) -> None:
        if self.dims < 1:
            raise ValueError(f"layer {self.name}: dims must be >= 1, got {self.dims}")
        if not 1 <= self.bits_per_dim <= 8:
            raise ValueError(f"layer {self.name}: bits_per_dim must be in 1..8, "
                             f"got {self.bits_per_dim}")

    @property
    def num_bits(self) -> int:
        """Bits of the layer per image (``dims * bits_per_dim``)."""
        return self.dims * self.bits_per_dim

    def to_dict(self) -> dict:
        """JSON-ready dict (inverse of ``LayerSpec(**d)``)."""
        return {"name": self.name, "dims": self.dims, "bits_per_dim": self.bits_per_dim,
                "source": self.source}


@dataclass
class LayeredBits:
    """Bits of a batch of images, one ``uint8`` 0/1 tensor ``[N, bits_l]`` per layer
    (values MSB first, values in order).

    Example::

        >>> lb = LayeredBits([torch.zeros(2, 16, dtype=torch.uint8),
        ...                   torch.ones(2, 32, dtype=torch.uint8)])
        >>> lb.bits_per_layer, lb.flat().shape, lb.num_layers
        ([16, 32], torch.Size([2, 48]), 2)
        >>> LayeredBits.from_flat(lb.flat(), [16, 32]).layers[1].sum().item()
        64
    """

    layers: list[torch.Tensor]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("LayeredBits needs at least one layer")
        n = self.layers[0].shape[0]
        for i, t in enumerate(self.layers):
            if t.dim() != 2 or t.shape[0] != n:
                raise ValueError(f"layer {i + 1}: expected [N={n}, bits], got {tuple(t.shape)}")

    @property
    def bits_per_layer(self) -> list[int]:
        """Bits per image in each layer."""
        return [int(t.shape[1]) for t in self.layers]

    @property
    def num_layers(self) -> int:
        """Number of layers L."""
        return len(self.layers)

    @property
    def batch_size(self) -> int:
        """Number of images N."""
        return int(self.layers[0].shape[0])

    def flat(self, num_layers: int | None = None) -> torch.Tensor:
        """The first ``num_layers`` layers (default all) concatenated: ``[N, sum bits]``."""
        return torch.cat(self.layers[:num_layers], dim=1)

    @classmethod
    def from_flat(cls, bits: torch.Tensor, bits_per_layer: Sequence[int]) -> LayeredBits:
        """Split ``[N, sum(bits_per_layer)]`` (or fewer columns: whole layers only) into
        layers; also works on LLR tensors."""
        sizes = list(bits_per_layer)
        total, parts, start = bits.shape[1], [], 0
        for s in sizes:
            if start + s > total:
                break
            parts.append(bits[:, start:start + s])
            start += s
        if start != total:
            raise ValueError(f"{total} bits do not split into whole layers of {sizes}")
        return cls(parts)

    def to(self, device: torch.device | str) -> LayeredBits:
        """Move every layer to ``device``."""
        return LayeredBits([t.to(device) for t in self.layers])


def flip_bits(bits: torch.Tensor, ber: float | torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary symmetric channel: flip every bit independently with probability ``ber``
    (a float, or a tensor broadcastable to ``bits``, e.g. ``[N, 1]`` per image).

    Example::

        >>> b = torch.zeros(1, 10000, dtype=torch.uint8)
        >>> 0.05 < flip_bits(b, 0.1, torch.Generator().manual_seed(0)).float().mean() < 0.15
        tensor(True)
    """
    u = torch.rand(bits.shape, generator=generator, device=bits.device)
    if torch.is_tensor(ber):
        ber = ber.to(bits.device)
    flips = (u < ber).to(bits.dtype)
    return bits ^ flips


def bsc_llr(bits: torch.Tensor, ber: float | torch.Tensor) -> torch.Tensor:
    """LLRs ``log p(1)/p(0)`` of received hard ``bits`` over a BSC of crossover ``ber``:
    ``+-log((1 - ber) / ber)``.

    Example::

        >>> bsc_llr(torch.tensor([[1, 0]], dtype=torch.uint8), 0.1)
        tensor([[ 2.1972, -2.1972]])
    """
    ber_t = torch.as_tensor(ber, dtype=torch.float32, device=bits.device).clamp(1e-12, 0.5)
    mag = torch.log((1 - ber_t) / ber_t)
    return (2.0 * bits.float() - 1.0) * mag


def erasure_mask_from_prefix(batch_size: int, num_layers: int, received: int,
                             device: torch.device | str = "cpu") -> torch.Tensor:
    """Erasure mask ``[N, L]`` (True = erased) for a receiver holding the first
    ``received`` layers.

    Example::

        >>> erasure_mask_from_prefix(1, 4, 2)
        tensor([[False, False,  True,  True]])
    """
    if not 0 <= received <= num_layers:
        raise ValueError(f"received must be in 0..{num_layers}, got {received}")
    m = torch.arange(num_layers, device=device) >= received
    return m.unsqueeze(0).expand(batch_size, num_layers).clone()


class LayeredQuantizer:
    """Uniform scalar quantiser with natural-binary index assignment, per layer.

    :param specs: the layers, most important first.

    :input values: list of ``[N, dims_l]`` float tensors (values outside [-1, 1] are
        clipped).
    :output: :class:`LayeredBits`.

    Example::

        >>> q = LayeredQuantizer([LayerSpec("z1", 2, 2)])
        >>> lb = q.quantize([torch.tensor([[-1.0, 0.9]])])
        >>> lb.layers[0].tolist()
        [[0, 0, 1, 1]]
        >>> q.dequantize(lb)[0][0]
        tensor([[-0.7500,  0.7500]])
    """

    def __init__(self, specs: Sequence[LayerSpec]) -> None:
        if not specs:
            raise ValueError("at least one layer is needed")
        self.specs = list(specs)

    # ---- bookkeeping -------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        """Number of layers L."""
        return len(self.specs)

    @property
    def bits_per_layer(self) -> list[int]:
        """Bits per image of every layer."""
        return [s.num_bits for s in self.specs]

    @property
    def dims_per_layer(self) -> list[int]:
        """Values per image of every layer."""
        return [s.dims for s in self.specs]

    def layers_for_budget(self, num_bits: int) -> int:
        """How many leading layers fit in ``num_bits`` bits (0 if not even ``z1``).

        Example::

            >>> LayeredQuantizer([LayerSpec("a", 8, 2), LayerSpec("b", 16, 2)]
            ...                  ).layers_for_budget(40)
            1
        """
        used, count = 0, 0
        for b in self.bits_per_layer:
            if used + b > num_bits:
                break
            used += b
            count += 1
        return count

    # ---- scalar maps -------------------------------------------------------------------
    @staticmethod
    def index(values: torch.Tensor, bits: int) -> torch.Tensor:
        """Quantiser index ``k`` (int64) of values in [-1, 1] for ``bits`` bits."""
        levels = 2 ** bits
        k = torch.floor((values.clamp(-1.0, 1.0) + 1.0) * 0.5 * levels)
        return k.clamp(0, levels - 1).long()

    @staticmethod
    def level(index: torch.Tensor, bits: int) -> torch.Tensor:
        """Reconstruction value of (possibly fractional, i.e. expected) index ``k``."""
        return -1.0 + (2.0 * index.float() + 1.0) / (2 ** bits)

    @classmethod
    def quantize_values(cls, values: torch.Tensor, bits: int) -> torch.Tensor:
        """Values rounded to the quantiser levels (no bits), e.g. for training."""
        return cls.level(cls.index(values, bits), bits)

    @staticmethod
    def _weights(bits: int, device: torch.device) -> torch.Tensor:
        return 2 ** torch.arange(bits - 1, -1, -1, device=device)

    @classmethod
    def index_to_bits(cls, index: torch.Tensor, bits: int) -> torch.Tensor:
        """``[N, D]`` indices -> ``[N, D * bits]`` uint8 bits, MSB first per value."""
        w = cls._weights(bits, index.device)
        b = (index.unsqueeze(-1) // w) % 2
        return b.reshape(index.shape[0], -1).to(torch.uint8)

    @classmethod
    def bits_to_index(cls, bits_t: torch.Tensor, bits: int) -> torch.Tensor:
        """``[N, D * bits]`` hard bits (or bit probabilities) -> ``[N, D]`` (expected)
        indices."""
        w = cls._weights(bits, bits_t.device).to(torch.float32)
        b = bits_t.reshape(bits_t.shape[0], -1, bits).to(torch.float32)
        return (b * w).sum(-1)

    # ---- layers ------------------------------------------------------------------------
    def quantize(self, values: Sequence[torch.Tensor]) -> LayeredBits:
        """Per-layer values ``[N, dims_l]`` -> :class:`LayeredBits`."""
        if len(values) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} layers of values, got {len(values)}")
        out = []
        for spec, v in zip(self.specs, values, strict=True):
            if v.dim() != 2 or v.shape[1] != spec.dims:
                raise ValueError(f"layer {spec.name}: expected [N, {spec.dims}] values, got "
                                 f"{tuple(v.shape)}")
            out.append(self.index_to_bits(self.index(v.detach(), spec.bits_per_dim),
                                          spec.bits_per_dim))
        return LayeredBits(out)

    def _as_layers(self, layers: LayeredBits | Sequence[torch.Tensor] | torch.Tensor
                   ) -> list[torch.Tensor]:
        if isinstance(layers, LayeredBits):
            return list(layers.layers)
        if torch.is_tensor(layers):
            return LayeredBits.from_flat(layers, self.bits_per_layer).layers
        return list(layers)

    def dequantize(self, layers: LayeredBits | Sequence[torch.Tensor] | torch.Tensor,
                   erasure_mask: torch.Tensor | None = None
                   ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Bits or LLRs -> values per layer, plus the erasure mask actually used.

        :param layers: :class:`LayeredBits`; or a list of per-layer tensors ``[N, bits_l]``
            (integer/bool dtype = hard bits, floating dtype = LLRs ``log p(1)/p(0)``,
            dequantised to the posterior mean); or one flat tensor ``[N, sum bits]`` of whole
            layers. Fewer than L layers given means the rest are erased.
        :param erasure_mask: ``[N, L]`` bool, True where a layer is missing (default: only
            the layers not given).
        :return: ``(values, mask)``: ``values[l]`` is ``[N, dims_l]`` float (0 where erased),
            ``mask`` is the ``[N, L]`` bool erasure mask.

        Example::

            >>> q = LayeredQuantizer([LayerSpec("z1", 1, 2), LayerSpec("z2", 1, 2)])
            >>> vals, mask = q.dequantize([torch.tensor([[0.0, 0.0]])])   # LLRs: no info
            >>> vals, mask
            ([tensor([[0.]]), tensor([[0.]])], tensor([[False,  True]]))
        """
        parts = self._as_layers(layers)
        if len(parts) > self.num_layers:
            raise ValueError(f"got {len(parts)} layers, the code has {self.num_layers}")
        if not parts and erasure_mask is None:
            raise ValueError("no layers given and no erasure mask: batch size unknown")
        n = parts[0].shape[0] if parts else erasure_mask.shape[0]
        device = parts[0].device if parts else erasure_mask.device
        mask = torch.zeros(n, self.num_layers, dtype=torch.bool, device=device)
        mask[:, len(parts):] = True
        if erasure_mask is not None:
            em = torch.as_tensor(erasure_mask, device=device).bool()
            if em.shape != (n, self.num_layers):
                raise ValueError(f"erasure_mask must be [N={n}, L={self.num_layers}], got "
                                 f"{tuple(em.shape)}")
            mask = mask | em
        values = []
        for i, spec in enumerate(self.specs):
            if i >= len(parts):
                values.append(torch.zeros(n, spec.dims, device=device))
                continue
            t = parts[i]
            if t.shape != (n, spec.num_bits):
                raise ValueError(f"layer {spec.name}: expected [N={n}, {spec.num_bits}] bits, "
                                 f"got {tuple(t.shape)}")
            if t.is_floating_point():
                probs = torch.sigmoid(t.float())         # LLR = log p(1)/p(0)
            else:
                probs = t.to(torch.float32)
                if ((probs != 0) & (probs != 1)).any():
                    raise ValueError(f"layer {spec.name}: hard bits must be 0/1")
            v = self.level(self.bits_to_index(probs, spec.bits_per_dim), spec.bits_per_dim)
            values.append(v.masked_fill(mask[:, i:i + 1], 0.0))
        return values, mask
