"""Rebuild the meeting scenario's shipped checkpoints (landmark model, refinement U-Net,
keypoint basis).

``python -m gsc_semantic.scenarios.meeting_train [--only landmarks|refiner|keypoints]
[--out DIR]`` trains on one CPU thread (a few minutes each; the keypoint basis, a PCA, about
a minute), writes ``DIR/meeting_landmarks``, ``DIR/meeting_refiner`` and
``DIR/meeting_keypoint_basis`` (safetensors + config.json) and, when ``DIR`` is the shipped
checkpoint folder, refreshes their entries in ``MANIFEST.json``.

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

from bridge.common import checkpoints_root
from gsc_semantic.codec import write_manifest

__all__ = ["LANDMARKS_NAME", "REFINER_NAME", "KEYPOINTS_NAME", "REBUILD_COMMAND",
           "keypoint_displacements", "main"]

LANDMARKS_NAME = "meeting_landmarks"
REFINER_NAME = "meeting_refiner"
KEYPOINTS_NAME = "meeting_keypoint_basis"
#: Basis size stored (a codec sends the first ``components`` of them).
BASIS_SIZE = 10
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


def keypoint_displacements(clips_per_source: int = 30, frames: int = 32, seed: int = 2000,
                           refs_per_clip: int = 3) -> np.ndarray:
    """Training data of the keypoint basis: exact landmarks of synthetic clips (seeds
    ``seed..``, none of them a test clip's), displacement of every frame from
    ``refs_per_clip`` random reference frames of its clip, in inter-ocular units [N, 24]."""
    from gsc_semantic.scenarios.meeting_clips import SOURCES, synthetic_clip
    from gsc_semantic.scenarios.meeting_keypoints import inter_ocular

    rng = np.random.default_rng([seed, 77])
    out = []
    for src in SOURCES:
        for i in range(clips_per_source):
            lm = synthetic_clip(src, frames, 64, seed + i).landmarks.astype(float)
            for r in rng.integers(0, frames, refs_per_clip):
                out.append(((lm - lm[r]) / inter_ocular(lm[r])).reshape(frames, -1))
    return np.concatenate(out)


def _fit_keypoints(out: str, seed: int) -> None:
    from gsc_semantic.scenarios.meeting_keypoints import fit_basis

    t0 = time.time()
    d = keypoint_displacements(seed=2000 + seed)
    basis = fit_basis(d, BASIS_SIZE)
    total = float((d ** 2).sum())
    explained = np.cumsum(((d @ basis.vectors.T) ** 2).sum(0)) / total
    print("keypoint basis: explained variance", np.round(explained, 4).tolist())
    basis.save_pretrained(os.path.join(out, KEYPOINTS_NAME),
                          {"command": f"{REBUILD_COMMAND} --only keypoints", "seed": seed,
                           "samples": len(d), "seconds": round(time.time() - t0, 1),
                           "explained_variance": [round(float(v), 5) for v in explained]})


def main(argv: list[str] | None = None) -> None:
    """Command-line entry (see the module notes)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("landmarks", "refiner", "keypoints"))
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
        if args.only in (None, "keypoints"):
            _fit_keypoints(args.out, args.seed)
    if os.path.abspath(args.out) == os.path.abspath(str(checkpoints_root())):
        names = {LANDMARKS_NAME: "landmarks", REFINER_NAME: "refiner",
                 KEYPOINTS_NAME: "keypoints"}
        done = [n for n, o in names.items() if args.only in (None, o)]
        write_manifest(args.out, {n: f"{REBUILD_COMMAND} --only {o}" for n, o in names.items()},
                       only=done)


if __name__ == "__main__":
    main()
