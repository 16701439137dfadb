"""GNU Radio sink: samples -> detected, synchronised, equalised gsc frames over ZeroMQ."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter

import numpy as np
import pmt
from gnuradio import gr

from bridge.transport import Pusher
from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.messages import rx_frame
from flowgraphs.gsc_ofdm.rx import RxBurst, StreamReceiver

__all__ = ["ofdm_burst_rx"]

logger = logging.getLogger("gsc.gr.burst_rx")

_PORT = pmt.intern("frames")


class ofdm_burst_rx(gr.sync_block):  # noqa: N801 - GNU Radio block naming
    """Burst detection, timing, fractional/integer CFO, channel estimation, equalisation.

    :param grid: Grid JSON path or shipped name (``default``, ``16qam``).
    :param endpoint: ZeroMQ endpoint for the decoder service (PUSH; empty: none). Each burst
        becomes one bridge RX frame (``SYMBOLS`` complex64 ``[3, S, Nd]``: equalised
        symbols, noise variances, metadata; see ``flowgraphs.gsc_ofdm.messages``).
    :param bind: Bind ``endpoint`` (default; decoder workers connect and share the stream).
    :param threshold: Detection threshold on the Schmidl & Cox coherence (0..1).
    :param xcorr_threshold: Preamble correlation a detection must reach (0..1).
    :param max_int_cfo: Largest integer CFO searched (subcarrier spacings).
    :param time_interp: ``drift`` (static channel per burst) or ``linear``.
    :param send_timeout_ms: How long a frame may wait for a decoder before it is dropped
        (counted as ``no_decoder``); the flowgraph keeps running and resumes sending when a
        decoder connects again.
    :param pdus: Also publish each burst on the ``frames`` message port (meta dict +
        c32 vector of the equalised symbols).
    :param stats_file: Write counters as JSON there when the flowgraph stops ('' = no).
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
    ) -> None:
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
        self.bind = bool(bind)
        self.send_timeout_ms = int(send_timeout_ms)
        self.pdus = bool(pdus)
        self.stats_file = stats_file
        self.counters: Counter = Counter()
        self._tx: Pusher | None = None
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._busy_s = 0.0
        self.message_port_register_out(_PORT)

    def start(self) -> bool:
        if self.endpoint:
            self._tx = Pusher(self.endpoint, bind=self.bind, timeout_ms=self.send_timeout_ms,
                              hwm=256, linger_ms=2000)
        return True

    def stop(self) -> bool:
        self._emit(self.receiver.flush())
        if self._tx is not None:
            self._tx.close()
            self._tx = None
        if self.stats_file:
            with open(self.stats_file, "w", encoding="utf-8") as fh:
                json.dump(self.stats(), fh, indent=1)
        return True

    def stats(self) -> dict:
        """Receiver counters (samples, candidates, false alarms, bursts), send results and
        ``busy_s``: seconds spent demodulating (ZeroMQ waits excluded)."""
        out = dict(self.receiver.stats)
        out.update(self.counters)
        out["format_id"] = self.layout.format_id
        out["busy_s"] = self._busy_s
        if self._t_first is not None and self._t_last is not None:
            out["active_s"] = self._t_last - self._t_first
        return out

    def _emit(self, bursts: list[RxBurst]) -> None:
        fid = self.layout.format_id
        for b in bursts:
            meta = {"cfo": b.cfo, "snr_db": b.snr_db, "noise_var": b.noise_var,
                    "xcorr": b.xcorr, "metric": b.metric}
            if self._tx is not None:
                frame = rx_frame(b.x_hat, b.no_eff, meta, seq=b.seq, format_id=fid)
                if self._tx.send(frame):
                    self.counters["frames_sent"] += 1
                else:
                    self.counters["dropped_no_decoder"] += 1
                    n = self.counters["dropped_no_decoder"]
                    if n <= 10 or n % 1000 == 0:
                        logger.warning("gsc burst rx: no decoder took frame %d within %d ms "
                                       "(%d dropped)", b.seq, self.send_timeout_ms, n)
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
