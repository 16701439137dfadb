"""``gsc send``: a user's own pictures through the photo link, next to the baselines.

Each image keeps its own size (any size and aspect, >= 64 px a side; a 768x512 photo is
coded as 768x512, the prior running in seamless tiles). For every image gsc's layers and
each baseline codec (JPEG, WebP, AVIF, quality searched to fit; the ``-ra`` variants also
pick the resolution by MSE; ``deepjscc``/``deepjscc-q``, the learned JSCC baselines of
:mod:`gsc_semantic.deepjscc_link`, on request and on the simulated link only, need their
checkpoint at that ρ) travel the same link with the
same MCS (genie choice at 10 % BLER for ``--snr``) and the same budget of ρ·3·H·W channel
uses. ``OUT`` gets, per image ``NAME``:

* ``NAME.gsc.png``: what gsc's receiver shows;
* ``NAME.side_by_side.png``: the original, gsc, then each baseline, labelled (``webp-ra``,
  the resolution-adaptive WebP, with the size it coded);

and ``send.json``: the configuration, and per image its size, budget (bits, channel uses, ρ,
MCS), gsc's layers (bytes, codec, resolution, received or erased), the frames sent and lost,
and PSNR / MS-SSIM / EfficientNet-Lite2 feature distance / ImageNet top-1 consistency for gsc
and every baseline; the files that were skipped and why.

Bad input (no readable image, an image under 64 px a side, an empty folder, a ρ whose budget
cannot hold gsc's first layer) ends with one ``gsc: error:`` line and exit code 2; a folder
with some bad files is processed and the skipped files are named.

Example::

    gsc send photo.jpg --snr 10 --ratio 1/48 --channel awgn --out runs/send
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import click
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from bridge.common import ConfigError
from gsc_phy.config import parse_rate

__all__ = ["SendConfig", "send_images", "send_command", "SEND_BASELINES"]

#: baselines sent next to gsc by default (codec + the same LDPC link; ``-ra``: the
#: transmitter also picks the resolution, :mod:`gsc_semantic.resolution_adaptive`)
SEND_BASELINES = ("jpeg", "webp", "avif", "webp-ra")


@dataclass(frozen=True)
class SendConfig:
    """One ``gsc send`` run: link, operating point, receiver prior and baselines."""

    snr_db: float = 10.0
    rho: float = 1 / 48
    channel: str = "awgn"
    link: str = "sim"
    prior: str = "compact"
    baselines: tuple[str, ...] = SEND_BASELINES
    seed: int = 0

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["baselines"] = list(self.baselines)
        return d


def _labelled(images: list[torch.Tensor], labels: list[str]) -> Image.Image:
    """Images [3, H, W] side by side with a label strip above each."""
    h, w = images[0].shape[-2:]
    strip = 18
    canvas = Image.new("RGB", (w * len(images), h + strip), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (img, label) in enumerate(zip(images, labels, strict=True)):
        arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        canvas.paste(Image.fromarray(arr), (k * w, strip))
        draw.text((k * w + 4, 3), label, fill="black")
    return canvas


def _label(method: str, entry: dict) -> str:
    if entry.get("fits") is False:
        return f"{method}: does not fit the budget"
    if not entry.get("delivered", True):
        return f"{method}: lost on the link"
    size = entry.get("resolution")
    at = f" @{size[1]}x{size[0]}" if method.endswith("-ra") and size else ""
    return f"{method}{at} {entry['metrics']['psnr']:.1f} dB"


def _stem(path: str, used: set[str]) -> str:
    base = os.path.splitext(os.path.basename(path))[0] or "image"
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}-{k}"
    used.add(name)
    return name


def _on_air(frames: int, budget, sent: bool) -> float:
    """Channel uses of the whole frames a method put on the air (0 when it sent nothing);
    ``channel_uses`` is the pro-rata share of its bits, at most the budget."""
    return float(frames * budget.frame.channel_uses_per_frame) if sent else 0.0


def _check_room(link, shape, snr_db: float, name: str) -> dict:
    """The image's budget; a ConfigError when it cannot hold gsc's first layer."""
    from .photo_layers import MIN_LAYER_BYTES

    budget = link.budget(shape, snr_db)
    if budget.payload_bits < 8 * MIN_LAYER_BYTES:
        raise ConfigError(
            f"{name}: rho={link.rho:g} at {snr_db:g} dB leaves {budget.payload_bits} bits for "
            f"a {shape[2]}x{shape[1]} image; gsc's first layer needs >= "
            f"{8 * MIN_LAYER_BYTES} bits (raise --ratio or --snr)")
    return budget.to_dict()


def send_images(paths: list[str], config: SendConfig, out_dir: str,
                progress: bool = True) -> dict:
    """Send the images of ``paths`` (files or folders) as described in the module notes;
    writes ``OUT`` and returns the ``send.json`` document."""
    from tqdm import tqdm

    from .data.user_images import load_user_images
    from .deepjscc_link import JSCC_METHODS, make_deepjscc_method
    from .evaluate import Scorer, mean_image
    from .photo_layers import layer_summary
    from .photo_link import PhotoLink
    from .photo_receiver import PhotoPrior
    from .resolution_adaptive import codec_baseline
    from .scenarios.common import link_context, link_transport, parse_link

    spec = parse_link(config.link)
    got = load_user_images(paths, size=None)
    os.makedirs(out_dir, exist_ok=True)
    transport = link_transport(spec, config.channel, config.seed, out_dir, "send")
    if set(config.baselines) & set(JSCC_METHODS) and transport.streamed:
        raise ConfigError("--baselines deepjscc/deepjscc-q run on the simulated link only "
                          "(--link sim): the streamed path does not carry analog symbols yet")
    prior = PhotoPrior.load(config.prior)
    mean = mean_image("photos")
    links: dict[tuple[int, ...], dict] = {}

    def links_for(shape: tuple[int, ...]) -> dict:
        """gsc's and the baselines' links for one image size (a lost image shows the mean
        training photo, resized to that size)."""
        if shape not in links:
            fill = F.interpolate(mean[None], size=shape[1:], mode="bicubic",
                                 align_corners=False)[0].clamp(0, 1)
            kw = {"transport": transport, "fill": fill, "seed": config.seed}
            links[shape] = {"gsc": PhotoLink(prior, config.channel, config.rho, **kw)} | {
                b: (make_deepjscc_method(b, "photos", config.channel, config.rho,
                                         seed=config.seed) if b in JSCC_METHODS else
                    codec_baseline(b, config.channel, config.rho, **kw))
                for b in config.baselines}
        return links[shape]

    scorer = Scorer("photos")
    skipped = [{"file": f, "reason": r} for f, r in got.skipped]
    budgets = {}
    for img, name in zip(got.images, got.names, strict=True):
        try:
            budgets[name] = _check_room(links_for(tuple(img.shape))["gsc"], tuple(img.shape),
                                        config.snr_db, name)
        except ConfigError as err:
            if len(got.images) == 1:
                raise
            skipped.append({"file": name, "reason": str(err)})
    if not budgets:
        raise ConfigError("no image has room for gsc's first layer: "
                          + "; ".join(s["reason"] for s in skipped[-3:]))
    docs, used = [], set()
    todo = [(i, n) for i, n in zip(got.images, got.names, strict=True) if n in budgets]
    for img, name in tqdm(todo, desc="gsc send", disable=not progress):
        stem, t0 = _stem(name, used), time.perf_counter()
        gsc, *others = links_for(tuple(img.shape)).values()
        link_context(transport, "gsc")
        res = gsc(img[None], snr_db=config.snr_db, channel_seed=config.seed)
        rec = res.records[0]
        layers = layer_summary(gsc.encode(img, res.budget.payload_bits))
        for k, layer in enumerate(layers):
            layer["received"] = not bool(res.erasure_mask[0, k])
        outputs = {"gsc": res.images[0]}
        entry = {"file": name, "name": stem, "size": [int(img.shape[2]), int(img.shape[1])],
                 "budget": budgets[name], "rho": config.rho,
                 "gsc": {"mcs": rec.mcs, "mcs_meets_target": rec.mcs_meets_target,
                         "bits_sent": rec.bits_sent, "channel_uses": rec.channel_uses,
                         "frames": res.frames,
                         "frame_channel_uses": _on_air(res.frames, res.budget,
                                                       rec.bits_sent > 0),
                         "layers_sent": rec.layers_sent,
                         "layers_received": rec.layers_received, "delivered": rec.delivered,
                         "layers": layers}}
        for b, link in zip(config.baselines, others, strict=True):
            link_context(transport, b)
            r = link(img[None], snr_db=config.snr_db, channel_seed=config.seed)
            outputs[b] = r.images[0]
            entry[b] = {**r.records[0].to_dict(), "frames": r.frames,
                        "frame_channel_uses": _on_air(r.frames, r.budget, r.records[0].fits)}
        for m, out in outputs.items():
            entry[m]["metrics"] = scorer(img[None], out[None])
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        counters = transport.take()  # None on the simulated link
        if counters is not None:
            entry["link_counters"] = counters
        Image.fromarray((outputs["gsc"].clamp(0, 1).permute(1, 2, 0).numpy() * 255)
                        .round().astype("uint8")).save(os.path.join(out_dir, f"{stem}.gsc.png"))
        labels = ["original"] + [_label(m, entry[m]) for m in outputs]
        _labelled([img, *outputs.values()], labels).save(
            os.path.join(out_dir, f"{stem}.side_by_side.png"))
        docs.append(entry)
    doc = {"config": config.to_dict(), "images": docs, "skipped": skipped,
           "metrics": {"psnr": "dB", "ms_ssim": "MS-SSIM",
                       "perceptual": "EfficientNet-Lite2 feature distance (lower is better; "
                                     "not LPIPS)",
                       "consistency": "ImageNet top-1 agreement with the original"}}
    with open(os.path.join(out_dir, "send.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    return doc


@click.command("send")
@click.argument("images", nargs=-1, required=True)
@click.option("--snr", "snr_db", type=float, default=10.0, show_default=True,
              help="Average Es/N0 in dB")
@click.option("--ratio", default="1/48", show_default=True,
              help="Bandwidth ratio rho (channel uses / 3·H·W)")
@click.option("--channel", default="awgn", show_default=True, help="awgn, rayleigh or tdl-a")
@click.option("--link", "link_text", default="sim", show_default=True,
              help="sim | loopback (GNU Radio) | sigmf:DIR (recorded loopback IQ)")
@click.option("--prior", default="compact", show_default=True,
              help="The receiver's prior: compact, teacher, student or bicubic")
@click.option("--baselines", default=",".join(SEND_BASELINES), show_default=True,
              help="Codecs sent next to gsc (jpeg, webp, avif, and -ra for the "
                   "resolution-adaptive ones: jpeg-ra, webp-ra, avif-ra; deepjscc and "
                   "deepjscc-q, the learned JSCC baselines, need a checkpoint at --ratio, "
                   "e.g. 1/12; empty for none)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default="runs/send", show_default=True)
@click.option("--quiet", is_flag=True)
def send_command(images, snr_db, ratio, channel, link_text, prior, baselines, seed, out_dir,
                 quiet) -> None:
    """Send your own pictures (files or folders) through gsc and the baselines; writes
    OUT/NAME.gsc.png, OUT/NAME.side_by_side.png and OUT/send.json."""
    from .deepjscc_link import JSCC_METHODS
    from .photo_receiver import PRIORS
    from .resolution_adaptive import CODEC_BASELINES

    names = tuple(b for b in (s.strip() for s in baselines.split(",")) if b)
    bad = [b for b in names if b not in (*CODEC_BASELINES, *JSCC_METHODS)]
    if bad:
        raise ConfigError(f"--baselines: unknown {bad}; choose from "
                          f"{', '.join((*CODEC_BASELINES, *JSCC_METHODS))}")
    if prior not in PRIORS:
        raise ConfigError(f"--prior must be one of {', '.join(PRIORS)}, got {prior!r}")
    try:
        rho = parse_rate(ratio)
    except ConfigError:
        raise ConfigError(f"--ratio must be a number like 0.02 or 1/48, got {ratio!r}") from None
    if not 0 < rho <= 1:
        raise ConfigError(f"--ratio must be in (0, 1], got {ratio!r}")
    cfg = SendConfig(snr_db=snr_db, rho=rho, channel=channel, link=link_text,
                     prior=prior, baselines=names, seed=seed)
    doc = send_images(list(images), cfg, out_dir, progress=not quiet)
    for s in doc["skipped"]:
        click.echo(f"skipped {s['file']}: {s['reason']}", err=True)
    if quiet:
        return
    for e in doc["images"]:
        parts = [f"{m} {e[m]['metrics']['psnr']:.1f} dB / {e[m]['metrics']['perceptual']:.3f}"
                 for m in ("gsc", *cfg.baselines)]
        click.echo(f"{e['name']} {e['size'][0]}x{e['size'][1]}: {e['budget']['payload_bits']} "
                   f"bits, {e['gsc']['mcs']}, layers {e['gsc']['layers_received']}/"
                   f"{e['gsc']['layers_sent']} | " + " | ".join(parts))
    click.echo(f"wrote {os.path.join(out_dir, 'send.json')} and the pictures")
