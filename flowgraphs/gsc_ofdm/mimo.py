"""MIMO burst modem: S spatial streams, a per-burst precoder, Nr-antenna receiver (numpy only).

Transmitter (:class:`MimoBurstModulator`): the data symbols ``[S, Nd]`` of one frame fill
an ``[S, T, N]`` grid with the pilots of the exported pattern (Sionna's Kronecker pattern:
stream ``s`` has its pilots on its own subcarriers, zero where another stream's pilot
sits), each stream is OFDM-modulated as in :mod:`.tx`, and each stream starts with the
burst preamble, stream ``s`` with its half-symbol ``a`` cyclically shifted by ``s *
cdd_shift`` samples (cyclic delay diversity: the shifted copies keep the preamble's
repetition structure, and their sum at an RX antenna fades across frequency rather than as
a whole). The output is the ``[S, L]`` stream signals; :class:`BurstPrecoder` maps them
onto the TX antennas with one ``[Nt, S]`` matrix per burst for the OFDM symbols, while the
preambles go out unprecoded, stream ``s`` from antenna ``s`` at ``1/S`` of the power (a sync
signal, like 5G's SSB: the receiver synchronises on it whatever the precoder), so the
preamble has the power per sample of the precoded OFDM symbols. The receiver's timing may
lock on a shifted copy, at most ``(S - 1) cdd_shift`` samples late, which the FFT window
backoff (2 samples into the cyclic prefix) absorbs for ``cdd_shift = 2`` and S = 2.

Precoders (:func:`precoder_matrix`): ``identity`` (spatial multiplexing,
``W = I / sqrt(S)``) and ``svd`` (eigen-beamforming per burst: the ``S`` dominant
eigenvectors of ``sum_f H_f^H H_f`` over the used subcarriers, equal power, from genie CSI
-- the channel realisation the emulator applies to that burst). A per-burst matrix is
frequency-flat, so precoding is a matrix product on the time samples.

Receiver (:class:`MimoStreamReceiver`): detection, timing and CFO as the SISO
:class:`~.rx.StreamReceiver` on RX antenna 0, then, on every antenna, the FFT of the same
windows; :class:`MimoChannelEstimator` estimates the effective channel ``H W`` per stream
from that stream's pilots (LS, then an LMMSE interpolator across frequency for a uniform
delay profile over the cyclic prefix, common phase drift between the pilot symbols) and an
LMMSE detector per RE returns ``x_hat`` and ``no_eff = 1/d - 1`` (Sionna's
``lmmse_equalizer``), which the decoder service demaps like SISO symbols.

>>> from flowgraphs.gsc_ofdm.grid import GridLayout
>>> lay = GridLayout.load("mimo2x2")
>>> tx, rx = MimoBurstModulator(lay), MimoStreamReceiver(lay)
>>> x = np.ones((2, lay.num_data_symbols), np.complex64)
>>> sig = BurstPrecoder(2, 2, tx.preamble.length).process(tx.modulate(x), [(0, None)])
>>> pad = np.zeros((2, 100), np.complex64)
>>> b = rx.process(np.concatenate([pad, sig, pad, pad, pad], axis=1))
>>> [x.start for x in b], bool(np.allclose(b[0].x_hat, 1, atol=1e-2))
([100], True)
"""

from __future__ import annotations

import dataclasses
from collections import deque

import numpy as np

from .grid import GridLayout
from .preamble import Preamble
from .rx import RxBurst, StreamReceiver
from .tx import ofdm_modulate

__all__ = [
    "PRECODERS",
    "MimoBurstModulator",
    "MimoBurstStream",
    "precode",
    "BurstPrecoder",
    "precoder_matrix",
    "frequency_response",
    "MimoChannelEstimator",
    "MimoStreamReceiver",
]

PRECODERS = ("identity", "svd")
_TWO_PI = 2.0 * np.pi


# ---------------------------------------------------------------------------- transmitter
class MimoBurstModulator:
    """Data symbols ``[S, Nd]`` -> stream signals ``[S, burst_length]`` (see module doc).

    :param layout: Grid layout with ``S >= 1`` streams.
    :param cdd_shift: Cyclic shift of the preamble between consecutive streams (samples).

    >>> lay = GridLayout.load("mimo2x2")
    >>> MimoBurstModulator(lay).modulate(np.zeros((2, lay.num_data_symbols))).shape
    (2, 1236)
    """

    def __init__(self, layout: GridLayout, cdd_shift: int = 2) -> None:
        self.layout = layout
        self.num_streams = layout.num_streams
        self.preamble = Preamble(layout)
        a = self.preamble.segment
        self.preambles = np.stack([  # [S, 4 L]: [a_s, a_s, a_s, -a_s], a_s = a shifted
            np.concatenate([np.roll(a, s * cdd_shift)] * 3 + [-np.roll(a, s * cdd_shift)])
            for s in range(self.num_streams)
        ]).astype(np.complex64)
        self.burst_length = self.preamble.length + layout.num_ofdm_symbols * layout.symbol_length

    @property
    def data_shape(self) -> tuple[int, int]:
        """Shape of one frame's data symbols: (streams, data symbols)."""
        return (self.layout.num_streams, self.layout.num_data_symbols)

    def modulate(self, data: np.ndarray) -> np.ndarray:
        """Data symbols [S, Nd] -> stream signals [S, burst_length] (complex64)."""
        grid = self.layout.map(np.asarray(data, np.complex64))  # [S, T, N]
        body = ofdm_modulate(grid, self.layout.cp_length)  # [S, T*(N+cp)]
        return np.concatenate([self.preambles, body], axis=-1)


class MimoBurstStream:
    """Multi-stream counterpart of :class:`~.tx.BurstStream`: bursts ``[S, L]`` separated by
    gaps of zeros, read ``[S, n]`` at a time.

    :param modulator: The :class:`MimoBurstModulator`.
    :param gap_min: Fewest zeros after each burst.
    :param gap_max: Most zeros after each burst (uniform in between).
    :param seed: Seed of the gap lengths.

    ``read(n)`` returns ``([S, <=n] samples, [(offset, burst_length, seq)])`` with absolute
    offsets.
    """

    def __init__(
        self, modulator: MimoBurstModulator, gap_min: int = 64, gap_max: int = 64, seed: int = 0
    ) -> None:
        if gap_min < 0 or gap_max < gap_min:
            raise ValueError("need 0 <= gap_min <= gap_max")
        self.modulator = modulator
        self.gap_min, self.gap_max = int(gap_min), int(gap_max)
        self._rng = np.random.default_rng(seed)
        self._queue: deque[tuple[np.ndarray, int]] = deque()
        self._head: np.ndarray | None = None
        self._head_meta: tuple[int, int] | None = None
        self._pos = 0
        self.samples_out = 0
        self.bursts_out = 0

    def push(self, data: np.ndarray, seq: int = 0) -> None:
        """Queue one frame's data symbols [S, Nd]."""
        data = np.asarray(data, np.complex64)
        if data.shape != self.modulator.data_shape:
            raise ValueError(f"data shape {data.shape} != {self.modulator.data_shape}")
        self._queue.append((data, int(seq)))

    @property
    def pending(self) -> int:
        """Samples (per stream) queued and not yet read, gaps counted at ``gap_max``."""
        head = 0 if self._head is None else self._head.shape[1] - self._pos
        return head + len(self._queue) * (self.modulator.burst_length + self.gap_max)

    def read(self, n: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """Up to ``n`` samples per stream and the bursts that start in them."""
        s = self.modulator.num_streams
        parts: list[np.ndarray] = []
        starts: list[tuple[int, int, int]] = []
        got = 0
        while got < n:
            if self._head is None:
                if not self._queue:
                    break
                data, seq = self._queue.popleft()
                burst = self.modulator.modulate(data)
                gap = int(self._rng.integers(self.gap_min, self.gap_max + 1))
                self._head = np.concatenate([burst, np.zeros((s, gap), np.complex64)], axis=1)
                self._head_meta = (seq, burst.shape[1])
                self._pos = 0
            if self._pos == 0 and self._head_meta is not None:
                seq, blen = self._head_meta
                starts.append((self.samples_out + got, blen, seq))
                self._head_meta = None
                self.bursts_out += 1
            take = min(n - got, self._head.shape[1] - self._pos)
            parts.append(self._head[:, self._pos : self._pos + take])
            self._pos += take
            got += take
            if self._pos >= self._head.shape[1]:
                self._head = None
        out = np.concatenate(parts, axis=1) if parts else np.zeros((s, 0), np.complex64)
        self.samples_out += out.shape[1]
        return out, starts


def precode(streams: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Stream signals [S, n] -> antenna signals [Nt, n] with a precoding matrix [Nt, S]."""
    return (np.asarray(w, np.complex64) @ np.asarray(streams, np.complex64)).astype(np.complex64)


class BurstPrecoder:
    """Stream signals [S, n] -> antenna signals [Nt, n], one precoding matrix per burst.

    :param num_tx: TX antennas Nt.
    :param num_streams: Streams S.
    :param preamble_length: Samples of the preamble at each burst start, sent unprecoded:
        stream ``s`` on antenna ``s``, scaled by ``1/sqrt(S)``.

    ``process(x, starts)``: ``starts`` = ``[(offset, W or None)]`` bursts that begin at chunk
    offset ``offset`` with the matrix ``W`` [Nt, S] (``None``: identity ``I / sqrt(S)``);
    the matrix stays until the next burst. The state (matrix, preamble samples left) is
    kept across chunks.
    """

    def __init__(self, num_tx: int, num_streams: int, preamble_length: int) -> None:
        self.num_tx, self.num_streams = int(num_tx), int(num_streams)
        self.preamble_length = int(preamble_length)
        self.identity = precoder_matrix("identity", self.num_tx, self.num_streams)
        self.w = self.identity
        self._pre_left = 0

    def process(self, x: np.ndarray, starts: list | None = None) -> np.ndarray:
        x = np.asarray(x, np.complex64)
        n = x.shape[1]
        out = np.empty((self.num_tx, n), np.complex64)
        events = sorted((s for s in (starts or []) if 0 <= s[0] < n), key=lambda s: s[0])
        edges = [0] + [e[0] for e in events] + [n]
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            if i > 0:
                w = events[i - 1][1]
                self.w = self.identity if w is None else np.asarray(w, np.complex64)
                self._pre_left = self.preamble_length
            k = min(self._pre_left, b - a)
            if k:
                s = min(self.num_streams, self.num_tx)
                out[:, a : a + k] = 0
                out[:s, a : a + k] = x[:s, a : a + k] * np.float32(1 / np.sqrt(s))
                self._pre_left -= k
            out[:, a + k : b] = precode(x[:, a + k : b], self.w)
        return out


def frequency_response(taps: np.ndarray, fft_size: int, subcarriers: np.ndarray) -> np.ndarray:
    """Time-domain taps [Nr, Nt, L] (tap ``l`` = delay of ``l`` samples) -> channel matrices
    [F, Nr, Nt] on the given FFT bins (0 = lowest frequency, DC at ``fft_size // 2``)."""
    taps = np.asarray(taps)
    f = np.asarray(subcarriers, np.float64) - fft_size // 2
    lag = np.arange(taps.shape[-1], dtype=np.float64)
    e = np.exp(-1j * _TWO_PI * f[:, None] * lag[None, :] / fft_size)  # [F, L]
    return np.einsum("fl,rtl->frt", e, taps)


def precoder_matrix(
    kind: str,
    num_tx: int,
    num_streams: int,
    taps: np.ndarray | None = None,
    fft_size: int = 72,
    subcarriers: np.ndarray | None = None,
) -> np.ndarray:
    """A per-burst precoding matrix W [Nt, S] with ``||W||_F = 1``.

    :param kind: ``identity`` (``I / sqrt(S)``) or ``svd`` (dominant eigenvectors of
        ``sum_f H_f^H H_f``, equal power; needs ``taps`` [Nr, Nt, L] and ``subcarriers``).

    >>> w = precoder_matrix("svd", 2, 2, np.eye(2)[:, :, None], 72, np.arange(4, 68))
    >>> round(float(np.linalg.norm(w)), 6)
    1.0
    """
    if kind not in PRECODERS:
        raise ValueError(f"unknown precoder {kind!r}; choose from {', '.join(PRECODERS)}")
    if not 1 <= num_streams <= num_tx:
        raise ValueError(f"{num_streams} streams do not fit {num_tx} TX antennas")
    if kind == "identity":
        return (np.eye(num_tx, num_streams) / np.sqrt(num_streams)).astype(np.complex64)
    if taps is None or subcarriers is None:
        raise ValueError("the svd precoder needs the channel taps and subcarriers (genie CSI)")
    h = frequency_response(taps, fft_size, subcarriers)  # [F, Nr, Nt]
    cov = np.einsum("frt,fru->tu", np.conj(h), h)  # sum_f H^H H, [Nt, Nt]
    lam, v = np.linalg.eigh(cov)
    v = v[:, np.argsort(lam)[::-1][:num_streams]]
    return (v / np.sqrt(num_streams)).astype(np.complex64)


# ---------------------------------------------------------------------------- receiver
class MimoChannelEstimator:
    """Per-stream pilot channel estimation and LMMSE MIMO detection for received grids.

    :param layout: Grid layout (S streams; each stream's non-zero pilots on its own REs).
    :param delay_window: ``(lo, hi)`` delays (samples, relative to the FFT window start) of
        the uniform power-delay profile the frequency interpolator assumes.

    :input y: [B, Nr, T, F_eff] received REs.
    :output x_hat, no_eff, noise_var, channel_power: [B, S, Nd], [B, S, Nd], [B], [B] (the
        power is the mean over RX antennas of ``sum_s |H_eff[r, s]|^2``).
    """

    def __init__(self, layout: GridLayout, delay_window: tuple[float, float]) -> None:
        self.layout = layout
        mask = layout.pilot_mask[0]
        self.pilot_syms = np.nonzero(mask.any(axis=1))[0]
        if len(self.pilot_syms) == 0:
            raise ValueError("channel estimation needs pilot OFDM symbols")
        if not mask[self.pilot_syms].all():
            raise NotImplementedError("pilot OFDM symbols must be fully loaded")
        pg = layout.pilot_grid()[:, self.pilot_syms, :]  # [S, P, F]
        n = layout.fft_size
        f = (np.asarray(layout.effective_subcarriers) - n // 2).astype(np.float64)
        lo, hi = delay_window
        width, centre = hi - lo, 0.5 * (hi + lo)
        d = f[:, None] - f[None, :]
        r = np.exp(-1j * _TWO_PI * d * centre / n) * np.sinc(d * width / n)  # [F, F]
        self.streams = []  # per stream: (subcarriers k, 1/pilot [P, K], M, U^H, lam, noise proj)
        for s in range(layout.num_streams):
            k = np.flatnonzero((np.abs(pg[s]) > 1e-9).all(axis=0))
            if len(k) == 0 or (np.abs(pg[s][:, k]) < 1e-9).any():
                raise NotImplementedError(f"stream {s} has no pilot subcarriers of its own")
            lam, u = np.linalg.eigh(r[np.ix_(k, k)])
            lam = np.clip(lam, 0.0, None)
            keep = lam > 1e-2 * lam.max()
            proj = np.eye(len(k)) - u[:, keep] @ np.conj(u[:, keep].T)
            self.streams.append(
                (k, 1.0 / pg[s][:, k], r[:, k] @ u, np.conj(u.T), lam, proj, int(keep.sum()))
            )
        self.data_flat = np.flatnonzero(~mask.reshape(-1))
        self.num_symbols = layout.num_ofdm_symbols

    def _estimate(self, y: np.ndarray):
        """Effective channel [B, Nr, S, T, F], its error variance [B, Nr, S, F], noise [B]."""
        b, nr, t, nf = y.shape
        yp = y[:, :, self.pilot_syms, :]  # [B, Nr, P, F]
        p = len(self.pilot_syms)
        h_ls, resid = [], 0.0
        dof = 0
        for k, inv, _, _, _, proj, rank in self.streams:
            hs = yp[..., k] * inv  # [B, Nr, P, K]
            h_ls.append(hs)
            # residual outside the delay window, back at the RE scale (pilot energy)
            scale = 1.0 / np.abs(inv) ** 2  # [P, K]
            resid = resid + (np.abs(hs @ proj.T) ** 2 * scale).sum(axis=(1, 2, 3))
            dof += nr * p * (len(k) - rank)
        noise = np.maximum(resid / max(dof, 1), 1e-12)  # [B]
        h_all = np.zeros((b, nr, len(self.streams), p, nf), np.complex128)
        err = np.zeros((b, nr, len(self.streams), nf))
        for s, (_, inv, m, uh, lam, _, _) in enumerate(self.streams):
            hs = h_ls[s]
            no_ls = (noise * float(np.mean(np.abs(inv) ** 2)))[:, None]  # LS noise, [B, 1]
            power = np.maximum((np.abs(hs) ** 2).mean(axis=(2, 3)) - no_ls, 1e-3 * no_ls)
            pl = power[..., None] * lam  # [B, Nr, K]
            gain = power[..., None] / (pl + no_ls[..., None])  # [B, Nr, K]
            coef = np.einsum("kj,brpj->brpk", uh, hs) * gain[:, :, None, :]
            h_all[:, :, s] = np.einsum("fk,brpk->brpf", m, coef)
            # LMMSE error per subcarrier: P - P^2 sum_k |M_fk|^2 / (P lam_k + no)
            shrink = np.einsum("fk,brk->brf", np.abs(m) ** 2, power[..., None] * gain)
            err[:, :, s] = np.maximum(power[..., None] - shrink, 0.0) / p
        # common phase drift between pilot symbols, then average them
        times = self.pilot_syms.astype(np.float64)
        if p > 1:
            z = (h_all[:, :, :, 1:] * np.conj(h_all[:, :, :, :-1])).sum(axis=(1, 2, 4))  # [B, P-1]
            rate = (np.angle(z) / np.diff(times)[None, :]).mean(axis=1)  # [B] rad/symbol
        else:
            rate = np.zeros(b)
        t_ref = times.mean()
        derot = np.exp(-1j * rate[:, None] * (times[None, :] - t_ref))  # [B, P]
        g = (h_all * derot[:, None, None, :, None]).mean(axis=3)  # [B, Nr, S, F]
        rot = np.exp(1j * rate[:, None] * (np.arange(t)[None, :] - t_ref))  # [B, T]
        h = g[:, :, :, None, :] * rot[:, None, None, :, None]  # [B, Nr, S, T, F]
        return h, err, noise

    def __call__(self, y: np.ndarray):
        b, nr, t, nf = y.shape
        s = len(self.streams)
        h, err, noise = self._estimate(np.asarray(y, np.complex128))
        hd = h.reshape(b, nr, s, t * nf)[..., self.data_flat]  # [B, Nr, S, Nd]
        yd = y.reshape(b, nr, t * nf)[..., self.data_flat]  # [B, Nr, Nd]
        hm = np.moveaxis(hd, -1, 1)  # [B, Nd, Nr, S]
        # noise + channel estimation error (each stream of unit energy)
        ed = np.repeat(err[:, :, :, None, :], t, axis=3).reshape(b, nr, s, t * nf)
        ed = ed[..., self.data_flat].sum(axis=2).mean(axis=1)  # [B, Nd]
        no_tot = noise[:, None] + ed  # [B, Nd]
        cov = hm @ np.conj(np.swapaxes(hm, -1, -2))  # [B, Nd, Nr, Nr]
        cov = cov + no_tot[..., None, None] * np.eye(nr)
        gmat = np.conj(np.swapaxes(hm, -1, -2)) @ _inv(cov)  # [B, Nd, S, Nr]
        d = np.real(np.einsum("bnsr,bnrs->bns", gmat, hm))  # [B, Nd, S]
        d = np.clip(d, 1e-9, 1.0 - 1e-9)
        xs = np.einsum("bnsr,brn->bns", gmat, yd) / d
        no_eff = 1.0 / d - 1.0
        power = (np.abs(h[:, :, :, self.pilot_syms[0], :]) ** 2).sum(axis=2).mean(axis=(1, 2))
        return (
            np.moveaxis(xs, 1, 2).astype(np.complex64),
            np.moveaxis(no_eff, 1, 2).astype(np.float32),
            noise,
            power,
        )


def _inv(a: np.ndarray) -> np.ndarray:
    """Inverse of a stack of square matrices [..., n, n] (closed form for 2x2)."""
    if a.shape[-1] != 2:
        return np.linalg.inv(a)
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    out = np.empty_like(a)
    out[..., 0, 0], out[..., 1, 1] = a[..., 1, 1], a[..., 0, 0]
    out[..., 0, 1], out[..., 1, 0] = -a[..., 0, 1], -a[..., 1, 0]
    return out / det[..., None, None]


def _sync_layout(layout: GridLayout) -> GridLayout:
    """A one-stream view of ``layout`` for the SISO synchroniser (its pilots are unused)."""
    return dataclasses.replace(
        layout,
        num_streams=1,
        pilot_mask=layout.pilot_mask[:1],
        pilots=np.ones((1, layout.pilots.shape[1]), np.complex64),
    )


class MimoStreamReceiver(StreamReceiver):
    """Find, synchronise and demodulate bursts in ``[Nr, n]`` sample chunks (see module doc).

    :param layout: The grid layout (S streams).
    :param num_rx: RX antennas (>= S).
    :param kwargs: Synchroniser options of :class:`~.rx.StreamReceiver`.

    ``process(samples [Nr, n])`` returns the :class:`~.rx.RxBurst` objects completed so far
    (``x_hat``/``no_eff`` ``[S, Nd]``); detection and CFO run on antenna 0.
    """

    def __init__(self, layout: GridLayout, num_rx: int = 2, **kwargs) -> None:
        if num_rx < layout.num_streams:
            raise ValueError(f"{layout.num_streams} streams need >= {layout.num_streams} "
                             "RX antennas")
        super().__init__(_sync_layout(layout), **kwargs)
        self.mimo_layout = layout
        self.num_rx = int(num_rx)
        cp = layout.cp_length
        self.mimo_estimator = MimoChannelEstimator(layout, (-2.0, cp + 2.0))
        self._others = np.zeros((self.num_rx - 1, len(self._buf)), np.complex64)

    def _align_others(self) -> None:
        self._others = self._others[:, self._others.shape[1] - len(self._buf) :]

    def process(self, samples: np.ndarray) -> list[RxBurst]:
        """Feed [Nr, n] samples; return the bursts completed so far."""
        samples = np.asarray(samples, np.complex64)
        if samples.ndim != 2 or samples.shape[0] != self.num_rx:
            raise ValueError(f"samples must be [{self.num_rx}, n], got {samples.shape}")
        self._others = np.concatenate([self._others, samples[1:]], axis=1)
        out = super().process(samples[0])
        self._align_others()
        return out

    def flush(self) -> list[RxBurst]:
        out = super().flush()
        self._align_others()
        return out

    def reset(self) -> None:
        super().reset()
        self._others = np.zeros((self.num_rx - 1, len(self._buf)), np.complex64)

    def _demodulate(self, buf: np.ndarray, found: list) -> list[RxBurst]:
        if not found:
            return []
        n = self.n
        bufs = np.concatenate([buf[None], self._others[:, : len(buf)]], axis=0)  # [Nr, len]
        starts = np.asarray([f[0] for f in found], np.int64)
        eps = np.asarray([f[1] for f in found], np.float64)
        rel = (self._sym_offsets + self.layout.cp_length - self.backoff)[:, None] + self._fft_cols
        idx = starts[:, None, None] + rel[None]  # [B, T, N]
        phase = ((-_TWO_PI / n) * eps[:, None, None] * rel[None]).astype(np.float32)
        ys = bufs[:, idx] * np.exp(np.complex64(1j) * phase)[None]  # [Nr, B, T, N]
        spec = np.fft.fft(ys, axis=-1) * np.float32(1.0 / np.sqrt(n))
        spec = np.fft.fftshift(spec, axes=-1)[..., self._eff]
        x_hat, no_eff, noise, power = self.mimo_estimator(np.swapaxes(spec, 0, 1))
        out = []
        for i, (start, cfo, metric, rho) in enumerate(found):
            out.append(
                RxBurst(
                    start=self._base + start,
                    cfo=cfo,
                    noise_var=float(noise[i]),
                    snr_db=float(10 * np.log10(power[i] / noise[i])),
                    x_hat=x_hat[i],
                    no_eff=no_eff[i],
                    metric=metric,
                    xcorr=rho,
                    seq=self._seq,
                )
            )
            self._seq += 1
        self.stats["bursts"] += len(found)
        return out
