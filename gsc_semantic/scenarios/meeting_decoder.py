"""Receiver of the meeting scenario: regenerate every frame from the reference and keypoints.

Frame ``t`` = ``refine(warp(reference, ref_landmarks -> keypoints_t), reference,
heatmaps(keypoints_t))``:

1. **warp**: piecewise-affine warp of the reference image moving its landmarks onto the
   received keypoints (:func:`~gsc_semantic.scenarios.meeting_clips.warp_to_landmarks`,
   border pinned);
2. **refine**: :class:`RefineUNet`, a small *deterministic* conditional U-Net (not a
   diffusion model) that adds a residual to the warped image given the reference and one
   Gaussian heatmap per keypoint; trained (:func:`train_refiner`) on pairs of procedural
   faces of one identity in two poses/expressions and on pairs of warped photos, with the
   keypoints jittered by about one quantisation step.

Keypoints of lost frames are already replaced by the previous frame's
(:meth:`~gsc_semantic.scenarios.meeting_keypoints.KeypointCodec.decode`), so those frames
repeat the last pose; without a reference (its blocks failed) every frame is mid-gray.

Example::

    >>> dec = MeetingDecoder(RefineUNet())
    >>> ref = np.zeros((64, 64, 3), np.uint8); lm = np.full((12, 2), 32.0, np.float32)
    >>> dec(ref, lm, np.stack([lm, lm + 1])).shape
    (2, 64, 64, 3)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gsc_semantic.data.faces import render_face, sample_face_params
from gsc_semantic.scenarios.meeting_checkpoints import load_module, save_module
from gsc_semantic.scenarios.meeting_clips import (
    PHOTO_LANDMARKS,
    animate_landmarks,
    photo_face,
    warp_to_landmarks,
)

__all__ = ["heatmaps", "RefineUNet", "MeetingDecoder", "train_refiner", "make_pairs"]


def heatmaps(landmarks: torch.Tensor, size: int, sigma: float = 1.5) -> torch.Tensor:
    """Gaussian heatmaps [N, 12, size, size] of landmarks [N, 12, 2] (x, y pixels).

    Example::

        >>> h = heatmaps(torch.tensor([[[10.5, 20.5]] * 12]), 32)
        >>> tuple(h.shape), round(float(h[0, 0, 20, 10]), 3)
        ((1, 12, 32, 32), 1.0)
    """
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    dx = grid[None, None, None, :] - landmarks[..., 0, None, None]
    dy = grid[None, None, :, None] - landmarks[..., 1, None, None]
    return torch.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.GroupNorm(8, cout), nn.SiLU())


class RefineUNet(nn.Module):
    """Deterministic conditional U-Net (3 scales): [warped 3, reference 3, heatmaps 12]
    -> refined image, ``clamp(warped + residual, 0, 1)``.

    :input warped, reference: [N, 3, H, W] in [0, 1].
    :input maps: [N, 12, H, W] keypoint heatmaps (:func:`heatmaps`).
    :output: [N, 3, H, W] in [0, 1].
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.width = width
        self.enc1 = _block(18, w)
        self.enc2 = _block(w, 2 * w)
        self.mid = _block(2 * w, 4 * w)
        self.dec2 = _block(6 * w, 2 * w)
        self.dec1 = _block(3 * w, w)
        self.out = nn.Conv2d(w, 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, warped: torch.Tensor, reference: torch.Tensor, maps: torch.Tensor
                ) -> torch.Tensor:
        e1 = self.enc1(torch.cat([warped, reference, maps], 1))
        e2 = self.enc2(nn.functional.avg_pool2d(e1, 2))
        m = self.mid(nn.functional.avg_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([nn.functional.interpolate(m, scale_factor=2), e2], 1))
        d1 = self.dec1(torch.cat([nn.functional.interpolate(d2, scale_factor=2), e1], 1))
        return (warped + self.out(d1)).clamp(0, 1)

    def save_pretrained(self, directory: str, training: dict) -> None:
        """Write ``model.safetensors`` and ``config.json`` to ``directory``."""
        save_module(self, directory, {"model": "RefineUNet", "width": self.width,
                                      "training": training})

    @classmethod
    def from_pretrained(cls, directory: str) -> RefineUNet:
        """Load a checkpoint folder (verified against ``MANIFEST.json`` when listed)."""
        state, cfg = load_module(directory)
        net = cls(width=int(cfg["width"]))
        net.load_state_dict(state)
        return net.eval()


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    x = np.asarray(images)
    x = x / 255.0 if x.dtype == np.uint8 else x
    return torch.from_numpy(np.ascontiguousarray(x)).float().permute(0, 3, 1, 2)


class MeetingDecoder:
    """Warp + refine (see the module notes).

    :param refiner: a trained :class:`RefineUNet` (``None``: warp only).

    :input reference: uint8 [H, W, 3] reference image as received, or ``None`` when it was
        lost.
    :input ref_landmarks: [12, 2] landmarks of the reference.
    :input keypoints: [T, 12, 2] decoded keypoints per frame.
    :output: uint8 [T, H, W, 3] regenerated frames.
    """

    def __init__(self, refiner: RefineUNet | None = None) -> None:
        self.refiner = refiner.eval() if refiner is not None else None

    @torch.no_grad()
    def __call__(self, reference: np.ndarray | None, ref_landmarks: np.ndarray,
                 keypoints: np.ndarray, size: int = 64) -> np.ndarray:
        if reference is None:
            return np.full((len(keypoints), size, size, 3), 128, np.uint8)
        warped = np.stack([warp_to_landmarks(reference, ref_landmarks, k) for k in keypoints])
        out = _to_tensor(warped)
        if self.refiner is not None:
            ref = _to_tensor(reference[None]).expand(len(out), -1, -1, -1)
            maps = heatmaps(torch.from_numpy(np.asarray(keypoints, np.float32)),
                            reference.shape[0])
            out = torch.cat([self.refiner(out[i:i + 32], ref[i:i + 32], maps[i:i + 32])
                             for i in range(0, len(out), 32)])
        return (out.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def _clip_pose(rng: np.random.Generator) -> dict[str, float]:
    return {"yaw_deg": rng.uniform(-22, 22), "pitch_deg": rng.uniform(-11, 11),
            "roll_deg": rng.uniform(-11, 11), "smile": rng.uniform(-1, 1),
            "mouth_open": max(0.0, rng.uniform(-0.3, 1)), "brow_raise": rng.uniform(-1, 1),
            "eye_open": 0.05 if rng.random() < 0.1 else 0.8}


def make_pairs(n_procedural: int, n_photo: int, size: int = 64, seed: int = 0,
               jitter_px: float = 0.5) -> dict[str, torch.Tensor]:
    """Training pairs: ``{"warped", "reference", "target"}`` [N, 3, H, W] and ``"keypoints"``
    [N, 12, 2] (the target's landmarks plus Gaussian jitter of ``jitter_px``)."""
    rng = np.random.default_rng([seed, 4242])
    refs, tgts, kps = [], [], []
    for _ in range(n_procedural):
        p = sample_face_params(rng)
        ref, lm0 = render_face(p | _clip_pose(rng), size)
        tgt, lm1 = render_face(p | _clip_pose(rng), size)
        refs.append((ref, lm0))
        tgts.append(tgt)
        kps.append(lm1)
    faces = [photo_face(n, size) for n in sorted(PHOTO_LANDMARKS)]
    for i in range(n_photo):
        img, lm = faces[i % len(faces)]
        u0, u1 = rng.uniform(-1, 1, 6), rng.uniform(-1, 1, 6)
        lm0 = animate_landmarks(lm, *u0[:2], 8 * u0[2], u0[3], abs(u0[4]), u0[5])
        lm1 = animate_landmarks(lm, *u1[:2], 8 * u1[2], u1[3], abs(u1[4]), u1[5])
        ref = np.round(warp_to_landmarks(img, lm, lm0) * 255).astype(np.uint8)
        refs.append((ref, lm0))
        tgts.append(np.round(warp_to_landmarks(img, lm, lm1) * 255).astype(np.uint8))
        kps.append(lm1)
    kps = [k + rng.normal(0, jitter_px, k.shape) for k in kps]
    warped = [warp_to_landmarks(r, lm0, k) for (r, lm0), k in zip(refs, kps, strict=True)]
    return {"warped": _to_tensor(np.stack(warped)),
            "reference": _to_tensor(np.stack([r for r, _ in refs])),
            "target": _to_tensor(np.stack(tgts)),
            "keypoints": torch.from_numpy(np.stack(kps).astype(np.float32))}


def train_refiner(steps: int = 600, batch: int = 8, seed: int = 0, n_procedural: int = 1000,
                  n_photo: int = 200, log=print) -> tuple[RefineUNet, dict]:
    """Train :class:`RefineUNet` with an L1 loss (Adam, one-cycle learning rate).

    :return: the network and a report: L1 of warp-only vs warp+refine on 200 held-out pairs.
    """
    torch.manual_seed(seed)
    data = make_pairs(n_procedural, n_photo, seed=seed)
    held = make_pairs(60, 20, seed=seed + 1)
    net = RefineUNet()
    size = data["target"].shape[-1]
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    n = data["target"].shape[0]
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=gen)
        out = net(data["warped"][idx], data["reference"][idx],
                  heatmaps(data["keypoints"][idx], size))
        loss = (out - data["target"][idx]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps - 1:
            log(f"refiner step {step}: L1 {loss.item():.4f}")
    net.eval()
    with torch.no_grad():
        out = net(held["warped"], held["reference"], heatmaps(held["keypoints"], size))
    report = {"held_out_l1_warp": float((held["warped"] - held["target"]).abs().mean()),
              "held_out_l1_refined": float((out - held["target"]).abs().mean())}
    return net, report
