"""GNU Radio block: the gsc streaming channel emulator (``gsc_ofdm.channel``)."""

from __future__ import annotations

import json
import time

import numpy as np
import pmt
from gnuradio import gr

from flowgraphs.gsc_ofdm.channel import ChannelEmulator

__all__ = ["channel_emulator"]

_SOB = pmt.intern("tx_sob")
_SNR = pmt.intern("gsc_snr_db")  # ofdm_burst_tx: a new Es/N0 from this sample on


class channel_emulator(gr.basic_block):  # noqa: N801 - GNU Radio block naming
    """Multipath (TDL, block fading per burst), timing and sampling offset, CFO, AWGN.

    :param snr_db: Es/N0 per RE in dB (noise variance ``10^(-snr/10)`` per sample);
        ``None`` or below -100 for no noise.
    :param cfo: Carrier frequency offset in subcarrier spacings.
    :param fft_size: FFT size that defines the subcarrier spacing.
    :param channel: ``awgn`` or ``tdl-a`` .. ``tdl-e``.
    :param delay_spread_ns: TDL delay spread.
    :param samp_rate: Sample rate in Hz (TDL delays in samples).
    :param delay: Timing offset in samples (fractional allowed).
    :param sfo_ppm: Sampling frequency offset in ppm.
    :param fading: ``block`` (new realisation at every ``tx_sob`` tag) or ``static``.
    :param seed: Seed of noise and fading.
    :param stats_file: Write counters as JSON there when the flowgraph stops ('' = no).

    With a sampling offset the output rate differs from the input rate by ``sfo_ppm``;
    tags are not propagated (the receiver does not need them).
    """

    def __init__(
        self,
        snr_db: float | None = 20.0,
        cfo: float = 0.0,
        fft_size: int = 72,
        channel: str = "awgn",
        delay_spread_ns: float = 100.0,
        samp_rate: float = 2.16e6,
        delay: float = 0.0,
        sfo_ppm: float = 0.0,
        fading: str = "block",
        seed: int = 0,
        stats_file: str = "",
    ) -> None:
        gr.basic_block.__init__(self, name="gsc_channel_emulator", in_sig=[np.complex64],
                                out_sig=[np.complex64])
        if snr_db is not None and snr_db < -100:
            snr_db = None
        self.emu = ChannelEmulator(
            snr_db=snr_db,
            cfo=cfo,
            fft_size=fft_size,
            channel=channel,
            delay_spread_s=delay_spread_ns * 1e-9,
            samp_rate_hz=samp_rate,
            delay=delay,
            sfo_ppm=sfo_ppm,
            fading=fading,
            seed=seed,
        )
        self.stats_file = stats_file
        self._pending = np.zeros(0, np.complex64)
        self._busy_s = 0.0
        self.snr_changes = 0
        self._slack = 128 + int(delay) + int(abs(sfo_ppm) * 1e-6 * (1 << 15)) + 1
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self.set_min_output_buffer(1 << 15)

    def set_snr_db(self, snr_db: float | None) -> None:
        """Change Es/N0 while running (``None`` = no noise)."""
        self.emu.set_snr_db(None if snr_db is None or snr_db < -100 else snr_db)

    def set_cfo(self, cfo: float) -> None:
        """Change the CFO (subcarrier spacings) while running."""
        self.emu.cfo = float(cfo)

    def forecast(self, noutput_items, ninputs):
        return [0 if len(self._pending) else 1] * ninputs

    def general_work(self, input_items, output_items):
        out = output_items[0]
        if len(self._pending):
            n = min(len(self._pending), len(out))
            out[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        inp = input_items[0]
        # take only as much input as fits the output (the resampler may release a few
        # held-back samples more than it takes), so that nothing waits inside the block
        room = len(out) - self._slack
        k = min(len(inp), room if room > 0 else len(out) // 2)
        if k <= 0:
            return 0
        start = self.nitems_read(0)
        # a new Es/N0 applies from its tagged sample on: stop this chunk just before it, and
        # take it when it heads the chunk
        for tag in sorted(self.get_tags_in_window(0, 0, k, _SNR), key=lambda t: t.offset):
            rel = tag.offset - start
            if rel > 0:
                k = rel
                break
            self.set_snr_db(pmt.to_double(tag.value))
            self.snr_changes += 1
        tags = self.get_tags_in_window(0, 0, k, _SOB)
        t0 = time.perf_counter()
        y = self.emu.process(inp[:k], [t.offset - start for t in tags])
        self._busy_s += time.perf_counter() - t0
        self.consume(0, k)
        n = min(len(y), len(out))
        out[:n] = y[:n]
        if n < len(y):
            self._pending = y[n:].copy()
        return n

    def stop(self) -> bool:
        if self.stats_file:
            with open(self.stats_file, "w", encoding="utf-8") as fh:
                json.dump(self.stats(), fh, indent=1)
        return True

    def stats(self) -> dict:
        """Samples in and out, noise variance, CFO, ``busy_s`` (seconds spent emulating)."""
        e = self.emu
        return {
            "samples_in": e.samples_in,
            "samples_out": e.samples_out,
            "noise_var": e.noise_var,
            "cfo": e.cfo,
            "channel": e.channel,
            "snr_changes": self.snr_changes,
            "busy_s": self._busy_s,
        }
