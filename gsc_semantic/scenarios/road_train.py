"""Training of the road-monitoring networks on procedural scenes (CPU, minutes).

:func:`train_segmenter` fits :class:`~.road_models.RoadSegmenter` to the exact class masks
of :class:`gsc_semantic.data.road.RoadScenes` (train split), with random blur
(down/up-sampling) so it also reads codec-degraded and regenerated images. Two are trained:
the **evaluation segmenter** (``road_segmenter/``, width 16, ``seed``: the task metric and
the transmitter's class map) and a **loss segmenter** (width
:data:`LOSS_SEGMENTER_WIDTH`, seed ``seed +`` :data:`LOSS_SEGMENTER_SEED_OFFSET`, not
shipped) that only the codec's training sees, so the codec is never fitted to the network
that scores it.

:func:`train_codec` fits :class:`~.road_models.RoadCodec` with the layers a receiver may
miss dropped at random (class map lost with probability 0.1, a random number of leading
latent layers kept) on

- L1 reconstruction,
- a feature term: L1 between the loss segmenter's encoder features of the regenerated and
  the original image (keeps the picture a picture at the level a segmenter looks at),
- a task term: the loss segmenter's class-weighted cross-entropy on the regenerated image
  against the **training ground-truth masks** (pixel-exact; counted only where the class map
  arrived).

Both write safetensors + ``config.json`` (no pickle) and are reproducible by seed.

Example::

    from gsc_semantic.scenarios.road_train import train_all
    train_all("checkpoints", seed=0)   # about 40 min on one CPU thread
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from gsc_semantic.data.road import RoadScenes

from .road_models import RoadCodec, RoadCodecConfig, RoadSegmenter, class_grid

__all__ = ["SEGMENTER_DIR", "CODEC_DIR", "LOSS_SEGMENTER_WIDTH", "LOSS_SEGMENTER_SEED_OFFSET",
           "render_scenes", "train_segmenter", "train_loss_segmenter", "train_codec",
           "train_all", "save_model", "load_segmenter", "load_codec"]

SEGMENTER_DIR = "road_segmenter"
CODEC_DIR = "road"
REBUILD = "gsc scenario road --train --checkpoints checkpoints --out runs/road"
#: width and seed offset of the training-only loss segmenter (the evaluation one: 16, +0)
LOSS_SEGMENTER_WIDTH = 24
LOSS_SEGMENTER_SEED_OFFSET = 7919


def render_scenes(num: int, size: int = 64, seed: int = 0, split: str = "train"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``num`` procedural scenes: images float [N, 3, s, s] and masks int64 [N, s, s]."""
    ds = RoadScenes(split, size=size, seed=seed, length=num)
    items = [ds[i] for i in range(num)]
    return (torch.stack([d["image"] for d in items]),
            torch.stack([d["mask"] for d in items]))


def _blur(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    f = int(torch.randint(0, 3, (1,), generator=g))
    if f == 0:
        return x
    s = x.shape[-1]
    small = F.interpolate(x, scale_factor=1 / 2 ** f, mode="area")
    return F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False)


def save_model(model: torch.nn.Module, config: dict, directory: str) -> None:
    """``directory/model.safetensors`` + ``directory/config.json``."""
    os.makedirs(directory, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
        fh.write("\n")


def _load(directory: str) -> tuple[dict, dict]:
    with open(os.path.join(directory, "config.json")) as fh:
        config = json.load(fh)
    return config, load_file(os.path.join(directory, "model.safetensors"))


def load_segmenter(directory: str) -> RoadSegmenter:
    """The segmenter saved by :func:`train_segmenter` (eval mode)."""
    config, state = _load(directory)
    net = RoadSegmenter(config["width"])
    net.load_state_dict(state)
    return net.eval()


def load_codec(directory: str) -> RoadCodec:
    """The codec saved by :func:`train_codec` (eval mode)."""
    config, state = _load(directory)
    net = RoadCodec(RoadCodecConfig(**config["codec"]))
    net.load_state_dict(state)
    return net.eval()


def _class_weights(masks: torch.Tensor) -> torch.Tensor:
    """Rare classes weigh more (lane, vehicle, pedestrian cover few pixels)."""
    freq = torch.bincount(masks.reshape(-1), minlength=5).float() / masks.numel()
    weight = (1 / (freq + 0.01)) ** 0.5
    return weight / weight.mean()


def train_segmenter(images: torch.Tensor, masks: torch.Tensor, steps: int, seed: int = 0,
                    batch: int = 16, lr: float = 3e-3, width: int = 16,
                    log: Callable[[str], None] | None = None) -> tuple[RoadSegmenter, dict]:
    """Cross-entropy training on (images, masks); returns the net and its config."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = RoadSegmenter(width)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(steps, 1))
    weight = _class_weights(masks)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, images.shape[0], (batch,), generator=g)
        x, y = _blur(images[idx], g), masks[idx]
        if torch.rand(1, generator=g) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        loss = F.cross_entropy(net(x), y, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step % 100 == 0 or step == steps - 1):
            log(f"[segmenter w{width}] step {step + 1}/{steps} loss {loss.item():.3f} "
                f"({time.perf_counter() - t0:.0f} s)")
    config = {"format": "gsc-road-segmenter", "width": net.width, "classes": 5,
              "training": {"steps": steps, "batch": batch, "lr": lr, "seed": seed,
                           "scenes": int(images.shape[0]), "command": REBUILD}}
    return net.eval(), config


def train_loss_segmenter(images: torch.Tensor, masks: torch.Tensor, steps: int,
                         seed: int = 0, batch: int = 16,
                         log: Callable[[str], None] | None = None
                         ) -> tuple[RoadSegmenter, dict]:
    """The codec's training-only segmenter: :func:`train_segmenter` at width
    :data:`LOSS_SEGMENTER_WIDTH` and seed ``seed + LOSS_SEGMENTER_SEED_OFFSET`` (an
    independent network from the evaluation segmenter trained with ``seed``)."""
    return train_segmenter(images, masks, steps, seed + LOSS_SEGMENTER_SEED_OFFSET, batch,
                           width=LOSS_SEGMENTER_WIDTH, log=log)


def _codec_losses(net: RoadCodec, loss_seg: RoadSegmenter, x: torch.Tensor,
                  y: torch.Tensor, cells: torch.Tensor, cells_ok: torch.Tensor,
                  layer_ok: torch.Tensor, weight: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L1, feature, task) losses of one batch (see the module notes)."""
    y_lat = net.latent(x)
    q = net.dequantize(net.quantize(y_lat))
    lat = y_lat + (q - y_lat).detach()  # straight-through quantiser
    out = net.regenerate(cells * cells_ok.long().view(-1, 1, 1), cells_ok, lat, layer_ok)
    rec = (out - x).abs().mean()
    feats, logits = loss_seg.features_and_logits(out)
    with torch.no_grad():
        ref_feats = loss_seg.features_and_logits(x)[0]
    feat = sum((a - b).abs().mean() for a, b in zip(feats, ref_feats, strict=True))
    task = F.cross_entropy(logits, y, weight=weight, reduction="none").mean((1, 2))
    task = (task * cells_ok).sum() / cells_ok.sum().clamp(min=1)
    return rec, feat / len(feats), task


def train_codec(images: torch.Tensor, masks: torch.Tensor, loss_segmenter: RoadSegmenter,
                steps: int, seed: int = 0, batch: int = 16, lr: float = 2e-3,
                task_weight: float = 0.5, feature_weight: float = 0.1,
                config: RoadCodecConfig | None = None,
                log: Callable[[str], None] | None = None) -> tuple[RoadCodec, dict]:
    """Train the layered codec (see the module notes) against ``loss_segmenter`` (frozen;
    pass the one of :func:`train_loss_segmenter`, never the evaluation segmenter); returns
    the net and its config."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    cfg = config or RoadCodecConfig(size=images.shape[-1])
    net = RoadCodec(cfg)
    loss_segmenter.eval()
    for p in loss_segmenter.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(steps, 1))
    cells_all = class_grid(masks, cfg.grid)
    weight = _class_weights(masks)
    num_layers = len(cfg.layer_channels)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, images.shape[0], (batch,), generator=g)
        cells_ok = (torch.rand(batch, generator=g) > 0.1).float()
        kept = torch.randint(0, num_layers + 1, (batch, 1), generator=g)
        layer_ok = (torch.arange(num_layers)[None] < kept).float()
        rec, feat, task = _codec_losses(net, loss_segmenter, images[idx], masks[idx],
                                        cells_all[idx], cells_ok, layer_ok, weight)
        loss = rec + feature_weight * feat + task_weight * task
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and (step % 100 == 0 or step == steps - 1):
            log(f"[codec] step {step + 1}/{steps} L1 {rec.item():.3f} feature "
                f"{feat.item():.3f} task {task.item():.3f} ({time.perf_counter() - t0:.0f} s)")
    doc = {"format": "gsc-road-codec", "codec": cfg.to_dict(), "layer_bits": net.layer_bits,
           "training": {"steps": steps, "batch": batch, "lr": lr, "seed": seed,
                        "task_weight": task_weight, "feature_weight": feature_weight,
                        "task_target": "training ground-truth masks",
                        "loss_segmenter": {"width": loss_segmenter.width},
                        "scenes": int(images.shape[0]), "command": REBUILD}}
    return net.eval(), doc


def train_all(root: str, seg_steps: int = 1500, loss_seg_steps: int | None = None,
              codec_steps: int = 3000, seed: int = 0, scenes: int = 3000, size: int = 64,
              batch: int = 16, log: Callable[[str], None] | None = None) -> tuple[str, str]:
    """Render ``scenes`` training scenes, train the evaluation segmenter, the loss
    segmenter (not saved; ``loss_seg_steps`` default: ``seg_steps``) and the codec, save the
    two shipped nets under ``root`` (``road_segmenter/`` and ``road/``); returns the two
    folders."""
    torch.set_num_threads(1)
    images, masks = render_scenes(scenes, size, seed)
    np.random.seed(seed)
    seg, seg_cfg = train_segmenter(images, masks, seg_steps, seed, batch, log=log)
    seg_dir = os.path.join(root, SEGMENTER_DIR)
    save_model(seg, seg_cfg, seg_dir)
    loss_seg, loss_cfg = train_loss_segmenter(
        images, masks, seg_steps if loss_seg_steps is None else loss_seg_steps, seed, batch,
        log=log)
    codec, codec_cfg = train_codec(images, masks, loss_seg, codec_steps, seed, batch, log=log)
    codec_cfg["training"]["loss_segmenter"] = loss_cfg["training"] | {"width": loss_seg.width}
    codec_dir = os.path.join(root, CODEC_DIR)
    save_model(codec, codec_cfg, codec_dir)
    return seg_dir, codec_dir
