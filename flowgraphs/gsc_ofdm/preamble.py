"""The burst preamble: four repetitions of a half-symbol, the last one negated.

``p = [a, a, a, -a]`` where ``a`` (``fft_size / 2`` samples) is the first half of an OFDM
symbol that uses only the even FFT bins inside the occupied band, loaded with QPSK values
from a maximal-length LFSR sequence (a pseudo-random sequence has a thumbtack ambiguity
function, so timing and frequency offsets cannot trade for each other as they do with a
chirp such as Zadoff-Chu). Properties the receiver uses:

* **detection and fractional CFO** (Schmidl & Cox): samples ``L = N/2`` apart are equal over
  ``2L`` samples, so ``sum conj(r[d+m]) r[d+m+L]`` has magnitude close to the energy and
  phase ``pi * cfo`` (CFO in subcarrier spacings, unambiguous within +-1); the sign flip of
  the last quarter makes the metric peak sharply at the true start instead of a plateau;
* **integer CFO**: the spectrum of ``a`` (an ``L``-point DFT, one bin per two subcarriers)
  is known, so an even frequency offset appears as a cyclic shift of its bins; a
  differential correlation across bins finds it whatever the timing error;
* **fine timing**: the cross-correlation with ``p`` has one main peak (sidelobes at
  +-L samples are 1/4 of it);
* **residual CFO**: ``a`` repeats at lag ``N`` as well (seg 1/3, -seg 2/4).

Its power per sample equals that of a data OFDM symbol (``F_eff / N`` with unit-energy REs
and a unitary IFFT), so Es/N0 means the same on the preamble and on the data.
"""

from __future__ import annotations

import numpy as np

from .grid import GridLayout

__all__ = ["Preamble"]


def _lfsr_bits(count: int, seed: int) -> np.ndarray:
    """``count`` bits of the m-sequence of x^7 + x^6 + 1 (period 127) from state ``seed``."""
    state = seed & 0x7F or 1
    out = np.empty(count, np.int64)
    for i in range(count):
        bit = ((state >> 6) ^ (state >> 5)) & 1
        out[i] = state & 1
        state = ((state << 1) | bit) & 0x7F
    return out


class Preamble:
    """Preamble of a :class:`~flowgraphs.gsc_ofdm.grid.GridLayout` (see module docstring).

    :param layout: The resource grid layout (its ``fft_size`` must be even).
    :param seed: Initial state (non-zero, 7 bits) of the LFSR that draws the QPSK values.

    >>> pre = Preamble(GridLayout.load())
    >>> pre.samples.shape, pre.half
    ((144,), 36)
    >>> bool(np.allclose(pre.samples[:36], pre.samples[36:72]))
    True
    """

    def __init__(self, layout: GridLayout, seed: int = 0x5B) -> None:
        n = layout.fft_size
        if n % 2:
            raise ValueError("the preamble needs an even FFT size")
        self.fft_size = n
        self.half = n // 2
        eff = np.asarray(layout.effective_subcarriers)
        # Centered bin c is DFT bin (c - N/2) mod N; even DFT bins repeat with period N/2.
        dft_bins = (eff - n // 2) % n
        used = eff[dft_bins % 2 == 0]
        m = len(used)
        bits = _lfsr_bits(2 * m, seed)
        qpsk = ((1 - 2 * bits[0::2]) + 1j * (1 - 2 * bits[1::2])) / np.sqrt(2)
        grid = np.zeros(n, np.complex128)
        grid[used] = qpsk * np.sqrt(len(eff) / m)
        sym = np.fft.ifft(np.fft.ifftshift(grid)) * np.sqrt(n)
        a = sym[: self.half]
        #: the repeated half-symbol ``a`` (complex128)
        self.segment = a
        #: L-point DFT of ``a`` (bin j = subcarrier 2j in DFT order)
        self.segment_fft = np.fft.fft(a)
        #: bins of ``segment_fft`` that carry energy
        self.used_bins = np.flatnonzero(np.abs(self.segment_fft) > 1e-6)
        #: the preamble samples ``[a, a, a, -a]`` (complex64)
        self.samples = np.concatenate([a, a, a, -a]).astype(np.complex64)
        self.length = len(self.samples)
        self.energy = float(np.sum(np.abs(self.samples) ** 2))
