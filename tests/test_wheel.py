"""A wheel that works outside the checkout: code, block YAML and checkpoints all inside."""

import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_every_shipped_checkpoint_and_block(wheel_demo):
    _, _, wheel = wheel_demo
    archive = zipfile.ZipFile(wheel)
    manifest = json.loads((ROOT / "checkpoints" / "MANIFEST.json").read_text())
    assert manifest["files"]
    for rel, entry in manifest["files"].items():
        data = archive.read(f"gsc_checkpoints/{rel}")  # KeyError: not shipped
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], rel
    names = set(archive.namelist())
    blocks = [p.relative_to(ROOT).as_posix() for p in (ROOT / "flowgraphs").rglob("*.yml")]
    assert blocks and not [b for b in blocks if b not in names]


def test_installed_gsc_runs_from_another_folder(wheel_demo, tmp_path):
    venv, demo, _ = wheel_demo
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GSC_CHECKPOINTS")}
    probe = ("import gsc_phy, bridge.common as c; "
             "print(gsc_phy.__file__); print(c.checkpoints_root())")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).resolve().is_relative_to(venv.resolve()) for p in out), out
    assert Path(out[1]).name == "gsc_checkpoints"
    doctor = subprocess.run([str(venv / "bin" / "gsc"), "doctor", "--json"], cwd=tmp_path,
                            env=env, capture_output=True, text=True)
    ck = json.loads(doctor.stdout)["checkpoints"]
    assert ck["source"] == "package" and ck["missing"] == [] and ck["files"] > 0, ck
    report = (demo / "report.html").read_text()
    images = [part.split("'")[0] for part in report.split("<img src='")[1:]]
    assert len(images) >= 6 and all((demo / src).stat().st_size > 1000 for src in images)
