"""Find the radio-side Python interpreter (the one GNU Radio was built for).

Standard library only, so both sides can import it. ``GSC_RADIO_PYTHON`` overrides the
probe; otherwise the candidates are tried in order and the first that imports
``gnuradio`` wins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

__all__ = ["RADIO_CANDIDATES", "find_radio_python", "probe_radio_python"]

RADIO_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3", "python3")

_PROBE = r"""
import json, importlib
out = {}
try:
    from gnuradio import gr
    out["gnuradio"] = gr.version()
except Exception as e:
    out["gnuradio"] = None; out["gnuradio_error"] = str(e).splitlines()[0][:200]
for mod in ("uhd", "iio", "zeromq", "digital", "soapy"):
    try:
        importlib.import_module("gnuradio." + mod); out["gr-" + mod] = True
    except Exception:
        out["gr-" + mod] = False
try:
    import numpy; out["numpy"] = numpy.__version__
except Exception:
    out["numpy"] = None
try:
    import zmq; out["pyzmq"] = zmq.__version__
except Exception:
    out["pyzmq"] = None
import sys; out["python"] = sys.version.split()[0]
print(json.dumps(out))
"""


def probe_radio_python(python: str, timeout_s: float = 30.0) -> dict | None:
    """Run the probe under ``python``; ``None`` if it cannot run at all."""
    exe = shutil.which(python) if not os.path.isabs(python) else python
    if not exe or not os.path.exists(exe):
        return None
    try:
        res = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True,
                             timeout=timeout_s, env={**os.environ, "PYTHONPATH": ""})
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    info["executable"] = exe
    return info


def find_radio_python() -> dict | None:
    """Probe result of the radio interpreter, or ``None`` when none imports gnuradio.

    With ``GSC_RADIO_PYTHON`` set, only that interpreter is probed (and returned even
    when GNU Radio does not import in it, so the caller can say why).
    """
    forced = os.environ.get("GSC_RADIO_PYTHON")
    if forced:
        return probe_radio_python(forced)
    for cand in RADIO_CANDIDATES:
        info = probe_radio_python(cand)
        if info and info.get("gnuradio"):
            return info
    return None


if __name__ == "__main__":  # used by the Makefile: print the interpreter path or nothing
    found = find_radio_python()
    if found and found.get("gnuradio"):
        print(found["executable"])
