"""Helpers shared by the datasets: split bookkeeping and image conversion."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SPLITS = ("train", "val", "test")
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def check_split(split: str, allowed: tuple[str, ...] = SPLITS) -> str:
    if split not in allowed:
        raise ValueError(f"split must be one of {', '.join(allowed)}, got {split!r}")
    return split


def split_items(n: int, seed: int, val_fraction: float, test_fraction: float
                ) -> dict[str, np.ndarray]:
    """Deterministic partition of ``range(n)`` into train/val/test index arrays by ``seed``.

    ``round(n * fraction)`` items go to val and to test (at least one each when ``n >= 3``
    and the fraction is positive); the rest is train. Indices inside each split are sorted.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1
            and val_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions val={val_fraction}, test={test_fraction}")
    perm = np.random.default_rng(seed).permutation(n)

    def count(frac: float) -> int:
        k = int(round(n * frac))
        return max(k, 1) if (frac > 0 and n >= 3) else k

    n_test, n_val = count(test_fraction), count(val_fraction)
    if n_test + n_val >= n:
        raise ValueError(f"{n} items are too few for val={val_fraction}, test={test_fraction}")
    return {
        "test": np.sort(perm[:n_test]),
        "val": np.sort(perm[n_test:n_test + n_val]),
        "train": np.sort(perm[n_test + n_val:]),
    }


def pil_to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)
               ) -> Image.Image:
    """Convert any PIL image (grayscale, 16-bit, palette, RGBA, CMYK ...) to 8-bit RGB.

    Transparency is composited onto ``background`` (white); 16-bit and float grayscale are
    rescaled to 0..255 (16-bit by 1/257, float/32-bit by their maximum).
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 257.0
        elif arr.max() > 255:
            arr = arr * (255.0 / arr.max())
        img = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        img = img.convert("RGBA")
        base = Image.new("RGBA", img.size, (*background, 255))
        return Image.alpha_composite(base, img).convert("RGB")
    return img.convert("RGB")


def uint8_to_float(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``[H, W, C]`` / ``[H, W]`` uint8 array or ``[C, H, W]`` uint8 tensor -> float [C,H,W]."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
    return x.float().div_(255.0)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (antialiased when shrinking) resize of ``[C, H, W]`` float images."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    y = F.interpolate(x.unsqueeze(0), size=size, mode="bilinear", align_corners=False,
                      antialias=True)
    return y.squeeze(0).clamp_(0.0, 1.0)


def downscale_short_side(img: Image.Image, short_side: int) -> Image.Image:
    """Shrink so that the shorter side is ``short_side`` (never enlarges), Lanczos filter."""
    w, h = img.size
    if min(w, h) <= short_side:
        return img
    s = short_side / min(w, h)
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
