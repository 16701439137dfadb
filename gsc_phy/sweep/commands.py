"""Click commands ``gsc sweep`` and ``gsc report`` (registered by the root, ``gsc_cli.root``).

Bad input raises :class:`~bridge.common.ConfigError`, which the ``gsc`` entry point turns
into one ``gsc: error: ...`` line and exit code 2; points that fail while running exit 1.
"""

from __future__ import annotations

import os

import click

from bridge.common import ConfigError

__all__ = ["sweep", "report"]


@click.command()
@click.argument("sweep_file", metavar="SWEEP.yaml", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Results store directory [default: runs/sweeps/NAME]")
@click.option("--ray-address", default=None, envvar="RAY_ADDRESS",
              help="local (start one, the default), auto, HOST:PORT or ray://HOST:PORT "
                   "[env: RAY_ADDRESS]")
@click.option("--workers", type=int, default=None,
              help="CPUs of the local Ray instance [default: all of this machine's]")
@click.option("--cpus-per-point", type=float, default=None,
              help="Ray CPUs per point (overrides resources.num_cpus)")
@click.option("--gpus-per-point", type=float, default=None,
              help="Ray GPUs per point, fractions allowed (overrides resources.num_gpus)")
@click.option("--ship-code", is_flag=True,
              help="Send this checkout's gsc packages to the cluster's workers")
@click.option("--no-ray", is_flag=True, help="Run points one by one in this process")
@click.option("--dry-run", is_flag=True, help="List the points and which are stored; run none")
@click.option("--quiet", is_flag=True, help="No progress bar")
def sweep(sweep_file: str, out_dir: str | None, ray_address: str | None, workers: int | None,
          cpus_per_point: float | None, gpus_per_point: float | None, ship_code: bool,
          no_ray: bool, dry_run: bool, quiet: bool) -> None:
    """Run a sweep file's grid (gsc link, eval or loopback points) on Ray into OUT.

    Re-running the same command skips the points already stored; a point whose worker
    dies is retried. Draw the results with `gsc report OUT`.
    """
    from .spec import load_sweep

    spec = load_sweep(sweep_file)
    out_dir = out_dir or os.path.join("runs", "sweeps", spec.name)
    if ray_address is not None and not ray_address.strip():
        ray_address = None
    if dry_run:
        from .store import read_results

        stored = {r["id"] for r in read_results(out_dir)} if os.path.isdir(out_dir) else set()
        for p in spec.points:
            mark = "stored" if p.id in stored else "to run"
            args = " ".join(f"{k}={v}" for k, v in p.params.items())
            click.echo(f"{p.id}  seed={p.seed}  {args}  [{mark}]")
        click.echo(f"{len(spec.points)} points, {len(stored & {p.id for p in spec.points})} "
                   f"stored in {out_dir}")
        return
    if no_ray and ray_address not in (None, "local"):
        source = click.get_current_context().get_parameter_source("ray_address")
        if source == click.core.ParameterSource.COMMANDLINE:
            raise ConfigError("--no-ray and --ray-address exclude each other")
        ray_address = None  # RAY_ADDRESS from the environment does not apply to --no-ray
    from .engine import run_sweep

    summary = run_sweep(
        spec, out_dir, backend="inline" if no_ray else "ray",
        address=None if no_ray else ray_address, workers=workers,
        cpus_per_point=cpus_per_point, gpus_per_point=gpus_per_point, ship_code=ship_code,
        progress=not quiet, log=lambda m: click.echo(m, err=True),
    )
    click.echo(f"{spec.name}: {summary.done} points done, {summary.skipped} already stored, "
               f"{summary.failed} failed ({summary.wall_s:.1f} s); results in "
               f"{os.path.join(out_dir, 'results.jsonl')}; draw them with: gsc report {out_dir}")
    if summary.failed:
        first = summary.failures[0]
        click.echo(f"gsc: {summary.failed} points failed (first: {first['error']}); details in "
                   f"{os.path.join(out_dir, 'failures.jsonl')}; run the same command again to "
                   "retry them", err=True)
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("store_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Where report.html and the plots go [default: DIR]")
def report(store_dir: str, out_dir: str | None) -> None:
    """Curves and tables from a sweep's results store: DIR/report.html, PNGs, summary.csv."""
    from .report import write_report

    click.echo(f"wrote {write_report(store_dir, out_dir)}")
