"""Any folder of images (ImageFolder style, recursive)."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from gsc_semantic.data._common import check_split, pil_to_rgb, resize, split_items

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                    ".ppm", ".pgm", ".pbm")


def _scan(root: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(found)


class ImageFolderDataset(Dataset):
    """Every image under ``root`` (recursively), converted to RGB.

    Labels follow torchvision's ImageFolder: the sorted names of the top-level sub-folders
    are the classes (:attr:`classes`); images directly in ``root`` get label ``-1``.
    Grayscale, 16-bit, palette and RGBA images are converted to RGB (transparency over
    white). At construction every file header is read: an unreadable file, or one whose
    shorter side is below ``min_size`` (default ``size``), raises one ``ValueError`` naming
    the file. Nothing is upscaled.

    Splits: ``"all"`` (every image, sorted by path) or ``train``/``val``/``test``, a
    partition of the files by a permutation seeded with ``seed`` (``val_fraction``,
    ``test_fraction``). Images are resized so the shorter side is ``size`` (antialiased)
    and centre-cropped to ``size`` x ``size``; ``train`` crops at a random position and
    flips horizontally with probability 1/2 (``numpy.random.default_rng([seed, epoch, i])``).

    :output: ``{"image": float [3, size, size] in [0, 1], "label": int64, "index": int64}``
        (``index`` into :attr:`files`).

    Example::

        >>> ds = ImageFolderDataset("my_photos/", split="all", size=64)
        >>> ds[0]["image"].shape, ds.files[0]
        (torch.Size([3, 64, 64]), 'cats/001.jpg')
    """

    channels = 3

    def __init__(self, root: str, split: str = "all", size: int = 64, seed: int = 0,
                 min_size: int | None = None, val_fraction: float = 0.1,
                 test_fraction: float = 0.1) -> None:
        self.split = check_split(split, ("all", "train", "val", "test"))
        self.root = os.path.abspath(os.path.expanduser(root))
        self.size = int(size)
        self.seed = seed
        self.epoch = 0
        self.min_size = int(min_size if min_size is not None else size)
        if not os.path.isdir(self.root):
            raise ValueError(f"image folder {self.root} does not exist or is not a folder")
        files = _scan(self.root)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under "
                             f"{self.root}")
        for rel in files:
            self._check(rel)
        tops = sorted({f.split(os.sep)[0] for f in files if os.sep in f})
        self.classes = tuple(tops)
        cls_index = {c: i for i, c in enumerate(tops)}
        if split != "all":
            keep = split_items(len(files), seed, val_fraction, test_fraction)[split]
            files = [files[i] for i in keep]
        self.files = tuple(files)
        self.labels = torch.tensor(
            [cls_index[f.split(os.sep)[0]] if os.sep in f else -1 for f in files],
            dtype=torch.int64)

    def _check(self, rel: str) -> None:
        path = os.path.join(self.root, rel)
        try:
            with Image.open(path) as im:
                w, h = im.size
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise ValueError(f"cannot read image {path}: {err}") from err
        if min(w, h) < self.min_size:
            raise ValueError(f"image {path} is {w}x{h} pixels, smaller than the "
                             f"{self.min_size}-pixel minimum (size={self.size})")

    def set_epoch(self, epoch: int) -> None:
        """Select the random-crop stream of ``epoch`` (train split only)."""
        self.epoch = int(epoch)

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` at full resolution, float ``[3, H, W]`` in [0, 1]."""
        path = os.path.join(self.root, self.files[i])
        try:
            with Image.open(path) as im:
                im.load()
                rgb = pil_to_rgb(im)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise ValueError(f"cannot read image {path}: {err}") from err
        arr = np.asarray(rgb, dtype=np.uint8)
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        x = self.load(i)
        h, w = x.shape[-2:]
        s = self.size / min(h, w)
        nh, nw = max(self.size, round(h * s)), max(self.size, round(w * s))
        x = resize(x, (nh, nw))
        if self.split == "train":
            rng = np.random.default_rng([self.seed, self.epoch, i])
            y0 = int(rng.integers(0, nh - self.size + 1))
            x0 = int(rng.integers(0, nw - self.size + 1))
            flip = rng.random() < 0.5
        else:
            y0, x0, flip = (nh - self.size) // 2, (nw - self.size) // 2, False
        x = x[:, y0:y0 + self.size, x0:x0 + self.size]
        if flip:
            x = x.flip(-1)
        return {"image": x.contiguous(), "label": self.labels[i],
                "index": torch.tensor(i, dtype=torch.int64)}
