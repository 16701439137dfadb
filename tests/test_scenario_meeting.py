"""Meeting scenario (issue #6): clips, landmarks, keypoint coding, decoder, H.264 baseline,
budgets, ``run_meeting`` end to end and bad input. Small and fast (64x64, a few frames)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from bridge.common import ConfigError
from gsc_semantic.scenarios.common import parse_link
from gsc_semantic.scenarios.meeting_clips import (
    load_clip,
    photo_face,
    synthetic_clip,
    warp_to_landmarks,
)
from gsc_semantic.scenarios.meeting_decoder import MeetingDecoder, RefineUNet, heatmaps
from gsc_semantic.scenarios.meeting_h264 import (
    H264Link,
    decode_h264,
    encode_h264,
    fit_h264,
    strip_sei,
)
from gsc_semantic.scenarios.meeting_keypoints import bits_to_int, int_to_bits
from gsc_semantic.scenarios.meeting_metrics import temporal_error

torch.set_num_threads(1)


# ---- clips -----------------------------------------------------------------------------
def test_warp_moves_a_marked_pixel_onto_the_target_landmark():
    _, lm = photo_face("astronaut", 64)
    img = np.zeros((64, 64, 3), np.uint8)
    x, y = (int(v) for v in lm[6])  # nose tip
    img[y, x] = 255
    dst = lm.copy()
    dst[6] += [3.0, -2.0]
    out = warp_to_landmarks(img, lm, dst)[..., 0]
    yy, xx = np.unravel_index(np.argmax(out), out.shape)
    assert abs(xx + 0.5 - (x + 0.5 + 3.0)) <= 1.0 and abs(yy + 0.5 - (y + 0.5 - 2.0)) <= 1.0


@pytest.mark.parametrize("source", ["procedural", "grace_hopper"])
def test_synthetic_clips_move_smoothly(source):
    clip = synthetic_clip(source, frames=6, size=64, seed=3)
    assert clip.frames.shape == (6, 64, 64, 3) and clip.landmarks.shape == (6, 12, 2)
    steps = np.abs(np.diff(clip.landmarks, axis=0)).max(axis=(1, 2))
    assert steps.max() < 4.0  # smooth motion at 64 px
    assert np.abs(np.diff(clip.landmarks, axis=0)).sum() > 1.0  # but it does move
    assert np.abs(np.diff(clip.frames.astype(int), axis=0)).mean() > 0.1


# ---- landmark model (shipped checkpoint) --------------------------------------------------
@pytest.fixture(scope="module")
def landmark_net():
    from bridge.common import checkpoints_root
    from gsc_semantic.scenarios.face_landmarks import LandmarkNet

    return LandmarkNet.from_pretrained(os.path.join(checkpoints_root(), "meeting_landmarks"))


@pytest.mark.parametrize("source,bound", [("procedural", 0.2), ("astronaut", 0.2)])
def test_landmark_model_on_held_out_frames(landmark_net, source, bound):
    from gsc_semantic.scenarios.face_landmarks import nme

    clip = synthetic_clip(source, frames=4, size=64, seed=4321)
    lm, conf = landmark_net.detect(clip.frames)
    assert (conf > 0.5).all()
    assert nme(lm, clip.landmarks).mean() < bound


def test_landmark_model_finds_no_face_in_plain_frames(landmark_net):
    _, conf = landmark_net.detect(np.full((2, 64, 64, 3), 90, np.uint8))
    assert (conf < 0.5).all()


# ---- keypoint coding (more in test_meeting_keypoints.py) -------------------------------
def test_bits_round_trip():
    v = np.array([0, 5, 127])
    assert bits_to_int(int_to_bits(v, 7)).tolist() == [0, 5, 127]


# ---- decoder -----------------------------------------------------------------------------
def test_decoder_shapes_reference_reuse_and_lost_reference():
    img, lm = photo_face("astronaut", 64)
    dec = MeetingDecoder(None)
    out = dec(img, lm, np.stack([lm, lm]))
    assert out.shape == (2, 64, 64, 3)
    assert np.abs(out[0].astype(int) - img).max() <= 1  # same keypoints: the reference
    gray = dec(None, lm, np.stack([lm]))
    assert (gray == 128).all()
    refined = MeetingDecoder(RefineUNet())(img, lm, np.stack([lm + 1.0]))  # zero-init head
    assert refined.shape == (1, 64, 64, 3)
    assert heatmaps(torch.from_numpy(lm[None]), 64).shape == (1, 12, 64, 64)


def test_temporal_error_sees_a_freeze():
    clip = synthetic_clip("procedural", frames=4, size=64, seed=1)
    frozen = np.repeat(clip.frames[:1], 4, axis=0)
    assert temporal_error(clip.frames, clip.frames) == 0.0
    assert temporal_error(frozen, clip.frames) > 0.005


# ---- H.264 baseline ----------------------------------------------------------------------
def test_strip_sei_keeps_slices():
    pk = b"\x00\x00\x00\x01\x67sps\x00\x00\x00\x01\x06sei\x00\x00\x01\x65idr"
    assert strip_sei(pk) == b"\x00\x00\x00\x01\x67sps\x00\x00\x01\x65idr"


def test_h264_fit_and_lost_packets_freeze():
    clip = synthetic_clip("astronaut", frames=4, size=64, seed=2)
    crf, pk = fit_h264(clip.frames, 600)
    assert crf is not None and sum(len(p) + 2 for p in pk) <= 600
    assert fit_h264(clip.frames, 20) == (None, [])
    shown, status = decode_h264(encode_h264(clip.frames, 25), [True, True, False, True], 64)
    assert status[2] == "lost" and np.array_equal(shown[2], shown[1])
    assert np.abs(shown[0].astype(int) - clip.frames[0]).mean() < 12


def test_budget_accounting_h264_and_gsc():
    from gsc_semantic.scenarios.meeting import GscMeeting, load_models
    from gsc_semantic.scenarios.meeting_keypoints import KeypointCodec

    clip = synthetic_clip("procedural", frames=4, size=64, seed=5)
    rho = 1 / 4  # 4 frames: the reference needs a larger share than in a long clip
    budget = rho * 3 * 64 * 64
    res = H264Link("awgn", rho)(clip.frames, 20.0)
    assert res.bytes_sent <= res.budget_bytes and res.channel_uses <= 4 * budget + 1e-6
    assert sum(res.counts.values()) == 4
    codec = KeypointCodec(load_models()[2])
    gsc = GscMeeting(clip.frames, clip.landmarks, np.ones(4, bool), MeetingDecoder(None),
                     "awgn", rho, codec)
    assert gsc.channel_uses_per_frame <= budget + 1e-6
    ref_bits = 8 * gsc.ref_bytes + codec.reference_bits  # sent once, spread over 4 frames
    assert gsc.bits_per_frame == pytest.approx(codec.bits_per_frame(4) + ref_bits / 4)
    shown, rec = gsc(20.0, seed=0)
    assert shown.shape == clip.frames.shape and rec["reference_delivered"]
    assert sum(rec["frame_status"].values()) == 4 and rec["frames_ok"] == 4
    assert rec["frame_status"]["interpolated"] == 1  # key frames 0, 2, 3
    fixed = GscMeeting(clip.frames, clip.landmarks, np.ones(4, bool), MeetingDecoder(None),
                       "awgn", rho, codec, mcs=11, reference_mcs=5, reference_quality=10)
    assert fixed.ref_quality == 10 and fixed.ref_mcs == 5
    assert fixed.channel_uses_per_frame < gsc.channel_uses_per_frame


# ---- run_meeting and bad input -----------------------------------------------------------
def test_run_meeting_tiny_clip_writes_files(tmp_path):
    from gsc_semantic.scenarios.meeting import run_meeting
    from gsc_semantic.scenarios.meeting_budget import GscSetting

    doc = run_meeting(parse_link("sim"), "awgn", [0.0, 20.0], str(tmp_path), seed=0,
                      frames=3, rho=1 / 3, echo=lambda *_: None, clip="astronaut",
                      equal_nme_settings=(GscSetting(6, 0.1, 2, 30),))
    for name in ("meeting.json", "meeting.md", "meeting.gif", "meeting.png", "report.html",
                 "meeting_snr0.png", "meeting_snr20.png"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "meeting.json").read_text())
    assert {r["method"] for r in saved["rows"]} == {"gsc", "h264", "jpeg", "jpeg-ra"}
    assert len(saved["rows"]) == 8 and saved["snr_kind"] == "esno"
    gsc20 = next(r for r in doc["rows"] if r["method"] == "gsc" and r["snr_db"] == 20.0)
    assert gsc20["frames_ok"] == 3 and gsc20["channel_uses_per_frame"] <= 4096.0
    eq = saved["equal_nme"]
    assert eq["snrs"] == [0.0] and eq["h264"] and {p["policy"] for p in eq["gsc"]} == {
        "link-adapted", "robust", "as run"}
    assert any(r["policy"] == "as run" for r in eq["comparison"])
    for name in ("meeting_equal_nme.md", "meeting_equal_nme.png"):
        assert (tmp_path / name).is_file(), name


def test_run_meeting_trials_give_means_with_confidence_intervals(tmp_path):
    from gsc_semantic.scenarios.meeting import run_meeting
    from gsc_semantic.scenarios.meeting_budget import GscSetting

    doc = run_meeting(parse_link("sim"), "awgn", [20.0], str(tmp_path), seed=0, frames=3,
                      rho=1 / 3, echo=lambda *_: None, clip="astronaut", trials=2,
                      equal_nme_settings=(GscSetting(6, 0.1, 2, 30),))
    assert doc["config"]["trials"] == 2
    for r in doc["rows"]:
        assert r["trials"] == 2 and r["nme_ci95"] is not None and len(r["per_frame"]["nme"]) == 3
    assert "nme_ci95" in (tmp_path / "meeting.md").read_text()


def _write_frames(folder, sizes):
    os.makedirs(folder, exist_ok=True)
    for i, s in enumerate(sizes):
        Image.new("RGB", (s, s), (90, 90, 90)).save(os.path.join(folder, f"{i:03d}.png"))


def test_bad_clips_raise_one_line_config_errors(tmp_path):
    from gsc_semantic.scenarios.meeting import run_meeting

    def run(clip, link="sim"):
        return run_meeting(parse_link(link), "awgn", [10.0], str(tmp_path / "out"), seed=0,
                           frames=3, rho=1 / 3, echo=lambda *_: None, clip=clip)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no frames"):
        load_clip(str(empty))
    _write_frames(tmp_path / "mixed", [64, 48])
    with pytest.raises(ConfigError, match="different sizes"):
        load_clip(str(tmp_path / "mixed"))
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(ConfigError, match="cannot decode|no video"):
        load_clip(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        load_clip(str(tmp_path / "missing.mp4"))
    _write_frames(tmp_path / "noface", [64, 64, 64])
    with pytest.raises(ConfigError, match="no face"):
        run(str(tmp_path / "noface"))
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(ConfigError, match="not a folder"):
        run("procedural", link=f"sigmf:{tmp_path / 'afile'}")
    with pytest.raises(ConfigError, match="unknown clip source|does not exist"):
        run("nosuchclip")
