"""Training of the semantic codec (``gsc train``): projection + perceptual encoder +
diffusion decoder + deterministic head, jointly, with channel augmentation.

Each step draws a batch, encodes it, quantises every layer with a straight-through
estimator, and simulates what a receiver may get:

* **layer erasures** per image: 75 % "first ``l`` layers arrived" with ``l`` uniform in
  1..L (nested layer dropout: this is what orders the perceptual values by importance),
  20 % independent erasure of each layer with probability 1/2, 5 % nothing arrived;
* **bit errors** per image: none with probability 1/2, else a BSC with BER log-uniform in
  [1e-3, 1e-1]; half of the corrupted images are dequantised from hard bits, half softly
  from the BSC LLRs (as a receiver with LLRs would).

The loss is the v-prediction diffusion loss plus the deterministic head's MSE (both in
model space). Weights are averaged with an EMA (what is saved). Reproducible by ``--seed``
(same seed, same thread count, same device: same weights), unless ``--max-minutes`` stops
or anneals by wall time.

Example::

    >>> from gsc_semantic.train import train_codec
    >>> codec = train_codec("fmnist", steps=2, batch=4, out=None, preset_overrides={
    ...     "tiny": True}, progress=False)                    # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence

import click
import torch

from gsc_semantic.codec import PRESETS, CodecConfig, SemanticCodec, checkpoints_root, write_manifest
from gsc_semantic.decoder import CheckpointError, DecoderConfig
from gsc_semantic.quantizer import LayeredQuantizer, LayerSpec, bsc_llr, flip_bits

__all__ = ["train_codec", "channel_augment", "sample_erasures", "sample_ber", "tiny_config",
           "train"]

SPLIT_SEED = 0  # dataset split seed: always the project's standard split


def tiny_config(name: str) -> CodecConfig:
    """A very small configuration of preset ``name`` (tests and smoke runs).

    Example::

        >>> tiny_config("fmnist").decoder.block_out_channels
        (16, 32)
    """
    cfg = PRESETS[name]()
    dec = cfg.decoder
    side = dec.model_shape[1]
    levels = 1
    while side % 2 == 0 and side // 2 >= 4:
        side //= 2
        levels += 1
    cfg.decoder = DecoderConfig.small(dec.image_shape, dec.cond_dim, unshuffle=dec.unshuffle,
                                      det_channels=(16,) * levels)
    cfg.enc_channels = (8,) + (16,) * (levels - 1 + (dec.unshuffle > 1))
    cfg.enc_flat_channels = 8
    return cfg


def sample_erasures(n: int, num_layers: int, generator: torch.Generator) -> torch.Tensor:
    """Training erasure masks ``[n, L]`` (True = erased), see the module docstring.

    Example::

        >>> m = sample_erasures(1000, 4, torch.Generator().manual_seed(0))
        >>> m.shape, bool(m[:, 0].float().mean() < 0.3)
        (torch.Size([1000, 4]), True)
    """
    r = torch.rand(n, generator=generator)
    keep = torch.randint(1, num_layers + 1, (n, 1), generator=generator)
    prefix = torch.arange(num_layers).unsqueeze(0) >= keep
    random = torch.rand(n, num_layers, generator=generator) < 0.5
    nothing = torch.ones(n, num_layers, dtype=torch.bool)
    mask = torch.where((r < 0.75).unsqueeze(1), prefix, random)
    return torch.where((r >= 0.95).unsqueeze(1), nothing, mask)


def sample_ber(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image training BER (0 for half, else log-uniform 1e-3..1e-1) and a soft flag.

    Example::

        >>> ber, soft = sample_ber(8, torch.Generator().manual_seed(0))
        >>> ber.shape, soft.dtype
        (torch.Size([8]), torch.bool)
    """
    clean = torch.rand(n, generator=generator) < 0.5
    ber = 10.0 ** (-3.0 + 2.0 * torch.rand(n, generator=generator))
    soft = torch.rand(n, generator=generator) < 0.5
    return ber.masked_fill(clean, 0.0), soft & ~clean


def channel_augment(values: Sequence[torch.Tensor], specs: Sequence[LayerSpec],
                    erased: torch.Tensor, ber: torch.Tensor, soft: torch.Tensor,
                    generator: torch.Generator) -> list[torch.Tensor]:
    """Quantise, send through a BSC (per-image ``ber``), dequantise (hard, or soft from
    BSC LLRs where ``soft``), erase; straight-through gradient to the unquantised values.

    Example::

        >>> specs = [LayerSpec("z1", 3, 2)]
        >>> v = [torch.zeros(2, 3, requires_grad=True)]
        >>> out = channel_augment(v, specs, torch.zeros(2, 1, dtype=torch.bool),
        ...                       torch.zeros(2), torch.zeros(2, dtype=torch.bool),
        ...                       torch.Generator().manual_seed(0))
        >>> out[0]
        tensor([[0.2500, 0.2500, 0.2500],
                [0.2500, 0.2500, 0.2500]], grad_fn=<MaskedFillBackward0>)
    """
    q = LayeredQuantizer
    out = []
    b = ber.unsqueeze(1)
    for i, (v, spec) in enumerate(zip(values, specs, strict=True)):
        nb = spec.bits_per_dim
        bits = q.index_to_bits(q.index(v.detach(), nb), nb)
        bits = flip_bits(bits.cpu(), b.cpu(), generator).to(v.device)
        hard = q.level(q.bits_to_index(bits, nb), nb)
        probs = torch.sigmoid(bsc_llr(bits, b.to(v.device)))
        smooth = q.level(q.bits_to_index(probs, nb), nb)
        val = torch.where(soft.to(v.device).unsqueeze(1), smooth, hard)
        ste = v + (val - v).detach()
        out.append(ste.masked_fill(erased[:, i:i + 1].to(v.device), 0.0))
    return out


class _Batches:
    """Endless seeded batches of images from a gsc dataset."""

    def __init__(self, name: str, batch: int, generator: torch.Generator) -> None:
        from gsc_semantic.data import load_dataset

        self.ds = load_dataset(name, "train", seed=SPLIT_SEED)
        self.batch = batch
        self.gen = generator
        self.epoch = 0
        self._new_epoch()

    def _new_epoch(self) -> None:
        if hasattr(self.ds, "set_epoch"):
            self.ds.set_epoch(self.epoch)
        self.order = torch.randperm(len(self.ds), generator=self.gen)
        self.pos = 0

    def __next__(self) -> torch.Tensor:
        if self.pos + self.batch > len(self.order):
            self.epoch += 1
            self._new_epoch()
        idx = self.order[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return torch.stack([self.ds[int(i)]["image"] for i in idx])


def _val_images(name: str, n: int) -> torch.Tensor:
    from gsc_semantic.data import load_dataset

    ds = load_dataset(name, "val", seed=SPLIT_SEED)
    step = max(1, len(ds) // n)
    return torch.stack([ds[i]["image"] for i in range(0, step * n, step)][:n])


@torch.no_grad()
def _val_psnr(codec: SemanticCodec, images: torch.Tensor) -> dict[str, float]:
    """PSNR of the deterministic head on ``images`` with all layers and with z1 only."""
    from gsc_semantic.metrics import psnr

    lb = codec.encode(images)
    out = {}
    for kept in (codec.num_layers, 1):
        mask = torch.arange(codec.num_layers).unsqueeze(0).expand(len(images), -1) >= kept
        rec = codec.decode(lb, mask.to(codec.device), sampler="mse").cpu()
        out[f"psnr_mse_head_{kept}L"] = round(float(psnr(images, rec).mean()), 3)
    return out


def _lr_factor(progress: float, warmup: float) -> float:
    if progress < warmup:
        return max(progress / warmup, 0.01)
    p = (progress - warmup) / max(1e-9, 1.0 - warmup)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, p)))


def train_codec(data: str = "fmnist", steps: int = 3000, batch: int = 32, seed: int = 0,
                out: str | None = None, device: str = "cpu", lr: float = 1e-3,
                det_weight: float = 1.0, ema_decay: float = 0.998,
                max_minutes: float | None = None, save_every: int = 250,
                eval_every: int = 250, threads: int = 0, config: CodecConfig | None = None,
                init: str | None = None, warmup: float = 0.03, progress: bool = True,
                command: str | None = None) -> SemanticCodec:
    """Train a codec for dataset ``data`` and (if ``out``) save it there periodically.

    :param data: ``"fmnist"`` or ``"photos"`` (selects the preset config too).
    :param config: override the preset (e.g. :func:`tiny_config`).
    :param max_minutes: stop (and anneal the learning rate) by wall time as well.
    :param threads: torch intra-op threads (0: leave torch's default).
    :param init: start from the weights of this checkpoint folder (fine-tuning; its config
        is used, so ``config`` must be None).
    :param warmup: fraction of the run spent ramping the learning rate up.
    :return: the EMA codec (eval mode, on ``device``).

    Example::

        >>> codec = train_codec("fmnist", steps=2, batch=4, config=tiny_config("fmnist"),
        ...                     progress=False, eval_every=0)
        >>> codec.bits_per_layer
        [16, 32, 64, 128]
    """
    from tqdm.auto import tqdm

    if data not in PRESETS:
        raise click.BadParameter(f"--data must be one of {', '.join(PRESETS)}, got {data!r}")
    if threads:
        torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("--device cuda: no CUDA device is available here")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    init_info = None
    if init is not None:
        if config is not None:
            raise ValueError("give either init or config, not both")
        codec = SemanticCodec.from_pretrained(init).to(device)
        cfg = copy.deepcopy(codec.config)
        if cfg.name != data:
            raise click.BadParameter(f"--init {init} is a {cfg.name!r} codec, not {data!r}")
        init_info = {"path": str(init), "steps_done": cfg.training.get("steps_done"),
                     "command": cfg.training.get("command")}
    else:
        cfg = copy.deepcopy(config) if config is not None else PRESETS[data]()
        codec = SemanticCodec(cfg).to(device)
    codec.train()
    ema = copy.deepcopy(codec).eval().requires_grad_(False)
    params = [p for p in codec.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    batches = _Batches(data, batch, gen)
    val = _val_images(data, 64 if data == "fmnist" else 32) if eval_every else None
    n_params = {
        "encoder": sum(p.numel() for p in codec.encoder.parameters()),
        "unet": sum(p.numel() for p in codec.decoder.unet.parameters()),
        "det_head": sum(p.numel() for p in codec.decoder.det_head.parameters()),
        "cond_mlp": sum(p.numel() for p in codec.decoder.cond_mlp.parameters()),
    }
    history: list[dict] = []
    t0 = time.time()
    run_avg: dict[str, float] = {}
    bar = tqdm(range(steps), desc=f"train {data}", disable=not progress, mininterval=10,
               file=sys.stderr)
    done = 0

    def save(final: bool) -> None:
        if not out:
            return
        cfg_out = ema.config
        cfg_out.training = {
            "command": command or f"gsc train --data {data} --steps {steps} --batch {batch} "
                                  f"--seed {seed} --out {out}",
            "data": data, "steps_planned": steps, "steps_done": done, "batch": batch,
            "seed": seed, "lr": lr, "det_weight": det_weight, "ema_decay": ema_decay,
            "wall_time_s": round(time.time() - t0, 1), "device": str(device),
            "threads": torch.get_num_threads(), "parameters": n_params,
            "torch": torch.__version__, "python": platform.python_version(),
            "finished": final, "history": history[-40:], "init": init_info,
        }
        ema.save_pretrained(out, half=True)
        root = checkpoints_root().resolve()
        if os.path.realpath(os.path.dirname(os.path.abspath(out))) == str(root):
            write_manifest(root, {os.path.basename(os.path.normpath(out)):
                                  cfg_out.training["command"]})

    for step in bar:
        elapsed = time.time() - t0
        prog = step / steps
        if max_minutes:
            prog = max(prog, elapsed / (60.0 * max_minutes))
            if prog >= 1.0:
                break
        for g in opt.param_groups:
            g["lr"] = lr * _lr_factor(prog, warmup)
        images = next(batches).to(device)
        n = images.shape[0]
        values = codec.encoder(images)
        erased = sample_erasures(n, codec.num_layers, gen)
        ber, soft = sample_ber(n, gen)
        noisy = channel_augment(values, cfg.layers, erased, ber, soft, gen)
        cond = codec.conditioning(noisy, erased.to(device))
        losses = codec.decoder.training_losses(images, cond, generator=gen)
        loss = losses["diffusion"] + det_weight * losses["det"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        done = step + 1
        d = min(ema_decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), codec.parameters(), strict=True):
                pe.lerp_(pm, 1.0 - d)
            for be, bm in zip(ema.buffers(), codec.buffers(), strict=True):
                be.copy_(bm)
        for k, v in losses.items():
            x = float(v.detach())
            run_avg[k] = 0.98 * run_avg.get(k, x) + 0.02 * x
        bar.set_postfix({k: f"{v:.4f}" for k, v in run_avg.items()}, refresh=False)
        last = done == steps
        if eval_every and (done % eval_every == 0 or last):
            rec = {"step": done, "wall_s": round(time.time() - t0, 1),
                   **{f"loss_{k}": round(v, 5) for k, v in run_avg.items()},
                   **_val_psnr(ema, val.to(device))}
            history.append(rec)
            tqdm.write(json.dumps(rec), file=sys.stderr)
        if save_every and done % save_every == 0 and not last:
            save(False)
    bar.close()
    if eval_every and done and (not history or history[-1]["step"] != done):
        history.append({"step": done, "wall_s": round(time.time() - t0, 1),
                        **{f"loss_{k}": round(v, 5) for k, v in run_avg.items()},
                        **_val_psnr(ema, val.to(device))})
        tqdm.write(json.dumps(history[-1]), file=sys.stderr)
    save(True)
    return ema.eval()


@click.command("train")
@click.option("--data", type=click.Choice(sorted(PRESETS)), default="fmnist", show_default=True,
              help="Dataset (and codec preset).")
@click.option("--steps", type=click.IntRange(1), default=3000, show_default=True)
@click.option("--batch", type=click.IntRange(1), default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default checkpoints/DATA).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--max-minutes", type=float, default=None,
              help="Also stop (and anneal) by wall time; not bit-reproducible.")
@click.option("--threads", type=click.IntRange(0), default=0,
              help="torch threads (0: default); 1 is fastest on a busy 2-core machine.")
@click.option("--save-every", type=click.IntRange(0), default=250, show_default=True)
@click.option("--eval-every", type=click.IntRange(0), default=250, show_default=True)
@click.option("--init", "init", type=click.Path(file_okay=False, exists=True), default=None,
              help="Fine-tune: start from this checkpoint folder's weights and config.")
@click.option("--tiny", is_flag=True, help="Tiny model (smoke test).")
def train(data: str, steps: int, batch: int, seed: int, out: str | None, device: str,
          lr: float, max_minutes: float | None, threads: int, save_every: int,
          eval_every: int, init: str | None, tiny: bool) -> None:
    """Train the semantic codec (encoder projection, perceptual encoder, diffusion decoder)
    with bit-error and layer-erasure augmentation; writes config.json + model.safetensors.

    Example: ``gsc train --data fmnist --steps 3000 --batch 32 --seed 0``
    """
    out = out or str(checkpoints_root() / data)
    cmd = (f"gsc train --data {data} --steps {steps} --batch {batch} --seed {seed} "
           f"--lr {lr}" + (f" --max-minutes {max_minutes}" if max_minutes else "")
           + (f" --init {init}" if init else "") + (" --tiny" if tiny else "")
           + f" --out {out}")
    if tiny and init:
        raise click.BadParameter("--tiny and --init exclude each other")
    try:
        train_codec(data, steps=steps, batch=batch, seed=seed, out=out, device=device, lr=lr,
                    max_minutes=max_minutes, save_every=save_every, eval_every=eval_every,
                    threads=threads, config=tiny_config(data) if tiny else None, init=init,
                    command=cmd)
    except (CheckpointError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    train()
