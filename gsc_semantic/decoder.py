"""Few-step conditional diffusion decoder (diffusers ``UNet2DModel``) with a deterministic
MSE head.

The conditioning vector is ``c = [z_1 .. z_L (0 where erased), 1 - erasure_mask]``. From it

* ``cond_mlp(c)`` gives the UNet's class embedding (``class_embed_type="identity"``, added
  to the timestep embedding of every residual block);
* ``det_head(c)`` is a small conv decoder trained with MSE: the deterministic (MSE-optimal)
  reconstruction ``x_det``. It is concatenated to the UNet's noisy input channels, so the
  diffusion model only has to add what the MSE estimate cannot (texture, sharp edges) and
  falls back gracefully to a blurrier, plausible image when layers are missing.

The diffusion runs in "model space": images mapped to [-1, 1] and, optionally,
pixel-unshuffled by ``unshuffle`` (64x64x3 -> 32x32x12 at 2), which makes a 64x64 model
about as cheap as a 32x32 one. Training uses v-prediction on a cosine
(``squaredcos_cap_v2``) 1000-step schedule; sampling uses DPM-Solver++ (2nd order) or DDIM
with trailing timestep spacing, 4-50 steps (default 8).

Weights are stored as safetensors next to a JSON config (``save_pretrained`` /
``from_pretrained``, diffusers style); nothing is ever unpickled.

Example::

    >>> import torch
    >>> dec = ConditionalDiffusionDecoder(DecoderConfig.small((1, 28, 28), cond_dim=20))
    >>> x = dec.sample(torch.zeros(2, 20), steps=4, generator=torch.Generator().manual_seed(0))
    >>> x.shape, bool(x.min() >= 0 and x.max() <= 1)
    (torch.Size([2, 1, 28, 28]), True)
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SAMPLERS",
    "CheckpointError",
    "DecoderConfig",
    "ConditionalDiffusionDecoder",
    "load_safetensors",
    "save_safetensors",
]

#: sampler names accepted by :meth:`ConditionalDiffusionDecoder.sample`
SAMPLERS = ("dpm++", "ddim", "mse")
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupted or does not match its config."""


def save_safetensors(state: dict[str, torch.Tensor], path: str,
                     metadata: dict[str, str] | None = None) -> None:
    """Write a state dict with safetensors (contiguous CPU copies, shared storage split).

    Example::

        >>> import tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_safetensors({"a": torch.ones(2)}, p); load_safetensors(p)["a"]
        tensor([1., 1.])
    """
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous().clone() for k, v in state.items()}, path,
              metadata=metadata)


def load_safetensors(path: str, rebuild_hint: str = "") -> dict[str, torch.Tensor]:
    """Read a safetensors file (the only weight format gsc loads); a missing or unreadable
    file raises :class:`CheckpointError` naming it (and ``rebuild_hint``).

    Example::

        >>> load_safetensors("/nonexistent.safetensors")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        ...
        gsc_semantic.decoder.CheckpointError: checkpoint file /nonexistent.safetensors is missing
    """
    from safetensors.torch import load_file

    hint = f"; {rebuild_hint}" if rebuild_hint else ""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint file {path} is missing{hint}")
    try:
        return load_file(path, device="cpu")
    except Exception as err:  # safetensors raises several types on corrupt headers
        raise CheckpointError(f"checkpoint file {path} is corrupted or not safetensors "
                              f"({type(err).__name__}: {err}){hint}") from err


@dataclass
class DecoderConfig:
    """Configuration of :class:`ConditionalDiffusionDecoder` (JSON-serialisable).

    :param image_shape: ``(C, H, W)`` of the output images.
    :param cond_dim: length of the conditioning vector (sum of layer dims + L).
    :param unshuffle: pixel-unshuffle factor of the diffusion model space.
    :param block_out_channels: UNet channels per level (each level halves the side).
    :param layers_per_block: UNet residual blocks per level.
    :param attention: use attention at the lowest UNet level.
    :param cond_hidden: hidden width of the conditioning MLP.
    :param det_channels: channels of the deterministic head, coarse to fine; the head
        starts at side ``model_side / 2**(len(det_channels) - 1)``.

    Example::

        >>> DecoderConfig.small((3, 64, 64), 100, unshuffle=2).model_shape
        (12, 32, 32)
    """

    image_shape: tuple[int, int, int]
    cond_dim: int
    unshuffle: int = 1
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention: bool = False
    norm_num_groups: int = 8
    cond_hidden: int = 256
    det_channels: tuple[int, ...] = (64, 64, 32)
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(v) for v in self.image_shape)
        self.block_out_channels = tuple(int(v) for v in self.block_out_channels)
        self.det_channels = tuple(int(v) for v in self.det_channels)
        c, h, w = self.image_shape
        r = self.unshuffle
        if h % r or w % r:
            raise ValueError(f"image side {h}x{w} not divisible by unshuffle={r}")
        side = h // r
        if side % (2 ** (len(self.block_out_channels) - 1)):
            raise ValueError(f"model side {side} not divisible by "
                             f"2**{len(self.block_out_channels) - 1}")
        if side % (2 ** (len(self.det_channels) - 1)):
            raise ValueError(f"model side {side} not divisible by "
                             f"2**{len(self.det_channels) - 1}")

    @property
    def model_shape(self) -> tuple[int, int, int]:
        """``(C * r * r, H / r, W / r)``: the tensor shape the UNet works on."""
        c, h, w = self.image_shape
        r = self.unshuffle
        return (c * r * r, h // r, w // r)

    @classmethod
    def small(cls, image_shape: Sequence[int], cond_dim: int, **kw) -> DecoderConfig:
        """A tiny configuration (tests, quick runs)."""
        base = {"block_out_channels": (16, 32), "det_channels": (32, 16), "cond_hidden": 64}
        base.update(kw)
        return cls(tuple(image_shape), cond_dim, **base)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        d = asdict(self)
        for k in ("image_shape", "block_out_channels", "det_channels"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DecoderConfig:
        """Inverse of :meth:`to_dict` (unknown keys are rejected)."""
        return cls(**d)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.n1 = nn.GroupNorm(min(8, cin), cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.n2 = nn.GroupNorm(min(8, cout), cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x)))
        h = self.c2(F.silu(self.n2(h)))
        return h + self.skip(x)


class DeterministicHead(nn.Module):
    """Conditioning vector -> model-space image (MSE estimate): linear to a coarse map, then
    residual conv blocks with nearest-neighbour x2 upsampling.

    Example::

        >>> DeterministicHead(20, (12, 32, 32), (64, 32, 32, 16))(torch.zeros(1, 20)).shape
        torch.Size([1, 12, 32, 32])
    """

    def __init__(self, cond_dim: int, model_shape: Sequence[int], channels: Sequence[int]
                 ) -> None:
        super().__init__()
        cm, side, _ = model_shape
        self.side0 = side // 2 ** (len(channels) - 1)
        self.c0 = channels[0]
        self.fc = nn.Linear(cond_dim, self.c0 * self.side0 * self.side0)
        blocks: list[nn.Module] = [_ResBlock(channels[0], channels[0])]
        for cin, cout in zip(channels[:-1], channels[1:], strict=True):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), _ResBlock(cin, cout)]
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Sequential(nn.GroupNorm(min(8, channels[-1]), channels[-1]), nn.SiLU(),
                                 nn.Conv2d(channels[-1], cm, 3, padding=1))

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        h = self.fc(cond).view(-1, self.c0, self.side0, self.side0)
        return self.out(self.blocks(h))


class ConditionalDiffusionDecoder(nn.Module):
    """Conditional diffusion decoder + deterministic head (see the module docstring).

    :param config: :class:`DecoderConfig`.

    Example::

        >>> dec = ConditionalDiffusionDecoder(DecoderConfig.small((1, 28, 28), cond_dim=20))
        >>> losses = dec.training_losses(torch.rand(4, 1, 28, 28), torch.randn(4, 20))
        >>> sorted(losses)
        ['det', 'diffusion']
    """

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        from diffusers import DDPMScheduler, UNet2DModel

        self.config = config
        cm, side, _ = config.model_shape
        ch = config.block_out_channels
        n = len(ch)
        down = ["DownBlock2D"] * n
        up = ["UpBlock2D"] * n
        if config.attention:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        self.unet = UNet2DModel(
            sample_size=side, in_channels=2 * cm, out_channels=cm, block_out_channels=ch,
            down_block_types=tuple(down), up_block_types=tuple(up),
            layers_per_block=config.layers_per_block, class_embed_type="identity",
            norm_num_groups=config.norm_num_groups, attention_head_dim=32)
        temb = ch[0] * 4
        self.cond_mlp = nn.Sequential(nn.Linear(config.cond_dim, config.cond_hidden), nn.SiLU(),
                                      nn.Linear(config.cond_hidden, temb))
        self.det_head = DeterministicHead(config.cond_dim, config.model_shape,
                                          config.det_channels)
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
            prediction_type=config.prediction_type, clip_sample=False)

    # ---- spaces ------------------------------------------------------------------------
    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` in [0, 1] -> model space (``[-1, 1]``, pixel-unshuffled)."""
        x = 2.0 * images - 1.0
        r = self.config.unshuffle
        return F.pixel_unshuffle(x, r) if r > 1 else x

    def from_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """Model space -> images in [0, 1] (clamped)."""
        r = self.config.unshuffle
        if r > 1:
            x = F.pixel_shuffle(x, r)
        return ((x + 1.0) * 0.5).clamp(0.0, 1.0)

    # ---- training ----------------------------------------------------------------------
    def training_losses(self, images: torch.Tensor, cond: torch.Tensor,
                        generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"diffusion": v-prediction MSE, "det": MSE of the deterministic head}``
        (both in model space), for images in [0, 1] and conditioning ``[N, cond_dim]``."""
        x0 = self.to_model_space(images)
        n = x0.shape[0]
        x_det = self.det_head(cond)
        det = F.mse_loss(x_det, x0)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        t = torch.randint(0, self.config.num_train_timesteps, (n,), generator=generator,
                          device="cpu").to(x0.device)
        sched = self.noise_scheduler
        x_t = sched.add_noise(x0, noise, t)
        if self.config.prediction_type == "v_prediction":
            target = sched.get_velocity(x0, noise, t)
        elif self.config.prediction_type == "epsilon":
            target = noise
        else:
            target = x0
        inp = torch.cat([x_t, x_det.detach()], dim=1)
        pred = self.unet(inp, t, class_labels=self.cond_mlp(cond)).sample
        return {"diffusion": F.mse_loss(pred, target), "det": det}

    # ---- sampling ----------------------------------------------------------------------
    def make_scheduler(self, sampler: str = "dpm++"):
        """A fresh diffusers scheduler for ``"dpm++"`` (DPM-Solver++ 2M) or ``"ddim"``."""
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        common = {"num_train_timesteps": self.config.num_train_timesteps,
                  "beta_schedule": self.config.beta_schedule,
                  "prediction_type": self.config.prediction_type,
                  "timestep_spacing": "trailing"}
        if sampler == "dpm++":
            return DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2,
                                               lower_order_final=True, **common)
        if sampler == "ddim":
            return DDIMScheduler(clip_sample=False, set_alpha_to_one=True, **common)
        raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, steps: int = 8, sampler: str = "dpm++",
               generator: torch.Generator | None = None, strength: float = 1.0
               ) -> torch.Tensor:
        """Images ``[N, C, H, W]`` in [0, 1] from conditioning vectors ``[N, cond_dim]``.

        :param steps: denoising steps (4-50 typical; ignored by ``"mse"``).
        :param sampler: ``"dpm++"`` (default), ``"ddim"``, or ``"mse"`` (the deterministic
            head alone: MSE-optimal, blurrier, one forward pass).
        :param generator: CPU generator for the initial noise (reproducible decoding).
        :param strength: in (0, 1]; 1 samples from pure noise, smaller values start from the
            deterministic estimate noised to ``strength`` of the trajectory (SDEdit-style:
            keeps its coarse structure, generates detail; ``steps * strength`` UNet passes).
        """
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
        if sampler != "mse" and not 1 <= steps <= self.config.num_train_timesteps:
            raise ValueError(f"steps must be in 1..{self.config.num_train_timesteps}, "
                             f"got {steps}")
        x_det = self.det_head(cond)
        if sampler == "mse":
            return self.from_model_space(x_det)
        emb = self.cond_mlp(cond)
        sched = self.make_scheduler(sampler)
        with warnings.catch_warnings():  # numpy-2 __array__ notice inside diffusers
            warnings.simplefilter("ignore", DeprecationWarning)
            sched.set_timesteps(steps, device=cond.device)
        noise = torch.randn(x_det.shape, generator=generator).to(cond.device)
        timesteps = sched.timesteps
        if strength < 1.0:
            start = steps - max(1, int(round(steps * strength)))
            timesteps = timesteps[start:]
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(start)
            x = sched.add_noise(x_det, noise, timesteps[:1].expand(x_det.shape[0]))
        else:
            x = noise * sched.init_noise_sigma
        for t in timesteps:
            inp = torch.cat([sched.scale_model_input(x, t), x_det], dim=1)
            tt = t.expand(x.shape[0]).to(cond.device)
            out = self.unet(inp, tt, class_labels=emb).sample
            x = sched.step(out, t, x).prev_sample
        return self.from_model_space(x)

    # ---- persistence -------------------------------------------------------------------
    def save_pretrained(self, directory: str) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``.

        Example::

            >>> import tempfile
            >>> d = tempfile.mkdtemp()
            >>> dec = ConditionalDiffusionDecoder(DecoderConfig.small((1, 8, 8), 4))
            >>> dec.save_pretrained(d)
            >>> type(ConditionalDiffusionDecoder.from_pretrained(d)).__name__
            'ConditionalDiffusionDecoder'
        """
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, CONFIG_NAME), "w") as f:
            json.dump({"_class_name": type(self).__name__, **self.config.to_dict()}, f,
                      indent=2)
        save_safetensors(self.state_dict(), os.path.join(directory, WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, directory: str) -> ConditionalDiffusionDecoder:
        """Build from ``config.json`` and load ``model.safetensors`` (strict)."""
        path = os.path.join(directory, CONFIG_NAME)
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint file {path} is missing")
        with open(path) as f:
            cfg = json.load(f)
        cfg.pop("_class_name", None)
        model = cls(DecoderConfig.from_dict(cfg))
        state = load_safetensors(os.path.join(directory, WEIGHTS_NAME))
        model.load_state_dict(state, strict=True)
        return model.eval()
