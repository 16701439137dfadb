"""Theory gaps of the simulated link, with large Monte Carlo budgets. Prints JSON.

    .venv/bin/python benchmarks/bench_theory.py [--quick]

Anchors are closed forms computed in the same run: exact Gray-QAM BER on AWGN (Cho & Yoon
2002), BPSK/QPSK BER on flat Rayleigh, the normal approximation (Polyanskiy-Poor-Verdu
2010) for the LDPC code's (k, n), and the ergodic capacity of 2x2 Rayleigh with
water-filling.
"""

from __future__ import annotations

import argparse
import json
import time

from gsc_phy import verification
from gsc_phy.provenance import versions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="test-sized budgets")
    args = ap.parse_args()
    scale = 1 if args.quick else 4
    t0 = time.perf_counter()
    out = {
        "benchmark": "bench_theory",
        "snr_kind": "esno",
        "uncoded_awgn": [verification.uncoded_awgn_gap(m, bits=2e6 * scale)
                         for m in ("qpsk", "16qam", "64qam")],
        "uncoded_rayleigh": [verification.uncoded_rayleigh_gap(m, frames=12288 * scale)
                             for m in ("bpsk", "qpsk")],
        "ldpc_normal_approximation": verification.ldpc_normal_approximation_gap(
            frames=256 * scale),
        "mimo_2x2_svd_waterfilling": verification.mimo_capacity_check(batches=8 * scale),
    }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["versions"] = versions()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
