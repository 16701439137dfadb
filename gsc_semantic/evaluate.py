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

Every (ratio, SNR, method) point is run ``--trials`` times with independent channel, noise
and diffusion draws (:func:`trial_seed`, shared by all methods of a point; the same images
each time). Per trial every image is sent back to back in one bit stream of transport
blocks, the same packing for gsc and the baselines (small images share a block), so a
trial is one draw of the block-error pattern. Row metrics are means over trials and images,
with ``<metric>_ci95``: the 95 % Student-t half-width over the trial means.

Writes ``eval.json`` (``{"config", "snr_kind", "versions", "seed", "rows": [...],
"summary": {ratio: {"cliff", "targets"}}}``, see :mod:`gsc_semantic.eval_targets`),
``eval.md`` (tables with mean ± CI and the target verdicts), one curve figure per ratio
and image grids (original, then each method) per ratio and SNR.

Example::

    gsc eval --data fmnist --channel awgn --snr=-5:20:1 --ratio 1/12 --trials 4
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time

import click
import numpy as np
import torch
from tqdm import tqdm

from bridge.common import ConfigError
from gsc_phy.config import parse_rate, parse_snr_range
from gsc_phy.provenance import versions

__all__ = ["METHODS", "evaluate", "load_eval_images", "eval_command"]

METHODS = ("gsc", "gsc-mse", "gsc-teacher", "gsc-student", "gsc-bicubic", "jpeg", "webp",
           "avif", "jpeg-ra", "webp-ra", "avif-ra", "capacity", "deepjscc", "deepjscc-q")
#: gsc's receiver outputs. Fashion-MNIST: the diffusion sample and the deterministic (MSE)
#: head's estimate. Photos: the layers through Real-ESRGAN's compact pretrained prior,
#: through the Real-ESRGAN x4plus teacher, through the distilled student, and bicubically
#: upsampled (the ablation without a prior).
GSC_METHODS = ("gsc", "gsc-mse", "gsc-teacher", "gsc-student", "gsc-bicubic")
PHOTO_ONLY = ("gsc-teacher", "gsc-student", "gsc-bicubic")
DEFAULT_METHODS = "gsc,gsc-mse,jpeg,webp,capacity"
DEFAULT_PHOTO_METHODS = "gsc,gsc-bicubic,jpeg,webp,avif,jpeg-ra,webp-ra,avif-ra,capacity"
#: photo-codec methods -> the prior of :class:`gsc_semantic.photo_receiver.PhotoPrior`
PHOTO_PRIORS = {"gsc": "compact", "gsc-teacher": "teacher", "gsc-student": "student",
                "gsc-bicubic": "bicubic"}
METRICS = ("psnr", "ms_ssim", "perceptual", "consistency", "delivered")
#: photos are compared at this square size (user folders: centre crop + resize)
PHOTO_SIZE = 256
#: the Fréchet distance is reported only over at least this many images
FRECHET_MIN_IMAGES = 200


def is_photo_data(data: str | list[str]) -> bool:
    """Photos (the shipped collection or a user's files/folders) rather than Fashion-MNIST."""
    return not (isinstance(data, str) and data == "fmnist")


def load_eval_images(data: str | list[str], num_images: int, seed: int = 0
                     ) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    """``num_images`` held-out test images [N, C, H, W] and the skipped user files.

    ``fmnist`` and ``photos`` (256x256 crops of the test sources) draw a seeded subset of
    their test split; files and folders are the user's images, centre-cropped and resized
    to :data:`PHOTO_SIZE` (the first ``num_images`` in path order)."""
    from .data import load_dataset
    from .data.user_images import load_user_images

    if isinstance(data, str) and data in ("fmnist", "photos"):
        try:
            ds = load_dataset(data, "test", seed=seed,
                              **({"size": PHOTO_SIZE} if data == "photos" else {}))
        except (FileNotFoundError, ValueError) as e:
            raise ConfigError(f"--data {data}: {e}") from None
        if len(ds) == 0:
            raise ConfigError(f"--data {data}: the test split is empty")
        idx = np.random.default_rng(seed).permutation(len(ds))[:num_images]
        return torch.stack([ds[int(i)]["image"] for i in sorted(idx)]), []
    got = load_user_images([data] if isinstance(data, str) else data, size=PHOTO_SIZE,
                           max_images=num_images)
    return got.batch(), got.skipped


def mean_image(data: str | list[str], num: int = 512, seed: int = 0) -> torch.Tensor:
    """Mean of ``num`` training images: what a baseline receiver shows for a lost image
    (the best guess without data, a stronger baseline than mid-gray). A user's photos get
    the mean of the shipped photo collection's training crops."""
    from .data import load_dataset

    if is_photo_data(data):
        ds = load_dataset("photos", "train", size=PHOTO_SIZE, seed=seed)
    else:
        ds = load_dataset(data, "train", seed=seed)
    idx = np.random.default_rng(seed + 1).permutation(len(ds))[:num]
    return torch.stack([ds[int(i)]["image"] for i in idx]).mean(0)


def _make_method(name: str, channel: str, rho: float, codec, steps: int, seed: int,
                 fill: torch.Tensor, photo: bool = False, layer_cache: dict | None = None):
    from .baselines import CapacityBound
    from .resolution_adaptive import codec_baseline
    from .semantic_link import SemanticLink

    if photo and name in PHOTO_PRIORS:
        from .photo_link import PhotoLink
        from .photo_receiver import PhotoPrior

        return PhotoLink(PhotoPrior.load(PHOTO_PRIORS[name]), channel, rho, fill=fill,
                         method=name, seed=seed, encode_cache=layer_cache)
    if name in GSC_METHODS:
        return SemanticLink(codec, channel, rho, steps=steps, seed=seed,
                            sampler="mse" if name == "gsc-mse" else None)
    if name == "capacity":
        return CapacityBound(channel=channel, rho=rho, fill=fill)
    if name in ("deepjscc", "deepjscc-q"):  # learned JSCC, shipped checkpoint per data and rho
        from .deepjscc_link import make_deepjscc_method

        return make_deepjscc_method(name, "photos" if photo else "fmnist", channel, rho,
                                    seed=seed)
    return codec_baseline(name, channel, rho, seed=seed, fill=fill)


def resolution_summary(records) -> dict | None:
    """The coded resolutions of a baseline's images: ``{"median_side", "sizes": {"HxW":
    count}, "not_sent"}`` (median of the shorter side over the images that fitted), or
    ``None`` for outputs without a coded resolution (gsc)."""
    sizes = [getattr(r, "resolution", None) for r in records]
    if not any(hasattr(r, "resolution") for r in records):
        return None
    sent = [s for s in sizes if s is not None]
    counts: dict[str, int] = {}
    for h, w in sent:
        counts[f"{h}x{w}"] = counts.get(f"{h}x{w}", 0) + 1
    return {"median_side": float(np.median([min(s) for s in sent])) if sent else None,
            "sizes": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "not_sent": len(sizes) - len(sent)}


class Scorer:
    """PSNR, MS-SSIM, EfficientNet-Lite2 feature distance and top-1 consistency of
    reconstructions against their originals, averaged over the images.

    Per-image results are memoised by the (original, reconstruction) pixels, so an output
    that repeats (a deterministic bound over trials, the mean image every lost image shows,
    a layer prefix that arrived in every trial) is scored once.

    :input original, recon: [N, C, H, W] in [0, 1].
    :output: ``{"psnr", "ms_ssim", "perceptual", "consistency"}`` means over the N images.
    """

    def __init__(self, data: str | list[str]) -> None:
        from .classifier import task_classifier
        from .metrics import ClassifierAgreement, EffNetPerceptualDistance

        self.perceptual = EffNetPerceptualDistance()
        self.agreement = ClassifierAgreement(
            task_classifier("photos" if is_photo_data(data) else data))
        self.frechet = None
        self._memo: dict[bytes, tuple[float, float, float, float]] = {}

    def frechet_distance(self, original: torch.Tensor, recon: torch.Tensor) -> float | None:
        """Fréchet distance on EfficientNet-Lite2 pooled features, over at least
        :data:`FRECHET_MIN_IMAGES` images (else ``None``: too few for a covariance)."""
        if original.shape[0] < FRECHET_MIN_IMAGES:
            return None
        if self.frechet is None:
            from .metrics import FrechetEffNetDistance

            self.frechet = FrechetEffNetDistance("lite2", input_size=PHOTO_SIZE,
                                                 net=self.perceptual.net)
        return float(self.frechet(original, recon))

    @torch.no_grad()
    def __call__(self, original: torch.Tensor, recon: torch.Tensor) -> dict:
        from .metrics import ms_ssim, psnr

        original, recon = original.float().cpu(), recon.float().cpu()
        keys = [hashlib.sha1(o.numpy().tobytes() + r.numpy().tobytes()
                             + str(tuple(o.shape)).encode()).digest()
                for o, r in zip(original, recon, strict=True)]
        todo = [i for i, k in enumerate(keys) if k not in self._memo]
        if todo:
            o, r = original[todo], recon[todo]
            values = zip(psnr(r, o).clamp(max=100).tolist(), ms_ssim(r, o).tolist(),
                         self.perceptual(r, o).flatten().tolist(),
                         self.agreement(o, r).float().flatten().tolist(), strict=True)
            for i, v in zip(todo, values, strict=True):
                self._memo[keys[i]] = v
        per_image = np.array([self._memo[k] for k in keys], dtype=np.float64)
        means = per_image.mean(axis=0)
        return dict(zip(("psnr", "ms_ssim", "perceptual", "consistency"),
                        (float(v) for v in means), strict=True))


def trial_seed(seed: int, trial: int, ratio_index: int, snr_index: int) -> int:
    """Seed of one channel trial (channel, noise and diffusion draws): distinct for every
    trial, ratio and SNR, reproducible from ``--seed``, shared by all methods of a point.

    >>> trial_seed(0, 0, 0, 0) != trial_seed(0, 1, 0, 0)
    True
    """
    state = np.random.SeedSequence([seed, trial, ratio_index, snr_index]).generate_state(1)
    return int(state[0])


def _run_trial(m: str, run, images: torch.Tensor, snr: float, s: int):
    if m in GSC_METHODS:
        return run(images, snr_db=snr, seed=s, channel_seed=s)
    if m == "capacity":  # error-free by definition: no random draw
        return run(images, snr_db=snr)
    return run(images, snr_db=snr, channel_seed=s)


def _aggregate(trials: list[dict]) -> dict:
    """Per metric: the mean over trials, its 95 % CI half-width and the per-trial values."""
    from .eval_targets import mean_ci95

    row: dict = {"trials": len(trials)}
    extra = ("frechet",) if trials and trials[0].get("frechet") is not None else ()
    for k in METRICS + extra:
        vals = [t[k] for t in trials]
        row[k], ci = mean_ci95(vals)
        row[f"{k}_ci95"] = ci
    row["per_trial"] = {k: [round(t[k], 5) for t in trials] for k in ("perceptual",
                                                                      "delivered")}
    return row


def check_methods(data: str | list[str], methods: list[str]) -> None:
    """One line for methods that do not apply to ``data``."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    if is_photo_data(data) and "gsc-mse" in methods:
        raise ConfigError("--methods gsc-mse is the Fashion-MNIST codec's MSE head; for "
                          "photos the ablation without a prior is gsc-bicubic")
    if not is_photo_data(data) and set(PHOTO_ONLY) & set(methods):
        raise ConfigError(f"--methods {', '.join(PHOTO_ONLY)} are photo-codec outputs")


def evaluate(data: str | list[str], channel: str, snrs: list[float], ratios: list[float],
             methods: list[str], num_images: int = 32, steps: int = 8, seed: int = 0,
             out_dir: str | None = None, progress: bool = True, grid_images: int = 8, *,
             trials: int = 1) -> dict:
    """Run every (ratio, SNR, method) ``trials`` times with independent channel and noise
    draws (:func:`trial_seed`; the same images each time); returns the ``eval.json``
    document. Row metrics are means over trials and images, ``<metric>_ci95`` the 95 %
    half-width over trials (``None`` for one trial); ``summary`` holds the cliff table and
    the target checks (:func:`gsc_semantic.eval_targets.summarize`)."""
    from .codec import SemanticCodec
    from .eval_targets import summarize

    if trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {trials}")
    check_methods(data, methods)
    photo = is_photo_data(data)
    images, skipped = load_eval_images(data, num_images, seed)
    codec = (SemanticCodec.from_pretrained(data) if not photo
             and set(GSC_METHODS) & set(methods) else None)
    scorer = Scorer(data)
    fill = mean_image(data, seed=seed)
    rows, grids, layer_cache = [], {}, {}  # gsc's outputs share the transmitter's layers
    total = len(ratios) * len(snrs) * len(methods) * trials
    with tqdm(total=total, desc=f"gsc eval {data}", disable=not progress) as bar:
        for ri, rho in enumerate(ratios):
            runners = {m: _make_method(m, channel, rho, codec, steps, seed, fill, photo,
                                       layer_cache) for m in methods}
            for si, snr in enumerate(snrs):
                for m, run in runners.items():
                    t0 = time.perf_counter()
                    per_trial, layers = [], []
                    for t in range(trials):
                        if m == "capacity" and t:  # no random draw: every trial is the same
                            per_trial.append(dict(per_trial[0]))
                            bar.update(1)
                            continue
                        out = _run_trial(m, run, images, float(snr),
                                         trial_seed(seed, t, ri, si))
                        scores = scorer(images, out.images)
                        scores["frechet"] = scorer.frechet_distance(images, out.images)
                        scores["delivered"] = float(out.delivered.float().mean())
                        per_trial.append(scores)
                        if m in GSC_METHODS:
                            layers += [r.layers_received for r in out.records]
                        if t == 0:
                            grids[(rho, float(snr), m)] = out.images[:grid_images]
                        bar.update(1)
                        bar.set_postfix(rho=f"{rho:.4g}", snr=snr, method=m, refresh=False)
                    row = {"method": m, "ratio": rho, "snr_db": float(snr)}
                    row.update(_aggregate(per_trial))
                    row["mcs"] = out.records[0].mcs
                    row["mcs_meets_target"] = out.records[0].mcs_meets_target
                    row["budget_bits_per_image"] = out.budget.payload_bits
                    if m in GSC_METHODS:
                        row["layers_sent"] = out.records[0].layers_sent
                        row["layers_received_mean"] = float(np.mean(layers))
                    else:
                        row["resolution"] = resolution_summary(out.records)
                    row["seconds"] = round(time.perf_counter() - t0, 2)
                    rows.append(row)
    doc = {
        "config": {"data": data, "channel": channel, "snr_db": snrs, "ratios": ratios,
                   "skipped": [list(k) for k in skipped],
                   "methods": methods, "num_images": int(images.shape[0]), "steps": steps,
                   "trials": trials, "image_shape": list(images.shape[1:]),
                   "packing": "per ratio and SNR, each method sends the images back to back "
                              "in one bit stream of transport blocks (image i owns bits "
                              "[i*B, (i+1)*B)); images smaller than a block share it, for "
                              "gsc and the baselines alike; every trial redraws channel and "
                              "noise",
                   "ci": "95 % Student-t half-width over trials (trial = mean over images)",
                   "photo_preprocessing": (f"centre crop + resize to {PHOTO_SIZE}x"
                                           f"{PHOTO_SIZE}" if photo and data != "photos"
                                           else None),
                   "metrics": {"perceptual": "EfficientNet-Lite2 feature distance (lower is "
                                             "better; not LPIPS)",
                               "frechet": "Fréchet distance on EfficientNet-Lite2 pooled "
                                          f"features at {PHOTO_SIZE} px (not FID), only "
                                          f"with >= {FRECHET_MIN_IMAGES} images",
                               "consistency": "top-1 agreement of "
                                              + ("an in-project Fashion-MNIST CNN"
                                                 if data == "fmnist" else
                                                 "ImageNet EfficientNet-Lite2")}},
        "snr_kind": "esno",
        "versions": versions(),
        "seed": seed,
        "rows": rows,
        "summary": summarize(rows),
    }
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "eval.json"), "w") as fh:
            json.dump(doc, fh, indent=2)
        from .eval_plots import markdown_tables, plot_curves, save_grids

        with open(os.path.join(out_dir, "eval.md"), "w") as fh:
            fh.write(markdown_tables(doc))
        for rho in ratios:
            plot_curves(doc, rho, os.path.join(out_dir, f"curves_{ratio_tag(rho)}.png"))
        save_grids(images[:grid_images], grids, methods, out_dir, ratio_tag)
    return doc


def ratio_tag(rho: float) -> str:
    """File-name tag of a bandwidth ratio: ``1-48`` for 1/48, else the ratio itself."""
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
@click.option("--data", "data", multiple=True, default=("fmnist",), show_default=True,
              help="fmnist, photos (256x256 crops of held-out photographs), or image files "
                   "/ folders (centre crop + resize to 256x256); repeat for several")
@click.option("--channel", default="awgn", show_default=True, help="awgn, rayleigh or tdl-a")
@click.option("--snr", default="-5:20:5", show_default=True, help="START:STOP:STEP dB or list")
@click.option("--ratio", "ratios", default="1/48,1/12", show_default=True,
              help="Bandwidth ratios rho (channel uses / C·H·W)")
@click.option("--methods", default=None,
              help="Default: gsc,gsc-mse,jpeg,webp,capacity (fmnist); "
                   "gsc,gsc-bicubic,jpeg,webp,avif,jpeg-ra,webp-ra,avif-ra,capacity (photos; "
                   "-ra: resolution-adaptive codecs; add gsc-student for the distilled "
                   "prior, gsc-teacher for Real-ESRGAN x4plus, 1-9 s an image on 2 cores; "
                   "deepjscc / deepjscc-q: the learned JSCC baselines, analog and 5G-QAM, "
                   "from checkpoints/deepjscc_<data>_<rho>)")
@click.option("--images", "num_images", type=int, default=32, show_default=True)
@click.option("--trials", type=int, default=4, show_default=True,
              help="Independent channel/noise realisations per point (CI over trials)")
@click.option("--steps", type=int, default=8, show_default=True, help="Diffusion steps")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default="runs/eval", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True)
def eval_command(data, channel, snr, ratios, methods, num_images, trials, steps, seed, out_dir,
                 quiet):
    """Compare gsc with JPEG/WebP + LDPC and the capacity bound; writes OUT/eval.json."""
    from gsc_phy.mcs import calibrated_profiles

    data = _normalise_data(data)
    methods = methods or (DEFAULT_PHOTO_METHODS if is_photo_data(data) else DEFAULT_METHODS)
    channels = {p.split("+")[0] for p in calibrated_profiles()}
    if channel not in channels:
        raise ConfigError(f"--channel {channel}: link adaptation is calibrated for "
                          f"{', '.join(sorted(channels))}")
    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    check_methods(data, method_list)
    if not 1 <= num_images <= 10000 or not 1 <= steps <= 50 or not 1 <= trials <= 1000:
        raise ConfigError("--images must be 1..10000, --steps 1..50 and --trials 1..1000")
    doc = evaluate(data, channel, parse_snr_range(snr), _parse_ratios(ratios), method_list,
                   num_images, steps, seed, out_dir, progress=not quiet, trials=trials)
    for row in doc["rows"]:
        ci = row["perceptual_ci95"]
        click.echo(f"{row['method']:>9} rho={row['ratio']:.4f} {row['snr_db']:6.1f} dB  "
                   f"PSNR {row['psnr']:6.2f}  MS-SSIM {row['ms_ssim']:.3f}  "
                   f"perc {row['perceptual']:.3f}" + (f"±{ci:.3f}" if ci is not None else "")
                   + f"  cons {row['consistency']:.2f}  delivered {row['delivered']:.2f}")
    for path, why in doc["config"]["skipped"]:
        click.echo(f"skipped {path}: {why}")
    for label, entry in doc["summary"].items():
        for name in GSC_METHODS:
            key = "targets" if name == "gsc" else f"targets_{name}"
            if key in entry:
                click.echo(f"{name} targets rho={label}: " + ", ".join(
                    f"{k} {'n/a' if v['pass'] is None else ('PASS' if v['pass'] else 'FAIL')}"
                    for k, v in entry[key].items()))
        for name in ("deepjscc", "deepjscc-q"):
            if name in entry:
                crit = entry[name]
                cap = crit["psnr_vs_capacity_at_20db"]
                click.echo(f"{name} criteria rho={label}: " + ", ".join(
                    f"{k} {'n/a' if v['pass'] is None else ('PASS' if v['pass'] else 'FAIL')}"
                    for k, v in crit.items() if k != "psnr_vs_capacity_at_20db")
                    + (f", PSNR at 20 dB {cap['psnr_db']:.2f} vs capacity "
                       f"{cap['capacity_psnr_db']:.2f} dB" if cap["difference_db"] is not None
                       else ""))
    click.echo(f"wrote {os.path.join(out_dir, 'eval.json')} and eval.md")


def _normalise_data(data) -> str | list[str]:
    """``--data`` values -> ``"fmnist"``, ``"photos"`` or a list of paths."""
    data = [data] if isinstance(data, str) else list(data)
    if len(data) == 1 and data[0] in ("fmnist", "photos"):
        return data[0]
    if {"fmnist", "photos"} & set(data) or not data:
        raise ConfigError("--data fmnist or photos stand alone, not mixed with files")
    return data


def _run_eval_point(o: dict, seed: int) -> list[dict]:
    """One sweep point of ``gsc eval`` (its options, a seed) -> the eval rows."""
    data = _normalise_data(o["data"])
    methods = [m.strip() for m in (o["methods"] or (
        DEFAULT_PHOTO_METHODS if is_photo_data(data) else DEFAULT_METHODS)).split(",")
        if m.strip()]
    doc = evaluate(data, o["channel"], parse_snr_range(o["snr"]),
                   _parse_ratios(o["ratios"]), methods, o["num_images"], o["steps"], seed,
                   out_dir=None, progress=False, trials=o["trials"])
    return [r | {"snr_kind": doc["snr_kind"]} for r in doc["rows"]]


def sweep_runner():
    """``gsc eval`` as a ``gsc sweep`` runner (a point = one data/channel/ratio/SNR set)."""
    from gsc_phy.sweep.runners import ReportSpec, Runner

    return Runner.from_click(
        "eval", eval_command, _run_eval_point,
        report=ReportSpec(x="snr_db", y=("psnr", "ms_ssim", "perceptual", "consistency"),
                          x_label="{snr_kind} [dB]", x_param="snr"))
