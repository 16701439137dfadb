"""Where a link's transport blocks travel: transport objects with one interface.

A transport takes the scrambled bit stream of whole transport blocks that an
:class:`~gsc_semantic.baselines.AdaptiveLink` (the baselines, gsc's semantic and layered
links, the scenarios) sends at one :class:`~gsc_semantic.baselines.LinkBudget`, and returns
the received bits and a CRC flag per block::

    bits_hat, block_ok = transport.send(bits, budget, channel_seed, sender=link)

* :class:`SimulatedTransport` -- gsc_phy's Sionna link (``--link sim``); stateless, so one
  instance, :data:`SIMULATED`, serves every link;
* :class:`~gsc_semantic.stream_transport.StreamTransport` -- the GNU Radio streaming loopback
  (``--link loopback``);
* :class:`~gsc_semantic.sigmf_transport.SigMFTransport` -- SigMF recordings of the loopback,
  replayed through ``gsc rx`` (``--link sigmf:DIR``).

Every transport has ``streamed`` (True: each frame goes on the air once, so link adaptation
leaves out slot aggregation), ``context`` (what is being sent, for progress lines and
recording names) and ``take()`` (counters summed since the last call; ``None`` for the
simulated link, which counts nothing beyond its results). The command line parses
``--link`` once into a transport (:func:`gsc_semantic.scenarios.common.link_transport`);
:func:`gsc_semantic.baselines.as_transport` turns the legacy spellings ``"sim"``/
``"loopback"`` of the library API into objects at its edge, so nothing below compares strings.

>>> SIMULATED.streamed
False
>>> SIMULATED.take() is None
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["Transport", "SimulatedTransport", "SIMULATED"]


class Transport:
    """The interface (a base class; any object with ``send``/``take``/``context`` will do,
    and one without ``streamed`` counts as streamed)."""

    #: each frame is sent once (no slot aggregation); the simulated link says False
    streamed: bool = True
    #: what is being sent (a method name), for progress lines and recording names
    context: str = ""

    def send(self, bits: np.ndarray, budget: Any, channel_seed: int | None = None, *,
             sender: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Carry ``bits`` (uint8, whole blocks of ``budget.frame``); returns
        (received bits, block_ok [blocks])."""
        raise NotImplementedError

    def take(self) -> dict[str, float] | None:
        """Counters summed since the last ``take`` (then reset); None when there are none."""
        return None

    def close(self) -> None:
        """Stop what the transport keeps running (a streamed link's sessions); may be called
        again."""


class SimulatedTransport(Transport):
    """gsc_phy's simulated link: the ``sender``'s Sionna :class:`~gsc_phy.link.Link` for the
    budget's MCS at the budget's Es/N0, ``sender.frames_per_call`` frames per batch.

    ``channel_seed`` reseeds Sionna's RNGs right before the transmission (one reproducible
    channel trial); ``None`` continues the global random stream.
    """

    streamed = False

    @property
    def context(self) -> str:  # shared by every link: nothing to name
        return ""

    @context.setter
    def context(self, value: str) -> None:
        pass

    def send(self, bits: np.ndarray, budget: Any, channel_seed: int | None = None, *,
             sender: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if sender is None:
            raise ValueError("the simulated transport needs the sending AdaptiveLink")
        frame = budget.frame
        cws, per_block = frame.codewords_per_frame, frame.payload_bits_per_block
        payload = torch.from_numpy(bits.astype(np.float32)).reshape(-1, cws, per_block)
        link = sender.link(budget.mcs)  # building a link reseeds: reseed after it
        if channel_seed is not None:
            from sionna.phy import config as sionna_config

            sionna_config.seed = channel_seed
        bits_hat, ok = [], []
        with torch.no_grad():
            for s in range(0, payload.shape[0], sender.frames_per_call):
                chunk = payload[s:s + sender.frames_per_call].to(link.device)
                res = link(batch_size=chunk.shape[0], snr_db=float(budget.snr_db),
                           payload=chunk)
                bits_hat.append(res.bits_hat.reshape(-1).round().to("cpu", torch.uint8))
                ok.append(res.block_ok.reshape(-1).to("cpu"))
        return torch.cat(bits_hat).numpy(), torch.cat(ok).numpy().astype(bool)


#: The simulated link (stateless: one instance for every link).
SIMULATED = SimulatedTransport()
