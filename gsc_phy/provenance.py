"""Versions, seeds and config recorded in every JSON result."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

__all__ = ["versions"]

_PACKAGES = ("gsc", "torch", "sionna-no-rt", "numpy", "diffusers", "pyzmq")


def versions() -> dict[str, str]:
    """Python, platform and the versions of the packages results depend on."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out
