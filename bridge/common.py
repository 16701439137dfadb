"""Errors and paths shared by every package: the bottom of the import graph.

Imports only the standard library, so both interpreters (the radio side's numpy 1.24 and the
ML side's numpy 2.x) import it, and it costs nothing to import.

>>> from bridge.common import ConfigError, REPO_ROOT
>>> issubclass(ConfigError, ValueError)
True
>>> import os; os.path.isdir(os.path.join(REPO_ROOT, "flowgraphs"))
True
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["ConfigError", "REPO_ROOT", "repo_path", "checkpoints_root"]

#: The folder that holds ``bridge/``, ``flowgraphs/``, ``hardware/``, ``gsc_phy/`` ... (the
#: checkout, or site-packages when gsc is installed as a wheel).
REPO_ROOT: str = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(ValueError):
    """Bad user input (a flag, a file, a combination). The message is one line."""


def repo_path(*parts: str) -> str:
    """``os.path.join(REPO_ROOT, *parts)``: a file shipped with gsc.

    >>> repo_path("flowgraphs", "gsc_loopback_gen.py").endswith("gsc_loopback_gen.py")
    True
    """
    return os.path.join(REPO_ROOT, *parts)


def checkpoints_root() -> Path:
    """Folder of the shipped checkpoints.

    In this order: ``$GSC_CHECKPOINTS``; ``<repo>/checkpoints`` when gsc runs from a
    checkout; the installed data package ``gsc_checkpoints`` (a wheel or ``pip install .``).

    >>> checkpoints_root().name in ("checkpoints", "gsc_checkpoints")
    True
    """
    env = os.environ.get("GSC_CHECKPOINTS")
    if env:
        return Path(env).expanduser()
    checkout = Path(REPO_ROOT) / "checkpoints"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("gsc_checkpoints")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return checkout
