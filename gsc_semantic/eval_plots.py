"""Figures and tables of ``gsc eval``: metric-vs-SNR curves (95 % CI bars), image grids, and
the markdown tables of ``eval.md`` (mean ± CI per cell, target pass/fail, cliff sizes)."""

from __future__ import annotations

import os
from collections.abc import Callable

import matplotlib
import numpy as np
import torch
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_curves", "save_grids", "tile", "markdown_tables"]

_LABELS = {"psnr": "PSNR [dB] ↑", "ms_ssim": "MS-SSIM ↑",
           "perceptual": "EfficientNet-Lite2 feature distance ↓",
           "consistency": "semantic consistency ↑"}


def plot_curves(doc: dict, rho: float, path: str) -> None:
    """Four panels (PSNR, MS-SSIM, perceptual distance, consistency) against SNR, with the
    95 % CI over channel trials as error bars when there are several trials."""
    rows = [r for r in doc["rows"] if r["ratio"] == rho]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, metric in zip(axes, _LABELS, strict=True):
        for m in doc["config"]["methods"]:
            pts = sorted((r["snr_db"], r[metric], r.get(f"{metric}_ci95") or 0.0)
                         for r in rows if r["method"] == m)
            x, y, ci = zip(*pts, strict=True)
            ax.errorbar(x, y, yerr=ci, fmt="o-" if m.startswith("gsc") else ".--", capsize=2,
                        label=m)
        ax.set_xlabel("Es/N0 [dB]")
        ax.set_title(_LABELS[metric], fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    c = doc["config"]
    from .eval_targets import ratio_label

    trials = f", {c['trials']} trials (95 % CI)" if c.get("trials", 1) > 1 else ""
    fig.suptitle(f"{c['data']} over {c['channel']}, ρ = {ratio_label(rho)}{trials}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tile(rows: list[torch.Tensor], scale: int = 2) -> Image.Image:
    """Rows of [N, C, H, W] images in [0, 1] -> one RGB PIL image."""
    lines = []
    for imgs in rows:
        x = imgs.clamp(0, 1)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        lines.append(torch.cat(list(x), dim=2))
    grid = (torch.cat(lines, dim=1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    im = Image.fromarray(grid)
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST)


def save_grids(originals: torch.Tensor, grids: dict, methods: list[str], out_dir: str,
               tag: Callable[[float], str]) -> list[str]:
    """One PNG per (ratio, SNR): originals, then one row per method (in ``methods`` order)."""
    paths = []
    for rho, snr in sorted({(k[0], k[1]) for k in grids}):
        rows = [originals] + [grids[(rho, snr, m)] for m in methods]
        path = os.path.join(out_dir, f"grid_{tag(rho)}_snr{snr:g}.png")
        tile(rows).save(path)
        paths.append(path)
    return paths


_TARGET_TEXT = {
    "perceptual_below_every_baseline": "feature distance below every baseline, -5..20 dB",
    "perceptual_30pct_lower_at_low_snr": "feature distance >= 30 % lower, SNR <= 5 dB",
    "perceptual_below_every_codec": "feature distance below JPEG/WebP/AVIF, -5..20 dB",
    "perceptual_30pct_below_codecs_at_low_snr": "feature distance >= 30 % below the codecs, "
                                                "SNR <= 5 dB",
    "perceptual_below_every_adaptive": "feature distance below the resolution-adaptive "
                                       "codecs, -5..20 dB",
    "perceptual_15pct_below_adaptive_at_low_snr": "feature distance >= 15 % below the "
                                                  "resolution-adaptive codecs, SNR <= 5 dB",
    "no_cliff": "no cliff: adjacent-point change <= 15 % of range (1 dB steps)",
    "consistency_from_0db": "semantic consistency >= 0.8 at SNR >= 0 dB",
    "perceptual_below_deepjscc": "feature distance below DeepJSCC / DeepJSCC-Q, -5..20 dB",
}
_JSCC_TEXT = {
    "psnr_above_codecs_at_low_snr": "PSNR above JPEG/WebP/AVIF + LDPC, SNR <= 5 dB",
    "no_cliff": "no PSNR cliff: adjacent-point change <= 15 % of range (1 dB steps)",
    "psnr_vs_capacity_at_20db": "PSNR at 20 dB vs the capacity bound",
}


def _jscc_verdict(target: str, res: dict) -> str:
    word = "n/a" if res["pass"] is None else ("**pass**" if res["pass"] else "**FAIL**")
    if target == "psnr_above_codecs_at_low_snr" and res["margin_db_by_snr_db"]:
        worst = min(res["margin_db_by_snr_db"].values())
        return f"{word} (smallest margin {worst:+.2f} dB)"
    if target == "no_cliff":
        lo, hi = res["between_db"] or (None, None)
        where = f", {lo:g}→{hi:g} dB" if lo is not None else ""
        return f"{word} (max {100 * res['max_fraction']:.0f} %{where})"
    if target == "psnr_vs_capacity_at_20db" and res["psnr_db"] is not None:
        cap = res["capacity_psnr_db"]
        return (f"{res['psnr_db']:.2f} dB" + (f" vs {cap:.2f} dB ({res['difference_db']:+.2f})"
                                             if cap is not None else " (no capacity row)"))
    return word


def _pm(value: float, ci: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" + ("" if ci is None else f" ± {ci:.{digits}f}")


def _verdict(target: str, res: dict) -> str:
    word = "n/a" if res["pass"] is None else ("**pass**" if res["pass"] else "**FAIL**")
    if target == "no_cliff" and res["max_fraction"] is not None:
        lo, hi = res["between_db"] or (None, None)
        where = f", {lo:g}→{hi:g} dB" if lo is not None else ""
        return f"{word} (max {100 * res['max_fraction']:.0f} % on {res['worst_metric']}{where})"
    if target == "consistency_from_0db" and res["min"] is not None:
        return f"{word} (min {res['min']:.2f})"
    if "reduction_by_snr_db" in res and res["reduction_by_snr_db"]:
        worst = min(res["reduction_by_snr_db"].values())
        return f"{word} (worst reduction {100 * worst:.0f} %)"
    if target.startswith("perceptual_below") and res["beaten_by"]:
        return f"{word} (beaten at " + ", ".join(
            f"{snr} dB by {'/'.join(ms)}" for snr, ms in res["beaten_by"].items()) + ")" \
            + _margin_text(res)
    if target.startswith("perceptual_below"):
        return word + _margin_text(res)
    fails = res.get("failing_snr_db") or []
    return word + (f" (fails at {', '.join(f'{s:g}' for s in fails)} dB)" if fails else "")


def _margin_text(res: dict) -> str:
    """``; margin -5 dB 31 %, 0 dB 28 %`` (gsc's reduction against the best of the
    baselines at each SNR), or nothing."""
    margins = res.get("margin_by_snr_db") or {}
    if not margins or not res.get("baselines"):
        return ""
    return "; margin " + ", ".join(f"{s} dB {100 * v:.0f} %" for s, v in margins.items())


def _resolution_table(methods: list[str], rows: list[dict], snrs: list[float]) -> list[str]:
    """Median coded side (and images not sent) of each resolution-adaptive baseline."""
    out = []
    for m in (m for m in methods if m.endswith("-ra")):
        cell = {r["snr_db"]: r.get("resolution") for r in rows if r["method"] == m}
        out.append(f"| {m} | " + " | ".join(
            "—" if not v or v["median_side"] is None else
            f"{v['median_side']:g} px" + (f" ({v['not_sent']} not sent)" if v["not_sent"]
                                          else "")
            for v in (cell.get(s) for s in snrs)) + " |")
    if not out:
        return []
    return ["\ncoded resolution of the resolution-adaptive codecs (median shorter side; "
            "chosen by MSE at the transmitter):\n",
            "| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |",
            "|---|" + "---|" * len(snrs), *out]


def markdown_tables(doc: dict) -> str:
    """``eval.md``: per ratio, a method x SNR table (feature distance ± 95 % CI / PSNR dB /
    consistency ± CI / delivered) and the gsc target verdicts computed in ``doc["summary"]``.

    >>> doc = {"config": {"data": "d", "channel": "awgn", "trials": 1, "num_images": 1,
    ...        "methods": ["gsc"]}, "summary": {}, "rows": [{"method": "gsc", "ratio": 0.5,
    ...        "snr_db": 0.0, "perceptual": 0.5, "psnr": 20.0, "consistency": 1.0,
    ...        "delivered": 1.0}]}
    >>> "| gsc | 0.50 / 20.0 / 1.00 / 1.00 |" in markdown_tables(doc)
    True
    """
    from .eval_targets import ratio_label

    c = doc["config"]
    parts = []
    for rho in dict.fromkeys(r["ratio"] for r in doc["rows"]):
        rows = [r for r in doc["rows"] if r["ratio"] == rho]
        snrs = sorted({r["snr_db"] for r in rows})
        label = ratio_label(rho)
        parts.append(f"{c['data']}, {c['channel']}, ρ = {label}, {c['trials']} trials x "
                     f"{c['num_images']} images: feature distance ↓ ± 95 % CI / PSNR dB / "
                     "consistency ± CI / delivered\n")
        parts.append("| method | " + " | ".join(f"{s:g} dB" for s in snrs) + " |")
        parts.append("|---|" + "---|" * len(snrs))
        for m in c["methods"]:
            cell = {r["snr_db"]: r for r in rows if r["method"] == m}
            parts.append(f"| {m} | " + " | ".join(
                f"{_pm(r['perceptual'], r.get('perceptual_ci95'), 2)} / {r['psnr']:.1f} / "
                f"{_pm(r['consistency'], r.get('consistency_ci95'), 2)} / "
                f"{r['delivered']:.2f}" for r in (cell[s] for s in snrs)) + " |")
        parts += _resolution_table(c["methods"], rows, snrs)
        summary = doc["summary"].get(label, {})
        for name, key in (("gsc", "targets"), *((m, f"targets_{m}") for m in
                                                 ("gsc-mse", "gsc-teacher", "gsc-student",
                                                  "gsc-bicubic"))):
            targets = summary.get(key)
            if targets:
                parts.append(f"\n{name} targets, ρ = {label}:\n")
                parts.append("| target | result |")
                parts.append("|---|---|")
                parts += [f"| {_TARGET_TEXT[k]} | {_verdict(k, v)} |"
                          for k, v in targets.items()]
        for name in ("deepjscc", "deepjscc-q"):
            if summary.get(name):
                parts.append(f"\n{name} criteria, ρ = {label}:\n")
                parts.append("| criterion | result |")
                parts.append("|---|---|")
                parts += [f"| {_JSCC_TEXT[k]} | {_jscc_verdict(k, v)} |"
                          for k, v in summary[name].items()]
        parts.append("")
    return "\n".join(parts) + "\n"
