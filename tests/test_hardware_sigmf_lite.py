"""Minimal SigMF reader/writer (hardware/sigmf_lite.py): no sigmf package, both interpreters."""

import json
import os

import numpy as np
import pytest

from hardware.sigmf_lite import (
    RecordingError,
    SigMFWriter,
    datatype_dtype,
    read_recording,
    recording_paths,
)

pytestmark = pytest.mark.both


def signal(n=1000):
    k = np.arange(n)
    return (0.5 * np.exp(2j * np.pi * 0.013 * k) * np.cos(0.002 * k)).astype(np.complex64)


def make(tmp_path, name="rec", datatype="cf32_le", n=1000, annotations=((100, 200),)):
    base = str(tmp_path / name)
    w = SigMFWriter(base, sample_rate_hz=2.16e6, center_freq_hz=2.45e9, datatype=datatype,
                    hw="test", extra_global={"gsc:profile": "zmq"})
    w.write(signal(n)[: n // 2])
    w.write(signal(n)[n // 2:])
    for start, count in annotations:
        w.annotate(start, count, label="gsc-frame", **{"gsc:seq": 1})
    w.close()
    return base


@pytest.mark.parametrize("datatype,tol", [("cf32_le", 0), ("cf64_le", 1e-7), ("cf32_be", 0),
                                          ("ci16_le", 1 / 32768), ("ci16_be", 1 / 32768),
                                          ("ci32_le", 1e-7), ("ci8", 1 / 128),
                                          ("cu8", 1 / 128), ("cu16_le", 1 / 32768)])
def test_round_trip_every_datatype(tmp_path, datatype, tol):
    base = make(tmp_path, datatype=datatype)
    rec = read_recording(base)
    assert rec.num_samples == 1000 and rec.datatype == datatype
    assert rec.sample_rate_hz == 2.16e6 and rec.center_freq_hz == 2.45e9
    x = rec.samples()
    assert x.dtype == np.complex64
    np.testing.assert_allclose(x, signal(), atol=tol + 1e-7)
    np.testing.assert_array_equal(rec.samples(100, 50), x[100:150])
    meta = json.load(open(base + ".sigmf-meta"))
    assert meta["global"]["core:extensions"][0]["name"] == "gsc"
    assert meta["annotations"][0]["gsc:seq"] == 1


def test_paths_and_datatypes():
    assert recording_paths("a/b") == ("a/b.sigmf-meta", "a/b.sigmf-data")
    assert recording_paths("a/b.sigmf-data") == ("a/b.sigmf-meta", "a/b.sigmf-data")
    for bad, needle in (("rf32_le", "real-valued"), ("cf16_le", "32 or 64"),
                        ("ci16", "needs _le or _be"), ("ci8_le", "no endianness"),
                        ("complex", "not a SigMF sample type"), (3, "must be a string")):
        with pytest.raises(RecordingError, match=needle):
            datatype_dtype(bad)


def corrupt(base, fn):
    meta_path, data_path = recording_paths(base)
    fn(meta_path, data_path)


def rewrite_meta(meta_path, change):
    meta = json.load(open(meta_path))
    change(meta)
    json.dump(meta, open(meta_path, "w"))


CORRUPTIONS = {
    "truncated data (partial sample)": (
        lambda m, d: os.truncate(d, os.path.getsize(d) - 3), "not a whole number"),
    "truncated data (whole samples)": (
        lambda m, d: os.truncate(d, 8 * 250), "annotations[0] ends at sample 300"),
    "flipped byte": (
        lambda m, d: open(d, "r+b").write(b"\x7f"), "does not match the core:sha512"),
    "empty data": (lambda m, d: os.truncate(d, 0), "annotations[0] ends"),
    "missing data": (lambda m, d: os.remove(d), "no SigMF data file"),
    "missing meta": (lambda m, d: os.remove(m), "no SigMF metadata file"),
    "truncated meta": (
        lambda m, d: os.truncate(m, os.path.getsize(m) // 2), "not valid JSON"),
    "binary meta": (lambda m, d: open(m, "wb").write(b"\xff\xfe\x00\x01"), "not UTF-8"),
    "meta is a list": (lambda m, d: open(m, "w").write("[]"), "must be a JSON object"),
    "no global": (lambda m, d: rewrite_meta(m, lambda x: x.pop("global")), "'global'"),
    "no datatype": (lambda m, d: rewrite_meta(m, lambda x: x["global"].pop("core:datatype")),
                    "core:datatype is missing"),
    "no rate": (lambda m, d: rewrite_meta(m, lambda x: x["global"].pop("core:sample_rate")),
                "core:sample_rate is missing"),
    "negative rate": (
        lambda m, d: rewrite_meta(m, lambda x: x["global"].update({"core:sample_rate": -1})),
        "positive finite"),
    "two channels": (
        lambda m, d: rewrite_meta(m, lambda x: x["global"].update({"core:num_channels": 2})),
        "one channel"),
    "bad hash text": (
        lambda m, d: rewrite_meta(m, lambda x: x["global"].update({"core:sha512": "zz"})),
        "not a SHA-512"),
    "annotation start text": (
        lambda m, d: rewrite_meta(
            m, lambda x: x["annotations"][0].update({"core:sample_start": "1"})),
        "non-negative integer"),
    "capture past end": (
        lambda m, d: rewrite_meta(
            m, lambda x: x["captures"].append({"core:sample_start": 5000})),
        "captures[1] starts at sample 5000"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupted_recordings_give_one_line(tmp_path, case):
    fn, needle = CORRUPTIONS[case]
    base = make(tmp_path)
    corrupt(base, fn)
    with pytest.raises(RecordingError) as ei:
        read_recording(base)
    msg = str(ei.value)
    assert needle in msg, msg
    assert "\n" not in msg


def test_hash_check_can_be_skipped_and_writer_refuses_to_overwrite(tmp_path):
    base = make(tmp_path)
    corrupt(base, lambda m, d: open(d, "r+b").write(b"\x7f"))
    assert read_recording(base, verify_hash=False).num_samples == 1000
    with pytest.raises(RecordingError, match="already exists"):
        SigMFWriter(base, sample_rate_hz=1e6)
    w = SigMFWriter(str(tmp_path / "x"), sample_rate_hz=1e6)
    w.write(np.zeros(10, np.complex64))
    w.annotate(5, 10)
    with pytest.raises(RecordingError, match="ends beyond"):
        w.close()
