"""`gsc link` and `gsc doctor` from the outside: outputs, schema, and bad input."""

import json
import os
import subprocess
import sys

import pytest


def gsc(*args, timeout=300, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "gsc_cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.parametrize(
    "args",
    [
        ["--rate", "1.5"],
        ["--rate", "3/2"],
        ["--k", "2048", "--n", "1024"],
        ["--mimo", "0x2"],
        ["--mimo", "2by2"],
        ["--channel", "tdl-q"],
        ["--mod", "8qam"],
        ["--mod", "64qam", "--k", "1024", "--n", "2048"],  # n not a multiple of 6 bits
        ["--ris", "64"],
        ["--ris", "64", "--tx-pos", "0,0", "--ris-pos", "1,1,1", "--rx-pos", "2,0,0"],
        ["--ris", "16", "--tx-pos", "0,0,5", "--ris-pos", "0,0,5", "--rx-pos", "9,0,1"],
        ["--snr", "10:0:1"],
        ["--snr", "1:2:0"],
        ["--snr", "low"],
        ["--snr-kind", "sinr"],
        ["--estimator", "magic"],
        ["--uncoded", "--rate", "1/2"],
        ["--batch", "0"],
        ["--no-such-flag"],
    ],
)
def test_bad_input_one_line_exit_2(args, tmp_path):
    res = gsc("link", *args, "--out", str(tmp_path), "--quiet")
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gsc: error: "), res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_link_json_schema(tmp_path):
    res = gsc("link", "--channel", "tdl-a", "--mod", "16qam", "--estimator", "ls",
              "--k", "256", "--n", "512", "--snr", "0:20:10", "--max-frames", "16",
              "--batch", "8", "--seed", "3", "--out", str(tmp_path), "--quiet")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "link.json").read_text())
    assert (tmp_path / "link.png").stat().st_size > 1000
    assert doc["snr_kind"] == "esno" and doc["seed"] == 3
    assert doc["config"]["channel"] == "tdl-a" and doc["versions"]["torch"]
    assert [p["snr_db"] for p in doc["points"]] == [0.0, 10.0, 20.0]
    for p in doc["points"]:
        assert {"snr_db", "ber", "bler", "bits", "bit_errors", "frames", "block_errors"} <= set(p)
        assert p["ber"] == p["bit_errors"] / p["bits"]
    assert doc["points"][0]["ber"] > doc["points"][-1]["ber"]


def test_ebno_kind_is_recorded(tmp_path):
    res = gsc("link", "--snr", "2", "--snr-kind", "ebno", "--max-frames", "8", "--batch", "8",
              "--out", str(tmp_path), "--quiet")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "link.json").read_text())
    assert doc["snr_kind"] == "ebno" and doc["points"][0]["ebno_db"] == 2.0


def test_doctor_json():
    res = gsc("doctor", "--json", timeout=120)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["ml"]["torch"] and d["ml"]["sionna-no-rt"] == "2.2.0"
    assert d["ml"]["torch_device"] in ("cpu", "cuda")
    assert "radio" in d and isinstance(d["problems"], list)
    ck = d["checkpoints"]
    assert ck["source"] == "checkout" and ck["files"] > 0 and ck["missing"] == []


def test_doctor_names_missing_checkpoints(tmp_path):
    (tmp_path / "MANIFEST.json").write_text(json.dumps(
        {"files": {"fmnist/model.safetensors": {"sha256": "0" * 64, "bytes": 10}}}))
    res = gsc("doctor", "--json", env_extra={"GSC_CHECKPOINTS": str(tmp_path)}, timeout=120)
    d = json.loads(res.stdout)
    assert d["checkpoints"]["source"] == "GSC_CHECKPOINTS"
    assert d["checkpoints"]["missing"] == ["fmnist/model.safetensors"]
    assert any("fmnist/model.safetensors" in p for p in d["problems"]) and not d["ok"]


def test_keys_generate(tmp_path):
    res = gsc("keys", "generate", str(tmp_path / "k"), "--name", "srv")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "k" / "srv.key").exists() and (tmp_path / "k" / "srv.key_secret").exists()
    again = gsc("keys", "generate", str(tmp_path / "k"), "--name", "srv")
    assert again.returncode == 2 and "already exists" in again.stderr
