"""A small face-landmark regressor with a face-presence score, trained in-project.

No offline face model fits ``.venv`` (MediaPipe needs numpy < 2, OpenCV is not installed),
so the meeting scenario trains its own: a 4-stage strided CNN on 64x64 RGB that regresses
the 12 landmarks of :data:`gsc_semantic.data.faces.FACE_LANDMARKS` and a presence logit.
Training data (all with exact landmarks, generated on the fly from bundled material):
procedural faces (:mod:`gsc_semantic.data.faces`), the two annotated face photos warped to
random poses/expressions (:func:`~gsc_semantic.scenarios.meeting_clips.animate_landmarks`)
under random similarity transforms, colour jitter and mirror flips, and face-free crops of
the other bundled photographs as negatives. It knows two real faces: on other people's
faces it is a weak detector (see the README).

Example::

    >>> net = LandmarkNet()
    >>> lm, conf = net.detect(np.zeros((2, 64, 64, 3), np.uint8))
    >>> lm.shape, conf.shape
    ((2, 12, 2), (2,))
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from gsc_semantic.data.faces import render_face, sample_face_params
from gsc_semantic.scenarios.meeting_checkpoints import load_module, save_module
from gsc_semantic.scenarios.meeting_clips import (
    PHOTO_LANDMARKS,
    animate_landmarks,
    photo_face,
    warp_to_landmarks,
)

__all__ = ["LandmarkNet", "FLIP_ORDER", "make_training_set", "train_landmarks",
           "DETECTION_THRESHOLD", "nme"]

INPUT_SIZE = 64
#: Presence probability below which a frame counts as "no face detected".
DETECTION_THRESHOLD = 0.5
#: Landmark order after a left-right mirror flip.
FLIP_ORDER = np.array([1, 0, 5, 4, 3, 2, 6, 8, 7, 9, 10, 11])
_NEGATIVE_SOURCES = ("skimage:coffee", "skimage:chelsea", "skimage:rocket",
                     "skimage:stereo_motorcycle", "sklearn:china", "sklearn:flower",
                     "wallpaper:Path", "wallpaper:ColorfulCups", "wallpaper:EveningGlow")


class LandmarkNet(nn.Module):
    """CNN: [N, 3, 64, 64] in [0, 1] -> landmarks [N, 12, 2] (fractions of the side,
    centred: ``x / size - 0.5``) and a presence logit [N]."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 3 * width, 4 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                       nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * 16, 256), nn.ReLU(),
                                  nn.Linear(256, 25))
        self.width = width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.features(x))
        return out[:, :24].reshape(-1, 12, 2), out[:, 24]

    @torch.no_grad()
    def detect(self, frames: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks and presence probability of every frame.

        :param frames: uint8 [T, H, W, 3] (square; resized to 64 for the network).
        :return: ``(landmarks float32 [T, 12, 2] in the frames' pixels, presence [T])``.
        """
        frames = np.asarray(frames)
        size = frames.shape[1]
        x = torch.from_numpy(frames.copy()).permute(0, 3, 1, 2).float().div(255.0)
        if size != INPUT_SIZE:
            x = nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                          antialias=True, align_corners=False)
        was_training = self.training
        self.eval()
        lms, probs = [], []
        for i in range(0, x.shape[0], batch):
            lm, logit = self(x[i:i + batch])
            lms.append((lm + 0.5) * size)
            probs.append(torch.sigmoid(logit))
        self.train(was_training)
        return torch.cat(lms).numpy().astype(np.float32), torch.cat(probs).numpy()

    def save_pretrained(self, directory: str, training: dict) -> None:
        """Write ``model.safetensors`` and ``config.json`` to ``directory``."""
        save_module(self, directory, {"model": "LandmarkNet", "width": self.width,
                                      "input_size": INPUT_SIZE, "training": training})

    @classmethod
    def from_pretrained(cls, directory: str) -> LandmarkNet:
        """Load a checkpoint folder (verified against ``MANIFEST.json`` when listed)."""
        state, cfg = load_module(directory)
        net = cls(width=int(cfg["width"]))
        net.load_state_dict(state)
        return net.eval()


def nme(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Normalised mean error per frame: mean landmark distance / inter-ocular distance of
    ``true`` (landmarks 0 and 1). ``pred``, ``true``: [T, 12, 2] -> [T].

    Example::

        >>> t = np.zeros((1, 12, 2)); t[0, 1, 0] = 10.0
        >>> float(nme(t + [1.0, 0.0], t)[0])
        0.1
    """
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    iod = np.linalg.norm(true[:, 1] - true[:, 0], axis=-1)
    return np.linalg.norm(pred - true, axis=-1).mean(-1) / np.maximum(iod, 1e-6)


def _similarity(img: np.ndarray, lm: np.ndarray, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Random scale/rotation/shift of an image and its landmarks (edge-padded)."""
    size = img.shape[0]
    s = rng.uniform(0.8, 1.15)
    a = np.deg2rad(rng.uniform(-12, 12))
    t = rng.uniform(-0.08, 0.08, 2) * size
    c = size / 2
    m = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    new_lm = (lm - c) @ m.T + c + t
    inv = np.linalg.inv(m)  # output -> input: p_in = inv (p_out - c - t) + c
    off = c - inv @ (np.array([c, c]) + t)
    coeffs = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
    fill = tuple(int(v) for v in img.reshape(-1, 3).mean(0))
    out = Image.fromarray(img).transform((size, size), Image.Transform.AFFINE, coeffs,
                                         Image.Resampling.BILINEAR, fillcolor=fill)
    return np.asarray(out), new_lm


def _jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(float) * rng.uniform(0.75, 1.25, 3) + rng.uniform(-20, 20)
    return np.clip(x, 0, 255).astype(np.uint8)


def make_training_set(n_procedural: int, n_photo: int, n_negative: int, seed: int = 0
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images [N, 3, 64, 64] in [0, 1], landmarks [N, 12, 2] (centred fractions) and presence
    labels [N] (see the module notes)."""
    from gsc_semantic.data.photos import load_photo, photo_sources

    rng = np.random.default_rng([seed, 1212])
    imgs, lms, labels = [], [], []
    size = INPUT_SIZE
    for _ in range(n_procedural):
        img, lm = render_face(sample_face_params(rng), size)
        imgs.append(img)
        lms.append(lm)
        labels.append(1.0)
    faces = {name: photo_face(name, size) for name in PHOTO_LANDMARKS}
    names = sorted(faces)
    for i in range(n_photo):
        base_img, base_lm = faces[names[i % len(names)]]
        u = rng.uniform(-1.3, 1.3, 6)
        lm = animate_landmarks(base_lm, u[0], u[1], 10 * u[2], u[3], abs(u[4]), u[5])
        img = np.round(warp_to_landmarks(base_img, base_lm, lm) * 255).astype(np.uint8)
        img, lm = _similarity(img, lm, rng)
        if rng.random() < 0.5:
            img = img[:, ::-1].copy()
            lm = np.stack([size - lm[:, 0], lm[:, 1]], -1)[FLIP_ORDER]
        imgs.append(_jitter(img, rng))
        lms.append(lm)
        labels.append(1.0)
    photos = [load_photo(n, 192) for n in _NEGATIVE_SOURCES if n in photo_sources()]
    for _ in range(n_negative):
        p = photos[int(rng.integers(len(photos)))]
        crop = int(rng.integers(48, 160))
        h, w = p.shape[-2:]
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        c = (p[:, y:y + crop, x:x + crop].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        imgs.append(_jitter(np.asarray(Image.fromarray(c).resize((size, size))), rng))
        lms.append(np.zeros((12, 2)))
        labels.append(0.0)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().div(255.0)
    y = torch.from_numpy(np.stack(lms) / size - 0.5).float()
    return x, y, torch.tensor(labels)


def train_landmarks(steps: int = 1200, batch: int = 32, seed: int = 0,
                    n_procedural: int = 3000, n_photo: int = 1500, n_negative: int = 1000,
                    log=print) -> LandmarkNet:
    """Train :class:`LandmarkNet` (Adam, cosine learning rate; smooth-L1 on the landmarks of
    faces + BCE on presence). A few minutes on one CPU thread with the defaults."""
    torch.manual_seed(seed)
    x, y, present = make_training_set(n_procedural, n_photo, n_negative, seed)
    net = LandmarkNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        lm, logit = net(x[idx])
        pos = present[idx] > 0.5
        loss_lm = nn.functional.smooth_l1_loss(lm[pos], y[idx][pos], beta=0.01) * 10
        loss = loss_lm + nn.functional.binary_cross_entropy_with_logits(logit, present[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            log(f"landmarks step {step}: loss {loss.item():.4f}")
    return net.eval()
