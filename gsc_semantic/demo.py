"""``gsc demo`` (``make demo``): the main job on its embedded defaults.

Fashion-MNIST and the bundled photographs go through the simulated link (AWGN, genie
link adaptation) at three SNRs and two bandwidth ratios with the shipped checkpoints, next
to JPEG/WebP + LDPC and the capacity bound; then the reference PHY links run. Everything
lands in ``OUT/report.html`` (grids, curves, a table).
"""

from __future__ import annotations

import html
import os
import time

import click

from gsc_phy.demo import run_phy_demo

from .evaluate import evaluate, ratio_tag

__all__ = ["demo", "write_report"]

DEMO_SNRS = [0.0, 10.0, 20.0]
DEMO_RATIOS = [1 / 48, 1 / 12]
#: ``--quick``: a smoke run of every stage (about a minute on 2 cores): two SNRs, one ratio,
#: a handful of images and short PHY curves
QUICK_SNRS = [0.0, 20.0]
QUICK_RATIOS = [1 / 12]
QUICK_IMAGES = {"fmnist": 4, "photos": 2}
QUICK_PHY_FRAMES = 32
#: per dataset: gsc, its ablation (Fashion-MNIST: the MSE head; photos: the layers without
#: the prior), the codec baselines and the capacity bound
DEMO_METHODS = {"fmnist": ["gsc", "gsc-mse", "jpeg", "webp", "capacity"],
                "photos": ["gsc", "gsc-bicubic", "jpeg", "webp", "avif", "webp-ra",
                           "capacity"]}


def _table(doc: dict) -> str:
    head = ("<tr><th>ρ</th><th>Es/N0 dB</th><th>method</th><th>PSNR</th><th>MS-SSIM</th>"
            "<th>feature dist. ↓</th><th>consistency</th><th>delivered</th><th>MCS</th></tr>")
    body = []
    for r in doc["rows"]:
        style = " style='font-weight:bold'" if r["method"] == "gsc" else ""
        body.append(
            f"<tr{style}><td>1/{round(1 / r['ratio'])}</td><td>{r['snr_db']:g}</td>"
            f"<td>{html.escape(r['method'])}</td><td>{r['psnr']:.2f}</td>"
            f"<td>{r['ms_ssim']:.3f}</td><td>{r['perceptual']:.3f}</td>"
            f"<td>{r['consistency']:.2f}</td><td>{r['delivered']:.2f}</td>"
            f"<td>{html.escape(str(r['mcs']))}</td></tr>")
    return "<table>" + head + "".join(body) + "</table>"


def write_report(evals: dict[str, dict], phy_rows: list[dict], out_dir: str,
                 seconds: float) -> str:
    """``OUT/report.html`` from the eval documents (per dataset) and the PHY rows."""
    parts = ["<!doctype html><meta charset=utf-8><title>gsc demo</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "td,th{padding:2px 7px;text-align:right}table{border-collapse:collapse}"
             "tr:nth-child(even){background:#f4f4f4}</style>",
             "<h1>gsc demo</h1>",
             "<p>Generative semantic communication (gsc) against JPEG/WebP + 5G LDPC and the "
             "capacity-achieving separation bound, all on the same number of complex channel "
             "uses per image (ρ = channel uses / C·H·W, pilots, guards and CP included). "
             "Es/N0 per complex symbol, AWGN, genie link adaptation. Feature distance is the "
             "EfficientNet-Lite2 feature distance (lower is better; not LPIPS). Lost or unsent "
             "codec images show the mean training image; gsc with no layer shows a sample "
             "of its diffusion prior (Fashion-MNIST) or the mean training photo (photos). "
             "Photos: 256x256 crops; gsc's layers are brought to full size by Real-ESRGAN's "
             "compact pretrained generator, gsc-bicubic is the same bits without it. "
             f"Total time {seconds:.0f} s.</p>"]
    for data, doc in evals.items():
        c = doc["config"]
        parts.append(f"<h2>{data}: {c['num_images']} held-out test images "
                     f"{'x'.join(map(str, c['image_shape']))}</h2>")
        for rho in c["ratios"]:
            tag = ratio_tag(rho)
            parts.append(f"<h3>ρ = 1/{round(1 / rho)}</h3>")
            parts.append(f"<img src='{data}/curves_{tag}.png' width=1050>")
            for snr in c["snr_db"]:
                parts.append(f"<p>Es/N0 {snr:g} dB — rows: original, "
                             f"{', '.join(c['methods'])}</p>")
                parts.append(f"<img src='{data}/grid_{tag}_snr{snr:g}.png'>")
        parts.append(_table(doc))
    parts.append("<h2>Reference PHY links</h2>")
    for row in phy_rows:
        parts.append(f"<h3>{html.escape(row['description'])}</h3>"
                     f"<img src='phy/{row['name']}.png' width=480>")
    path = os.path.join(out_dir, "report.html")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))
    return path


@click.command()
@click.option("--out", "out_dir", default="gsc-demo", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--images", "num_images", type=int, default=16, show_default=True,
              help="Fashion-MNIST images")
@click.option("--photo-images", type=int, default=6, show_default=True,
              help="256x256 photo crops (the layer search costs 0.3-3 s an image)")
@click.option("--steps", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True,
              help=f"Smoke run: SNRs {QUICK_SNRS}, one ratio, {QUICK_IMAGES} images, "
                   "short PHY curves (overrides --images/--photo-images)")
def demo(out_dir: str, num_images: int, photo_images: int, steps: int, seed: int,
         quick: bool) -> None:
    """Fashion-MNIST and photos through the link vs JPEG/WebP; writes OUT/report.html."""
    t0 = time.perf_counter()
    snrs, ratios = (QUICK_SNRS, QUICK_RATIOS) if quick else (DEMO_SNRS, DEMO_RATIOS)
    counts = QUICK_IMAGES if quick else {"fmnist": num_images, "photos": photo_images}
    evals = {}
    for data in ("fmnist", "photos"):
        methods = DEMO_METHODS[data]
        click.echo(f"[demo] {data}: {len(ratios)} ratios x {len(snrs)} SNRs x "
                   f"{len(methods)} methods")
        evals[data] = evaluate(data, "awgn", snrs, ratios, methods, counts[data],
                               steps, seed, os.path.join(out_dir, data))
    click.echo("[demo] reference PHY links")
    phy_rows = run_phy_demo(os.path.join(out_dir, "phy"),
                            max_frames=QUICK_PHY_FRAMES if quick else 128, seed=seed)
    path = write_report(evals, phy_rows, out_dir, time.perf_counter() - t0)
    click.echo(f"wrote {path}")
