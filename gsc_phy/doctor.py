"""``gsc doctor``: what this installation has, on both sides of the ZeroMQ boundary."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys

from bridge.common import checkpoints_root
from bridge.interpreters import find_radio_python

__all__ = ["checkpoint_facts", "diagnose", "format_report"]


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def checkpoint_facts() -> dict:
    """Where the shipped checkpoints were found (``checkpoints_root``: ``$GSC_CHECKPOINTS``,
    the checkout, or the installed ``gsc_checkpoints`` package) and whether every file its
    manifest lists is there with the listed size (sha256 is checked when a model loads)."""
    root = checkpoints_root()
    source = ("GSC_CHECKPOINTS" if os.environ.get("GSC_CHECKPOINTS")
              else "package" if root.name == "gsc_checkpoints" else "checkout")
    facts: dict = {"path": str(root), "source": source, "files": 0, "missing": []}
    try:
        listed = json.loads((root / "MANIFEST.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        facts["missing"] = ["MANIFEST.json"]
        return facts
    facts["files"] = len(listed)
    facts["missing"] = sorted(rel for rel, entry in listed.items()
                              if not (root / rel).is_file()
                              or (root / rel).stat().st_size != entry.get("bytes"))
    return facts


def diagnose() -> dict:
    """Collect the facts; never raises for a missing component (it is reported instead)."""
    ml: dict = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "venv": sys.prefix != sys.base_prefix,
        "prefix": sys.prefix,
    }
    for pkg in ("torch", "sionna-no-rt", "numpy", "diffusers", "pyzmq", "safetensors"):
        ml[pkg] = _version(pkg)
    try:
        import torch

        ml["torch_device"] = "cuda" if torch.cuda.is_available() else "cpu"
        if ml["torch_device"] == "cuda":
            ml["cuda_device_name"] = torch.cuda.get_device_name(0)
        ml["torch_threads"] = torch.get_num_threads()
    except ImportError:
        ml["torch_device"] = None
    radio = find_radio_python()
    ckpt = checkpoint_facts()
    problems = []
    if ckpt["missing"]:
        problems.append(f"checkpoints in {ckpt['path']} lack or mismatch: "
                        f"{', '.join(ckpt['missing'][:4])}; reinstall gsc or set GSC_CHECKPOINTS")
    if not ml["torch"]:
        problems.append("torch is not installed in this interpreter: run `make setup`")
    if not ml["sionna-no-rt"]:
        problems.append("Sionna is not installed: run `make setup`")
    if not radio or not radio.get("gnuradio"):
        problems.append(
            "no interpreter imports GNU Radio: as root run `apt-get install gnuradio "
            "python3-zmq` (or set GSC_RADIO_PYTHON to the Python GNU Radio was built for)"
        )
    else:
        for mod in ("gr-zeromq", "gr-uhd", "gr-iio"):
            if not radio.get(mod):
                problems.append(f"{mod} does not import under {radio['executable']}")
        if not radio.get("pyzmq"):
            problems.append("pyzmq missing on the radio side: apt-get install python3-zmq")
    return {"ml": ml, "radio": radio, "checkpoints": ckpt, "ok": not problems,
            "problems": problems}


def format_report(d: dict) -> str:
    ml, radio = d["ml"], d["radio"]
    lines = ["ML side"]
    lines.append(f"  python      {ml['python']}  ({ml['executable']}, venv={ml['venv']})")
    for key in ("torch", "sionna-no-rt", "numpy", "diffusers", "pyzmq", "safetensors"):
        lines.append(f"  {key:<13} {ml.get(key) or 'MISSING'}")
    dev = ml.get("torch_device")
    if dev == "cuda":
        dev += f" ({ml.get('cuda_device_name')})"
    lines.append(f"  device      {dev}")
    ck = d["checkpoints"]
    lines.append(f"  checkpoints {ck['path']} ({ck['source']}, {ck['files']} files"
                 f"{', ' + str(len(ck['missing'])) + ' missing' if ck['missing'] else ''})")
    lines.append("Radio side")
    if radio:
        lines.append(f"  python      {radio['python']}  ({radio['executable']})")
        lines.append(f"  gnuradio    {radio.get('gnuradio') or 'MISSING'}")
        for mod in ("gr-zeromq", "gr-uhd", "gr-iio", "gr-soapy"):
            lines.append(f"  {mod:<11} {'yes' if radio.get(mod) else 'no'}")
        lines.append(f"  numpy       {radio.get('numpy')}")
        lines.append(f"  pyzmq       {radio.get('pyzmq') or 'MISSING'}")
    else:
        lines.append("  not found (set GSC_RADIO_PYTHON or install GNU Radio)")
    lines.append("OK" if d["ok"] else "Problems:")
    lines.extend(f"  - {p}" for p in d["problems"])
    return "\n".join(lines)
