"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (gzip idx files)."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import torch
from torch.utils.data import Dataset

from gsc_semantic.data._common import check_split, resize

__all__ = ["FMNIST_CLASSES", "FMNIST_DEFAULT_DIR", "read_idx", "load_fmnist_arrays",
           "FashionMNIST"]

FMNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot")
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}
_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def read_idx(path: str) -> np.ndarray:
    """Read an idx file (optionally gzip-compressed): magic ``00 00 <dtype> <ndim>``, then
    ``ndim`` big-endian uint32 sizes, then the data.

    Example::

        >>> labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
        >>> labels.shape, labels.dtype
        ((10000,), dtype('uint8'))
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    offset = 4 + 4 * ndim
    if len(raw) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: header says {dims} but the file holds "
                         f"{len(raw) - offset} data bytes")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(dims).astype(
        dtype.newbyteorder("="))


def fmnist_dir(root: str | None = None) -> str:
    return root or os.environ.get("GSC_FMNIST_DIR") or FMNIST_DEFAULT_DIR


def load_fmnist_arrays(part: str, root: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images [N, 28, 28] uint8, labels [N] int64)`` of the official ``"train"`` (60 000)
    or ``"test"`` (10 000) part; cached in memory."""
    root = fmnist_dir(root)
    key = (os.path.abspath(root), part)
    if key not in _CACHE:
        img_name, lbl_name = _FILES[part]
        paths = [os.path.join(root, n) for n in (img_name, lbl_name)]
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(
                    f"Fashion-MNIST file {p} not found; install the Debian package "
                    f"dataset-fashion-mnist or set GSC_FMNIST_DIR to a folder holding "
                    f"{img_name} and {lbl_name}")
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"Fashion-MNIST files in {root} disagree: images "
                             f"{images.shape}, labels {labels.shape}")
        _CACHE[key] = (images, labels.astype(np.int64))
    return _CACHE[key]


class FashionMNIST(Dataset):
    """Fashion-MNIST (Xiao et al. 2017), 10 classes of 28x28 grayscale clothing images.

    Splits: ``test`` is the official 10 000-image test set; ``val`` is ``val_size`` images
    drawn from the official 60 000 training images by a permutation seeded with ``seed``;
    ``train`` is the rest. Read from the Debian idx files (``GSC_FMNIST_DIR`` or ``root``
    overrides the folder); nothing is downloaded.

    :param size: output side; 28 is native, other sizes are bilinear resizes.
    :output: ``{"image": float [1, size, size] in [0, 1], "label": int64}``

    Example::

        >>> ds = FashionMNIST("val", seed=0)
        >>> len(ds), ds[0]["image"].shape
        (5000, torch.Size([1, 28, 28]))
    """

    classes = FMNIST_CLASSES
    num_classes = len(FMNIST_CLASSES)
    channels = 1

    def __init__(self, split: str = "train", size: int = 28, seed: int = 0,
                 val_size: int = 5000, root: str | None = None) -> None:
        self.split = check_split(split)
        self.size = int(size)
        self.seed = seed
        part = "test" if split == "test" else "train"
        images, labels = load_fmnist_arrays(part, root)
        if split == "test":
            idx = np.arange(len(images))
        else:
            if not 0 < val_size < len(images):
                raise ValueError(f"val_size must be in 1..{len(images) - 1}, got {val_size}")
            perm = np.random.default_rng(seed).permutation(len(images))
            idx = np.sort(perm[:val_size] if split == "val" else perm[val_size:])
        self._images = torch.from_numpy(images)
        self._labels = torch.from_numpy(labels)
        self.indices = torch.from_numpy(idx)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        j = self.indices[i]
        x = self._images[j].unsqueeze(0).float().div(255.0)
        if self.size != x.shape[-1]:
            x = resize(x, (self.size, self.size))
        return {"image": x, "label": self._labels[j]}
