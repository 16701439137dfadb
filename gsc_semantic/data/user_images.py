"""A user's own pictures: files or folders of PNG/JPEG (any size and aspect, >= 64 px a side).

:func:`load_user_images` reads every image it is given (folders recursively, sorted by
path), converts it to RGB and either keeps its own size (``size=None``, what ``gsc send``
codes) or **centre-crops it to a square and resizes it** to ``size`` x ``size`` (antialiased
bicubic; what ``gsc eval --data DIR`` compares at, 256 by default). Files that cannot be
read, or whose shorter side is below ``min_side``, are skipped and named in the result; an
input that leaves no image at all raises :class:`~bridge.common.ConfigError` (one line for
the CLI).

Example::

    >>> from gsc_semantic.data.user_images import load_user_images
    >>> got = load_user_images(["my_photos/"], size=256)          # doctest: +SKIP
    >>> got.images[0].shape, got.skipped                          # doctest: +SKIP
    (torch.Size([3, 256, 256]), [('my_photos/tiny.png', 'only 10x10 px; needs >= 64')])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from bridge.common import ConfigError
from gsc_semantic.data._common import pil_to_rgb
from gsc_semantic.data.folder import IMAGE_EXTENSIONS

__all__ = ["UserImages", "load_user_images", "MIN_SIDE"]

MIN_SIDE = 64


@dataclass
class UserImages:
    """Images as float [3, H, W] in [0, 1], their file names, and what was skipped why."""

    images: list[torch.Tensor]
    names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def batch(self) -> torch.Tensor:
        """[N, 3, H, W] (all images must have one size)."""
        return torch.stack(self.images)


def _files(paths: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    found, skipped = [], []
    for p in paths:
        p = os.path.expanduser(p)
        if os.path.isdir(p):
            inside = []
            for dirpath, dirnames, filenames in os.walk(p, followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                inside += [os.path.join(dirpath, f) for f in filenames
                           if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
            if not inside:
                skipped.append((p, "no image files in this folder"))
            found += sorted(inside)
        elif os.path.isfile(p):
            found.append(p)
        else:
            skipped.append((p, "no such file or folder"))
    return found, skipped


def _square(img: torch.Tensor, size: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = img[:, y0:y0 + s, x0:x0 + s]
    if s == size:
        return crop
    return F.interpolate(crop[None], size=(size, size), mode="bicubic", align_corners=False,
                         antialias=s > size)[0].clamp(0, 1)


def load_user_images(paths: list[str] | str, size: int | None = 256,
                     min_side: int = MIN_SIDE, max_images: int | None = None) -> UserImages:
    """Read ``paths`` (files and folders); see the module notes.

    :param size: Square side to centre-crop and resize to; ``None`` keeps each image's size.
    :param min_side: Smallest accepted shorter side in pixels.
    :param max_images: Stop after this many usable images.
    """
    paths = [paths] if isinstance(paths, str) else list(paths)
    if not paths:
        raise ConfigError("no image given")
    files, skipped = _files(paths)
    images, names = [], []
    for f in files:
        if max_images is not None and len(images) >= max_images:
            break
        try:
            with Image.open(f) as im:
                im.load()
                rgb = pil_to_rgb(im)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            skipped.append((f, f"not a readable image ({type(err).__name__})"))
            continue
        w, h = rgb.size
        if min(w, h) < min_side:
            skipped.append((f, f"only {w}x{h} px; needs >= {min_side} a side"))
            continue
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
        images.append(_square(x, size) if size else x.contiguous())
        names.append(f)
    if not images:
        why = "; ".join(f"{p}: {r}" for p, r in skipped[:3]) or "nothing found"
        raise ConfigError(f"no usable image in {', '.join(paths)} ({why})")
    return UserImages(images, names, skipped)
