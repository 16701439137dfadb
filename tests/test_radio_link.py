"""``gsc tx/rx/loopback --radio`` (gsc_stream/radio_link.py) through the real ``gsc`` entry point.

ML-side tests (unmarked; the file is skipped without torch). The end-to-end ones start the
modem and device flowgraphs under the radio interpreter and are skipped without GNU Radio:

* the impaired ZeroMQ virtual radio (CFO 2.7 subcarriers, 50 ppm SRO, 50 Hz phase noise,
  1 dB / 3 deg IQ imbalance, DC offset, Es/N0 15 dB) delivers every frame through decoder
  and CRC, and ``--record`` writes a SigMF recording annotated with those frames;
* the shipped recording (tests/fixtures/sigmf/zmq_impaired) replayed by ``gsc rx --radio
  sigmf:...`` yields exactly the frames (numbers and payload CRCs) its annotations list.
"""

import json
import os
import socket

import numpy as np
import pytest

pytest.importorskip("torch")

from bridge.interpreters import find_radio_python  # noqa: E402
from gsc_cli import root as cli  # noqa: E402
from hardware.sigmf_io import FRAME_LABEL, read_recording  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "sigmf")


@pytest.fixture
def gsc(capsys):
    """Run ``gsc ARGS``; returns (exit code, stdout, stderr)."""

    def run(*args):
        rc = cli.main([str(a) for a in args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


@pytest.fixture(scope="module")
def radio_python():
    info = find_radio_python()
    if not info or not info.get("gnuradio") or not info.get("pyzmq"):
        pytest.skip("no radio interpreter with GNU Radio and pyzmq")
    return info["executable"]


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsc: error: "), err
    return lines[0]


def annotated_frames(base):
    """{frame number: payload CRC-32} of the CRC-ok frame annotations of a recording."""
    rec = read_recording(base)
    out = {}
    for a in rec.annotations:
        if a.get("core:label") == FRAME_LABEL and a.get("gsc:crc_ok"):
            out[a["gsc:seq"]] = int(a["core:comment"].split("=", 1)[1])
    return out, rec


def test_impaired_loopback_delivers_and_records(gsc, radio_python, tmp_path):
    base = tmp_path / "cap" / "impaired"
    rc, out, err = gsc("loopback", "--radio", "zmq_impaired", "--frames", 20, "--record", base,
                       "--out", tmp_path / "lb")
    assert rc == 0, err
    r = json.loads((tmp_path / "lb" / "loopback.json").read_text())
    assert r["frames_sent"] == 20 and r["frames_decoded"] == 20, r["frames_lost"]
    assert r["delivery"] >= 0.99 and r["config"]["profile"]["impairments"]["sro_ppm"] == 50
    frames, rec = annotated_frames(base)
    assert frames == {f["seq"]: f["payload_crc32"] for f in r["frames"]}
    assert rec.sample_rate_hz == 2.16e6 and rec.center_freq_hz == 2.45e9
    assert rec.global_info["gsc:profile"] == "zmq_impaired"
    assert rec.captures[0]["core:datetime"].endswith("Z")
    cfo = [a["gsc:cfo_hz"] for a in rec.annotations]
    assert all(abs(c - 81000) < 2000 for c in cfo)  # 2.7 subcarrier spacings of 30 kHz
    starts = [a["core:sample_start"] for a in rec.annotations]
    assert starts == sorted(starts) and starts[-1] < rec.num_samples


def test_replay_of_shipped_recording_yields_its_frames(gsc, radio_python, tmp_path):
    base = os.path.join(FIXTURES, "zmq_impaired")
    want, rec = annotated_frames(base)
    assert len(want) == 20
    rc, out, err = gsc("rx", "--radio", f"sigmf:{base}", "--out", tmp_path / "rp")
    assert rc == 0, err
    r = json.loads((tmp_path / "rp" / "rx.json").read_text())
    assert {f["seq"]: f["payload_crc32"] for f in r["frames"]} == want
    assert r["frames_detected"] == len(rec.annotations)
    assert r["radio"]["rx"]["samples"] == rec.num_samples


def test_absent_radio_is_one_line_exit_2(gsc, radio_python, tmp_path):
    rc, out, err = gsc("rx", "--radio", "b210", "--out", tmp_path)
    assert rc == 2 and "no USRP B210 found" in one_error_line(err)
    rc, out, err = gsc("tx", "--radio", "pluto", "--test-frames", 2, "--out", tmp_path)
    assert rc == 2 and "no IIO context" in one_error_line(err)
    rc, out, err = gsc("loopback", "--radio", "b210", "--frames", 2, "--out", tmp_path)
    assert rc == 2 and "no USRP B210 found" in one_error_line(err)


def test_busy_endpoint_is_one_line_exit_2(gsc, radio_python, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        ep = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        rc, out, err = gsc("tx", "--radio", "zmq", "--set", f"zmq.tx_endpoint={ep}",
                           "--test-frames", 1, "--out", tmp_path)
    assert rc == 2 and f"cannot bind {ep}" in one_error_line(err)


def test_bad_profiles_and_options_are_one_line_exit_2(gsc, tmp_path):
    rc, out, err = gsc("rx", "--radio", "b210", "--set", "rx.gain_db=80", "--out", tmp_path)
    assert rc == 2 and "out of range" in one_error_line(err)
    rc, out, err = gsc("rx", "--radio", "zmq", "--set", "samp_rate_hz=1e6", "--out", tmp_path)
    assert rc == 2 and "needs 2.16e+06 S/s" in one_error_line(err)
    rc, out, err = gsc("rx", "--radio", "nothere", "--out", tmp_path)
    assert rc == 2 and "nothere" in one_error_line(err)
    rc, out, err = gsc("tx", "--radio", "zmq", "--out", tmp_path)
    assert rc == 2 and "--test-frames N or --file PATH" in one_error_line(err)
    rec = f"sigmf:{os.path.join(FIXTURES, 'zmq_impaired')}"
    rc, out, err = gsc("loopback", "--radio", rec, "--frames", 2, "--out", tmp_path)
    assert rc == 2 and "replay a recording with gsc rx" in one_error_line(err)
    rc, out, err = gsc("tx", "--radio", "zmq", "--file", tmp_path / "none.bin", "--out", tmp_path)
    assert rc == 2 and "cannot read" in one_error_line(err)
    rc, out, err = gsc("loopback", "--radio", "zmq", "--snr", 5, "--out", tmp_path)
    assert rc == 2 and "--snr" in one_error_line(err) and "emulator" in err


def _write_recording(base, n=4000):
    from hardware.sigmf_io import write_recording

    x = (np.random.default_rng(0).standard_normal(n) * (1 + 1j)).astype(np.complex64)
    write_recording(str(base), x, sample_rate_hz=2.16e6, center_freq_hz=2.45e9)
    return str(base) + ".sigmf-meta", str(base) + ".sigmf-data"


@pytest.mark.parametrize("damage, words", [
    ("no_meta", "no recording"),
    ("bad_json", "JSON"),
    ("truncated", "truncated"),
    ("datatype", "datatype"),
])
def test_broken_recordings_are_one_line_exit_2(gsc, tmp_path, damage, words):
    meta, data = _write_recording(tmp_path / "cap")
    if damage == "no_meta":
        os.remove(meta)
    elif damage == "bad_json":
        with open(meta, "a") as fh:
            fh.write("{")
    elif damage == "truncated":
        os.truncate(data, 8 * 1000 + 3)
    else:
        doc = json.loads(open(meta).read())
        doc["global"]["core:datatype"] = "cf33_le"
        open(meta, "w").write(json.dumps(doc))
    rc, out, err = gsc("rx", "--radio", f"sigmf:{tmp_path / 'cap'}", "--out", tmp_path / "o")
    assert rc == 2
    assert words.lower() in one_error_line(err).lower()


def test_file_payloads_carry_frame_numbers_and_the_bytes():
    from gsc_phy.config import LinkConfig
    from gsc_stream.radio_link import _codec, _file_payloads
    from gsc_stream.stream_decode import SEQ_BITS, payload_seq

    codec = _codec(LinkConfig())
    f = codec.frame
    per = (f.codewords_per_frame * f.payload_bits_per_block - SEQ_BITS) // 8
    data = bytes(range(256)) * (per // 128 + 1)  # a little more than two frames
    pl = _file_payloads(codec, data)
    assert pl.shape == (3, f.codewords_per_frame, f.payload_bits_per_block)
    assert [payload_seq(p) for p in pl] == [0, 1, 2]
    body = np.packbits(pl.reshape(3, -1)[:, SEQ_BITS:].reshape(-1), bitorder="big").tobytes()
    assert per * 8 == pl.shape[1] * pl.shape[2] - SEQ_BITS  # whole bytes per frame here
    assert body[: len(data)] == data and not any(body[len(data):])
