"""gsc loopback accounting and faults (issue #7): every frame counted, restarts lose nothing.

* each loss cause injected and counted: no decoder (``decoder_absent``) with a tiny RX queue
  (``queue_overflow``); low SNR (``crc_failed``, ``not_detected``) with a tiny deadline
  (``late``); ``frames_sent == frames_decoded + sum(frames_lost)`` every time;
* a decoder worker SIGKILLed mid-run is restarted by the service: nothing lost, no
  duplicate delivered (one worker; and one of two workers);
* a flowgraph or decoder service that dies stops the rest and is named (exit code 1,
  summary ``failed``);
* SIGINT to ``gsc loopback`` leaves no process of its tree alive (checked in /proc).

The runs are ``gsc loopback`` processes (or ``run_loopback`` in this process) with the real
flowgraph under the radio interpreter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from bridge.interpreters import find_radio_python
from gsc_stream.loopback import LOSS_CAUSES, run_loopback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RADIO = find_radio_python()
pytestmark = pytest.mark.skipif(
    not (_RADIO and _RADIO.get("gnuradio")),
    reason="no radio interpreter (GNU Radio) found: install gnuradio python3-zmq or set "
    "GSC_RADIO_PYTHON",
)


def _check_identity(r: dict) -> None:
    assert set(r["frames_lost"]) == set(LOSS_CAUSES)
    assert r["frames_sent"] == r["frames_decoded"] + sum(r["frames_lost"].values()), r


# ---------------------------------------------------------------- /proc helpers


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every live (non-zombie) process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            out[int(name)] = (int(fields[1]), cmd)
    return out


def _descendants(pid: int) -> dict[int, str]:
    table = _proc_table()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for p, (ppid, cmd) in table.items():
            if ppid == parent and p not in found:
                found[p] = cmd
                todo.append(p)
    return found


def _survivors(procs: dict[int, str]) -> dict[int, str]:
    table = _proc_table()
    return {p: c for p, c in procs.items() if p in table and table[p][1] == c}


class _Loopback:
    """``gsc loopback`` as a subprocess, its output read in the background."""

    def __init__(self, out_dir, *args: str) -> None:
        self.out_dir = out_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gsc_cli", "loopback", "--out", str(out_dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for_line(self, text: str, timeout_s: float = 180.0) -> None:
        t0 = time.monotonic()
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)
            assert time.monotonic() - t0 < timeout_s, "".join(self.lines)
            time.sleep(0.05)

    def processes(self, want: int, timeout_s: float = 60.0) -> dict[int, str]:
        """The process tree below ``gsc loopback`` once it has ``want`` workers."""
        t0 = time.monotonic()
        while True:
            tree = _descendants(self.proc.pid)
            if sum("spawn_main" in c for c in tree.values()) >= want:
                return tree
            assert time.monotonic() - t0 < timeout_s, tree
            time.sleep(0.1)

    def finish(self, timeout_s: float = 240.0) -> tuple[int, str, dict]:
        rc = self.proc.wait(timeout_s)
        self._t.join(10)
        self.proc.stdout.close()
        path = os.path.join(self.out_dir, "loopback.json")
        summary = json.load(open(path, encoding="utf-8")) if os.path.exists(path) else {}
        return rc, "".join(self.lines), summary

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def run_cli(tmp_path):
    started = []

    def start(*args: str) -> _Loopback:
        lb = _Loopback(tmp_path / f"lb{len(started)}", *args)
        started.append(lb)
        return lb

    yield start
    for lb in started:  # a failed assertion must not leave the tree running
        tree = _descendants(lb.proc.pid)
        lb.kill()
        for pid in _survivors(tree):
            os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- loss causes


def test_no_decoder_tiny_queue_very_low_snr(tmp_path, monkeypatch):
    """-3 dB and no worker: some bursts are missed (not_detected), 3 of the detected ones
    fit the RX queue and wait for a decoder that never comes (decoder_absent), the others
    overflow the queue (queue_overflow)."""
    monkeypatch.setenv("GSC_RX_QUEUE_MAX", "3")
    r = run_loopback(snr_db=-3.0, frames=12, workers=0, seed=1, out_dir=str(tmp_path / "lb"))
    _check_identity(r)
    rx = r["radio"]["rx"]
    lost = r["frames_lost"]
    assert r["frames_decoded"] == 0 and r["decoder"] == {}
    assert lost["not_detected"] == 12 - rx["bursts"] > 0
    assert lost["decoder_absent"] == rx["decoder_absent"] == 3
    assert lost["queue_overflow"] == rx["queue_overflow"] == rx["bursts"] - 3 > 0


def test_low_snr_and_deadline(tmp_path):
    """1 dB: most frames fail the CRC; the few decoded miss a 1 ms deadline (nothing
    decodes that fast), so they count as late, not delivered."""
    r = run_loopback(snr_db=1.0, frames=24, workers=1, seed=0, deadline_ms=1.0,
                     out_dir=str(tmp_path / "lb"))
    _check_identity(r)
    lost = r["frames_lost"]
    rx = r["radio"]["rx"]
    assert r["frames_decoded"] == 0 and r["latency_ms_p50"] is None
    assert lost["not_detected"] == 24 - rx["bursts"]
    assert lost["crc_failed"] > 0 and lost["late"] > 0
    assert lost["crc_failed"] + lost["late"] == rx["bursts"] == rx["frames_acked"]
    assert r["decoder"]["frames"] == rx["bursts"]


# ---------------------------------------------------------------- restarts and faults


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_killed_mid_run_loses_nothing(run_cli, workers):
    # 200 frames: the run is still in flight when the victim stops, even on a loaded machine
    # (with 48, all frames could be decoded before SIGSTOP and none held by the victim)
    lb = run_cli("--snr", "15", "--frames", "200", "--workers", str(workers), "--seed", "2")
    tree = lb.processes(workers)
    lb.wait_for_line("sending")
    victim = min(p for p, c in tree.items() if "spawn_main" in c)
    # freeze the victim while frames flow, so that it surely holds some when it dies (a
    # stopped worker keeps its credit until its heartbeat times out, 3 s)
    os.kill(victim, signal.SIGSTOP)
    time.sleep(2.0)
    os.kill(victim, signal.SIGKILL)
    rc, out, r = lb.finish()
    assert rc == 0, out
    _check_identity(r)
    assert r["frames_decoded"] == 200 and sum(r["frames_lost"].values()) == 0, out
    assert r["worker_restarts"] == 1 and r["failed"] is None
    assert r["frames_requeued"] >= 1  # the victim held frames: they were sent again
    assert r["radio"]["rx"]["frames_acked"] == r["radio"]["rx"]["bursts"] == 200


@pytest.mark.parametrize("victim,marker", [("flowgraph", "gsc_loopback_gen.py"),
                                           ("decoder service", "gsc_stream.decoder_service")])
def test_child_crash_is_reported(run_cli, victim, marker):
    """A child that dies stops the run: one line naming it, exit code 1, the summary says
    which failed, and no process of the tree is left (the killed service's workers too)."""
    lb = run_cli("--snr", "15", "--frames", "400", "--seed", "4")
    tree = lb.processes(1)
    lb.wait_for_line("sending")
    time.sleep(0.5)
    pid = [p for p, c in tree.items() if marker in c]
    assert len(pid) == 1, tree
    os.kill(pid[0], signal.SIGKILL)
    rc, out, r = lb.finish()
    assert rc == 1, out
    err = [line for line in out.splitlines() if line.startswith("gsc: error:")]
    assert len(err) == 1 and f"the {victim} failed" in err[0] and "signal 9" in err[0], out
    assert r["failed"]["process"] == victim
    _check_identity(r)
    assert r["frames_sent"] < 400
    assert not _survivors(tree), "processes left behind"


def test_sigint_leaves_no_orphans(run_cli):
    lb = run_cli("--snr", "15", "--frames", "400", "--workers", "2", "--seed", "5")
    tree = lb.processes(2)
    lb.wait_for_line("sending")
    time.sleep(0.5)
    tree = _descendants(lb.proc.pid)  # everything started by now (resource tracker too)
    assert any("gsc_loopback_gen.py" in c for c in tree.values())
    assert sum("spawn_main" in c for c in tree.values()) == 2
    lb.proc.send_signal(signal.SIGINT)
    rc, out, _ = lb.finish()
    assert rc == 130, out
    assert "gsc: interrupted" in out
    assert not _survivors(tree), "processes left behind"
