"""DeepJSCC: a learned joint source-channel coder, the field's reference point for gsc.

The model follows Bourtsoulatze et al. (2019, "Deep joint source-channel coding for
wireless image transmission") with the SNR adaptation of ADJSCC (Xu et al. 2021): a fully
convolutional encoder maps an image to ``latent_channels`` real feature maps at
``1 / 2**num_down`` of its size, consecutive pairs of those reals become complex channel
symbols, and the symbols are power-normalised so that their **average power is 1 per
complex symbol over the image**; the decoder maps the noisy (equalised) symbols back to an
image. Every stage of both halves is followed by an *attention-feature* block that scales
its channels by a gate computed from the globally pooled features and the SNR, so one model
serves -5..20 dB. Layers use GDN (generalised divisive normalisation, Ballé et al.) in the
encoder and its inverse in the decoder. The loss is MSE (what DeepJSCC optimises: PSNR), not
a perceptual distance.

**Bandwidth.** An ``H x W`` image gives ``ceil(latent_channels * h * w / 2)`` complex
symbols, ``h = ceil(H / 2**num_down)`` (the input is edge-padded to a multiple of
``2**num_down`` and the output cropped back), i.e. the data-RE bandwidth ratio is fixed by
``latent_channels``; :mod:`gsc_semantic.deepjscc_link` puts them on gsc_phy's OFDM grid and
counts the pilots, guards and cyclic prefix on top
(:func:`gsc_semantic.deepjscc_link.plan_symbols`).

**Quantised mode (DeepJSCC-Q).** :func:`qam_quantize` maps each symbol to the nearest point
of the 5G (TS 38.211 5.1) square 16/64/256-QAM constellation (Sionna's ``qam``
constellation, unit average energy); training passes gradients straight through it.

Checkpoints are diffusers-style folders: ``config.json`` (:class:`DeepJSCCConfig` plus the
training record) and ``model.safetensors``, verified against the sha256 manifest
(``checkpoints/MANIFEST.json``) on load; nothing is unpickled.

Example::

    >>> import torch
    >>> from gsc_semantic.deepjscc import DeepJSCC, DeepJSCCConfig
    >>> model = DeepJSCC(DeepJSCCConfig(hidden=16, latent_channels=8)).eval()
    >>> x = model.encode(torch.rand(2, 3, 64, 64), snr_db=10.0)
    >>> x.shape, x.dtype, round(float(x.abs().pow(2).mean()), 4)
    (torch.Size([2, 256]), torch.complex64, 1.0)
    >>> model.decode(x, snr_db=10.0, size=(64, 64)).shape
    torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DeepJSCCConfig",
    "DeepJSCC",
    "GDN",
    "SNRAttention",
    "power_normalize",
    "awgn",
    "qam_points",
    "qam_quantize",
    "qam_noise_variance",
    "qam_order_for_snr",
    "QAM_ORDERS",
    "deepjscc_checkpoint_name",
    "load_deepjscc",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: 5G square QAM orders DeepJSCC-Q may use (bits per symbol)
QAM_ORDERS = {"16qam": 4, "64qam": 6, "256qam": 8}


@dataclass
class DeepJSCCConfig:
    """Architecture of a :class:`DeepJSCC` model (the training record is kept apart).

    :param in_channels: Image channels (3 photos, 1 Fashion-MNIST).
    :param hidden: Feature channels of every hidden layer.
    :param latent_channels: Real output channels of the encoder; two make one complex
        symbol per latent position (sets the bandwidth ratio).
    :param num_down: Stride-2 stages (the latent is ``2**num_down`` times smaller).
    :param snr_min_db, snr_max_db: SNR range the model is trained for (conditioning input
        is normalised to it, values outside are clamped).
    :param af_hidden: Width of the SNR attention blocks' hidden layer.
    """

    in_channels: int = 3
    hidden: int = 64
    latent_channels: int = 22
    num_down: int = 3
    snr_min_db: float = -5.0
    snr_max_db: float = 20.0
    af_hidden: int = 32
    model: str = field(default="DeepJSCC", init=False)

    def __post_init__(self) -> None:
        if min(self.in_channels, self.hidden, self.latent_channels, self.af_hidden) < 1:
            raise ValueError("DeepJSCCConfig: channel counts must be >= 1")
        if not 1 <= self.num_down <= 5:
            raise ValueError("DeepJSCCConfig: num_down must be 1..5")
        if not self.snr_max_db > self.snr_min_db:
            raise ValueError("DeepJSCCConfig: snr_max_db must exceed snr_min_db")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DeepJSCCConfig:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def factor(self) -> int:
        """Down-sampling factor ``2**num_down``."""
        return 2 ** self.num_down

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent ``(h, w)`` of an ``height x width`` image."""
        return math.ceil(height / self.factor), math.ceil(width / self.factor)

    def num_symbols(self, height: int, width: int) -> int:
        """Complex channel symbols the encoder emits for one ``height x width`` image.

        >>> DeepJSCCConfig(latent_channels=22, num_down=3).num_symbols(256, 256)
        11264
        """
        h, w = self.latent_size(height, width)
        return math.ceil(self.latent_channels * h * w / 2)


# ------------------------------------------------------------------------ layers
class GDN(nn.Module):
    """Generalised divisive normalisation ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``
    (``inverse=True``: multiply instead, IGDN). ``beta`` and ``gamma`` are kept positive by
    squaring a free parameter.

    :input x: [B, C, H, W]. :output: [B, C, H, W].
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_p = nn.Parameter(torch.ones(channels))
        self.gamma_p = nn.Parameter(math.sqrt(0.1) * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        beta = self.beta_p.pow(2) + 1e-6
        gamma = self.gamma_p.pow(2).view(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class SNRAttention(nn.Module):
    """ADJSCC's attention-feature block: channel gates from the pooled features and the SNR.

    :input x: [B, C, H, W]; :input snr: [B] normalised SNR in [0, 1].
    :output: ``x * sigmoid(MLP([mean_hw(x), snr]))``, [B, C, H, W].
    """

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels + 1, hidden), nn.ReLU(),
                                 nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        ctx = torch.cat([x.mean(dim=(2, 3)), snr[:, None].to(x.dtype)], dim=1)
        return x * torch.sigmoid(self.mlp(ctx))[:, :, None, None]


class _Stage(nn.Module):
    """conv (or sub-pixel up-conv) -> GDN/IGDN -> PReLU -> SNR attention."""

    def __init__(self, cin: int, cout: int, kernel: int, mode: str, af_hidden: int) -> None:
        super().__init__()
        self.mode = mode
        mult = 4 if mode == "up" else 1
        self.conv = nn.Conv2d(cin, cout * mult, kernel, stride=2 if mode == "down" else 1,
                              padding=kernel // 2)
        self.norm = GDN(cout, inverse=mode != "down" and mode != "same-enc")
        self.act = nn.PReLU(cout)
        self.af = SNRAttention(cout, af_hidden)

    def forward(self, x: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.mode == "up":
            x = F.pixel_shuffle(x, 2)
        return self.af(self.act(self.norm(x)), snr)


# ------------------------------------------------------------------------ channel helpers
def power_normalize(x: torch.Tensor) -> torch.Tensor:
    """Scale complex symbols [B, N] so every row has mean ``|x|^2 = 1``.

    >>> x = power_normalize(torch.randn(3, 10, dtype=torch.complex64) * 5)
    >>> torch.allclose(x.abs().pow(2).mean(1), torch.ones(3))
    True
    """
    p = x.abs().pow(2).mean(dim=1, keepdim=True).clamp_min(1e-12)
    return x * torch.rsqrt(p)


def awgn(x: torch.Tensor, snr_db: torch.Tensor | float,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """Complex AWGN at Es/N0 ``snr_db`` for unit-energy symbols (``no = 10**(-snr/10)``,
    ``no/2`` per real part). :input x: [B, N] complex; ``snr_db`` scalar or [B]."""
    snr = torch.as_tensor(snr_db, dtype=torch.float32, device=x.device)
    no = torch.pow(10.0, -snr / 10.0)
    if no.ndim == 1:
        no = no[:, None]
    n = torch.randn(x.shape, dtype=torch.complex64, device=x.device, generator=generator)
    return x + torch.sqrt(no) * n  # randn complex already has variance 1 (1/2 per part)


def qam_points(modulation: str) -> torch.Tensor:
    """The 5G (38.211 5.1) square QAM points, unit average energy, as Sionna builds them.

    >>> qam_points("16qam").shape
    torch.Size([16])
    """
    from sionna.phy.mapping import Constellation

    bits = _qam_bits(modulation)
    pts = Constellation("qam", bits, device="cpu").points
    return torch.as_tensor(pts).to(torch.complex64).detach().cpu()


def _qam_bits(modulation: str) -> int:
    if modulation not in QAM_ORDERS:
        raise ValueError(f"DeepJSCC-Q modulation must be one of {', '.join(QAM_ORDERS)}, "
                         f"got {modulation!r}")
    return QAM_ORDERS[modulation]


def qam_quantize(x: torch.Tensor, modulation: str, straight_through: bool = False
                 ) -> torch.Tensor:
    """Each complex symbol to the nearest point of the 5G square ``modulation``.

    A square QAM's nearest point is the nearest PAM level per real dimension: levels
    ``{±1, ±3, ..., ±(2^(m/2) − 1)} / sqrt(2(M − 1)/3)`` (the 38.211 normalisation
    1/sqrt(10), 1/sqrt(42), 1/sqrt(170)). With ``straight_through`` the gradient passes as
    if the quantiser were the identity (training).

    >>> q = qam_quantize(torch.tensor([0.1 + 0.9j]), "16qam")
    >>> round(q.real.item() * 10 ** 0.5, 3), round(q.imag.item() * 10 ** 0.5, 3)
    (1.0, 3.0)
    """
    bits = _qam_bits(modulation)
    levels = 2 ** (bits // 2)
    scale = math.sqrt(2.0 * (2 ** bits - 1) / 3.0)

    def pam(v: torch.Tensor) -> torch.Tensor:
        k = torch.floor(v * scale / 2.0) * 2.0 + 1.0  # nearest odd integer
        return k.clamp(-(levels - 1), levels - 1) / scale

    q = torch.complex(pam(x.real), pam(x.imag))
    if straight_through:
        return x + (q - x).detach()
    return q


def qam_noise_variance(modulation: str) -> float:
    """Approximate quantisation-noise variance per complex symbol of :func:`qam_quantize`
    on unit-power inputs (uniform error over one cell, both dimensions): ``2 Δ²/12`` with
    ``Δ = 2 / sqrt(2(M−1)/3)``; the decoder adds it to the channel noise variance when it
    conditions on the SNR.

    >>> round(qam_noise_variance("16qam"), 4)
    0.0667
    """
    bits = _qam_bits(modulation)
    delta = 2.0 / math.sqrt(2.0 * (2 ** bits - 1) / 3.0)
    return 2.0 * delta ** 2 / 12.0


def qam_order_for_snr(snr_db: float) -> str:
    """DeepJSCC-Q's order rule (the transmitter knows the average Es/N0, as the baselines'
    link adaptation does): 16-QAM below 12 dB, 64-QAM from 12 dB, 256-QAM from 18 dB — the
    order whose quantisation noise (:func:`qam_noise_variance`: 11.8, 17.9, 23.9 dB SQNR)
    stays at or above the channel SNR.

    >>> qam_order_for_snr(0.0), qam_order_for_snr(15.0), qam_order_for_snr(20.0)
    ('16qam', '64qam', '256qam')
    """
    if snr_db >= 18.0:
        return "256qam"
    if snr_db >= 12.0:
        return "64qam"
    return "16qam"


# ------------------------------------------------------------------------ model
class DeepJSCC(nn.Module):
    """The DeepJSCC encoder/decoder pair (see the module notes).

    :param config: :class:`DeepJSCCConfig`.

    :input images: [B, C, H, W] in [0, 1] (any size; one size per call).
    :input snr_db: Es/N0 in dB, a float or a [B] tensor (encoder and decoder are
        conditioned on it).
    :output: :meth:`encode` complex symbols [B, N] (mean power 1 per row),
        :meth:`decode` images [B, C, H, W] in [0, 1], :meth:`forward` the reconstruction
        after an AWGN channel (training).
    """

    def __init__(self, config: DeepJSCCConfig | None = None) -> None:
        super().__init__()
        cfg = config or DeepJSCCConfig()
        self.config = cfg
        n, a = cfg.hidden, cfg.af_hidden
        enc = [_Stage(cfg.in_channels, n, 5, "down", a)]
        enc += [_Stage(n, n, 5 if i == 0 else 3, "down", a) for i in range(cfg.num_down - 1)]
        enc += [_Stage(n, n, 3, "same-enc", a)]
        self.enc = nn.ModuleList(enc)
        self.enc_out = nn.Conv2d(n, cfg.latent_channels, 3, padding=1)
        dec = [_Stage(cfg.latent_channels, n, 3, "same", a), _Stage(n, n, 3, "same", a)]
        dec += [_Stage(n, n, 3, "up", a) for _ in range(cfg.num_down - 1)]
        self.dec = nn.ModuleList(dec)
        self.dec_out = nn.Conv2d(n, cfg.in_channels * 4, 3, padding=1)

    # -- helpers
    def _snr(self, snr_db: torch.Tensor | float, batch: int, device) -> torch.Tensor:
        cfg = self.config
        s = torch.as_tensor(snr_db, dtype=torch.float32, device=device).reshape(-1)
        if s.numel() == 1:
            s = s.expand(batch)
        return ((s - cfg.snr_min_db) / (cfg.snr_max_db - cfg.snr_min_db)).clamp(0, 1)

    def num_symbols(self, height: int, width: int) -> int:
        """Complex symbols per image (:meth:`DeepJSCCConfig.num_symbols`)."""
        return self.config.num_symbols(height, width)

    # -- halves
    def encode(self, images: torch.Tensor, snr_db: torch.Tensor | float) -> torch.Tensor:
        """Images [B, C, H, W] -> power-normalised complex symbols [B, N]."""
        b, _, h, w = images.shape
        f = self.config.factor
        ph, pw = (-h) % f, (-w) % f
        x = images * 2 - 1
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        snr = self._snr(snr_db, b, images.device)
        for stage in self.enc:
            x = stage(x, snr)
        z = self.enc_out(x).reshape(b, -1)
        if z.shape[1] % 2:
            z = F.pad(z, (0, 1))
        sym = torch.complex(z[:, 0::2].float(), z[:, 1::2].float())
        return power_normalize(sym)

    def decode(self, symbols: torch.Tensor, snr_db: torch.Tensor | float,
               size: tuple[int, int]) -> torch.Tensor:
        """Received complex symbols [B, N] (N may be short: missing symbols are zeros) ->
        images [B, C, H, W] of ``size`` = (H, W)."""
        cfg = self.config
        b = symbols.shape[0]
        lh, lw = cfg.latent_size(*size)
        need = cfg.num_symbols(*size)
        if symbols.shape[1] < need:
            symbols = F.pad(symbols, (0, need - symbols.shape[1]))
        symbols = symbols[:, :need]
        z = torch.stack([symbols.real, symbols.imag], dim=-1).reshape(b, -1)
        z = z[:, :cfg.latent_channels * lh * lw].reshape(b, cfg.latent_channels, lh, lw)
        snr = self._snr(snr_db, b, symbols.device)
        x = z.float()
        for stage in self.dec:
            x = stage(x, snr)
        x = F.pixel_shuffle(self.dec_out(x), 2)
        x = torch.sigmoid(x)
        return x[:, :, :size[0], :size[1]]

    def forward(self, images: torch.Tensor, snr_db: torch.Tensor | float,
                modulation: str | None = None, keep: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Training pass: encode, (optionally quantise to ``modulation`` with a straight-
        through gradient), keep the first ``keep`` symbols, AWGN at ``snr_db``, decode."""
        x = self.encode(images, snr_db)
        snr_dec = snr_db
        if modulation is not None:
            x = qam_quantize(x, modulation, straight_through=True)
            no = torch.pow(10.0, -torch.as_tensor(snr_db, dtype=torch.float32) / 10.0)
            snr_dec = -10.0 * torch.log10(no + qam_noise_variance(modulation))
        y = awgn(x, snr_db, generator)
        if keep is not None:
            y = y[:, :keep]
        return self.decode(y, snr_dec, tuple(images.shape[-2:]))

    # -- checkpoints
    def save_pretrained(self, directory: str | os.PathLike, training: dict | None = None
                        ) -> None:
        """Write ``model.safetensors`` and ``config.json`` (config + ``training`` record).

        Example::

            >>> import tempfile
            >>> d = tempfile.mkdtemp()
            >>> DeepJSCC(DeepJSCCConfig(hidden=8, latent_channels=4)).save_pretrained(d)
            >>> DeepJSCC.from_pretrained(d).config.hidden
            8
        """
        from .decoder import save_safetensors

        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, WEIGHTS_NAME + ".tmp")
        save_safetensors(self.state_dict(), tmp)
        os.replace(tmp, os.path.join(directory, WEIGHTS_NAME))
        doc = self.config.to_dict()
        doc["training"] = training or {}
        tmp = os.path.join(directory, CONFIG_NAME + ".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, os.path.join(directory, CONFIG_NAME))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, verify: bool = True,
                        map_location: str | torch.device = "cpu") -> DeepJSCC:
        """Load a folder written by :meth:`save_pretrained`. With ``verify`` the files are
        checked against a ``MANIFEST.json`` in the folder or its parent first (a sha256
        mismatch raises :class:`~gsc_semantic.decoder.CheckpointError`)."""
        from .codec import verify_checkpoint
        from .decoder import CheckpointError, load_safetensors

        directory = os.fspath(directory)
        if verify:
            verify_checkpoint(directory)
        cfg_path = os.path.join(directory, CONFIG_NAME)
        if not os.path.isfile(cfg_path):
            raise CheckpointError(f"DeepJSCC checkpoint file {cfg_path} is missing")
        try:
            with open(cfg_path) as f:
                doc = json.load(f)
            cfg = DeepJSCCConfig.from_dict(doc)
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"DeepJSCC checkpoint file {cfg_path} is corrupted ({err})"
                                  ) from err
        model = cls(cfg)
        state = load_safetensors(os.path.join(directory, WEIGHTS_NAME))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"DeepJSCC weights in {directory} do not match its "
                                  f"config: {err}") from err
        model.training_record = doc.get("training", {})
        return model.to(map_location).eval()


def deepjscc_checkpoint_name(data: str, rho: float) -> str:
    """Folder name of the shipped DeepJSCC checkpoint for ``data`` at ``rho``.

    >>> deepjscc_checkpoint_name("photos", 1 / 12)
    'deepjscc_photos_1-12'
    """
    inv = 1.0 / rho
    tag = f"1-{round(inv)}" if math.isclose(inv, round(inv), rel_tol=1e-6) else f"{rho:.4g}"
    return f"deepjscc_{data}_{tag}"


def load_deepjscc(data: str, rho: float, directory: str | None = None) -> DeepJSCC:
    """The shipped DeepJSCC model for ``data`` (``photos``/``fmnist``) at ``rho`` (or the one
    in ``directory``), verified; missing: :class:`~bridge.common.ConfigError` naming the
    ``gsc train-jscc`` command that builds it."""
    from bridge.common import ConfigError, checkpoints_root

    from .decoder import CheckpointError

    name = deepjscc_checkpoint_name(data, rho)
    path = directory or str(checkpoints_root() / name)
    if not os.path.isfile(os.path.join(path, WEIGHTS_NAME)):
        ratio = f"1/{round(1 / rho)}" if name.split("_")[-1].startswith("1-") else f"{rho:g}"
        raise ConfigError(f"no DeepJSCC checkpoint for --data {data} at rho={ratio}: "
                          f"{path} is missing; build it with `gsc train-jscc --data {data} "
                          f"--rho {ratio} --out checkpoints/{name}`")
    try:
        return DeepJSCC.from_pretrained(path)
    except CheckpointError as err:
        raise ConfigError(str(err)) from None
