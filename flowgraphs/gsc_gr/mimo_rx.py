"""GNU Radio sink: Nr antenna streams -> synchronised, MIMO-equalised gsc frames over ZeroMQ."""

from __future__ import annotations

import logging
import time
from collections import Counter

import numpy as np
from gnuradio import gr

from bridge.reliable import ReliableQueue, queue_server_curve
from flowgraphs.gsc_gr.lifecycle import rx_block_stats, write_stats
from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.messages import rx_frame
from flowgraphs.gsc_ofdm.mimo import MimoStreamReceiver
from flowgraphs.gsc_ofdm.rx import RxBurst

__all__ = ["mimo_burst_rx"]

logger = logging.getLogger("gsc.gr.mimo_rx")


class mimo_burst_rx(gr.sync_block):  # noqa: N801 - GNU Radio block naming
    """Detection and CFO on antenna 0, per-stream pilot channel estimation on every antenna,
    LMMSE detection per RE; each burst goes out as a bridge RX frame ``[3, S, Nd]`` (the
    decoder service demaps and decodes both streams).

    :param grid: Grid JSON path or shipped name with S streams (``mimo2x2``).
    :param num_rx: RX antennas (inputs, >= S).
    :param endpoint: ZeroMQ endpoint of the reliable work queue for the decoder service
        (:class:`bridge.reliable.ReliableQueue`, bound here; '' = none: bursts are kept in
        :attr:`bursts`). Workers connect, take frames on credit and acknowledge them.
    :param bind: Must be ``True`` (the block binds the queue).
    :param threshold: Detection threshold on the Schmidl & Cox coherence (0..1).
    :param xcorr_threshold: Preamble correlation a detection must reach (0..1).
    :param send_timeout_ms: At stop, how long to wait for a decoder when none ever connected
        (queued frames are then counted as ``decoder_absent``).
    :param stats_file: Write counters as JSON there when the flowgraph stops ('' = no).
    :param curve_secret: CurveZMQ server secret key file (``gsc keys generate``; '' = off).
    :param curve_authorized_dir: Directory of the decoder hosts' authorised public keys.
        An ``endpoint`` that is not loopback/ipc (the decoder on another host, e.g.
        ``tcp://0.0.0.0:5601``) requires both; the queue is then encrypted and only those
        keys are served. Missing or half-given keys raise ``ValueError`` at construction.
    """

    def __init__(
        self,
        grid: str = "mimo2x2",
        num_rx: int = 2,
        endpoint: str = "",
        bind: bool = True,
        threshold: float = 0.1,
        xcorr_threshold: float = 0.35,
        send_timeout_ms: int = 1000,
        stats_file: str = "",
        curve_secret: str = "",
        curve_authorized_dir: str = "",
    ) -> None:
        if not bind:
            raise ValueError("mimo_burst_rx binds its decoder endpoint (bind=True)")
        self.curve = queue_server_curve(endpoint, curve_secret, curve_authorized_dir)
        gr.sync_block.__init__(self, name="gsc_mimo_burst_rx", in_sig=[np.complex64] * num_rx,
                               out_sig=None)
        self.layout = GridLayout.load(grid)
        self.receiver = MimoStreamReceiver(self.layout, num_rx, threshold=threshold,
                                           xcorr_threshold=xcorr_threshold)
        self.endpoint, self.bind = endpoint, bool(bind)
        self.send_timeout_ms = int(send_timeout_ms)
        self.stats_file = stats_file
        self.counters: Counter = Counter()
        self.bursts: list[RxBurst] = []  # kept only without an endpoint (tests)
        self._queue: ReliableQueue | None = None
        self._queue_stats: dict = {}
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._busy_s = 0.0

    def start(self) -> bool:
        if self.endpoint:
            self._queue = ReliableQueue(self.endpoint, queue_max=256,
                                        allow_remote=self.curve is not None,
                                        curve=self.curve).start()
        return True

    def stop(self) -> bool:
        self._emit(self.receiver.flush())
        if self._queue is not None:
            self._queue_stats = self._queue.drain(30.0, absent_s=self.send_timeout_ms / 1000)
            self._queue = None
        write_stats(self.stats_file, self.stats())
        return True

    def stats(self) -> dict:
        """Receiver counters, queue counters, ``busy_s`` and ``active_s``."""
        q = self._queue.stats() if self._queue is not None else self._queue_stats
        return rx_block_stats(self.receiver.stats, self.counters, q, self.layout.format_id,
                              self._busy_s, self._t_first, self._t_last)

    def _emit(self, bursts: list[RxBurst]) -> None:
        for b in bursts:
            if self._queue is None:
                self.bursts.append(b)
                continue
            meta = {"cfo": b.cfo, "snr_db": b.snr_db, "noise_var": b.noise_var,
                    "xcorr": b.xcorr, "metric": b.metric}
            frame = rx_frame(b.x_hat, b.no_eff, meta, seq=b.seq, format_id=self.layout.format_id)
            if self._queue.put(frame):
                self.counters["frames_queued"] += 1
            else:
                self.counters["queue_overflow"] += 1
                if self.counters["queue_overflow"] <= 10:
                    logger.warning("gsc mimo rx: decoder queue full, frame %d dropped", b.seq)

    def work(self, input_items, output_items):
        now = time.monotonic()
        self._t_first = self._t_first or now
        self._t_last = now
        t = time.perf_counter()
        n = len(input_items[0])
        bursts = self.receiver.process(np.stack([np.asarray(x[:n]) for x in input_items]))
        self._busy_s += time.perf_counter() - t
        self._emit(bursts)
        return n
