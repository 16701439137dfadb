"""Rebuild the meeting scenario's shipped checkpoints (landmark model, refinement U-Net).

``python -m gsc_semantic.scenarios.meeting_train [--only landmarks|refiner] [--out DIR]``
trains on one CPU thread (a few minutes each), writes ``DIR/meeting_landmarks`` and
``DIR/meeting_refiner`` (safetensors + config.json) and, when ``DIR`` is the shipped
checkpoint folder, refreshes ``MANIFEST.json``.

Example::

    python -m gsc_semantic.scenarios.meeting_train --only landmarks --steps 100 --out /tmp/ck
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from gsc_semantic.codec import checkpoints_root, write_manifest

__all__ = ["LANDMARKS_NAME", "REFINER_NAME", "REBUILD_COMMAND", "main"]

LANDMARKS_NAME = "meeting_landmarks"
REFINER_NAME = "meeting_refiner"
REBUILD_COMMAND = "python -m gsc_semantic.scenarios.meeting_train"


def _train_landmarks(out: str, steps: int, seed: int) -> None:
    from gsc_semantic.scenarios.face_landmarks import nme, train_landmarks
    from gsc_semantic.scenarios.meeting_clips import SOURCES, synthetic_clip

    t0 = time.time()
    net = train_landmarks(steps=steps, seed=seed)
    held_out = {}
    for src in SOURCES:  # clips use seed 1000+: identities/motions not seen in training
        clip = synthetic_clip(src, frames=24, size=64, seed=1000)
        lm, conf = net.detect(clip.frames)
        held_out[src] = {"nme": float(nme(lm, clip.landmarks).mean()),
                         "detected": float((conf > 0.5).mean())}
    print("held-out clips:", held_out)
    net.save_pretrained(os.path.join(out, LANDMARKS_NAME),
                        {"command": f"{REBUILD_COMMAND} --only landmarks", "steps": steps,
                         "seed": seed, "seconds": round(time.time() - t0, 1),
                         "held_out": held_out})


def _train_refiner(out: str, steps: int, seed: int) -> None:
    from gsc_semantic.scenarios.meeting_decoder import train_refiner

    t0 = time.time()
    net, report = train_refiner(steps=steps, seed=seed)
    print("refiner:", report)
    net.save_pretrained(os.path.join(out, REFINER_NAME),
                        {"command": f"{REBUILD_COMMAND} --only refiner", "steps": steps,
                         "seed": seed, "seconds": round(time.time() - t0, 1)} | report)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry (see the module notes)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("landmarks", "refiner"))
    ap.add_argument("--out", default=str(checkpoints_root()))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    np.random.seed(args.seed)
    with threadpool_limits(1):  # one BLAS thread: the data generation is many tiny ops
        if args.only in (None, "landmarks"):
            _train_landmarks(args.out, args.steps or 1200, args.seed)
        if args.only in (None, "refiner"):
            _train_refiner(args.out, args.steps or 600, args.seed)
    if os.path.abspath(args.out) == os.path.abspath(str(checkpoints_root())):
        write_manifest(args.out, {LANDMARKS_NAME: f"{REBUILD_COMMAND} --only landmarks",
                                  REFINER_NAME: f"{REBUILD_COMMAND} --only refiner"})


if __name__ == "__main__":
    main()
