"""Fixed-length keypoint coding for the meeting scenario, in two protection layers.

**Reference landmarks** (sent once with the reference image): every coordinate as an
``ref_bits``-bit natural-binary index of ``x / size`` (uniform, step ``size / 2**ref_bits``).

**Per-frame keypoints**: each of the 24 coordinates is coded as its *delta* against the
reference landmarks, clipped to ``±range_px`` and quantised uniformly to ``bits`` bits
(natural binary, index ``q = floor((d + R) / step)``, value ``-R + (q + 0.5)·step``). No
entropy coding, no prediction between frames, so a bit error moves one coordinate by at most
its bit weight and never spreads. The bits go in two layers:

- **layer 1** (``1 + 24·msb_bits``): a *face-present* flag and the ``msb_bits`` most
  significant bits of every index;
- **layer 2** (``24·(bits - msb_bits)``): the remaining least significant bits.

Decoding (:meth:`KeypointCodec.decode`): layer 1 erased (or flag 0: no face detected at the
transmitter) -> the previous frame's keypoints are reused (the reference landmarks for the
first frame); layer 2 erased -> the LSBs are replaced by the middle of their range (error at
most half the layer's span). Every frame gets a status: ``ok``, ``coarse`` (layer 2 lost),
``reused_lost`` (layer 1 lost) or ``reused_no_face``.

Example::

    >>> codec = KeypointCodec(size=64)
    >>> ref = np.full((12, 2), 32.0, np.float32)
    >>> l1, l2 = codec.encode(ref[None] + 1.3, np.array([True]), ref)
    >>> lm, status = codec.decode(l1, l2, np.array([False]), np.array([False]), ref)
    >>> bool(np.abs(lm - ref - 1.3).max() <= codec.step / 2), status
    (True, ['ok'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsc_phy.config import ConfigError

__all__ = ["KeypointCodec", "FRAME_STATUS", "int_to_bits", "bits_to_int"]

FRAME_STATUS = ("ok", "coarse", "reused_lost", "reused_no_face")
_COORDS = 24


def int_to_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Non-negative ints [...] -> MSB-first bits [..., bits] (uint8).

    Example::

        >>> int_to_bits(np.array([5]), 4).tolist()
        [[0, 1, 0, 1]]
    """
    v = np.asarray(values, dtype=np.int64)[..., None]
    return ((v >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8)


def bits_to_int(bits: np.ndarray) -> np.ndarray:
    """MSB-first bits [..., B] -> ints [...] (inverse of :func:`int_to_bits`)."""
    b = np.asarray(bits, dtype=np.int64)
    return (b << np.arange(b.shape[-1] - 1, -1, -1)).sum(-1)


@dataclass(frozen=True)
class KeypointCodec:
    """Quantiser and layer packer of the meeting keypoints (see the module notes).

    :param size: Frame side in pixels.
    :param bits: Bits per coordinate delta.
    :param msb_bits: Of those, how many go in the protected layer 1.
    :param range_px: Delta clipping range ``±R``; default ``size / 4``.
    :param ref_bits: Bits per absolute reference coordinate.
    """

    size: int = 64
    bits: int = 7
    msb_bits: int = 3
    range_px: float | None = None
    ref_bits: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.msb_bits <= self.bits <= 16:
            raise ConfigError(f"keypoint bits must satisfy 1 <= msb_bits <= bits <= 16, got "
                              f"msb_bits={self.msb_bits}, bits={self.bits}")

    @property
    def delta_range(self) -> float:
        return float(self.range_px if self.range_px is not None else self.size / 4)

    @property
    def step(self) -> float:
        """Quantisation step of a delta, pixels."""
        return 2 * self.delta_range / 2 ** self.bits

    @property
    def layer_bits(self) -> tuple[int, int]:
        """Bits per frame of layer 1 and layer 2."""
        return 1 + _COORDS * self.msb_bits, _COORDS * (self.bits - self.msb_bits)

    @property
    def reference_bits(self) -> int:
        return _COORDS * self.ref_bits

    # ---- reference landmarks
    def encode_reference(self, landmarks: np.ndarray) -> np.ndarray:
        """Absolute landmarks [12, 2] -> bits [reference_bits]."""
        levels = 2 ** self.ref_bits
        q = np.clip(np.floor(np.asarray(landmarks, float) / self.size * levels), 0, levels - 1)
        return int_to_bits(q.reshape(-1), self.ref_bits).reshape(-1)

    def decode_reference(self, bits: np.ndarray) -> np.ndarray:
        """Bits [reference_bits] -> landmarks [12, 2] (float32, cell centres)."""
        q = bits_to_int(np.asarray(bits).reshape(_COORDS, self.ref_bits))
        return ((q + 0.5) * self.size / 2 ** self.ref_bits).reshape(12, 2).astype(np.float32)

    # ---- per-frame keypoints
    def quantize(self, landmarks: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Landmarks [T, 12, 2] -> delta indices [T, 24] (ints in [0, 2**bits))."""
        r = self.delta_range
        d = np.clip(np.asarray(landmarks, float) - reference, -r, r - 1e-9)
        q = np.floor((d + r) / self.step).astype(np.int64)
        return np.clip(q, 0, 2 ** self.bits - 1).reshape(len(d), _COORDS)

    def dequantize(self, indices: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Delta indices [T, 24] -> landmarks [T, 12, 2]."""
        d = -self.delta_range + (np.asarray(indices, float) + 0.5) * self.step
        return (reference + d.reshape(-1, 12, 2)).astype(np.float32)

    def encode(self, landmarks: np.ndarray, present: np.ndarray, reference: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks [T, 12, 2] + face-present flags [T] -> (layer 1 [T, L1], layer 2
        [T, L2]) uint8 bits. Frames without a face carry flag 0 and the reference."""
        present = np.asarray(present, bool)
        lm = np.where(present[:, None, None], landmarks, reference[None])
        q = self.quantize(lm, reference)
        lsb = self.bits - self.msb_bits
        msb_bits = int_to_bits(q >> lsb, self.msb_bits).reshape(len(q), -1)
        lsb_bits = int_to_bits(q & ((1 << lsb) - 1), lsb).reshape(len(q), -1)
        return np.concatenate([present[:, None].astype(np.uint8), msb_bits], 1), lsb_bits

    def decode(self, layer1: np.ndarray, layer2: np.ndarray, erased1: np.ndarray,
               erased2: np.ndarray, reference: np.ndarray,
               previous: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
        """Received layers [T, L1], [T, L2] and their erasure flags [T] -> landmarks
        [T, 12, 2] and a status per frame (see the module notes). ``previous``: keypoints
        to reuse before the first good frame (default: ``reference``)."""
        lsb = self.bits - self.msb_bits
        last = np.asarray(reference if previous is None else previous, np.float32)
        out, status = [], []
        for t in range(len(layer1)):
            if erased1[t] or layer1[t, 0] == 0:
                status.append("reused_lost" if erased1[t] else "reused_no_face")
                out.append(last)
                continue
            msb = bits_to_int(np.asarray(layer1[t, 1:]).reshape(_COORDS, self.msb_bits))
            if erased2[t] or lsb == 0:
                low = np.full(_COORDS, (1 << lsb) >> 1 if lsb else 0)
                status.append("coarse" if lsb else "ok")
            else:
                low = bits_to_int(np.asarray(layer2[t]).reshape(_COORDS, lsb))
                status.append("ok")
            last = self.dequantize(((msb << lsb) | low)[None], reference)[0]
            out.append(last)
        return np.stack(out) if out else np.zeros((0, 12, 2), np.float32), status
