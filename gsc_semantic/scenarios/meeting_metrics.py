"""Per-frame and temporal metrics of the meeting scenario.

- **PSNR**, **SSIM** (:mod:`gsc_semantic.metrics`, frames in [0, 1]) and the
  **EfficientNet-Lite2 feature distance** (LPIPS-style, no learned weights; *not* LPIPS);
- **NME**: the in-project landmark model (:class:`~.face_landmarks.LandmarkNet`) run on the
  shown frame, mean landmark distance to the original's landmarks divided by the original's
  inter-ocular distance (:func:`~.face_landmarks.nme`);
- **temporal error** (:func:`temporal_error`), lower is better.

Example::

    >>> x = np.zeros((3, 8, 8, 3), np.uint8)
    >>> float(temporal_error(x, x))
    0.0
"""

from __future__ import annotations

import numpy as np
import torch

from gsc_semantic.metrics import EffNetPerceptualDistance, psnr, ssim
from gsc_semantic.scenarios.face_landmarks import LandmarkNet, nme

__all__ = ["temporal_error", "FrameMetrics"]


def temporal_error(shown: np.ndarray, original: np.ndarray) -> float:
    """Temporal consistency error: mean over consecutive pairs ``t-1, t`` and pixels of
    ``|(ŝ_t - ŝ_{t-1}) - (x_t - x_{t-1})|`` (frames scaled to [0, 1]). 0 when the shown
    clip changes exactly as the original does; flicker, freezes and jumps raise it.

    :param shown, original: uint8 [T, H, W, 3].
    """
    s = np.asarray(shown, float) / 255.0
    x = np.asarray(original, float) / 255.0
    if len(s) < 2:
        return 0.0
    return float(np.abs(np.diff(s, axis=0) - np.diff(x, axis=0)).mean())


def _tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0


class FrameMetrics:
    """Computes every metric of a shown clip against the original.

    :param landmarks: the landmark model used for NME.
    :param feature_distance: an :class:`EffNetPerceptualDistance` (built when ``None``).

    :input shown, original: uint8 [T, H, W, 3].
    :input true_landmarks: [T, 12, 2] landmarks of the original.
    :output: dict of clip means (``nme``, ``psnr``, ``ssim``, ``feature_distance``,
        ``temporal_error``) and per-frame lists (``per_frame``).
    """

    def __init__(self, landmarks: LandmarkNet,
                 feature_distance: EffNetPerceptualDistance | None = None) -> None:
        self.landmarks = landmarks
        self.feature_distance = feature_distance or EffNetPerceptualDistance()

    @torch.no_grad()
    def __call__(self, shown: np.ndarray, original: np.ndarray, true_landmarks: np.ndarray
                 ) -> dict:
        s, x = _tensor(shown), _tensor(original)
        lm, _ = self.landmarks.detect(shown)
        per = {"nme": nme(lm, true_landmarks), "psnr": psnr(s, x).numpy(),
               "ssim": ssim(s, x).numpy(),
               "feature_distance": self.feature_distance(s, x).numpy()}
        out = {k: float(np.mean(v)) for k, v in per.items()}
        out["temporal_error"] = temporal_error(shown, original)
        out["per_frame"] = {k: [round(float(v), 4) for v in vals] for k, vals in per.items()}
        return out
