"""Run a sweep: schedule its points (Ray tasks, or in this process) and stream results.

The driver (this process) is the only writer of the results store. It opens the store
(taking its lock), skips the points already stored, submits the others as Ray tasks with
their CPU/GPU requests and ``max_retries`` (a point whose worker process dies is run
again by Ray), and appends each point's line the moment it finishes. Whatever happens —
success, failures, Ctrl-C — the store is closed, the manifest records the run, and a Ray
instance started here is shut down.

Without an address a local Ray instance sized to the machine (or to ``workers`` CPUs) is
started in a private temp directory under /tmp and removed afterwards.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from bridge.common import ConfigError, repo_path

from ..provenance import versions
from .spec import Point, SweepSpec
from .store import ResultStore

__all__ = ["run_sweep", "SweepSummary", "execute_point", "TRACE_ENV"]

#: when set, every task writes ``<dir>/<point id>.<pid>.<ns>.start`` as it starts (tests
#: and debugging: which worker process runs which point)
TRACE_ENV = "GSC_SWEEP_TRACE_DIR"
MANIFEST_FORMAT = "gsc-sweep/1"


@dataclass
class SweepSummary:
    """What one ``run_sweep`` call did.

    :param total: points in the sweep
    :param skipped: points already in the store when the run began
    :param done: points finished and written in this run
    :param failed: points that raised, or whose retries ran out, in this run
    :param failures: ``{"id", "params", "seed", "kind", "error"}`` per failed point
    """

    name: str
    out_dir: str
    backend: str
    address: str | None
    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    wall_s: float = 0.0
    failures: list[dict] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        """Points neither stored nor failed (non-zero only after an interruption)."""
        return self.total - self.skipped - self.done - self.failed


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _package_versions(v: dict) -> dict:
    return {k: val for k, val in v.items() if k != "platform"}


def execute_point(run: Callable[[dict, int], list[dict]], options: dict, seed: int,
                  pid: str) -> dict:
    """Body of one task: run a point; returns its rows and where/how long it ran."""
    trace = os.environ.get(TRACE_ENV)
    if trace:
        marker = os.path.join(trace, f"{pid}.{os.getpid()}.{time.time_ns()}.start")
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
    t0 = time.perf_counter()
    rows = run(dict(options), seed)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"a runner returns a list of dicts, got {type(rows).__name__}")
    return {"rows": rows, "elapsed_s": round(time.perf_counter() - t0, 3),
            "host": socket.gethostname(), "pid": os.getpid(), "versions": versions()}


# ----------------------------------------------------------------------- Ray plumbing
def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("gsc sweep runs points on Ray, which is not installed: "
                          "pip install -e '.[distributed]' (or pass --no-ray)") from None
    return ray


def _check_reachable(address: str) -> None:
    """Refuse quickly (one line) an address nothing listens on."""
    if address == "auto":
        return
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address must be local, auto, HOST:PORT or ray://HOST:PORT, "
                          f"got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise ConfigError(f"cannot reach Ray at {address}: {reason}") from None


class _RayContext:
    """Connect to (or start) Ray; always shut down and clean up what was started here."""

    def __init__(self, address: str | None, workers: int | None, temp_dir: str | None,
                 ship_code: bool) -> None:
        self.ray = _import_ray()
        self.address = address or "local"
        self.local = self.address == "local"
        if workers is not None and not self.local:
            raise ConfigError(f"--workers sizes a local Ray instance, but the Ray address is "
                              f"{self.address!r} (--ray-address or RAY_ADDRESS): a running "
                              "cluster brings its own workers")
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.temp_dir = temp_dir
        self.ship_code = ship_code
        self.owns_temp = False
        self.connected_here = False

    def __enter__(self) -> _RayContext:
        ray = self.ray
        if ray.is_initialized():  # a caller's own Ray session: use it, leave it running
            return self
        runtime_env = None
        if self.ship_code:
            mods = [repo_path(m) for m in ("gsc_phy", "gsc_stream", "gsc_semantic", "bridge")]
            runtime_env = {"py_modules": [m for m in mods if os.path.isdir(m)]}
        common: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.ERROR,
                                      runtime_env=runtime_env)
        if self.local:
            if self.temp_dir is None:
                root = os.environ.get("RAY_TMPDIR") or "/tmp"  # short: Ray's socket paths
                self.temp_dir = tempfile.mkdtemp(prefix="gsc-ray-", dir=root)
                self.owns_temp = True
            try:
                ray.init(address="local", num_cpus=self.workers or os.cpu_count() or 1,
                         include_dashboard=False, _temp_dir=self.temp_dir, **common)
            except Exception as e:  # any start failure is one line
                self._cleanup()
                raise ConfigError(f"could not start a local Ray instance: {_first_line(e)}") \
                    from None
        else:
            _check_reachable(self.address)
            with _CapturedStderr() as captured:
                try:
                    ray.init(address=self.address, **common)
                except Exception as e:  # ConnectionError, TimeoutError, ...
                    captured.discard = True  # Ray's C++ retry messages: one line instead
                    hint = ""
                    if "InvalidAuthToken" in captured.text():
                        hint = (" (the cluster uses token authentication: set "
                                "RAY_AUTH_MODE=token, with its token in ~/.ray/auth_token "
                                "or RAY_AUTH_TOKEN)")
                    raise ConfigError(f"cannot connect to Ray at {self.address}: "
                                      f"{_first_line(e)}{hint}") from None
        self.connected_here = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.connected_here:
            try:
                self.ray.shutdown()
            finally:
                self._cleanup()

    def _cleanup(self) -> None:
        if self.owns_temp and self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def slots(self, resources: dict) -> int:
        """How many points the cluster can run at once."""
        total = self.ray.cluster_resources()
        fits = [total.get(key, 0.0) / amount
                for key, amount in (("CPU", resources.get("num_cpus", 0)),
                                    ("GPU", resources.get("num_gpus", 0))) if amount > 0]
        return max(1, int(min(fits))) if fits else 1


class _CapturedStderr:
    """Collect what C++ code writes to fd 2 meanwhile; replay it unless ``discard`` is set."""

    def __init__(self) -> None:
        self.discard = False

    def __enter__(self) -> _CapturedStderr:
        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def text(self) -> str:
        """What was written to fd 2 so far."""
        sys.stderr.flush()
        self._tmp.seek(0)
        return self._tmp.read().decode(errors="replace")

    def __exit__(self, *exc: Any) -> None:
        text = self.text()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        if text and not self.discard:
            sys.stderr.write(text)
        self._tmp.close()


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def _describe_error(e: BaseException) -> tuple[str, str]:
    """(kind, one-line message) of a task failure."""
    cause = getattr(e, "cause", None)
    if cause is not None and not isinstance(cause, type(e)):  # RayTaskError wraps the cause
        return "exception", f"{type(cause).__name__}: {_first_line(cause)}"
    name = type(e).__name__
    kind = "worker" if name in ("WorkerCrashedError", "NodeDiedError",
                                "OutOfMemoryError", "TaskUnschedulableError") else "exception"
    return kind, f"{name}: {_first_line(e)}"


# ----------------------------------------------------------------------- driver
def _manifest(prev: dict | None, spec: SweepSpec, backend: str, address: str | None,
              driver_versions: dict) -> dict:
    points = {p["id"]: p for p in (prev or {}).get("points", [])}
    for p in spec.points:
        points.setdefault(p.id, p.describe())
    runs = [dict(r) for r in (prev or {}).get("runs", [])]
    for r in runs:  # we hold the store's lock: a run still marked running died mid-way
        if r.get("status") == "running":
            r["status"] = "killed"
    run = {"started": _now(), "finished": None, "status": "running", "backend": backend,
           "address": address, "sweep_hash": spec.sweep_hash, "spec_file": spec.path,
           "points": len(spec.points), "skipped": 0, "done": 0, "failed": 0}
    return {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "runner": spec.runner.name,
        "spec": spec.source,
        "spec_file": spec.path,
        "sweep_hash": spec.sweep_hash,
        "resources": spec.resources,
        "max_retries": spec.max_retries,
        "store": "results.jsonl",
        "versions": driver_versions,
        "created": (prev or {}).get("created", _now()),
        "updated": _now(),
        "points": list(points.values()),
        "runs": runs + [run],
    }


def run_sweep(spec: SweepSpec, out_dir: str, *, backend: str = "ray",
              address: str | None = None, workers: int | None = None,
              cpus_per_point: float | None = None, gpus_per_point: float | None = None,
              ship_code: bool = False, ray_temp_dir: str | None = None,
              progress: bool = True, log: Callable[[str], None] | None = None) -> SweepSummary:
    """Run every point of ``spec`` not yet in the store at ``out_dir``.

    :param spec: an expanded sweep (:func:`~gsc_phy.sweep.spec.load_sweep`)
    :param out_dir: results store directory (created; resumed when it exists)
    :param backend: ``"ray"`` (tasks on a local or remote Ray instance) or ``"inline"``
        (one point after another in this process, no Ray)
    :param address: Ray address: None/``"local"`` starts a local instance, ``"auto"``,
        ``HOST:PORT`` or ``ray://HOST:PORT`` connect to a running cluster
    :param workers: CPUs of the local Ray instance (default: all of this machine's)
    :param cpus_per_point: override the sweep file's ``resources.num_cpus``
    :param gpus_per_point: override the sweep file's ``resources.num_gpus``
    :param ship_code: send this checkout's gsc packages to the workers (Ray runtime_env)
    :param ray_temp_dir: temp dir of a local Ray instance (default: a fresh
        ``$RAY_TMPDIR/gsc-ray-*``, ``/tmp`` when unset; removed afterwards)
    :param progress: show a progress bar on stderr
    :param log: where one-line messages go (default: stderr)
    :returns: counts of skipped, done and failed points
    """
    if backend not in ("ray", "inline"):
        raise ConfigError(f"unknown backend {backend!r} (ray or inline)")

    def say(msg: str) -> None:
        if log is None:
            print(msg, file=sys.stderr)
        else:
            log(msg)

    resources = dict(spec.resources)
    if cpus_per_point is not None:
        resources["num_cpus"] = float(cpus_per_point)
    if gpus_per_point is not None:
        resources["num_gpus"] = float(gpus_per_point)
    if resources.get("num_cpus", 0) < 0 or resources.get("num_gpus", 0) < 0 or \
            resources.get("num_cpus", 0) + resources.get("num_gpus", 0) <= 0:
        raise ConfigError("a point must request some CPU or GPU (--cpus-per-point)")
    if backend == "inline" and (address or workers):
        raise ConfigError("--no-ray runs points in this process: drop --ray-address/--workers")
    if backend == "ray":
        _import_ray()  # fail before touching the store when Ray is missing
    t0 = time.perf_counter()
    summary = SweepSummary(spec.name, out_dir, backend, address, total=len(spec.points))
    driver_versions = versions()
    if backend == "ray":
        import ray

        driver_versions["ray"] = ray.__version__
    if backend == "ray" and address not in (None, "local"):
        _check_reachable(address)  # before the store is touched
    new_dir = not os.path.exists(out_dir)
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(ResultStore(out_dir))  # one driver per store
        prev = store.read_manifest()
        if prev and prev.get("runner") not in (None, spec.runner.name):
            raise ConfigError(f"{out_dir} holds a sweep of runner {prev['runner']!r}, not "
                              f"{spec.runner.name!r}: use another --out")
        todo = [p for p in spec.points if p.id not in store]
        summary.skipped = len(spec.points) - len(todo)
        ctx = None
        if todo and backend == "ray":
            try:
                ctx = stack.enter_context(_RayContext(address, workers, ray_temp_dir,
                                                      ship_code))
            except ConfigError:
                if new_dir:  # a bad address leaves no empty store behind
                    store.close()
                    shutil.rmtree(out_dir, ignore_errors=True)
                raise
        if store.repaired_bytes:
            say(f"[sweep] removed a partial last line ({store.repaired_bytes} bytes) "
                "left by an interrupted run")
        manifest = _manifest(prev, spec, backend, address, driver_versions)
        run_entry = manifest["runs"][-1]
        run_entry["skipped"] = summary.skipped
        if ctx is not None:
            run_entry["cluster_resources"] = ctx.ray.cluster_resources()
        store.write_manifest(manifest)
        say(f"[sweep] {spec.name}: {len(spec.points)} points, {summary.skipped} already in "
            f"{out_dir}, {len(todo)} to run"
            + (f" on Ray ({ctx.address}, {ctx.slots(resources)} at a time)" if ctx else ""))
        status = "interrupted"
        try:
            if todo:
                _execute(spec, todo, store, summary, ctx, resources, progress,
                         driver_versions)
            status = "complete" if summary.failed == 0 else "failed"
        finally:
            run_entry.update(finished=_now(), status=status, done=summary.done,
                             failed=summary.failed)
            manifest["updated"] = _now()
            store.write_manifest(manifest)
    summary.wall_s = time.perf_counter() - t0
    return summary


def _execute(spec: SweepSpec, todo: list[Point], store: ResultStore, summary: SweepSummary,
             ctx: _RayContext | None, resources: dict, progress: bool,
             driver_versions: dict) -> None:
    runner = spec.runner
    worker_versions = _package_versions({k: v for k, v in driver_versions.items()
                                         if k != "ray"})
    bar = tqdm(total=len(todo), desc=f"gsc sweep {spec.name}", unit="point",
               disable=not progress, dynamic_ncols=True, file=sys.stderr)

    def tick(advance: int = 0) -> None:
        bar.set_postfix(done=summary.done, failed=summary.failed,
                        remaining=len(todo) - summary.done - summary.failed, refresh=False)
        if advance:
            bar.update(advance)
        else:
            bar.refresh()

    def finished(p: Point, out: dict) -> None:
        rec = {"id": p.id, "runner": p.runner, "params": p.params, "seed": p.seed,
               "sweep": spec.name, "config": p.config, "rows": out["rows"],
               "elapsed_s": out["elapsed_s"], "host": out["host"], "pid": out["pid"],
               "finished_at": _now()}
        if _package_versions(out["versions"]) != worker_versions:
            rec["versions"] = out["versions"]  # a worker with other packages than the driver
        if store.append(rec):
            summary.done += 1
        tick(advance=1)

    def failed(p: Point, e: BaseException) -> None:
        kind, msg = _describe_error(e)
        rec = {"id": p.id, "params": p.params, "seed": p.seed, "kind": kind, "error": msg,
               "traceback": "".join(traceback.format_exception(e))[-20000:], "at": _now()}
        store.record_failure(rec)
        summary.failed += 1
        summary.failures.append({k: rec[k] for k in ("id", "params", "seed", "kind", "error")})
        tick(advance=1)

    tick()
    try:
        if ctx is None:
            for p in todo:
                try:
                    out = execute_point(runner.run, runner.options(p.params), p.seed, p.id)
                except Exception as e:  # a failed point is recorded, not fatal
                    failed(p, e)
                else:
                    finished(p, out)
        else:
            _run_on_ray(ctx, spec, todo, resources, finished, failed, tick)
    finally:
        bar.close()


def _run_on_ray(ctx: _RayContext, spec: SweepSpec, todo: list[Point], resources: dict,
                finished: Callable[[Point, dict], None],
                failed: Callable[[Point, BaseException], None],
                tick: Callable[[], None]) -> None:
    ray = ctx.ray
    task = ray.remote(execute_point)
    # keep the cluster busy without flooding it: twice as many in flight as can run
    window = max(4, 2 * ctx.slots(resources))
    queue = collections.deque(todo)
    pending: dict[Any, Point] = {}
    run = spec.runner.run
    opts = dict(num_cpus=resources.get("num_cpus", 0), num_gpus=resources.get("num_gpus", 0),
                max_retries=spec.max_retries, retry_exceptions=False)
    try:
        while queue or pending:
            while queue and len(pending) < window:
                p = queue.popleft()
                ref = task.options(name=f"gsc-sweep-{p.id}", **opts).remote(
                    run, spec.runner.options(p.params), p.seed, p.id)
                pending[ref] = p
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                p = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayError as e:
                    failed(p, e)
                else:
                    finished(p, out)
            if not ready:
                tick()
    finally:
        for ref in pending:  # interrupted: do not leave tasks running on a cluster
            try:
                ray.cancel(ref, force=True)
            except Exception:  # best effort on the way out
                pass
