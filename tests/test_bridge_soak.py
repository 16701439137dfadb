"""A small run of benchmarks/soak_bridge.py: nothing lost or duplicated, every worker used.

The full soak (1,000,000 frames) is the benchmark itself; here 20,000 frames go through
the same producer -> 4 workers -> collector pipeline. No timing assertions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.both

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "benchmarks", "soak_bridge.py")


def test_soak_small_run_loses_nothing():
    out = subprocess.run(
        [sys.executable, SCRIPT, "--frames", "20000", "--workers", "4", "--anchor-frames",
         "2000", "--idle-timeout", "60"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    b = res["bridge"]
    assert res["zero_loss"] is True
    assert (b["delivered"], b["lost"], b["duplicates"], b["dropped"]) == (20000, 0, 0, {})
    assert b["producer"]["sent"] == 20000 and b["producer"]["send_timeouts"] == 0
    assert sum(b["per_worker_received"]) == 20000
    assert all(n > 0 for n in b["per_worker_received"])  # the load was spread over all 4
    assert res["raw_anchor"]["lost"] == 0 and res["ratio"] > 0
    if sys.platform.startswith("linux"):
        assert set(b["rss_growth"]) == {"producer", "collector", "worker0", "worker1",
                                        "worker2", "worker3"}


def test_soak_rejects_bad_options():
    out = subprocess.run([sys.executable, SCRIPT, "--frames", "5"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "--frames >= 10" in out.stderr
