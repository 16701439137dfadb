"""GNU Radio sink: samples -> detected, synchronised, equalised gsc frames over ZeroMQ."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter

import numpy as np
import pmt
from gnuradio import gr

from bridge.reliable import ReliableQueue, queue_server_curve
from flowgraphs.gsc_gr.lifecycle import rx_block_stats, write_stats
from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.messages import rx_frame
from flowgraphs.gsc_ofdm.rx import RxBurst, StreamReceiver

__all__ = ["ofdm_burst_rx"]

logger = logging.getLogger("gsc.gr.burst_rx")

_PORT = pmt.intern("frames")


class ofdm_burst_rx(gr.sync_block):  # noqa: N801 - GNU Radio block naming
    """Burst detection, timing, fractional/integer CFO, channel estimation, equalisation.

    :param grid: Grid JSON path or shipped name (``default``, ``16qam``).
    :param endpoint: ZeroMQ endpoint of the reliable work queue for the decoder service
        (:class:`bridge.reliable.ReliableQueue`, bound here; empty: none). Each burst becomes
        one bridge RX frame (``SYMBOLS`` complex64 ``[3, S, Nd]``: equalised symbols, noise
        variances, metadata; ``seq`` = burst number; see ``flowgraphs.gsc_ofdm.messages``);
        decoder workers connect, ask for frames (credit) and acknowledge each one once
        decoded, so a worker that dies or restarts loses nothing.
    :param bind: Must be ``True``: the block binds the queue, decoder workers connect.
    :param threshold: Detection threshold on the Schmidl & Cox coherence (0..1).
    :param xcorr_threshold: Preamble correlation a detection must reach (0..1).
    :param max_int_cfo: Largest integer CFO searched (subcarrier spacings).
    :param time_interp: ``drift`` (static channel per burst) or ``linear``.
    :param send_timeout_ms: When the flowgraph stops with frames queued and no decoder has
        connected at all, how long to wait for one before counting them as
        ``decoder_absent`` (frames wait in the queue while the flowgraph runs; once a decoder
        has been seen, the stop waits up to ``drain_timeout_s`` for it or a restarted one).
    :param pdus: Also publish each burst on the ``frames`` message port (meta dict +
        c32 vector of the equalised symbols).
    :param stats_file: Write counters as JSON there when the flowgraph stops ('' = no).
    :param curve_secret: CurveZMQ server secret key file (``gsc keys generate``; '' = off).
    :param curve_authorized_dir: Directory of the decoder hosts' authorised public keys.
        An ``endpoint`` that is not loopback/ipc (the decoder on another host, e.g.
        ``tcp://0.0.0.0:5601``) requires both; the queue is then encrypted and only those
        keys are served. Missing or half-given keys raise ``ValueError`` at construction.

    Queue sizes come from the environment (or set the attributes before the flowgraph
    starts): ``GSC_RX_QUEUE_MAX`` (:attr:`queue_max`, default 256) frames wait in memory for
    a decoder, then up to ``GSC_RX_SPOOL_MAX`` (:attr:`spool_max`, default 4096) in an
    on-disk spool if ``GSC_RX_SPOOL_DIR`` (:attr:`spool_dir`) names a folder; beyond that a
    frame is dropped and counted as ``queue_overflow``. At stop the block waits up to
    :attr:`drain_timeout_s` (30 s) for decoders to acknowledge what is still queued.

    Counters in :meth:`stats` (and ``stats_file``): the receiver's, plus ``frames_queued``,
    ``queue_overflow``, ``decoder_absent``, ``frames_acked`` and the queue's ``queue_*``
    counters (``requeued`` after a worker died, ``spooled``, ``consumers_dead`` ...).
    """

    def __init__(
        self,
        grid: str = "default",
        endpoint: str = "",
        bind: bool = True,
        threshold: float = 0.1,
        xcorr_threshold: float = 0.35,
        max_int_cfo: int = 4,
        time_interp: str = "drift",
        send_timeout_ms: int = 1000,
        pdus: bool = False,
        stats_file: str = "",
        curve_secret: str = "",
        curve_authorized_dir: str = "",
    ) -> None:
        if not bind:
            raise ValueError("ofdm_burst_rx binds its decoder endpoint (bind=True); "
                             "decoder workers connect to it")
        self.curve = queue_server_curve(endpoint, curve_secret, curve_authorized_dir)
        gr.sync_block.__init__(self, name="gsc_ofdm_burst_rx", in_sig=[np.complex64],
                               out_sig=None)
        self.layout = GridLayout.load(grid)
        self.receiver = StreamReceiver(
            self.layout,
            threshold=threshold,
            xcorr_threshold=xcorr_threshold,
            max_int_cfo=max_int_cfo,
            time_interp=time_interp,
        )
        self.endpoint = endpoint
        self.send_timeout_ms = int(send_timeout_ms)
        env = os.environ
        self.queue_max = int(env.get("GSC_RX_QUEUE_MAX", 256))
        self.spool_dir = env.get("GSC_RX_SPOOL_DIR", "")
        self.spool_max = int(env.get("GSC_RX_SPOOL_MAX", 4096))
        self.drain_timeout_s = 30.0
        self.pdus = bool(pdus)
        self.stats_file = stats_file
        self.counters: Counter = Counter()
        self._queue: ReliableQueue | None = None
        self._queue_stats: dict = {}
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._busy_s = 0.0
        self.message_port_register_out(_PORT)

    def start(self) -> bool:
        if self.endpoint:
            self._queue = ReliableQueue(self.endpoint, queue_max=self.queue_max,
                                        spool_dir=self.spool_dir or None,
                                        spool_max=self.spool_max,
                                        allow_remote=self.curve is not None,
                                        curve=self.curve).start()
        return True

    def stop(self) -> bool:
        self._emit(self.receiver.flush())
        if self._queue is not None:
            self._queue_stats = self._queue.drain(self.drain_timeout_s,
                                                  absent_s=self.send_timeout_ms / 1000)
            self._queue = None
        write_stats(self.stats_file, self.stats())
        return True

    def stats(self) -> dict:
        """Receiver counters (samples, candidates, false alarms, bursts), queue counters and
        ``busy_s``: seconds spent demodulating (ZeroMQ waits excluded)."""
        q = self._queue.stats() if self._queue is not None else self._queue_stats
        return rx_block_stats(self.receiver.stats, self.counters, q, self.layout.format_id,
                              self._busy_s, self._t_first, self._t_last)

    def _emit(self, bursts: list[RxBurst]) -> None:
        fid = self.layout.format_id
        for b in bursts:
            meta = {"cfo": b.cfo, "snr_db": b.snr_db, "noise_var": b.noise_var,
                    "xcorr": b.xcorr, "metric": b.metric}
            if self._queue is not None:
                frame = rx_frame(b.x_hat, b.no_eff, meta, seq=b.seq, format_id=fid)
                if self._queue.put(frame):
                    self.counters["frames_queued"] += 1
                else:
                    n = self._queue.counters["queue_overflow"]
                    if n <= 10 or n % 1000 == 0:
                        logger.warning("gsc burst rx: decoder queue full, frame %d dropped "
                                       "(%d queue_overflow)", b.seq, n)
            if self.pdus:
                d = pmt.make_dict()
                d = pmt.dict_add(d, pmt.intern("seq"), pmt.from_uint64(b.seq))
                d = pmt.dict_add(d, pmt.intern("start"), pmt.from_uint64(max(b.start, 0)))
                for k, v in meta.items():
                    d = pmt.dict_add(d, pmt.intern(k), pmt.from_double(float(v)))
                vec = pmt.init_c32vector(b.x_hat.size, b.x_hat.reshape(-1))
                self.message_port_pub(_PORT, pmt.cons(d, vec))

    def work(self, input_items, output_items):
        inp = input_items[0]
        now = time.monotonic()
        if self._t_first is None:
            self._t_first = now
        self._t_last = now
        t = time.perf_counter()
        bursts = self.receiver.process(inp)
        self._busy_s += time.perf_counter() - t
        self._emit(bursts)
        return len(inp)
