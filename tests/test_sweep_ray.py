"""`gsc sweep` on a local Ray instance with 2 workers: a worker SIGKILLed mid-sweep has its
point retried, and the store ends with every point exactly once; a re-run skips them all;
no Ray process outlives the sweep."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

pytest.importorskip("ray")

CLI = "import sys; from gsc_cli import root as cli; sys.exit(cli.main(sys.argv[1:]))"

SWEEP = """\
name: kill-test
seeds: [0, 1]
fixed: {k: 256, n: 512, batch: 32, max_frames: 64, target_errors: 100000}
grid: {snr: [0, 1, 2]}
max_retries: 3
"""


def _processes_under(path: str) -> list[int]:
    """Live PIDs whose command line or environment mentions ``path`` (the private Ray temp
    dir, passed down as RAY_TMPDIR: Ray workers retitle themselves ``ray::...``)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                text = fh.read()
            with open(f"/proc/{entry}/environ", "rb") as fh:
                text += fh.read()
        except OSError:
            continue
        if path.encode() in text and _alive(int(entry)):
            pids.append(int(entry))
    return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def _stored(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.timeout(240)
def test_killed_worker_is_retried_and_every_point_stored_once(tmp_path):
    sweep_file = tmp_path / "kill.yaml"
    sweep_file.write_text(SWEEP)
    out, trace = tmp_path / "store", tmp_path / "trace"
    trace.mkdir()
    ray_root = tempfile.mkdtemp(prefix="gsct", dir="/tmp")  # short: Ray's unix socket paths
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(GSC_SWEEP_TRACE_DIR=str(trace), RAY_TMPDIR=ray_root, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-c", CLI, "sweep", str(sweep_file), "--out", str(out),
           "--ray-address", "local", "--workers", "2", "--quiet"]
    t0 = time.monotonic()
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    killed_pid = killed_point = None
    seen_during_run: set[int] = set()
    try:
        # mid-sweep: once a point is stored, kill the worker of the newest running point
        deadline = time.monotonic() + 150
        while killed_pid is None and time.monotonic() < deadline and driver.poll() is None:
            done = {r["id"] for r in _stored(out / "results.jsonl")}
            if done:
                starts = sorted(trace.iterdir(), key=lambda p: int(p.name.split(".")[2]))
                for marker in reversed(starts):
                    pid_, pid = marker.name.split(".")[0], int(marker.name.split(".")[1])
                    if pid_ not in done and _alive(pid):
                        seen_during_run = set(_processes_under(ray_root))
                        os.kill(pid, signal.SIGKILL)
                        killed_pid, killed_point = pid, pid_
                        break
            time.sleep(0.05)
        assert killed_pid is not None, "no running worker found to kill"
        assert killed_pid in seen_during_run, "the process check does not see Ray workers"
        stdout, stderr = driver.communicate(timeout=200)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    elapsed = time.monotonic() - t0
    try:
        assert driver.returncode == 0, stderr[-3000:]
        rows = _stored(out / "results.jsonl")
        ids = [r["id"] for r in rows]
        manifest = json.loads((out / "manifest.json").read_text())
        expected = {p["id"] for p in manifest["points"]}
        assert len(expected) == 6
        assert len(ids) == len(set(ids)) == 6 and set(ids) == expected  # each exactly once
        # the killed point was started again by another worker process and stored from it
        starts = [m.name.split(".") for m in trace.iterdir()]
        pids_of_killed = {int(s[1]) for s in starts if s[0] == killed_point}
        assert killed_pid in pids_of_killed and len(pids_of_killed) >= 2, starts
        (row,) = [r for r in rows if r["id"] == killed_point]
        assert row["pid"] != killed_pid and row["rows"][0]["frames"] == 64
        assert manifest["runs"][-1]["status"] == "complete"
        assert not (out / "failures.jsonl").exists()
        # no Ray process outlives the sweep, and the private temp dir is gone
        deadline = time.monotonic() + 15
        while _processes_under(ray_root) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_under(ray_root) == []
        assert os.listdir(ray_root) == []
        print(f"\nkill test: sweep {elapsed:.1f} s, killed pid {killed_pid} on point "
              f"{killed_point}, started by pids {sorted(pids_of_killed)}")

        # re-running the same sweep skips every stored point (and starts no Ray at all)
        before = (out / "results.jsonl").read_bytes()
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "6 already in" in res.stderr and "0 to run" in res.stderr
        assert (out / "results.jsonl").read_bytes() == before
    finally:
        for pid in _processes_under(ray_root):  # only on failure: leave nothing behind
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(ray_root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_driver_killed_mid_sweep_resumes_exactly_once(tmp_path):
    """SIGKILL the driver itself after some points are stored; the re-run finishes the rest."""
    sweep_file = tmp_path / "kill.yaml"
    sweep_file.write_text(SWEEP)
    out = tmp_path / "store"
    ray_root = tempfile.mkdtemp(prefix="gsct", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=ray_root)
    cmd = [sys.executable, "-c", CLI, "sweep", str(sweep_file), "--out", str(out),
           "--ray-address", "local", "--workers", "2", "--quiet"]
    try:
        driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 150
        while not _stored(out / "results.jsonl") and time.monotonic() < deadline:
            time.sleep(0.05)
        driver.kill()
        driver.wait()
        first = _stored(out / "results.jsonl")
        assert 1 <= len(first) < 6
        # the local Ray instance shares the driver's fate (its agents exit within ~a minute)
        deadline = time.monotonic() + 120
        while _processes_under(ray_root) and time.monotonic() < deadline:
            time.sleep(1)
        assert _processes_under(ray_root) == []
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=200)
        assert res.returncode == 0, res.stderr
        assert f"{len(first)} already in" in res.stderr
        rows = _stored(out / "results.jsonl")
        assert rows[:len(first)] == first
        assert len(rows) == len({r["id"] for r in rows}) == 6
        manifest = json.loads((out / "manifest.json").read_text())
        assert [r["status"] for r in manifest["runs"]] == ["killed", "complete"]
    finally:
        for pid in _processes_under(ray_root):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(ray_root, ignore_errors=True)
