"""gsc's own link: layered semantic bits over gsc_phy at the same budget as the baselines.

Same budget, MCS choice and bit-stream layout as :class:`~gsc_semantic.baselines.
SeparationBaseline` (both are :class:`~gsc_semantic.baselines.AdaptiveLink`): image ``i``
owns bits ``[i·B, (i+1)·B)`` of one stream, ``B`` = the per-image payload at bandwidth ratio
ρ. gsc fills its region with as many whole layers ``z1 .. zl`` as fit (most important first),
sends the stream through :class:`gsc_phy.link.Link`, and a layer is **erased** at the
receiver when any transport block carrying it failed its CRC (CRC-24A). The diffusion
decoder regenerates the image from the layers that arrived and the erasure mask; with no
layer at all it still draws a sample from the learned prior (``delivered`` is then False).

.. code-block:: python

    from gsc_semantic.codec import SemanticCodec
    from gsc_semantic.semantic_link import SemanticLink
    link = SemanticLink(SemanticCodec.from_pretrained("fmnist"), "awgn", rho=1 / 12)
    out = link(images, snr_db=10.0)       # out.images, out.records
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .baselines import AdaptiveLink, LinkBudget, as_batch
from .codec import SemanticCodec

__all__ = ["SemanticLink", "SemanticRecord", "SemanticResult"]


@dataclass
class SemanticRecord:
    """What happened to one image: layers sent and received, channel uses, MCS."""

    method: str
    layers_sent: int
    layers_received: int
    bits_sent: int
    budget_bits: int
    delivered: bool
    mcs: str
    mcs_meets_target: bool
    channel_uses: float
    snr_db: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class SemanticResult:
    """Reconstructions [N, C, H, W], one record per image, the budget and what was sent."""

    images: torch.Tensor
    records: list[SemanticRecord]
    budget: LinkBudget
    frames: int
    erasure_mask: torch.Tensor

    @property
    def delivered(self) -> torch.Tensor:
        return torch.tensor([r.delivered for r in self.records])


class SemanticLink(AdaptiveLink):
    """The semantic codec over gsc_phy with genie link adaptation at bandwidth ratio ``rho``.

    :param codec: A trained :class:`~gsc_semantic.codec.SemanticCodec`.
    :param channel: gsc_phy channel with calibrated MCS thresholds.
    :param rho: Bandwidth ratio.
    :param steps: Diffusion sampling steps at the receiver.
    :param sampler: The codec's sampler (default: its config's, the diffusion sampler);
        ``"mse"`` shows the deterministic head's MSE estimate instead (method ``gsc-mse``).
    :param kwargs: :class:`~gsc_semantic.baselines.AdaptiveLink` parameters.

    :input images: [N, C, H, W] in [0, 1], the codec's image shape.
    :input snr_db: Average Es/N0 in dB.
    :input seed: Seed of the receiver's diffusion noise.
    :input channel_seed: Seed of this call's channel and noise draws (one channel trial);
        ``None`` continues Sionna's global random stream.
    :output: :class:`SemanticResult`.
    """

    method = "gsc"

    def __init__(self, codec: SemanticCodec, channel: str = "awgn", rho: float = 1 / 12, *,
                 steps: int = 8, sampler: str | None = None, **kwargs) -> None:
        super().__init__(channel, rho, **kwargs)
        self.codec = codec
        self.steps = steps
        self.sampler = sampler
        if sampler == "mse":
            self.method = "gsc-mse"

    def __call__(self, images, snr_db: float, seed: int = 0,
                 channel_seed: int | None = None) -> SemanticResult:
        x = as_batch(images)
        n, shape = x.shape[0], tuple(x.shape[1:])
        if shape != self.codec.image_shape:
            raise ValueError(f"the codec takes {self.codec.image_shape} images, got {shape}")
        budget = self.budget(shape, snr_db)
        region = budget.payload_bits
        num_layers = self.codec.layers_for_budget(region)
        sizes = self.codec.bits_per_layer
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        sent_bits = int(offsets[num_layers])

        stream, frames = self.empty_stream(n, budget)
        if num_layers:
            flat = self.codec.encode(x).flat(num_layers).cpu().numpy().astype(np.uint8)
            for i in range(n):
                stream[i * region:i * region + sent_bits] = flat[i]
        rx_bits, block_ok = self.transmit(stream, budget, num_layers > 0, channel_seed)

        per_block = budget.frame.payload_bits_per_block
        erased = torch.ones(n, len(sizes), dtype=torch.bool)
        received = [torch.zeros(n, b, dtype=torch.uint8) for b in sizes]
        records = []
        mcs_label = (f"{budget.mcs.name} {budget.mcs.modulation} "
                     f"R={budget.frame.code_rate:.3f}")
        cu_per_bit = 1.0 / budget.bits_per_channel_use
        for i in range(n):
            start = i * region
            for layer in range(num_layers):
                a, b = start + int(offsets[layer]), start + int(offsets[layer + 1])
                if block_ok[a // per_block:(b - 1) // per_block + 1].all():
                    erased[i, layer] = False
                    received[layer][i] = torch.from_numpy(rx_bits[a:b].astype(np.uint8))
            got = int((~erased[i]).sum())
            records.append(SemanticRecord(
                self.method, num_layers, got, sent_bits, region, got > 0, mcs_label,
                budget.mcs_meets_target, sent_bits * cu_per_bit, float(snr_db)))
        recon = self.codec.decode(received, erased, steps=self.steps, seed=seed,
                                  sampler=self.sampler)
        return SemanticResult(recon.cpu().clamp(0, 1), records, budget, frames, erased)
