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
model space), plus, when the dataset has class labels (``num_classes``, e.g. Fashion-MNIST)
and ``label_weight > 0``, a **label loss**: the cross-entropy of a small probe head
(:class:`LabelProbe`, used only in training, not saved) reading the quantised ``z1`` values
(straight-through, no channel noise), so that the first layer carries the task
(task-oriented semantic communication: the training labels are part of the training data).
Weights are averaged with an EMA (what is saved). Reproducible by ``--seed``
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
from torch import nn

from bridge.common import checkpoints_root
from gsc_semantic.codec import (
    PRESETS,
    CodecConfig,
    SemanticCodec,
    file_sha256,
    write_manifest,
)
from gsc_semantic.decoder import WEIGHTS_NAME, CheckpointError, DecoderConfig
from gsc_semantic.quantizer import LayeredQuantizer, LayerSpec, bsc_llr, flip_bits

__all__ = ["train_codec", "channel_augment", "sample_erasures", "sample_ber", "tiny_config",
           "LabelProbe", "label_loss", "warm_start", "train"]

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


class LabelProbe(nn.Module):
    """Training-only classifier head on the quantised ``z1`` values: ``Linear -> SiLU ->
    Linear`` to ``num_classes`` logits.

    Example::

        >>> LabelProbe(4, 10)(torch.zeros(2, 4)).shape
        torch.Size([2, 10])
    """

    def __init__(self, dims: int, num_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dims, hidden), nn.SiLU(),
                                 nn.Linear(hidden, num_classes))

    def forward(self, z1: torch.Tensor) -> torch.Tensor:
        return self.net(z1)


def label_loss(probe: LabelProbe, z1: torch.Tensor, spec: LayerSpec,
               labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``probe`` on the quantised ``z1`` values (straight-through
    estimator: the gradient reaches the encoder); labels ``< 0`` (unlabelled) are ignored.

    Example::

        >>> probe = LabelProbe(4, 3)
        >>> z = torch.zeros(2, 4, requires_grad=True)
        >>> loss = label_loss(probe, z, LayerSpec("z1", 4, 1), torch.tensor([0, -1]))
        >>> loss.backward(); z.grad.shape
        torch.Size([2, 4])
    """
    q = LayeredQuantizer.quantize_values(z1.detach(), spec.bits_per_dim)
    ste = z1 + (q - z1).detach()
    return nn.functional.cross_entropy(probe(ste), labels, ignore_index=-1)


def _cond_columns(cfg: CodecConfig) -> dict[tuple[str, int], int]:
    """Column of each conditioning value: ``(source, index within source) -> column``."""
    cols, seen, c = {}, {"semantic": 0, "perceptual": 0}, 0
    for s in cfg.layers:
        for _ in range(s.dims):
            cols[(s.source, seen[s.source])] = c
            seen[s.source] += 1
            c += 1
    return cols


@torch.no_grad()
def warm_start(codec: SemanticCodec, path: str) -> dict:
    """Initialise ``codec`` from the checkpoint at ``path`` where the layouts allow: every
    tensor of the same name and shape is copied; when the layer layout differs, the
    perceptual encoder's output rows and the decoder's conditioning columns of the
    perceptual values that both layouts have (in importance order) are copied too. The
    rest (e.g. a resized semantic projection, the erasure-flag columns) keeps its fresh
    initialisation.

    :return: a record for the training log: path, sha256 of the weights, command that
        trained them, and the names of tensors copied only in part or not at all.
    :raises CheckpointError: the checkpoint is missing, damaged or for another image shape.

    Example::

        >>> from gsc_semantic.codec import PRESETS                  # doctest: +SKIP
        >>> warm_start(SemanticCodec(PRESETS["fmnist"]()), "checkpoints/fmnist")["partial"]
        ['decoder.cond_mlp.0.weight', ...]
    """
    src = SemanticCodec.from_pretrained(path)
    if src.image_shape != codec.image_shape:
        raise CheckpointError(f"--warm-start {path} holds a codec for {src.image_shape} "
                              f"images, not {codec.image_shape}")
    old, new = src.state_dict(), codec.state_dict()
    oc, nc = _cond_columns(src.config), _cond_columns(codec.config)
    pairs = [(oc[k], nc[k]) for k in oc if k in nc and k[0] == "perceptual"]
    rows = len(pairs)
    partial, fresh = [], []
    for name, t in new.items():
        o = old.get(name)
        if o is not None and o.shape == t.shape:
            t.copy_(o)
        elif o is None:
            fresh.append(name)
        elif name.startswith("encoder.perceptual.fc.") and rows:
            t[:rows].copy_(o[:rows])
            partial.append(name)
        elif (name in ("decoder.cond_mlp.0.weight", "decoder.det_head.fc.weight")
              and pairs and o.shape[0] == t.shape[0]):
            for a, b in pairs:
                t[:, b].copy_(o[:, a])
            partial.append(name)
        else:
            fresh.append(name)
    return {"path": str(path), "sha256": file_sha256(os.path.join(path, WEIGHTS_NAME)),
            "steps_done": src.config.training.get("steps_done"),
            "command": src.config.training.get("command"),
            "bits_per_layer": src.bits_per_layer, "partial": partial, "fresh": fresh}


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

    @property
    def num_classes(self) -> int:
        """Classes of the dataset's labels (0: the dataset has none)."""
        return int(getattr(self.ds, "num_classes", 0) or 0)

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pos + self.batch > len(self.order):
            self.epoch += 1
            self._new_epoch()
        idx = self.order[self.pos:self.pos + self.batch]
        self.pos += self.batch
        items = [self.ds[int(i)] for i in idx]
        labels = torch.stack([torch.as_tensor(it["label"]) for it in items]) \
            if self.num_classes else None
        return torch.stack([it["image"] for it in items]), labels


def _val_images(name: str, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    from gsc_semantic.data import load_dataset

    ds = load_dataset(name, "val", seed=SPLIT_SEED)
    step = max(1, len(ds) // n)
    items = [ds[i] for i in range(0, step * n, step)][:n]
    labels = torch.stack([torch.as_tensor(it["label"]) for it in items]) \
        if getattr(ds, "num_classes", 0) else None
    return torch.stack([it["image"] for it in items]), labels


@torch.no_grad()
def _val_metrics(codec: SemanticCodec, images: torch.Tensor, labels: torch.Tensor | None,
                 probe: LabelProbe | None) -> dict[str, float]:
    """PSNR of the deterministic head on ``images`` with all layers and with z1 only, and
    (with a probe) the probe's accuracy from the quantised z1."""
    from gsc_semantic.metrics import psnr

    lb = codec.encode(images)
    out = {}
    for kept in (codec.num_layers, 1):
        mask = torch.arange(codec.num_layers).unsqueeze(0).expand(len(images), -1) >= kept
        rec = codec.decode(lb, mask.to(codec.device), sampler="mse").cpu()
        out[f"psnr_mse_head_{kept}L"] = round(float(psnr(images, rec).mean()), 3)
    if probe is not None and labels is not None:
        z1 = codec.dequantize(lb.layers[:1])[0][0]
        acc = (probe(z1).argmax(1).cpu() == labels).float().mean()
        out["z1_probe_acc"] = round(float(acc), 4)
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
                command: str | None = None, label_weight: float = 1.0,
                warm: str | None = None) -> SemanticCodec:
    """Train a codec for dataset ``data`` and (if ``out``) save it there periodically.

    :param data: ``"fmnist"`` or ``"photos"`` (selects the preset config too).
    :param config: override the preset (e.g. :func:`tiny_config`).
    :param max_minutes: stop (and anneal the learning rate) by wall time as well.
    :param threads: torch intra-op threads (0: leave torch's default).
    :param init: start from the weights of this checkpoint folder (fine-tuning; its config
        is used, so ``config`` must be None).
    :param warmup: fraction of the run spent ramping the learning rate up.
    :param label_weight: weight of the label loss on ``z1`` (see the module docstring);
        used only when the dataset has labels.
    :param warm: initialise from this checkpoint folder where the layouts allow
        (:func:`warm_start`); the config is the preset's (or ``config``).
    :return: the EMA codec (eval mode, on ``device``).

    Example::

        >>> codec = train_codec("fmnist", steps=2, batch=4, config=tiny_config("fmnist"),
        ...                     progress=False, eval_every=0)
        >>> codec.bits_per_layer
        [4, 4, 8, 10, 12, 28, 58, 128]
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
        if config is not None or warm is not None:
            raise ValueError("give either init or config/warm, not both")
        codec = SemanticCodec.from_pretrained(init).to(device)
        cfg = copy.deepcopy(codec.config)
        if cfg.name != data:
            raise click.BadParameter(f"--init {init} is a {cfg.name!r} codec, not {data!r}")
        init_info = {"path": str(init), "steps_done": cfg.training.get("steps_done"),
                     "command": cfg.training.get("command")}
    else:
        cfg = copy.deepcopy(config) if config is not None else PRESETS[data]()
        codec = SemanticCodec(cfg)
        if warm is not None:
            init_info = {"warm_start": True, **warm_start(codec, warm)}
        codec = codec.to(device)
    codec.train()
    ema = copy.deepcopy(codec).eval().requires_grad_(False)
    batches = _Batches(data, batch, gen)
    probe = None
    if label_weight > 0 and batches.num_classes:
        probe = LabelProbe(cfg.layers[0].dims, batches.num_classes).to(device)
    params = [p for p in codec.parameters() if p.requires_grad]
    opt_params = params + (list(probe.parameters()) if probe is not None else [])
    opt = torch.optim.AdamW(opt_params, lr=lr, weight_decay=1e-4)
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
            "label_weight": label_weight if probe is not None else 0.0,
            "wall_time_s": round(time.time() - t0, 1), "device": str(device),
            "threads": torch.get_num_threads(), "parameters": n_params,
            "torch": torch.__version__, "python": platform.python_version(),
            "finished": final, "history": history[-40:], "init": init_info,
        }
        ema.save_pretrained(out, half=True)
        root = checkpoints_root().resolve()
        if os.path.realpath(os.path.dirname(os.path.abspath(out))) == str(root):
            name = os.path.basename(os.path.normpath(out))
            write_manifest(root, {name: cfg_out.training["command"]}, only=[name])

    for step in bar:
        elapsed = time.time() - t0
        prog = step / steps
        if max_minutes:
            prog = max(prog, elapsed / (60.0 * max_minutes))
            if prog >= 1.0:
                break
        for g in opt.param_groups:
            g["lr"] = lr * _lr_factor(prog, warmup)
        images, labels = next(batches)
        images = images.to(device)
        n = images.shape[0]
        values = codec.encoder(images)
        erased = sample_erasures(n, codec.num_layers, gen)
        ber, soft = sample_ber(n, gen)
        noisy = channel_augment(values, cfg.layers, erased, ber, soft, gen)
        cond = codec.conditioning(noisy, erased.to(device))
        losses = codec.decoder.training_losses(images, cond, generator=gen)
        loss = losses["diffusion"] + det_weight * losses["det"]
        if probe is not None:
            losses["label"] = label_loss(probe, values[0], cfg.layers[0], labels.to(device))
            loss = loss + label_weight * losses["label"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(opt_params, 1.0)
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
                   **_val_metrics(ema, val[0].to(device), val[1], probe)}
            history.append(rec)
            tqdm.write(json.dumps(rec), file=sys.stderr)
        if save_every and done % save_every == 0 and not last:
            save(False)
    bar.close()
    if eval_every and done and (not history or history[-1]["step"] != done):
        history.append({"step": done, "wall_s": round(time.time() - t0, 1),
                        **{f"loss_{k}": round(v, 5) for k, v in run_avg.items()},
                        **_val_metrics(ema, val[0].to(device), val[1], probe)})
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
@click.option("--warm-start", "warm", type=click.Path(file_okay=False, exists=True),
              default=None, help="Initialise from this checkpoint folder where the layer "
                                 "layouts allow; the config is the preset's.")
@click.option("--label-weight", type=click.FloatRange(0.0), default=1.0, show_default=True,
              help="Weight of the z1 label loss (datasets with labels only, e.g. fmnist).")
@click.option("--tiny", is_flag=True, help="Tiny model (smoke test).")
def train(data: str, steps: int, batch: int, seed: int, out: str | None, device: str,
          lr: float, max_minutes: float | None, threads: int, save_every: int,
          eval_every: int, init: str | None, warm: str | None, label_weight: float,
          tiny: bool) -> None:
    """Train the semantic codec (encoder projection, perceptual encoder, diffusion decoder)
    with bit-error and layer-erasure augmentation; writes config.json + model.safetensors.

    Example: ``gsc train --data fmnist --steps 3000 --batch 32 --seed 0``
    """
    out = out or str(checkpoints_root() / data)
    cmd = (f"gsc train --data {data} --steps {steps} --batch {batch} --seed {seed} "
           f"--lr {lr}" + (f" --max-minutes {max_minutes}" if max_minutes else "")
           + (f" --threads {threads}" if threads else "")
           + f" --label-weight {label_weight}"
           + (f" --init {init}" if init else "") + (f" --warm-start {warm}" if warm else "")
           + (" --tiny" if tiny else "") + f" --out {out}")
    if tiny and init:
        raise click.BadParameter("--tiny and --init exclude each other")
    if init and warm:
        raise click.BadParameter("--init and --warm-start exclude each other")
    try:
        train_codec(data, steps=steps, batch=batch, seed=seed, out=out, device=device, lr=lr,
                    max_minutes=max_minutes, save_every=save_every, eval_every=eval_every,
                    threads=threads, config=tiny_config(data) if tiny else None, init=init,
                    command=cmd, label_weight=label_weight, warm=warm)
    except (CheckpointError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    train()
