"""Bit-order helpers: bytes <-> bits, MSB first inside every byte (the project convention)."""

from __future__ import annotations

import numpy as np

__all__ = ["bytes_to_bits", "bits_to_bytes"]


def bytes_to_bits(data: bytes | np.ndarray) -> np.ndarray:
    """``b"\\x80"`` -> ``[1, 0, 0, 0, 0, 0, 0, 0]`` (uint8 array, MSB first)."""
    arr = np.frombuffer(bytes(data), dtype=np.uint8)
    return np.unpackbits(arr, bitorder="big")


def bits_to_bytes(bits: np.ndarray) -> bytes:
    """Inverse of :func:`bytes_to_bits`; the bit count must be a multiple of 8."""
    bits = np.asarray(bits).astype(np.uint8).ravel()
    if bits.size % 8:
        raise ValueError(f"{bits.size} bits do not fill whole bytes")
    if bits.size and bits.max() > 1:
        raise ValueError("bits must be 0 or 1")
    return np.packbits(bits, bitorder="big").tobytes()
