"""The gsc frame format: transport blocks, CRC-24A, 5G LDPC, QAM and the OFDM resource grid.

One *frame* is ``num_slots`` OFDM slots of 14 symbols each carrying ``num_streams``
spatial streams. Its bits are laid out as follows (the GNU Radio path carries exactly
the same bits):

1. a **transport block** is ``k - 24`` payload bits followed by the 5G CRC-24A (MSB first)
   XORed with the 24-bit mask ``0x5A3C96`` (as 38.212 masks DCI CRCs with an RNTI; without
   it an all-zero decoder output would pass the check), so ``k`` bits enter the encoder;
2. each transport block is encoded by the 3GPP 38.212 LDPC code (Sionna's
   ``LDPC5GEncoder``, base graph chosen by 38.212 rules, rate matching to ``n`` bits);
3. the ``codewords_per_frame`` codewords are concatenated, followed by
   ``padding_bits`` filler bits (drawn at random; the receiver ignores them), so that
   the frame exactly fills ``num_streams x num_data_symbols x bits_per_symbol`` bits;
4. that bit vector is split into ``num_streams`` equal parts (stream-major), Gray-mapped
   (Sionna ``Mapper``, ``qam`` or ``pam`` for BPSK) and written onto the resource grid in
   Sionna's order (OFDM symbol-major, subcarrier-minor, skipping pilots, guards and DC).

Uncoded frames skip 1-2: the whole frame is payload.

Pilots: Kronecker pattern on OFDM symbols ``pilot_symbols`` (+14 per further slot),
orthogonal across streams (QPSK pilots, seeded by Sionna's pilot pattern).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sionna.phy.ofdm import ResourceGrid
from sionna.phy.utils import ebnodb2no

from .config import LinkConfig

__all__ = ["FrameFormat", "SLOT_SYMBOLS", "CRC_BITS", "bandwidth_ratio"]

SLOT_SYMBOLS = 14
CRC_BITS = 24


@dataclass(frozen=True)
class FrameFormat:
    """Sizes of one frame, derived from a :class:`LinkConfig`.

    :param cfg: The link configuration.

    .. code-block:: python

        from gsc_phy.config import LinkConfig
        from gsc_phy.frame import FrameFormat
        ff = FrameFormat.from_config(LinkConfig(modulation="16qam"))
        print(ff.codewords_per_frame, ff.padding_bits)
    """

    num_slots: int
    num_streams: int
    bits_per_symbol: int
    data_symbols_per_stream: int
    k: int
    n: int
    codewords_per_frame: int
    padding_bits: int
    uncoded: bool
    resource_grid: ResourceGrid
    repetitions: int = 1

    @classmethod
    def from_config(cls, cfg: LinkConfig, device: str | None = None) -> FrameFormat:
        bps = cfg.bits_per_symbol
        streams = cfg.streams
        num_slots = 1
        while True:
            rg = _resource_grid(cfg, num_slots, device)
            capacity = streams * rg.num_data_symbols * bps
            if cfg.uncoded or capacity >= cfg.n:
                break
            num_slots += 1
        if cfg.uncoded:
            k = n = capacity
            cws, pad = 1, 0
        else:
            k, n = cfg.k, cfg.n
            cws = capacity // n
            pad = capacity - cws * n
        return cls(
            num_slots=num_slots,
            num_streams=streams,
            bits_per_symbol=bps,
            data_symbols_per_stream=int(rg.num_data_symbols),
            k=k,
            n=n,
            codewords_per_frame=cws,
            padding_bits=pad,
            uncoded=cfg.uncoded,
            resource_grid=rg,
            repetitions=cfg.repetitions,
        )

    # ---------------------------------------------------------------- derived sizes
    @property
    def payload_bits_per_block(self) -> int:
        """Information bits per transport block (CRC excluded)."""
        return self.k if self.uncoded else self.k - CRC_BITS

    @property
    def payload_bits_per_frame(self) -> int:
        return self.payload_bits_per_block * self.codewords_per_frame

    @property
    def coded_bits_per_frame(self) -> int:
        return self.num_streams * self.data_symbols_per_stream * self.bits_per_symbol

    @property
    def channel_uses_per_frame(self) -> int:
        """Complex channel uses per frame: every time-frequency RE incl. pilots, guards and CP
        (not multiplied by the number of antennas), times the slot-aggregation repetitions."""
        rg = self.resource_grid
        return int(rg.num_ofdm_symbols * (rg.fft_size + rg.cyclic_prefix_length)
                   * self.repetitions)

    @property
    def grid_efficiency(self) -> float:
        """Data REs / (all used REs incl. CP) of one slot: the eta in Eb/N0 = Es/N0 -
        10log10(S m r eta) (r: :attr:`code_rate` per transmission, repetitions included)."""
        rg = self.resource_grid
        used = rg.num_ofdm_symbols * rg.num_effective_subcarriers
        used *= 1 + rg.cyclic_prefix_length / rg.fft_size
        return float(rg.num_data_symbols) / used

    @property
    def code_rate(self) -> float:
        """Information bits per coded bit sent: k/n, divided by the slot repetitions."""
        return (1.0 if self.uncoded else self.k / self.n) / self.repetitions

    def noise_variance(self, snr_db: float, snr_kind: str) -> float:
        """Noise variance ``no`` (per complex dimension) for Es/N0 or Eb/N0 in dB.

        Es is the total transmitted energy per resource element (all antennas, = 1).
        For Eb/N0 the conversion is Sionna's ``ebnodb2no`` with the resource grid
        (bits/symbol, code rate k/n, streams, pilots, guards and CP overhead).
        """
        if snr_kind == "esno":
            return 10.0 ** (-snr_db / 10.0)
        return float(
            ebnodb2no(snr_db, self.bits_per_symbol, self.code_rate, self.resource_grid)
        )

    def esno_db(self, snr_db: float, snr_kind: str) -> float:
        """Es/N0 in dB for a point given as Es/N0 or Eb/N0."""
        return -10.0 * math.log10(self.noise_variance(snr_db, snr_kind))


def bandwidth_ratio(channel_uses: int, channels: int, height: int, width: int) -> float:
    """Bandwidth ratio rho = complex channel uses / (C * H * W) source dimensions.

    ``channel_uses`` must count everything sent: coding, pilots, guards, CP and headers
    (e.g. ``frames * FrameFormat.channel_uses_per_frame``).
    """
    if min(channels, height, width) < 1 or channel_uses < 0:
        raise ValueError("bandwidth_ratio needs positive image dimensions")
    return channel_uses / float(channels * height * width)


def _resource_grid(cfg: LinkConfig, num_slots: int, device: str | None) -> ResourceGrid:
    pilots = [p + SLOT_SYMBOLS * s for s in range(num_slots) for p in cfg.pilot_symbols]
    return ResourceGrid(
        num_ofdm_symbols=SLOT_SYMBOLS * num_slots,
        fft_size=cfg.fft_size,
        subcarrier_spacing=cfg.subcarrier_spacing_hz,
        num_tx=1,
        num_streams_per_tx=cfg.streams,
        cyclic_prefix_length=cfg.cyclic_prefix_length,
        num_guard_carriers=tuple(cfg.guard_carriers),
        dc_null=cfg.dc_null,
        pilot_pattern="kronecker" if pilots else "empty",
        pilot_ofdm_symbol_indices=pilots if pilots else None,
        device=device,
    )
