"""Natural photographs available offline, served as square crops split by source image.

Two collections, by the size of the crops:

* crops of 256 px and more (the photo codec's default, ``PhotoCrops(size=256)``) come only
  from originals whose shorter side is at least 1024 px, so a crop spans at most a quarter
  of the short side and is never upscaled: the 11 KDE wallpaper photographs below and 14
  photographs from the Debian packages ``lomiri-wallpapers-16.04``/``-20.04``
  (:data:`LOMIRI_PHOTOS`, chosen by eye from the 19 wallpapers there: renders, paintings and
  gradients left out), 25 sources; :func:`photo_sources` with ``large=True``;
* smaller crops (64 px, the legacy collection, 20 sources):

* 11 KDE wallpapers from the Debian package ``plasma-workspace-wallpapers`` that are
  photographs, chosen by looking at all 30 wallpapers (the other 19 are illustrations or
  abstract renders): :data:`WALLPAPER_PHOTOS`;
* 6 scikit-image bundled photographs that load offline: astronaut, coffee, chelsea, rocket,
  hubble_deep_field, and the left view of stereo_motorcycle (``cat`` is chelsea again;
  camera, coins, moon and clock are grayscale and left out);
* scikit-learn ``load_sample_images``: china, flower;
* matplotlib's ``grace_hopper.jpg`` sample.

Each photo is downscaled (Lanczos) so its shorter side is ``context`` pixels (default
``4 * size``: a 64-px crop then spans a quarter of the short side, enough to hold objects
rather than texture), cached in memory, and cropped. The split is by *source image*: a
seeded permutation of the sorted source names puts ``round(0.2 * 20) = 4`` photos in test,
3 in val and 13 in train, so no test crop comes from a photo seen in training.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from gsc_semantic.data._common import (
    check_split,
    downscale_short_side,
    pil_to_rgb,
    resize,
    split_items,
)

__all__ = ["WALLPAPER_PHOTOS", "LOMIRI_PHOTOS", "WALLPAPER_DEFAULT_DIR", "LOMIRI_DEFAULT_DIR",
           "LARGE_CROP", "photo_sources", "load_photo", "PhotoCrops"]

WALLPAPER_DEFAULT_DIR = "/usr/share/wallpapers"
LOMIRI_DEFAULT_DIR = "/usr/share/backgrounds"
#: crops of this side and larger come from the large-original collection
LARGE_CROP = 128

#: lomiri-wallpapers-16.04/-20.04 files that are photographs (originals 1365-6028 px).
LOMIRI_PHOTOS: tuple[str, ...] = (
    "Bridge_by_Sander_Klootwijk",        # bridge cables over a beach
    "Dragonfly_by_Bolly",                # branch with leaves against the sky
    "Kleiber_by_Lukas_Baubkus",          # nuthatch on a tree trunk
    "Picture_0B_by_freespace",           # half fig on a red bowl
    "Picture_1A_by_freespace",           # paint brushes
    "Wine_by_Jakkub_Mede",               # room with a drum and a table
    "aitzgorri_by_Aitzol_Berasategi",    # mountain range over autumn forest
    "free_by_Peter_Nerlich",             # toy bird under lamps
    "friends_by_Aitzol_Berasategi",      # two dogs at a wooden window
    "greentock_by_Peter_Nerlich",        # wall clock, close up
    "life_by_Aitzol_Berasategi",         # forest stream over rocks
    "picosdeeuropa_by_Aitzol_Berasategi",  # mountain path and peaks
    "seeding_by_Clements_Engelhardt",    # dandelion clocks at sunset
    "sunset_by_Aitzol_Berasategi",       # sun over hills
)

#: KDE wallpapers that are photographs (curated by eye; see the module docstring).
WALLPAPER_PHOTOS: tuple[str, ...] = (
    "BytheWater",    # wooden jetty, lake, shallow depth of field
    "ColdRipple",    # pier into a misty lake, near monochrome
    "ColorfulCups",  # stacked plastic cups from above
    "DarkestHour",   # foggy lake with islands at dusk
    "EveningGlow",   # rowing boats on a shore at sunset
    "FallenLeaf",    # autumn leaves on grass, macro
    "Grey",          # curved facade slats, black and white architecture
    "Kite",          # blue sky with clouds and a kite
    "OneStandsOut",  # pine seedlings from above
    "Path",          # forest path between conifers
    "summer_1am",    # lake at dusk with reeds
)

# scikit-image data files (what skimage.data.<name>() reads; read directly, no import)
_SKIMAGE_PHOTOS = {
    "astronaut": "astronaut.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "stereo_motorcycle": "motorcycle_left.png",
}
_SIZE_RE = re.compile(r"^(\d+)x(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)
_CACHE: dict[tuple[str, int], torch.Tensor] = {}


def _wallpaper_dir() -> str:
    return os.environ.get("GSC_WALLPAPER_DIR", WALLPAPER_DEFAULT_DIR)


def _wallpaper_file(name: str, short_side: int) -> str:
    """The smallest landscape rendition of a wallpaper whose short side >= ``short_side``
    (else the largest); renditions of one wallpaper are one source image."""
    folder = os.path.join(_wallpaper_dir(), name, "contents", "images")
    found = []
    for path in glob.glob(os.path.join(folder, "*")):
        m = _SIZE_RE.match(os.path.basename(path))
        if m:
            w, h = int(m.group(1)), int(m.group(2))
            if w >= h:
                found.append((w * h, min(w, h), path))
    if not found:
        raise FileNotFoundError(
            f"wallpaper photo {name!r} not found under {folder}; install the Debian package "
            f"plasma-workspace-wallpapers (or set GSC_WALLPAPER_DIR)")
    found.sort()
    big_enough = [f for f in found if f[1] >= short_side]
    return (big_enough[0] if big_enough else found[-1])[2]


def _package_file(package: str, *parts: str) -> str:
    """Path of a data file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"photo source needs the Python package {package!r}")
    path = os.path.join(list(spec.submodule_search_locations)[0], *parts)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"bundled photo {path} is missing")
    return path


def _file_loader(package: str, *parts: str) -> Callable[[int], Image.Image]:
    def load(short_side: int) -> Image.Image:
        with Image.open(_package_file(package, *parts)) as im:
            im.draft("RGB", (short_side, short_side))  # fast JPEG shrink-on-load
            return im.copy()
    return load


def _wallpaper_loader(name: str) -> Callable[[int], Image.Image]:
    def load(short_side: int) -> Image.Image:
        with Image.open(_wallpaper_file(name, short_side)) as im:
            im.draft("RGB", (short_side, short_side))  # fast JPEG shrink-on-load
            return im.copy()
    return load


def _lomiri_loader(name: str) -> Callable[[int], Image.Image]:
    def load(short_side: int) -> Image.Image:
        folder = os.environ.get("GSC_LOMIRI_DIR", LOMIRI_DEFAULT_DIR)
        path = os.path.join(folder, f"{name}.jpg")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"photo {path} not found; install the Debian packages lomiri-wallpapers-16.04 "
                f"and lomiri-wallpapers-20.04 (or set GSC_LOMIRI_DIR)")
        with Image.open(path) as im:
            im.draft("RGB", (short_side, short_side))  # fast JPEG shrink-on-load
            return im.copy()
    return load


def _large_registry() -> dict[str, Callable[[int], Image.Image]]:
    reg = {f"wallpaper:{n}": _wallpaper_loader(n) for n in WALLPAPER_PHOTOS}
    reg.update({f"lomiri:{n}": _lomiri_loader(n) for n in LOMIRI_PHOTOS})
    return reg


def _registry() -> dict[str, Callable[[int], Image.Image]]:
    reg: dict[str, Callable[[int], Image.Image]] = _large_registry()
    for n, fname in _SKIMAGE_PHOTOS.items():
        reg[f"skimage:{n}"] = _file_loader("skimage", "data", fname)
    for n in ("china", "flower"):
        reg[f"sklearn:{n}"] = _file_loader("sklearn", "datasets", "images", f"{n}.jpg")
    reg["matplotlib:grace_hopper"] = _file_loader("matplotlib", "mpl-data", "sample_data",
                                                  "grace_hopper.jpg")
    return reg


def photo_sources(large: bool = False) -> tuple[str, ...]:
    """Sorted names of the photo sources (``"wallpaper:Path"``, ``"skimage:coffee"`` ...):
    the legacy 64-px collection, or with ``large`` the originals of >= 1024 px that crops of
    :data:`LARGE_CROP` px and more come from.

    Example::

        >>> len(photo_sources()), len(photo_sources(large=True))
        (20, 25)
    """
    if large:
        return tuple(sorted(_large_registry()))
    return tuple(n for n in sorted(_registry()) if not n.startswith("lomiri:"))


def load_photo(name: str, short_side: int) -> torch.Tensor:
    """Photo ``name`` as a uint8 ``[3, H, W]`` tensor with shorter side ``short_side``
    (or its native size when smaller); cached in memory."""
    key = (name, int(short_side))
    if key not in _CACHE:
        reg = _registry()
        if name not in reg:
            raise ValueError(f"unknown photo source {name!r}")
        img = downscale_short_side(pil_to_rgb(reg[name](short_side)), short_side)
        arr = np.asarray(img, dtype=np.uint8)
        _CACHE[key] = torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()
    return _CACHE[key]


class PhotoCrops(Dataset):
    """Square crops of natural photographs, split by source photo (see module docstring;
    crops of :data:`LARGE_CROP` px and more come from the large-original collection).

    * ``train``: random crops: window side ``size * 2**u``, ``u ~ U(-0.5, 0.5)`` (scale
      jitter), uniform position, horizontal flip with probability 1/2, resized to ``size``;
      drawn from ``numpy.random.default_rng([seed, epoch, index])`` so they are reproducible
      and change with :meth:`set_epoch`. ``len`` = ``crops_per_image`` (default 256) x photos.
    * ``val`` / ``test``: deterministic non-overlapping ``size`` x ``size`` crops on a grid
      centred in each photo (at ``size=64``: 16 to 24 crops per photo).

    :param context: shorter side, in pixels, that photos are downscaled to before cropping
        (default ``4 * size``).
    :output: ``{"image": float [3, size, size] in [0, 1], "source": int64}`` where
        ``source`` indexes :attr:`source_names`.

    Example::

        >>> ds = PhotoCrops("test", size=64)     # 4 photos never seen by "train"
        >>> len(ds.source_names), ds[0]["image"].shape
        (4, torch.Size([3, 64, 64]))
    """

    channels = 3

    def __init__(self, split: str = "train", size: int = 64, seed: int = 0,
                 context: int | None = None, crops_per_image: int | None = None,
                 val_fraction: float = 0.15, test_fraction: float = 0.2) -> None:
        self.split = check_split(split)
        self.size = int(size)
        self.seed = seed
        self.context = int(context or 4 * self.size)
        if self.context < self.size:
            raise ValueError(f"context ({self.context}) must be >= size ({self.size})")
        self.epoch = 0
        names = photo_sources(large=self.size >= LARGE_CROP)
        parts = split_items(len(names), seed, val_fraction, test_fraction)
        self.source_names = tuple(names[i] for i in parts[split])
        self._photos = [load_photo(n, self.context) for n in self.source_names]
        if split == "train":
            self.crops_per_image = int(crops_per_image or 256)
            self._grid: list[tuple[int, int, int]] = []
        else:
            self._grid = []
            for k, ph in enumerate(self._photos):
                h, w = ph.shape[-2:]
                ny, nx = h // self.size, w // self.size
                y0, x0 = (h - ny * self.size) // 2, (w - nx * self.size) // 2
                cells = [(k, y0 + r * self.size, x0 + c * self.size)
                         for r in range(ny) for c in range(nx)]
                if crops_per_image is not None:
                    cells = cells[:crops_per_image]
                self._grid.extend(cells)
            self.crops_per_image = crops_per_image

    def set_epoch(self, epoch: int) -> None:
        """Select the random-crop stream of ``epoch`` (train split only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.split == "train":
            return self.crops_per_image * len(self._photos)
        return len(self._grid)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        if self.split != "train":
            k, y, x = self._grid[i]
            crop = self._photos[k][:, y:y + self.size, x:x + self.size].float().div(255.0)
            return {"image": crop, "source": torch.tensor(k)}
        k = i % len(self._photos)
        photo = self._photos[k]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        h, w = photo.shape[-2:]
        side = int(round(self.size * 2.0 ** rng.uniform(-0.5, 0.5)))
        side = max(1, min(side, h, w))
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        crop = resize(photo[:, y:y + side, x:x + side].float().div(255.0),
                      (self.size, self.size))
        if rng.random() < 0.5:
            crop = crop.flip(-1)
        return {"image": crop, "source": torch.tensor(k)}
