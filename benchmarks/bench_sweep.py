"""Wall time of a fixed `gsc sweep` on a local Ray instance with 1 and with 2 workers.

The sweep: 8 points of a 5G-LDPC (1024, 2048) QPSK AWGN link, one Es/N0 each (0..3.5 dB),
a fixed number of frames per point (no early stop), one CPU per point. Each run starts a
fresh local Ray instance and an empty store, so wall times include Ray start-up and each
worker's torch/Sionna import, as a user sees them. The anchor, measured in the same run,
is the same sweep run point after point in this process (``--no-ray``) with one torch
thread, i.e. the work one Ray worker does without Ray; and, since this machine's 2 cores
are shared with other jobs, the speedup 2 plain CPU-bound processes get over 1 at the
same moments (the most 2 workers can gain then). Prints JSON.

    .venv/bin/python benchmarks/bench_sweep.py [--points 8] [--max-frames 256] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from gsc_phy.provenance import versions
from gsc_phy.sweep import parse_sweep
from gsc_phy.sweep.engine import run_sweep
from gsc_phy.sweep.store import read_results


def sweep_doc(points: int, max_frames: int) -> dict:
    """The benchmark sweep: ``points`` SNR values, one point each."""
    return {
        "name": "bench-sweep",
        "runner": "link",
        "seeds": [0],
        "fixed": {"channel": "awgn", "mod": "qpsk", "k": 1024, "n": 2048, "batch": 32,
                  "max_frames": max_frames, "target_errors": 10**9},
        "grid": {"snr": [round(0.5 * i, 2) for i in range(points)]},
    }


BUSY = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(25_000_000):\n    x += i\n"


def machine_parallelism() -> float:
    """How much faster 2 CPU-bound processes finish than 1 run twice, right now (max 2).

    The anchor of the sweep speedup: on a machine shared with other jobs, 2 workers can
    only gain what the free cores allow.
    """
    def wall(n: int) -> float:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]
        for p in procs:
            p.wait()
        return time.perf_counter() - t0

    return round(2 * wall(1) / wall(2), 3)


def timed(spec, backend: str, workers: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="gsc-bench-sweep-") as out:
        t0 = time.perf_counter()
        s = run_sweep(spec, out, backend=backend, workers=workers, progress=False,
                      log=lambda m: None)
        wall = time.perf_counter() - t0
        recs = read_results(out)
    assert s.done == len(spec.points) and s.failed == 0, s.failures
    return {"wall_s": round(wall, 2),
            "sum_point_s": round(sum(r["elapsed_s"] for r in recs), 2),
            "worker_processes": len({(r["host"], r["pid"]) for r in recs})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--max-frames", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each configuration")
    args = ap.parse_args()
    try:
        import ray
    except ImportError:
        print(json.dumps({"benchmark": "sweep", "skipped": "ray is not installed "
                          "(pip install -e '.[distributed]')"}))
        return 0
    spec = parse_sweep(sweep_doc(args.points, args.max_frames))
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {"ray_1_worker": [], "ray_2_workers": [],
                                   "inline_1_thread": []}
    parallelism = []
    for _ in range(args.repeat):  # alternate, so both see the same machine load
        parallelism.append(machine_parallelism())
        runs["ray_1_worker"].append(timed(spec, "ray", 1))
        runs["ray_2_workers"].append(timed(spec, "ray", 2))
    parallelism.append(machine_parallelism())
    import torch

    torch.set_num_threads(1)  # what a 1-CPU Ray worker gets (OMP_NUM_THREADS=1)
    for _ in range(args.repeat):
        runs["inline_1_thread"].append(timed(spec, "inline", None))
    med = {k: round(statistics.median(r["wall_s"] for r in v), 2) for k, v in runs.items()}
    print(json.dumps({
        "benchmark": "sweep",
        "sweep": sweep_doc(args.points, args.max_frames),
        "points": len(spec.points),
        "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
        "wall_s_1_worker": med["ray_1_worker"],
        "wall_s_2_workers": med["ray_2_workers"],
        "speedup_2_vs_1": round(med["ray_1_worker"] / med["ray_2_workers"], 3),
        "anchor_machine_parallelism_2_procs": parallelism,
        "anchor_inline_1_thread_s": med["inline_1_thread"],
        "ray_overhead_1_worker_s": round(med["ray_1_worker"] - med["inline_1_thread"], 2),
        "versions": versions() | {"ray": ray.__version__},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
