"""GNU Radio block: Nt x Nr channel emulator driven per burst by realisations (local TDL draws
or gsc_phy channel realisations received over ZeroMQ)."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter

import numpy as np
import pmt
from gnuradio import gr

from bridge.transport import Puller
from bridge.wire import WireError
from flowgraphs.gsc_ofdm.mimo_channel import MimoChannel, TdlRealisations, parse_channel_frame

__all__ = ["channel_feed"]

logger = logging.getLogger("gsc.gr.channel_feed")

_SEQ = pmt.intern("gsc_seq")


class channel_feed(gr.sync_block):  # noqa: N801 - GNU Radio block naming
    """Applies one channel realisation per burst (taps per TX/RX antenna pair, optional
    frequency-flat RIS gain), a common CFO and independent AWGN per RX antenna.

    :param num_tx: TX antennas (inputs).
    :param num_rx: RX antennas (outputs).
    :param snr_db: Es/N0 per RE in dB (noise ``10^(-snr/10)`` per sample and antenna);
        below -100: no noise.
    :param cfo: Carrier frequency offset in subcarrier spacings.
    :param fft_size: FFT size that defines the subcarrier spacing.
    :param endpoint: ZeroMQ endpoint (PULL) of realisation messages from gsc_phy
        (``gsc_ofdm.mimo_channel.channel_frame``, keyed by frame ``seq``); '' = draw TDL
        realisations locally (``channel``, ``delay_spread_ns``, ``samp_rate``, ``seed``).
    :param bind: Bind ``endpoint`` (default: connect).
    :param wait_ms: How long a burst may wait for its realisation before the previous one is
        reused (counted as ``no_realisation``).
    :param channel: Local TDL profile (``awgn``, ``tdl-a`` .. ``tdl-e``).
    :param delay_spread_ns: Local TDL delay spread.
    :param samp_rate: Sample rate in Hz.
    :param seed: Seed of the local realisations (``[seed, seq, r, t]``) and of the noise.
    :param stats_file: Write counters as JSON there when the flowgraph stops ('' = no).

    A burst is found by its ``gsc_seq`` tag on input 0; tags are not propagated.
    """

    def __init__(
        self,
        num_tx: int = 2,
        num_rx: int = 2,
        snr_db: float = 20.0,
        cfo: float = 0.0,
        fft_size: int = 72,
        endpoint: str = "",
        bind: bool = False,
        wait_ms: int = 2000,
        channel: str = "tdl-a",
        delay_spread_ns: float = 100.0,
        samp_rate: float = 2.16e6,
        seed: int = 1,
        stats_file: str = "",
    ) -> None:
        gr.sync_block.__init__(self, name="gsc_channel_feed", in_sig=[np.complex64] * num_tx,
                               out_sig=[np.complex64] * num_rx)
        self.emu = MimoChannel(num_tx, num_rx, None if snr_db < -100 else snr_db, cfo,
                               fft_size, seed=seed + 7919)
        self.local = None if endpoint else TdlRealisations(
            channel, num_rx, num_tx, delay_spread_ns * 1e-9, samp_rate, seed)
        self.endpoint, self.bind, self.wait_ms = endpoint, bool(bind), int(wait_ms)
        self.stats_file = stats_file
        self.counters: Counter = Counter()
        self._feed: Puller | None = None
        self._known: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._last: tuple[np.ndarray, np.ndarray | None] | None = None
        self._busy_s = 0.0
        self._wait_s = 0.0  # waiting for realisations: not busy
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def set_snr_db(self, snr_db: float) -> None:
        """Change Es/N0 while running (below -100: no noise)."""
        self.emu.set_snr_db(None if snr_db < -100 else snr_db)

    def set_cfo(self, cfo: float) -> None:
        """Change the CFO (subcarrier spacings) while running."""
        self.emu.cfo = float(cfo)

    def start(self) -> bool:
        if self.endpoint:
            self._feed = Puller(self.endpoint, bind=self.bind, timeout_ms=20, hwm=1000)
        return True

    def stop(self) -> bool:
        if self._feed is not None:
            self._feed.close()
            self._feed = None
        if self.stats_file:
            with open(self.stats_file, "w", encoding="utf-8") as fh:
                json.dump(self.stats(), fh, indent=1)
        return True

    def stats(self) -> dict:
        """Samples in/out, bursts, realisations received/used/missing, ``busy_s`` (emulating)
        and ``wait_s`` (waiting for realisations)."""
        out = dict(self.counters)
        out.update(samples_in=self.emu.samples_in, samples_out=self.emu.samples_out,
                   noise_var=self.emu.noise_var, source="feed" if self.endpoint else "local",
                   busy_s=self._busy_s, wait_s=self._wait_s)
        return out

    def _take(self, timeout_ms: int) -> None:
        """Receive realisation messages until none is waiting (or ``timeout_ms`` passed)."""
        if self._feed is None:
            return
        frame = self._feed.recv(timeout_ms=timeout_ms)
        while frame is not None:
            try:
                seq, taps, ris = parse_channel_frame(frame, self.emu.num_rx, self.emu.num_tx)
            except WireError as e:
                self.counters[f"dropped_{e.cause}"] += 1
                logger.warning("gsc channel feed: dropped realisation (%s): %s", e.cause, e)
            else:
                self._known[seq] = (taps, ris)
                self.counters["realisations_in"] += 1
            frame = self._feed.recv(timeout_ms=0)

    def _realisation(self, seq: int):
        if self.local is not None:
            return self.local.taps(seq), None
        self._take(0)
        t0 = time.monotonic()
        deadline = t0 + self.wait_ms / 1000.0
        while seq not in self._known and time.monotonic() < deadline:
            self._take(20)
        self._wait_s += time.monotonic() - t0
        for old in [k for k in self._known if k < seq]:  # frames already past
            del self._known[old]
            self.counters["realisations_unused"] += 1
        if seq in self._known:
            self.counters["realisations_used"] += 1
            return self._known.pop(seq)
        self.counters["no_realisation"] += 1  # counted, never silent: reuse the last one
        n = self.counters["no_realisation"]
        if n <= 10:
            logger.warning("gsc channel feed: no realisation for frame %d within %d ms; "
                           "reusing the previous one", seq, self.wait_ms)
        if self._last is not None:
            return self._last
        eye = np.eye(self.emu.num_rx, self.emu.num_tx, dtype=np.complex64)[:, :, None]
        return eye, None

    def work(self, input_items, output_items):
        n = len(output_items[0])
        t = time.perf_counter()
        waited = self._wait_s
        base = self.nitems_read(0)
        bursts = []
        for tag in self.get_tags_in_window(0, 0, n, _SEQ):
            taps, ris = self._realisation(pmt.to_uint64(tag.value))
            self._last = (taps, ris)
            bursts.append((tag.offset - base, taps, ris))
        self.counters["bursts"] += len(bursts)
        y = self.emu.process(np.stack([np.asarray(x[:n]) for x in input_items]), bursts)
        for i, out in enumerate(output_items):
            out[:] = y[i]
        self._busy_s += time.perf_counter() - t - (self._wait_s - waited)
        return n
