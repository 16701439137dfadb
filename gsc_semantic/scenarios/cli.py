"""``gsc scenario road|meeting``: the application scenarios of issue #6 from the command line.

Both subcommands take ``--link sim|loopback|sigmf:DIR`` (``--rerecord``), ``--channel``, ``--snr``
(``START:STOP:STEP`` dB or a list, Es/N0), ``--rho`` and ``--out`` and write per-SNR
tables (JSON + markdown), grids/GIFs, plots and ``OUT/report.html``. Bad input stops with
one ``gsc: error: ...`` line and exit code 2.

Example::

    gsc scenario road --link sim --channel awgn --snr=-5:20:5 --out runs/road
"""

from __future__ import annotations

import dataclasses
import importlib

import click

from bridge.common import ConfigError
from gsc_phy.config import parse_rate, parse_snr_range

from .common import LinkSpec, parse_link

__all__ = ["scenario"]


def _common_options(fn):
    options = [
        click.option("--link", "link_text", default="sim", show_default=True,
                     help="sim (gsc_phy simulation) | loopback (GNU Radio streaming link, "
                          "awgn/tdl-a..e; slow: one loopback run, ~15-25 s, per method, "
                          "layer and SNR) | sigmf:DIR (the loopback's received IQ stored as "
                          "SigMF recordings + manifest.json in DIR and decoded from them; a "
                          "later run with the same options replays DIR)"),
        click.option("--rerecord", is_flag=True,
                     help="with --link sigmf:DIR: delete DIR's recordings and record anew"),
        click.option("--channel", default="awgn", show_default=True,
                     help="gsc_phy channel with calibrated MCS thresholds (awgn, tdl-a, "
                          "rayleigh)"),
        click.option("--snr", "snr_text", default="-5:20:5", show_default=True,
                     help="Es/N0 in dB: START:STOP:STEP or a comma list"),
        click.option("--rho", "rho_text", default=None,
                     help="bandwidth ratio (channel uses / (3·H·W)), e.g. 1/6"),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False)),
        click.option("--seed", type=int, default=0, show_default=True),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _parse(link_text: str, snr_text: str, rho_text: str | None, default_rho: float,
           rerecord: bool = False) -> tuple[LinkSpec, list[float], float]:
    link = parse_link(link_text)
    snrs = parse_snr_range(snr_text)
    rho = parse_rate(rho_text) if rho_text else default_rho
    if not 0 < rho <= 4:
        raise ConfigError(f"--rho must be in (0, 4], got {rho_text!r}")
    if rerecord and link.kind != "sigmf":
        raise ConfigError("--rerecord applies to --link sigmf:DIR only")
    return dataclasses.replace(link, rerecord=rerecord), snrs, rho


def _with_config(link: LinkSpec, **options) -> LinkSpec:
    """``link`` carrying the scenario options a recording folder must have been made with."""
    return dataclasses.replace(link, config=options)


def _load(module: str, attr: str, what: str):
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == module:
            raise click.ClickException(f"the {what} scenario is not available in this "
                                       f"installation ({module} is missing)") from None
        raise
    return getattr(mod, attr)


@click.group()
def scenario() -> None:
    """Application scenarios: road monitoring (vs JPEG/WebP) and video meetings (vs H.264,
    JPEG)."""


@scenario.command()
@_common_options
@click.option("--scenes", type=int, default=16, show_default=True,
              help="procedural test scenes (ignored with --images)")
@click.option("--images", "images_dir", default=None, type=click.Path(),
              help="folder of your own road images (64x64 centre crops) instead")
@click.option("--train", "retrain", is_flag=True,
              help="first train the road models (segmenter, codec) into --checkpoints")
@click.option("--checkpoints", default=None, type=click.Path(file_okay=False),
              help="folder holding road/ and road_segmenter/ (default: the shipped ones; "
                   "with --train: OUT/checkpoints)")
@click.option("--trials", type=int, default=1, show_default=True,
              help="independent channel trials per method and SNR (means with 95 % CIs)")
def road(link_text, rerecord, channel, snr_text, rho_text, out_dir, seed, scenes, images_dir,
         retrain, checkpoints, trials):
    """Road monitoring: class map (strong protection) + latent layers, regenerated scene."""
    from .road import DEFAULT_RHO

    link, snrs, rho = _parse(link_text, snr_text, rho_text, DEFAULT_RHO, rerecord)
    if scenes < 1:
        raise ConfigError(f"--scenes must be at least 1, got {scenes}")
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    link = _with_config(link, snr_db=snrs, rho=rho, scenes=scenes, images=images_dir,
                        train=retrain, checkpoints=checkpoints,
                        **({"trials": trials} if trials > 1 else {}))
    run_road = _load("gsc_semantic.scenarios.road", "run_road", "road")
    run_road(link=link, channel=channel, snrs=snrs, out_dir=out_dir, seed=seed,
             scenes=scenes, rho=rho, images_dir=images_dir, retrain=retrain,
             checkpoints=checkpoints, echo=click.echo, trials=trials)


@scenario.command()
@_common_options
@click.option("--frames", type=int, default=16, show_default=True, help="video frames")
@click.option("--clip", default="procedural", show_default=True,
              help="procedural | astronaut | grace_hopper | a video file | a folder of frames")
@click.option("--trials", type=int, default=1, show_default=True,
              help="independent channel trials per method and SNR (means with 95 % CIs)")
def meeting(link_text, rerecord, channel, snr_text, rho_text, out_dir, seed, frames, clip,
            trials):
    """Video meeting: talking-head frames through the link vs H.264 and per-frame JPEG."""
    link, snrs, rho = _parse(link_text, snr_text, rho_text, 1 / 12, rerecord)
    if frames < 1:
        raise ConfigError(f"--frames must be at least 1, got {frames}")
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    link = _with_config(link, snr_db=snrs, rho=rho, frames=frames, clip=clip,
                        **({"trials": trials} if trials > 1 else {}))
    run_meeting = _load("gsc_semantic.scenarios.meeting", "run_meeting", "meeting")
    run_meeting(link=link, channel=channel, snrs=snrs, out_dir=out_dir, seed=seed,
                frames=frames, rho=rho, echo=click.echo, clip=clip, trials=trials)
