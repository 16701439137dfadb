"""Procedural road scenes with exact ground truth (class mask and object boxes).

A perspective road (straight or curved, 1 to 4 lanes, dashed lane markings, optional solid
edge lines, sidewalks), sky, horizon clutter (buildings or trees), vehicles (body, windows,
wheels, lights) and pedestrians (head, torso, legs), all sized by perspective. Drawn with
Pillow at ``supersample`` x the output size, then box-filtered down; the class mask and the
instance map are drawn with the same polygons and sampled at the output pixel centres.

Classes (:data:`ROAD_CLASSES`): 0 background (sky, ground, sidewalk, clutter), 1 road,
2 lane marking, 3 vehicle, 4 pedestrian. Boxes are the visible extent (after occlusion) of
each vehicle/pedestrian in the output mask.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from gsc_semantic.data._common import SPLIT_IDS, check_split

__all__ = ["ROAD_CLASSES", "BACKGROUND", "ROAD", "LANE", "VEHICLE", "PEDESTRIAN",
           "render_road_scene", "RoadScenes"]

ROAD_CLASSES = ("background", "road", "lane", "vehicle", "pedestrian")
BACKGROUND, ROAD, LANE, VEHICLE, PEDESTRIAN = range(5)
_DEFAULT_LENGTH = {"train": 20000, "val": 1000, "test": 1000}


def _rgb(c) -> tuple[int, int, int]:
    return tuple(int(np.clip(v, 0, 255)) for v in c)


class _Canvas:
    """Image + class mask + instance map drawn with identical geometry."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.img = Image.new("RGB", (size, size))
        self.cls = Image.new("L", (size, size), BACKGROUND)
        self.inst = Image.new("L", (size, size), 0)
        self.d_img = ImageDraw.Draw(self.img)
        self.d_cls = ImageDraw.Draw(self.cls)
        self.d_inst = ImageDraw.Draw(self.inst)

    def polygon(self, pts, color, cls: int | None, inst: int | None = None) -> None:
        # continuous coordinates -> PIL pixel-centre coordinates
        pts = [(float(x) - 0.5, float(y) - 0.5) for x, y in pts]
        self.d_img.polygon(pts, fill=_rgb(color))
        if cls is not None:
            self.d_cls.polygon(pts, fill=cls)
        if inst is not None:
            self.d_inst.polygon(pts, fill=inst)

    def rect(self, x0, y0, x1, y1, color, cls, inst=None) -> None:
        self.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], color, cls, inst)

    def ellipse(self, cx, cy, rx, ry, color, cls, inst=None, n: int = 24) -> None:
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        self.polygon(list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t), strict=True)),
                     color, cls, inst)


def render_road_scene(rng: np.random.Generator, size: int = 64, supersample: int = 4,
                      max_objects: int = 8) -> dict[str, np.ndarray]:
    """Draw one random road scene.

    :return: ``image`` uint8 ``[size, size, 3]``, ``mask`` uint8 ``[size, size]`` (classes of
        :data:`ROAD_CLASSES`), ``boxes`` float32 ``[K, 4]`` (x0, y0, x1, y1; pixel edges,
        x1/y1 exclusive), ``box_classes`` int64 ``[K]`` (3 vehicle / 4 pedestrian),
        ``K <= max_objects``.

    Example::

        >>> out = render_road_scene(np.random.default_rng(0), size=64)
        >>> out["image"].shape, out["mask"].shape
        ((64, 64, 3), (64, 64))
    """
    S = size * supersample
    cv = _Canvas(S)

    # --- sky and ground -------------------------------------------------------------
    horizon = S * rng.uniform(0.33, 0.5)
    palettes = [((70, 130, 210), (180, 210, 240)),   # clear day
                ((140, 145, 155), (200, 200, 205)),  # overcast
                ((60, 60, 120), (240, 150, 90))]     # dusk
    top, bottom = (np.array(c, float) + rng.normal(0, 12, 3)
                   for c in palettes[rng.integers(len(palettes))])
    n_bands = 16
    for b in range(n_bands):
        t = b / (n_bands - 1)
        cv.rect(0, horizon * b / n_bands, S, horizon * (b + 1) / n_bands + 1,
                top * (1 - t) + bottom * t, BACKGROUND)
    grounds = [(70, 120, 55), (150, 130, 90), (110, 110, 105)]
    ground = np.array(grounds[rng.integers(len(grounds))], float) + rng.normal(0, 10, 3)
    cv.rect(0, horizon, S, S, ground, BACKGROUND)

    # --- horizon clutter (background class) ---------------------------------------------
    if rng.random() < 0.5:  # buildings
        x = -rng.uniform(0, 0.1) * S
        while x < S:
            w = S * rng.uniform(0.05, 0.14)
            h = S * rng.uniform(0.03, 0.16)
            grey = rng.uniform(90, 200)
            cv.rect(x, horizon - h, x + w, horizon + 1, np.array([grey] * 3)
                    + rng.normal(0, 15, 3), BACKGROUND)
            x += w + S * rng.uniform(0, 0.05)
    else:  # trees
        for _ in range(rng.integers(4, 12)):
            cx, r = S * rng.uniform(0, 1), S * rng.uniform(0.02, 0.06)
            green = np.array([40, 90, 40], float) + rng.normal(0, 15, 3)
            cv.ellipse(cx, horizon - r * 0.9, r, r * 1.2, green, BACKGROUND)

    # --- road geometry: t in (0, 1] from horizon to bottom edge (t ~ 1 / distance) --------
    n_lanes = int(rng.integers(1, 5))
    lane_bottom = S * rng.uniform(0.28, 0.45)  # lane width at the bottom row
    half_bottom = n_lanes * lane_bottom / 2
    vx = S * rng.uniform(0.35, 0.65)
    bx = S * rng.uniform(0.3, 0.7)
    curve = S * rng.uniform(-0.35, 0.35)

    def y_of(t):
        return horizon + (S - horizon) * t

    def x_of(t, f):  # f = lateral position in road half-widths (-1 left edge, +1 right)
        return vx + (bx - vx) * t + curve * t * (1 - t) + f * half_bottom * t

    ts = np.linspace(0.004, 1.0, 96)
    sidewalk = np.array([170, 165, 160], float) + rng.normal(0, 8, 3)
    for f0, f1 in ((-1.28, -1.0), (1.0, 1.28)):
        cv.polygon([(x_of(t, f0), y_of(t)) for t in ts]
                   + [(x_of(t, f1), y_of(t)) for t in ts[::-1]], sidewalk, BACKGROUND)
    asphalt = np.array([rng.uniform(60, 110)] * 3) + rng.normal(0, 4, 3)
    cv.polygon([(x_of(t, -1.0), y_of(t)) for t in ts]
               + [(x_of(t, 1.0), y_of(t)) for t in ts[::-1]], asphalt, ROAD)

    # --- lane markings: dashes periodic in distance 1/t ------------------------------------
    paint = (235, 235, 225)
    yellow = (230, 190, 40)
    dash_freq = rng.uniform(0.35, 0.6)
    phase = rng.uniform(0, 1)
    fine = np.linspace(0.02, 1.0, 400)
    half_w = 0.025 * 2 / max(n_lanes, 2)  # marking half-width in road half-widths

    def stripe(f, t_a, t_b, color):
        seg = fine[(fine >= t_a) & (fine <= t_b)]
        if len(seg) < 2:
            return
        cv.polygon([(x_of(t, f - half_w), y_of(t)) for t in seg]
                   + [(x_of(t, f + half_w), y_of(t)) for t in seg[::-1]], color, LANE)

    for k in range(1, n_lanes):
        f = -1 + 2 * k / n_lanes
        color = yellow if (n_lanes == 2 and rng.random() < 0.3) else paint
        on = (np.mod(dash_freq / fine + phase, 1.0) < 0.45)
        # runs of "on" samples become dashes
        edges = np.flatnonzero(np.diff(np.r_[0, on.astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            stripe(f, fine[a], fine[b - 1], color)
    if rng.random() < 0.7:
        for f in (-0.94, 0.94):
            stripe(f, fine[0], 1.0, paint)

    # --- objects ---------------------------------------------------------------------------
    objects = []
    for _ in range(int(rng.integers(0, 6))):
        lane = int(rng.integers(n_lanes))
        f = -1 + (2 * lane + 1) / n_lanes + rng.uniform(-0.1, 0.1) * 2 / n_lanes
        objects.append((VEHICLE, rng.uniform(0.12, 0.95), f))
    for _ in range(int(rng.integers(0, 4))):
        if rng.random() < 0.3:
            f = rng.uniform(-0.9, 0.9)  # crossing
        else:
            f = rng.choice([-1, 1]) * rng.uniform(1.05, 1.22)
        objects.append((PEDESTRIAN, rng.uniform(0.15, 0.95), f))
    objects = objects[:max_objects]
    order = sorted(range(len(objects)), key=lambda i: objects[i][1])  # far first

    for inst, i in enumerate(order, start=1):
        kind, t, f = objects[i]
        lane_px = lane_bottom * t
        x, y = x_of(t, f), y_of(t)
        if kind == VEHICLE:
            w = lane_px * rng.uniform(0.55, 0.7)
            h = w * rng.uniform(0.65, 1.1)
            body = rng.uniform(20, 235, 3)
            cv.rect(x - w / 2, y - h, x + w / 2, y - 0.12 * h, body, VEHICLE, inst)
            cv.rect(x - 0.4 * w, y - 0.95 * h, x + 0.4 * w, y - 0.6 * h,
                    (40, 50, 65), VEHICLE, inst)  # rear window
            for side in (-1, 1):
                cv.rect(x + side * 0.45 * w - 0.09 * w, y - 0.2 * h,
                        x + side * 0.45 * w + 0.09 * w, y, (20, 20, 20), VEHICLE, inst)
                cv.rect(x + side * 0.36 * w - 0.07 * w, y - 0.5 * h,
                        x + side * 0.36 * w + 0.07 * w, y - 0.4 * h, (200, 30, 30),
                        VEHICLE, inst)
        else:
            h = lane_px * rng.uniform(0.5, 0.65)
            w = h * 0.28
            shirt, trousers = rng.uniform(20, 235, 3), rng.uniform(20, 150, 3)
            skin = np.array([225, 180, 140], float) * rng.uniform(0.45, 1.05)
            for side in (-1, 1):
                cv.rect(x + side * 0.22 * w - 0.14 * w, y - 0.48 * h,
                        x + side * 0.22 * w + 0.14 * w, y, trousers, PEDESTRIAN, inst)
            cv.rect(x - w / 2, y - 0.82 * h, x + w / 2, y - 0.45 * h, shirt, PEDESTRIAN, inst)
            cv.ellipse(x, y - 0.9 * h, 0.3 * w, 0.1 * h, skin, PEDESTRIAN, inst, n=16)

    # --- downsample: image box-filtered, labels sampled at output pixel centres ------------
    img = np.asarray(cv.img.resize((size, size), Image.Resampling.BOX), dtype=np.float64)
    img = img + rng.normal(0, 2.0, img.shape)  # sensor-like noise
    centres = (np.arange(size) * supersample + supersample // 2)
    mask = np.asarray(cv.cls, dtype=np.uint8)[np.ix_(centres, centres)]
    inst_map = np.asarray(cv.inst, dtype=np.uint8)[np.ix_(centres, centres)]

    boxes, classes = [], []
    for inst, i in enumerate(order, start=1):
        ys, xs = np.nonzero(inst_map == inst)
        if len(ys):
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            classes.append(objects[i][0])
    return {
        "image": np.clip(np.round(img), 0, 255).astype(np.uint8),
        "mask": mask,
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "box_classes": np.asarray(classes, dtype=np.int64),
    }


class RoadScenes(Dataset):
    """Procedural road scenes (:func:`render_road_scene`); item ``i`` of a split is drawn
    from ``numpy.random.default_rng([seed, split_id, i])`` so it is the same on every call
    and the splits never share a random stream.

    :param length: items in the split (default train 20 000, val 1 000, test 1 000).
    :param max_objects: boxes are padded to this count (collates with the default
        ``DataLoader``).
    :output: ``{"image": float [3, size, size] in [0, 1], "mask": int64 [size, size],
        "boxes": float [max_objects, 4] (x0, y0, x1, y1 pixels; zero padding),
        "box_classes": int64 [max_objects] (3 vehicle, 4 pedestrian; -1 padding),
        "num_boxes": int64}``

    Example::

        >>> ds = RoadScenes("test", size=64)
        >>> ds[0]["mask"].unique().tolist()        # class ids present
        [0, 1, 2, 4]
    """

    classes = ROAD_CLASSES
    num_classes = len(ROAD_CLASSES)
    channels = 3

    def __init__(self, split: str = "train", size: int = 64, seed: int = 0,
                 length: int | None = None, supersample: int = 4,
                 max_objects: int = 8) -> None:
        self.split = check_split(split)
        self.size = int(size)
        self.seed = seed
        self.length = int(length if length is not None else _DEFAULT_LENGTH[split])
        self.supersample = supersample
        self.max_objects = max_objects

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, SPLIT_IDS[self.split], i])
        out = render_road_scene(rng, self.size, self.supersample, self.max_objects)
        k = len(out["boxes"])
        boxes = torch.zeros(self.max_objects, 4)
        classes = torch.full((self.max_objects,), -1, dtype=torch.int64)
        boxes[:k] = torch.from_numpy(out["boxes"])
        classes[:k] = torch.from_numpy(out["box_classes"])
        return {
            "image": torch.from_numpy(out["image"]).permute(2, 0, 1).float().div_(255.0),
            "mask": torch.from_numpy(out["mask"]).long(),
            "boxes": boxes,
            "box_classes": classes,
            "num_boxes": torch.tensor(k, dtype=torch.int64),
        }
