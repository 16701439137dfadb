"""Parameter sweeps: a grid of ``gsc link`` (and later ``gsc eval``/``gsc loopback``) runs.

A sweep file names a *runner* and a grid of its parameters plus seeds; every grid point
becomes one task (a Ray task by default, so a sweep can use every core of a machine or a
whole cluster), and every finished point is appended at once to an append-only results
store (``results.jsonl``, one fsynced line per point, plus ``manifest.json``). Re-running
the same sweep skips the points already stored; a point whose worker dies is retried by
Ray; the driver is the store's only writer and writes each point once.

.. code-block:: python

    from gsc_phy.sweep import load_sweep, run_sweep
    spec = load_sweep("examples/sweeps/awgn_rates.yaml")
    summary = run_sweep(spec, "runs/sweep", backend="inline")   # or backend="ray"
    print(summary.done, summary.failed)

Nothing here imports Ray, torch or Sionna at module level: they are loaded when a sweep
actually runs (``engine``) or a point is simulated (``runners``).
"""

from __future__ import annotations

from .runners import (
    RUNNERS,
    ReportSpec,
    Runner,
    get_runner,
    register_runner,
    register_runner_factory,
)
from .spec import Point, SweepSpec, load_sweep, parse_sweep, point_id
from .store import ResultStore, read_results

__all__ = [
    "RUNNERS",
    "ReportSpec",
    "Runner",
    "get_runner",
    "register_runner",
    "register_runner_factory",
    "Point",
    "SweepSpec",
    "load_sweep",
    "parse_sweep",
    "point_id",
    "ResultStore",
    "read_results",
    "run_sweep",
    "SweepSummary",
]


def __getattr__(name: str):  # lazy: the engine pulls in tqdm and, when used, Ray
    if name in ("run_sweep", "SweepSummary"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(name)
