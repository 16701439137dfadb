"""Send a bit stream's transport blocks through the GNU Radio streaming loopback.

:class:`StreamTransport` is what ``AdaptiveLink(..., transport="loopback")`` uses in place of
the simulated :class:`gsc_phy.link.Link`: one :func:`gsc_stream.loopback.run_loopback` run per
transmission, with the MCS's modulation and code (k, n), the transmission's Es/N0 and
channel, and the bits as payloads (``run_loopback(payloads=...)``). The channel emulator
keeps ``gsc loopback``'s impairments (CFO 0.1 subcarrier, 10 ppm sampling offset, timing
offset, random gaps) unless ``loopback_options`` say otherwise, and the streamed receiver
estimates the channel from the pilots itself: the simulated link's ``estimator`` does not
apply, and link adaptation still uses the simulated link's thresholds (perfect CSI by
default), so high-order MCS near their threshold fail more often here than in the
simulation.

**Frames.** The streamed link identifies each frame by a 32-bit frame number at the start
of its payload (:data:`gsc_stream.stream_decode.SEQ_BITS`), so a frame carries
``codewords × (k − 24) − 32`` stream bits instead of ``codewords × (k − 24)``: the streamed
transmission may need more frames than the simulated one for the same stream. The extra
channel uses are reported (``channel_uses_overhead``), never hidden. The last frame is
filled with pseudo-random bits.

**Reception.** A frame arrives when every one of its CRC-24A blocks passed and the CRC-32 of
its decoded payload equals that of the sent payload; its bits are then the sent bits (both
CRCs verified them). Otherwise all of its bits are erased: the decoder service names a frame
only when all of its blocks passed, so a partly decoded frame cannot be placed. A stream
block (``k − 24`` bits, as in the simulation) is received when all frames holding its bits
arrived. A frame whose CRCs passed on wrong bits is counted as ``undetected_error`` and
erased.

**Sessions.** By default (``persistent=True``) transmissions go through persistent
streaming sessions (:class:`gsc_stream.session.LoopbackSession`): one flowgraph and decoder
service per (modulation, k, n), its Es/N0 set per transmission (a control frame to the
running flowgraph), started at the first transmission that needs it and kept up (at most
:data:`MAX_SESSIONS` at once, the least recently used closed first) until
:meth:`StreamTransport.close` (also at interpreter exit, or on leaving a ``with`` block).
Frames of successive transmissions are told apart by their frame numbers, which run on
across a session's transmissions. A session seeds its channel emulator once (with the seed
of the first transmission it carries), so a transmission's noise and fading draw depends on
the session's earlier transmissions: a run is reproducible, one transmission alone is not,
and the frame counts differ from ``persistent=False`` (one ``run_loopback`` per transmission,
seeded per transmission, as before). Each ``OUT/txNNNN/loopback.json`` holds that
transmission's accounting and names its session (``OUT/sessionNNN``: logs, stats,
``session.json``). This saves the 5-7 s of process start and drain per transmission.

Every transmission adds its counters (frames sent / decoded / lost by cause, blocks, channel
uses) to :attr:`StreamTransport.totals`; :meth:`StreamTransport.take` returns and resets
them, so a caller can sum them per method and SNR.

Example (needs GNU Radio; ``bits``: whole blocks of ``budget``'s MCS)::

    t = StreamTransport(channel="awgn")
    rx, ok = t.send(bits, budget)
    t.take()["frames_sent"]          # e.g. 3
"""

from __future__ import annotations

import atexit
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from bridge.common import ConfigError
from gsc_stream.loopback import CHANNELS, LOSS_CAUSES, radio_python_or_error, run_loopback
from gsc_stream.stream_decode import SEQ_BITS

from .transports import Transport

if TYPE_CHECKING:
    from gsc_semantic.baselines import LinkBudget

__all__ = ["StreamTransport", "frame_payloads", "COUNTERS", "MAX_SESSIONS"]

#: Most persistent sessions a transport keeps up at once (each holds a flowgraph and a
#: decoder worker process).
MAX_SESSIONS = 4

#: Counters summed over transmissions (``frames_lost_<cause>`` for each loss cause too).
COUNTERS = ("transmissions", "frames_sent", "frames_decoded", "frames_lost_total",
            "blocks_sent", "blocks_erased", "channel_uses", "channel_uses_overhead",
            "loopback_s")


def frame_payloads(bits: np.ndarray, codewords: int, payload_bits: int, seed: int = 0
                   ) -> np.ndarray:
    """Cut ``bits`` (uint8 0/1) into streamed-link payloads: frame ``i`` is
    [codewords, payload_bits], its first :data:`SEQ_BITS` bits ``i`` MSB-first, then the next
    ``codewords·payload_bits − 32`` stream bits; the last frame is padded with pseudo-random
    bits (seeded by ``seed``).

    >>> p = frame_payloads(np.ones(100, np.uint8), 1, 64)
    >>> p.shape, int(p[1, 0, :32].sum()), int(p[1, 0, 32:].sum())
    ((4, 1, 64), 1, 32)
    """
    per_frame = codewords * payload_bits - SEQ_BITS
    if per_frame < 1:
        raise ConfigError(f"a frame of {codewords}x{payload_bits} payload bits cannot carry "
                          f"a {SEQ_BITS}-bit frame number and data")
    num = max(1, math.ceil(bits.size / per_frame))
    fill = np.random.default_rng([int(seed), 0x57]).integers(0, 2, num * per_frame, np.uint8)
    fill[:bits.size] = bits
    seq = np.arange(num, dtype=np.uint64)[:, None]
    head = ((seq >> np.arange(SEQ_BITS - 1, -1, -1, dtype=np.uint64)) & 1).astype(np.uint8)
    return np.concatenate([head, fill.reshape(num, per_frame)], axis=1).reshape(
        num, codewords, payload_bits)


class StreamTransport(Transport):
    """Transport blocks through the GNU Radio streaming loopback (see the module notes).

    :param channel: Loopback channel emulator model (``awgn``, ``tdl-a`` .. ``tdl-e``).
    :param delay_spread_ns: TDL delay spread.
    :param seed: Base seed: transmission ``i`` (1, 2, ...) without a ``channel_seed`` uses
        ``seed + i`` (a new reproducible channel draw each time), else ``channel_seed``.
    :param workers: Decoder worker processes.
    :param out_dir: Folder for each run's loopback.json and logs (a temporary one when None;
        run ``i`` goes to ``OUT/tx{i:04d}``).
    :param echo: Progress lines (one per transmission), e.g. ``click.echo``.
    :param persistent: Keep one streaming session per (modulation, k, n) up across
        transmissions (see the module notes); False: one ``run_loopback`` per transmission.
    :param loopback_options: Further :func:`gsc_stream.loopback.run_loopback` arguments (``cfo``,
        ``sfo_ppm``, ``delay``, ``window``, ``timeout_s``).

    :input bits: uint8 [B·(k − 24)] scrambled stream of whole blocks (``send``).
    :input budget: the :class:`~gsc_semantic.baselines.LinkBudget` (MCS, frame, Es/N0).
    :output: (received bits, block_ok [B]) like :meth:`AdaptiveLink.transmit`'s link part.

    :attr:`context` (e.g. the method being sent, set with
    :func:`gsc_semantic.scenarios.common.link_context`) names the transmissions in the
    progress lines.
    """

    kind = "loopback"

    def __init__(self, channel: str = "awgn", *, delay_spread_ns: float = 100.0, seed: int = 0,
                 workers: int = 1, out_dir: str | None = None,
                 echo: Callable[[str], None] | None = None, persistent: bool = True,
                 **loopback_options) -> None:
        if channel not in CHANNELS:
            raise ConfigError(f"the streaming loopback emulates {', '.join(CHANNELS)}; "
                              f"channel {channel!r} runs on --link sim only")
        radio_python_or_error()  # GNU Radio missing: one line now, not at the first send
        self.channel = channel
        self.delay_spread_ns = float(delay_spread_ns)
        self.seed = int(seed)
        self.workers = int(workers)
        self.out_dir = out_dir
        self.echo = echo or (lambda msg: None)
        self.options = loopback_options
        self.persistent = bool(persistent)
        self.sessions: dict[tuple, object] = {}  # key -> LoopbackSession, oldest use first
        self.sessions_started = 0
        self.runs = 0
        self.context = ""
        self.totals: dict[str, float] = {}
        self._reset()

    def _reset(self) -> None:
        self.totals = dict.fromkeys(COUNTERS, 0)
        self.totals.update({f"frames_lost_{c}": 0 for c in LOSS_CAUSES})

    def close(self) -> None:
        """Close every persistent session (their flowgraphs and decoder services stop)."""
        while self.sessions:
            _, session = self.sessions.popitem()
            session.close()
        atexit.unregister(self.close)

    def __enter__(self) -> StreamTransport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def take(self) -> dict[str, float]:
        """Counters summed since the last ``take`` (then reset)."""
        out = dict(self.totals)
        self._reset()
        return out

    def send(self, bits: np.ndarray, budget: LinkBudget, channel_seed: int | None = None, *,
             sender=None) -> tuple[np.ndarray, np.ndarray]:
        """One transmission carrying ``bits``; see the class notes (``sender``, the sending
        link, is not needed here)."""
        frame = budget.frame
        per_block, cws = frame.payload_bits_per_block, frame.codewords_per_frame
        if bits.size % per_block:
            raise ValueError(f"{bits.size} bits are not whole blocks of {per_block}")
        self.runs += 1
        seed = self.seed + self.runs if channel_seed is None else int(channel_seed)
        payloads = frame_payloads(bits, cws, per_block, seed)
        t0 = time.monotonic()
        r = self._transmit(payloads, budget, seed)
        got = np.zeros(len(payloads), dtype=bool)
        got[r["delivered_seqs"]] = True
        bit_ok = np.repeat(got, cws * per_block - SEQ_BITS)[:bits.size]
        block_ok = bit_ok.reshape(-1, per_block).all(axis=1)
        rx = np.where(bit_ok, bits, 0).astype(np.uint8)
        sim_frames = math.ceil(bits.size // per_block / cws)
        cu = frame.channel_uses_per_frame
        t = self.totals
        t["transmissions"] += 1
        t["frames_sent"] += r["frames_sent"]
        t["frames_decoded"] += r["frames_decoded"]
        t["frames_lost_total"] += r["frames_lost_total"]
        for cause, v in r["frames_lost"].items():
            t[f"frames_lost_{cause}"] += v
        t["blocks_sent"] += int(block_ok.size)
        t["blocks_erased"] += int((~block_ok).sum())
        t["channel_uses"] += len(payloads) * cu
        t["channel_uses_overhead"] += (len(payloads) - sim_frames) * cu
        seconds = time.monotonic() - t0
        t["loopback_s"] += seconds
        lost = ", ".join(f"{c} {v}" for c, v in r["frames_lost"].items() if v) or "none lost"
        what = f"{self.context} " if self.context else ""
        self.echo(f"[{self.kind} {self.runs}] {what}{budget.mcs.modulation} k={frame.k} "
                  f"n={frame.n}, Es/N0 {budget.snr_db:g} dB {self.channel}: "
                  f"{r['frames_decoded']}/{r['frames_sent']} frames ({lost}), "
                  f"{int(block_ok.sum())}/{block_ok.size} blocks, {seconds:.0f} s")
        return rx, block_ok

    def _transmit(self, payloads: np.ndarray, budget: LinkBudget, seed: int) -> dict:
        """Send ``payloads`` [frames, codewords, payload_bits] once; returns ``frames_sent``,
        ``frames_decoded``, ``frames_lost_total``, ``frames_lost`` (by cause) and
        ``delivered_seqs`` (frames received with both CRCs verified)."""
        frame = budget.frame
        if self.persistent:
            session = self._session(budget, seed)
            r = session.send(payloads, snr_db=float(budget.snr_db))
            if self.out_dir is not None:  # this transmission's accounting, as run_loopback's
                run_dir = os.path.join(self.out_dir, f"tx{self.runs:04d}")
                os.makedirs(run_dir, exist_ok=True)
                doc = {k: v for k, v in r.items() if k != "frame_results"}
                doc.update(config=session.config, snr_kind="esno", seed=seed,
                           session=os.path.basename(session.out_dir))
                with open(os.path.join(run_dir, "loopback.json"), "w", encoding="utf-8") as fh:
                    json.dump(doc, fh, indent=2)
            return r
        run_dir = None if self.out_dir is None else os.path.join(self.out_dir,
                                                                  f"tx{self.runs:04d}")
        with tempfile.TemporaryDirectory(prefix="gsc-stream-") as tmp:
            return run_loopback(snr_db=float(budget.snr_db), channel=self.channel,
                                delay_spread_ns=self.delay_spread_ns,
                                modulation=budget.mcs.modulation, k=frame.k, n=frame.n,
                                workers=self.workers, seed=seed, out_dir=run_dir or tmp,
                                payloads=payloads, **self.options)

    def _session(self, budget: LinkBudget, seed: int):
        """The persistent session for ``budget``'s MCS (started on first use; Es/N0 is set
        per transmission)."""
        from gsc_stream.session import LoopbackSession

        frame = budget.frame
        key = (budget.mcs.modulation, int(frame.k), int(frame.n))
        session = self.sessions.pop(key, None)
        if session is None:
            while len(self.sessions) >= MAX_SESSIONS:
                self.sessions.pop(next(iter(self.sessions))).close()
            self.sessions_started += 1
            run_dir = None if self.out_dir is None else os.path.join(
                self.out_dir, f"session{self.sessions_started:03d}")
            opts = {k: v for k, v in self.options.items()
                    if k in ("cfo", "sfo_ppm", "delay", "window", "timeout_s", "deadline_ms")}
            session = LoopbackSession(snr_db=float(budget.snr_db), channel=self.channel,
                                      delay_spread_ns=self.delay_spread_ns,
                                      modulation=key[0], k=key[1], n=key[2],
                                      workers=max(1, self.workers), seed=seed,
                                      out_dir=run_dir, **opts)
            if len(self.sessions) == 0:
                atexit.register(self.close)
        self.sessions[key] = session  # most recently used last
        return session
