"""The results store of a sweep: an append-only JSONL file plus a manifest.

Layout of a store directory::

    results.jsonl    one line per finished point, written once, fsynced before the next
    failures.jsonl   points that raised (or whose retries ran out), one line per attempt
    manifest.json    sweep name, runner, point list (id, params, seed), versions, runs
    .lock            held (flock) by the one driver writing the store

Every result line is ``{"id", "runner", "params", "seed", "config", "rows", "elapsed_s",
"host", "pid", "finished_at", ...}``. A line is only ever appended whole; a line cut short by
a crash is removed when the store is opened again, so a store never holds a partial or a
duplicated point: readers keep the first line of an id.
"""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from typing import Any

from bridge.common import ConfigError

__all__ = ["ResultStore", "read_results", "read_failures", "read_manifest", "RESULTS",
           "MANIFEST", "FAILURES"]

RESULTS = "results.jsonl"
MANIFEST = "manifest.json"
FAILURES = "failures.jsonl"
LOCK = ".lock"


def _to_json(obj: Any) -> Any:
    """JSON fallback for numpy/torch scalars and arrays, tuples of them, and the rest as text."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair_tail(path: str) -> int:
    """Cut a final line that lacks its newline (a write interrupted by a crash).

    Returns the number of bytes removed.
    """
    if not os.path.exists(path):
        return 0
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        keep = 0
        pos = size
        while pos > 0:  # scan back for the last complete line
            step = min(65536, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = pos + nl + 1
                break
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
        return size - keep


def _iter_lines(path: str):
    """Decoded JSON lines of ``path``; a torn or invalid line is skipped with a warning."""
    if not os.path.exists(path):
        return
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i != len(lines) - 1:  # a torn last line is expected after a crash
                warnings.warn(f"{path}: line {i + 1} is not JSON; skipped", stacklevel=3)
            continue
        if isinstance(rec, dict) and "id" in rec:
            yield rec


def read_results(directory: str) -> list[dict]:
    """The points stored in ``directory``, in the order they finished, one per id."""
    out, seen = [], set()
    for rec in _iter_lines(os.path.join(directory, RESULTS)):
        if rec["id"] in seen:
            continue
        seen.add(rec["id"])
        out.append(rec)
    return out


def read_failures(directory: str) -> list[dict]:
    """Every failed attempt logged in ``failures.jsonl`` (oldest first)."""
    return list(_iter_lines(os.path.join(directory, FAILURES)))


def read_manifest(directory: str) -> dict | None:
    """``manifest.json`` of a store, or None when there is none."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not readable JSON ({e})") from None


class ResultStore:
    """Single-writer, append-only store of sweep points in a directory.

    :param directory: the store directory (created when missing)

    Use as a context manager: opening takes an exclusive lock (a second driver on the same
    directory is refused with :class:`ConfigError`), repairs a torn last line and loads
    the ids already stored; :meth:`append` then writes a point only if its id is new.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.results_path = os.path.join(directory, RESULTS)
        self.failures_path = os.path.join(directory, FAILURES)
        self.manifest_path = os.path.join(directory, MANIFEST)
        self.ids: set[str] = set()
        self.repaired_bytes = 0
        self._lock_fh = None
        self._fh = None

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> ResultStore:
        """Lock the directory, repair a torn tail, load stored ids, open for appending."""
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise ConfigError(f"--out {self.directory!r} is a file, not a directory")
        os.makedirs(self.directory, exist_ok=True)
        self._lock_fh = open(os.path.join(self.directory, LOCK), "a+")
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            self._lock_fh = None
            raise ConfigError(f"another gsc sweep is writing to {self.directory}") from None
        self.repaired_bytes = _repair_tail(self.results_path)
        self.ids = {rec["id"] for rec in _iter_lines(self.results_path)}
        new = not os.path.exists(self.results_path)
        self._fh = open(self.results_path, "ab")
        if new:
            _fsync_dir(self.directory)
        return self

    def close(self) -> None:
        """Close the results file and release the lock."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def __contains__(self, point_id: str) -> bool:
        return point_id in self.ids

    def append(self, record: dict) -> bool:
        """Append one finished point (fsynced); False (nothing written) if already stored."""
        if self._fh is None:
            raise RuntimeError("ResultStore is not open")
        pid = record["id"]
        if pid in self.ids:
            return False
        line = json.dumps(record, separators=(",", ":"), default=_to_json) + "\n"
        self._fh.write(line.encode())
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.ids.add(pid)
        return True

    def record_failure(self, record: dict) -> None:
        """Log a failed attempt of a point to ``failures.jsonl`` (not part of the results)."""
        with open(self.failures_path, "ab") as fh:
            fh.write((json.dumps(record, separators=(",", ":"), default=_to_json) + "\n")
                     .encode())
            fh.flush()
            os.fsync(fh.fileno())

    def read_manifest(self) -> dict | None:
        """The current manifest, or None."""
        return read_manifest(self.directory)

    def write_manifest(self, doc: dict) -> None:
        """Replace ``manifest.json`` atomically (write, fsync, rename)."""
        tmp = self.manifest_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(doc, fh, indent=1, default=_to_json)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.manifest_path)
        _fsync_dir(self.directory)
