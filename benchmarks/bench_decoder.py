"""Receiver speed: images/s of gsc's decoders next to a WebP decoder on the same images.

* Fashion-MNIST (28x28): the shipped diffusion decoder at 4, 8 and 25 steps.
* Photos (256x256 test crops): the photo receiver (layer decoding + prior) with each prior
  (compact = realesr-animevideov3-x4, the default; teacher = Real-ESRGAN x4plus; the distilled
  student; bicubic), for the layers of the AWGN rho = 1/48 budgets at 0 and 10 dB (1,642 and
  7,775 bits: 32-64 px and 64-128 px reconstructions).

Anchor measured in the same run: the WebP decoder of the separation baseline on the same
images (what a classic receiver spends per image); ratios are what to compare across
machines. Prints JSON.

    .venv/bin/python benchmarks/bench_decoder.py [--images 64] [--photo-images 8] [--device cpu]
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
from gsc_semantic.photo_layers import decode_layers, encode_layers
from gsc_semantic.photo_receiver import PRIORS, PhotoPrior


def _rate(fn, n: int, repeat: int = 2) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def _webp_rate(images: torch.Tensor) -> float:
    webp = [baselines.encode(img, "webp", 50) for img in images]
    shape = tuple(images.shape[1:])
    return round(_rate(lambda: [baselines.decode(b, "webp", shape) for b in webp],
                       len(webp)), 1)


def _bench_photos(num_images: int, device: str) -> dict:
    images, _ = load_eval_images("photos", num_images)
    hw = tuple(images.shape[-2:])
    res = {"image_size": list(hw), "webp_decode_images_per_s": _webp_rate(images)}
    for budget in (1642, 7775):
        layers = [encode_layers(img, budget) for img in images]
        sizes = sorted({tuple(decode_layers(lay, hw).shape[-2:]) for lay in layers})
        point = {"reconstruction_sizes": [list(s) for s in sizes]}
        for name in PRIORS:
            prior = PhotoPrior.load(name, device=device)

            def run(prior=prior, layers=layers):
                for lay in layers:
                    prior(decode_layers(lay, hw), hw)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
            rate = _rate(run, len(layers), repeat=1 if name == "teacher" else 2)
            point[f"{name}_images_per_s"] = round(rate, 2)
            point[f"{name}_over_webp"] = round(rate / res["webp_decode_images_per_s"], 5)
        res[f"budget_{budget}_bits"] = point
    return res


def _bench_fmnist(num_images: int, device: str) -> dict:
    data = "fmnist"
    images, _ = load_eval_images(data, num_images)
    codec = SemanticCodec.from_pretrained(data).to(device)
    bits = codec.encode(images.to(device))
    res = {"webp_decode_images_per_s": _webp_rate(images)}
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
    ap.add_argument("--images", type=int, default=64, help="Fashion-MNIST images")
    ap.add_argument("--photo-images", type=int, default=8, help="256x256 photo crops")
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    device = default_device(args.device)
    out = {"benchmark": "bench_decoder", "device": device, "threads": torch.get_num_threads(),
           "results": {}}
    out["results"]["fmnist"] = _bench_fmnist(args.images, device)
    out["results"]["photos"] = _bench_photos(args.photo_images, device)
    out["versions"] = versions()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
