"""GNU Radio source: gsc MIMO frames (S streams over ZeroMQ) -> S tagged stream signals."""

from __future__ import annotations

import logging
import time
from collections import Counter

import numpy as np
import pmt
from gnuradio import gr

from bridge.transport import Puller
from bridge.wire import WireError
from flowgraphs.gsc_gr.lifecycle import FrameSourceLifecycle
from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.messages import is_eos, parse_tx_frame
from flowgraphs.gsc_ofdm.mimo import MimoBurstModulator, MimoBurstStream

__all__ = ["mimo_burst_tx"]

logger = logging.getLogger("gsc.gr.mimo_tx")

_SOB = pmt.intern("tx_sob")
_LEN = pmt.intern("packet_len")
_SEQ = pmt.intern("gsc_seq")


class mimo_burst_tx(FrameSourceLifecycle, gr.sync_block):  # noqa: N801 - GNU Radio block naming
    """Frames in, one OFDM signal per spatial stream out (grid with each stream's pilots,
    IFFT + CP, the preamble on stream 0, random gaps); feed them to a ``gsc Precoder``.

    :param grid: Grid JSON path or shipped name with S streams (``mimo2x2``).
    :param endpoint: ZeroMQ endpoint of the frame source (PULL): bridge TX frames
        (``SYMBOLS`` complex64 ``[S, Nd]``) and the end-of-stream ``CONTROL``.
    :param bind: Bind ``endpoint`` instead of connecting to it.
    :param gap_min: Fewest zero samples after each burst.
    :param gap_max: Most zero samples after each burst (random in between).
    :param seed: Seed of the gap lengths.
    :param stats_file: Write counters as JSON there when the flowgraph stops ('' = no).
    :param num_streams: Outputs; must equal the grid's streams (GRC needs it up front).

    Output 0 carries the tags of each burst: ``tx_sob``, ``packet_len`` and ``gsc_seq`` (the
    frame's ``seq``) at its first sample. Finishes once end of stream is sent.
    """

    def __init__(
        self,
        grid: str = "mimo2x2",
        endpoint: str = "",
        bind: bool = False,
        gap_min: int = 64,
        gap_max: int = 512,
        seed: int = 0,
        stats_file: str = "",
        num_streams: int = 2,
    ) -> None:
        self.layout = GridLayout.load(grid)
        s = self.layout.num_streams
        if s != num_streams:
            raise ValueError(f"grid {grid!r} has {s} streams, the block was given {num_streams}")
        gr.sync_block.__init__(self, name="gsc_mimo_burst_tx", in_sig=None,
                               out_sig=[np.complex64] * s)
        self.modulator = MimoBurstModulator(self.layout)
        self.stream = MimoBurstStream(self.modulator, gap_min, gap_max, seed)
        self.endpoint = endpoint
        self.bind = bool(bind)
        self.stats_file = stats_file
        self.counters: Counter = Counter()
        self._eos = False
        self._rx: Puller | None = None
        self._busy_s = 0.0
        self.set_min_output_buffer(1 << 15)

    def stats(self) -> dict:
        """Frames in and dropped (by cause), bursts and samples out, ``busy_s``."""
        out = dict(self.counters)
        out.update(bursts_out=self.stream.bursts_out, samples_out=self.stream.samples_out,
                   format_id=self.layout.format_id, busy_s=self._busy_s)
        return out

    def _fill(self, want: int) -> None:
        shape = self.modulator.data_shape
        while self._rx is not None and not self._eos and self.stream.pending < want:
            frame = self._rx.recv(timeout_ms=0 if self.stream.pending else 50)
            if frame is None:
                break
            if is_eos(frame):
                self._eos = True
                break
            try:
                data = parse_tx_frame(frame, shape, self.layout.format_id)
            except WireError as e:
                self.counters[f"dropped_{e.cause}"] += 1
                logger.warning("gsc mimo tx: dropped frame (%s): %s", e.cause, e)
                continue
            self.stream.push(data, frame.seq)
            self.counters["frames_in"] += 1

    def work(self, input_items, output_items):
        n = len(output_items[0])
        self._fill(n)
        t = time.perf_counter()
        before = self.stream.samples_out
        x, starts = self.stream.read(n)
        if not x.shape[1]:
            if self._eos:
                return -1  # WORK_DONE
            if self._rx is None:
                time.sleep(0.005)
            return 0
        for i, out in enumerate(output_items):
            out[: x.shape[1]] = x[i]
        base = self.nitems_written(0)
        for off, blen, seq in starts:
            pos = base + off - before
            self.add_item_tag(0, pos, _SOB, pmt.PMT_T)
            self.add_item_tag(0, pos, _LEN, pmt.from_long(blen))
            self.add_item_tag(0, pos, _SEQ, pmt.from_uint64(seq))
        self._busy_s += time.perf_counter() - t
        return x.shape[1]
