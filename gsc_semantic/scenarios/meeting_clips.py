"""Talking-head test clips for the online-meeting scenario, with exact landmarks.

Two synthetic sources, both with the 12 landmarks of
:data:`gsc_semantic.data.faces.FACE_LANDMARKS` (``(x, y)`` pixels, pixel centres at
``+0.5``) known exactly for every frame:

* ``"procedural"``: one :func:`~gsc_semantic.data.faces.render_face` identity whose pose
  (yaw, pitch, roll) and expression (smile, mouth opening, brows, blinks) follow smooth
  sinusoids over time; drawn in 3-D, so it is *not* a warp of its first frame.
* ``"astronaut"`` / ``"grace_hopper"``: a bundled photograph (scikit-image's astronaut,
  matplotlib's Grace Hopper sample; hand-annotated landmarks in :data:`PHOTO_LANDMARKS`)
  warped piecewise-affinely (:func:`warp_to_landmarks`) so its landmarks follow an animated
  pose/expression (:func:`animate_landmarks`).

User clips come from a video file (PyAV) or a folder of frames (:func:`load_clip`); they have
no ground-truth landmarks (the landmark model's output on the original stands in).

Example::

    >>> clip = synthetic_clip("procedural", frames=4, size=64, seed=0)
    >>> clip.frames.shape, clip.landmarks.shape
    ((4, 64, 64, 3), (4, 12, 2))
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bridge.common import ConfigError
from gsc_semantic.data.faces import FACE_LANDMARKS, render_face, sample_face_params

__all__ = ["Clip", "PHOTO_LANDMARKS", "SOURCES", "synthetic_clip", "animate_landmarks",
           "warp_to_landmarks", "photo_face", "load_clip", "check_frames"]

#: Hand-annotated landmarks (``FACE_LANDMARKS`` order, x/y pixels of the full photo).
PHOTO_LANDMARKS: dict[str, np.ndarray] = {
    "astronaut": np.array([[190, 243], [318, 245], [150, 215], [225, 218], [280, 218],
                           [355, 222], [252, 315], [195, 365], [305, 365], [250, 362],
                           [250, 395], [250, 455]], float) / 3 + [140, 20],
    "grace_hopper": np.array([[180, 205], [315, 205], [130, 180], [220, 185], [275, 185],
                              [370, 180], [245, 290], [195, 345], [295, 345], [245, 338],
                              [245, 358], [245, 430]], float) / 1.6 + [110, 60],
}
SOURCES = ("procedural", "astronaut", "grace_hopper")
_IDX = {name: i for i, name in enumerate(FACE_LANDMARKS)}


@dataclass
class Clip:
    """A clip: ``frames`` uint8 [T, H, W, 3], ``landmarks`` float32 [T, 12, 2] (``None``
    for user clips) and where it came from."""

    frames: np.ndarray
    landmarks: np.ndarray | None
    source: str


def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        import skimage.data

        return np.asarray(skimage.data.astronaut())
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def photo_face(name: str, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Square crop of photo ``name`` around its face, resized to ``size``.

    :return: ``(image uint8 [size, size, 3], landmarks float32 [12, 2])``.

    Example::

        >>> img, lm = photo_face("astronaut", 64)
        >>> img.shape, bool(lm[0, 0] < lm[1, 0])
        ((64, 64, 3), True)
    """
    if name not in PHOTO_LANDMARKS:
        raise ConfigError(f"unknown face photo {name!r}; choose from {sorted(PHOTO_LANDMARKS)}")
    img, lm = _photo(name), PHOTO_LANDMARKS[name]
    eyes = lm[:2].mean(0)
    span = 2.3 * (lm[_IDX["chin"], 1] - eyes[1])
    cx, cy = eyes[0], eyes[1] + 0.1 * span
    box = (cx - span / 2, cy - span / 2, cx + span / 2, cy + span / 2)
    crop = Image.fromarray(img).resize((size, size), Image.Resampling.LANCZOS, box=box)
    scale = size / span
    return np.asarray(crop), ((lm - [box[0], box[1]]) * scale).astype(np.float32)


def _anchors(size: int) -> np.ndarray:
    """Fixed border points that keep the background in place during a warp."""
    e = np.linspace(0, size, 5)
    pts = [(x, 0) for x in e] + [(x, size) for x in e] + [(0, y) for y in e[1:-1]] \
        + [(size, y) for y in e[1:-1]]
    return np.array(pts, float)


def _bilinear(x: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Sample image [H, W, C] at ``(x, y)`` points [N, 2] (pixel centres at +0.5, edges
    clamped)."""
    h, w = x.shape[:2]
    u = np.clip(pts[:, 0] - 0.5, 0, w - 1)
    v = np.clip(pts[:, 1] - 0.5, 0, h - 1)
    u0, v0 = np.minimum(u.astype(int), w - 2), np.minimum(v.astype(int), h - 2)
    fu, fv = (u - u0)[:, None], (v - v0)[:, None]
    return (x[v0, u0] * (1 - fu) * (1 - fv) + x[v0, u0 + 1] * fu * (1 - fv)
            + x[v0 + 1, u0] * (1 - fu) * fv + x[v0 + 1, u0 + 1] * fu * fv)


def warp_to_landmarks(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Warp ``image`` (landmarks at ``src``) piecewise-affinely so they land at ``dst``.

    The border of the image is pinned; the Delaunay triangles of ``dst`` and the border
    points move affinely (each output pixel samples the input bilinearly at its barycentric
    position in the matching ``src`` triangle). ``src``/``dst`` are [12, 2] ``(x, y)``
    pixels (pixel centres at +0.5).

    :param image: [H, W, 3] uint8 or float in [0, 1].
    :return: the warped image, float64 [H, W, 3] in [0, 1].

    Example::

        >>> img, lm = photo_face("astronaut", 32)
        >>> out = warp_to_landmarks(img, lm, lm)
        >>> out.shape, bool(np.abs(out - img / 255.0).max() < 1e-9)
        ((32, 32, 3), True)
    """
    from scipy.spatial import Delaunay, QhullError

    x = np.asarray(image)
    x = x / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    h, w = x.shape[:2]
    anchors = _anchors(w)
    d = np.concatenate([np.clip(np.asarray(dst, float), 0, w), anchors])
    s = np.concatenate([np.asarray(src, float), anchors])
    try:
        tri = Delaunay(d)
    except QhullError:
        return x.copy()
    gy, gx = np.mgrid[0:h, 0:w] + 0.5
    pts = np.stack([gx.ravel(), gy.ravel()], -1)
    # barycentric coordinates of every pixel in every triangle [T, N, 3]; each pixel takes
    # the triangle where its smallest coordinate is largest (inside, or nearest to it)
    # (elementwise arithmetic, no BLAS/LAPACK: their threads cost more than these tiny ops)
    v = d[tri.simplices]  # [T, 3, 2]; barycentric (b0, b1) = inv([v0 - v2, v1 - v2]) p
    a, c = v[:, 0, 0] - v[:, 2, 0], v[:, 1, 0] - v[:, 2, 0]
    b, e = v[:, 0, 1] - v[:, 2, 1], v[:, 1, 1] - v[:, 2, 1]
    det = a * e - b * c
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)[:, None]
    dx = pts[None, :, 0] - v[:, 2, 0, None]
    dy = pts[None, :, 1] - v[:, 2, 1, None]
    b0 = (e[:, None] * dx - c[:, None] * dy) / det
    b1 = (a[:, None] * dy - b[:, None] * dx) / det
    bary = np.stack([b0, b1, 1 - b0 - b1], -1)  # [T, N, 3]
    best = np.argmax(bary.min(-1), axis=0)
    bary = bary[best, np.arange(len(pts))]
    src_pts = (bary[..., None] * s[tri.simplices[best]]).sum(1)
    return _bilinear(x, src_pts).reshape(h, w, -1)


def _rotate(points: np.ndarray, center: np.ndarray, angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    d = points - center
    return center + np.stack([d[:, 0] * c - d[:, 1] * s, d[:, 0] * s + d[:, 1] * c], -1)


def animate_landmarks(base: np.ndarray, yaw: float, pitch: float, roll_deg: float,
                      smile: float, mouth_open: float, brow_raise: float) -> np.ndarray:
    """Move a face's neutral landmarks [12, 2] to a pose/expression (all in [-1, 1] except
    ``roll_deg``): yaw shifts features sideways by depth (nose most), pitch vertically,
    smile lifts and widens the mouth corners, ``mouth_open`` lowers the lower lip and chin,
    ``brow_raise`` lifts the brows.

    Example::

        >>> _, lm = photo_face("astronaut", 64)
        >>> moved = animate_landmarks(lm, 0, 0, 0, 0, 1.0, 0)
        >>> bool(moved[10, 1] > lm[10, 1])
        True
    """
    lm = np.asarray(base, float).copy()
    iod = np.linalg.norm(lm[1] - lm[0])
    depth = np.full(len(lm), 0.25)
    depth[_IDX["nose_tip"]] = 0.6
    depth[[_IDX["chin"], _IDX["mouth_top"], _IDX["mouth_bottom"]]] = 0.35
    lm[:, 0] += 0.35 * iod * yaw * depth
    lm[:, 1] += 0.25 * iod * pitch * depth
    ml, mr = _IDX["mouth_left"], _IDX["mouth_right"]
    lm[[ml, mr], 1] -= 0.12 * iod * smile
    lm[ml, 0] -= 0.06 * iod * smile
    lm[mr, 0] += 0.06 * iod * smile
    lm[_IDX["mouth_bottom"], 1] += 0.3 * iod * mouth_open
    lm[_IDX["chin"], 1] += 0.12 * iod * mouth_open
    for name in ("brow_left_outer", "brow_left_inner", "brow_right_inner", "brow_right_outer"):
        lm[_IDX[name], 1] -= 0.12 * iod * brow_raise
    center = lm[[0, 1, _IDX["chin"]]].mean(0)
    return _rotate(lm, center, np.deg2rad(roll_deg)).astype(np.float32)


def _trajectories(frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Smooth pose/expression curves in [-1, 1] (sums of two slow sinusoids)."""
    t = np.arange(frames, dtype=float)
    out = {}
    for key in ("yaw", "pitch", "roll", "smile", "mouth", "brow"):
        f = rng.uniform(0.02, 0.07, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        out[key] = 0.6 * np.sin(2 * np.pi * f[0] * t + ph[0]) \
            + 0.4 * np.sin(2 * np.pi * f[1] * t + ph[1])
    return out


def synthetic_clip(source: str = "procedural", frames: int = 48, size: int = 64,
                   seed: int = 0) -> Clip:
    """A talking-head clip with exact landmarks (see the module notes).

    :param source: one of :data:`SOURCES`.
    :return: :class:`Clip` with ``frames`` uint8 [T, size, size, 3] and ``landmarks``.
    """
    if frames < 1:
        raise ConfigError(f"a clip needs at least one frame, got {frames}")
    if size < 32:
        raise ConfigError(f"clip size must be at least 32 pixels, got {size}")
    rng = np.random.default_rng([seed, 6006])
    tr = _trajectories(frames, rng)
    imgs, lms = [], []
    if source == "procedural":
        p = sample_face_params(rng)
        for i in range(frames):
            q = p | {"yaw_deg": 20 * tr["yaw"][i], "pitch_deg": 10 * tr["pitch"][i],
                     "roll_deg": 10 * tr["roll"][i], "smile": float(tr["smile"][i]),
                     "mouth_open": float(max(0.0, tr["mouth"][i])),
                     "brow_raise": float(tr["brow"][i]),
                     "eye_open": 0.05 if i % 20 == 19 else 0.8}
            img, lm = render_face(q, size)
            imgs.append(img)
            lms.append(lm)
    elif source in PHOTO_LANDMARKS:
        base_img, base_lm = photo_face(source, size)
        for i in range(frames):
            lm = animate_landmarks(base_lm, tr["yaw"][i], tr["pitch"][i], 8 * tr["roll"][i],
                                   tr["smile"][i], max(0.0, tr["mouth"][i]), tr["brow"][i])
            img = warp_to_landmarks(base_img, base_lm, lm)
            imgs.append(np.round(img * 255).astype(np.uint8))
            lms.append(lm)
    else:
        raise ConfigError(f"unknown clip source {source!r}; choose from {SOURCES} or give a "
                          "video file / folder of frames")
    return Clip(np.stack(imgs), np.stack(lms).astype(np.float32), source)


def _square(img: Image.Image, size: int) -> np.ndarray:
    w, h = img.size
    s = min(w, h)
    box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
    return np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.LANCZOS,
                                                box=box))


def check_frames(frames: list[np.ndarray], what: str) -> np.ndarray:
    """Stack decoded frames, refusing an empty clip or frames of different sizes."""
    if not frames:
        raise ConfigError(f"{what} holds no frames")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ConfigError(f"{what} has frames of different sizes: "
                          f"{sorted(s[:2] for s in shapes)[:3]}")
    return np.stack(frames)


def load_clip(path: str, size: int = 64, max_frames: int = 48) -> Clip:
    """Read a user clip: a video file (any container/codec PyAV reads) or a folder of image
    frames (sorted by name; all must have the same size). Frames are centre-cropped to a
    square and resized to ``size``.

    Bad input (missing, empty, corrupted, mixed sizes) raises :class:`ConfigError` with one
    line.
    """
    if not os.path.exists(path):
        raise ConfigError(f"clip {path!r} does not exist")
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path)
                       if n.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".webp")))
        raw = []
        for n in names[:max_frames]:
            try:
                with Image.open(os.path.join(path, n)) as im:
                    raw.append(np.asarray(im.convert("RGB")))
            except OSError as err:
                raise ConfigError(f"frame {n!r} in {path!r} is not a readable image "
                                  f"({err})") from err
        check_frames(raw, f"folder {path!r}")
        return Clip(np.stack([_square(Image.fromarray(f), size) for f in raw]), None, path)
    try:
        import av
    except ImportError as err:
        raise ConfigError("reading video files needs PyAV (`pip install av`)") from err
    raw = []
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ConfigError(f"{path!r} has no video stream")
            for frame in container.decode(video=0):
                raw.append(frame.to_ndarray(format="rgb24"))
                if len(raw) >= max_frames:
                    break
    except av.error.FFmpegError as err:
        raise ConfigError(f"cannot decode video {path!r} ({err.strerror or err})") from err
    stacked = check_frames(raw, f"video {path!r}")
    return Clip(np.stack([_square(Image.fromarray(f), size) for f in stacked]), None, path)
