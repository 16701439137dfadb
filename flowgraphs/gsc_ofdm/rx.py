"""Burst receiver: detection, timing, fractional + integer CFO, channel estimation, equalisation.

:class:`StreamReceiver` takes a complex sample stream in chunks of any size and returns the
bursts it finds as :class:`RxBurst` objects (equalised data symbols and their effective
noise variance, ready for soft demapping). Steps per burst:

1. **detection** (Schmidl & Cox on the ``[a, a, a, -a]`` preamble): the coherence
   ``M(d) = |P(d)|^2 / (E1(d) E2(d))`` of samples ``N/2`` apart over ``N`` samples, computed
   for a whole chunk with cumulative sums; a candidate is a local maximum (over +-N/2
   samples) above ``threshold``;
2. **fractional CFO** from the phase of ``P`` (+-1 subcarrier spacing);
3. **integer CFO, fine timing and verification** jointly: the largest cross-correlation with
   the known preamble over +-``timing_search`` samples and the even frequency offsets
   ``-max_int_cfo .. max_int_cfo`` subcarriers; a candidate whose normalised correlation
   (by the larger energy of the preamble span and of the span after it) is below
   ``xcorr_threshold`` is a false alarm and is dropped;
4. **residual CFO** from the lag-N repetitions of the preamble and the cyclic prefixes of
   all OFDM symbols (unambiguous within +-0.5 of the residual);
5. FFT windows start ``timing_backoff`` samples into the cyclic prefix;
6. **channel estimation**: LS at the pilots, smoothed across frequency by an LMMSE filter
   for a uniform power-delay profile over ``[-2, cp + 2]`` samples, noise variance from the
   part of the LS estimate outside that delay window; across time a common-phase and
   timing-drift model fitted on the pilot symbols (``time_interp="drift"``, for channels
   that are static over a burst) or linear interpolation (``"linear"``);
7. **equalisation** ``x_hat = y h* / |h|^2`` with ``no_eff = (no + err_var) / |h|^2``
   (what Sionna's LMMSE equaliser returns for one stream).

>>> import numpy as np
>>> from flowgraphs.gsc_ofdm.grid import GridLayout
>>> from flowgraphs.gsc_ofdm.tx import BurstModulator
>>> lay = GridLayout.load()
>>> tx, rx = BurstModulator(lay), StreamReceiver(lay)
>>> x = np.ones((1, lay.num_data_symbols), np.complex64)
>>> sig = np.concatenate([np.zeros(100, np.complex64), tx.modulate(x), np.zeros(300, np.complex64)])
>>> [b.start for b in rx.process(sig)]
[100]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .grid import GridLayout
from .preamble import Preamble

__all__ = ["RxBurst", "ChannelEstimator", "StreamReceiver"]

_TWO_PI = 2.0 * np.pi


@dataclass(eq=False)
class RxBurst:
    """One received frame.

    :param start: Absolute index of the first preamble sample in the input stream.
    :param cfo: Estimated carrier frequency offset in subcarrier spacings.
    :param noise_var: Estimated noise variance per RE (= per complex sample).
    :param snr_db: Estimated channel power over noise variance, in dB.
    :param x_hat: [S, Nd] equalised data symbols (complex64).
    :param no_eff: [S, Nd] effective noise variance of each symbol (float32).
    :param metric: Schmidl & Cox coherence at detection (0..1).
    :param xcorr: Normalised cross-correlation with the preamble at the timing peak (0..1).
    :param seq: Burst counter of the receiver (0, 1, ...).
    """

    start: int
    cfo: float
    noise_var: float
    snr_db: float
    x_hat: np.ndarray
    no_eff: np.ndarray
    metric: float = 0.0
    xcorr: float = 0.0
    seq: int = 0
    info: dict = field(default_factory=dict)


class ChannelEstimator:
    """Pilot-based channel estimation and equalisation for a batch of received grids (SISO).

    :param layout: Grid layout.
    :param delay_window: ``(lo, hi)`` delays in samples the frequency smoother keeps
        (relative to the FFT window start; the main path sits at ``timing_backoff``).
    :param time_interp: ``"drift"`` (static channel, common phase and timing drift fitted
        over the pilot symbols) or ``"linear"`` (linear interpolation between pilot symbols).

    :input y: [B, T, F_eff] received REs.
    :output x_hat, no_eff, noise_var, channel_power: [B, Nd], [B, Nd], [B], [B].
    """

    def __init__(
        self, layout: GridLayout, delay_window: tuple[float, float], time_interp: str = "drift"
    ) -> None:
        if time_interp not in ("drift", "linear"):
            raise ValueError("time_interp must be 'drift' or 'linear'")
        self.layout = layout
        self.time_interp = time_interp
        mask = layout.pilot_mask[0]
        self.pilot_syms = np.nonzero(mask.any(axis=1))[0]
        if len(self.pilot_syms) == 0:
            raise ValueError("channel estimation needs pilot OFDM symbols")
        if not mask[self.pilot_syms].all():
            raise NotImplementedError("pilot OFDM symbols must be fully loaded (SISO)")
        pg = layout.pilot_grid()[0]  # [T, F]
        self.x_pilot = pg[self.pilot_syms]  # [P, F]
        if (np.abs(self.x_pilot) < 1e-9).any():
            raise NotImplementedError("zero pilots (multi-stream patterns) are not supported")
        self.inv_pilot = (1.0 / self.x_pilot).astype(np.complex64)
        n = layout.fft_size
        f = (np.asarray(layout.effective_subcarriers) - n // 2).astype(np.float64)
        self.freq = f
        lo, hi = delay_window
        width, centre = hi - lo, 0.5 * (hi + lo)
        d = f[:, None] - f[None, :]
        r = np.exp(-1j * _TWO_PI * d * centre / n) * np.sinc(d * width / n)
        lam, u = np.linalg.eigh(r)
        lam = np.clip(lam, 0.0, None)
        self.lam = lam
        self.u = u.astype(np.complex64)
        self.uh = np.conj(u.T).astype(np.complex64)
        self.rank = int((lam > 1e-2 * lam.max()).sum())
        keep = lam > 1e-2 * lam.max()
        self._noise_proj = np.eye(len(f), dtype=np.complex64) - (
            u[:, keep] @ np.conj(u[:, keep].T)
        ).astype(np.complex64)
        self._u_abs2 = (np.abs(u) ** 2).astype(np.float64)  # [F, F]
        self.data_flat = np.flatnonzero(~mask.reshape(-1))
        self.num_symbols = layout.num_ofdm_symbols

    def __call__(self, y: np.ndarray):
        b, t, nf = y.shape
        p = len(self.pilot_syms)
        h_ls = y[:, self.pilot_syms, :] * self.inv_pilot  # [B, P, F]
        resid = h_ls @ self._noise_proj.T
        noise = (np.abs(resid) ** 2).sum(axis=(1, 2)) / (p * (nf - self.rank))
        noise = np.maximum(noise, 1e-12)
        power = np.maximum((np.abs(h_ls) ** 2).mean(axis=(1, 2)) - noise, 1e-3 * noise)
        # LMMSE smoothing with the covariance power * R: gains g_i = P l_i / (P l_i + no)
        pl = power[:, None] * self.lam[None, :]  # [B, F]
        gain = (pl / (pl + noise[:, None])).astype(np.float32)
        coef = h_ls @ np.conj(self.u)  # coefficients on the eigenvectors: [B, P, F]
        h_p = (coef * gain[:, None, :]) @ self.u.T  # [B, P, F]
        err = (pl * noise[:, None] / (pl + noise[:, None])) @ self._u_abs2.T  # [B, F]
        h_full, err_full = self._interpolate(h_p, err)  # [B, T, F], [B, T, F]
        hd = h_full.reshape(b, t * nf)[:, self.data_flat]
        yd = y.reshape(b, t * nf)[:, self.data_flat]
        ed = err_full.reshape(b, t * nf)[:, self.data_flat]
        g2 = np.maximum(np.abs(hd) ** 2, 1e-9 * power[:, None])
        x_hat = (yd * np.conj(hd) / g2).astype(np.complex64)
        no_eff = ((noise[:, None] + ed) / g2).astype(np.float32)
        return x_hat, no_eff, noise, power

    def _interpolate(self, h_p: np.ndarray, err: np.ndarray):
        b, p, nf = h_p.shape
        t = self.num_symbols
        times = self.pilot_syms.astype(np.float64)
        if p == 1:
            return (
                np.broadcast_to(h_p, (b, t, nf)),
                np.broadcast_to(err[:, None, :], (b, t, nf)),
            )
        # Common phase rate phi (rad/symbol) and timing drift theta (rad/symbol/subcarrier).
        dt = np.diff(times)  # [P-1]
        z = h_p[:, 1:, :] * np.conj(h_p[:, :-1, :])  # [B, P-1, F]
        zs = z.sum(axis=2)  # [B, P-1]
        phi_pair = np.angle(zs) / dt
        w_pair = np.abs(zs) + 1e-30
        phi = (phi_pair * w_pair).sum(axis=1) / w_pair.sum(axis=1)  # [B]
        zr = z * np.exp(-1j * phi[:, None, None] * dt[None, :, None])
        ang = np.angle(zr) / dt[None, :, None]  # [B, P-1, F]
        wk = np.abs(zr)
        f = self.freq
        sw = wk.sum(axis=(1, 2))
        fm = (wk * f).sum(axis=(1, 2)) / sw
        am = (wk * ang).sum(axis=(1, 2)) / sw
        fc = f[None, None, :] - fm[:, None, None]
        theta = (wk * fc * (ang - am[:, None, None])).sum(axis=(1, 2)) / np.maximum(
            (wk * fc**2).sum(axis=(1, 2)), 1e-30
        )
        phi = phi + am - theta * fm
        rate = phi[:, None] + theta[:, None] * f[None, :]  # [B, F] rad per symbol
        t_ref = times.mean()
        rot_p = np.exp(-1j * rate[:, None, :] * (times[None, :, None] - t_ref))
        g_p = h_p * rot_p  # derotated to t_ref: [B, P, F]
        all_t = np.arange(t, dtype=np.float64)
        rot_t = np.exp(1j * rate[:, None, :] * (all_t[None, :, None] - t_ref))  # [B, T, F]
        if self.time_interp == "drift":
            g = g_p.mean(axis=1, keepdims=True)
            err_t = np.broadcast_to((err / p)[:, None, :], (b, t, nf))
            return (g * rot_t).astype(np.complex64), err_t
        # linear interpolation between pilot symbols (nearest outside)
        idx = np.clip(np.searchsorted(times, all_t) - 1, 0, p - 2)
        t0, t1 = times[idx], times[idx + 1]
        wt = np.clip((all_t - t0) / (t1 - t0), 0.0, 1.0)  # [T]
        g = g_p[:, idx, :] * (1 - wt)[None, :, None] + g_p[:, idx + 1, :] * wt[None, :, None]
        scale = ((1 - wt) ** 2 + wt**2)[None, :, None]
        return (g * rot_t).astype(np.complex64), err[:, None, :] * scale


class StreamReceiver:
    """Find, synchronise and demodulate bursts in a complex sample stream (SISO).

    :param layout: The grid layout of the frames.
    :param threshold: Schmidl & Cox coherence that makes a detection candidate (0..1).
    :param xcorr_threshold: Normalised preamble cross-correlation a candidate must reach.
    :param max_int_cfo: Largest integer CFO searched, in subcarrier spacings (0 = none).
    :param timing_backoff: Samples the FFT window starts inside the cyclic prefix.
    :param timing_search: Fine-timing search range around the coarse estimate (samples).
    :param time_interp: Channel interpolation across OFDM symbols (``drift``/``linear``).

    ``process(samples)`` returns the bursts completed by that chunk; ``flush()`` those still
    pending at the end of the stream. :attr:`stats` counts samples, candidates, false alarms
    and bursts.
    """

    def __init__(
        self,
        layout: GridLayout,
        threshold: float = 0.12,
        xcorr_threshold: float = 0.35,
        max_int_cfo: int = 4,
        timing_backoff: int = 2,
        timing_search: int = 24,
        time_interp: str = "drift",
    ) -> None:
        if layout.num_streams != 1:
            raise NotImplementedError("the streaming receiver handles one stream (SISO) for now")
        self.layout = layout
        self.pre = Preamble(layout)
        self.threshold = float(threshold)
        self.xcorr_threshold = float(xcorr_threshold)
        self.max_int_cfo = int(max_int_cfo)
        cp = layout.cp_length
        self.backoff = int(min(max(timing_backoff, 0), cp))
        self.search = int(timing_search)
        n = layout.fft_size
        self.n = n
        self.half = n // 2
        self.sym_len = layout.symbol_length
        self.burst_length = self.pre.length + layout.num_ofdm_symbols * self.sym_len
        self.guard = self.search + 8
        self.estimator = ChannelEstimator(layout, (-2.0, cp + 2.0), time_interp)
        # integer CFO hypotheses (even offsets: the fractional estimate covers +-1)
        shifts = list(range(-(self.max_int_cfo // 2), self.max_int_cfo // 2 + 1))
        self._shifts = np.asarray(shifts, dtype=np.int64)
        mm = np.arange(self.pre.length)
        rot = np.exp(-1j * _TWO_PI * 2 * self._shifts[None, :] * mm[:, None] / n)
        self._tmpl_hyp = (np.conj(self.pre.samples)[:, None] * rot).astype(np.complex64)
        self._sym_offsets = (
            self.pre.length + np.arange(layout.num_ofdm_symbols) * self.sym_len
        )  # relative to the preamble start
        self._fft_cols = np.arange(n)
        self._eff = np.asarray(layout.effective_subcarriers)
        skip = min(2, cp)
        self._cp_idx = (self._sym_offsets[:, None] + np.arange(skip, cp)[None, :]).reshape(-1)
        # history of zeros so that a burst at the very first sample can be timed
        self._buf = np.zeros(self.guard + 2, np.complex64)
        self._base = -(self.guard + 2)  # absolute index of _buf[0]
        self._pos = self.guard + 2  # next detection position (index into _buf)
        self._seq = 0
        self.stats: Counter = Counter()

    # ---------------------------------------------------------------- stream interface
    def process(self, samples: np.ndarray) -> list[RxBurst]:
        """Feed samples; return the bursts completed so far (in stream order)."""
        samples = np.asarray(samples, np.complex64)
        self.stats["samples"] += len(samples)
        self._buf = np.concatenate([self._buf, samples])
        return self._run(final=False)

    def flush(self) -> list[RxBurst]:
        """End of stream: demodulate what is complete, count the rest as incomplete."""
        out = self._run(final=True)
        self._base += len(self._buf)
        self._buf = np.zeros(0, np.complex64)
        self._pos = 0
        return out

    def reset(self) -> None:
        """Forget the stream (keep the statistics)."""
        self._buf = np.zeros(self.guard + 2, np.complex64)
        self._base = -(self.guard + 2)
        self._pos = self.guard + 2

    # ---------------------------------------------------------------- internals
    def _metric(self, buf: np.ndarray, pos: int):
        """S&C P(d) and coherence M(d) for d in [pos, len(buf) - 3L]."""
        lh = self.half
        seg = buf[pos:]
        nd = len(seg) - 3 * lh + 1
        if nd <= 0:
            return None, None
        prod = np.conj(seg[:-lh]) * seg[lh:]
        cp = np.zeros(len(prod) + 1, np.complex128)
        np.cumsum(prod, dtype=np.complex128, out=cp[1:])
        e = np.zeros(len(seg) + 1, np.float64)
        np.cumsum(seg.real.astype(np.float64) ** 2 + seg.imag.astype(np.float64) ** 2, out=e[1:])
        w = 2 * lh
        p = cp[w : w + nd] - cp[:nd]
        e1 = e[w : w + nd] - e[:nd]
        e2 = e[w + lh : w + lh + nd] - e[lh : lh + nd]
        m = (p.real**2 + p.imag**2) / (e1 * e2 + 1e-30)
        return p, m

    def _peaks(self, m: np.ndarray, final: bool) -> tuple[np.ndarray, int]:
        """Local maxima of ``m`` above the threshold (largest within +-N/2 samples).

        Returns the peaks whose neighbourhood is fully visible and the index from which the
        metric must be looked at again (``len(m)`` when everything was decided).
        """
        lh = self.half
        above = np.flatnonzero(m > self.threshold)
        if not len(above):
            return above, len(m)
        pad = np.concatenate([np.full(lh, -1.0), m, np.full(lh, -1.0)])
        win = np.lib.stride_tricks.sliding_window_view(pad, 2 * lh + 1)[above]
        is_peak = m[above] >= win.max(axis=1)
        peaks = above[is_peak]
        # a peak (or a crossing) this close to the end may still grow: decide it later
        undecided = len(m) - lh
        if not final:
            late = above[above >= undecided]
            if len(late):
                return peaks[peaks < late[0]], int(late[0])
        return peaks, len(m)

    def _run(self, final: bool) -> list[RxBurst]:
        buf, pos, lh = self._buf, self._pos, self.half
        found: list[tuple[int, float, float, float]] = []
        p, m = self._metric(buf, pos)  # m[k] belongs to the start d = pos + k
        next_pos = pos
        if m is not None:
            peaks, resume = self._peaks(m, final)
            next_pos = pos + resume
            skip_until = -1
            for k in peaks.tolist():
                d = pos + k
                if d < skip_until or d < self.guard:
                    continue  # inside a burst already demodulated (or no history)
                if d + self.burst_length + self.guard > len(buf):
                    if final:
                        self.stats["incomplete"] += 1
                        next_pos = len(buf)
                    else:
                        next_pos = max(pos, d - lh)
                    break
                self.stats["candidates"] += 1
                res = self._sync(buf, d, complex(p[k]), float(m[k]))
                if res is None:
                    self.stats["false_alarms"] += 1
                else:
                    found.append(res)
                    skip_until = res[0] + self.burst_length - lh
                    next_pos = max(next_pos, skip_until)
        bursts = self._demodulate(buf, found)
        keep = max(0, min(next_pos, len(buf)) - self.guard - 2)
        if keep:
            self._buf = buf[keep:]
            self._base += keep
            next_pos -= keep
        self._pos = next_pos
        return bursts

    def _sync(self, buf: np.ndarray, d: int, p_d: complex, metric: float):
        """Fine synchronisation of the candidate at ``d``; None if it is a false alarm.

        Joint search of the fine timing (+-``timing_search``) and the even integer CFO
        (``-max_int_cfo .. max_int_cfo``) by cross-correlation with the preamble, after
        removing the fractional CFO.
        """
        n, lh = self.n, self.half
        npre = self.pre.length
        eps = float(np.angle(p_d) / np.pi)
        # only the span the timing search looks at is derotated here
        span = buf[d - self.search : d + self.search + 2 * npre]
        rel = np.arange(-self.search, -self.search + len(span), dtype=np.float64)
        span = span * np.exp(-1j * _TWO_PI * eps / n * rel).astype(np.complex64)
        mat = np.lib.stride_tricks.sliding_window_view(span[: 2 * self.search + npre], npre)
        c = np.abs(mat @ self._tmpl_hyp)  # [lags, hypotheses]
        li, hi_ = np.unravel_index(int(np.argmax(c)), c.shape)
        # normalise by the larger energy of the preamble span and the span after it, so that
        # a partial overlap with a strong preamble (noise before it) does not pass
        seg = span[li : li + 2 * npre]
        e_seg = max(float(np.vdot(seg[:npre], seg[:npre]).real),
                    float(np.vdot(seg[npre:], seg[npre:]).real))
        rho = float(c[li, hi_] / np.sqrt(self.pre.energy * e_seg + 1e-30))
        if rho < self.xcorr_threshold:
            return None
        eps += 2 * int(self._shifts[hi_])
        t0 = d - self.search + int(li)  # preamble start, index into buf
        # residual CFO from lag-N repetitions (preamble quarters 1/3, 2/4 and every CP):
        # products of raw samples N apart carry the phase 2 pi (eps + residual)
        pre = buf[t0 : t0 + 4 * lh]
        z = np.vdot(pre[:lh], pre[2 * lh : 3 * lh]) - np.vdot(pre[lh : 2 * lh], pre[3 * lh :])
        ci = t0 + self._cp_idx
        z += np.vdot(buf[ci], buf[ci + n])
        eps += float(np.angle(z * np.exp(-1j * _TWO_PI * eps)) / _TWO_PI)
        return t0, eps, metric, rho

    def _demodulate(self, buf: np.ndarray, found: list) -> list[RxBurst]:
        if not found:
            return []
        n = self.n
        starts = np.asarray([f[0] for f in found], np.int64)
        eps = np.asarray([f[1] for f in found], np.float64)
        rel = (self._sym_offsets + self.layout.cp_length - self.backoff)[:, None] + self._fft_cols
        idx = starts[:, None, None] + rel[None]  # [B, T, N]
        phase = ((-_TWO_PI / n) * eps[:, None, None] * rel[None]).astype(np.float32)
        ys = buf[idx] * np.exp(np.complex64(1j) * phase)
        spec = np.fft.fft(ys, axis=-1) * np.float32(1.0 / np.sqrt(n))
        spec = np.fft.fftshift(spec, axes=-1)[..., self._eff]
        x_hat, no_eff, noise, power = self.estimator(spec.astype(np.complex64))
        out = []
        for i, (start, eps, metric, rho) in enumerate(found):
            out.append(
                RxBurst(
                    start=self._base + start,
                    cfo=eps,
                    noise_var=float(noise[i]),
                    snr_db=float(10 * np.log10(power[i] / noise[i])),
                    x_hat=x_hat[i][None],
                    no_eff=no_eff[i][None],
                    metric=metric,
                    xcorr=rho,
                    seq=self._seq,
                )
            )
            self._seq += 1
        self.stats["bursts"] += len(found)
        return out
