"""GNU Radio block: per-burst MIMO precoder (S stream signals -> Nt antenna signals)."""

from __future__ import annotations

import json
import time

import numpy as np
import pmt
from gnuradio import gr

from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.mimo import PRECODERS, BurstPrecoder, precoder_matrix
from flowgraphs.gsc_ofdm.mimo_channel import TdlRealisations

__all__ = ["precoder"]

_SEQ = pmt.intern("gsc_seq")


class precoder(gr.sync_block):  # noqa: N801 - GNU Radio block naming
    """Maps the S stream signals of ``gsc MIMO Burst TX`` onto Nt TX antennas, one matrix
    ``W`` [Nt, S] (``||W||_F = 1``) per burst, switched at each ``gsc_seq`` tag of input 0.

    :param grid: Grid JSON path or shipped name (S streams, FFT size, preamble length).
    :param num_tx: TX antennas Nt (>= S).
    :param mode: ``identity`` (spatial multiplexing, ``I / sqrt(S)``) or ``svd``
        (eigen-beamforming with genie CSI: the dominant eigenvectors of
        ``sum_f H_f^H H_f`` of the realisation the channel emulator will apply to the burst,
        recomputed from the same ``channel``, ``delay_spread_ns``, ``samp_rate`` and
        ``channel_seed`` as the emulator's local TDL draws).
    :param channel: TDL profile of the emulator (``svd`` only).
    :param delay_spread_ns: Its delay spread (``svd`` only).
    :param samp_rate: Sample rate in Hz (``svd`` only).
    :param channel_seed: The emulator's seed (``svd`` only).
    :param num_rx: RX antennas of the channel (``svd`` only).
    :param stats_file: Write counters as JSON there when the flowgraph stops ('' = no).
    :param num_streams: Inputs; must equal the grid's streams (GRC needs it up front).

    The burst preambles go out unprecoded, stream ``s`` from antenna ``s`` with cyclic delay
    diversity (see ``gsc_ofdm.mimo``).
    """

    def __init__(
        self,
        grid: str = "mimo2x2",
        num_tx: int = 2,
        mode: str = "identity",
        channel: str = "tdl-a",
        delay_spread_ns: float = 100.0,
        samp_rate: float = 2.16e6,
        channel_seed: int = 1,
        num_rx: int = 2,
        stats_file: str = "",
        num_streams: int = 2,
    ) -> None:
        if mode not in PRECODERS:
            raise ValueError(f"precoder mode must be one of {', '.join(PRECODERS)}, got {mode!r}")
        self.layout = GridLayout.load(grid)
        s = self.layout.num_streams
        if s != num_streams:
            raise ValueError(f"grid {grid!r} has {s} streams, the block was given {num_streams}")
        gr.sync_block.__init__(self, name="gsc_precoder", in_sig=[np.complex64] * s,
                               out_sig=[np.complex64] * int(num_tx))
        self.mode = mode
        pre_len = 2 * self.layout.fft_size
        self.engine = BurstPrecoder(int(num_tx), s, pre_len)
        self.csi = None
        if mode == "svd":
            self.csi = TdlRealisations(channel, num_rx, num_tx, delay_spread_ns * 1e-9,
                                       samp_rate, channel_seed)
        self.stats_file = stats_file
        self.bursts = 0
        self._busy_s = 0.0

    def _matrix(self, seq: int):
        if self.csi is None:
            return None
        lay = self.layout
        return precoder_matrix("svd", self.engine.num_tx, self.engine.num_streams,
                               self.csi.taps(seq), lay.fft_size, lay.effective_subcarriers)

    def work(self, input_items, output_items):
        n = len(output_items[0])
        t = time.perf_counter()
        base = self.nitems_read(0)
        starts = [(tag.offset - base, self._matrix(pmt.to_uint64(tag.value)))
                  for tag in self.get_tags_in_window(0, 0, n, _SEQ)]
        self.bursts += len(starts)
        y = self.engine.process(np.stack([np.asarray(x[:n]) for x in input_items]), starts)
        for i, out in enumerate(output_items):
            out[:] = y[i]
        self._busy_s += time.perf_counter() - t
        return n

    def stop(self) -> bool:
        if self.stats_file:
            with open(self.stats_file, "w", encoding="utf-8") as fh:
                json.dump({"mode": self.mode, "bursts": self.bursts, "busy_s": self._busy_s},
                          fh, indent=1)
        return True
