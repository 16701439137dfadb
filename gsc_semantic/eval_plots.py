"""Figures of ``gsc eval``: metric-vs-SNR curves and image grids."""

from __future__ import annotations

import os
from collections.abc import Callable

import matplotlib
import numpy as np
import torch
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_curves", "save_grids", "tile"]

_LABELS = {"psnr": "PSNR [dB] ↑", "ms_ssim": "MS-SSIM ↑",
           "perceptual": "EfficientNet-Lite2 feature distance ↓",
           "consistency": "semantic consistency ↑"}


def plot_curves(doc: dict, rho: float, path: str) -> None:
    """Four panels (PSNR, MS-SSIM, perceptual distance, consistency) against SNR."""
    rows = [r for r in doc["rows"] if r["ratio"] == rho]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, metric in zip(axes, _LABELS, strict=True):
        for m in doc["config"]["methods"]:
            pts = sorted((r["snr_db"], r[metric]) for r in rows if r["method"] == m)
            ax.plot(*zip(*pts, strict=True), "o-" if m == "gsc" else ".--", label=m)
        ax.set_xlabel("Es/N0 [dB]")
        ax.set_title(_LABELS[metric], fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    c = doc["config"]
    fig.suptitle(f"{c['data']} over {c['channel']}, ρ = {rho:.4g}", fontsize=10)
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
