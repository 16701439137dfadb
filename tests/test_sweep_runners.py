"""`gsc sweep` drives `gsc eval` and `gsc loopback` too (in-process, without Ray)."""

import json
import subprocess
import sys

import pytest

from bridge.interpreters import find_radio_python


def _sweep(tmp_path, text):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(text)
    out = tmp_path / "store"
    res = subprocess.run([sys.executable, "-m", "gsc_cli", "sweep", str(spec), "--no-ray",
                          "--out", str(out), "--quiet"], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_eval_runner(tmp_path):
    rows = _sweep(tmp_path, """
runner: eval
fixed: {data: fmnist, snr: "20", ratio: "1/12", images: 2, steps: 2}
grid: {methods: ["gsc", "jpeg"]}
""")
    assert len(rows) == 2
    methods = {r["rows"][0]["method"] for r in rows}
    assert methods == {"gsc", "jpeg"} and all("perceptual" in r["rows"][0] for r in rows)


def test_bad_eval_parameter_is_refused(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("runner: eval\ngrid: {colour: [red]}\n")
    res = subprocess.run([sys.executable, "-m", "gsc_cli", "sweep", str(spec), "--no-ray",
                          "--out", str(tmp_path / "s")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("gsc: error:"), res.stderr


@pytest.mark.skipif(find_radio_python() is None, reason="no interpreter imports GNU Radio")
def test_loopback_runner(tmp_path):
    rows = _sweep(tmp_path, """
runner: loopback
fixed: {frames: 8, cfo: 0.1}
grid: {snr: [20]}
""")
    (row,) = rows[0]["rows"]
    assert row["frames_sent"] == 8 and row["frames_decoded"] == 8 and row["snr_db"] == 20
