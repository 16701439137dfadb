"""Build gsc's wheel from a clean copy of the checkout and install it into a fresh venv.

Used by the wheel and browser tests: the wheel must carry everything the shipped commands
need (code, block YAML, checkpoints) so ``gsc`` works outside a git checkout.

Example::

    >>> wheel = build_wheel(ROOT, tmp / "dist", tmp / "src")      # doctest: +SKIP
    >>> venv = fresh_venv(tmp / "venv", wheel)                      # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv as venv_module
from pathlib import Path

__all__ = ["build_wheel", "fresh_venv", "SOURCE_IGNORE"]

#: what a clean checkout does not hold (build outputs, venvs, caches, run outputs)
SOURCE_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "gsc-demo",
                                       "*.egg-info", "__pycache__", ".pytest_cache",
                                       ".ruff_cache", ".whl", "recordings")


def build_wheel(root: str | Path, dist: Path, scratch: Path) -> Path:
    """The wheel of a copy of ``root`` (so stale ``build/`` files never leak in)."""
    shutil.copytree(root, scratch, ignore=SOURCE_IGNORE, symlinks=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", "-w", str(dist),
                    str(scratch)], check=True, capture_output=True, text=True)
    (wheel,) = dist.glob("gsc-*.whl")
    return wheel


def fresh_venv(path: Path, wheel: Path) -> Path:
    """A new venv holding only the wheel; this interpreter's site-packages give the deps."""
    venv_module.EnvBuilder(with_pip=False).create(path)
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_dir = path / "lib" / ver / "site-packages"
    (site_dir / "gsc_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, text=True)
    return path
