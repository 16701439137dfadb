"""Procedural cartoon faces with pose/expression parameters and exact landmarks.

A face is a head ellipse with hair, eyes (white, iris, pupil; blinking), brows, nose and
mouth (smile/frown, opening). Features live on a canonical face surface (an ellipsoid cap,
the nose tip protruding) that is rotated by yaw and pitch and projected orthographically;
roll then rotates everything in the image plane. Landmarks are the projections of the same
canonical points used for drawing, so they are exact. The silhouette and hair rotate with
roll only.

Parameters (:data:`FACE_PARAM_NAMES`), drawn uniformly by :func:`sample_face_params`:
``yaw_deg`` [-30, 30] (positive: the face turns towards image right), ``pitch_deg``
[-15, 15] (positive: looks down), ``roll_deg`` [-20, 20] (positive: clockwise on screen),
``smile`` [-1, 1] (mouth-corner lift), ``mouth_open`` [0, 1] (0 with probability 0.4),
``brow_raise`` [-1, 1], ``eye_open`` [0, 1] (closed below 0.25; 0.05 with probability 0.1).
Appearance (skin, hair, background, face shape, position) varies too but is not in the
parameter vector.

Landmarks (:data:`FACE_LANDMARKS`), ``(x, y)`` in continuous pixel coordinates of the output
image (pixel ``(row i, col j)`` has its centre at ``(j + 0.5, i + 0.5)``); "left"/"right"
are image left/right.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from gsc_semantic.data._common import SPLIT_IDS, check_split

__all__ = ["FACE_PARAM_NAMES", "FACE_LANDMARKS", "sample_face_params", "render_face",
           "SyntheticFaces"]

FACE_PARAM_NAMES = ("yaw_deg", "pitch_deg", "roll_deg", "smile", "mouth_open", "brow_raise",
                    "eye_open")
FACE_LANDMARKS = ("eye_left", "eye_right", "brow_left_outer", "brow_left_inner",
                  "brow_right_inner", "brow_right_outer", "nose_tip", "mouth_left",
                  "mouth_right", "mouth_top", "mouth_bottom", "chin")
_DEFAULT_LENGTH = {"train": 20000, "val": 1000, "test": 1000}
_SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 125], [198, 134, 90],
                  [141, 85, 54], [96, 58, 38]], float)
_HAIR = np.array([[20, 15, 10], [70, 45, 25], [140, 95, 50], [215, 180, 110],
                  [160, 60, 30], [150, 150, 150]], float)
_IRIS = np.array([[70, 50, 30], [60, 110, 160], [70, 120, 70], [110, 80, 50]], float)
_NOSE_DEPTH = 0.35  # protrusion of the nose tip, in face half-widths


def sample_face_params(rng: np.random.Generator) -> dict[str, float]:
    """Draw pose, expression and appearance parameters for :func:`render_face`."""
    p = {
        "yaw_deg": rng.uniform(-30, 30),
        "pitch_deg": rng.uniform(-15, 15),
        "roll_deg": rng.uniform(-20, 20),
        "smile": rng.uniform(-1, 1),
        "mouth_open": 0.0 if rng.random() < 0.4 else rng.uniform(0, 1),
        "brow_raise": rng.uniform(-1, 1),
        "eye_open": 0.05 if rng.random() < 0.1 else rng.uniform(0.3, 1),
    }
    app = {
        "cx": rng.uniform(0.44, 0.56), "cy": rng.uniform(0.48, 0.56),
        "half_width": rng.uniform(0.24, 0.3), "aspect": rng.uniform(1.18, 1.38),
        "skin": int(rng.integers(len(_SKIN))), "skin_jitter": rng.normal(0, 8, 3),
        "hair": int(rng.integers(len(_HAIR))), "hair_style": int(rng.integers(3)),
        "iris": int(rng.integers(len(_IRIS))),
        "bg_top": rng.uniform(30, 230, 3), "bg_bottom": rng.uniform(30, 230, 3),
    }
    return p | app


class _FaceGeometry:
    """Canonical face coordinates (u right, v down, in face half-widths/heights) -> image."""

    def __init__(self, p: dict[str, float], canvas: int) -> None:
        self.a = p["half_width"] * canvas
        self.b = self.a * p["aspect"]
        self.c = np.array([p["cx"], p["cy"]]) * canvas
        yaw, pitch, roll = (np.deg2rad(p[k]) for k in ("yaw_deg", "pitch_deg", "roll_deg"))
        self.cy_, self.sy_ = np.cos(yaw), np.sin(yaw)
        self.cp_, self.sp_ = np.cos(pitch), np.sin(pitch)
        self.cr_, self.sr_ = np.cos(roll), np.sin(roll)

    def _roll(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        xr = x * self.cr_ - y * self.sr_
        yr = x * self.sr_ + y * self.cr_
        return np.stack([self.c[0] + xr, self.c[1] + yr], -1)

    def surface(self, u, v, extra_depth=0.0) -> np.ndarray:
        """Project points on the face surface (depth from an ellipsoid cap)."""
        u, v = np.asarray(u, float), np.asarray(v, float)
        z = np.sqrt(np.clip(1 - u**2 - v**2, 0, None)) * 0.8 + extra_depth
        x3, y3, z3 = u * self.a, v * self.b, z * self.a
        x1 = x3 * self.cy_ + z3 * self.sy_
        z1 = -x3 * self.sy_ + z3 * self.cy_
        y1 = y3 * self.cp_ + z1 * self.sp_
        return self._roll(x1, y1)

    def flat(self, u, v) -> np.ndarray:
        """Points of the silhouette plane (rotated by roll only)."""
        return self._roll(np.asarray(u, float) * self.a, np.asarray(v, float) * self.b)


def _quad_bezier(p0, p1, p2, n=12) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)


def render_face(params: dict[str, float], size: int = 64, supersample: int = 4
                ) -> tuple[np.ndarray, np.ndarray]:
    """Draw one face.

    :param params: from :func:`sample_face_params` (override pose/expression keys freely).
    :return: ``(image uint8 [size, size, 3], landmarks float32 [12, 2])`` with landmarks
        ordered as :data:`FACE_LANDMARKS`, ``(x, y)`` in output pixel coordinates.

    Example::

        >>> p = sample_face_params(np.random.default_rng(0)) | {"smile": 1.0}
        >>> img, lm = render_face(p, size=64)
        >>> img.shape, lm.shape
        ((64, 64, 3), (12, 2))
    """
    p = params
    S = size * supersample
    g = _FaceGeometry(p, S)
    img = Image.new("RGB", (S, S))
    draw = ImageDraw.Draw(img)

    def poly(points: np.ndarray, color) -> None:
        pts = [(float(x) - 0.5, float(y) - 0.5) for x, y in np.asarray(points)]
        draw.polygon(pts, fill=tuple(int(np.clip(c, 0, 255)) for c in color))

    def thick_line(points: np.ndarray, width: float, color) -> None:
        pts = np.asarray(points)
        d = np.gradient(pts, axis=0)
        nrm = np.stack([-d[:, 1], d[:, 0]], -1)
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-9
        poly(np.concatenate([pts + nrm * width / 2, (pts - nrm * width / 2)[::-1]]), color)

    # background: vertical gradient
    top, bottom = np.asarray(p["bg_top"]), np.asarray(p["bg_bottom"])
    for k in range(16):
        t = k / 15
        poly([(0, S * k / 16), (S, S * k / 16), (S, S * (k + 1) / 16 + 1),
              (0, S * (k + 1) / 16 + 1)], top * (1 - t) + bottom * t)

    skin = _SKIN[p["skin"]] + p["skin_jitter"]
    hair = _HAIR[p["hair"]]
    theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    # hair behind the head (long style reaches the shoulders), neck
    if p["hair_style"] == 2:
        poly(g.flat(np.r_[1.15 * np.cos(theta[24:]), [1.15, -1.15]],
                    np.r_[1.1 * np.sin(theta[24:]) - 0.05, [1.35, 1.35]]), hair)
    poly(g.flat([-0.45, 0.45, 0.5, -0.5], [0.6, 0.6, 1.6, 1.6]), skin * 0.85)
    if p["hair_style"] >= 1:
        poly(g.flat(1.07 * np.cos(theta), 1.07 * np.sin(theta) - 0.04), hair)
    poly(g.flat(np.cos(theta), np.sin(theta)), skin)  # head
    if p["hair_style"] >= 1:  # fringe over the forehead
        arc = np.linspace(np.pi * 1.05, np.pi * 1.95, 24)
        poly(np.concatenate([g.flat(np.cos(arc), np.sin(arc)),
                             g.flat(np.linspace(0.9, -0.9, 12),
                                    -0.62 + 0.08 * np.sin(np.linspace(0, 6 * np.pi, 12)))]),
             hair)

    # eyes
    eye_open = float(p["eye_open"])
    eyes = []
    for side in (-1, 1):
        eu, ev = 0.36 * side, -0.08
        eyes.append(g.surface(eu, ev))
        if eye_open >= 0.25:
            hh = 0.11 * eye_open
            poly(g.surface(eu + 0.17 * np.cos(theta), ev + hh * np.sin(theta)), (245, 245, 245))
            r_iris = min(0.075, 0.9 * hh * 1.2)
            poly(g.surface(eu + r_iris * np.cos(theta), ev + r_iris * 1.2 * np.sin(theta)),
                 _IRIS[p["iris"]])
            r_pupil = 0.45 * r_iris
            poly(g.surface(eu + r_pupil * np.cos(theta), ev + r_pupil * 1.2 * np.sin(theta)),
                 (10, 10, 10))
        else:  # closed: dark lid line through the eye centre
            lid = g.surface(eu + np.linspace(-0.17, 0.17, 10),
                            ev + 0.02 * np.sin(np.linspace(0, np.pi, 10)))
            thick_line(lid, 0.04 * g.a, (30, 20, 20))

    # brows: raise lifts both ends, negative raise lowers the inner ends (frown)
    br = float(p["brow_raise"])
    brows = []
    for side in (-1, 1):
        outer = (0.56 * side, -0.33 - 0.07 * br)
        inner = (0.16 * side, -0.31 - 0.07 * br + 0.04 * max(0.0, -br))
        mid = ((outer[0] + inner[0]) / 2, min(outer[1], inner[1]) - 0.05)
        curve = _quad_bezier(outer, mid, inner)
        pts = g.surface(curve[:, 0], curve[:, 1])
        thick_line(pts, 0.07 * g.a, hair * 0.8)
        brows.append((pts[0], pts[-1]))

    # nose: bridge + tip shading
    nose_tip = g.surface(0.0, 0.2, _NOSE_DEPTH)
    bridge = np.stack([g.surface(0.0, v, _NOSE_DEPTH * (v + 0.1) / 0.3)
                       for v in np.linspace(-0.1, 0.2, 8)])
    thick_line(bridge, 0.05 * g.a, skin * 0.75)
    nostrils = np.stack([g.surface(u, 0.24, _NOSE_DEPTH * (1 - abs(u) / 0.14) * 0.6)
                         for u in np.linspace(-0.14, 0.14, 9)])
    thick_line(nostrils, 0.05 * g.a, skin * 0.6)

    # mouth
    smile, mo = float(p["smile"]), float(p["mouth_open"])
    mv, mw = 0.5, 0.27 + 0.04 * smile
    corner_v = mv - 0.1 * smile
    left, right = (-mw, corner_v), (mw, corner_v)
    top_mid = (0.0, mv - 0.03 - 0.02 * smile - 0.05 * mo)
    bottom_mid = (0.0, mv + 0.06 + 0.1 * smile * (smile > 0) + 0.22 * mo)
    upper = _quad_bezier(left, (top_mid[0], 2 * top_mid[1] - (left[1] + right[1]) / 2), right)
    lower = _quad_bezier(right, (bottom_mid[0], 2 * bottom_mid[1] - (left[1] + right[1]) / 2),
                         left)
    lip = np.array([190, 80, 80]) * 0.6 + skin * 0.4
    outline = np.concatenate([upper, lower])
    poly(g.surface(outline[:, 0], outline[:, 1]), lip)
    if mo > 0.15:
        inner = np.concatenate([_quad_bezier((left[0] * 0.8, left[1]), (0, top_mid[1] + 0.06),
                                             (right[0] * 0.8, right[1])),
                                _quad_bezier((right[0] * 0.8, right[1]),
                                             (0, bottom_mid[1] + 0.05 * mo),
                                             (left[0] * 0.8, left[1]))])
        poly(g.surface(inner[:, 0], inner[:, 1]), (60, 20, 25))
    else:
        line = _quad_bezier(left, (0.0, 2 * (mv + 0.01) - corner_v), right)
        thick_line(g.surface(line[:, 0], line[:, 1]), 0.025 * g.a, (90, 30, 35))

    # the lip curves pass through top_mid / bottom_mid at t = 1/2 by construction
    landmarks = np.stack([
        eyes[0], eyes[1],
        brows[0][0], brows[0][1], brows[1][1], brows[1][0],
        nose_tip,
        g.surface(*left), g.surface(*right),
        g.surface(0.0, top_mid[1]), g.surface(0.0, bottom_mid[1]),
        g.flat(0.0, 1.0),
    ]).astype(np.float64)

    out = np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)
    return out, (landmarks / supersample).astype(np.float32)


class SyntheticFaces(Dataset):
    """Procedural faces (:func:`render_face`); item ``i`` of a split is drawn from
    ``numpy.random.default_rng([seed, split_id, i])``.

    :output: ``{"image": float [3, size, size] in [0, 1], "landmarks": float [12, 2] (x, y
        pixels, :data:`FACE_LANDMARKS`), "params": float [7] (:data:`FACE_PARAM_NAMES`)}``

    Example::

        >>> ds = SyntheticFaces("val", size=64)
        >>> ds[3]["landmarks"].shape, ds[3]["params"].shape
        (torch.Size([12, 2]), torch.Size([7]))
    """

    channels = 3
    landmark_names = FACE_LANDMARKS
    param_names = FACE_PARAM_NAMES

    def __init__(self, split: str = "train", size: int = 64, seed: int = 0,
                 length: int | None = None, supersample: int = 4) -> None:
        self.split = check_split(split)
        self.size = int(size)
        self.seed = seed
        self.length = int(length if length is not None else _DEFAULT_LENGTH[split])
        self.supersample = supersample

    def __len__(self) -> int:
        return self.length

    def params(self, i: int) -> dict[str, float]:
        """All drawing parameters of item ``i``."""
        return sample_face_params(np.random.default_rng([self.seed, SPLIT_IDS[self.split], i]))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        p = self.params(i)
        img, lm = render_face(p, self.size, self.supersample)
        return {
            "image": torch.from_numpy(img.copy()).permute(2, 0, 1).float().div_(255.0),
            "landmarks": torch.from_numpy(lm),
            "params": torch.tensor([p[k] for k in FACE_PARAM_NAMES], dtype=torch.float32),
        }
