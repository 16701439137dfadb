"""The RIS channel (:mod:`gsc_phy.ris`) as a channel sampler of the simulated link."""

from __future__ import annotations

import torch
from sionna.phy.channel import subcarrier_frequencies
from sionna.phy.ofdm import ResourceGrid

from bridge.common import ConfigError

from .config import LinkConfig
from .ris import RISChannel, RISGeometry, RISPhaseController, ris_grid

__all__ = ["RISChannelSampler"]


class RISChannelSampler:
    """Cascaded TX-RIS-RX channel on the link's resource grid.

    Deterministic geometry (the phases are chosen once by the controller and cached), so
    every frame sees the same channel; Es/N0 is the SNR of the direct LOS link (see
    :class:`~gsc_phy.ris.RISChannel`). MIMO phase optimisation targets the middle of the
    configured SNR range.

    :output h_freq: [batch, 1, Nr, 1, Nt, num_ofdm_symbols, fft_size].
    """

    def __init__(self, cfg: LinkConfig, resource_grid: ResourceGrid, device: str) -> None:
        rows, cols = ris_grid(cfg.ris_elements)
        try:
            geometry = RISGeometry(
                cfg.tx_pos, cfg.ris_pos, cfg.rx_pos, rows, cols,
                carrier_frequency_hz=cfg.carrier_frequency_hz,
                num_tx_ant=cfg.num_tx_ant, num_rx_ant=cfg.num_rx_ant,
                near_field=cfg.ris_near_field, direct_path_blocked=cfg.ris_direct_blocked,
            )
        except ValueError as e:
            raise ConfigError(f"RIS geometry: {e}") from None
        snr_mid = sorted(cfg.snr_db)[len(cfg.snr_db) // 2]
        controller = RISPhaseController(
            cfg.ris_phases, bits=cfg.ris_bits or None, snr_db=snr_mid, device=device
        )
        self.channel = RISChannel(geometry, phase_controller=controller, device=device)
        self._freqs = subcarrier_frequencies(
            resource_grid.fft_size, resource_grid.subcarrier_spacing, device=device
        )
        self._num_symbols = resource_grid.num_ofdm_symbols

    def __call__(self, batch_size: int) -> torch.Tensor:
        return self.channel(batch_size, self._num_symbols, self._freqs).to(torch.complex64)
