"""Datasets for gsc, all available offline (nothing is downloaded at run time).

Every dataset is a ``torch.utils.data.Dataset`` whose items are dicts with at least
``"image"``: a float tensor ``[C, H, W]`` in [0, 1]. Splits are deterministic given
``seed``; see each class for its split rule and extra keys.

======================  ============================  ===============================
name                    class                         extra keys
======================  ============================  ===============================
``fmnist``              :class:`FashionMNIST`         ``label``
``photos``              :class:`PhotoCrops`           ``source``
``road``                :class:`RoadScenes`           ``mask``, ``boxes``, ...
``faces``               :class:`SyntheticFaces`       ``landmarks``, ``params``
a folder path           :class:`ImageFolderDataset`   ``label``, ``index``
======================  ============================  ===============================

Example::

    >>> from gsc_semantic.data import load_dataset
    >>> ds = load_dataset("road", "test", size=64, seed=0)
    >>> ds[0]["image"].shape, ds[0]["mask"].shape
    (torch.Size([3, 64, 64]), torch.Size([64, 64]))
"""

from __future__ import annotations

import os

from torch.utils.data import Dataset

from gsc_semantic.data._common import SPLITS, pil_to_rgb, split_items
from gsc_semantic.data.faces import (
    FACE_LANDMARKS,
    FACE_PARAM_NAMES,
    SyntheticFaces,
    render_face,
    sample_face_params,
)
from gsc_semantic.data.fmnist import FMNIST_CLASSES, FashionMNIST, read_idx
from gsc_semantic.data.folder import ImageFolderDataset
from gsc_semantic.data.photos import WALLPAPER_PHOTOS, PhotoCrops, load_photo, photo_sources
from gsc_semantic.data.road import ROAD_CLASSES, RoadScenes, render_road_scene

__all__ = [
    "DATASETS",
    "DEFAULT_SIZES",
    "SPLITS",
    "load_dataset",
    "FashionMNIST",
    "FMNIST_CLASSES",
    "read_idx",
    "PhotoCrops",
    "WALLPAPER_PHOTOS",
    "photo_sources",
    "load_photo",
    "RoadScenes",
    "ROAD_CLASSES",
    "render_road_scene",
    "SyntheticFaces",
    "FACE_LANDMARKS",
    "FACE_PARAM_NAMES",
    "render_face",
    "sample_face_params",
    "ImageFolderDataset",
    "pil_to_rgb",
    "split_items",
]

DATASETS = {
    "fmnist": FashionMNIST,
    "photos": PhotoCrops,
    "road": RoadScenes,
    "faces": SyntheticFaces,
}
#: native / default image side per dataset name (folders default to 64)
DEFAULT_SIZES = {"fmnist": 28, "photos": 64, "road": 64, "faces": 64, "folder": 64}


def load_dataset(name: str, split: str = "train", size: int | None = None, seed: int = 0,
                 **kwargs) -> Dataset:
    """Build a dataset by name (``fmnist``, ``photos``, ``road``, ``faces``) or by folder
    path (:class:`ImageFolderDataset`, which also accepts ``split="all"``). Registered names
    win: write ``./faces`` for a folder called ``faces``.

    :param size: image side; default :data:`DEFAULT_SIZES` (28 for fmnist, else 64).
    :param kwargs: passed to the dataset class (e.g. ``length`` for road/faces).

    Example::

        >>> load_dataset("fmnist", "test").size
        28
    """
    if name in DATASETS:
        return DATASETS[name](split, size=size or DEFAULT_SIZES[name], seed=seed, **kwargs)
    if not os.path.isdir(os.path.expanduser(name)):
        raise ValueError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)} or an "
                         f"existing folder of images")
    return ImageFolderDataset(name, split=split, size=size or DEFAULT_SIZES["folder"],
                              seed=seed, **kwargs)
