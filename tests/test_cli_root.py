"""The ``gsc`` root (gsc_cli.root): every registered command loads, its ``--help`` line is the
command's own, and ``gsc --help`` imports none of the heavy packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from gsc_cli import root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPECTED = {"doctor", "link", "send", "eval", "demo", "train", "loopback", "decoder", "radio",
            "tx", "rx", "scenario", "sweep", "report", "keys"}  # DESIGN.md's list


def test_the_design_commands_are_there():
    ctx = click.Context(root.cli)
    assert EXPECTED <= set(root.cli.list_commands(ctx))


@pytest.mark.parametrize("name", sorted(root.COMMANDS))
def test_registered_help_is_the_commands_own(name):
    cmd = root.COMMANDS[name].load()
    assert isinstance(cmd, click.Command)
    assert cmd.name == name
    assert click.Command(name, help=root.COMMANDS[name].help).get_short_help_str(300) \
        == cmd.get_short_help_str(300)


def test_help_lists_every_command_without_importing_them():
    code = ("import sys, json; from gsc_cli import root; rc = root.main(['--help']); "
            "mods = [m for m in ('torch', 'sionna', 'gsc_semantic', 'gsc_stream', 'hardware.cli')"
            " if m in sys.modules]; print(json.dumps({'rc': rc, 'mods': mods}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    *help_lines, last = res.stdout.strip().splitlines()
    info = json.loads(last)
    assert info == {"rc": 0, "mods": []}
    listed = {ln.split()[0] for ln in help_lines if ln.startswith("  ") and ln.strip()
              and not ln.strip().startswith("-")}
    assert EXPECTED <= listed


def test_sweep_runners_of_higher_packages_are_registered():
    from gsc_phy.sweep.runners import get_runner

    assert get_runner("loopback").name == "loopback"
    assert get_runner("eval").name == "eval"
