"""Frame delivery vs RF impairments of the emulated radio path; prints JSON.

Every impairment of :mod:`hardware.impairments` is swept alone at Es/N0 15 dB through the
emulated path of :mod:`gsc_stream.emulated_link` (gsc_phy encoder -> burst modulator with
random gaps -> impairment emulator -> streaming receiver with ``gsc_rx``'s settings ->
gsc_phy LDPC decoder + CRC): delivery = frames decoded with CRC ok and the right payload /
frames sent. The **anchor**, measured in the same run, is the clean link's delivery at the
same Es/N0 (AWGN only). The **acceptance** rows are the receiver's specification, all
impairments at once (CFO +-3 subcarrier spacings, +-50 ppm SRO, 1 dB / 3 deg IQ imbalance,
DC offset 0.036, 50 Hz phase noise, Es/N0 15 dB), target delivery >= 0.99.

Output: ``{"config", "snr_kind", "anchor", "acceptance", "sweeps": {impairment: [{"value",
"frames", "delivered", "delivery", ...}]}, "wall_s"}``.

Run: ``.venv/bin/python benchmarks/bench_impairments.py [--frames 200] [--quick]``
(674 s measured on the shared 2-core machine at load average ~15; much less when idle).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ESNO_DB = 15.0
ACCEPT = {"sro_ppm": 50.0, "phase_noise_linewidth_hz": 50.0, "iq_gain_db": 1.0,
          "iq_phase_deg": 3.0, "dc_offset": [0.03, -0.02], "esno_db": ESNO_DB}


def _echoes(power_db: float) -> dict[str, Any]:
    """Three paths inside the cyclic prefix, echoes ``power_db`` and ``power_db - 6`` dB."""
    return {"multipath_delays_samples": [0, 2, 5],
            "multipath_gains_db": [0.0, power_db, power_db - 6.0],
            "multipath_phases_deg": [0.0, 120.0, -60.0]}


def _gaps(interval: int) -> dict[str, Any]:
    """TX underruns (64 zeros) and RX overruns (32 samples lost) every ~``interval``."""
    if interval == 0:
        return {}
    return {"underrun_interval_samples": interval, "underrun_length_samples": 64,
            "overrun_interval_samples": interval, "overrun_length_samples": 32}


#: impairment -> (unit, values, value -> impairment fields)
SWEEPS: dict[str, tuple[str, list, Any]] = {
    "cfo": ("subcarrier spacings", [-3.0, -2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 3.0, 4.5, 5.5],
            lambda v: {"cfo_subcarriers": v}),
    "sro": ("ppm", [0.0, 25.0, 50.0, 100.0, -100.0, 500.0], lambda v: {"sro_ppm": v}),
    "iq_imbalance": ("[gain dB, phase deg]", [[0.0, 0.0], [1.0, 3.0], [2.0, 6.0], [3.0, 10.0],
                                              [6.0, 20.0]],
                     lambda v: {"iq_gain_db": v[0], "iq_phase_deg": v[1]}),
    "dc_offset": ("|dc| (unit-RMS signal)", [0.0, 0.036, 0.1, 0.3, 1.0],
                  lambda v: {"dc_offset": [v, 0.0]}),
    "phase_noise": ("linewidth Hz", [0.0, 50.0, 200.0, 1000.0, 5000.0],
                    lambda v: {"phase_noise_linewidth_hz": v}),
    "multipath": ("echo power dB (delays 0/2/5 samples)", [-20.0, -10.0, -6.0, -3.0, 0.0],
                  _echoes),
    "agc_steps": ("step dB every 50000 samples, within +-6 dB", [0.0, 1.0, 2.0, 3.0, 6.0],
                  lambda v: {"agc_step_db": v, "agc_interval_samples": 50000,
                             "agc_max_db": 6.0} if v else {}),
    "gaps": ("mean samples between underruns/overruns (0 = none)",
             [0, 400000, 100000, 30000, 10000], _gaps),
}


def main(argv: list[str] | None = None) -> int:
    """Run the sweeps and print the JSON document."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200, help="frames per sweep point")
    ap.add_argument("--accept-frames", type=int, default=1000,
                    help="frames per acceptance condition")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="40 frames per point")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from gsc_phy.provenance import versions
    from gsc_stream.emulated_link import RX_ARGS, run_emulated

    frames = 40 if a.quick else a.frames
    accept_frames = 100 if a.quick else a.accept_frames
    t0 = time.monotonic()
    anchor = run_emulated({"esno_db": ESNO_DB}, frames=accept_frames, seed=a.seed)
    acceptance = []
    for cfo in (-3.0, 3.0):
        for sro in (-50.0, 50.0):
            cond = {**ACCEPT, "cfo_subcarriers": cfo, "sro_ppm": sro}
            r = run_emulated(cond, frames=accept_frames, seed=a.seed + 1)
            acceptance.append({"impairments": cond, **r, "pass": r["delivery"] >= 0.99})
    sweeps: dict[str, list] = {}
    for name, (unit, values, fields) in SWEEPS.items():
        rows = []
        for i, v in enumerate(values):
            r = run_emulated({"esno_db": ESNO_DB, **fields(v)}, frames=frames,
                             seed=a.seed + 100 + i)
            rows.append({"value": v, "unit": unit, **r})
            print(f"{name} {v}: {r['delivered']}/{r['frames']}", file=sys.stderr, flush=True)
        sweeps[name] = rows
    doc = {
        "config": {"esno_db": ESNO_DB, "frames_per_point": frames,
                   "frames_per_acceptance": accept_frames, "modulation": "qpsk",
                   "k": 1024, "n": 2048, "receiver": RX_ARGS, "gaps_between_bursts": [64, 512]},
        "snr_kind": "esno",
        "seed": a.seed,
        "versions": versions(),
        "anchor": {"what": "clean link (AWGN only), same Es/N0", **anchor},
        "acceptance": {"target_delivery": 0.99,
                       "pass": all(c["pass"] for c in acceptance), "conditions": acceptance},
        "sweeps": sweeps,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
