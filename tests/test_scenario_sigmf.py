"""``--link sigmf:DIR``: scenario transmissions recorded as SigMF and decoded from the recording.

* the first run records (one recording per transmission + manifest.json with every payload's
  CRC-32) and delivers the decoded bits; a second run on the same DIR replays and gets the
  same bits, erasures and counters;
* the replay checks each decoded frame against the manifest: a mismatching CRC-32 erases the
  frame and counts it as ``undetected_error``;
* a DIR recorded with another configuration, a truncated recording and ``--rerecord`` are
  one line each (``gsc scenario`` exits with code 2).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from bridge.common import ConfigError
from bridge.interpreters import find_radio_python
from gsc_cli.root import main
from gsc_semantic.scenarios.layered_link import LayeredLink
from gsc_semantic.scenarios.road import DEFAULT_RHO
from gsc_semantic.sigmf_transport import MANIFEST, SigMFTransport, replay_transmission

_RADIO = find_radio_python()
needs_radio = pytest.mark.skipif(
    not (_RADIO and _RADIO.get("gnuradio")),
    reason="no radio interpreter (GNU Radio) found: install gnuradio python3-zmq or set "
    "GSC_RADIO_PYTHON",
)

BITS = np.random.default_rng(2).integers(0, 2, (2, 900), dtype=np.uint8)
#: What ``gsc scenario road --snr 20 --scenes 1`` hands the transport as its configuration.
ROAD_CONFIG = {"snr_db": [20.0], "rho": DEFAULT_RHO, "scenes": 1, "images": None,
               "train": False, "checkpoints": None}


def _send(transport: SigMFTransport):
    transport.context = "gsc-uep"
    link = LayeredLink("awgn", 1.0, [900], [1], link=transport, image_shape=(3, 64, 64))
    out = link([BITS], snr_db=20.0, seed=1)
    return out, transport.take()


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gsc: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One transmission recorded into a fresh DIR (road scenario, the CLI's config)."""
    d = str(tmp_path_factory.mktemp("rec") / "road-rec")
    said: list[str] = []
    t = SigMFTransport(d, "awgn", scenario="road", config=ROAD_CONFIG, seed=0,
                       echo=said.append)
    out, counters = _send(t)
    return d, out, counters, said


@needs_radio
def test_record_then_replay_gives_the_recorded_decode(recorded, tmp_path):
    d, first, c1, said = recorded
    assert said[0] == f"recording to {d}"
    assert not first.erased.any() and np.array_equal(first.bits[0], BITS)
    assert c1["recordings_made"] == 1 and c1["recordings_replayed"] == 0
    assert c1["frames_sent"] == c1["frames_decoded"] > 0 and c1["frames_lost_total"] == 0
    manifest = json.load(open(os.path.join(d, MANIFEST)))
    (entry,) = manifest["recordings"]
    assert entry["name"] == "road_snr20_gsc-uep_tx1" and entry["method"] == "gsc-uep"
    assert (entry["modulation"], entry["snr_db"], entry["channel"]) == ("qpsk", 20.0, "awgn")
    assert len(entry["payload_crc32"]) == entry["frames"] == c1["frames_sent"]
    assert manifest["config"]["scenario_config"]["snr_db"] == [20.0]
    assert os.path.getsize(os.path.join(d, entry["name"] + ".sigmf-data")) == 8 * entry[
        "samples"]

    said2: list[str] = []
    t2 = SigMFTransport(d, "awgn", scenario="road", config=ROAD_CONFIG, seed=0,
                        echo=said2.append, out_dir=str(tmp_path / "runs"))
    second, c2 = _send(t2)
    assert said2[0] == f"replaying 1 recordings from {d}"
    assert np.array_equal(second.bits[0], first.bits[0])
    assert np.array_equal(second.erased, first.erased)
    assert c2["recordings_made"] == 0 and c2["recordings_replayed"] == 1
    for key in ("frames_sent", "frames_decoded", "frames_lost_total", "blocks_erased"):
        assert c2[key] == c1[key]
    rx = json.load(open(tmp_path / "runs" / entry["name"] / "rx.json"))
    assert rx["frames_decoded"] == entry["frames"]  # decoded by the streaming receiver
    assert json.load(open(os.path.join(d, MANIFEST))) == manifest  # replay changes nothing


@needs_radio
def test_replay_erases_frames_whose_crc_does_not_match_the_manifest(recorded):
    d, *_ = recorded
    (entry,) = json.load(open(os.path.join(d, MANIFEST)))["recordings"]
    entry = dict(entry, payload_crc32=list(entry["payload_crc32"]))
    entry["payload_crc32"][1] ^= 0x1  # the manifest says frame 1 carried other bits
    r = replay_transmission(os.path.join(d, entry["name"]), entry)
    assert 1 not in r["delivered_seqs"] and len(r["delivered_seqs"]) == entry["frames"] - 1
    assert r["frames_lost"]["undetected_error"] == 1 == r["frames_lost_total"]
    assert sum(r["frames_lost"].values()) == r["frames_lost_total"]


@needs_radio
def test_other_configuration_or_payloads_are_refused(recorded, tmp_path, capsys):
    d, *_ = recorded
    out = str(tmp_path / "out")
    assert main(["scenario", "road", "--link", f"sigmf:{d}", "--snr", "10,20", "--scenes",
                 "1", "--out", out]) == 2
    line = _one_error_line(capsys)
    assert "another configuration" in line and "snr_db" in line and "--rerecord" in line
    t = SigMFTransport(d, "awgn", scenario="road", config=ROAD_CONFIG, seed=0)
    t.context = "gsc-uep"
    link = LayeredLink("awgn", 1.0, [900], [1], link=t, image_shape=(3, 64, 64))
    with pytest.raises(ConfigError, match="other frames than this run sends.*--rerecord"):
        link([1 - BITS], snr_db=20.0, seed=1)


@needs_radio
def test_truncated_recording_is_one_line_naming_the_file(recorded, tmp_path, capsys):
    d = str(tmp_path / "broken")
    shutil.copytree(recorded[0], d)
    (entry,) = json.load(open(os.path.join(d, MANIFEST)))["recordings"]
    data = os.path.join(d, entry["name"] + ".sigmf-data")
    with open(data, "r+b") as fh:
        fh.truncate(os.path.getsize(data) - 8 * 100)
    assert main(["scenario", "road", "--link", f"sigmf:{d}", "--snr", "20", "--scenes", "1",
                 "--out", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert entry["name"] in line and ("truncated" in line or "corrupted" in line)
    with open(data, "r+b") as fh:
        fh.truncate(os.path.getsize(data) - 3)  # not even whole samples
    assert main(["scenario", "road", "--link", f"sigmf:{d}", "--snr", "20", "--scenes", "1",
                 "--out", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert entry["name"] in line and "truncated" in line


@needs_radio
def test_rerecord_deletes_only_the_listed_recordings(recorded, tmp_path):
    d = str(tmp_path / "again")
    shutil.copytree(recorded[0], d)
    (entry,) = json.load(open(os.path.join(d, MANIFEST)))["recordings"]
    keep = os.path.join(d, "notes.txt")
    open(keep, "w").write("mine")
    said: list[str] = []
    SigMFTransport(d, "awgn", scenario="road", config={"snr_db": [0.0]}, rerecord=True,
                   echo=said.append)
    assert said == [f"--rerecord: deleted 1 recordings in {d}", f"recording to {d}"]
    assert os.listdir(d) == ["notes.txt"]
    assert not os.path.exists(os.path.join(d, entry["name"] + ".sigmf-meta"))


def test_a_file_is_not_a_recording_folder():
    with pytest.raises(ConfigError, match="not a folder"):
        SigMFTransport(__file__, "awgn")
