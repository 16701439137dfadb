"""Streaming channel emulator: multipath, timing and sampling offsets, CFO and AWGN.

Applied in this order to a complex baseband stream, keeping its state across chunks:

1. **multipath**: a tapped-delay-line profile (``awgn`` = one path, ``tdl-a`` .. ``tdl-e`` =
   3GPP TR 38.901 Table 7.7.2 power-delay profiles scaled by ``delay_spread_s``) turned into
   an FIR filter with windowed-sinc fractional delays; Rayleigh path gains (a specular LOS
   path of random phase first for TDL-D/E) are drawn again at every burst start passed to
   :meth:`process` (block fading per frame) or kept (``fading="static"``). The average
   channel energy is 1;
2. **timing and sampling offsets**: the output sample ``n`` is the input at time
   ``delay + n (1 + sfo_ppm 1e-6)`` (16-tap windowed-sinc interpolation);
3. **CFO** ``cfo`` in subcarrier spacings: ``exp(j 2 pi cfo n / fft_size)``, phase
   continuous across chunks;
4. **AWGN** of variance ``no = 10^(-snr_db/10)`` per complex sample (``no/2`` per real part),
   so that with unit-energy REs and a unitary IFFT the SNR per RE is Es/N0 = ``snr_db``
   (gsc's convention).

>>> ch = ChannelEmulator(snr_db=None, cfo=0.0)
>>> x = np.ones(8, np.complex64)
>>> bool(np.allclose(ch.process(x), x))
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["ChannelEmulator", "TDL_PROFILES", "tdl_profile"]

_TAPS = 24  # windowed-sinc length of fractional delays (paths and resampler)

#: TR 38.901 Table 7.7.2-1..5: normalised delays, powers (dB) and whether the first path is
#: specular (LOS: fixed amplitude, random phase; TDL-D/E) rather than Rayleigh.
TDL_PROFILES: dict[str, tuple[list[float], list[float], bool]] = {
    "tdl-a": (
        [0.0, 0.3819, 0.4025, 0.5868, 0.4610, 0.5375, 0.6708, 0.5750, 0.7618, 1.5375,
         1.8978, 2.2242, 2.1718, 2.4942, 2.5119, 3.0582, 4.0810, 4.4579, 4.5695, 4.7966,
         5.0066, 5.3043, 9.6586],
        [-13.4, 0.0, -2.2, -4.0, -6.0, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7, -12.4,
         -15.2, -10.8, -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7],
        False,
    ),
    "tdl-b": (
        [0.0, 0.1072, 0.2155, 0.2095, 0.2870, 0.2986, 0.3752, 0.5055, 0.3681, 0.3697,
         0.5700, 0.5283, 1.1021, 1.2756, 1.5474, 1.7842, 2.0169, 2.8294, 3.0219, 3.6187,
         4.1067, 4.2790, 4.7834],
        [0.0, -2.2, -4.0, -3.2, -9.8, -1.2, -3.4, -5.2, -7.6, -3.0, -8.9, -9.0, -4.8, -5.7,
         -7.5, -1.9, -7.6, -12.2, -9.8, -11.4, -14.9, -9.2, -11.3],
        False,
    ),
    "tdl-c": (
        [0.0, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935,
         0.8213, 0.9336, 1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077,
         6.3065, 6.6374, 7.0427, 8.6523],
        [-4.4, -1.2, -3.5, -5.2, -2.5, 0.0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1,
         -6.8, -8.7, -13.2, -13.9, -13.9, -15.8, -17.1, -16.0, -15.7, -21.6, -22.8],
        False,
    ),
    "tdl-d": (
        [0.0, 0.0, 0.035, 0.612, 1.363, 1.405, 1.804, 2.596, 1.775, 4.042, 7.937, 9.424,
         9.708, 12.525],
        [-0.2, -13.5, -18.8, -21.0, -22.8, -17.9, -20.1, -21.9, -22.9, -27.8, -23.6, -24.8,
         -30.0, -27.7],
        True,
    ),
    "tdl-e": (
        [0.0, 0.0, 0.5133, 0.5440, 0.5630, 0.5440, 0.7112, 1.9092, 1.9293, 1.9589, 2.6426,
         3.7136, 5.4524, 12.0034, 20.6519],
        [-0.03, -22.03, -15.8, -18.1, -19.8, -22.9, -22.4, -18.6, -20.8, -22.6, -22.3,
         -25.6, -20.2, -29.8, -29.2],
        True,
    ),
}


def tdl_profile(name: str, delay_spread_s: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Delays (s), linear powers normalised to sum 1, and whether path 0 is LOS.

    ``awgn`` is one path of power 1 at delay 0.
    """
    name = name.lower()
    if name == "awgn":
        return np.zeros(1), np.ones(1), True
    if name not in TDL_PROFILES:
        raise ValueError(f"unknown channel {name!r}; choose awgn or {', '.join(TDL_PROFILES)}")
    delays, powers_db, los = TDL_PROFILES[name]
    p = 10.0 ** (np.asarray(powers_db) / 10.0)
    return np.asarray(delays) * delay_spread_s, p / p.sum(), los


def _windowed_sinc(frac: np.ndarray, taps: int, beta: float = 4.5) -> np.ndarray:
    """Interpolation weights [..., taps] for a delay ``frac`` in [0, 1) (Kaiser window).

    Weight ``j`` multiplies the input ``floor(t) - taps/2 + 1 + j``.
    """
    half = taps // 2
    k = np.arange(-half + 1, half + 1, dtype=np.float64)  # taps positions
    x = k[None, :] - np.asarray(frac, np.float64).reshape(-1, 1)
    arg = np.clip(1.0 - (x / half) ** 2, 0.0, None)
    win = np.i0(beta * np.sqrt(arg)) / np.i0(beta)
    h = np.sinc(x) * win
    return h / h.sum(axis=-1, keepdims=True)


class ChannelEmulator:
    """Streaming channel emulator (see the module docstring).

    :param snr_db: Es/N0 in dB; ``None`` for no noise.
    :param cfo: Carrier frequency offset in subcarrier spacings.
    :param fft_size: FFT size that defines the subcarrier spacing (``cfo / fft_size`` cycles
        per sample).
    :param channel: ``awgn`` or ``tdl-a`` .. ``tdl-e``.
    :param delay_spread_s: RMS delay spread for TDL profiles.
    :param samp_rate_hz: Sample rate (to turn delays into samples).
    :param delay: Timing offset in samples (fractional part by interpolation).
    :param sfo_ppm: Sampling frequency offset in parts per million.
    :param fading: ``block`` (new path gains at every burst start given to :meth:`process`)
        or ``static`` (one realisation for the whole stream).
    :param seed: Seed of the noise and fading.

    :input x: complex samples (one chunk).
    :output: the channel output for that chunk (about ``len(x) / (1 + sfo)`` samples).
    """

    def __init__(
        self,
        snr_db: float | None = 20.0,
        cfo: float = 0.0,
        fft_size: int = 72,
        channel: str = "awgn",
        delay_spread_s: float = 100e-9,
        samp_rate_hz: float = 2.16e6,
        delay: float = 0.0,
        sfo_ppm: float = 0.0,
        fading: str = "block",
        seed: int = 0,
    ) -> None:
        if fading not in ("block", "static"):
            raise ValueError("fading must be 'block' or 'static'")
        if delay < 0:
            raise ValueError("delay must be >= 0 samples")
        self.rng = np.random.default_rng(seed)
        self.channel = channel.lower()
        self.fading = fading
        self.set_snr_db(snr_db)
        self.cfo = float(cfo)
        self.fft_size = int(fft_size)
        self._phase = 0.0
        # multipath FIR
        delays_s, powers, los = tdl_profile(self.channel, delay_spread_s)
        self._path_delay = delays_s * samp_rate_hz
        self._path_power = powers
        self._los = bool(los) and self.channel != "awgn"
        self._multipath = self.channel != "awgn"
        self._fir_len = int(np.ceil(self._path_delay.max())) + _TAPS if self._multipath else 1
        self._fir_state = np.zeros(self._fir_len - 1, np.complex64)
        self._taps = np.ones(1, np.complex64)
        if self._multipath:
            self._taps = self._draw_taps()
        # resampler (timing + sampling offset)
        self._ratio = 1.0 + float(sfo_ppm) * 1e-6
        self._resample = bool(sfo_ppm) or (delay % 1.0) != 0.0
        self._int_delay = int(np.floor(delay))
        self._interp_taps = _TAPS
        half = self._interp_taps // 2
        self._hist = np.zeros(self._int_delay + (half if self._resample else 0), np.complex64)
        self._t = float(delay % 1.0) + (half - 1 if self._resample else 0.0)
        self._table_phases = 512
        self._table = _windowed_sinc(
            np.arange(self._table_phases) / self._table_phases, self._interp_taps
        ).astype(np.complex64)
        self._table_rev = np.ascontiguousarray(self._table[:, ::-1])
        self._rot_w = 0.0
        self._rot = np.zeros(0, np.complex64)
        self.samples_in = 0
        self.samples_out = 0

    def set_snr_db(self, snr_db: float | None) -> None:
        """Change Es/N0 (``None`` = no noise)."""
        self.snr_db = snr_db
        self.noise_var = 0.0 if snr_db is None else 10.0 ** (-float(snr_db) / 10.0)

    def _draw_taps(self) -> np.ndarray:
        n = len(self._path_power)
        g = (self.rng.standard_normal(n) + 1j * self.rng.standard_normal(n)) / np.sqrt(2)
        if self._los:  # specular first path: unit amplitude, random phase
            g[0] = np.exp(2j * np.pi * self.rng.random())
        amp = g * np.sqrt(self._path_power)
        half = _TAPS // 2
        pos = self._path_delay + half  # keep the windowed sinc causal
        taps = np.zeros(self._fir_len, np.complex128)
        base = np.floor(pos).astype(int)
        w = _windowed_sinc(pos - base, _TAPS)  # [paths, taps]: for base-half+1 .. base+half
        idx = (base - half + 1)[:, None] + np.arange(_TAPS)[None, :]
        ok = (idx >= 0) & (idx < self._fir_len)
        np.add.at(taps, idx[ok], (amp[:, None] * w)[ok])
        return taps.astype(np.complex64)

    @property
    def taps(self) -> np.ndarray:
        """Current multipath FIR taps (the main path of ``awgn`` is the single tap 1)."""
        return self._taps

    @property
    def group_delay(self) -> int:
        """Samples of latency the emulator adds on top of ``delay`` (multipath FIR)."""
        return _TAPS // 2 if self._multipath else 0

    def _fir(self, x: np.ndarray, bursts: list[int] | None) -> np.ndarray:
        if not self._multipath:
            return x
        xe = np.concatenate([self._fir_state, x])
        cuts = sorted(b for b in (bursts or []) if 0 <= b < len(x))
        if self.fading == "static":
            cuts = []
        out = np.empty(len(x), np.complex64)
        edges = [0] + cuts + [len(x)]
        m = self._fir_len - 1
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if a in cuts:
                self._taps = self._draw_taps()
            if b > a:
                out[a:b] = np.convolve(xe[a : b + m], self._taps, mode="valid")
        self._fir_state = xe[len(xe) - m :] if m else self._fir_state
        return out

    def _resampler(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._hist, x])
        if not self._resample:
            keep = self._int_delay
            out, self._hist = buf[: len(buf) - keep], buf[len(buf) - keep :]
            return out
        half = self._interp_taps // 2
        ratio = self._ratio
        # output n reads inputs floor(t_n) - half + 1 .. floor(t_n) + half (+1 for drift)
        last = len(buf) - half - 2
        n_out = int(np.floor((last - self._t) / ratio)) + 1 if last >= self._t else 0
        if n_out <= 0:
            self._hist = buf
            return np.zeros(0, np.complex64)
        out = np.empty(n_out, np.complex64)
        # Blocks short enough that the sampling offset moves the read position by at most
        # 0.005 samples inside one are filtered with one fractional-delay FIR each.
        drift = abs(ratio - 1.0)
        blk = n_out if drift == 0 else int(max(64, min(n_out, 0.005 / drift)))
        for n0 in range(0, n_out, blk):
            nb = min(blk, n_out - n0)
            tb = self._t + ratio * n0
            base = int(np.floor(tb))
            ph = int((tb - base) * self._table_phases)
            if ph >= self._table_phases:
                base, ph = base + 1, 0
            seg = buf[base - half + 1 : base + half + nb]
            out[n0 : n0 + nb] = np.convolve(seg, self._table_rev[ph], mode="valid")
        t_next = self._t + ratio * n_out
        drop = max(0, min(int(np.floor(t_next)) - half + 1, len(buf)))
        self._hist = buf[drop:]
        self._t = t_next - drop
        return out

    def process(self, x: np.ndarray, bursts: list[int] | None = None) -> np.ndarray:
        """Apply the channel to one chunk; ``bursts``: chunk offsets where bursts start."""
        x = np.asarray(x, np.complex64)
        self.samples_in += len(x)
        y = self._fir(x, bursts)
        y = self._resampler(y)
        n = len(y)
        if n and self.cfo:
            w = 2.0 * np.pi * self.cfo / self.fft_size
            if n > len(self._rot) or self._rot_w != w:  # rotation table exp(j w k)
                self._rot = np.exp(1j * w * np.arange(max(n, 1 << 15))).astype(np.complex64)
                self._rot_w = w
            y = y * self._rot[:n] * np.complex64(np.exp(1j * self._phase))
            self._phase = float((self._phase + w * n) % (2.0 * np.pi))
        if n and self.noise_var:
            z = self.rng.standard_normal(2 * n, dtype=np.float32).view(np.complex64)
            y = y + z * np.float32(np.sqrt(self.noise_var / 2.0))
        self.samples_out += n
        return y.astype(np.complex64, copy=False)
