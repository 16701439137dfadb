"""Per-frame channel realisations from gsc_phy's Sionna models, for the GNU Radio channel feed.

:class:`ChannelFeed` draws one realisation per frame at the flowgraph's sample rate;
:meth:`ChannelFeed.frames` turns them into the messages a ``bridge.transport.Pusher``
(bound on 127.0.0.1 / ipc) sends as ``CHANNEL`` frames
(:func:`flowgraphs.gsc_ofdm.mimo_channel.channel_frame`: complex64 ``[Nr, Nt, 1 + L]``,
column 0 a frequency-flat RIS cascade gain, columns 1.. the time-domain taps, ``seq`` = the
frame it is for); the ``gsc Channel Feed`` block applies it to that frame's burst.

* ``tdl-a`` .. ``tdl-e``, ``cdl-a`` .. ``cdl-e``: Sionna's TR 38.901 models (``TDL``, or
  ``CDL`` with single-polarised omni ULAs as in :mod:`gsc_phy.channels`), turned into
  discrete taps by ``cir_to_time_channel`` at the sample rate (``l_min = -6``: a fixed
  6-sample latency, so the sinc tails before the first path are kept), not normalised per
  realisation (``E|h|^2 = 1`` per antenna pair on average);
* ``ris``: :class:`gsc_phy.ris.RISChannel` at the configured geometry and phase strategy
  evaluated at the carrier: the direct path is the single tap, the cascade through the RIS
  the flat RIS gain (normalised to the unblocked direct LOS path, as in the simulated link);
* ``awgn``: ``sqrt(Nt) I`` (as :class:`gsc_phy.channels.AWGNChannelSampler`: unit received
  power per RX antenna).

.. code-block:: python

    feed = ChannelFeed("tdl-a", num_tx=1, num_rx=1, samp_rate_hz=2.16e6, seed=0)
    taps, ris = feed.draw(4)        # [4, 1, 1, L], [4, 1, 1]
"""

from __future__ import annotations

import numpy as np
import torch

from bridge.common import ConfigError
from flowgraphs.gsc_ofdm.mimo_channel import channel_frame
from gsc_phy.config import LinkConfig

__all__ = ["FEED_CHANNELS", "ChannelFeed", "L_MIN"]

FEED_CHANNELS = (
    ("awgn", "ris")
    + tuple(f"tdl-{c}" for c in "abcde")
    + tuple(f"cdl-{c}" for c in "abcde")
)
#: First discrete lag of the Sionna taps (samples before the first path that are kept).
L_MIN = -6


class ChannelFeed:
    """Per-frame channel realisations (see the module docstring).

    :param channel: One of :data:`FEED_CHANNELS`.
    :param num_tx: TX antennas.
    :param num_rx: RX antennas.
    :param samp_rate_hz: Sample rate of the flowgraph.
    :param delay_spread_s: Delay spread of TDL/CDL models.
    :param seed: Seed (torch generator of Sionna is seeded with it).
    :param cfg: For ``ris``: a :class:`LinkConfig` with the RIS geometry (``ris_elements``,
        ``tx_pos``, ``ris_pos``, ``rx_pos``, ``ris_phases``, ``ris_bits``, ...).

    ``draw(batch)`` -> ``(taps [B, Nr, Nt, L], ris [B, Nr, Nt] or None)`` complex64.
    """

    def __init__(
        self,
        channel: str,
        num_tx: int = 1,
        num_rx: int = 1,
        samp_rate_hz: float = 2.16e6,
        delay_spread_s: float = 100e-9,
        seed: int = 0,
        cfg: LinkConfig | None = None,
    ) -> None:
        from sionna.phy import config as sionna_config

        if channel not in FEED_CHANNELS:
            raise ConfigError(f"the channel feed has no model {channel!r}; choose from "
                              f"{', '.join(FEED_CHANNELS)}")
        sionna_config.seed = seed
        self.channel, self.num_tx, self.num_rx = channel, int(num_tx), int(num_rx)
        self.samp_rate_hz = float(samp_rate_hz)
        self._model = None
        self._ris = None
        family = channel.split("-")[0]
        base = cfg or LinkConfig(num_tx_ant=self.num_tx, num_rx_ant=self.num_rx,
                                 delay_spread_s=delay_spread_s, seed=seed)
        if family == "tdl":
            from sionna.phy.channel.tr38901 import TDL

            self._model = TDL(channel[-1].upper(), delay_spread=delay_spread_s,
                              carrier_frequency=base.carrier_frequency_hz,
                              num_rx_ant=self.num_rx, num_tx_ant=self.num_tx, device="cpu")
        elif family == "cdl":
            from sionna.phy.channel.tr38901 import CDL

            from gsc_phy.channels import panel_array

            self._model = CDL(channel[-1].upper(), delay_spread=delay_spread_s,
                              carrier_frequency=base.carrier_frequency_hz,
                              ut_array=panel_array(self.num_rx, base, "cpu"),
                              bs_array=panel_array(self.num_tx, base, "cpu"),
                              direction="downlink", device="cpu")
        elif channel == "ris":
            self._ris = self._ris_realisation(base)

    def _ris_realisation(self, cfg: LinkConfig) -> tuple[np.ndarray, np.ndarray]:
        from gsc_phy.ris import RISChannel, RISGeometry, RISPhaseController, ris_grid

        rows, cols = ris_grid(cfg.ris_elements)
        try:
            geometry = RISGeometry(
                cfg.tx_pos, cfg.ris_pos, cfg.rx_pos, rows, cols,
                carrier_frequency_hz=cfg.carrier_frequency_hz, num_tx_ant=self.num_tx,
                num_rx_ant=self.num_rx, near_field=cfg.ris_near_field,
                direct_path_blocked=cfg.ris_direct_blocked,
            )
        except ValueError as e:
            raise ConfigError(f"RIS geometry: {e}") from None
        ctrl = RISPhaseController(cfg.ris_phases, bits=cfg.ris_bits or None,
                                  snr_db=float(cfg.snr_db[0]), device="cpu")
        ch = RISChannel(geometry, phase_controller=ctrl, device="cpu")
        f0 = torch.zeros(1)
        h = ch(1, 1, f0)[0, 0, :, 0, :, 0, 0].numpy()  # [Nr, Nt] total at the carrier
        h_d = ch.paths(1, f0)[0][0, 0].numpy()  # [Nr, Nt] direct path
        return h_d.astype(np.complex64), (h - h_d).astype(np.complex64)

    @property
    def ris_gain_db(self) -> float | None:
        """Received power of the RIS cascade relative to the unblocked direct LOS link."""
        if self._ris is None:
            return None
        return float(10 * np.log10(np.mean(np.abs(self._ris[1]) ** 2) + 1e-30))

    @torch.no_grad()
    def draw(self, batch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``batch`` realisations: taps [B, Nr, Nt, L] and the RIS gain [B, Nr, Nt] (or None)."""
        nr, nt = self.num_rx, self.num_tx
        if self._ris is not None:
            direct, ris = self._ris
            return (np.broadcast_to(direct[None, :, :, None], (batch, nr, nt, 1)).copy(),
                    np.broadcast_to(ris[None], (batch, nr, nt)).copy())
        if self._model is None:  # awgn: sqrt(Nt) I, every RX antenna sees unit power
            eye = (np.eye(nr, nt) * np.sqrt(nt)).astype(np.complex64)[None, :, :, None]
            return np.repeat(eye, batch, axis=0), None
        from sionna.phy.channel import cir_to_time_channel

        a, tau = self._model(batch, 1, self.samp_rate_hz)
        l_max = int(np.ceil(float(tau.max()) * self.samp_rate_hz)) - L_MIN
        h = cir_to_time_channel(self.samp_rate_hz, a, tau, l_min=L_MIN, l_max=l_max,
                                normalize=False)  # [B, 1, Nr, 1, Nt, 1, L]
        return h[:, 0, :, 0, :, 0, :].numpy().astype(np.complex64), None

    def frames(self, first_seq: int, batch: int) -> list:
        """``batch`` realisation messages for frames ``first_seq`` .. (bridge frames)."""
        taps, ris = self.draw(batch)
        return [channel_frame(taps[i], None if ris is None else ris[i], first_seq + i)
                for i in range(batch)]
