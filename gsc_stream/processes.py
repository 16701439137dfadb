"""Child processes of the streaming link: start, watch, stop, and read what they left.

The loopbacks, the radio link and the decoder service run the flowgraph (radio interpreter)
and the decoder workers as child processes in their own process groups. This module is what
they share: :func:`radio_python_or_error` finds the radio interpreter, :func:`terminate`
stops a child's whole group (SIGTERM, then SIGKILL), :func:`check_child` raises
:class:`ChildFailed` with the tail of its log when a child has ended, and :func:`read_json`
reads the counters a child wrote (``{}`` when it wrote none).

>>> import subprocess, sys
>>> p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
...                      start_new_session=True)
>>> terminate(p, 5) is not None
True
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

from bridge.common import ConfigError
from bridge.interpreters import find_radio_python

__all__ = ["ChildFailed", "radio_python_or_error", "kill_group", "terminate", "exit_status",
           "check_child", "tail", "read_json"]


class ChildFailed(RuntimeError):
    """A child process (the flowgraph or the decoder service) ended while it was needed.

    :param process: ``flowgraph`` or ``decoder service``.
    :param detail: Exit status and the last lines of its log.
    """

    def __init__(self, process: str, detail: str) -> None:
        super().__init__(f"the {process} failed: {detail}")
        self.process = process


def radio_python_or_error() -> str:
    """Path of the radio interpreter; :class:`ConfigError` (one line) when there is none."""
    info = find_radio_python()
    forced = os.environ.get("GSC_RADIO_PYTHON")
    if not info or not info.get("gnuradio"):
        where = f"GSC_RADIO_PYTHON={forced}" if forced else "no Python on this host"
        raise ConfigError(
            f"GNU Radio not found ({where} imports gnuradio): install it with "
            "'apt-get install gnuradio python3-zmq' (Debian/Ubuntu), or set GSC_RADIO_PYTHON "
            "to the Python GNU Radio was built for"
        )
    if not info.get("pyzmq"):
        raise ConfigError(
            f"{info['executable']} has GNU Radio but no pyzmq: install it with "
            "'apt-get install python3-zmq'"
        )
    return info["executable"]


def kill_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid``; a group that is gone (or not ours) is ignored."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> int | None:
    """Stop ``proc`` (our child; with ``start_new_session=True`` it leads its own process group
    and the whole group is stopped): SIGTERM, then SIGKILL for what is left after
    ``timeout_s``."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            leader = os.getpgid(proc.pid) == proc.pid
        except ProcessLookupError:
            leader = False
        stop = (lambda sig: kill_group(proc.pid, sig)) if leader else proc.send_signal
        stop(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            stop(signal.SIGKILL)
            proc.wait(5)
    kill_group(proc.pid, signal.SIGKILL)  # whatever the leader left behind in its group
    return proc.returncode


def exit_status(code: int) -> str:
    """``exit code N`` or ``killed by signal N`` for a :attr:`Popen.returncode`."""
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def check_child(proc: subprocess.Popen | None, process: str, log: str) -> None:
    """Raise :class:`ChildFailed` if ``proc`` has ended."""
    if proc is not None and proc.poll() is not None:
        last = tail(log, 3).replace("\n", " | ")
        raise ChildFailed(process, f"pid {proc.pid}, {exit_status(proc.returncode)}"
                          + (f": {last}" if last else ""))


def tail(path: str, lines: int = 8) -> str:
    """The last ``lines`` lines of the log at ``path`` ("" when it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).strip()
    except OSError:
        return ""


def read_json(path: str) -> dict:
    """The JSON object a child wrote at ``path``; ``{}`` when it is missing or truncated."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}
