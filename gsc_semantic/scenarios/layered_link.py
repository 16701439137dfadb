"""Unequal error protection (UEP) of layered bits: one MCS per layer at a channel-use budget.

A source cut into importance-ordered layers ``z1 .. zL`` (``layer_bits[l]`` bits per image)
is sent with one MCS per layer, layer ``l`` on an MCS **no more robust** than layer
``l-1``'s. Every image owns ``ρ·C·H·W`` complex channel uses (everything counted, as in
:mod:`gsc_semantic.baselines`); layer ``l`` costs ``layer_bits[l] / e(m_l)`` of them, ``e``
the MCS's payload bits per channel use (CRC excluded; pilots, guards, CP counted; a shared
fractional frame counts as its share). Each layer is its own bit stream (image ``i`` owns
bits ``[i·b_l, (i+1)·b_l)``), cut into CRC-24A transport blocks and frames and sent through
:class:`gsc_phy.link.Link` with that layer's MCS; a layer of an image is **erased** when any
block carrying it failed its CRC.

Designs (``mcs_per_layer``), all chosen **without knowing the SNR** (one transmission that
every receiver decodes as far as its SNR allows — quality rises step by step with SNR):

- ``"adaptive"``: the ladder. Layer targets are spread evenly in SNR between the threshold
  (BLER 10 %, ``gsc_phy/mcs_thresholds.json``) of the first layer's MCS ``i`` and that of
  the top layer's MCS ``j``; each layer gets the highest-rate MCS whose threshold is below
  its target. The most robust ``i`` that fits the budget is taken, then the least fragile
  ``j``; when no ladder fits, trailing layers are left out.
- ``"single"``: one MCS for all layers, the most robust that fits the budget (the
  single-layer design of the same budget: all or nothing at one SNR threshold).
- a list of MCS indices (38.214 table, 1..27), one per layer, non-decreasing in spectral
  efficiency and fitting the budget.

Example::

    >>> import numpy as np
    >>> ll = LayeredLink("awgn", rho=1 / 6, layer_bits=[512, 256, 256],
    ...                  image_shape=(3, 64, 64))
    >>> [m.index for m in ll.plan.mcs]             # robust first
    [2, 3, 5]
    >>> bits = [np.zeros((2, b), np.uint8) for b in (512, 256, 256)]
    >>> out = ll(bits, snr_db=20.0, seed=0)
    >>> bool(out.erased.any())
    False
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bridge.common import ConfigError
from gsc_phy.config import LinkConfig
from gsc_phy.mcs import SINGLE_SLOT_TABLE, Mcs, mcs_by_index, threshold_db
from gsc_semantic.baselines import AdaptiveLink

__all__ = ["LayerPlan", "LayeredResult", "LayeredLink", "plan_layers"]

DESIGNS = ("adaptive", "single")


@dataclass(frozen=True)
class LayerPlan:
    """Per-layer MCS and channel uses per image (``mcs[l] is None``: layer ``l`` not sent).

    :param layer_bits: Bits per image of each layer.
    :param mcs: MCS of each layer.
    :param channel_uses: Complex channel uses per image spent on each layer.
    :param budget: ``ρ·C·H·W`` channel uses per image.
    :param thresholds_db: Es/N0 at BLER 10 % of each layer's MCS (NaN when not sent).
    """

    layer_bits: tuple[int, ...]
    mcs: tuple[Mcs | None, ...]
    channel_uses: tuple[float, ...]
    budget: float
    thresholds_db: tuple[float, ...]

    @property
    def layers_sent(self) -> int:
        return sum(m is not None for m in self.mcs)

    @property
    def total_channel_uses(self) -> float:
        return float(sum(self.channel_uses))

    def to_dict(self) -> dict:
        return {"layer_bits": list(self.layer_bits),
                "mcs": [None if m is None else f"{m.name} {m.modulation} R={m.target_rate:.3f}"
                        for m in self.mcs],
                "mcs_index": [None if m is None else m.key for m in self.mcs],
                "channel_uses": [round(c, 2) for c in self.channel_uses],
                "threshold_db": [None if math.isnan(t) else round(t, 2)
                                 for t in self.thresholds_db],
                "budget_channel_uses": self.budget, "layers_sent": self.layers_sent}


def _efficiency(mcs: Mcs, base: LinkConfig) -> float:
    return mcs.payload_bits_per_channel_use(base)


def _make_plan(bits: Sequence[int], mcs: Sequence[Mcs], budget: float, channel: str,
               base: LinkConfig) -> LayerPlan:
    sent = list(mcs) + [None] * (len(bits) - len(mcs))
    cu = tuple(b / _efficiency(m, base) if m is not None else 0.0
               for b, m in zip(bits, sent, strict=True))
    thr = tuple(threshold_db(m, channel, base.estimator) if m is not None else float("nan")
                for m in sent)
    return LayerPlan(tuple(int(b) for b in bits), tuple(sent), cu, float(budget), thr)


def _ladder(num: int, i: int, j: int, thr: list[float]) -> list[int]:
    """Indices into SINGLE_SLOT_TABLE (ladders use single-slot MCS only: the streamed link
    has no slot aggregation) of a ladder of ``num`` layers from entry ``i`` to ``j``."""
    if num == 1:
        return [i]
    out = []
    for layer in range(num):
        target = thr[i] + (thr[j] - thr[i]) * layer / (num - 1)
        ok = [m for m in range(i, j + 1) if thr[m] <= target + 1e-9]
        out.append(max(ok, key=lambda m: SINGLE_SLOT_TABLE[m].spectral_efficiency))
    return out


def plan_layers(layer_bits: Sequence[int], budget: float, channel: str = "awgn",
                design: str | Sequence[int] = "adaptive",
                base_config: LinkConfig | None = None) -> LayerPlan:
    """MCS per layer for ``design`` (see the module notes) at ``budget`` channel uses.

    Example::

        >>> p = plan_layers([512, 256, 256], budget=2048, design="single")
        >>> len({m.index for m in p.mcs}), p.total_channel_uses <= 2048
        (1, True)
    """
    base = base_config or LinkConfig(channel=channel)
    bits = [int(b) for b in layer_bits]
    if not bits or min(bits) < 1:
        raise ConfigError(f"layer_bits must be positive bit counts, got {list(layer_bits)}")
    if not budget > 0:
        raise ConfigError(f"the channel-use budget must be positive, got {budget}")
    if not isinstance(design, str):
        mcs = [mcs_by_index(m) for m in design]
        if len(mcs) != len(bits):
            raise ConfigError(f"{len(mcs)} MCS given for {len(bits)} layers")
        eff = [m.spectral_efficiency for m in mcs]
        if any(b < a for a, b in zip(eff, eff[1:], strict=False)):
            raise ConfigError("each layer's MCS must be no more robust than the previous "
                              f"layer's, got {[m.index for m in mcs]}")
        plan = _make_plan(bits, mcs, budget, channel, base)
        if plan.total_channel_uses > budget + 1e-6:
            raise ConfigError(f"MCS {[m.index for m in mcs]} need "
                              f"{plan.total_channel_uses:.0f} channel uses per image, the "
                              f"budget is {budget:.0f}")
        return plan
    if design not in DESIGNS:
        raise ConfigError(f"mcs_per_layer must be one of {DESIGNS} or a list of MCS indices, "
                          f"got {design!r}")
    thr = [threshold_db(m, channel, base.estimator) for m in SINGLE_SLOT_TABLE]
    eff = [_efficiency(m, base) for m in SINGLE_SLOT_TABLE]
    for num in range(len(bits), 0, -1):
        if design == "single":
            total = sum(bits[:num])
            for i in range(len(SINGLE_SLOT_TABLE)):
                if total / eff[i] <= budget + 1e-9:
                    return _make_plan(bits, [SINGLE_SLOT_TABLE[i]] * num, budget, channel, base)
            continue
        for i in range(len(SINGLE_SLOT_TABLE)):
            for j in range(i, len(SINGLE_SLOT_TABLE)):
                ladder = _ladder(num, i, j, thr)
                if sum(b / eff[m] for b, m in zip(bits, ladder, strict=False)) <= budget + 1e-9:
                    return _make_plan(bits, [SINGLE_SLOT_TABLE[m] for m in ladder], budget, channel,
                                      base)
    raise ConfigError(f"not even the first layer ({bits[0]} bits) fits {budget:.0f} channel "
                      "uses per image with the highest-rate MCS; raise the bandwidth ratio")


@dataclass
class LayeredResult:
    """What arrived: ``bits[l]`` uint8 [N, b_l] (as received; meaningless where erased),
    ``erased`` bool [N, L] (True: layer lost or not sent), the plan, whole frames sent per
    layer and the channel uses they occupy in total."""

    bits: list[np.ndarray]
    erased: np.ndarray
    plan: LayerPlan
    frames: list[int]
    channel_uses_sent: float
    snr_db: float

    @property
    def layers_received(self) -> np.ndarray:
        """Leading layers received per image (decoding stops at the first erasure)."""
        return np.argmin(np.c_[~self.erased, np.zeros(len(self.erased), bool)], axis=1)


class LayeredLink:
    """Layered bits with one MCS per layer over gsc_phy (see the module notes).

    :param channel: gsc_phy channel with calibrated MCS thresholds (``awgn``, ``tdl-a``,
        ``rayleigh``).
    :param rho: Bandwidth ratio (channel uses, everything counted, / (C·H·W)).
    :param layer_bits: Bits per image of each layer, most important first.
    :param mcs_per_layer: ``"adaptive"`` (ladder), ``"single"`` or a list of MCS indices.
    :param link: A transport object (:mod:`gsc_semantic.transports`; default the simulated
        link), e.g. a shared :class:`~gsc_semantic.stream_transport.StreamTransport`; the
        legacy ``"sim"``/``"loopback"`` (a new loopback, one run per layer and call) still
        work.
    :param image_shape: (C, H, W) of the source image the budget refers to.
    :param base_config: Other SISO link settings (estimator, delay spread, ...).
    :param device: Torch device of the gsc_phy links.

    :input layer_bits_arrays: one uint8 array [N, b_l] per layer (0/1).
    :input snr_db: Average Es/N0 in dB.
    :input seed: Seeds the channel and noise draws of this call (layer ``l`` gets
        ``64·seed + l``).
    :output: :class:`LayeredResult`.
    """

    def __init__(self, channel: str = "awgn", rho: float = 1 / 12,
                 layer_bits: Sequence[int] = (256,), mcs_per_layer="adaptive",
                 link=None, image_shape: tuple[int, int, int] = (3, 64, 64), *,
                 base_config: LinkConfig | None = None, device: str | None = None) -> None:
        if isinstance(link, str) and link not in ("sim", "loopback"):
            raise ConfigError(f"LayeredLink runs on the simulated link or the streaming "
                              f"loopback; --link {link} is not implemented for it")
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        self.rho = float(rho)
        if not self.rho > 0:
            raise ConfigError(f"the bandwidth ratio must be positive, got {rho}")
        self.adaptive = AdaptiveLink(channel, self.rho, base_config=base_config,
                                     device=device, transport=link)
        self.channel = channel
        self.plan = plan_layers(layer_bits, self.rho * c * h * w, channel, mcs_per_layer,
                                self.adaptive.base_config)

    def __call__(self, layer_bits_arrays: Sequence[np.ndarray], snr_db: float,
                 seed: int = 0) -> LayeredResult:
        plan = self.plan
        if len(layer_bits_arrays) != len(plan.layer_bits):
            raise ValueError(f"{len(layer_bits_arrays)} layers given, the plan has "
                             f"{len(plan.layer_bits)}")
        arrays = [np.asarray(a, dtype=np.uint8) for a in layer_bits_arrays]
        n = arrays[0].shape[0]
        for a, b in zip(arrays, plan.layer_bits, strict=True):
            if a.shape != (n, b):
                raise ValueError(f"layer array of shape {a.shape}, expected {(n, b)}")
        erased = np.ones((n, len(arrays)), dtype=bool)
        received, frames, cu_sent = [], [], 0.0
        for layer, (a, mcs) in enumerate(zip(arrays, plan.mcs, strict=True)):
            if mcs is None:
                received.append(np.zeros_like(a))
                frames.append(0)
                continue
            budget = self.adaptive.budget(self.image_shape, snr_db, mcs)
            frame = budget.frame
            per_block = frame.payload_bits_per_block
            b = a.shape[1]
            num_blocks = max(1, math.ceil(n * b / per_block))
            num_frames = math.ceil(num_blocks / frame.codewords_per_frame)
            stream = np.zeros(num_frames * frame.codewords_per_frame * per_block, np.uint8)
            stream[:n * b] = a.reshape(-1)
            rx, ok = self.adaptive.transmit(stream, budget, True,
                                            channel_seed=seed * 64 + layer)
            received.append(rx[:n * b].reshape(n, b).astype(np.uint8))
            for i in range(n):
                erased[i, layer] = not ok[(i * b) // per_block:(i * b + b - 1) // per_block
                                          + 1].all()
            frames.append(num_frames)
            cu_sent += num_frames * frame.channel_uses_per_frame
        return LayeredResult(received, erased, plan, frames, cu_sent, float(snr_db))
