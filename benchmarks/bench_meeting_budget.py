"""Meeting scenario: channel uses gsc and H.264 need for equal landmark error (issue #6).

For each clip length, H.264 is swept over budgets and gsc over its settings (keypoint codec,
reference quality, MCS policy), both through the same simulated link at each Es/N0
(:mod:`gsc_semantic.scenarios.meeting_budget`); for each gsc point, the H.264 channel uses
that reach the same NME (interpolated on H.264's curve, the anchor, measured in the same
run) and the ratio H.264 / gsc (issue target >= 10). gsc's reference frame is sent once and
its cost spread over the clip, so the ratio depends on the clip length: it is reported per
length. Writes ``OUT/meeting_budget.json``, ``OUT/meeting_budget_T<frames>.md`` and
``.png`` (NME vs channel uses) and prints a JSON summary (best ratio per length and SNR).

    .venv/bin/python benchmarks/bench_meeting_budget.py [--clip procedural]
        [--frames 16,48,160] [--snr 10,5] [--channel awgn] [--out runs/meeting-budget]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from bridge.common import ConfigError  # noqa: E402


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def run(clip: str, frames: list[int], snrs: list[float], channel: str, out: str,
        seed: int) -> dict:
    """Sweep every clip length; returns the document written to ``OUT/meeting_budget.json``."""
    from gsc_semantic.scenarios import meeting_budget as mb
    from gsc_semantic.scenarios.face_landmarks import DETECTION_THRESHOLD
    from gsc_semantic.scenarios.meeting import load_meeting_clip, load_models, meeting_versions

    landmark_net, decoder, basis = load_models()
    runs, summary = [], []
    for t in frames:
        t0 = time.time()
        data = load_meeting_clip(clip, t, seed)
        lm_tx, conf = landmark_net.detect(data.frames)
        present = conf >= DETECTION_THRESHOLD
        true_lm = data.landmarks if data.landmarks is not None else lm_tx
        doc = mb.sweep(data.frames, true_lm, lm_tx, present, decoder, landmark_net, basis,
                       channel, snrs, seed)
        mb.write_outputs(doc, out, f"meeting_budget_T{len(data.frames)}",
                         f"{data.source}, {len(data.frames)} frames, {channel}")
        doc["seconds"] = round(time.time() - t0, 1)
        runs.append(doc)
        for snr in snrs:
            h = [p for p in doc["h264"] if p["snr_db"] == snr]
            best = doc["best"].get(f"{snr:g}")
            summary.append({"frames": len(data.frames), "snr_db": snr,
                            "h264_lowest_channel_uses_per_frame":
                                min((p["channel_uses_per_frame"] for p in h), default=None),
                            "best": best})
    result = {"benchmark": "meeting_budget", "config": {"clip": clip, "frames": frames,
                                                        "snrs": snrs, "channel": channel},
              "snr_kind": "esno", "seed": seed, "versions": meeting_versions(),
              "target_ratio": 10, "summary": summary, "runs": runs}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "meeting_budget.json"), "w") as fh:
        json.dump(result, fh, indent=2, default=float)
        fh.write("\n")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="procedural")
    ap.add_argument("--frames", default="16,48,160", help="clip lengths, comma list")
    ap.add_argument("--snr", default="10,5", help="Es/N0 in dB, comma list")
    ap.add_argument("--channel", default="awgn")
    ap.add_argument("--out", default="runs/meeting-budget")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    try:
        frames, snrs = _ints(args.frames), _floats(args.snr)
        if not frames or not snrs or min(frames) < 2:
            raise ConfigError("--frames needs lengths >= 2 and --snr at least one value")
        result = run(args.clip, frames, snrs, args.channel, args.out, args.seed)
    except (ConfigError, ValueError) as err:
        print(f"gsc: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"benchmark": result["benchmark"], "config": result["config"],
                      "target_ratio": result["target_ratio"], "summary": result["summary"],
                      "out": os.path.join(args.out, "meeting_budget.json")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
