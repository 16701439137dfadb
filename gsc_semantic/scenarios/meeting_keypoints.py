"""Keypoint coding for the meeting scenario: a few basis coefficients per frame, two layers.

**Reference landmarks** (sent once with the reference image): every coordinate as an
``ref_bits``-bit natural-binary index of ``x / size`` (uniform, step ``size / 2**ref_bits``).
Their inter-ocular distance ``iod`` (eye centres, landmarks 0 and 1) is the unit of
everything below, the unit the NME metric uses.

**Per-frame keypoints**: the displacement of the 12 landmarks from the reference landmarks,
divided by ``iod``, is projected on the first ``components`` rows of a
:class:`KeypointBasis` (orthonormal, learned by PCA on the displacements of training clips:
pose and expression; :func:`fit_basis`). Coefficient ``k`` is clipped to ``±R_k`` (the
training range) and quantised uniformly with ``b_k = ceil(log2(2 R_k / step))`` bits
(natural binary, index ``q = floor((c + R_k) / s_k)``, ``s_k = 2 R_k / 2**b_k <= step``,
value ``-R_k + (q + 0.5)·s_k``). Fixed length, no entropy coding and no prediction between
frames: every frame decodes on its own, and a bit error moves one coefficient by at most its
bit weight (``2**j·s_k``). The projection also drops the detector's noise outside the
subspace of face motion. Bits per key frame (shipped basis, ``step = 0.1``): 29 (6
coefficients + 1 flag) instead of 24 coordinates × 7 bits.

**Key frames** (:meth:`KeypointCodec.key_frames`): keypoints are sent for every
``interval``-th frame and the last one; the receiver interpolates linearly in between (for
``interval = 2``: one frame of delay, 40 ms at 25 fps), so the shipped default costs
``29 / 2 = 14.5`` bits per frame.

- **layer 1** (``1 + Σ (b_k - l_k)``): a *face-present* flag and the MSBs of every index;
- **layer 2** (``Σ l_k``, ``l_k = min(lsb_bits, b_k - 1)``): the least significant bits.

Decoding (:meth:`KeypointCodec.decode`): layer 1 of a key frame erased (or flag 0: no face
detected at the transmitter) -> the previous key frame's keypoints are reused (the reference
landmarks for the first); layer 2 erased -> the LSBs are replaced by the middle of their
span (error at most ``2**(l_k - 1)`` steps). Every frame gets a status: ``ok``, ``coarse``
(layer 2 lost), ``interpolated`` (between two decoded key frames), ``reused_lost`` (layer 1
of its key frame, or of one of the two it lies between, lost) or ``reused_no_face``.

Example::

    >>> basis = KeypointBasis(np.eye(24)[:2], np.array([1.0, 1.0]))
    >>> codec = KeypointCodec(basis, components=2, step=0.1, interval=2)
    >>> ref = np.zeros((12, 2), np.float32); ref[1, 0] = 10.0       # iod = 10 px
    >>> lm = np.repeat(ref[None], 3, 0); lm[:, 0, 0] += [2.0, 2.5, 3.0]
    >>> l1, l2 = codec.encode(lm, np.ones(3, bool), ref)             # key frames 0 and 2
    >>> out, status = codec.decode(l1, l2, [False] * 2, [False] * 2, ref, frames=3)
    >>> bool(np.abs(out[:, 0, 0] - lm[:, 0, 0]).max() <= 10 * codec.component_steps[0] / 2)
    True
    >>> status
    ['ok', 'interpolated', 'ok']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bridge.common import ConfigError
from gsc_semantic.scenarios.meeting_checkpoints import load_arrays, save_arrays

__all__ = ["KeypointBasis", "KeypointCodec", "fit_basis", "inter_ocular", "FRAME_STATUS",
           "DELIVERED_STATUS", "int_to_bits", "bits_to_int"]

FRAME_STATUS = ("ok", "coarse", "interpolated", "reused_lost", "reused_no_face")
#: Statuses of frames whose keypoints were received (not reused).
DELIVERED_STATUS = ("ok", "coarse", "interpolated")
_COORDS = 24


def int_to_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Non-negative ints [...] -> MSB-first bits [..., bits] (uint8).

    Example::

        >>> int_to_bits(np.array([5]), 4).tolist()
        [[0, 1, 0, 1]]
    """
    v = np.asarray(values, dtype=np.int64)[..., None]
    return ((v >> np.arange(bits - 1, -1, -1)) & 1).astype(np.uint8)


def bits_to_int(bits: np.ndarray) -> np.ndarray:
    """MSB-first bits [..., B] -> ints [...] (inverse of :func:`int_to_bits`)."""
    b = np.asarray(bits, dtype=np.int64)
    return (b << np.arange(b.shape[-1] - 1, -1, -1)).sum(-1)


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the eye centres (landmarks 0 and 1) of [..., 12, 2], at least 1 px.

    Example::

        >>> lm = np.zeros((12, 2)); lm[1] = [3.0, 4.0]
        >>> float(inter_ocular(lm))
        5.0
    """
    lm = np.asarray(landmarks, float)
    return np.maximum(np.linalg.norm(lm[..., 1, :] - lm[..., 0, :], axis=-1), 1.0)


@dataclass(frozen=True)
class KeypointBasis:
    """Orthonormal basis of landmark displacements in inter-ocular units.

    :param vectors: [K, 24] orthonormal rows, most important first (``(x0, y0, x1, ...)``).
    :param ranges: [K] half-range ``R_k`` of each coefficient.
    """

    vectors: np.ndarray
    ranges: np.ndarray

    def __post_init__(self) -> None:
        v = np.asarray(self.vectors, float)
        if v.ndim != 2 or v.shape[1] != _COORDS or len(self.ranges) != len(v):
            raise ConfigError(f"a keypoint basis needs vectors [K, {_COORDS}] and K ranges, got "
                              f"{v.shape} and {len(self.ranges)}")
        if not np.allclose(v @ v.T, np.eye(len(v)), atol=1e-4):
            raise ConfigError("the keypoint basis vectors are not orthonormal")

    def save_pretrained(self, directory: str, training: dict) -> None:
        """Write ``model.safetensors`` (vectors, ranges) and ``config.json``."""
        save_arrays({"vectors": np.asarray(self.vectors, np.float32),
                     "ranges": np.asarray(self.ranges, np.float32)}, directory,
                    {"model": "KeypointBasis", "components": len(self.vectors),
                     "training": training})

    @classmethod
    def from_pretrained(cls, directory: str) -> KeypointBasis:
        """Load a folder written by :meth:`save_pretrained` (verified against the
        manifest)."""
        arrays, _ = load_arrays(directory)
        return cls(arrays["vectors"].astype(float), arrays["ranges"].astype(float))


def fit_basis(displacements: np.ndarray, components: int, margin: float = 1.1
              ) -> KeypointBasis:
    """PCA of displacements [N, 24] (inter-ocular units) -> the first ``components``
    principal directions, with ranges ``margin × max |coefficient|`` over the data.

    Example::

        >>> d = np.random.default_rng(0).normal(size=(200, 24)) * np.linspace(2, 0.1, 24)
        >>> fit_basis(d, 3).vectors.shape
        (3, 24)
    """
    d = np.asarray(displacements, float).reshape(len(displacements), _COORDS)
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    vectors = vt[:components]
    vectors *= np.where(vectors.sum(1, keepdims=True) < 0, -1.0, 1.0)  # a fixed sign
    return KeypointBasis(vectors, margin * np.abs(d @ vectors.T).max(0))


@dataclass(frozen=True)
class KeypointCodec:
    """Quantiser and layer packer of the meeting keypoints (see the module notes).

    :param basis: the :class:`KeypointBasis`.
    :param components: coefficients sent per frame (at most the basis size).
    :param step: largest quantisation step of a coefficient, inter-ocular units.
    :param lsb_bits: least significant bits per coefficient in layer 2.
    :param interval: keypoints are sent for every ``interval``-th frame (and the last).
    :param size: frame side in pixels; ``ref_bits``: bits per reference coordinate.
    """

    basis: KeypointBasis
    components: int = 6
    step: float = 0.1
    lsb_bits: int = 2
    interval: int = 2
    size: int = 64
    ref_bits: int = 8
    bits_per_component: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.components <= len(self.basis.vectors):
            raise ConfigError(f"keypoint components must be in 1..{len(self.basis.vectors)}, "
                              f"got {self.components}")
        if not self.step > 0 or self.lsb_bits < 1 or not 1 <= self.ref_bits <= 16 \
                or self.interval < 1:
            raise ConfigError(f"keypoint step must be > 0, lsb_bits >= 1, ref_bits in 1..16 "
                              f"and interval >= 1, got {self.step}, {self.lsb_bits}, "
                              f"{self.ref_bits}, {self.interval}")
        r = np.asarray(self.basis.ranges[:self.components], float)
        bits = np.maximum(np.ceil(np.log2(2 * r / self.step - 1e-9)), 2).astype(int)
        if bits.max() > 16:
            raise ConfigError(f"keypoint step {self.step} is too fine (over 16 bits per "
                              "coefficient)")
        object.__setattr__(self, "bits_per_component", tuple(int(b) for b in bits))

    @property
    def ranges(self) -> np.ndarray:
        return np.asarray(self.basis.ranges[:self.components], float)

    @property
    def component_steps(self) -> np.ndarray:
        """Actual quantisation step of each coefficient (inter-ocular units)."""
        return 2 * self.ranges / 2.0 ** np.array(self.bits_per_component)

    @property
    def _lsb(self) -> np.ndarray:
        return np.minimum(self.lsb_bits, np.array(self.bits_per_component) - 1)

    @property
    def layer_bits(self) -> tuple[int, int]:
        """Bits per frame of layer 1 and layer 2."""
        lsb = int(self._lsb.sum())
        return 1 + sum(self.bits_per_component) - lsb, lsb

    @property
    def bits_per_key_frame(self) -> int:
        return sum(self.layer_bits)

    def key_frames(self, frames: int) -> np.ndarray:
        """Indices of the frames whose keypoints are sent: every ``interval``-th and the last.

        Example::

            >>> basis = KeypointBasis(np.eye(24)[:1], np.ones(1))
            >>> KeypointCodec(basis, 1, interval=3).key_frames(8).tolist()
            [0, 3, 6, 7]
        """
        return np.unique(np.r_[np.arange(0, frames, self.interval), frames - 1])

    def bits_per_frame(self, frames: int) -> float:
        """Keypoint bits per frame of a clip of ``frames`` frames (key frames spread)."""
        return self.bits_per_key_frame * len(self.key_frames(frames)) / frames

    @property
    def reference_bits(self) -> int:
        return _COORDS * self.ref_bits

    # ---- reference landmarks
    def encode_reference(self, landmarks: np.ndarray) -> np.ndarray:
        """Absolute landmarks [12, 2] -> bits [reference_bits]."""
        levels = 2 ** self.ref_bits
        q = np.clip(np.floor(np.asarray(landmarks, float) / self.size * levels), 0, levels - 1)
        return int_to_bits(q.reshape(-1), self.ref_bits).reshape(-1)

    def decode_reference(self, bits: np.ndarray) -> np.ndarray:
        """Bits [reference_bits] -> landmarks [12, 2] (float32, cell centres)."""
        q = bits_to_int(np.asarray(bits).reshape(_COORDS, self.ref_bits))
        return ((q + 0.5) * self.size / 2 ** self.ref_bits).reshape(12, 2).astype(np.float32)

    # ---- coefficients
    def coefficients(self, landmarks: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Landmarks [T, 12, 2] -> basis coefficients [T, components] (inter-ocular units)."""
        d = (np.asarray(landmarks, float) - reference) / inter_ocular(reference)
        return d.reshape(len(d), _COORDS) @ self.basis.vectors[:self.components].T

    def landmarks(self, coefficients: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Coefficients [T, components] -> landmarks [T, 12, 2] (float32)."""
        d = np.asarray(coefficients, float) @ self.basis.vectors[:self.components]
        lm = np.asarray(reference, float) + d.reshape(-1, 12, 2) * inter_ocular(reference)
        return lm.astype(np.float32)

    def quantize(self, coefficients: np.ndarray) -> np.ndarray:
        """Coefficients [T, K] -> indices [T, K] (``0 <= q_k < 2**b_k``)."""
        r, s = self.ranges, self.component_steps
        q = np.floor((np.clip(coefficients, -r, r) + r) / s).astype(np.int64)
        return np.clip(q, 0, 2 ** np.array(self.bits_per_component) - 1)

    def dequantize(self, indices: np.ndarray) -> np.ndarray:
        """Indices [T, K] -> coefficients [T, K] (cell centres)."""
        return -self.ranges + (np.asarray(indices, float) + 0.5) * self.component_steps

    # ---- layers
    def encode(self, landmarks: np.ndarray, present: np.ndarray, reference: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks [T, 12, 2] + face-present flags [T] -> (layer 1 [N, L1], layer 2
        [N, L2]) uint8 bits of the ``N`` key frames (:meth:`key_frames`). Key frames without
        a face carry flag 0 and the reference."""
        keys = self.key_frames(len(landmarks))
        present = np.asarray(present, bool)[keys]
        lm = np.where(present[:, None, None], np.asarray(landmarks)[keys],
                      np.asarray(reference)[None])
        q = self.quantize(self.coefficients(lm, reference))
        msb, lsb = [present[:, None].astype(np.uint8)], []
        for k, (b, lo) in enumerate(zip(self.bits_per_component, self._lsb, strict=True)):
            msb.append(int_to_bits(q[:, k] >> lo, b - lo))
            lsb.append(int_to_bits(q[:, k] & ((1 << lo) - 1), lo))
        return np.concatenate(msb, 1), np.concatenate(lsb, 1)

    def _indices(self, layer1: np.ndarray, layer2: np.ndarray | None) -> np.ndarray:
        """Indices of one key frame; without layer 2 the middle of the LSBs' span (a
        fractional index: error at most ``2**(l_k - 1)`` steps)."""
        q, i, j = [], 1, 0
        for b, lo in zip(self.bits_per_component, self._lsb, strict=True):
            hi = int(bits_to_int(layer1[i:i + b - lo]))
            low = ((1 << lo) - 1) / 2 if layer2 is None else int(bits_to_int(layer2[j:j + lo]))
            q.append(hi * (1 << lo) + low)
            i, j = i + b - lo, j + lo
        return np.array(q, float)

    def decode(self, layer1: np.ndarray, layer2: np.ndarray, erased1, erased2,
               reference: np.ndarray, frames: int | None = None,
               previous: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
        """Received layers [N, L1], [N, L2] of the key frames and their erasure flags [N] ->
        landmarks [T, 12, 2] and a status per frame (see the module notes).

        :param frames: clip length ``T`` (default: ``N``, every frame a key frame; the key
            frames of ``T`` must number ``N``).
        :param previous: keypoints to reuse before the first good key frame (default:
            ``reference``).
        """
        frames = len(layer1) if frames is None else frames
        keys = self.key_frames(frames) if frames else np.zeros(0, int)
        if len(keys) != len(layer1):
            raise ValueError(f"{len(layer1)} key frames received, a clip of {frames} frames "
                             f"has {len(keys)}")
        last = np.asarray(reference if previous is None else previous, np.float32)
        key_lm, key_status = [], []
        for t in range(len(layer1)):
            if erased1[t] or layer1[t, 0] == 0:
                key_status.append("reused_lost" if erased1[t] else "reused_no_face")
                key_lm.append(last)
                continue
            q = self._indices(np.asarray(layer1[t]), None if erased2[t] else
                              np.asarray(layer2[t]))
            key_status.append("coarse" if erased2[t] else "ok")
            last = self.landmarks(self.dequantize(q[None]), reference)[0]
            key_lm.append(last)
        out, status = [], []
        for i, (k0, k1) in enumerate(zip(keys[:-1], keys[1:], strict=True)):
            out.append(key_lm[i])
            status.append(key_status[i])
            for t in range(k0 + 1, k1):
                f = (t - k0) / (k1 - k0)
                out.append((1 - f) * key_lm[i] + f * key_lm[i + 1])
                bad = [s for s in key_status[i:i + 2] if s not in DELIVERED_STATUS]
                status.append(bad[0] if bad else "interpolated")
        if len(keys):
            out.append(key_lm[-1])
            status.append(key_status[-1])
        lm = np.stack(out).astype(np.float32) if out else np.zeros((0, 12, 2), np.float32)
        return lm, status
