"""``gsc eval``: gsc against separation baselines on the same channel-use budget.

For every bandwidth ratio ρ and SNR, each method sends the same held-out test images
through gsc_phy (same MCS choice, same frame arithmetic) and the receiver's images are
scored with honest metrics:

* ``psnr``, ``ms_ssim`` (as many scales as the size allows, see :func:`metrics.ms_ssim`);
* ``perceptual``: EfficientNet-Lite2 feature distance (LPIPS-style, *not* LPIPS; lower is
  better; a different network from the encoder's EfficientNet-Lite0 backbone);
* ``consistency``: top-1 class agreement of a task classifier between original and
  reconstruction (Fashion-MNIST: an in-project CNN; photos: ImageNet EfficientNet-Lite2);
* ``delivered``: fraction of images that arrived (baselines: every block of the file passed
  its CRC; gsc: at least layer z1 arrived).

A baseline image that is lost or does not fit shows the mean training image (the best
guess without data); gsc with no layer shows a sample of its learned prior.

Writes ``eval.json`` (``{"config", "snr_kind", "versions", "rows": [...]}``), one curve
figure per ratio and image grids (original, then each method) per ratio and SNR.
"""

from __future__ import annotations

import json
import math
import os
import time

import click
import numpy as np
import torch
from tqdm import tqdm

from gsc_phy.config import ConfigError, parse_rate, parse_snr_range
from gsc_phy.provenance import versions

__all__ = ["METHODS", "evaluate", "load_eval_images", "eval_command"]

METHODS = ("gsc", "jpeg", "webp", "avif", "capacity")
METRICS = ("psnr", "ms_ssim", "perceptual", "consistency", "delivered")


def load_eval_images(data: str, num_images: int, seed: int = 0) -> torch.Tensor:
    """The first ``num_images`` images of the held-out test split, [N, C, H, W]."""
    from .data import load_dataset

    try:
        ds = load_dataset(data, "test", seed=seed)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"--data {data}: {e}") from None
    if len(ds) == 0:
        raise ConfigError(f"--data {data}: the test split is empty")
    idx = np.random.default_rng(seed).permutation(len(ds))[:num_images]
    return torch.stack([ds[int(i)]["image"] for i in sorted(idx)])


def mean_image(data: str, num: int = 512, seed: int = 0) -> torch.Tensor:
    """Mean of ``num`` training images: what a baseline receiver shows for a lost image
    (the best guess without data, a stronger baseline than mid-gray)."""
    from .data import load_dataset

    ds = load_dataset(data, "train", seed=seed)
    idx = np.random.default_rng(seed + 1).permutation(len(ds))[:num]
    return torch.stack([ds[int(i)]["image"] for i in idx]).mean(0)


def _make_method(name: str, channel: str, rho: float, codec, steps: int, seed: int,
                 fill: torch.Tensor):
    from .baselines import CapacityBound, SeparationBaseline
    from .semantic_link import SemanticLink

    if name == "gsc":
        return SemanticLink(codec, channel, rho, steps=steps, seed=seed)
    if name == "capacity":
        return CapacityBound(channel=channel, rho=rho, fill=fill)
    return SeparationBaseline(name, channel, rho, seed=seed, fill=fill)


class _Scorer:
    def __init__(self, data: str) -> None:
        from .classifier import task_classifier
        from .metrics import ClassifierAgreement, EffNetPerceptualDistance

        self.perceptual = EffNetPerceptualDistance()
        self.agreement = ClassifierAgreement(task_classifier(data))

    @torch.no_grad()
    def __call__(self, original: torch.Tensor, recon: torch.Tensor) -> dict:
        from .metrics import ms_ssim, psnr

        return {
            "psnr": float(psnr(recon, original).clamp(max=100).mean()),
            "ms_ssim": float(ms_ssim(recon, original).mean()),
            "perceptual": float(self.perceptual(recon, original).mean()),
            "consistency": float(self.agreement(original, recon).mean()),
        }


def evaluate(data: str, channel: str, snrs: list[float], ratios: list[float],
             methods: list[str], num_images: int = 32, steps: int = 8, seed: int = 0,
             out_dir: str | None = None, progress: bool = True, grid_images: int = 8) -> dict:
    """Run every (ratio, SNR, method); returns the ``eval.json`` document."""
    from .codec import SemanticCodec

    images = load_eval_images(data, num_images, seed)
    codec = SemanticCodec.from_pretrained(data) if "gsc" in methods else None
    scorer = _Scorer(data)
    fill = mean_image(data, seed=seed)
    rows, grids = [], {}
    total = len(ratios) * len(snrs) * len(methods)
    with tqdm(total=total, desc=f"gsc eval {data}", disable=not progress) as bar:
        for rho in ratios:
            runners = {m: _make_method(m, channel, rho, codec, steps, seed, fill)
                       for m in methods}
            for snr in snrs:
                for m, run in runners.items():
                    t0 = time.perf_counter()
                    out = run(images, snr_db=float(snr))
                    row = {"method": m, "ratio": rho, "snr_db": float(snr)}
                    row.update(scorer(images, out.images))
                    row["delivered"] = float(out.delivered.float().mean())
                    row["mcs"] = out.records[0].mcs
                    row["mcs_meets_target"] = out.records[0].mcs_meets_target
                    row["budget_bits_per_image"] = out.budget.payload_bits
                    if m == "gsc":
                        row["layers_sent"] = out.records[0].layers_sent
                        row["layers_received_mean"] = float(np.mean(
                            [r.layers_received for r in out.records]))
                    row["seconds"] = round(time.perf_counter() - t0, 2)
                    rows.append(row)
                    grids[(rho, float(snr), m)] = out.images[:grid_images]
                    bar.update(1)
                    bar.set_postfix(rho=f"{rho:.4g}", snr=snr, method=m, refresh=False)
    doc = {
        "config": {"data": data, "channel": channel, "snr_db": snrs, "ratios": ratios,
                   "methods": methods, "num_images": int(images.shape[0]), "steps": steps,
                   "image_shape": list(images.shape[1:]),
                   "metrics": {"perceptual": "EfficientNet-Lite2 feature distance (lower is "
                                             "better; not LPIPS)",
                               "consistency": "top-1 agreement of "
                                              + ("an in-project Fashion-MNIST CNN"
                                                 if data == "fmnist" else
                                                 "ImageNet EfficientNet-Lite2")}},
        "snr_kind": "esno",
        "versions": versions(),
        "seed": seed,
        "rows": rows,
    }
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "eval.json"), "w") as fh:
            json.dump(doc, fh, indent=2)
        from .eval_plots import plot_curves, save_grids

        for rho in ratios:
            plot_curves(doc, rho, os.path.join(out_dir, f"curves_{_ratio_tag(rho)}.png"))
        save_grids(images[:grid_images], grids, methods, out_dir, _ratio_tag)
    return doc


def _ratio_tag(rho: float) -> str:
    inv = 1.0 / rho
    return f"1-{round(inv)}" if math.isclose(inv, round(inv)) else f"{rho:.4g}"


def _parse_ratios(text: str) -> list[float]:
    out = []
    for part in text.split(","):
        r = parse_rate(part.strip())
        if not 0 < r <= 4:
            raise ConfigError(f"--ratio values must be in (0, 4], got {part!r}")
        out.append(r)
    return out


@click.command("eval")
@click.option("--data", default="fmnist", show_default=True,
              help="fmnist or photos (the datasets with a shipped checkpoint)")
@click.option("--channel", default="awgn", show_default=True, help="awgn, rayleigh or tdl-a")
@click.option("--snr", default="-5:20:5", show_default=True, help="START:STOP:STEP dB or list")
@click.option("--ratio", "ratios", default="1/48,1/12", show_default=True,
              help="Bandwidth ratios rho (channel uses / C·H·W)")
@click.option("--methods", default="gsc,jpeg,webp,capacity", show_default=True)
@click.option("--images", "num_images", type=int, default=32, show_default=True)
@click.option("--steps", type=int, default=8, show_default=True, help="Diffusion steps")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default="runs/eval", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True)
def eval_command(data, channel, snr, ratios, methods, num_images, steps, seed, out_dir, quiet):
    """Compare gsc with JPEG/WebP + LDPC and the capacity bound; writes OUT/eval.json."""
    from gsc_phy.mcs import calibrated_profiles

    if data not in ("fmnist", "photos"):
        raise ConfigError(f"--data {data}: choose fmnist or photos (shipped checkpoints)")
    channels = {p.split("+")[0] for p in calibrated_profiles()}
    if channel not in channels:
        raise ConfigError(f"--channel {channel}: link adaptation is calibrated for "
                          f"{', '.join(sorted(channels))}")
    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in method_list if m not in METHODS]
    if unknown or not method_list:
        raise ConfigError(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    if not 1 <= num_images <= 10000 or not 1 <= steps <= 50:
        raise ConfigError("--images must be 1..10000 and --steps 1..50")
    doc = evaluate(data, channel, parse_snr_range(snr), _parse_ratios(ratios), method_list,
                   num_images, steps, seed, out_dir, progress=not quiet)
    for row in doc["rows"]:
        click.echo(f"{row['method']:>9} rho={row['ratio']:.4f} {row['snr_db']:6.1f} dB  "
                   f"PSNR {row['psnr']:6.2f}  MS-SSIM {row['ms_ssim']:.3f}  "
                   f"perc {row['perceptual']:.3f}  cons {row['consistency']:.2f}  "
                   f"delivered {row['delivered']:.2f}")
    click.echo(f"wrote {os.path.join(out_dir, 'eval.json')}")


def _run_eval_point(o: dict, seed: int) -> list[dict]:
    """One sweep point of ``gsc eval`` (its options, a seed) -> the eval rows."""
    methods = [m.strip() for m in o["methods"].split(",") if m.strip()]
    doc = evaluate(o["data"], o["channel"], parse_snr_range(o["snr"]),
                   _parse_ratios(o["ratios"]), methods, o["num_images"], o["steps"], seed,
                   out_dir=None, progress=False)
    return [r | {"snr_kind": doc["snr_kind"]} for r in doc["rows"]]


def sweep_runner():
    """``gsc eval`` as a ``gsc sweep`` runner (a point = one data/channel/ratio/SNR set)."""
    from gsc_phy.sweep.runners import ReportSpec, Runner

    return Runner.from_click(
        "eval", eval_command, _run_eval_point,
        report=ReportSpec(x="snr_db", y=("psnr", "ms_ssim", "perceptual", "consistency"),
                          x_label="{snr_kind} [dB]", x_param="snr"))
