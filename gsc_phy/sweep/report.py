"""``gsc report DIR``: curves and tables from a sweep's results store.

Points that differ only by seed form one curve; across seeds, error rates are pooled
(total errors / total trials, the runner's :class:`~gsc_phy.sweep.runners.ReportSpec`
says which) and other metrics averaged. One PNG per metric (split into panels when a grid
has many curves), ``summary.csv`` with every curve point and ``report.html`` with the
plots and tables, in the style of ``gsc demo``.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bridge.common import ConfigError

from .runners import ReportSpec, get_runner
from .spec import canonical_json
from .store import FAILURES, read_failures, read_manifest, read_results

__all__ = ["Curve", "build_curves", "write_report"]

SNR_KIND_LABEL = {"esno": "Es/N0", "ebno": "Eb/N0"}
MAX_CURVES_PER_PLOT = 8


@dataclass
class Curve:
    """One curve: the points sharing all parameters but the seed.

    :param params: the parameters of the curve
    :param label: the varied parameters as ``key=value`` text
    :param xs: x values, sorted
    :param ys: metric -> values along ``xs``
    :param sums: summed counters -> values along ``xs``
    :param seeds: number of seeds behind each x value
    """

    params: dict
    label: str
    xs: list[float] = field(default_factory=list)
    ys: dict[str, list[float]] = field(default_factory=dict)
    sums: dict[str, list[float]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.3e}" if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e5) else f"{v:.4g}"
    return html.escape(str(v))


def _infer_spec(records: list[dict], varied: list[str]) -> ReportSpec:
    """Plot spec for a runner without one: numeric row keys against a varying key."""
    rows = [r for rec in records for r in rec["rows"]]
    numeric = [k for k in (rows[0] if rows else {})
               if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)
                      for r in rows)]
    in_rows = [k for k in numeric if len({r[k] for r in rows}) > 1]
    num_params = [k for k in varied if all(isinstance(rec["params"].get(k), (int, float))
                                           for rec in records)]
    x = (in_rows[:1] or num_params[:1] or ["point"])[0]
    return ReportSpec(x=x, y=tuple(k for k in numeric if k != x),
                      x_param=None if in_rows else x)


def varied_params(records: list[dict]) -> list[str]:
    """Parameters that are not the same in every stored point."""
    values: dict[str, set[str]] = defaultdict(set)
    keys = [k for rec in records for k in rec["params"]]
    for rec in records:
        for k in dict.fromkeys(keys):
            values[k].add(canonical_json(rec["params"].get(k)))
    return [k for k in dict.fromkeys(keys) if len(values[k]) > 1]


def build_curves(records: list[dict], spec: ReportSpec, varied: list[str]) -> list[Curve]:
    """Group stored points into curves and aggregate their rows over seeds.

    Points that differ only by seed, or by ``spec.x_param``, share a curve; ``varied``
    (without ``x_param``) names the curves.
    """
    groups: dict[str, list[dict]] = {}
    for rec in records:
        key = {k: v for k, v in rec["params"].items() if k != spec.x_param}
        groups.setdefault(canonical_json(key), []).append(rec)
    varied = [k for k in varied if k != spec.x_param]
    curves = []
    for recs in groups.values():
        params = {k: v for k, v in recs[0]["params"].items() if k != spec.x_param}
        label = ", ".join(f"{k}={params.get(k, '-')}" for k in varied) or "all points"
        by_x: dict[float, list[tuple[int, dict]]] = defaultdict(list)
        for i, rec in enumerate(recs):
            for row in rec["rows"]:
                x = row.get(spec.x, rec["params"].get(spec.x, i))
                try:
                    by_x[float(x)].append((rec["seed"], row))
                except (TypeError, ValueError):
                    continue
        c = Curve(params=params, label=label)
        for x in sorted(by_x):
            rows = [r for _, r in by_x[x]]
            c.xs.append(x)
            c.seeds.append(len({s for s, _ in by_x[x]}))
            for y in spec.y:
                if y in spec.pooled:
                    num, den = spec.pooled[y]
                    d = sum(r.get(den, 0) for r in rows)
                    val = sum(r.get(num, 0) for r in rows) / d if d else math.nan
                else:
                    vals = [r[y] for r in rows if isinstance(r.get(y), (int, float))]
                    val = sum(vals) / len(vals) if vals else math.nan
                c.ys.setdefault(y, []).append(float(val))
            for s in spec.sums:
                c.sums.setdefault(s, []).append(sum(r.get(s, 0) for r in rows))
        curves.append(c)
    return curves


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")[:80]


def _plot(curves: list[Curve], y: str, spec: ReportSpec, x_label: str, title: str,
          path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cmap = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    markers = "os^vD<>ph*"
    for i, c in enumerate(curves):
        vals = [v if (v > 0 or not spec.logy) else math.nan for v in c.ys.get(y, [])]
        ax.plot(c.xs, vals, marker=markers[i % len(markers)], ms=4, color=cmap(i % cmap.N),
                label=c.label)
    if spec.logy:
        ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y.upper() if len(y) <= 4 else y)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if len(curves) > 1 or curves[0].label != "all points":
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(store_dir: str, out_dir: str | None = None) -> str:
    """Write plots, ``summary.csv`` and ``report.html`` for the store at ``store_dir``.

    :returns: the path of ``report.html``
    """
    if not os.path.isdir(store_dir):
        raise ConfigError(f"{store_dir!r} is not a directory (give a gsc sweep --out folder)")
    manifest = read_manifest(store_dir) or {}
    records = read_results(store_dir)
    if not records:
        if not manifest:
            raise ConfigError(f"{store_dir} is not a sweep results store (no manifest.json "
                              "or results.jsonl)")
        raise ConfigError(f"{store_dir} holds no finished points yet")
    out_dir = out_dir or store_dir
    os.makedirs(out_dir, exist_ok=True)
    runner_name = manifest.get("runner") or records[0].get("runner", "")
    try:
        spec = get_runner(runner_name).report
    except ConfigError:
        spec = None
    varied = varied_params(records)
    spec = spec or _infer_spec(records, varied)
    curves = build_curves(records, spec, varied)
    point_varied = varied  # the points table shows every varied parameter
    varied = [k for k in varied if k != spec.x_param]
    kinds = {r.get("snr_kind") for rec in records for r in rec["rows"]} - {None}
    kind = SNR_KIND_LABEL.get(next(iter(kinds)), "SNR") if len(kinds) == 1 else "SNR"
    x_label = (spec.x_label or spec.x).replace("{snr_kind}", kind)
    name = manifest.get("name") or records[0].get("sweep", "sweep")

    # panels: many curves are split by the first varied parameter
    panels: dict[str, list[Curve]] = {"": curves}
    if len(curves) > MAX_CURVES_PER_PLOT and len(varied) >= 2:
        panels = defaultdict(list)
        for c in curves:
            panels[f"{varied[0]}={c.params.get(varied[0], '-')}"].append(c)
    images: list[tuple[str, str]] = []
    for y in spec.y:
        for panel, pcurves in panels.items():
            fname = _slug(f"report_{y}" + (f"_{panel}" if panel else "")) + ".png"
            title = f"{name}: {y}" + (f" ({panel})" if panel else "")
            _plot(pcurves, y, spec, x_label, title, os.path.join(out_dir, fname))
            images.append((fname, title))

    with open(os.path.join(out_dir, "summary.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(varied + [spec.x, *spec.y, "seeds", *spec.sums])
        for c in curves:
            for i, x in enumerate(c.xs):
                w.writerow([c.params.get(k, "") for k in varied] + [x]
                           + [c.ys[y][i] for y in spec.y] + [c.seeds[i]]
                           + [c.sums[s][i] for s in spec.sums])

    expected = {p["id"] for p in manifest.get("points", [])}
    stored = {rec["id"] for rec in records}
    failed_ids = {f["id"] for f in read_failures(store_dir)} - stored
    fixed = {k: v for k, v in records[0]["params"].items() if k not in point_varied}
    parts = [
        f"<!doctype html><meta charset=utf-8><title>gsc sweep {html.escape(name)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "td,th{padding:2px 8px;text-align:right}th{background:#eee}"
        "img{margin:4px}</style>",
        f"<h1>gsc sweep: {html.escape(name)}</h1>",
        f"<p>runner <b>{html.escape(runner_name)}</b>; {len(stored)} points in the store"
        + (f" of {len(expected)} in the manifest" if expected else "")
        + (f"; <b>{len(expected - stored)} not finished</b> (run gsc sweep again to complete)"
           if expected - stored else "")
        + (f"; {len(failed_ids)} failed (see {FAILURES})" if failed_ids else "")
        + f". Seeds: {sorted({rec['seed'] for rec in records})}.</p>",
    ]
    if spec.pooled:
        parts.append("<p>" + html.escape(", ".join(
            f"{y} = Σ {n} / Σ {d}" for y, (n, d) in spec.pooled.items()))
            + " over seeds. " + ("Es/N0 per complex channel symbol (docs/conventions.md)."
                                 if kind == "Es/N0" else "") + "</p>")
    if fixed:
        parts.append("<p>fixed: " + html.escape(", ".join(f"{k}={v}" for k, v in fixed.items()))
                     + "</p>")
    parts += [f"<img src='{f}' width=520 alt='{html.escape(t)}'>" for f, t in images]
    for c in curves:
        parts.append(f"<h3>{html.escape(c.label)}</h3><table><tr><th>{html.escape(x_label)}"
                     "</th>" + "".join(f"<th>{html.escape(h)}</th>"
                                       for h in [*spec.y, "seeds", *spec.sums]) + "</tr>")
        for i, x in enumerate(c.xs):
            cells = [x, *(c.ys[y][i] for y in spec.y), c.seeds[i],
                     *(c.sums[s][i] for s in spec.sums)]
            parts.append("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in cells) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>points</h2><table><tr><th>id</th>" + "".join(
        f"<th>{html.escape(k)}</th>" for k in point_varied)
        + "<th>seed</th><th>seconds</th><th>host</th><th>finished</th></tr>")
    for rec in records:
        parts.append(f"<tr><td><code>{rec['id']}</code></td>" + "".join(
            f"<td>{_fmt(rec['params'].get(k, '-'))}</td>" for k in point_varied)
            + f"<td>{rec['seed']}</td><td>{_fmt(float(rec.get('elapsed_s', math.nan)))}</td>"
            f"<td>{html.escape(str(rec.get('host', '')))}</td>"
            f"<td>{html.escape(str(rec.get('finished_at', '')))}</td></tr>")
    parts.append("</table>")
    if manifest.get("versions"):
        parts.append("<p><small>driver versions: " + html.escape(
            json.dumps(manifest["versions"])) + "</small></p>")
    path = os.path.join(out_dir, "report.html")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))
    return path
