"""``gsc train-jscc``: train a :class:`~gsc_semantic.deepjscc.DeepJSCC` model in-project.

**Data.** Photos: random ``--patch`` x ``--patch`` patches (default 64) of the photo
collection's 256-px training crops (:class:`~gsc_semantic.data.PhotoCrops`, split by source
photo; validation: 256-px crops of the validation photos), so the model trains cheaply on
patches and is applied at 256x256 (it is fully convolutional). Fashion-MNIST: whole 28x28
training images.

**Channel.** Every sample gets its own Es/N0 drawn uniformly from the config's SNR range
(-5..20 dB) and the encoder and decoder are conditioned on it (one model for every SNR);
AWGN on unit-power complex symbols. A fraction ``--q-fraction`` of the batches is quantised
to the 5G QAM order DeepJSCC-Q uses at that SNR
(:func:`~gsc_semantic.deepjscc.qam_order_for_snr`) with a straight-through gradient, so the
same checkpoint serves the ``deepjscc`` and ``deepjscc-q`` link modes.

**Bandwidth.** ``--rho`` fixes the encoder's channel count: the most that fits the budget
ρ·C·H·W channel uses at the evaluation size (256x256 photos, 28x28 Fashion-MNIST) on gsc_phy's
OFDM grid, pilots, guards and cyclic prefix counted (:func:`gsc_semantic.deepjscc_link.
plan_symbols`); when a whole channel more would not fit but one fewer leaves more than 10 %
unused, the model emits one channel more and the link sends only the symbols that fit (the
decoder sees zeros for the rest, in training too).

**Loss.** MSE (DeepJSCC's objective: PSNR). Adam, the learning rate divided by 4 for the last
quarter of ``--steps`` or ``--max-minutes``. A checkpoint is written at every validation, so
``--warm-start OUT`` resumes (the weights and the step count; Adam's moments restart).

Example::

    gsc train-jscc --data photos --rho 1/12 --max-minutes 35 --out checkpoints/deepjscc_photos_1-12
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import click
import numpy as np
import torch

__all__ = ["TrainJSCCConfig", "train_jscc", "train_jscc_command", "VAL_SNRS"]

#: SNRs (dB) of the validation PSNR printed during training
VAL_SNRS = (-5.0, 0.0, 5.0, 10.0, 20.0)
#: evaluation image shape per dataset (what the bandwidth is planned for)
EVAL_SHAPES = {"photos": (3, 256, 256), "fmnist": (1, 28, 28)}


@dataclass
class TrainJSCCConfig:
    """What ``gsc train-jscc`` does (one object instead of a long argument list)."""

    data: str = "photos"
    rho: float = 1 / 12
    out: str = "runs/deepjscc"
    steps: int = 20000
    batch: int = 16
    patch: int = 64
    lr: float = 1e-3
    hidden: int = 64
    num_down: int | None = None
    q_fraction: float = 0.25
    seed: int = 0
    max_minutes: float | None = None
    warm_start: str | None = None
    val_every: int = 250
    val_images: int = 8
    progress: bool = True
    command: str = ""

    def validate(self) -> None:
        from bridge.common import ConfigError

        if self.data not in EVAL_SHAPES:
            raise ConfigError(f"--data must be one of {', '.join(EVAL_SHAPES)}, "
                              f"got {self.data!r}")
        if not 0 < self.rho <= 4:
            raise ConfigError(f"--rho must be in (0, 4], got {self.rho}")
        if min(self.steps, self.batch, self.hidden, self.val_every, self.val_images) < 1:
            raise ConfigError("--steps, --batch, --hidden, --val-every and --val-images "
                              "must be >= 1")
        if self.data == "photos" and not 16 <= self.patch <= 256:
            raise ConfigError(f"--patch must be 16..256, got {self.patch}")
        if not 0 <= self.q_fraction <= 1:
            raise ConfigError(f"--q-fraction must be in [0, 1], got {self.q_fraction}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"--max-minutes must be positive, got {self.max_minutes}")
        if self.num_down is not None and not 1 <= self.num_down <= 5:
            raise ConfigError(f"--num-down must be 1..5, got {self.num_down}")
        if self.warm_start and not os.path.isfile(os.path.join(self.warm_start,
                                                               "model.safetensors")):
            raise ConfigError(f"--warm-start {self.warm_start}: no model.safetensors there")


class _Batches:
    """Training batches and the fixed validation images of one dataset."""

    def __init__(self, cfg: TrainJSCCConfig) -> None:
        from .data import load_dataset

        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        if cfg.data == "photos":
            self.train = load_dataset("photos", "train", size=256, seed=cfg.seed)
            val = load_dataset("photos", "val", size=256, seed=cfg.seed)
        else:
            self.train = load_dataset("fmnist", "train", seed=cfg.seed)
            val = load_dataset("fmnist", "val", seed=cfg.seed)
        idx = np.linspace(0, len(val) - 1, min(cfg.val_images, len(val))).round().astype(int)
        self.val = torch.stack([val[int(i)]["image"] for i in idx])
        self.epoch = 0

    def next(self) -> torch.Tensor:
        cfg, rng = self.cfg, self.rng
        if cfg.data != "photos":
            idx = rng.integers(len(self.train), size=cfg.batch)
            return torch.stack([self.train[int(i)]["image"] for i in idx])
        per_crop = 4
        out = []
        self.epoch += 1
        self.train.set_epoch(self.epoch)
        while len(out) < cfg.batch:
            img = self.train[int(rng.integers(len(self.train)))]["image"]
            h, w = img.shape[-2:]
            p = min(cfg.patch, h, w)
            for _ in range(per_crop):
                y0, x0 = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
                out.append(img[:, y0:y0 + p, x0:x0 + p])
        return torch.stack(out[:cfg.batch])


def _psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    mse = (x - y).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


@torch.no_grad()
def validate(model, images: torch.Tensor, keep_fraction: float, seed: int = 0
             ) -> dict[str, float]:
    """Validation PSNR (dB) per SNR of :data:`VAL_SNRS` (AWGN, analog), fixed noise draws."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    n = model.num_symbols(*images.shape[-2:])
    keep = None if keep_fraction >= 1 else int(math.floor(n * keep_fraction))
    out = {}
    for snr in VAL_SNRS:
        rec = torch.cat([model(images[i:i + 4], snr, keep=keep, generator=gen)
                         for i in range(0, len(images), 4)])
        out[f"{snr:g}"] = round(_psnr(rec, images), 3)
    model.train()
    return out


def train_jscc(cfg: TrainJSCCConfig) -> dict:
    """Train (or resume) a DeepJSCC model as described in the module notes; returns the
    training record (also in ``OUT/config.json``)."""
    from tqdm import tqdm

    from .deepjscc import DeepJSCC, DeepJSCCConfig, qam_order_for_snr
    from .deepjscc_link import plan_symbols

    cfg.validate()
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    deadline = None if cfg.max_minutes is None else t0 + 60 * cfg.max_minutes
    shape = EVAL_SHAPES[cfg.data]
    num_down = cfg.num_down or (3 if cfg.data == "photos" else 2)
    plan = plan_symbols(cfg.rho, shape, num_down)
    done, prev = 0, {}
    if cfg.warm_start:
        model = DeepJSCC.from_pretrained(cfg.warm_start, verify=False)
        prev = getattr(model, "training_record", {}) or {}
        done = int(prev.get("steps_done", 0))
        if model.config.latent_channels != plan.latent_channels:
            from bridge.common import ConfigError

            raise ConfigError(f"--warm-start {cfg.warm_start} has "
                              f"{model.config.latent_channels} latent channels; rho="
                              f"{cfg.rho:g} needs {plan.latent_channels}")
    else:
        model = DeepJSCC(DeepJSCCConfig(in_channels=shape[0], hidden=cfg.hidden,
                                        latent_channels=plan.latent_channels,
                                        num_down=num_down))
    mcfg = model.config
    batches = _Batches(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + done)
    record = {"data": cfg.data, "rho": cfg.rho, "eval_shape": list(shape),
              "symbols_per_image": plan.symbols_sent, "keep_fraction": plan.keep_fraction,
              "rho_effective": plan.rho_effective, "patch": cfg.patch, "batch": cfg.batch,
              "lr": cfg.lr, "q_fraction": cfg.q_fraction, "seed": cfg.seed,
              "loss": "MSE", "channel": "AWGN, Es/N0 ~ U(snr_min_db, snr_max_db) per sample",
              "command": cfg.command, "val_psnr_db": prev.get("val_psnr_db", {}),
              "minutes_before": prev.get("minutes", 0.0) + prev.get("minutes_before", 0.0)}
    model.train()
    step = done
    lo, hi = mcfg.snr_min_db, mcfg.snr_max_db

    def save(final: bool = False) -> None:
        record.update(steps_done=step, minutes=round((time.time() - t0) / 60, 2),
                      val_psnr_db=validate(model, batches.val, plan.keep_fraction))
        model.save_pretrained(cfg.out, record)
        msg = ", ".join(f"{k} dB {v:.2f}" for k, v in record["val_psnr_db"].items())
        tqdm.write(f"step {step}: validation PSNR {msg}" + (" (final)" if final else ""))

    with tqdm(total=cfg.steps, initial=done, desc="train-jscc",
              disable=not cfg.progress) as bar:
        while step < cfg.steps:
            now = time.time()
            if deadline is not None and now > deadline:
                break
            frac = (step - done) / max(1, cfg.steps - done)
            if deadline is not None:
                frac = max(frac, (now - t0) / (deadline - t0))
            for g in opt.param_groups:
                g["lr"] = cfg.lr * (0.25 if frac > 0.75 else 1.0)
            x = batches.next()
            snr = torch.rand(x.shape[0], generator=gen) * (hi - lo) + lo
            n = model.num_symbols(*x.shape[-2:])
            keep = None if plan.keep_fraction >= 1 else int(math.floor(n * plan.keep_fraction))
            if torch.rand(1, generator=gen).item() < cfg.q_fraction:
                mod = qam_order_for_snr(float(snr.mean()))
                # one order per batch: draw the SNRs inside that order's range
                rng = {"16qam": (lo, 12.0), "64qam": (12.0, 18.0), "256qam": (18.0, hi)}[mod]
                snr = torch.rand(x.shape[0], generator=gen) * (rng[1] - rng[0]) + rng[0]
                y = model(x, snr, modulation=mod, keep=keep, generator=gen)
            else:
                y = model(x, snr, keep=keep, generator=gen)
            loss = (y - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(psnr=f"{-10 * math.log10(max(loss.item(), 1e-10)):.2f}",
                            refresh=False)
            if step % cfg.val_every == 0:
                save()
    save(final=True)
    return record


def _ratio_arg(text: str) -> float:
    from bridge.common import ConfigError
    from gsc_phy.config import parse_rate

    try:
        return parse_rate(text)
    except ConfigError as err:
        raise ConfigError(str(err).replace("--rate", "--rho")) from None


@click.command("train-jscc")
@click.option("--data", default="photos", show_default=True, help="photos or fmnist")
@click.option("--rho", default="1/12", show_default=True,
              help="Bandwidth ratio the model is sized for (channel uses / C·H·W)")
@click.option("--steps", type=int, default=20000, show_default=True)
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--patch", type=int, default=64, show_default=True,
              help="Photo training patch side (applied at 256x256)")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--hidden", type=int, default=64, show_default=True)
@click.option("--num-down", type=int, default=None,
              help="Stride-2 stages (default 3 photos, 2 fmnist)")
@click.option("--q-fraction", type=float, default=0.25, show_default=True,
              help="Fraction of batches quantised to 5G QAM (DeepJSCC-Q)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-minutes", type=float, default=None)
@click.option("--threads", type=int, default=None, help="torch CPU threads")
@click.option("--val-every", type=int, default=250, show_default=True)
@click.option("--warm-start", type=click.Path(file_okay=False), default=None,
              help="Resume from this checkpoint folder (its steps count)")
@click.option("--out", default="runs/deepjscc", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True)
def train_jscc_command(data, rho, steps, batch, patch, lr, hidden, num_down, q_fraction, seed,
                       max_minutes, threads, val_every, warm_start, out, quiet):
    """Train DeepJSCC (MSE, SNR-adaptive) for gsc eval's deepjscc / deepjscc-q methods."""
    from bridge.common import checkpoints_root

    from .codec import write_manifest

    parts = [f"gsc train-jscc --data {data} --rho {rho} --steps {steps} --batch {batch} "
             f"--patch {patch} --lr {lr} --hidden {hidden} --q-fraction {q_fraction} "
             f"--seed {seed}"]
    if num_down:
        parts.append(f"--num-down {num_down}")
    if max_minutes:
        parts.append(f"--max-minutes {max_minutes}")
    if warm_start:
        parts.append(f"--warm-start {warm_start}")
    parts.append(f"--out {out}")
    cfg = TrainJSCCConfig(data=data, rho=_ratio_arg(rho), out=out, steps=steps, batch=batch,
                          patch=patch, lr=lr, hidden=hidden, num_down=num_down,
                          q_fraction=q_fraction, seed=seed, max_minutes=max_minutes,
                          warm_start=warm_start, val_every=val_every, progress=not quiet,
                          command=" ".join(parts))
    cfg.validate()
    if threads:
        torch.set_num_threads(threads)
    rec = train_jscc(cfg)
    name = os.path.basename(os.path.normpath(out))
    if os.path.abspath(os.path.dirname(os.path.normpath(out))) == os.path.abspath(
            str(checkpoints_root())):
        write_manifest(only=[name], rebuild={name: cfg.command})
    click.echo(f"deepjscc: {rec['steps_done']} steps, validation PSNR "
               + ", ".join(f"{k} dB {v:.2f}" for k, v in rec["val_psnr_db"].items())
               + f"; wrote {out}")
