"""Sweep files: parse, validate and expand a grid into points with stable identities.

A sweep file (YAML)::

    name: awgn-rates            # optional (default: the file name)
    runner: link                # which gsc command each point runs (default: link)
    seeds: [0, 1]               # a list, or N for 0..N-1 (default: [0])
    fixed:                      # parameters shared by every point
      channel: awgn
      snr: "-2:4:1"             # one point simulates this whole SNR range
      max_frames: 512
    grid:                       # cartesian product; a list of mappings = union of products
      mod: [qpsk, 16qam]
      rate: ["1/3", "1/2", "2/3"]
      speed: {start: 0, stop: 30, step: 10}     # inclusive numeric range
    resources: {num_cpus: 1, num_gpus: 0}       # Ray request of one point
    max_retries: 3              # Ray retries of a point whose worker dies

Parameter names are the runner command's long options (``--max-frames`` may be written
``max_frames`` or ``max-frames``). Everything is checked here, before anything runs: an
unknown parameter, an empty range, a wrongly typed value or a point the runner rejects
raises :class:`~bridge.common.ConfigError` with one line.

A point's identity is the hash of its canonical JSON (runner, explicitly set parameters
after type conversion, seed): the same point gets the same id in every sweep file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from bridge.common import ConfigError

from .runners import Runner, get_runner

__all__ = ["Point", "SweepSpec", "load_sweep", "parse_sweep", "point_id", "canonical_json",
           "MAX_POINTS"]

TOP_LEVEL_KEYS = ("name", "runner", "seeds", "fixed", "grid", "resources", "max_retries")
RESOURCE_KEYS = ("num_cpus", "num_gpus")
#: refuse sweeps larger than this (a typo in a range should not schedule a million tasks)
MAX_POINTS = 100_000


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, ASCII."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def point_id(runner: str, params: Mapping[str, Any], seed: int) -> str:
    """Identity of a point: 16 hex digits of SHA-256 over its canonical JSON."""
    doc = {"runner": runner, "params": dict(params), "seed": int(seed)}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Point:
    """One task of a sweep.

    :param id: :func:`point_id` of (runner, params, seed)
    :param runner: runner name
    :param params: the parameters set for this point (canonical names, converted values)
    :param seed: random seed of the point
    :param config: full configuration the runner resolved (defaults included)
    """

    id: str
    runner: str
    params: dict
    seed: int
    config: dict = field(default_factory=dict, compare=False)

    def describe(self) -> dict:
        """The manifest entry of this point."""
        return {"id": self.id, "params": self.params, "seed": self.seed}


@dataclass
class SweepSpec:
    """A validated, expanded sweep.

    :param name: sweep name
    :param runner: the :class:`~gsc_phy.sweep.runners.Runner` every point uses
    :param points: expanded points, in order, duplicates removed
    :param resources: Ray resources of one point
    :param max_retries: Ray retries of a point whose worker process dies
    :param source: the parsed sweep file (recorded in the manifest)
    :param path: the sweep file, when loaded from one
    """

    name: str
    runner: Runner
    points: list[Point]
    resources: dict
    max_retries: int
    source: dict
    path: str | None = None

    @property
    def sweep_hash(self) -> str:
        """Hash of the ordered point ids: equal for sweep files that expand alike."""
        return hashlib.sha256(" ".join(p.id for p in self.points).encode()).hexdigest()[:16]

    @property
    def varied(self) -> list[str]:
        """Parameters whose value differs between points (seeds excluded)."""
        keys: dict[str, set[str]] = {}
        for p in self.points:
            for k, v in p.params.items():
                keys.setdefault(k, set()).add(canonical_json(v))
        return [k for k, vals in keys.items()
                if len(vals) > 1 or any(k not in p.params for p in self.points)]


def load_sweep(path: str) -> SweepSpec:
    """Read and validate a sweep file; errors name the file and are one line."""
    if not os.path.isfile(path):
        raise ConfigError(f"sweep file {path!r} does not exist")
    name = os.path.basename(path)
    try:
        with open(path) as fh:
            doc = yaml.safe_load(fh)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or "not valid YAML"
        raise ConfigError(f"{name}: {problem}{where}") from None
    default_name = os.path.splitext(name)[0]
    spec = parse_sweep(doc, where=name, default_name=default_name)
    spec.path = os.path.abspath(path)
    return spec


def parse_sweep(doc: Any, where: str = "sweep", default_name: str = "sweep") -> SweepSpec:
    """Validate a parsed sweep document and expand it into points."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: a sweep file is a mapping with runner, fixed, grid, "
                          "seeds keys")
    unknown = [k for k in doc if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (a sweep file has "
                          f"{', '.join(TOP_LEVEL_KEYS)})")
    runner = get_runner(doc.get("runner", "link"))
    seeds = _seeds(doc.get("seeds", [0]), where)
    fixed_doc = doc.get("fixed") or {}
    if not isinstance(fixed_doc, dict):
        raise ConfigError(f"{where}: fixed must be a mapping of parameter: value")
    fixed = {}
    for key, value in fixed_doc.items():
        param = _param(runner, key, f"{where}: fixed")
        fixed[param.name] = param.convert(value, f"{where}: fixed")
    grid_doc = doc.get("grid")
    blocks = grid_doc if isinstance(grid_doc, list) else [grid_doc or {}]
    if not blocks:
        raise ConfigError(f"{where}: grid is an empty list")
    axes_per_block = []
    total = 0
    for i, block in enumerate(blocks):
        w = f"{where}: grid" + (f"[{i}]" if isinstance(grid_doc, list) else "")
        if not isinstance(block, dict):
            raise ConfigError(f"{w} must be a mapping of parameter: [values]")
        axes = []
        for key, values in block.items():
            param = _param(runner, key, w)
            if param.name in fixed:
                raise ConfigError(f"{w}: {param.name} is set in both fixed and grid")
            vals = [param.convert(v, f"{w}.{param.name}") for v in _axis(values, f"{w}."
                                                                          f"{param.name}")]
            axes.append((param.name, vals))
        axes_per_block.append(axes)
        total += math.prod(len(v) for _, v in axes) * len(seeds)
    if total > MAX_POINTS:
        raise ConfigError(f"{where}: the grid has {total} points; {MAX_POINTS} at most")
    resources = _resources(doc.get("resources"), runner, where)
    max_retries = doc.get("max_retries", 3)
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise ConfigError(f"{where}: max_retries must be an integer >= 0, got {max_retries!r}")
    name = doc.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: name must be a non-empty string")

    points: list[Point] = []
    seen: set[str] = set()
    for seed in seeds:
        for axes in axes_per_block:
            keys = [k for k, _ in axes]
            for combo in itertools.product(*(v for _, v in axes)):
                params = dict(sorted((fixed | dict(zip(keys, combo, strict=True))).items()))
                pid = point_id(runner.name, params, seed)
                if pid in seen:
                    continue
                seen.add(pid)
                options = runner.options(params)
                try:
                    config = runner.resolve(options, seed) if runner.resolve else options
                except ConfigError as e:
                    raise ConfigError(f"{where}: point {_short(params)} seed {seed}: {e}") \
                        from None
                points.append(Point(pid, runner.name, params, seed, config))
    return SweepSpec(name=name.strip(), runner=runner, points=points, resources=resources,
                     max_retries=max_retries, source=doc)


def _param(runner: Runner, key: Any, where: str):
    if _is_seed_key(key):
        raise ConfigError(f"{where}: set seeds with the top-level 'seeds:' list, not {key!r}")
    param = runner.lookup(str(key))
    if param is None:
        names = ", ".join(sorted(runner.params))
        raise ConfigError(f"{where}: unknown parameter {key!r} for runner {runner.name} "
                          f"(known: {names})")
    return param


def _is_seed_key(key: Any) -> bool:
    return str(key).strip().lstrip("-").lower() in ("seed", "seeds")


def _axis(values: Any, where: str) -> list:
    """The values of one grid axis: a list, a scalar, or {start, stop, step} (inclusive)."""
    if isinstance(values, dict):
        if set(values) - {"start", "stop", "step"} or not {"start", "stop"} <= set(values):
            raise ConfigError(f"{where}: a range is {{start, stop, step}}, got {values!r}")
        try:
            start, stop = float(values["start"]), float(values["stop"])
            step = float(values.get("step", 1))
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: range bounds must be numbers, got {values!r}") from None
        if step == 0 or not all(math.isfinite(v) for v in (start, stop, step)):
            raise ConfigError(f"{where}: range step must be a finite non-zero number")
        n = math.floor((stop - start) / step + 1e-9) + 1
        if n > MAX_POINTS:
            raise ConfigError(f"{where}: range has {n} values; {MAX_POINTS} at most")
        out = [round(start + i * step, 9) for i in range(max(n, 0))]
        if not out:
            raise ConfigError(f"{where}: range {values!r} is empty (check the sign of step)")
        if all(isinstance(values.get(k, 1), int) for k in ("start", "stop", "step")):
            out = [int(v) for v in out]
        return out
    if isinstance(values, (list, tuple)):
        if not values:
            raise ConfigError(f"{where}: empty list of values")
        return list(values)
    if values is None:
        raise ConfigError(f"{where}: no values given")
    return [values]


def _seeds(value: Any, where: str) -> list[int]:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: seeds must be a list of integers or a count")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{where}: seeds: {value} gives an empty range of seeds")
        return list(range(value))
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError(f"{where}: seeds is an empty list")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
            raise ConfigError(f"{where}: seeds must be integers >= 0, got {list(value)!r}")
        return list(dict.fromkeys(value))
    raise ConfigError(f"{where}: seeds must be a list of integers or a count, got {value!r}")


def _resources(value: Any, runner: Runner, where: str) -> dict:
    out = {k: float(v) for k, v in runner.resources.items()}
    if value is None:
        return out
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: resources must be a mapping like {{num_cpus: 1}}")
    for key, amount in value.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(f"{where}: resources: unknown key {key!r} "
                              f"(use {', '.join(RESOURCE_KEYS)})")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise ConfigError(f"{where}: resources.{key} must be a number >= 0")
        out[key] = float(amount)
    if out.get("num_cpus", 0) <= 0 and out.get("num_gpus", 0) <= 0:
        raise ConfigError(f"{where}: a point must request some CPU or GPU (resources)")
    return out


def _short(params: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in params.items()) + "}"
