"""Nt x Nr streaming channel with one realisation per burst, and its ZeroMQ message.

A *realisation* is ``taps`` [Nr, Nt, L] (complex; tap ``l`` is a delay of ``l`` samples)
plus an optional frequency-flat RIS cascade gain ``ris`` [Nr, Nt] added at delay 0:
``y_r[n] = sum_t (taps[r, t] * x_t)[n] + ris[r, t] x_t[n]``, then a common CFO and AWGN
of variance ``no = 10^(-snr_db/10)`` per complex sample and RX antenna (with unit-energy
REs in total over the TX antennas and ``E|h_rt|^2 = 1`` this is Es/N0 per RE, gsc's
convention). :class:`MimoChannel` applies a new realisation from each burst start on and
keeps the FIR state across chunks.

Realisations come from :class:`TdlRealisations` (3GPP TDL power-delay profiles of
:mod:`.channel`, independent Rayleigh taps per antenna pair, a deterministic function of
``(seed, seq)`` so a genie precoder can recompute the one a burst will see) or from the ML
side over ZeroMQ (:func:`channel_frame`: kind ``CHANNEL``, complex64 ``[Nr, Nt, 1 + L]``,
column 0 the RIS gain, columns 1.. the taps; ``seq`` = the frame the realisation is for).

>>> ch = MimoChannel(2, 2, snr_db=None)
>>> taps = np.zeros((2, 2, 2), np.complex64); taps[0, 1, 1] = 1; taps[1, 0, 0] = 2
>>> y = ch.process(np.ones((2, 4), np.complex64), [(0, taps, None)])
>>> y.real.tolist()
[[0.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]]
"""

from __future__ import annotations

import numpy as np

from bridge.wire import Frame, PayloadKind, WireError

from .channel import ChannelEmulator

__all__ = [
    "MAX_TAPS",
    "MimoChannel",
    "TdlRealisations",
    "channel_frame",
    "parse_channel_frame",
]

#: Longest tap vector a realisation may have (samples).
MAX_TAPS = 256


def channel_frame(taps: np.ndarray, ris: np.ndarray | None = None, seq: int = 0) -> Frame:
    """The ZeroMQ message of one realisation (see the module docstring)."""
    taps = np.asarray(taps, np.complex64)
    if taps.ndim != 3 or not 1 <= taps.shape[2] <= MAX_TAPS:
        raise ValueError(f"taps must be [Nr, Nt, 1..{MAX_TAPS}], got {taps.shape}")
    arr = np.zeros(taps.shape[:2] + (1 + taps.shape[2],), np.complex64)
    arr[..., 1:] = taps
    if ris is not None:
        arr[..., 0] = np.asarray(ris, np.complex64).reshape(taps.shape[:2])
    return Frame(PayloadKind.CHANNEL, arr, seq=int(seq))


def parse_channel_frame(
    frame: Frame, num_rx: int, num_tx: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """(seq, taps [Nr, Nt, L], ris [Nr, Nt]) of a realisation message; :class:`WireError`
    (cause ``kind``, ``dtype``, ``shape`` or ``value``) when it does not fit."""
    if frame.kind != PayloadKind.CHANNEL:
        raise WireError(f"expected CHANNEL, got {frame.kind.name}", "kind")
    arr = frame.payload
    if not isinstance(arr, np.ndarray) or arr.dtype != np.complex64:
        raise WireError("a channel realisation must be a complex64 array", "dtype")
    if arr.ndim != 3 or arr.shape[:2] != (num_rx, num_tx) or not 2 <= arr.shape[2] <= MAX_TAPS + 1:
        raise WireError(f"realisation shape {arr.shape} is not [{num_rx}, {num_tx}, 1+L]", "shape")
    if not np.isfinite(arr).all():
        raise WireError("realisation holds NaN or Inf", "value")
    return frame.seq, arr[..., 1:], arr[..., 0]


class TdlRealisations:
    """Block-fading TDL realisations per frame number, independent per antenna pair.

    :param profile: ``awgn`` or ``tdl-a`` .. ``tdl-e`` (TR 38.901 power-delay profiles).
    :param num_rx: RX antennas.
    :param num_tx: TX antennas.
    :param delay_spread_s: RMS delay spread.
    :param samp_rate_hz: Sample rate.
    :param seed: Seed; realisation ``seq`` uses the generator seeded ``[seed, seq, r, t]``.

    ``taps(seq)`` -> [Nr, Nt, L] complex64 (``E|h|^2 = 1`` per pair; the windowed-sinc
    fractional delays add a fixed latency of 12 samples for TDL profiles; ``awgn`` is
    ``sqrt(Nt) I``, unit received power per RX antenna, as in gsc_phy).
    """

    def __init__(
        self,
        profile: str,
        num_rx: int,
        num_tx: int,
        delay_spread_s: float = 100e-9,
        samp_rate_hz: float = 2.16e6,
        seed: int = 0,
    ) -> None:
        self.profile = profile.lower()
        self.num_rx, self.num_tx = int(num_rx), int(num_tx)
        self.delay_spread_s = float(delay_spread_s)
        self.samp_rate_hz = float(samp_rate_hz)
        self.seed = int(seed)
        # one emulator holds the profile's FIR layout; each draw reseeds its generator, so
        # taps(seq) is the first realisation of ChannelEmulator(seed=[seed, seq, r, t])
        self._emu = ChannelEmulator(snr_db=None, channel=self.profile,
                                    delay_spread_s=self.delay_spread_s,
                                    samp_rate_hz=self.samp_rate_hz, seed=self.seed)

    def taps(self, seq: int) -> np.ndarray:
        if self.profile == "awgn":  # sqrt(Nt) I: unit received power per RX antenna
            eye = np.eye(self.num_rx, self.num_tx) * np.sqrt(self.num_tx)
            return eye[:, :, None].astype(np.complex64)
        out = np.empty((self.num_rx, self.num_tx, len(self._emu.taps)), np.complex64)
        for r in range(self.num_rx):
            for t in range(self.num_tx):
                self._emu.rng = np.random.default_rng([self.seed, int(seq), r, t])
                out[r, t] = self._emu._draw_taps()
        return out


class MimoChannel:
    """Streaming Nt -> Nr channel (see the module docstring).

    :param num_tx: TX antennas.
    :param num_rx: RX antennas.
    :param snr_db: Es/N0 in dB (``None``: no noise).
    :param cfo: Carrier frequency offset in subcarrier spacings (common to all antennas).
    :param fft_size: FFT size that defines the subcarrier spacing.
    :param seed: Seed of the noise.

    :input x: [Nt, n] samples of one chunk.
    :input bursts: ``[(offset, taps, ris)]``: a realisation that applies from chunk offset
        ``offset`` on (``ris`` may be ``None``).
    :output: [Nr, n] samples.
    """

    def __init__(
        self,
        num_tx: int,
        num_rx: int,
        snr_db: float | None = 20.0,
        cfo: float = 0.0,
        fft_size: int = 72,
        seed: int = 0,
    ) -> None:
        self.num_tx, self.num_rx = int(num_tx), int(num_rx)
        self.rng = np.random.default_rng(seed)
        self.set_snr_db(snr_db)
        self.cfo = float(cfo)
        self.fft_size = int(fft_size)
        self._phase = 0.0
        self._state = np.zeros((self.num_tx, MAX_TAPS - 1), np.complex64)
        self._taps = np.zeros((self.num_rx, self.num_tx, MAX_TAPS), np.complex64)
        self._taps[:, :, 0] = np.eye(self.num_rx, self.num_tx)  # identity until a burst
        self.samples_in = 0
        self.samples_out = 0

    def set_snr_db(self, snr_db: float | None) -> None:
        """Change Es/N0 (``None`` = no noise)."""
        self.snr_db = snr_db
        self.noise_var = 0.0 if snr_db is None else 10.0 ** (-float(snr_db) / 10.0)

    def set_realisation(self, taps: np.ndarray, ris: np.ndarray | None = None) -> None:
        """Use ``taps`` [Nr, Nt, L] (+ RIS gain [Nr, Nt]) from the next sample on."""
        taps = np.asarray(taps, np.complex64)
        if taps.shape[:2] != (self.num_rx, self.num_tx) or not 1 <= taps.shape[2] <= MAX_TAPS:
            raise ValueError(f"taps shape {taps.shape} != [{self.num_rx}, {self.num_tx}, L]")
        full = np.zeros((self.num_rx, self.num_tx, MAX_TAPS), np.complex64)
        full[:, :, : taps.shape[2]] = taps
        if ris is not None:
            full[:, :, 0] += np.asarray(ris, np.complex64).reshape(self.num_rx, self.num_tx)
        self._taps = full

    def process(self, x: np.ndarray, bursts: list | None = None) -> np.ndarray:
        x = np.asarray(x, np.complex64)
        if x.ndim != 2 or x.shape[0] != self.num_tx:
            raise ValueError(f"input must be [{self.num_tx}, n], got {x.shape}")
        n = x.shape[1]
        self.samples_in += n
        m = MAX_TAPS - 1
        xe = np.concatenate([self._state, x], axis=1)
        y = np.zeros((self.num_rx, n), np.complex64)
        events = sorted((b for b in (bursts or []) if 0 <= b[0] < n), key=lambda b: b[0])
        edges = [0] + [b[0] for b in events] + [n]
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            if i > 0:
                self.set_realisation(events[i - 1][1], events[i - 1][2])
            if b <= a:
                continue
            used = np.flatnonzero(np.abs(self._taps).sum(axis=(0, 1)) > 0)
            last = int(used[-1]) + 1 if len(used) else 1
            for r in range(self.num_rx):
                for t in range(self.num_tx):
                    h = self._taps[r, t, :last]
                    if h.any():
                        seg = xe[t, a + m - (last - 1) : b + m]
                        y[r, a:b] += np.convolve(seg, h, mode="valid")
        self._state = xe[:, xe.shape[1] - m :]
        if n and self.cfo:
            w = 2.0 * np.pi * self.cfo / self.fft_size
            y = y * np.exp(1j * (self._phase + w * np.arange(n))).astype(np.complex64)
            self._phase = float((self._phase + w * n) % (2.0 * np.pi))
        if n and self.noise_var:
            z = self.rng.standard_normal((self.num_rx, 2 * n), dtype=np.float32).view(np.complex64)
            y = y + z * np.float32(np.sqrt(self.noise_var / 2.0))
        self.samples_out += n
        return y.astype(np.complex64, copy=False)
