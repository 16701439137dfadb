"""GNU Radio source: gsc frames (data symbols over ZeroMQ or PDUs) -> tagged OFDM bursts."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque

import numpy as np
import pmt
from gnuradio import gr

from bridge.transport import Puller
from bridge.wire import WireError
from flowgraphs.gsc_gr.lifecycle import FrameSourceLifecycle
from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.messages import control_set, is_eos, parse_tx_frame
from flowgraphs.gsc_ofdm.tx import BurstModulator, BurstStream

__all__ = ["ofdm_burst_tx"]

logger = logging.getLogger("gsc.gr.burst_tx")

_SOB = pmt.intern("tx_sob")
_EOB = pmt.intern("tx_eob")
_LEN = pmt.intern("packet_len")
_SEQ = pmt.intern("gsc_seq")
_SNR = pmt.intern("gsc_snr_db")  # a new Es/N0 from this burst on (channel emulator)
_PORT = pmt.intern("frames")


class ofdm_burst_tx(FrameSourceLifecycle, gr.sync_block):  # noqa: N801 - GNU Radio block naming
    """Frames in, OFDM bursts out: grid mapping with pilots, IFFT + CP, preamble, gaps.

    :param grid: Grid JSON path or shipped name (``default``, ``16qam``).
    :param endpoint: ZeroMQ endpoint of the frame source (PULL; empty: message port only).
        Messages are bridge TX frames (``SYMBOLS`` complex64 ``[S, Nd]``) and the
        end-of-stream ``CONTROL {"cmd": "eos"}``; anything else is counted and dropped.
    :param bind: Bind ``endpoint`` instead of connecting to it.
    :param gap_min: Fewest zero samples after each burst.
    :param gap_max: Most zero samples after each burst (random in between).
    :param seed: Seed of the gap lengths.
    :param idle_zeros: Stream zeros while no frame is queued (for radios that need a
        continuous stream); otherwise produce nothing until a frame arrives.
    :param stats_file: Write counters as JSON there when the flowgraph stops ('' = no).

    Message port ``frames``: a PDU whose vector (c32) holds one frame's data symbols, or
    the symbol ``eos``. Output tags per burst: ``tx_sob``, ``packet_len`` (burst samples),
    ``gsc_seq`` at its first sample and ``tx_eob`` at its last. After end of stream the
    block finishes (``WORK_DONE``) once every queued burst is out.
    """

    def __init__(
        self,
        grid: str = "default",
        endpoint: str = "",
        bind: bool = False,
        gap_min: int = 64,
        gap_max: int = 512,
        seed: int = 0,
        idle_zeros: bool = False,
        stats_file: str = "",
    ) -> None:
        gr.sync_block.__init__(self, name="gsc_ofdm_burst_tx", in_sig=None,
                               out_sig=[np.complex64])
        self.layout = GridLayout.load(grid)
        self.modulator = BurstModulator(self.layout)
        self.stream = BurstStream(self.modulator, gap_min, gap_max, seed)
        self.endpoint = endpoint
        self.bind = bool(bind)
        self.idle_zeros = bool(idle_zeros)
        self.stats_file = stats_file
        self.counters: Counter = Counter()
        self._pending_msgs: deque = deque()
        self._eob: deque = deque()
        self._eos = False
        self._set_next: dict = {}  # settings that go with the next frame's burst
        self._sets: dict[int, dict] = {}  # frame seq -> settings tagged on its burst
        self._rx: Puller | None = None
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._busy_s = 0.0
        self.message_port_register_in(_PORT)
        self.set_msg_handler(_PORT, self._on_msg)
        self.set_min_output_buffer(1 << 15)

    def stats(self) -> dict:
        """Counters: frames received and dropped (by cause), bursts and samples out, and
        ``busy_s``: seconds spent modulating and writing (ZeroMQ waits excluded)."""
        out = dict(self.counters)
        out.update(
            bursts_out=self.stream.bursts_out,
            samples_out=self.stream.samples_out,
            format_id=self.layout.format_id,
            burst_length=self.modulator.burst_length,
            busy_s=self._busy_s,
        )
        if self._t_first is not None and self._t_last is not None:
            out["active_s"] = self._t_last - self._t_first
        return out

    # ------------------------------------------------------------------ input
    def _on_msg(self, msg) -> None:
        self._pending_msgs.append(msg)

    def _take_msg(self, msg) -> None:
        if pmt.is_symbol(msg) and pmt.symbol_to_string(msg) == "eos":
            self._eos = True
            return
        try:
            vec = pmt.cdr(msg) if pmt.is_pair(msg) else msg
            data = np.asarray(pmt.c32vector_elements(vec), np.complex64)
            s, nd = self.modulator.data_shape
            if data.size != s * nd:
                raise ValueError(f"{data.size} symbols, the grid needs {s * nd}")
        except Exception as e:  # malformed PDU: count, log, keep going
            self._drop("pdu", str(e))
            return
        t = time.perf_counter()
        self.stream.push(data.reshape(s, nd), self.counters["frames_in"])
        self._busy_s += time.perf_counter() - t
        self.counters["frames_in"] += 1

    def _drop(self, cause: str, detail: str) -> None:
        key = f"dropped_{cause}"
        self.counters[key] += 1
        if self.counters[key] <= 10:
            logger.warning("gsc burst tx: dropped frame (%s): %s", cause, detail)

    def _fill(self, want: int) -> None:
        """Queue frames until ``want`` samples are pending, the input is empty or ended."""
        while self._pending_msgs:
            self._take_msg(self._pending_msgs.popleft())
        shape = self.modulator.data_shape
        while self._rx is not None and not self._eos and self.stream.pending < want:
            frame = self._rx.recv(timeout_ms=0 if self.stream.pending else 50)
            if frame is None:
                break
            if is_eos(frame):
                self._eos = True
                break
            settings = control_set(frame)
            if settings is not None:  # tagged on the next burst (see work)
                self._set_next.update(settings)
                self.counters["settings_in"] += 1
                continue
            try:
                data = parse_tx_frame(frame, shape, self.layout.format_id)
            except WireError as e:
                self._drop(e.cause, str(e))
                continue
            t = time.perf_counter()
            self.stream.push(data, frame.seq)
            self._busy_s += time.perf_counter() - t
            self.counters["frames_in"] += 1
            if self._set_next:
                self._sets[frame.seq], self._set_next = self._set_next, {}

    # ------------------------------------------------------------------ output
    def work(self, input_items, output_items):
        out = output_items[0]
        n = len(out)
        self._fill(n)
        before = self.stream.samples_out
        t = time.perf_counter()
        x, starts = self.stream.read(n)  # modulates queued frames as their turn comes
        self._busy_s += time.perf_counter() - t
        if not len(x):
            if self._eos and not self._pending_msgs:
                return -1  # WORK_DONE: end of stream, everything sent
            if self.idle_zeros:
                out[:] = 0
                return n
            if self._rx is None:
                time.sleep(0.005)  # message-port mode: wait for PDUs
            return 0
        now = time.monotonic()
        if self._t_first is None:
            self._t_first = now
        self._t_last = now
        t = time.perf_counter()
        out[: len(x)] = x
        base = self.nitems_written(0)
        for off, blen, seq in starts:
            pos = base + off - before
            self.add_item_tag(0, pos, _SOB, pmt.PMT_T)
            self.add_item_tag(0, pos, _LEN, pmt.from_long(blen))
            self.add_item_tag(0, pos, _SEQ, pmt.from_uint64(seq))
            settings = self._sets.pop(seq, None)
            if settings and "snr_db" in settings:
                self.add_item_tag(0, pos, _SNR, pmt.from_double(float(settings["snr_db"])))
            self._eob.append(pos + blen - 1)
        end = base + len(x)
        while self._eob and self._eob[0] < end:  # tag each burst end once it is written
            self.add_item_tag(0, self._eob.popleft(), _EOB, pmt.PMT_T)
        self._busy_s += time.perf_counter() - t
        return len(x)
