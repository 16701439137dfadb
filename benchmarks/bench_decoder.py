"""Decoder speed: images/s of the shipped diffusion decoders at 4, 8 and 25 steps.

Anchor measured in the same run: the WebP decoder of the separation baseline on the same
images (what a classic receiver spends per image). Prints JSON.

    .venv/bin/python benchmarks/bench_decoder.py [--images 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gsc_phy.link import default_device
from gsc_phy.provenance import versions
from gsc_semantic import baselines
from gsc_semantic.codec import SemanticCodec
from gsc_semantic.evaluate import load_eval_images


def _rate(fn, n: int, repeat: int = 2) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def _bench_dataset(data: str, num_images: int, device: str) -> dict:
    images, _ = load_eval_images(data, num_images)
    codec = SemanticCodec.from_pretrained(data).to(device)
    bits = codec.encode(images.to(device))
    webp = [baselines.encode(img, "webp", 50) for img in images]
    shape = tuple(images.shape[1:])
    res = {"webp_decode_images_per_s": round(_rate(
        lambda: [baselines.decode(b, "webp", shape) for b in webp], len(webp)), 1)}
    for steps in (4, 8, 25):
        def run(steps=steps):
            codec.decode(bits, steps=steps, seed=0)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
        res[f"gsc_{steps}_steps_images_per_s"] = round(_rate(run, num_images), 1)
    res["gsc_8_steps_over_webp"] = round(
        res["gsc_8_steps_images_per_s"] / res["webp_decode_images_per_s"], 4)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    device = default_device(args.device)
    out = {"benchmark": "bench_decoder", "device": device, "threads": torch.get_num_threads(),
           "results": {}}
    for data in ("fmnist", "photos"):
        out["results"][data] = _bench_dataset(data, args.images, device)
    out["versions"] = versions()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
