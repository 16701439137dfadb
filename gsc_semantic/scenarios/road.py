"""``gsc scenario road``: road monitoring over the layered link vs JPEG/WebP + LDPC.

The transmitter segments each 64x64 scene (:class:`~.road_models.RoadSegmenter`), sends the
coarse class map (16x16 cells, 598 bits) as the most important layer and the perceptual
latent of :class:`~.road_models.RoadCodec` as three further layers (256, 512, 768 bits),
through :class:`~.layered_link.LayeredLink`: ``gsc-uep`` gives each layer its own MCS
(:func:`road_ladder`: the class map within :data:`UEP_MARGIN_DB` of the most robust MCS,
the latent layers as robust as the rest of the budget allows), ``gsc-single`` one MCS for
all layers at the same budget. The receiver regenerates the scene from the class map and
the latent layers that arrived.
Baselines: JPEG and WebP + 5G LDPC with genie link adaptation at the same channel-use
budget (:class:`gsc_semantic.baselines.SeparationBaseline`; a lost image shows the mean
training scene), and ``webp-ra``, WebP at the resolution the transmitter picks by MSE
(:mod:`gsc_semantic.resolution_adaptive`).

Metrics on each received image: the in-project segmenter's mIoU and detection F1
(vehicle/pedestrian components, IoU 0.5) against the ground truth of the procedural
scenes (or, for user images, against the segmenter's output on the original), PSNR, SSIM
and the EfficientNet-Lite2 feature distance (not LPIPS).

Outputs in ``OUT``: ``road.json`` / ``road.md`` (per-SNR table), ``grid_snr*.png`` and
``road.gif`` (original, true classes, each method), ``road_vs_snr.png``, ``report.html``.

Example::

    gsc scenario road --link sim --channel awgn --snr=-5:20:5 --out runs/road
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from itertools import combinations_with_replacement

import numpy as np
import torch
from PIL import Image, ImageDraw

from bridge.common import ConfigError, checkpoints_root
from gsc_phy.config import LinkConfig
from gsc_phy.mcs import SINGLE_SLOT_TABLE, threshold_db
from gsc_phy.provenance import versions
from gsc_semantic.baselines import SeparationBaseline
from gsc_semantic.codec import (
    MANIFEST_NAME,
    CheckpointError,
    verify_checkpoint,
    write_manifest,
)
from gsc_semantic.eval_plots import tile
from gsc_semantic.metrics import EffNetPerceptualDistance, miou, psnr, ssim
from gsc_semantic.resolution_adaptive import CODEC_BASELINES, codec_baseline

from .common import (
    LinkSpec,
    ReportSection,
    aggregate_trials,
    link_context,
    link_transport,
    plot_vs_snr,
    save_gif,
    write_html_report,
    write_table,
)
from .layered_link import LayeredLink
from .road_metrics import boxes_from_dataset, boxes_from_mask, detection_counts, f1_score
from .road_models import NUM_CLASSES, RoadCodec, RoadSegmenter, class_grid
from .road_train import (
    CODEC_DIR,
    REBUILD,
    SEGMENTER_DIR,
    load_codec,
    load_segmenter,
    render_scenes,
    train_all,
)

__all__ = ["DEFAULT_RHO", "UEP_MARGIN_DB", "METHODS", "COLUMNS", "load_road_models",
           "load_road_images", "road_ladder", "RoadScorer", "colorize", "run_road"]

DEFAULT_RHO = 1 / 4
#: the class map's MCS may be up to this much less robust than the most robust that fits
UEP_MARGIN_DB = 2.5
METHODS = ("gsc-uep", "gsc-single", "jpeg", "webp", "webp-ra")
COLUMNS = ("method", "snr_db", "miou", "f1", "psnr", "ssim", "feature_distance",
           "layers_received", "delivered", "channel_uses", "rho", "mcs")
#: Extra columns with ``--trials`` > 1 (95 % Student-t half-widths over the trials).
CI_COLUMNS = ("trials", "miou_ci95", "f1_ci95", "feature_distance_ci95")
#: Seed offset between channel trials (trial 0 keeps the single-trial seeds).
TRIAL_SEED_STRIDE = 100_003
_PALETTE = torch.tensor([[90, 140, 90], [80, 80, 80], [240, 240, 240], [220, 40, 40],
                         [40, 90, 240]], dtype=torch.float32) / 255


def load_road_models(root: str | None = None) -> tuple[RoadSegmenter, RoadCodec]:
    """Segmenter and codec from ``root`` (default: the shipped ``checkpoints/``), verified
    against ``MANIFEST.json`` when one is there."""
    base = root or str(checkpoints_root())
    dirs = [os.path.join(base, SEGMENTER_DIR), os.path.join(base, CODEC_DIR)]
    for d in dirs:
        for f in ("config.json", "model.safetensors"):
            if not os.path.isfile(os.path.join(d, f)):
                raise ConfigError(f"road checkpoint file {os.path.join(d, f)} is missing; "
                                  f"rebuild it with `{REBUILD}`")
        try:
            verify_checkpoint(d)
        except CheckpointError as err:
            raise ConfigError(str(err)) from None
    return load_segmenter(dirs[0]), load_codec(dirs[1])


def load_road_images(scenes: int, size: int = 64, seed: int = 0,
                     images_dir: str | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor | None, list | None]:
    """Test images [N, 3, s, s], true masks [N, s, s] and boxes (procedural scenes), or
    the first ``scenes`` images of ``images_dir`` (centre crops; masks/boxes ``None``).
    An unreadable or too small file raises :class:`ConfigError` naming it."""
    if images_dir is None:
        from gsc_semantic.data.road import RoadScenes

        ds = RoadScenes("test", size=size, seed=seed, length=scenes)
        items = [ds[i] for i in range(scenes)]
        boxes = [boxes_from_dataset(d["boxes"], d["box_classes"], int(d["num_boxes"]))
                 for d in items]
        return (torch.stack([d["image"] for d in items]),
                torch.stack([d["mask"] for d in items]), boxes)
    from gsc_semantic.data.folder import ImageFolderDataset

    try:
        ds = ImageFolderDataset(images_dir, "all", size=size, seed=seed)
        images = torch.stack([ds[i]["image"] for i in range(min(scenes, len(ds)))])
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return images, None, None


def road_ladder(channel: str, budget: float, layer_bits: list[int],
                base_config: LinkConfig | None = None,
                margin_db: float = UEP_MARGIN_DB) -> list[int]:
    """The ``gsc-uep`` MCS ladder (MCS keys of :mod:`gsc_phy.mcs`), chosen without knowing the SNR.

    The class map (layer 0) gets an MCS whose BLER-10 % threshold lies within
    ``margin_db`` of the most robust MCS that still leaves room for every layer; among the
    non-decreasing ladders that fit ``budget`` channel uses per image, the one whose
    *last* layer decodes at the lowest SNR wins (ties: lowest sum of thresholds). This
    spends a little of the class map's robustness to bring all latent layers in at a few dB
    instead of leaving them erased until 10-20 dB (the generic ``"adaptive"`` ladder of
    :mod:`.layered_link` maximises the first layer's robustness first).

    Example::

        >>> road_ladder("awgn", 3072, [598, 256, 512, 768])
        ['2', '4', '5', '5']
    """
    base = base_config or LinkConfig(channel=channel)
    table = SINGLE_SLOT_TABLE  # most robust first; the streamed link has no slot aggregation
    thr = [threshold_db(m, channel, base.estimator) for m in table]
    eff = [m.payload_bits_per_channel_use(base) for m in table]
    first, rest = layer_bits[0], layer_bits[1:]
    fits = [i for i in range(len(table))
            if first / eff[i] + sum(rest) / eff[-1] <= budget + 1e-9]
    if not fits:
        raise ConfigError(f"the road layers ({sum(layer_bits)} bits) do not fit "
                          f"{budget:.0f} channel uses per image; raise the bandwidth ratio")
    floor = min(thr[i] for i in fits)
    best: tuple[float, float, tuple[int, ...]] | None = None
    for i in fits:
        if thr[i] > floor + margin_db:
            continue
        for tail in combinations_with_replacement(range(i, len(table)), len(rest)):
            if first / eff[i] + sum(b / eff[m] for b, m in zip(rest, tail, strict=True)) \
                    > budget + 1e-9:
                continue
            ladder = (i, *tail)
            key = (max(thr[m] for m in ladder[1:] or ladder), sum(thr[m] for m in ladder),
                   ladder)
            best = key if best is None or key < best else best
    assert best is not None
    return [table[m].key for m in best[2]]


class RoadScorer:
    """Task and perceptual metrics of reconstructions against the originals.

    :param segmenter: the task network.
    :param originals: [N, 3, H, W] sent images.
    :param masks: true masks [N, H, W] or ``None`` (then the segmenter's masks of the
        originals are the reference).
    :param boxes: true boxes per image or ``None`` (then boxes of the reference masks).
    :input recon: [N, 3, H, W] received images.
    :output: ``{"miou", "f1", "psnr", "ssim", "feature_distance"}`` (floats).
    """

    def __init__(self, segmenter: RoadSegmenter, originals: torch.Tensor,
                 masks: torch.Tensor | None, boxes: list | None) -> None:
        self.segmenter = segmenter
        self.originals = originals
        self.masks = masks if masks is not None else segmenter.predict(originals)
        self.boxes = boxes if boxes is not None else [boxes_from_mask(m) for m in self.masks]
        self.perceptual = EffNetPerceptualDistance()

    def __call__(self, recon: torch.Tensor) -> dict:
        with torch.no_grad():
            pred = self.segmenter.predict(recon)
            f1 = f1_score(*detection_counts([boxes_from_mask(m) for m in pred], self.boxes))
            return {"miou": miou(pred, self.masks, NUM_CLASSES), "f1": f1,
                    "psnr": float(psnr(recon, self.originals).clamp(max=100).mean()),
                    "ssim": float(ssim(recon, self.originals).mean()),
                    "feature_distance": float(self.perceptual(recon, self.originals).mean())}


def colorize(masks: torch.Tensor) -> torch.Tensor:
    """Class masks [N, H, W] -> RGB [N, 3, H, W] (green background, gray road, white lane,
    red vehicle, blue pedestrian)."""
    return _PALETTE[masks.long()].permute(0, 3, 1, 2)


def _labelled(rows: list[torch.Tensor], names: list[str], title: str) -> Image.Image:
    grid = tile(rows, scale=2)
    pad = 96
    canvas = Image.new("RGB", (grid.width + pad, grid.height + 18), "white")
    canvas.paste(grid, (pad, 18))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill="black")
    step = grid.height / len(rows)
    for k, name in enumerate(names):
        draw.text((4, 18 + int(step * k + step / 2) - 5), name, fill="black")
    return canvas


def _gsc_row(link: LayeredLink, codec: RoadCodec, layers: list[np.ndarray], snr: float,
             seed: int) -> tuple[torch.Tensor, dict]:
    res = link(layers, snr, seed=seed)
    recon = codec.decode_layers(res.bits, torch.from_numpy(res.erased))
    plan = link.plan
    info = {"layers_received": float(res.layers_received.mean()),
            "delivered": float((~res.erased[:, 0]).mean()),
            "channel_uses": plan.total_channel_uses,
            "rho": plan.total_channel_uses / float(np.prod(link.image_shape)),
            "mcs": "/".join(m.name[3:] if m else "-" for m in plan.mcs),
            "layer_erasure_rate": res.erased.mean(0).round(3).tolist()}
    return recon, info


def _baseline_row(base: SeparationBaseline, images: torch.Tensor, snr: float, seed: int
                  ) -> tuple[torch.Tensor, dict]:
    out = base(images, snr, channel_seed=seed)
    delivered = float(out.delivered.float().mean())
    info = {"layers_received": delivered, "delivered": delivered,
            "channel_uses": float(np.mean([r.channel_uses for r in out.records])),
            "rho": out.budget.channel_uses / float(np.prod(images.shape[1:])),
            "mcs": out.budget.mcs.name[3:] + ("" if out.budget.mcs_meets_target else "!")}
    return out.images, info


def run_road(link: LinkSpec, channel: str, snrs: list[float], out_dir: str, seed: int = 0,
             scenes: int = 16, rho: float = DEFAULT_RHO, images_dir: str | None = None,
             retrain: bool = False, checkpoints: str | None = None, size: int = 64,
             echo: Callable[[str], None] = print, trials: int = 1) -> dict:
    """Run the road scenario (see the module notes); returns the ``road.json`` document.

    ``trials`` independent channel and noise draws per method and SNR (the same scenes):
    row metrics are means over trials with ``<metric>_ci95`` half-widths; grids show trial 0.
    """
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    transport = link_transport(link, channel, seed, out_dir, "road", echo)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    if retrain:
        checkpoints = checkpoints or os.path.join(out_dir, "checkpoints")
        echo(f"[road] training segmenter and codec into {checkpoints}")
        train_all(checkpoints, seed=seed, size=size, log=echo)
        if os.path.isfile(os.path.join(checkpoints, MANIFEST_NAME)):  # rebuilt shipped ones
            write_manifest(checkpoints, {CODEC_DIR: REBUILD, SEGMENTER_DIR: REBUILD})
    segmenter, codec = load_road_models(checkpoints)
    if codec.config.size != size:
        raise ConfigError(f"the road codec works on {codec.config.size}x{codec.config.size} "
                          f"images, asked for {size}")
    images, masks, boxes = load_road_images(scenes, size, seed, images_dir)
    n = images.shape[0]
    echo(f"[road] {n} {'procedural scenes' if images_dir is None else 'images'}, "
         f"{len(snrs)} SNRs, {channel}, ρ = {rho:.4g}")
    scorer = RoadScorer(segmenter, images, masks, boxes)
    cells = class_grid(segmenter.predict(images), codec.config.grid)
    layers = codec.encode_layers(images, cells)
    shape = tuple(images.shape[1:])
    ladder = road_ladder(channel, rho * float(np.prod(shape)), codec.layer_bits)
    links = {"gsc-uep": LayeredLink(channel, rho, codec.layer_bits, ladder,
                                    link=transport, image_shape=shape),
             "gsc-single": LayeredLink(channel, rho, codec.layer_bits, "single",
                                       link=transport, image_shape=shape)}
    fill = render_scenes(256, size, seed, "val")[0].mean(0)
    bases = {c: codec_baseline(c, channel, rho, fill=fill, seed=seed, transport=transport)
             for c in METHODS if c in CODEC_BASELINES}
    refs = [{"method": "original", **scorer(images)},
            {"method": "gsc-all-layers-error-free",
             **scorer(codec.decode_layers(layers, torch.zeros(n, len(layers), dtype=bool)))},
            {"method": "gsc-class-map-only",
             **scorer(codec.decode_layers(layers, torch.tensor([[False] + [True] * (
                 len(layers) - 1)] * n)))}]
    rows, frames = [], []
    shown = min(n, 8)
    truth = [colorize(masks[:shown])] if masks is not None else []
    for k, snr in enumerate(snrs):
        recons = {}
        for m in METHODS:
            link_context(transport, m)
            per_trial = []
            for tr in range(trials):
                s = seed + 1000 * k + TRIAL_SEED_STRIDE * tr
                recon, info = (_gsc_row(links[m], codec, layers, snr, s) if m in links
                               else _baseline_row(bases[m], images, snr, s))
                if tr == 0:
                    recons[m], first = recon, info
                per_trial.append({**scorer(recon), "layers_received": info["layers_received"],
                                  "delivered": info["delivered"]})
            counters = transport.take()  # None on the simulated link
            if counters is not None:
                first["loopback"] = counters
            rows.append({"method": m, "snr_db": snr, **first, **aggregate_trials(per_trial)})
        echo(f"[road] Es/N0 {snr:g} dB: " + ", ".join(
            f"{r['method']} mIoU {r['miou']:.2f} F1 {r['f1']:.2f}" for r in rows[-len(METHODS):]))
        names = ["original"] + (["true classes"] if truth else []) + list(METHODS)
        grid = _labelled([images[:shown]] + truth + [recons[m][:shown] for m in METHODS],
                         names, f"{channel}, Es/N0 {snr:g} dB, rho {rho:.4g}")
        grid.save(os.path.join(out_dir, f"grid_snr{snr:g}.png"))
        frames.append(grid)
    transport.close()  # a streamed link's sessions stop here
    save_gif(frames, os.path.join(out_dir, "road.gif"))
    labels = {"miou": "segmentation mIoU ↑", "f1": "detection F1 ↑", "psnr": "PSNR [dB] ↑",
              "ssim": "SSIM ↑", "feature_distance": "EffNet-Lite2 feature distance ↓",
              "layers_received": "layers received (gsc) / delivered (codecs)"}
    plot_vs_snr(rows, labels, METHODS, os.path.join(out_dir, "road_vs_snr.png"),
                f"road monitoring over {channel}, ρ = {rho:.4g}, {n} images")
    doc = {"config": {"scenario": "road", "link": str(link), "channel": channel,
                      "snr_db": snrs, "rho": rho, "images": n, "size": size, "trials": trials,
                      "data": images_dir or "procedural road scenes (test split)",
                      "layer_bits": codec.layer_bits,
                      "plans": {m: ll.plan.to_dict() for m, ll in links.items()},
                      "reference": "ground truth" if masks is not None
                      else "segmenter on the originals"},
           "snr_kind": "esno", "versions": versions(), "seed": seed,
           "references": refs, "rows": rows, "seconds": time.perf_counter() - t0}
    write_table(doc, _columns(trials), out_dir, "road")
    _report(doc, out_dir)
    echo(f"[road] wrote {os.path.join(out_dir, 'report.html')} "
         f"({doc['seconds']:.0f} s)")
    return doc


def _columns(trials: int) -> tuple[str, ...]:
    return COLUMNS if trials == 1 else COLUMNS + CI_COLUMNS


def _report(doc: dict, out_dir: str) -> str:
    c = doc["config"]
    plans = "; ".join(f"{m}: MCS {'/'.join(str(i) for i in p['mcs_index'])} "
                      f"(thresholds {p['threshold_db']} dB)" for m, p in c["plans"].items())
    intro = (f"Road monitoring: {c['images']} images ({c['data']}), {c['channel']}, "
             f"ρ = {c['rho']:.4g}, Es/N0 per complex symbol, link {c['link']}. gsc sends a "
             f"16x16 class map and three latent layers ({c['layer_bits']} bits); {plans}. "
             "JPEG/WebP + 5G LDPC use genie link adaptation at the same channel-use budget. "
             f"Task metrics against the {c['reference']}. Total {doc['seconds']:.0f} s.")
    sections = [ReportSection("Metrics against SNR", images=["road_vs_snr.png"],
                              rows=doc["rows"], columns=_columns(c.get("trials", 1))),
                ReportSection("References (no channel)", rows=doc["references"],
                              columns=("method", "miou", "f1", "psnr", "ssim",
                                       "feature_distance")),
                ReportSection("Images per SNR", text="rows: original, true classes, "
                              + ", ".join(METHODS),
                              images=[f"grid_snr{s:g}.png" for s in c["snr_db"]])]
    return write_html_report(out_dir, "gsc scenario road", intro, sections)
