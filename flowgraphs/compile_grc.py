"""Compile the streaming-link ``.grc`` files with ``grcc`` (radio side; stdlib only).

``python3 flowgraphs/compile_grc.py`` regenerates the committed ``*_gen.py`` next to each
``flowgraphs/*.grc``; ``--out DIR`` writes them elsewhere (the tests compare the two);
``--all`` compiles every ``.grc`` under ``flowgraphs/`` (device flowgraphs included) in one
``grcc`` run. This script points ``GRC_BLOCKS_PATH`` at the one tree of gsc's block YAML
(``flowgraphs/grc``, device blocks in ``grc/device``) and puts the repository root on
``PYTHONPATH``, so it compiles this checkout even where the blocks are not installed; after
``make setup`` (``flowgraphs/install_blocks.py``) plain ``grcc`` and GNU Radio Companion find
them with no environment variables.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BLOCKS = os.path.join(HERE, "grc")

__all__ = ["grc_env", "compile_grc", "grc_files", "block_dirs"]


def block_dirs() -> list[str]:
    """Folders of gsc's GRC block YAML: the one tree ``flowgraphs/grc`` (GRC reads it
    recursively)."""
    return [BLOCKS]


def grc_env() -> dict[str, str]:
    """Environment for grcc/gnuradio-companion: gsc's block paths and the repo on PYTHONPATH."""
    env = dict(os.environ)
    paths = block_dirs() + [p for p in env.get("GRC_BLOCKS_PATH", "").split(os.pathsep) if p]
    env["GRC_BLOCKS_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    py = [ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(py))
    return env


def grc_files(everything: bool = False) -> list[str]:
    """The streaming-link ``.grc`` files (``flowgraphs/*.grc``), or every ``.grc`` under
    ``flowgraphs/`` with ``everything``; sorted."""
    pattern = os.path.join(HERE, "**", "*.grc") if everything else os.path.join(HERE, "*.grc")
    return sorted(glob.glob(pattern, recursive=everything))


def _sort_connects(path: str) -> None:
    """Sort each run of ``self.connect(...)`` lines of a generated flowgraph.

    grcc orders connections by (source block, sink block) only; several connections between
    the same two blocks (MIMO ports) come out in a different order from run to run. Sorting
    them makes the generated file reproducible (the flowgraph is the same in any order).
    """
    with open(path, encoding="utf-8") as fh:
        lines = fh.readlines()
    out: list[str] = []
    run: list[str] = []
    for line in lines + [""]:
        if line.lstrip().startswith("self.connect("):
            run.append(line)
            continue
        out += sorted(run) + ([line] if line else [])
        run = []
    if out != lines:
        with open(path, "w", encoding="utf-8") as fh:
            fh.writelines(out)


def compile_grc(paths: list[str], out_dir: str, grcc: str = "grcc") -> subprocess.CompletedProcess:
    """Run ``grcc -o out_dir PATHS...`` once; returns the completed process (output captured).
    The generated files get their ``self.connect`` lines in a reproducible order."""
    exe = shutil.which(grcc)
    if exe is None:
        raise FileNotFoundError("grcc not found: install GNU Radio (apt-get install gnuradio)")
    res = subprocess.run([exe, "-o", out_dir, *paths], env=grc_env(), capture_output=True,
                         text=True, timeout=600)
    if res.returncode == 0:
        for path in paths:
            with open(path, encoding="utf-8") as fh:
                found = re.search(r"^\s+id: (\S+)$", fh.read(), re.M)
            gen = os.path.join(out_dir, f"{found.group(1)}.py") if found else ""
            if os.path.isfile(gen):
                _sort_connects(gen)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=HERE, help="output folder (default: next to the .grc)")
    ap.add_argument("--all", action="store_true", help="every .grc under flowgraphs/")
    args = ap.parse_args(argv)
    paths = grc_files(args.all)
    res = compile_grc(paths, args.out)
    print(res.stdout.strip())
    if res.returncode:
        print(res.stderr, file=sys.stderr)
        print(f"grcc FAILED ({res.returncode})", file=sys.stderr)
    return 1 if res.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
