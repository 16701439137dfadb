"""SigMF recordings through the sigmf package (hardware/sigmf_io.py), ML side."""

import json
import os

import numpy as np
import pytest

sigmf = pytest.importorskip("sigmf")
from sigmf import sigmffile  # noqa: E402

from hardware.sigmf_io import (  # noqa: E402
    FRAME_LABEL,
    FrameAnnotation,
    RecordingError,
    SigMFRecorder,
    read_recording,
    recording_summary,
    write_recording,
)
from hardware.sigmf_lite import SigMFWriter  # noqa: E402
from hardware.sigmf_lite import read_recording as read_lite  # noqa: E402


def iq(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * 0.1).astype(np.complex64)


def record(tmp_path, name="rx", n=5000):
    frames = [FrameAnnotation(100, 1000, seq=0, crc_ok=True, snr_db=17.5, cfo_hz=812.0),
              {"sample_start": 2000, "sample_count": 1000, "seq": 1, "crc_ok": False}]
    base = str(tmp_path / "caps" / name)
    write_recording(base, iq(n), sample_rate_hz=2.16e6, center_freq_hz=2.45e9, gain_db=30,
                    hw="USRP B210 (type=b200), RX2", annotations=frames,
                    datetime_utc="2025-01-02T03:04:05.000000Z",
                    extra_global={"gsc:profile": "b210"})
    return base


def test_recording_has_device_rate_frequency_gain_time_and_frames(tmp_path):
    base = record(tmp_path)
    f = sigmffile.fromfile(base)  # the reference reader, checksum included
    f.validate()
    g = f.get_global_info()
    assert g["core:sample_rate"] == 2.16e6 and g["core:hw"].startswith("USRP B210")
    assert g["core:datatype"] == "cf32_le" and g["gsc:profile"] == "b210"
    cap = f.get_captures()[0]
    assert cap["core:frequency"] == 2.45e9 and cap["gsc:gain_db"] == 30.0
    assert cap["core:datetime"] == "2025-01-02T03:04:05.000000Z"
    anns = f.get_annotations()
    assert [a["core:label"] for a in anns] == [FRAME_LABEL] * 2
    assert anns[0]["gsc:crc_ok"] is True and anns[0]["gsc:snr_db"] == 17.5
    assert anns[1]["gsc:seq"] == 1 and anns[1]["core:sample_count"] == 1000
    np.testing.assert_array_equal(f.read_samples(), iq())
    rec = read_recording(base)
    np.testing.assert_array_equal(rec.samples(), iq())
    s = recording_summary(rec)
    assert s["frames"] == 2 and s["frames_crc_ok"] == 1 and s["gain_db"] == 30.0
    assert s["duration_s"] == pytest.approx(5000 / 2.16e6)


def test_streaming_recorder(tmp_path):
    base = str(tmp_path / "stream")
    with SigMFRecorder(base, 1e6, center_freq_hz=915e6) as rec:
        for k in range(5):
            rec.write(iq(1000, seed=k))
        rec.annotate(FrameAnnotation(0, 4000, seq=3))
    f = sigmffile.fromfile(base)
    assert f.sample_count == 5000
    np.testing.assert_array_equal(f.read_samples(3000, 1000), iq(1000, seed=3))


def test_both_readers_agree_both_ways(tmp_path):
    base = record(tmp_path)
    lite = read_lite(base)  # radio-side reader on a sigmf-package recording
    np.testing.assert_array_equal(lite.samples(), iq())
    assert lite.annotations[0]["gsc:seq"] == 0
    other = str(tmp_path / "lite")
    w = SigMFWriter(other, sample_rate_hz=1e6, center_freq_hz=433.92e6, datatype="ci16_le",
                    hw="radio side")
    w.write(iq(300) * 5)
    w.annotate(10, 20, label=FRAME_LABEL, **{"gsc:seq": 4})
    w.close()
    rec = read_recording(other)  # schema-validated by the sigmf package
    f = sigmffile.fromfile(other)
    np.testing.assert_allclose(f.read_samples(), rec.samples(), atol=1e-6)


def test_bad_writes(tmp_path):
    base = record(tmp_path)
    with pytest.raises(RecordingError, match="already exists"):
        record(tmp_path)
    with pytest.raises(RecordingError, match="outside the 100 recorded samples"):
        write_recording(str(tmp_path / "x"), iq(100), sample_rate_hz=1e6,
                        annotations=[FrameAnnotation(90, 20)])
    with pytest.raises(RecordingError, match="unknown frame annotation field 'start'"):
        write_recording(str(tmp_path / "y"), iq(100), sample_rate_hz=1e6,
                        annotations=[{"start": 1}])
    with pytest.raises(RecordingError, match="sample_rate_hz"):
        SigMFRecorder(str(tmp_path / "z"), 0)
    assert os.path.exists(base + ".sigmf-meta")


def _edit(base, change):
    path = base + ".sigmf-meta"
    meta = json.load(open(path))
    change(meta)
    json.dump(meta, open(path, "w"))


@pytest.mark.parametrize("case,needle", [
    ("truncated_data", "not a whole number"),
    ("short_data", "ends at sample"),
    ("flipped_byte", "does not match the core:sha512"),
    ("truncated_meta", "not valid JSON"),
    ("schema", "does not validate as SigMF"),
    ("missing_data", "no SigMF data file"),
])
def test_corrupted_recordings(tmp_path, case, needle):
    base = record(tmp_path)
    data = base + ".sigmf-data"
    if case == "truncated_data":
        os.truncate(data, os.path.getsize(data) - 5)
    elif case == "short_data":
        os.truncate(data, 8 * 2500)
    elif case == "flipped_byte":
        with open(data, "r+b") as fh:
            fh.seek(1000)
            fh.write(b"\x55")
    elif case == "truncated_meta":
        os.truncate(base + ".sigmf-meta", 300)
    elif case == "schema":
        _edit(base, lambda m: m["captures"][0].update({"core:datetime": 5}))
    elif case == "missing_data":
        os.remove(data)
    with pytest.raises(RecordingError) as ei:
        read_recording(base)
    assert needle in str(ei.value) and "\n" not in str(ei.value)
