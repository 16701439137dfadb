"""Burst transmitter: data symbols -> resource grid with pilots -> IFFT + CP -> preamble + burst.

The OFDM modulation is Sionna's ``OFDMModulator`` convention (``ifftshift``, unitary IFFT,
cyclic prefix = the last ``cp_length`` samples), so a burst's data part is sample for sample
what Sionna would produce from the same grid.

A *burst* is ``preamble (2N samples) + num_ofdm_symbols x (CP + N)`` samples. A sample
stream is bursts separated by gaps of zeros (:class:`BurstStream`).

>>> from flowgraphs.gsc_ofdm.grid import GridLayout
>>> lay = GridLayout.load()
>>> tx = BurstModulator(lay)
>>> x = np.zeros((1, lay.num_data_symbols), np.complex64)
>>> tx.modulate(x).shape, tx.burst_length
((2328,), 2328)
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .grid import GridLayout
from .preamble import Preamble

__all__ = ["BurstModulator", "BurstStream", "ofdm_modulate"]


def ofdm_modulate(grid: np.ndarray, cp_length: int) -> np.ndarray:
    """Grid [..., T, N] (bin 0 = lowest frequency) -> time signal [..., T*(N+cp)].

    Unitary IFFT after ``ifftshift``, cyclic prefix prepended to each symbol (Sionna's
    ``OFDMModulator``).
    """
    n = grid.shape[-1]
    td = np.fft.ifft(np.fft.ifftshift(grid, axes=-1), axis=-1) * np.sqrt(n)
    if cp_length:
        td = np.concatenate([td[..., n - cp_length :], td], axis=-1)
    return td.reshape(td.shape[:-2] + (-1,)).astype(np.complex64)


class BurstModulator:
    """Data symbols of one frame -> one time-domain burst (SISO).

    :param layout: The grid layout (one stream).

    :input data: [S, Nd] or [B, S, Nd] data symbols (S = 1).
    :output: [burst_length] or [B, burst_length] complex64 samples.
    """

    def __init__(self, layout: GridLayout) -> None:
        if layout.num_streams != 1:
            raise NotImplementedError("the streaming modem carries one stream (SISO) for now")
        self.layout = layout
        self.preamble = Preamble(layout)
        self.burst_length = self.preamble.length + layout.num_ofdm_symbols * layout.symbol_length

    @property
    def data_shape(self) -> tuple[int, int]:
        """Expected shape of one frame's data symbols: (streams, data symbols)."""
        return (self.layout.num_streams, self.layout.num_data_symbols)

    def modulate_grid(self, grid: np.ndarray) -> np.ndarray:
        """A full grid [S, T, N] or [B, S, T, N] -> burst(s) (preamble + OFDM symbols)."""
        grid = np.asarray(grid)
        single = grid.ndim == 3
        if single:
            grid = grid[None]
        body = ofdm_modulate(grid[:, 0], self.layout.cp_length)
        pre = np.broadcast_to(self.preamble.samples, (body.shape[0], self.preamble.length))
        out = np.concatenate([pre, body], axis=-1)
        return out[0] if single else out

    def modulate(self, data: np.ndarray) -> np.ndarray:
        """Data symbols [S, Nd] or [B, S, Nd] -> burst(s)."""
        return self.modulate_grid(self.layout.map(data))


class BurstStream:
    """A sample stream of bursts separated by gaps of zeros, read in chunks of any size.

    :param modulator: The :class:`BurstModulator`.
    :param gap_min: Fewest zeros after each burst.
    :param gap_max: Most zeros after each burst (a uniform random length in between gives
        every burst a random timing).
    :param seed: Seed of the gap lengths.

    ``push(data, seq)`` queues one frame (modulated when its turn comes, so queueing is
    cheap); ``read(n)`` returns up to ``n`` samples and the bursts that start in them as
    ``(offset, length, seq)`` (offsets absolute, from the first sample ever read).
    """

    def __init__(
        self, modulator: BurstModulator, gap_min: int = 64, gap_max: int = 64, seed: int = 0
    ) -> None:
        if gap_min < 0 or gap_max < gap_min:
            raise ValueError("need 0 <= gap_min <= gap_max")
        self.modulator = modulator
        self.gap_min, self.gap_max = int(gap_min), int(gap_max)
        self._rng = np.random.default_rng(seed)
        # (data symbols or a burst, seq, is_burst)
        self._queue: deque[tuple[np.ndarray, int, bool]] = deque()
        self._head: np.ndarray | None = None
        self._head_meta: tuple[int, int] | None = None  # (seq, burst_len) if unread start
        self._pos = 0
        self._queued_samples = 0
        self.samples_out = 0
        self.bursts_out = 0

    def push(self, data: np.ndarray, seq: int = 0) -> None:
        """Queue one frame's data symbols [S, Nd]."""
        data = np.asarray(data, np.complex64)
        if data.shape != self.modulator.data_shape:
            raise ValueError(f"data shape {data.shape} != {self.modulator.data_shape}")
        self._queue.append((data, int(seq), False))
        self._queued_samples += self.modulator.burst_length + self.gap_max

    def push_burst(self, burst: np.ndarray, seq: int = 0) -> None:
        """Queue an already modulated burst."""
        burst = np.asarray(burst, np.complex64)
        self._queue.append((burst, int(seq), True))
        self._queued_samples += len(burst) + self.gap_max

    @property
    def pending(self) -> int:
        """Samples queued and not yet read (gaps counted at ``gap_max``)."""
        head = 0 if self._head is None else len(self._head) - self._pos
        return head + self._queued_samples

    def _next(self) -> None:
        item, seq, is_burst = self._queue.popleft()
        burst = item if is_burst else self.modulator.modulate(item)
        self._queued_samples -= len(burst) + self.gap_max
        gap = int(self._rng.integers(self.gap_min, self.gap_max + 1))
        self._head = np.concatenate([burst, np.zeros(gap, np.complex64)])
        self._head_meta = (seq, len(burst))
        self._pos = 0

    def read(self, n: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """Up to ``n`` samples and the ``(offset, burst_length, seq)`` of bursts starting there."""
        parts: list[np.ndarray] = []
        starts: list[tuple[int, int, int]] = []
        got = 0
        while got < n:
            if self._head is None:
                if not self._queue:
                    break
                self._next()
            if self._pos == 0 and self._head_meta is not None:
                seq, blen = self._head_meta
                starts.append((self.samples_out + got, blen, seq))
                self._head_meta = None
                self.bursts_out += 1
            take = min(n - got, len(self._head) - self._pos)
            parts.append(self._head[self._pos : self._pos + take])
            self._pos += take
            got += take
            if self._pos >= len(self._head):
                self._head = None
        out = np.concatenate(parts) if parts else np.zeros(0, np.complex64)
        self.samples_out += len(out)
        return out, starts
