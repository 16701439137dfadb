"""Meeting keypoint coding (basis coefficients, key frames, two layers) and the
channel-uses-for-equal-NME computation (issue #6). Small and fast."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bridge.common import ConfigError
from gsc_semantic.scenarios.meeting_budget import channel_uses_for_nme, compare
from gsc_semantic.scenarios.meeting_keypoints import (
    KeypointBasis,
    KeypointCodec,
    fit_basis,
    inter_ocular,
)


@pytest.fixture(scope="module")
def basis():
    from bridge.common import checkpoints_root

    return KeypointBasis.from_pretrained(os.path.join(checkpoints_root(),
                                                      "meeting_keypoint_basis"))


def _reference() -> np.ndarray:
    from gsc_semantic.scenarios.meeting_clips import photo_face

    return photo_face("astronaut", 64)[1]


def _motion(codec: KeypointCodec, ref: np.ndarray, frames: int, seed: int = 0) -> np.ndarray:
    """Landmarks inside the codec's subspace and ranges (so only quantisation is lost)."""
    c = np.random.default_rng(seed).uniform(-0.8, 0.8, (frames, codec.components))
    return codec.landmarks(c * codec.ranges, ref)


def test_shipped_basis_is_small_and_cheap(basis):
    codec = KeypointCodec(basis)  # the scenario's default
    assert codec.bits_per_key_frame == 29 and codec.layer_bits[1] == 12
    assert codec.bits_per_frame(16) == pytest.approx(29 * 9 / 16)  # keys 0,2,..,14,15
    assert codec.bits_per_frame(1000) < 15
    assert KeypointCodec(basis, interval=1).bits_per_frame(16) == 29


def test_round_trip_error_within_half_a_step(basis):
    codec = KeypointCodec(basis, interval=1)
    ref = codec.decode_reference(codec.encode_reference(_reference()))
    lm = _motion(codec, ref, 6)
    l1, l2 = codec.encode(lm, np.ones(6, bool), ref)
    assert l1.shape == (6, codec.layer_bits[0]) and l2.shape == (6, codec.layer_bits[1])
    out, status = codec.decode(l1, l2, np.zeros(6, bool), np.zeros(6, bool), ref)
    assert status == ["ok"] * 6
    coef_err = np.abs(codec.coefficients(out, ref) - codec.coefficients(lm, ref))
    assert (coef_err <= codec.component_steps / 2 + 1e-6).all()
    bound = np.linalg.norm(codec.component_steps / 2) * inter_ocular(ref)  # per point, px
    assert np.linalg.norm(out - lm, axis=-1).max() <= bound + 1e-4


def test_key_frames_interpolate_and_count_every_frame(basis):
    codec = KeypointCodec(basis, interval=3)
    ref = _reference()
    lm = _motion(codec, ref, 8)
    assert codec.key_frames(8).tolist() == [0, 3, 6, 7]
    l1, l2 = codec.encode(lm, np.ones(8, bool), ref)
    assert len(l1) == 4
    out, status = codec.decode(l1, l2, [False] * 4, [False] * 4, ref, frames=8)
    assert status == ["ok", "interpolated", "interpolated", "ok", "interpolated",
                      "interpolated", "ok", "ok"]
    assert np.allclose(out[1], (2 * out[0] + out[3]) / 3, atol=1e-4)
    with pytest.raises(ValueError, match="key frames"):
        codec.decode(l1, l2, [False] * 4, [False] * 4, ref, frames=12)


def test_erasures_reuse_previous_keypoints_and_are_counted(basis):
    codec = KeypointCodec(basis, interval=2)
    ref = _reference()
    lm = _motion(codec, ref, 5)  # key frames 0, 2, 4
    l1, l2 = codec.encode(lm, np.ones(5, bool), ref)
    clean, _ = codec.decode(l1, l2, [False] * 3, [False] * 3, ref, frames=5)
    out, status = codec.decode(l1, l2, [False, True, False], [False, True, False], ref,
                               frames=5)
    assert status == ["ok", "reused_lost", "reused_lost", "reused_lost", "ok"]
    assert np.array_equal(out[2], out[0]) and np.array_equal(out[1], out[0])  # held
    assert np.array_equal(out[4], clean[4])  # no drift: key frames decode on their own
    prev = ref + 2.0
    first_lost, status = codec.decode(l1, l2, [True, False, False], [True] * 3, ref, frames=5,
                                      previous=prev)
    assert status[0] == "reused_lost" and np.array_equal(first_lost[0], prev)
    assert status[2] == "coarse" and status[3] == "interpolated"
    coarse_err = np.abs(codec.coefficients(first_lost[2:3], ref)
                        - codec.coefficients(lm[2:3], ref))
    assert (coarse_err <= codec.component_steps * 2 ** (codec.lsb_bits - 1) + 1e-6).all()
    l1_nf, l2_nf = codec.encode(lm, np.array([True, True, False, True, True]), ref)
    _, status = codec.decode(l1_nf, l2_nf, [False] * 3, [False] * 3, ref, frames=5)
    assert status[1:4] == ["reused_no_face"] * 3


def test_a_bit_error_moves_one_coefficient_by_its_weight(basis):
    codec = KeypointCodec(basis, interval=1)
    ref = _reference()
    lm = _motion(codec, ref, 1, seed=3)
    l1, l2 = codec.encode(lm, np.ones(1, bool), ref)
    clean = codec.coefficients(codec.decode(l1, l2, [False], [False], ref)[0], ref)
    for layer, pos in ((1, 1), (1, 2), (2, 0)):  # MSB and next bit of coefficient 0, an LSB
        a, b = l1.copy(), l2.copy()
        (a if layer == 1 else b)[0, pos] ^= 1
        bad = codec.coefficients(codec.decode(a, b, [False], [False], ref)[0], ref)
        diff = np.abs(bad - clean)[0]
        assert np.count_nonzero(diff > 1e-6) == 1
        b0 = codec.bits_per_component[0]
        weight = {(1, 1): b0 - 1, (1, 2): b0 - 2, (2, 0): codec.lsb_bits - 1}[(layer, pos)]
        assert diff[0] == pytest.approx(2 ** weight * codec.component_steps[0], rel=1e-5)


def test_fit_basis_and_bad_settings():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(300, 24)) * np.r_[3.0, 1.0, np.full(22, 0.01)]
    b = fit_basis(d, 2)
    assert np.allclose(np.abs(b.vectors[0, :2]), [1, 0], atol=0.05)
    assert (b.ranges >= np.abs(d @ b.vectors.T).max(0)).all()
    with pytest.raises(ConfigError, match="components"):
        KeypointCodec(b, components=3)
    with pytest.raises(ConfigError, match="interval"):
        KeypointCodec(b, components=2, interval=0)
    with pytest.raises(ConfigError, match="orthonormal"):
        KeypointBasis(np.ones((2, 24)), np.ones(2))


# ---- channel uses for equal NME -----------------------------------------------------------
def _pts(*pairs):
    return [{"channel_uses_per_frame": cu, "nme": e} for cu, e in pairs]


def test_channel_uses_for_nme_interpolates_log_linearly():
    pts = _pts((400.0, 0.05), (100.0, 0.25), (200.0, 0.07))  # any order
    cu, bound = channel_uses_for_nme(pts, 0.16)
    assert bound == "interpolated" and cu == pytest.approx(100 * 2 ** 0.5)
    assert channel_uses_for_nme(pts, 0.3) == (100.0, "lowest_point")
    assert channel_uses_for_nme(pts, 0.01) == (None, "not_reached")
    # a failed point in the middle (NME 1.0) does not hide the earlier crossing
    assert channel_uses_for_nme(_pts((100, 0.2), (150, 0.06), (300, 1.0)), 0.1)[0] < 150


def test_compare_ratio_and_bounds():
    h264 = _pts((100.0, 0.3), (200.0, 0.1))
    gsc = [{"snr_db": 10.0, "policy": "p", "setting": "s", "bits_per_frame": 30.0,
            "channel_uses_per_frame": 10.0, "nme": e} for e in (0.1, 0.01)]
    rows = compare(gsc, h264)
    assert rows[0]["ratio"] == pytest.approx(20.0) and rows[0]["h264_bound"] == "interpolated"
    assert rows[1]["ratio"] is None and rows[1]["ratio_lower_bound"] == pytest.approx(20.0)
