"""Every ``gsc ...`` command shown in the README and docs parses against the real CLI.

Fenced shell blocks (```sh / bash / console) are read, continuation lines joined, comments
and a trailing ``&`` dropped, and each command line is parsed by click through the command
tree (options, types, choices, arity), without running it. A renamed option or a removed
command in the docs fails here. The notebooks, the demo and the scenario tests run the
commands themselves.
"""

import re
import shlex
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "hardware" / "README.md",
        *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell|console)\n(.*?)^```", re.S | re.M)


def doc_commands() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for block in SHELL_BLOCK.findall(path.read_text()):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = line.strip().removeprefix("$ ")
                line = re.sub(r"^(\.venv/bin/|\./\.venv/bin/)", "", line)
                if not line.startswith("gsc "):
                    continue
                words = shlex.split(line, comments=True)
                if words and words[-1] == "&":
                    words.pop()
                found.append((f"{path.relative_to(ROOT)}: {line[:60]}", words[1:]))
    return found


def parse(group: click.Command, args: list[str]) -> None:
    """Parse ``args`` down the command tree the way ``gsc`` would, invoking nothing."""
    ctx = group.make_context("gsc", list(args))
    while isinstance(ctx.command, click.Group):
        rest = [*ctx._protected_args, *ctx.args] if hasattr(ctx, "_protected_args") \
            else [*ctx.protected_args, *ctx.args]
        if not rest:
            return
        name, cmd, rest = ctx.command.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx)


COMMANDS = doc_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("where,args", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses(where, args):
    from gsc_cli.root import cli

    try:
        parse(cli, args)
    except click.ClickException as err:
        pytest.fail(f"{where}: {err.format_message()}")


@pytest.mark.parametrize("args", [["send", "x.png", "--bogus"], ["nosuch"],
                                  ["link", "--batch", "x"], ["scenario", "road", "--snr"]])
def test_a_stale_command_fails_to_parse(args):
    from gsc_cli.root import cli

    with pytest.raises(click.ClickException):
        parse(cli, args)


def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def test_relative_links_in_readme_and_docs_resolve():
    md = [*DOCS, ROOT / "docs" / "results" / "README.md"]
    broken = []
    for path in md:
        text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"(https?:|mailto:)", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md":
                slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(), re.M)}
                if anchor not in slugs:
                    broken.append(f"{path.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken
