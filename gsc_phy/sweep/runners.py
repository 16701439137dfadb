"""What a sweep point runs: a small registry of *runners*.

A runner is a name, a parameter schema (taken from the options of the matching ``gsc``
click command, so a sweep file accepts exactly what the command line accepts), a
``resolve`` hook that validates one point and returns its full configuration (it runs in
the driver, before anything is scheduled), and a ``run`` function executed by a worker::

    run(options: dict, seed: int) -> list[dict]      # one dict per result row

``options`` holds every option of the command, keyed like the click command's keyword
arguments, with the command's defaults filled in. Runners are registered by name, either as
:class:`Runner` objects or lazily as functions returning one (called at the first use)::

    register_runner_factory("eval", eval_sweep_runner)

Only ``link`` lives here (the simulator's own command); the CLI root (``gsc_cli``), which sits
above every package, registers ``eval`` (gsc_semantic) and ``loopback`` (gsc_stream) the same
way, so this package never names a higher one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import click

from bridge.common import ConfigError

__all__ = [
    "Param",
    "ReportSpec",
    "Runner",
    "RUNNERS",
    "get_runner",
    "register_runner",
    "register_runner_factory",
    "link_runner",
    "link_config",
]

#: options of a click command that a sweep never sets (outputs, verbosity, the seed)
EXCLUDED_OPTIONS = ("out_dir", "quiet", "seed", "help")


def normalize_key(key: str) -> str:
    """Sweep-file spelling of a parameter: ``--max-frames``/``max-frames`` -> ``max_frames``."""
    return str(key).strip().lstrip("-").replace("-", "_").lower()


@dataclass(frozen=True)
class Param:
    """One sweepable parameter (mirrors one option of a ``gsc`` command).

    :param name: canonical name in sweep files: the long flag with underscores
        (``--mod`` -> ``mod``, ``--max-frames`` -> ``max_frames``)
    :param dest: keyword under which the runner receives the value (``modulation``)
    :param type: click parameter type used to check and convert values
    :param is_flag: boolean switch
    :param default: value used when a point does not set it
    :param help: the command's help text
    """

    name: str
    dest: str
    type: click.ParamType
    is_flag: bool = False
    default: Any = None
    help: str = ""

    def convert(self, value: Any, where: str) -> Any:
        """Check and convert a value from a sweep file; raises :class:`ConfigError`."""
        if self.is_flag:
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: {self.name} is a flag: use true or false, got "
                                  f"{value!r}")
            return value
        if value is None:
            return None
        if isinstance(value, (list, tuple)) and self.type is click.STRING:
            # comma lists on the command line: --snr 0,2,4 / --tx-pos 0,0,5
            if not value or any(isinstance(v, (list, tuple, dict)) for v in value):
                raise ConfigError(f"{where}: {self.name} must be a value or a flat list, got "
                                  f"{value!r}")
            return ",".join(_num_text(v) for v in value)
        if isinstance(value, (list, tuple, dict)):
            raise ConfigError(f"{where}: {self.name} takes one value, got {value!r}")
        if self.type is click.STRING:
            return _num_text(value)
        try:
            return self.type.convert(value, None, None)
        except click.BadParameter as e:
            raise ConfigError(f"{where}: {self.name}: {e.format_message()}") from None


def _num_text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else repr(v)
    return str(v)


@dataclass(frozen=True)
class ReportSpec:
    """How ``gsc report`` draws a runner's rows.

    :param x: row key (or parameter) on the horizontal axis
    :param y: row keys drawn as curves, one figure each
    :param logy: log-scale vertical axis
    :param pooled: ``y -> (numerator, denominator)``: across seeds, a pooled ratio
        (sum of errors / sum of trials) instead of a mean of ratios
    :param sums: row keys summed across seeds in tables (frames, errors, ...)
    :param x_label: axis label; ``{snr_kind}`` is replaced from the rows
    :param x_param: the parameter that sets ``x`` (``snr`` for ``snr_db``): points that
        differ only in it belong to the same curve
    """

    x: str
    y: tuple[str, ...]
    logy: bool = False
    pooled: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    sums: tuple[str, ...] = ()
    x_label: str | None = None
    x_param: str | None = None


@dataclass(frozen=True)
class Runner:
    """A sweepable command: schema, validation and the function a worker runs.

    :param name: runner name used in sweep files (``runner: link``)
    :param params: canonical name -> :class:`Param`
    :param run: ``run(options, seed) -> list[dict]`` executed once per point by a worker
    :param resolve: ``resolve(options, seed) -> dict`` validates a point in the driver and
        returns its full configuration (stored with the results); raises ConfigError
    :param resources: default Ray resources of one point (``num_cpus``, ``num_gpus``)
    :param report: how ``gsc report`` plots the rows
    """

    name: str
    params: Mapping[str, Param]
    run: Callable[[dict, int], list[dict]]
    resolve: Callable[[dict, int], dict] | None = None
    resources: Mapping[str, float] = field(
        default_factory=lambda: {"num_cpus": 1.0, "num_gpus": 0.0})
    report: ReportSpec | None = None

    @classmethod
    def from_click(cls, name: str, command: click.Command,
                   run: Callable[[dict, int], list[dict]], *,
                   resolve: Callable[[dict, int], dict] | None = None,
                   exclude: tuple[str, ...] = EXCLUDED_OPTIONS, **kwargs: Any) -> Runner:
        """Build a runner whose parameters are the options of a click command."""
        ctx = click.Context(command)
        params: dict[str, Param] = {}
        for opt in command.params:
            if not isinstance(opt, click.Option) or opt.name in exclude:
                continue
            longs = [o for o in opt.opts if o.startswith("--")] or opt.opts
            canon = normalize_key(longs[0])
            default = opt.get_default(ctx, call=True)
            if opt.is_flag:
                default = bool(default) if isinstance(default, bool) else False
            params[canon] = Param(canon, opt.name, opt.type, bool(opt.is_flag), default,
                                  opt.help or "")
        return cls(name=name, params=params, run=run, resolve=resolve, **kwargs)

    def lookup(self, key: str) -> Param | None:
        """The parameter a sweep-file key names (flag spelling or keyword), or None."""
        k = normalize_key(key)
        if k in self.params:
            return self.params[k]
        for p in self.params.values():
            if p.dest == k:
                return p
        return None

    def options(self, params: Mapping[str, Any]) -> dict:
        """Keyword options for :attr:`run`: defaults overlaid with a point's parameters."""
        out = {p.dest: p.default for p in self.params.values()}
        for key, value in params.items():
            out[self.params[key].dest] = value
        return out


# ----------------------------------------------------------------------- link runner
def link_config(options: Mapping[str, Any], seed: int):
    """The :class:`~gsc_phy.config.LinkConfig` of ``gsc link`` options (no torch needed)."""
    from ..cli import link_config as from_options

    return from_options(dict(options), seed)


def _resolve_link(options: dict, seed: int) -> dict:
    return link_config(options, seed).to_dict()


def _run_link(options: dict, seed: int) -> list[dict]:
    from ..simulate import simulate

    doc = simulate(link_config(options, seed), progress=False)
    return [p | {"snr_kind": doc["snr_kind"]} for p in doc["points"]]


def link_runner() -> Runner:
    """``gsc link`` as a sweep runner: a point is one link (one or several SNRs)."""
    from ..cli import link

    return Runner.from_click(
        "link", link, _run_link, resolve=_resolve_link,
        report=ReportSpec(
            x="snr_db", y=("ber", "bler"), logy=True,
            pooled={"ber": ("bit_errors", "bits"), "bler": ("block_errors", "blocks")},
            sums=("frames", "bits", "bit_errors", "blocks", "block_errors"),
            x_label="{snr_kind} [dB]", x_param="snr",
        ),
    )


# ----------------------------------------------------------------------- registry
#: runner name -> Runner, or a function returning one (called once, at the first use)
RUNNERS: dict[str, Runner | Callable[[], Runner]] = {"link": link_runner}


def register_runner(runner: Runner) -> None:
    """Make ``runner`` available to sweep files as ``runner: <name>``."""
    RUNNERS[runner.name] = runner


def register_runner_factory(name: str, factory: Callable[[], Runner]) -> None:
    """Make the runner ``factory()`` returns available as ``runner: <name>``; the factory runs
    at the first use (a runner's module may import torch)."""
    RUNNERS.setdefault(str(name), factory)


def get_runner(name: str) -> Runner:
    """The runner called ``name``; raises :class:`ConfigError` for an unknown one."""
    entry = RUNNERS.get(str(name))
    if entry is None:
        raise ConfigError(f"unknown runner {name!r}; choose from {', '.join(sorted(RUNNERS))}")
    if not isinstance(entry, Runner):
        entry = entry()
        RUNNERS[str(name)] = entry
    return entry
