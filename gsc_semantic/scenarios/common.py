"""Pieces every ``gsc scenario`` shares: the ``--link`` spec, per-SNR tables (JSON +
markdown), image grids and GIFs, metric-vs-SNR plots and the HTML report (the style of
``gsc demo``).

Example::

    >>> spec = parse_link("sim")
    >>> spec.kind, spec.path
    ('sim', None)
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
import torch
from PIL import Image

from bridge.common import ConfigError
from gsc_semantic.eval_plots import tile

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["LINK_KINDS", "LinkSpec", "parse_link", "link_transport", "link_context",
           "aggregate_trials", "write_table", "markdown_table", "save_grid", "save_gif",
           "plot_vs_snr", "save_figure", "write_html_report", "ReportSection"]

#: ``--link`` kinds: simulated gsc_phy, GNU Radio loopback, SigMF recordings of the loopback.
LINK_KINDS = ("sim", "loopback", "sigmf")


@dataclass(frozen=True)
class LinkSpec:
    """Where a scenario's bits travel: ``kind`` in :data:`LINK_KINDS`, ``path`` (a folder of
    recordings) for ``sigmf``; ``config`` (the scenario's options, compared with a recording
    folder's manifest) and ``rerecord`` (record that folder anew) only matter for ``sigmf``."""

    kind: str
    path: str | None = None
    config: dict | None = field(default=None, compare=False)
    rerecord: bool = False

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_link(text: str) -> LinkSpec:
    """``"sim"`` | ``"loopback"`` | ``"sigmf:DIR"`` -> :class:`LinkSpec`; anything else
    raises :class:`~bridge.common.ConfigError` (one line).

    Example::

        >>> parse_link("sigmf:runs/rec").path
        'runs/rec'
    """
    text = (text or "").strip()
    if text in ("sim", "loopback"):
        return LinkSpec(text)
    if text.startswith("sigmf:"):
        path = text[len("sigmf:"):]
        if not path:
            raise ConfigError("--link sigmf:DIR needs a folder for the recordings after "
                              "'sigmf:'")
        return LinkSpec("sigmf", path)
    raise ConfigError(f"--link must be sim, loopback or sigmf:DIR, got {text!r}")


def link_transport(link: LinkSpec, channel: str, seed: int, out_dir: str, scenario: str,
                   echo=None):
    """The transport object a scenario's links share:
    :data:`~gsc_semantic.transports.SIMULATED` for ``--link sim``; for ``--link loopback`` one
    :class:`~gsc_semantic.stream_transport.StreamTransport` (runs logged under
    ``OUT/loopback/txNNNN``); for ``--link sigmf:DIR`` one
    :class:`~gsc_semantic.sigmf_transport.SigMFTransport` (recordings and manifest in DIR,
    replay logs under ``OUT/sigmf/NAME``). Their ``take()`` gives the counters per method. A
    channel the loopback cannot emulate, or a DIR recorded with another configuration, raises
    :class:`~bridge.common.ConfigError`.

    Example::

        >>> link_transport(parse_link("sim"), "awgn", 0, "runs/x", "road").streamed
        False
    """
    if link.kind == "sim":
        from gsc_semantic.transports import SIMULATED

        return SIMULATED
    if link.kind == "sigmf":
        from gsc_semantic.sigmf_transport import SigMFTransport

        return SigMFTransport(link.path, channel, scenario=scenario, config=link.config,
                              rerecord=link.rerecord, seed=seed,
                              out_dir=os.path.join(out_dir, "sigmf"), echo=echo)
    from gsc_semantic.stream_transport import StreamTransport

    return StreamTransport(channel, seed=seed, out_dir=os.path.join(out_dir, "loopback"),
                           echo=echo)


def link_context(transport, name: str) -> None:
    """Name what ``transport`` sends next (e.g. the method) in its progress lines and, for
    ``--link sigmf``, in the recording names; the simulated link ignores it.

    Example::

        >>> from gsc_semantic.transports import SIMULATED
        >>> link_context(SIMULATED, "jpeg")
    """
    transport.context = name


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """Rows (dicts) -> a GitHub markdown table of ``columns`` (floats with 3 decimals).

    Example::

        >>> print(markdown_table([{"a": 1, "b": 0.5}], ["a", "b"]))
        | a | b |
        |---|---|
        | 1 | 0.500 |
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def aggregate_trials(trials: Sequence[dict]) -> dict:
    """Per key of the trial dicts: the mean over trials and ``<key>_ci95``, the 95 %
    Student-t half-width (``None`` for one trial); plus ``trials``.

    Example::

        >>> aggregate_trials([{"miou": 0.5}, {"miou": 0.7}])["miou"]
        0.6
    """
    from gsc_semantic.eval_targets import mean_ci95

    out: dict = {"trials": len(trials)}
    for key in trials[0]:
        out[key], out[f"{key}_ci95"] = mean_ci95([t[key] for t in trials])
    return out


def write_table(doc: dict, columns: Sequence[str], out_dir: str, name: str) -> tuple[str, str]:
    """Write ``doc`` (with a ``"rows"`` list) to ``OUT/NAME.json`` and its rows as a markdown
    table to ``OUT/NAME.md``; returns both paths."""
    os.makedirs(out_dir, exist_ok=True)
    jpath = os.path.join(out_dir, f"{name}.json")
    mpath = os.path.join(out_dir, f"{name}.md")
    with open(jpath, "w") as fh:
        json.dump(doc, fh, indent=2, default=float)
        fh.write("\n")
    with open(mpath, "w") as fh:
        fh.write(markdown_table(doc["rows"], columns) + "\n")
    return jpath, mpath


def save_grid(rows: Sequence[torch.Tensor], path: str, scale: int = 2) -> str:
    """Rows of [N, C, H, W] images in [0, 1] (original first, then one per method) -> PNG."""
    tile(list(rows), scale).save(path)
    return path


def save_gif(frames: Sequence[Image.Image], path: str, ms_per_frame: int = 700) -> str:
    """Frames (PIL images of one size, e.g. one side-by-side grid per SNR) -> looping GIF."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    first, *rest = [f.convert("RGB") for f in frames]
    first.save(path, save_all=True, append_images=rest, duration=ms_per_frame, loop=0)
    return path


def plot_vs_snr(rows: Sequence[dict], metrics: dict[str, str], methods: Sequence[str],
                path: str, title: str = "") -> str:
    """One panel per metric (key -> axis label), one line per method, against ``snr_db``."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6), squeeze=False)
    for ax, (metric, label) in zip(axes[0], metrics.items(), strict=True):
        for m in methods:
            pts = sorted((r["snr_db"], r[metric]) for r in rows
                         if r["method"] == m and r.get(metric) is not None)
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-" if m.startswith("gsc") else ".--",
                        label=m)
        ax.set_xlabel("Es/N0 [dB]")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return save_figure(fig, path, title)


def save_figure(fig, path: str, title: str | None = None) -> str:
    """Give ``fig`` its suptitle, lay it out, write it to ``path`` (110 dpi) and close it."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass
class ReportSection:
    """One ``<h2>`` block: text, images (paths relative to the report) and a table."""

    heading: str
    text: str = ""
    images: Sequence[str] = ()
    rows: Sequence[dict] = ()
    columns: Sequence[str] = ()


def _html_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
    body = []
    for r in rows:
        bold = " style='font-weight:bold'" if str(r.get("method", "")).startswith("gsc") else ""
        body.append(f"<tr{bold}>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>"
                                             for c in columns) + "</tr>")
    return "<table>" + head + "".join(body) + "</table>"


def write_html_report(out_dir: str, title: str, intro: str,
                      sections: Sequence[ReportSection]) -> str:
    """``OUT/report.html`` in the style of ``gsc demo`` (same CSS); returns its path."""
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "td,th{padding:2px 7px;text-align:right}table{border-collapse:collapse}"
             "tr:nth-child(even){background:#f4f4f4}</style>",
             f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.heading)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        parts += [f"<img src='{html.escape(p)}' style='max-width:1080px'>" for p in s.images]
        if s.rows:
            parts.append(_html_table(s.rows, s.columns))
    path = os.path.join(out_dir, "report.html")
    with open(path, "w") as fh:
        fh.write("\n".join(parts) + "\n")
    return path
