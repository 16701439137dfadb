"""Channel models of the simulated link, all returning Sionna OFDM channel tensors.

Every model here produces ``h_freq`` of shape
``[batch, num_rx=1, num_rx_ant, num_tx=1, num_tx_ant, num_ofdm_symbols, fft_size]`` for
one resource grid. Stochastic models (Rayleigh, TDL, CDL, UMi, UMa) come from Sionna
with their power delay profiles normalised to unit average energy per TX-RX antenna pair
(E|h|^2 = 1, checked by a test) and *not* normalised per realisation, so fading stays in;
the received Es/N0 per antenna equals the configured Es/N0 on average. UMi/UMa are
generated without path loss and shadowing and then scaled by a constant measured over
512 drops at construction (their cluster powers, O2I losses and antenna patterns leave
E|h|^2 != 1): the SNR axis is the average received SNR.
"""

from __future__ import annotations

from typing import Protocol

import torch
from sionna.phy.channel import GenerateOFDMChannel, RayleighBlockFading
from sionna.phy.channel.tr38901 import CDL, TDL, PanelArray, UMa, UMi
from sionna.phy.channel.utils import gen_single_sector_topology
from sionna.phy.ofdm import ResourceGrid

from .config import LinkConfig

__all__ = ["ChannelSampler", "AWGNChannelSampler", "SionnaChannelSampler", "make_channel",
           "panel_array"]


class ChannelSampler(Protocol):
    """Anything that returns a batch of OFDM channel frequency responses."""

    def __call__(self, batch_size: int) -> torch.Tensor: ...


class AWGNChannelSampler:
    """Fixed channel ``sqrt(Nt) * I`` (``h = 1`` for SISO): every RX antenna sees unit power.

    :param resource_grid: Grid whose shape the output takes.
    :param num_tx_ant: TX antennas.
    :param num_rx_ant: RX antennas.
    :param device: Torch device.

    :output h_freq: [batch, 1, num_rx_ant, 1, num_tx_ant, num_ofdm_symbols, fft_size].
    """

    def __init__(
        self, resource_grid: ResourceGrid, num_tx_ant: int, num_rx_ant: int, device: str
    ) -> None:
        eye = torch.eye(num_rx_ant, num_tx_ant, dtype=torch.complex64, device=device)
        eye = eye * (num_tx_ant**0.5)
        self._h = eye[None, None, :, None, :, None, None].expand(
            -1, -1, -1, -1, -1, resource_grid.num_ofdm_symbols, resource_grid.fft_size
        )

    def __call__(self, batch_size: int) -> torch.Tensor:
        return self._h.expand(batch_size, -1, -1, -1, -1, -1, -1)


class SionnaChannelSampler:
    """Wraps a Sionna ``ChannelModel`` and ``GenerateOFDMChannel``.

    For the system-level models (UMi/UMa) a new single-sector topology is dropped for
    every batch, UT speed set by ``speed_mps``.
    """

    def __init__(
        self,
        model,
        resource_grid: ResourceGrid,
        device: str,
        scenario: str | None = None,
        speed_mps: float = 0.0,
    ) -> None:
        self._model = model
        self._gen = GenerateOFDMChannel(
            model, resource_grid, normalize_channel=False, device=device
        )
        self._scenario = scenario
        self._speed = speed_mps
        self._device = device
        self._scale = 1.0
        if scenario is not None:  # calibrate the average energy to 1 (fading stays)
            energy = torch.cat([self(128) for _ in range(4)]).abs().square().mean()
            self._scale = float(energy) ** -0.5

    def __call__(self, batch_size: int) -> torch.Tensor:
        if self._scenario is not None:
            topo = gen_single_sector_topology(
                batch_size,
                1,
                self._scenario,
                min_ut_velocity=self._speed,
                max_ut_velocity=self._speed,
                device=self._device,
            )
            self._model.reset_topology()  # the batch size may change between calls
            self._model.set_topology(*topo)
        h = self._gen(batch_size)
        return h * self._scale if self._scale != 1.0 else h


def panel_array(num_ant: int, cfg: LinkConfig, device: str) -> PanelArray:
    """A one-row array of ``num_ant`` antennas at the carrier of ``cfg`` (both link ends)."""
    return PanelArray(
        num_rows_per_panel=1,
        num_cols_per_panel=num_ant,
        polarization="single",
        polarization_type="V",
        antenna_pattern="omni",
        carrier_frequency=cfg.carrier_frequency_hz,
        device=device,
    )


def make_channel(cfg: LinkConfig, resource_grid: ResourceGrid, device: str) -> ChannelSampler:
    """Build the channel sampler named by ``cfg.channel``.

    Downlink convention: the transmitter is the base station (``bs_array``, Nt antennas),
    the receiver the user terminal (``ut_array``, Nr antennas).
    """
    nt, nr = cfg.num_tx_ant, cfg.num_rx_ant
    name = cfg.channel
    if name == "awgn":
        return AWGNChannelSampler(resource_grid, nt, nr, device)
    if name == "ris":
        from .ris_link import RISChannelSampler

        return RISChannelSampler(cfg, resource_grid, device)
    if name == "rayleigh":
        model = RayleighBlockFading(num_rx=1, num_rx_ant=nr, num_tx=1, num_tx_ant=nt, device=device)
        return SionnaChannelSampler(model, resource_grid, device)
    family, letter = (name.split("-") + [""])[:2]
    if family == "tdl":
        model = TDL(
            letter.upper(),
            delay_spread=cfg.delay_spread_s,
            carrier_frequency=cfg.carrier_frequency_hz,
            min_speed=cfg.speed_mps,
            max_speed=cfg.speed_mps,
            num_rx_ant=nr,
            num_tx_ant=nt,
            device=device,
        )
        return SionnaChannelSampler(model, resource_grid, device)
    if family == "cdl":
        model = CDL(
            letter.upper(),
            delay_spread=cfg.delay_spread_s,
            carrier_frequency=cfg.carrier_frequency_hz,
            ut_array=panel_array(nr, cfg, device),
            bs_array=panel_array(nt, cfg, device),
            direction="downlink",
            min_speed=cfg.speed_mps,
            max_speed=cfg.speed_mps,
            device=device,
        )
        return SionnaChannelSampler(model, resource_grid, device)
    if name in ("umi", "uma"):
        cls = UMi if name == "umi" else UMa
        model = cls(
            carrier_frequency=cfg.carrier_frequency_hz,
            o2i_model="low",
            ut_array=panel_array(nr, cfg, device),
            bs_array=panel_array(nt, cfg, device),
            direction="downlink",
            enable_pathloss=False,
            enable_shadow_fading=False,
            device=device,
        )
        return SionnaChannelSampler(
            model, resource_grid, device, scenario=name, speed_mps=cfg.speed_mps
        )
    raise ValueError(f"unhandled channel {name!r}")  # config validation prevents this
