"""Measure the Es/N0 at which every MCS of ``gsc_phy.mcs.MCS_TABLE`` reaches 10 % BLER.

For each profile (channel, receiver estimator) and MCS, the script runs gsc's own
:class:`gsc_phy.link.Link` (SISO, one LDPC codeword per 14-symbol slot, 20 BP iterations)
on a coarse SNR grid, ``--codewords`` codewords per point, walking from a first guess until
two neighbouring points bracket the target; the threshold is the log-linear interpolation
between them. Writes ``gsc_phy/mcs_thresholds.json`` (merging profiles already there) and
prints JSON with each threshold next to its anchor, the Shannon limit of the MCS's payload
rate (gap = threshold - Shannon; positive by physics).

    .venv/bin/python benchmarks/calibrate_mcs.py [--channels awgn,tdl-a,rayleigh]
        [--estimator perfect] [--codewords 200] [--seed 0] [--out gsc_phy/mcs_thresholds.json]
        [--mcs 1x8,1x4,1x2]     # only these entries, merged into the stored profiles

Runtime: the stored file took 55 min wall for the three default profiles on the project's
shared 2-core machine (load average 5-9 from other jobs; the AWGN profile alone 13 min);
256-QAM points dominate (APP demapper, 6144-bit LDPC decoder). ``--channels`` runs one
profile at a time. Counting error: at 10 % BLER, 200 codewords give +-2 % absolute, i.e.
a few hundredths of a dB on AWGN's steep curves but up to ~1 dB on the flat fading ones.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gsc_phy.config import LinkConfig  # noqa: E402
from gsc_phy.link import Link  # noqa: E402
from gsc_phy.mcs import (  # noqa: E402
    MCS_TABLE,
    TARGET_BLER,
    THRESHOLDS_PATH,
    Mcs,
    bler_crossing_db,
    mcs_by_index,
    profile_name,
    shannon_snr_db,
)
from gsc_phy.provenance import versions  # noqa: E402

#: SNR grid step (dB) and first-guess offset above the Shannon limit, per channel.
STEP_DB = {"awgn": 0.5, "tdl-a": 1.0, "rayleigh": 2.0}
FIRST_GAP_DB = {"awgn": 1.0, "tdl-a": 6.0, "rayleigh": 10.0}
MAX_POINTS = 14


def measure_bler(link: Link, snr_db: float, codewords: int, batch: int = 100) -> list[float]:
    """``[snr_db, bler, blocks]`` from ``codewords`` transport blocks at ``snr_db``."""
    blocks = errors = 0
    while blocks < codewords:
        b = min(batch, math.ceil((codewords - blocks) / link.frame.codewords_per_frame))
        with torch.no_grad():
            out = link(batch_size=b, snr_db=snr_db)
        blocks += out.block_ok.numel()
        errors += int((~out.block_ok).sum())
    return [round(snr_db, 3), errors / blocks, blocks]


def calibrate_profile(
    channel: str, estimator: str, codewords: int, seed: int, log=print,
    table: tuple[Mcs, ...] = MCS_TABLE,
) -> dict:
    """Thresholds of every MCS of ``table`` on one profile."""
    step = STEP_DB.get(channel, 1.0)
    results: dict[str, dict] = {}
    prev_thr = prev_shannon = None
    for mcs in table:
        cfg = mcs.link_config(LinkConfig(channel=channel, estimator=estimator, seed=seed))
        link = Link(cfg, device="cpu")
        ff = link.frame
        data_res = ff.num_streams * ff.data_symbols_per_stream * ff.repetitions
        payload_se = ff.payload_bits_per_frame / data_res
        shannon = shannon_snr_db(payload_se)
        if prev_thr is None:
            guess = shannon + FIRST_GAP_DB.get(channel, 6.0)
        else:  # the previous threshold moved by the Shannon-limit difference
            guess = prev_thr + (shannon - prev_shannon)
        snr = round(guess / step) * step
        points = [measure_bler(link, snr, codewords)]
        direction = 1 if points[-1][1] > TARGET_BLER else -1
        while len(points) < MAX_POINTS:
            snr += direction * step
            points.append(measure_bler(link, snr, codewords))
            above = points[-1][1] > TARGET_BLER
            if (direction == 1 and not above) or (direction == -1 and above):
                break
        thr = bler_crossing_db(points, TARGET_BLER)
        if thr is None:
            raise RuntimeError(f"{mcs.name} on {channel}: no crossing in {points}")
        results[mcs.key] = {
            "modulation": mcs.modulation,
            "repetitions": mcs.repetitions,
            "k": cfg.k,
            "n": cfg.n,
            "code_rate": round(cfg.k / cfg.n, 5),
            "payload_bits_per_data_re": round(payload_se, 5),
            "threshold_db": round(thr, 3),
            "shannon_db": round(shannon, 3),
            "points": sorted(points),
        }
        log(f"{channel}/{estimator} {mcs.name} {mcs.modulation} k={cfg.k} n={cfg.n}: "
            f"{thr:.2f} dB (Shannon {shannon:.2f}) from {len(points)} points")
        prev_thr, prev_shannon = thr, shannon
    return {"channel": channel, "estimator": estimator, "mcs": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", default="awgn,tdl-a,rayleigh")
    ap.add_argument("--estimator", default="perfect")
    ap.add_argument("--codewords", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--out", default=str(THRESHOLDS_PATH))
    ap.add_argument("--mcs", default=None, metavar="KEYS",
                    help="only these entries, e.g. 1x8,1x4,1x2 (merged into the stored profile)")
    args = ap.parse_args(argv)
    try:
        table = (MCS_TABLE if args.mcs is None
                 else tuple(mcs_by_index(k.strip()) for k in args.mcs.split(",") if k.strip()))
    except ValueError as err:
        ap.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc.update({
        "description": "Es/N0 (dB) at which each MCS reaches the target BLER, measured with "
                       "gsc_phy.link.Link (SISO, one LDPC codeword per 14-symbol slot).",
        "snr_kind": "esno",
        "target_bler": TARGET_BLER,
        "codewords_per_point": args.codewords,
        "seed": args.seed,
        "versions": versions(),
        "config": {k: v for k, v in LinkConfig().to_dict().items()
                   if k not in ("snr_db", "channel", "estimator", "modulation", "k", "n")},
    })
    doc.setdefault("profiles", {})
    summary = {}
    t0 = time.time()
    for channel in [c.strip() for c in args.channels.split(",") if c.strip()]:
        name = profile_name(channel, args.estimator)
        prof = calibrate_profile(channel, args.estimator, args.codewords, args.seed,
                                 log=lambda m: print(m, file=sys.stderr, flush=True),
                                 table=table)
        if args.mcs is not None and name in doc["profiles"]:
            stored = doc["profiles"][name]["mcs"]
            stored.update(prof["mcs"])
            prof["mcs"] = {m.key: stored[m.key] for m in MCS_TABLE if m.key in stored}
        doc["profiles"][name] = prof
        out.write_text(json.dumps(doc, indent=1) + "\n")
        summary[name] = {
            f"MCS{key}": {"threshold_db": e["threshold_db"], "shannon_db": e["shannon_db"],
                        "gap_db": round(e["threshold_db"] - e["shannon_db"], 3)}
            for key, e in prof["mcs"].items()
        }
    print(json.dumps({"snr_kind": "esno", "target_bler": TARGET_BLER, "seed": args.seed,
                      "codewords_per_point": args.codewords, "wall_s": round(time.time() - t0, 1),
                      "anchor": "Shannon limit of each MCS's payload bits per data RE",
                      "thresholds": summary, "out": str(out)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
