"""DeepJSCC and DeepJSCC-Q through gsc_phy's OFDM link (the same link every method uses).

**Modes.** ``deepjscc`` is analog: the encoder's power-normalised complex symbols go
straight onto the data resource elements of gsc_phy's grid (pilots, guard and DC carriers,
cyclic prefix as for every method); ``deepjscc-q`` first maps each symbol to the nearest
point of the 5G 16/64/256-QAM constellation (order by the average Es/N0,
:func:`gsc_semantic.deepjscc.qam_order_for_snr`, or fixed with ``modulation``), no channel
code. The receiver is gsc_phy's (:meth:`gsc_phy.link.Link.send_symbols`): the channel
estimator of the link configuration (``estimator``: by default the one the codec
baselines' link adaptation is calibrated with, ``LinkConfig().estimator`` = ``perfect``, so
every method in ``gsc eval`` gets the same receiver; ``ls``: least squares on the pilots,
linear interpolation; ``lmmse``), then LMMSE equalisation; the decoder gets
the equalised symbols and is conditioned on the post-equalisation SNR of each image,
``-10 log10(mean no_eff)`` (plus the quantisation noise of the -Q order). For -Q the decoder
reads the equalised symbols (soft), not hard QAM decisions.

**Channel uses (ρ).** Image ``i``'s symbols occupy positions ``[i·N, (i+1)·N)`` of one symbol
stream (images back to back, as the baselines pack their bits), cut into frames of
``data REs`` symbols (the last one zero-filled), so the images share frames and each one
costs ``N × channel_uses_per_frame / data_res_per_frame`` channel uses (pilots, guards, DC,
CP counted, a fractional frame counts as its share, as :func:`gsc_semantic.baselines.
link_budget` counts). ``N`` is what :func:`plan_symbols` fits into ρ·C·H·W; the result
reports ``rho_effective`` with the whole frames actually sent.

Example::

    >>> import torch
    >>> from gsc_semantic.deepjscc import DeepJSCC, DeepJSCCConfig
    >>> from gsc_semantic.deepjscc_link import DeepJSCCLink
    >>> model = DeepJSCC(DeepJSCCConfig(hidden=8, latent_channels=22)).eval()
    >>> link = DeepJSCCLink(model, "awgn", rho=1 / 12)
    >>> out = link(torch.rand(2, 3, 64, 64), snr_db=10.0, channel_seed=1)
    >>> out.images.shape, out.records[0].symbols_sent
    (torch.Size([2, 3, 64, 64]), 704)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

from bridge.common import ConfigError
from gsc_phy.config import LinkConfig
from gsc_phy.frame import FrameFormat

from .deepjscc import (
    QAM_ORDERS,
    DeepJSCC,
    load_deepjscc,
    qam_noise_variance,
    qam_order_for_snr,
    qam_quantize,
)

__all__ = ["SymbolPlan", "plan_symbols", "grid_config", "DeepJSCCLink", "JSCCRecord",
           "JSCCResult", "JSCC_METHODS", "make_deepjscc_method"]

#: gsc eval / gsc send method names
JSCC_METHODS = ("deepjscc", "deepjscc-q")


def grid_config(channel: str = "awgn", estimator: str | None = None,
                base_config: LinkConfig | None = None, seed: int = 0) -> LinkConfig:
    """The SISO gsc_phy configuration DeepJSCC sends on: the default OFDM numerology,
    uncoded (the symbols are not bits: modulation and code do not apply), ``estimator``
    (default: ``base_config``'s, i.e. the baselines')."""
    base = base_config or LinkConfig()
    return dataclasses.replace(base, channel=channel, estimator=estimator or base.estimator,
                               uncoded=True,
                               modulation="qpsk", seed=seed, repetitions=1)


@dataclass(frozen=True)
class SymbolPlan:
    """How many symbols an image of ``shape`` sends at bandwidth ratio ``rho``.

    ``latent_channels``: encoder channels; ``symbols_model``: symbols it emits;
    ``symbols_sent``: those that go on the air (``<= symbols_model``, the rest are zeros at
    the decoder); ``channel_uses``: their share of the frames (all overheads);
    ``rho_effective`` = channel_uses / (C·H·W) (``<= rho``).
    """

    shape: tuple[int, int, int]
    rho: float
    latent_channels: int
    symbols_model: int
    symbols_sent: int
    data_res_per_frame: int
    channel_uses_per_frame: int

    @property
    def keep_fraction(self) -> float:
        return self.symbols_sent / self.symbols_model

    @property
    def channel_uses(self) -> float:
        return self.symbols_sent * self.channel_uses_per_frame / self.data_res_per_frame

    @property
    def rho_effective(self) -> float:
        c, h, w = self.shape
        return self.channel_uses / (c * h * w)


def plan_symbols(rho: float, shape: tuple[int, int, int], num_down: int,
                 latent_channels: int | None = None,
                 frame: FrameFormat | None = None) -> SymbolPlan:
    """Fit DeepJSCC's symbols into ρ·C·H·W channel uses on ``frame`` (default: the
    :func:`grid_config` grid, 768 data REs in 1092 channel uses per slot).

    Without ``latent_channels`` the largest count that fits is taken, or one more (its
    surplus symbols not sent) when the largest leaves more than 10 % of the budget unused.
    With ``latent_channels`` (a trained model) the symbols beyond the budget are not sent.

    >>> p = plan_symbols(1 / 12, (3, 256, 256), 3)
    >>> p.latent_channels, p.symbols_sent, round(p.rho_effective, 4)
    (22, 11264, 0.0815)
    """
    if not rho > 0:
        raise ConfigError(f"the bandwidth ratio must be positive, got {rho}")
    frame = frame or FrameFormat.from_config(grid_config())
    data = frame.num_streams * frame.data_symbols_per_stream
    cu = frame.channel_uses_per_frame
    c, h, w = shape
    f = 2 ** num_down
    pos = math.ceil(h / f) * math.ceil(w / f)
    budget = int(math.floor(rho * c * h * w * data / cu + 1e-9))
    if budget < 1:
        raise ConfigError(f"rho={rho:g} leaves no symbol for a {c}x{h}x{w} image")
    if latent_channels is None:
        latent_channels = max(1, (2 * budget) // pos)
        if math.ceil(latent_channels * pos / 2) < 0.9 * budget:
            latent_channels += 1
    n_model = math.ceil(latent_channels * pos / 2)
    return SymbolPlan((c, h, w), float(rho), int(latent_channels), n_model,
                      min(n_model, budget), data, cu)


@dataclass
class JSCCRecord:
    """One image through the DeepJSCC link (what eval tables and ``gsc send`` show)."""

    method: str
    symbols_sent: int
    channel_uses: float
    modulation: str | None
    snr_db: float
    snr_eff_db: float
    delivered: bool = True
    mcs: str = ""
    mcs_meets_target: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class _Budget:
    payload_bits: int
    channel_uses: float
    rho: float


@dataclass
class JSCCResult:
    """Reconstructions [N, C, H, W], one record per image, what was sent.

    ``frames`` whole frames went on the air (``channel_uses`` with their overheads),
    ``rho_effective`` = channel_uses / (N·C·H·W) (the last frame's unused part included);
    ``noiseless`` the decoder's output without any channel (for diagnostics)."""

    images: torch.Tensor
    records: list[JSCCRecord]
    plan: SymbolPlan
    frames: int
    channel_uses: float
    rho_effective: float
    budget: _Budget = field(repr=False, default=None)

    @property
    def delivered(self) -> torch.Tensor:
        return torch.tensor([r.delivered for r in self.records])

    def to_dict(self) -> dict:
        return {"frames": self.frames, "channel_uses": self.channel_uses,
                "rho_effective": self.rho_effective,
                "symbols_per_image": self.plan.symbols_sent,
                "records": [r.to_dict() for r in self.records]}


class DeepJSCCLink:
    """A DeepJSCC model over gsc_phy's OFDM link.

    :param model: A trained :class:`~gsc_semantic.deepjscc.DeepJSCC`.
    :param channel: gsc_phy channel (``awgn``, ``rayleigh``, ``tdl-a`` .. ``tdl-e`` ...).
    :param rho: Bandwidth ratio.
    :param quantize: DeepJSCC-Q (5G QAM points, no code) instead of analog symbols.
    :param modulation: -Q order (``16qam``/``64qam``/``256qam``); ``None``: by SNR.
    :param estimator: gsc_phy channel estimator (``perfect``, ``ls``, ``lmmse``); default
        ``base_config``'s (``perfect``, as the baselines' calibrated link adaptation).
    :param base_config: Other link settings (numerology, delay spread, speed).
    :param seed: Seeds Sionna's RNG at construction.
    :param device: Torch device of the link and model.
    :param frames_per_call: Frames per gsc_phy batch.

    :input images: [N, C, H, W] in [0, 1]; :input snr_db: average Es/N0 (dB);
        :input channel_seed: seed of this call's channel and noise draws.
    :output: :class:`JSCCResult`.
    """

    def __init__(self, model: DeepJSCC, channel: str = "awgn", rho: float = 1 / 12, *,
                 quantize: bool = False, modulation: str | None = None,
                 estimator: str | None = None, base_config: LinkConfig | None = None,
                 seed: int = 0, device: str | None = None, frames_per_call: int = 64) -> None:
        from gsc_phy.link import Link

        if modulation is not None and modulation not in QAM_ORDERS:
            raise ConfigError(f"DeepJSCC-Q modulation must be one of {', '.join(QAM_ORDERS)}")
        self.model = model.eval()
        self.channel = channel
        self.rho = float(rho)
        self.quantize = quantize
        self.modulation = modulation
        self.method = "deepjscc-q" if quantize else "deepjscc"
        self.cfg = grid_config(channel, estimator, base_config, seed)
        self.link = Link(self.cfg, device=device)
        self.model.to(self.link.device)
        self.frames_per_call = frames_per_call

    def plan(self, shape) -> SymbolPlan:
        """The symbol plan of one image ``shape`` ([..., C, H, W])."""
        c, h, w = (int(v) for v in tuple(shape)[-3:])
        mc = self.model.config
        if c != mc.in_channels:
            raise ConfigError(f"the DeepJSCC model takes {mc.in_channels}-channel images, "
                              f"got {c}")
        return plan_symbols(self.rho, (c, h, w), mc.num_down, mc.latent_channels,
                            self.link.frame)

    def order(self, snr_db: float) -> str | None:
        """The -Q constellation at ``snr_db`` (None for the analog mode)."""
        if not self.quantize:
            return None
        return self.modulation or qam_order_for_snr(snr_db)

    @torch.no_grad()
    def transmit(self, symbols: torch.Tensor, snr_db: float, channel_seed: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Send complex symbols [N, n] back to back through the link; returns the equalised
        symbols [N, n], their noise variances [N, n] and the number of frames sent."""
        n_img, n = symbols.shape
        frame = self.link.frame
        per = frame.num_streams * frame.data_symbols_per_stream
        stream = symbols.reshape(-1)
        frames = max(1, math.ceil(stream.numel() / per))
        pad = frames * per - stream.numel()
        if pad:
            stream = torch.cat([stream, torch.zeros(pad, dtype=stream.dtype,
                                                    device=stream.device)])
        x = stream.reshape(frames, frame.num_streams, frame.data_symbols_per_stream)
        if channel_seed is not None:
            from sionna.phy import config as sionna_config

            sionna_config.seed = channel_seed
        xs, nos = [], []
        for s in range(0, frames, self.frames_per_call):
            x_hat, no_eff = self.link.send_symbols(x[s:s + self.frames_per_call], snr_db)
            xs.append(x_hat.reshape(-1))
            nos.append(no_eff.reshape(-1).to(torch.float32))
        x_hat = torch.cat(xs)[:n_img * n].reshape(n_img, n)
        no_eff = torch.cat(nos)[:n_img * n].reshape(n_img, n)
        return x_hat, no_eff, frames

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, snr_db: float, seed: int = 0,
                 channel_seed: int | None = None) -> JSCCResult:
        del seed  # the model is deterministic
        x = images if images.ndim == 4 else images[None]
        x = x.to(self.link.device, torch.float32)
        plan = self.plan(x.shape)
        n_img, hw = x.shape[0], tuple(x.shape[-2:])
        order = self.order(float(snr_db))
        sym = self.model.encode(x, float(snr_db))[:, :plan.symbols_sent]
        if order is not None:
            sym = qam_quantize(sym, order)
        x_hat, no_eff, frames = self.transmit(sym.to(torch.complex64), float(snr_db),
                                              channel_seed)
        no_img = no_eff.mean(dim=1).clamp_min(1e-10)
        if order is not None:
            no_img = no_img + qam_noise_variance(order)
        snr_eff = -10.0 * torch.log10(no_img)
        out = self.model.decode(x_hat, snr_eff, hw).clamp(0, 1).cpu()
        cu = frames * self.link.frame.channel_uses_per_frame
        label = f"analog ({plan.symbols_sent} symbols)" if order is None else (
            f"{order} uncoded ({plan.symbols_sent} symbols)")
        records = [JSCCRecord(self.method, plan.symbols_sent, plan.channel_uses, order,
                              float(snr_db), float(snr_eff[i]), True, label, True)
                   for i in range(n_img)]
        budget = _Budget(0, plan.channel_uses, self.rho)
        return JSCCResult(out, records, plan, frames, float(cu),
                          cu / float(x[0].numel() * n_img), budget)


def make_deepjscc_method(name: str, data: str, channel: str, rho: float, seed: int = 0,
                         directory: str | None = None, device: str | None = None,
                         estimator: str | None = None) -> DeepJSCCLink:
    """``deepjscc`` or ``deepjscc-q`` for ``gsc eval`` / ``gsc send`` with the shipped
    checkpoint ``checkpoints/deepjscc_<data>_<rho>`` (``data``: ``photos`` or
    ``fmnist``); a missing checkpoint is a :class:`~bridge.common.ConfigError` naming the
    ``gsc train-jscc`` command."""
    if name not in JSCC_METHODS:
        raise ConfigError(f"unknown DeepJSCC method {name!r}")
    model = load_deepjscc(data, rho, directory)
    return DeepJSCCLink(model, channel, rho, quantize=name == "deepjscc-q", seed=seed,
                        device=device, estimator=estimator)

