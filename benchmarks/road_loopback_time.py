"""Wall time of the streamed road scenario: ``gsc scenario road --link loopback --scenes 4
--snr 0,10,20`` (issue #14's figure for the persistent streaming session), as JSON.

Runs the command as a subprocess of a checkout (``--repo``, default this one) with its own
``gsc`` root module (``--cli``: ``gsc_cli`` here, ``gsc_phy.cli`` on checkouts from before
the CLI root moved), so the same script times an older checkout and this one on the same
machine::

    .venv/bin/python benchmarks/road_loopback_time.py                       # this checkout
    .venv/bin/python benchmarks/road_loopback_time.py --repo ../main --cli gsc_phy.cli

Prints ``{"command", "repo", "commit", "seconds", "transmissions", "frames_sent",
"frames_decoded", "seconds_per_transmission", "snr_kind", "seed"}``; the frame counts come
from ``road.json``'s loopback counters, so two checkouts can be compared on the same seed.
Not part of ``make bench`` (it takes a minute or more: the scenario itself, plus one streaming
session start per MCS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["scenario", "road", "--link", "loopback", "--scenes", "4", "--snr", "0,10,20"]


def _counters(doc: dict) -> dict[str, int]:
    """Loopback counters summed over the rows of a road.json."""
    tot = {"transmissions": 0, "frames_sent": 0, "frames_decoded": 0}
    for row in doc.get("rows", []):
        lb = row.get("loopback") or {}
        for key in tot:
            tot[key] += int(lb.get(key, 0))
    return tot


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=ROOT, help="checkout to run (default: this one)")
    ap.add_argument("--cli", default="gsc_cli", help="its gsc root module")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args(argv)
    repo = os.path.abspath(args.repo)
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="gsc-bench-session-") as out:
        cmd = [args.python, "-m", args.cli, *ARGS, "--seed", str(args.seed), "--out", out]
        env = dict(os.environ, PYTHONPATH=repo)
        t0 = time.monotonic()
        res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True,
                             timeout=7200)
        seconds = time.monotonic() - t0
        if res.returncode != 0:
            print(res.stderr[-2000:], file=sys.stderr)
            return 1
        with open(os.path.join(out, "road.json"), encoding="utf-8") as fh:
            doc = json.load(fh)
    counts = _counters(doc)
    print(json.dumps({
        "command": "gsc " + " ".join(ARGS), "repo": repo, "commit": commit,
        "seconds": round(seconds, 1), **counts,
        "seconds_per_transmission": round(seconds / max(1, counts["transmissions"]), 2),
        "snr_kind": doc.get("snr_kind", "esno"), "seed": args.seed,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
