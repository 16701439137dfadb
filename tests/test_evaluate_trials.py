"""``gsc eval`` statistics: independent channel trials, confidence intervals, the cliff
measure and the target pass/fail logic (synthetic data, plus one short real link)."""

import numpy as np
import pytest
import torch

from gsc_phy.mcs import mcs_by_index
from gsc_semantic.baselines import AdaptiveLink
from gsc_semantic.eval_plots import markdown_tables
from gsc_semantic.eval_targets import (
    CLIFF_MAX_FRACTION,
    check_targets,
    largest_step,
    mean_ci95,
    summarize,
)
from gsc_semantic.evaluate import trial_seed


def test_trial_seeds_are_distinct_and_reproducible():
    seeds = {trial_seed(0, t, r, s) for t in range(8) for r in range(2) for s in range(26)}
    assert len(seeds) == 8 * 2 * 26
    assert trial_seed(3, 1, 0, 2) == trial_seed(3, 1, 0, 2) != trial_seed(4, 1, 0, 2)


def test_trials_draw_distinct_channel_realisations_at_a_marginal_snr():
    torch.manual_seed(0)
    link = AdaptiveLink("awgn", rho=1 / 12)
    budget = link.budget((1, 28, 28), snr_db=-4.0, mcs=mcs_by_index(1))  # BLER about 0.5
    stream, _ = link.empty_stream(1, budget)
    stream = (torch.rand(24 * budget.frame.payload_bits_per_block) < 0.5).numpy()
    stream = stream.astype(np.uint8)
    _, ok_a = link.transmit(stream, budget, True, channel_seed=trial_seed(0, 0, 0, 0))
    _, ok_b = link.transmit(stream, budget, True, channel_seed=trial_seed(0, 1, 0, 0))
    _, ok_a2 = link.transmit(stream, budget, True, channel_seed=trial_seed(0, 0, 0, 0))
    assert ok_a.size == 24 and 0 < ok_a.mean() < 1 and 0 < ok_b.mean() < 1
    assert (ok_a != ok_b).any(), "two trials gave the same block-error pattern"
    assert (ok_a == ok_a2).all(), "the same trial seed must repeat the channel"


def test_ci_shrinks_with_trials_and_covers_the_mean():
    rng = np.random.default_rng(1)
    assert mean_ci95([0.7]) == (0.7, None)
    few = np.mean([mean_ci95(rng.normal(0.5, 0.1, 4))[1] for _ in range(200)])
    many = np.mean([mean_ci95(rng.normal(0.5, 0.1, 64))[1] for _ in range(200)])
    assert many < few / 4
    covered = 0
    for _ in range(2000):
        m, half = mean_ci95(rng.normal(0.5, 0.1, 5))
        covered += abs(m - 0.5) <= half
    assert 0.93 <= covered / 2000 <= 0.97


def test_cliff_on_known_sequences():
    snrs = list(range(-5, 21))
    ramp = largest_step(snrs, np.linspace(1.3, 0.5, 26))
    assert ramp["fraction"] == pytest.approx(1 / 25) and ramp["range"] == pytest.approx(0.8)
    step = [1.3] * 10 + [0.5] * 16
    cliff = largest_step(snrs, step)
    assert cliff["fraction"] == 1.0 and cliff["between_db"] == [4.0, 5.0]
    dip = [0.0, 0.1, 0.2, 0.3, 0.05, 0.35, 0.4]  # a dropout at 4 dB: two 0.25-0.3 jumps
    res = largest_step([6, 5, 4, 3, 2, 1, 0], dip[::-1])  # unsorted input is sorted by SNR
    assert res["fraction"] == pytest.approx(0.3 / 0.4) and res["between_db"] == [4.0, 5.0]
    assert largest_step(snrs, [0.4] * 26)["fraction"] == 0.0


def _rows(snrs, gsc_perc, base_perc, gsc_cons):
    rows = []
    for s, g, b, c in zip(snrs, gsc_perc, base_perc, gsc_cons, strict=True):
        common = {"ratio": 1 / 12, "snr_db": float(s), "psnr": 10.0 + s, "ms_ssim": 0.5}
        rows.append({"method": "gsc", "perceptual": g, "consistency": c, **common})
        rows.append({"method": "jpeg", "perceptual": b, "consistency": 0.1, **common})
    return rows


def test_adaptive_targets_and_margins():
    """The resolution-adaptive codecs are judged separately (15 % at <= 5 dB), are not
    counted among the full-size codecs, and gsc's margin is reported at every SNR."""
    snrs = [-5, 0, 5, 10, 15, 20]
    rows = _rows(snrs, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5], [1.5] * 6, [0.9] * 6)
    ra = [1.2, 1.0, 0.9, 0.75, 0.55, 0.45]  # 17 % / 10 % / 11 % better than gsc's losses
    for s, v in zip(snrs, ra, strict=True):
        rows.append({"method": "webp-ra", "ratio": 1 / 12, "snr_db": float(s), "psnr": 20.0,
                     "ms_ssim": 0.5, "perceptual": v, "consistency": 0.5})
    t = check_targets(rows)
    assert t["perceptual_below_every_codec"]["pass"] is True  # jpeg only
    assert t["perceptual_below_every_codec"]["baselines"] == ["jpeg"]
    below = t["perceptual_below_every_adaptive"]
    assert below["pass"] is False and below["failing_snr_db"] == [15.0, 20.0]
    assert below["margin_by_snr_db"]["-5"] == pytest.approx(1 - 1.0 / 1.2, abs=1e-4)
    assert below["margin_by_snr_db"]["20"] < 0
    low = t["perceptual_15pct_below_adaptive_at_low_snr"]
    assert low["required"] == 0.15 and low["failing_snr_db"] == [0.0, 5.0]
    assert t["perceptual_below_every_baseline"]["pass"] is False  # counts webp-ra too


def test_targets_pass_and_fail_from_the_data():
    snrs = list(range(-5, 21))
    gsc = list(np.linspace(0.9, 0.5, 26))
    base = [1.4] * 26
    cons = list(np.linspace(0.82, 0.99, 26))
    good = check_targets(_rows(snrs, gsc, base, cons))
    assert all(good[k]["pass"] for k in good if "adaptive" not in k), good
    assert good["perceptual_below_every_adaptive"]["pass"] is None  # no -ra rows
    assert good["no_cliff"]["max_fraction"] <= CLIFF_MAX_FRACTION

    worse = list(gsc)
    worse[20] = 1.5  # loses to the baseline at 15 dB, and a cliff there
    bad = check_targets(_rows(snrs, worse, base, cons))
    assert bad["perceptual_below_every_baseline"]["failing_snr_db"] == [15.0]
    assert bad["perceptual_below_every_baseline"]["beaten_by"] == {"15": ["jpeg"]}
    assert bad["no_cliff"]["pass"] is False
    assert bad["perceptual_30pct_lower_at_low_snr"]["pass"] is True

    close = check_targets(_rows(snrs, gsc, [g / 0.75 for g in gsc], cons))  # 25 % lower only
    assert close["perceptual_30pct_lower_at_low_snr"]["pass"] is False
    assert close["perceptual_below_every_baseline"]["pass"] is True

    low_cons = list(cons)
    low_cons[5] = 0.79  # 0 dB
    assert check_targets(_rows(snrs, gsc, base, low_cons))["consistency_from_0db"][
        "failing_snr_db"] == [0.0]


def test_coarse_sweep_cannot_judge_cliffs_and_tables_show_verdicts():
    snrs = [-5, 0, 5, 10, 15, 20]
    rows = _rows(snrs, [0.9, 0.8, 0.7, 0.6, 0.55, 0.5], [1.4] * 6, [0.5] * 6)
    for r in rows:
        r.update({"delivered": 1.0, "perceptual_ci95": 0.01, "consistency_ci95": None})
    summary = summarize(rows)
    targets = summary["1/12"]["targets"]
    assert targets["no_cliff"]["pass"] is None and "reason" in targets["no_cliff"]
    assert targets["consistency_from_0db"]["pass"] is False
    doc = {"config": {"data": "fmnist", "channel": "awgn", "trials": 4, "num_images": 16,
                      "methods": ["gsc", "jpeg"]}, "rows": rows, "summary": summary}
    md = markdown_tables(doc)
    assert "| gsc | 0.90 ± 0.01 / 5.0 / 0.50 / 1.00 |" in md
    assert "**FAIL** (min 0.50)" in md and "| no cliff" in md and "n/a" in md


def test_gsc_outputs_are_judged_against_the_baselines_only():
    snrs = [-5, 0, 5, 10, 15, 20]
    rows = _rows(snrs, [0.9, 0.8, 0.7, 0.6, 0.55, 0.5], [1.4] * 6, [0.9] * 6)
    # the deterministic output: better than gsc's sample, worse than jpeg at 20 dB
    rows += [dict(r, method="gsc-mse", perceptual=r["perceptual"] - 0.1 if s < 20 else 1.5)
             for r, s in zip(rows[::2], snrs, strict=True)]
    for r in rows:
        r.update({"delivered": 1.0, "perceptual_ci95": None, "consistency_ci95": None})
    summary = summarize(rows)["1/12"]
    assert summary["targets"]["perceptual_below_every_baseline"]["pass"] is True
    assert summary["targets"]["perceptual_below_every_baseline"]["baselines"] == ["jpeg"]
    mse = summary["targets_gsc-mse"]["perceptual_below_every_baseline"]
    assert mse["pass"] is False and mse["beaten_by"] == {"20": ["jpeg"]}
    doc = {"config": {"data": "fmnist", "channel": "awgn", "trials": 1, "num_images": 4,
                      "methods": ["gsc", "gsc-mse", "jpeg"]}, "rows": rows,
           "summary": {"1/12": summary}}
    md = markdown_tables(doc)
    assert "gsc-mse targets, ρ = 1/12" in md and "| gsc-mse | 0.80 / " in md


def test_codec_targets_leave_the_capacity_bound_out():
    snrs = [-5.0, 0.0, 5.0, 10.0]
    rows = []
    for s, g, cap in zip(snrs, (0.9, 0.8, 0.6, 0.5), (1.4, 1.0, 0.5, 0.4), strict=True):
        for m, p in (("gsc", g), ("webp", 1.4), ("capacity", cap)):
            rows.append({"method": m, "snr_db": s, "perceptual": p, "consistency": 0.5,
                         "psnr": 20.0, "ms_ssim": 0.8})
    out = check_targets(rows)
    assert out["perceptual_below_every_baseline"]["beaten_by"] == {"5": ["capacity"],
                                                                   "10": ["capacity"]}
    assert out["perceptual_below_every_codec"]["pass"] is True
    assert out["perceptual_below_every_codec"]["baselines"] == ["webp"]
    assert out["perceptual_30pct_below_codecs_at_low_snr"]["pass"] is True
    assert out["perceptual_30pct_lower_at_low_snr"]["pass"] is False
