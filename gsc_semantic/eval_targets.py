"""Statistics and target checks of ``gsc eval``: trial confidence intervals, cliffs, and the
issue's pass/fail targets, computed from the eval rows (never assumed).

* :func:`mean_ci95`: mean and 95 % Student-t half-width over independent channel trials.
* :func:`largest_step`: the largest change between adjacent SNR points of one curve, as a
  fraction of that curve's range over the sweep (the "no cliff" measure).
* :func:`summarize`: per ratio, the cliff table of every method and the targets for gsc:

  - ``perceptual_below_every_baseline``: feature distance below every other method at every
    swept SNR in [-5, 20] dB;
  - ``perceptual_30pct_lower_at_low_snr``: at least 30 % lower than the best other method at
    every swept SNR in [-5, 5] dB;
  - ``perceptual_below_every_codec`` and ``perceptual_30pct_below_codecs_at_low_snr``: the
    same two against the full-size codec baselines only (JPEG, WebP, AVIF + LDPC; the
    capacity bound and the resolution-adaptive codecs left out: the photo codec issue's
    criterion);
  - ``perceptual_below_every_adaptive`` and ``perceptual_15pct_below_adaptive_at_low_snr``:
    against the resolution-adaptive codecs (``jpeg-ra``, ``webp-ra``, ``avif-ra``; at least
    15 % lower at <= 5 dB), with gsc's margin over the best of them at every SNR;
  - ``no_cliff``: no quality metric changes by more than 15 % of its range between adjacent
    SNR points (judged only on sweeps with steps of at most 1 dB; ``pass`` is ``None``
    otherwise);
  - ``consistency_from_0db``: semantic consistency >= 0.8 at every swept SNR >= 0 dB;
  - ``perceptual_below_deepjscc``: below the learned JSCC baselines (``deepjscc``,
    ``deepjscc-q``) at every swept SNR, present only when they were evaluated (they count
    among "every baseline" too, not among the codecs).

* the ``deepjscc`` entry (:func:`check_deepjscc`, when DeepJSCC was evaluated), the issue's
  criteria for the learned baseline itself: ``psnr_above_codecs_at_low_snr`` (PSNR above
  JPEG, WebP and AVIF + LDPC at every swept SNR <= 5 dB), ``no_cliff`` (its PSNR changes by
  at most 15 % of its range between adjacent SNR points <= 1 dB apart) and
  ``psnr_vs_capacity_at_20db`` (reported, no pass/fail).

Example::

    >>> from gsc_semantic.eval_targets import largest_step, mean_ci95
    >>> mean_ci95([1.0, 1.0, 1.0])
    (1.0, 0.0)
    >>> largest_step([0, 1, 2, 3], [0.0, 0.1, 0.9, 1.0])["fraction"]
    0.8
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["QUALITY_METRICS", "TARGETS", "DEEPJSCC_TARGETS", "mean_ci95", "largest_step",
           "cliff_table", "check_targets", "check_deepjscc", "summarize", "ratio_label"]

QUALITY_METRICS = ("psnr", "ms_ssim", "perceptual", "consistency")
SNR_RANGE_DB = (-5.0, 20.0)
LOW_SNR_DB = 5.0
LOW_SNR_REDUCTION = 0.30
ADAPTIVE_LOW_SNR_REDUCTION = 0.15
ADAPTIVE_SUFFIX = "-ra"  # resolution-adaptive baselines (gsc_semantic.resolution_adaptive)
JSCC_PREFIX = "deepjscc"  # learned JSCC baselines (gsc_semantic.deepjscc_link)
FULL_SIZE_CODECS = ("jpeg", "webp", "avif")
CLIFF_MAX_FRACTION = 0.15
CLIFF_MAX_STEP_DB = 1.0
CONSISTENCY_MIN = 0.8
CONSISTENCY_FROM_DB = 0.0
TARGETS = ("perceptual_below_every_baseline", "perceptual_30pct_lower_at_low_snr",
           "perceptual_below_every_codec", "perceptual_30pct_below_codecs_at_low_snr",
           "perceptual_below_every_adaptive", "perceptual_15pct_below_adaptive_at_low_snr",
           "no_cliff", "consistency_from_0db", "perceptual_below_deepjscc")
DEEPJSCC_TARGETS = ("psnr_above_codecs_at_low_snr", "no_cliff", "psnr_vs_capacity_at_20db")


def ratio_label(rho: float) -> str:
    """``1/48`` for ρ = 1/48, else the value (``0.3``)."""
    inv = 1.0 / rho
    return f"1/{round(inv)}" if math.isclose(inv, round(inv)) else f"{rho:.4g}"


def mean_ci95(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean of independent trial values and the half-width of its 95 % Student-t interval.

    :input values: One value per trial (e.g. a metric averaged over the trial's images).
    :output: ``(mean, half_width)``; the half-width is ``None`` for a single trial.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_ci95 needs at least one value")
    if v.size == 1:
        return float(v[0]), None
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def largest_step(snrs: Sequence[float], values: Sequence[float]) -> dict:
    """Largest |change| between adjacent SNR points over the curve's range (max − min).

    :input snrs, values: One curve (any order; sorted by SNR here).
    :output: ``{"fraction", "step", "range", "between_db"}``; a flat curve has fraction 0.
    """
    order = np.argsort(np.asarray(snrs, dtype=np.float64))
    x = np.asarray(snrs, dtype=np.float64)[order]
    y = np.asarray(values, dtype=np.float64)[order]
    if y.size < 2:
        return {"fraction": 0.0, "step": 0.0, "range": 0.0, "between_db": None}
    steps = np.abs(np.diff(y))
    i = int(np.argmax(steps))
    span = float(y.max() - y.min())
    frac = float(steps[i] / span) if span > 1e-12 else 0.0
    return {"fraction": round(frac, 6), "step": float(steps[i]), "range": span,
            "between_db": [float(x[i]), float(x[i + 1])]}


def _curve(rows: list[dict], method: str, metric: str) -> tuple[list[float], list[float]]:
    pts = sorted((r["snr_db"], r[metric]) for r in rows if r["method"] == method)
    return [p[0] for p in pts], [p[1] for p in pts]


def cliff_table(rows: list[dict]) -> dict:
    """``{method: {metric: largest_step(...)}}`` for the rows of one ratio."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    return {m: {k: largest_step(*_curve(rows, m, k)) for k in QUALITY_METRICS}
            for m in methods}


def _by_snr(rows: list[dict], method: str, metric: str) -> dict[float, float]:
    return {r["snr_db"]: r[metric] for r in rows if r["method"] == method}


def _margins(rows: list[dict], gsc: dict[float, float], others: list[str],
             required: float = LOW_SNR_REDUCTION) -> tuple[dict, dict]:
    """"Below every one of ``others``" (with the margin over the best of them at every SNR)
    and ">= ``required`` below the best of them at <= 5 dB"."""
    best: dict[float, float] = {}
    for snr in gsc:
        vals = [_by_snr(rows, m, "perceptual").get(snr) for m in others]
        if others and all(v is not None for v in vals):
            best[snr] = min(vals)
    lo, hi = SNR_RANGE_DB
    in_range = [s for s in sorted(best) if lo <= s <= hi]
    failing = [s for s in in_range if not gsc[s] < best[s]]
    beaten_by = {f"{s:g}": [m for m in others if _by_snr(rows, m, "perceptual")[s] <= gsc[s]]
                 for s in failing}
    reduction = {s: (1.0 - gsc[s] / best[s]) if best[s] > 0 else 0.0 for s in in_range}
    below = {"pass": (not failing) if in_range else None, "baselines": others,
             "snr_db": in_range, "failing_snr_db": failing, "beaten_by": beaten_by,
             "margin_by_snr_db": {f"{s:g}": round(reduction[s], 4) for s in in_range}}
    low = [s for s in in_range if s <= LOW_SNR_DB]
    failing = [s for s in low if reduction[s] < required]
    margin = {"pass": (not failing) if low else None, "required": required,
              "baselines": others,
              "reduction_by_snr_db": {f"{s:g}": round(reduction[s], 4) for s in low},
              "failing_snr_db": failing}
    return below, margin


def check_targets(rows: list[dict], method: str = "gsc") -> dict:
    """The targets (:data:`TARGETS`) for ``method`` against the other methods in ``rows``
    (one ratio).

    :output: ``{target: {"pass": True | False | None, ...details}}``; ``None`` when the sweep
        cannot decide it (no baseline, no SNR in range, steps coarser than 1 dB).
    """
    gsc = _by_snr(rows, method, "perceptual")
    others = [m for m in dict.fromkeys(r["method"] for r in rows)
              if m != method and not m.startswith("gsc")]  # the baselines
    out: dict[str, dict] = {}
    out["perceptual_below_every_baseline"], out["perceptual_30pct_lower_at_low_snr"] = \
        _margins(rows, gsc, others)
    codecs = [m for m in others if m != "capacity" and not m.endswith(ADAPTIVE_SUFFIX)
              and not m.startswith(JSCC_PREFIX)]
    out["perceptual_below_every_codec"], out["perceptual_30pct_below_codecs_at_low_snr"] = \
        _margins(rows, gsc, codecs)
    adaptive = [m for m in others if m.endswith(ADAPTIVE_SUFFIX)]
    out["perceptual_below_every_adaptive"], \
        out["perceptual_15pct_below_adaptive_at_low_snr"] = \
        _margins(rows, gsc, adaptive, ADAPTIVE_LOW_SNR_REDUCTION)

    snrs = sorted(gsc)
    max_step = float(np.max(np.diff(snrs))) if len(snrs) > 1 else math.inf
    mine = cliff_table([r for r in rows if r["method"] == method]).get(method, {})
    worst = max(mine.items(), key=lambda kv: kv[1]["fraction"]) if mine else None
    decidable = len(snrs) >= 3 and max_step <= CLIFF_MAX_STEP_DB + 1e-9 and worst is not None
    out["no_cliff"] = {
        "pass": (worst[1]["fraction"] <= CLIFF_MAX_FRACTION) if decidable else None,
        "max_fraction": worst[1]["fraction"] if worst else None,
        "worst_metric": worst[0] if worst else None,
        "between_db": worst[1]["between_db"] if worst else None,
        "limit": CLIFF_MAX_FRACTION, "snr_step_db": max_step if len(snrs) > 1 else None,
        **({} if decidable else {"reason": f"needs >= 3 SNR points {CLIFF_MAX_STEP_DB:g} dB "
                                           "apart or closer"})}

    jscc = [m for m in others if m.startswith(JSCC_PREFIX)]
    if jscc:  # only when the learned baselines were evaluated
        out["perceptual_below_deepjscc"] = _margins(rows, gsc, jscc)[0]

    cons = _by_snr(rows, method, "consistency")
    judged = [s for s in sorted(cons) if s >= CONSISTENCY_FROM_DB]
    failing = [s for s in judged if cons[s] < CONSISTENCY_MIN]
    out["consistency_from_0db"] = {
        "pass": (not failing) if judged else None, "required": CONSISTENCY_MIN,
        "min": min((cons[s] for s in judged), default=None), "failing_snr_db": failing}
    return out


def check_deepjscc(rows: list[dict], method: str = "deepjscc") -> dict:
    """The learned baseline's own criteria (:data:`DEEPJSCC_TARGETS`) from the rows of one
    ratio: PSNR above every full-size codec + LDPC at every swept SNR <= 5 dB, no PSNR
    cliff, and its PSNR at 20 dB next to the capacity bound's.

    >>> rows = [{"method": m, "snr_db": s, "psnr": p, "ms_ssim": 0, "perceptual": 0,
    ...          "consistency": 0} for m, s, p in [("deepjscc", 0.0, 25.0),
    ...          ("jpeg", 0.0, 10.0), ("deepjscc", 1.0, 26.0), ("jpeg", 1.0, 12.0)]]
    >>> check_deepjscc(rows)["psnr_above_codecs_at_low_snr"]["pass"]
    True
    """
    mine = _by_snr(rows, method, "psnr")
    present = set(r["method"] for r in rows)
    codecs = [m for m in FULL_SIZE_CODECS if m in present]
    low = [s for s in sorted(mine) if s <= LOW_SNR_DB
           and all(s in _by_snr(rows, c, "psnr") for c in codecs)]
    failing = {f"{s:g}": [c for c in codecs if _by_snr(rows, c, "psnr")[s] >= mine[s]]
               for s in low}
    failing = {k: v for k, v in failing.items() if v}
    margin = {f"{s:g}": round(mine[s] - max(_by_snr(rows, c, "psnr")[s] for c in codecs), 3)
              for s in low} if codecs else {}
    out: dict[str, dict] = {"psnr_above_codecs_at_low_snr": {
        "pass": (not failing) if (low and codecs) else None, "codecs": codecs,
        "snr_db": low, "beaten_by": failing, "margin_db_by_snr_db": margin}}
    snrs = sorted(mine)
    max_step = float(np.max(np.diff(snrs))) if len(snrs) > 1 else math.inf
    step = largest_step(*_curve(rows, method, "psnr"))
    decidable = len(snrs) >= 3 and max_step <= CLIFF_MAX_STEP_DB + 1e-9
    out["no_cliff"] = {"pass": (step["fraction"] <= CLIFF_MAX_FRACTION) if decidable else None,
                       "metric": "psnr", "max_fraction": step["fraction"],
                       "between_db": step["between_db"], "limit": CLIFF_MAX_FRACTION,
                       "snr_step_db": max_step if len(snrs) > 1 else None}
    cap = _by_snr(rows, "capacity", "psnr")
    at = 20.0
    out["psnr_vs_capacity_at_20db"] = {
        "pass": None, "psnr_db": mine.get(at), "capacity_psnr_db": cap.get(at),
        "difference_db": (round(mine[at] - cap[at], 3) if at in mine and at in cap
                          else None)}
    return out


def summarize(rows: list[dict], method: str = "gsc") -> dict:
    """``{ratio label: {"cliff": cliff_table, "targets": check_targets}}`` over all ratios;
    targets only when ``method`` was evaluated; ``"targets_<name>"`` likewise for gsc's other
    outputs (``gsc-mse``, ``gsc-teacher``, ``gsc-student``, the ablation ``gsc-bicubic``)
    when evaluated; ``"deepjscc"`` / ``"deepjscc-q"``: :func:`check_deepjscc` when those
    were evaluated."""
    out = {}
    for rho in dict.fromkeys(r["ratio"] for r in rows):
        sub = [r for r in rows if r["ratio"] == rho]
        entry = {"ratio": rho, "cliff": cliff_table(sub)}
        if any(r["method"] == method for r in sub):
            entry["targets"] = check_targets(sub, method)
        for jscc in ("deepjscc", "deepjscc-q"):
            if any(r["method"] == jscc for r in sub):
                entry[jscc] = check_deepjscc(sub, jscc)
        if method == "gsc":  # gsc's other receiver outputs, each judged the same way
            for other in ("gsc-mse", "gsc-teacher", "gsc-student", "gsc-bicubic"):
                if any(r["method"] == other for r in sub):
                    entry[f"targets_{other}"] = check_targets(sub, other)
        out[ratio_label(rho)] = entry
    return out
