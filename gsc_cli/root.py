"""The ``gsc`` command line: one entry point for every part of gsc.

The root sits above every package (floor 6 of DESIGN.md's layout), so it imports their
commands directly; each command is fetched by a small function of its own, called when the
command runs (``gsc doctor`` does not pay for torch). ``gsc --help`` lists every command
from :data:`COMMANDS` without importing any (``tests/test_cli_root.py`` checks that each
registered help line is the command's own). Bad input of any kind ends with one
``gsc: error: ...`` line on stderr and exit code 2.

Adding a command: write a function that imports and returns it, and add one
:class:`Entry` line to :data:`COMMANDS`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

import click

from bridge.common import ConfigError
from gsc_phy.sweep.runners import Runner, register_runner_factory

__all__ = ["main", "run", "cli", "COMMANDS", "Entry"]


@dataclass(frozen=True)
class Entry:
    """One ``gsc`` subcommand: ``load()`` imports and returns it; ``help`` is its one-line
    summary for ``gsc --help`` (the first sentence of the command's docstring)."""

    load: Callable[[], click.Command]
    help: str


# ---------------------------------------------------------------- the commands, one each
def _demo() -> click.Command:
    from gsc_semantic.demo import demo

    return demo


def _radio() -> click.Command:
    from hardware.cli import radio

    return radio


def _link() -> click.Command:
    from gsc_phy.cli import link

    return link


def _loopback() -> click.Command:
    from gsc_stream.loopback import loopback

    return loopback


def _tx() -> click.Command:
    from gsc_stream.radio_link import tx

    return tx


def _rx() -> click.Command:
    from gsc_stream.radio_link import rx

    return rx


def _decoder() -> click.Command:
    from gsc_stream.decoder_service import decoder

    return decoder


def _sweep() -> click.Command:
    from gsc_phy.sweep.commands import sweep

    return sweep


def _report() -> click.Command:
    from gsc_phy.sweep.commands import report

    return report


def _eval() -> click.Command:
    from gsc_semantic.evaluate import eval_command

    return eval_command


def _train() -> click.Command:
    from gsc_semantic.train import train

    return train


def _train_classifier() -> click.Command:
    from gsc_semantic.classifier import train_classifier

    return train_classifier


def _train_student() -> click.Command:
    from gsc_semantic.prior_student import train_student_command

    return train_student_command


def _train_jscc() -> click.Command:
    from gsc_semantic.deepjscc_train import train_jscc_command

    return train_jscc_command


def _scenario() -> click.Command:
    from gsc_semantic.scenarios.cli import scenario

    return scenario


def _send() -> click.Command:
    from gsc_semantic.send import send_command

    return send_command


#: subcommand -> how to get it and its line in ``gsc --help`` (``doctor`` and ``keys`` are
#: defined below, in the root itself)
COMMANDS: dict[str, Entry] = {
    "decoder": Entry(_decoder, "Decoder service for the GNU Radio streaming link."),
    "demo": Entry(_demo, "Fashion-MNIST and photos through the link vs JPEG/WebP; writes "
                         "OUT/report.html."),
    "eval": Entry(_eval, "Compare gsc with JPEG/WebP + LDPC and the capacity bound; writes "
                         "OUT/eval.json."),
    "link": Entry(_link, "Simulate BER/BLER vs SNR of the gsc PHY; writes OUT/link.json and "
                         "OUT/link.png."),
    "loopback": Entry(_loopback, "Run the GNU Radio streaming loopback with the decoder "
                                 "service; writes OUT/loopback.json."),
    "radio": Entry(_radio, "Radios: list the attached USRPs/Plutos and the shipped profiles; "
                           "check a profile."),
    "report": Entry(_report, "Curves and tables from a sweep's results store: "
                             "DIR/report.html, PNGs, summary.csv."),
    "rx": Entry(_rx, "Receive and decode through a radio profile (device flowgraph + modem RX "
                     "+ decoder)."),
    "scenario": Entry(_scenario, "Application scenarios: road monitoring (vs JPEG/WebP) and "
                                 "video meetings (vs H.264, JPEG)."),
    "send": Entry(_send, "Send your own pictures (files or folders) through gsc and the "
                         "baselines; writes OUT/NAME.gsc.png, OUT/NAME.side_by_side.png and "
                         "OUT/send.json."),
    "sweep": Entry(_sweep, "Run a sweep file's grid (gsc link, eval or loopback points) on Ray "
                           "into OUT."),
    "train": Entry(_train, "Train the semantic codec (encoder projection, perceptual encoder, "
                           "diffusion decoder) with bit-error and layer-erasure augmentation; "
                           "writes config.json + model.safetensors."),
    "train-classifier": Entry(_train_classifier, "Train the Fashion-MNIST classifier used by "
                                                 "the semantic-consistency metric."),
    "train-student": Entry(_train_student, "Distil the photo receiver's student prior from "
                                           "Real-ESRGAN x4plus."),
    "train-jscc": Entry(_train_jscc, "Train DeepJSCC (MSE, SNR-adaptive) for gsc eval's "
                                     "deepjscc / deepjscc-q methods."),
    "tx": Entry(_tx, "Send frames through a radio profile (modem TX + device flowgraph); "
                     "writes OUT/tx.json."),
}


# ------------------------------------------------- sweep runners of the higher packages
def _eval_runner() -> Runner:
    from gsc_semantic.evaluate import sweep_runner

    return sweep_runner()


def _loopback_runner() -> Runner:
    from gsc_stream.loopback import sweep_runner

    return sweep_runner()


register_runner_factory("eval", _eval_runner)
register_runner_factory("loopback", _loopback_runner)


class CommandGroup(click.Group):
    """The root group: :data:`COMMANDS` are loaded when one runs; ``--help`` lists them from
    their registered help lines without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            return COMMANDS[name].load()
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in COMMANDS:
                summary = click.Command(name, help=COMMANDS[name].help)
            else:
                summary = super().get_command(ctx, name)
            if summary is None or summary.hidden:
                continue
            rows.append((name, summary))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in rows])


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gsc", prog_name="gsc")
def cli() -> None:
    """gsc: generative semantic communication links (simulated, streamed, over the air)."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """Check both interpreters: torch/Sionna/device here, GNU Radio on the radio side."""
    from gsc_phy.doctor import diagnose, format_report

    report = diagnose()
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


@cli.group()
def keys() -> None:
    """CurveZMQ keys for decoders and bridges that listen beyond 127.0.0.1."""


@keys.command("generate")
@click.argument("key_dir", type=click.Path(file_okay=False))
@click.option("--name", default="server", show_default=True, help="Certificate name")
def keys_generate(key_dir: str, name: str) -> None:
    """Write KEY_DIR/NAME.key (public, share it) and NAME.key_secret (0600, keep it)."""
    from bridge.security import generate_keypair

    try:
        pair = generate_keypair(key_dir, name)
    except (ValueError, RuntimeError) as e:
        raise ConfigError(str(e)) from None
    click.echo(f"public key: {pair.public_path}\nsecret key: {pair.secret_path} (keep private)")
    click.echo("authorise a client by copying its .key file into the server's authorised "
               "keys directory")


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (2 for bad input)."""
    try:
        cli.main(args=argv, prog_name="gsc", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"gsc: error: {e.format_message()}", err=True)
        return 2
    except ConfigError as e:
        click.echo(f"gsc: error: {e}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("gsc: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("gsc: interrupted", err=True)
        return 130
    return 0


def run() -> None:
    """setuptools console-script wrapper around :func:`main`."""
    sys.exit(main())
