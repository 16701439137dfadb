"""Decoder service of the GNU Radio streaming link: ``gsc decoder serve``.

Workers connect to the RX flowgraph's reliable work queue (:mod:`bridge.reliable`: credit,
per-frame acknowledgements, frames of a dead worker resent to the others) and share its
stream of RX frames (equalised symbols + noise variances, :mod:`flowgraphs.gsc_ofdm.messages`).
Each worker batches what has arrived, demaps and LDPC-decodes it with gsc_phy
(:class:`~gsc_stream.stream_decode.StreamCodec`), checks the masked CRC-24A, and

* pushes one result per frame (``CONTROL`` JSON ``{"type": "result", "rx_seq", "stream_id",
  "ok", "tx_seq", "payload_crc32", "evm_db", "snr_db", "cfo", "t_rx_ns", "t_done_ns",
  "worker"}``) to ``--results`` when given (``tx_seq``: the frame number of loopback test
  traffic, read from the payload; ``payload_crc32``: CRC-32 of the decoded payload), and only
  then acknowledges the frame to the queue (a worker killed in between gets the frame
  decoded again elsewhere: the result side drops the duplicate by ``(stream_id, rx_seq)``);
* counts and writes metrics (``OUT/decoder-wN.json``, merged into ``OUT/decoder.json``).

Frames that are not RX frames of this grid are counted by cause, acknowledged and dropped with
a log line; a worker never stops because of what arrived. Workers run as child processes
that the service supervises: one that dies is started again (at most ``--max-restarts``
times in all) under the same name, so the queue resends its unacknowledged frames at once;
the service exits with code 1 when every worker has failed for good.

A decoder on another host than the RX flowgraph (a GPU box) connects over CurveZMQ: the RX
block binds a non-loopback endpoint with server keys and a directory of authorised decoder
keys, and the service gives its own secret key and the RX host's public key
(``--curve-secret``, ``--curve-server-key``; keys from ``gsc keys generate``); traffic is
encrypted and a decoder whose key is not authorised gets nothing. Results pushed to a
receiver on another host go over CurveZMQ too with ``--results-server-key`` (that
receiver's public key; it binds as a CurveZMQ server that authorises this decoder's key).

.. code-block:: sh

    gsc decoder serve --connect tcp://127.0.0.1:5601 --workers 2 --out runs/decoder
    gsc decoder serve --connect tcp://SDR_HOST:5601 --curve-secret keys/gpu1.key_secret \
        --curve-server-key keys/sdr.key
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import click
import numpy as np

from bridge.reliable import ReliableConsumer
from bridge.security import client_curve
from bridge.transport import Pusher
from bridge.wire import Frame, PayloadKind, WireError
from flowgraphs.gsc_ofdm.grid import grid_path
from flowgraphs.gsc_ofdm.messages import parse_rx_frame

__all__ = ["DecoderWorker", "WorkerMetrics", "serve", "merge_metrics", "decoder"]

#: Seconds between a supervisor's checks of its worker processes.
_SUPERVISE_S = 0.2

logger = logging.getLogger("gsc.decoder")


@dataclass
class WorkerMetrics:
    """Counters of one decoder worker."""

    worker: int = 0
    frames: int = 0
    frames_ok: int = 0
    blocks: int = 0
    blocks_ok: int = 0
    batches: int = 0
    dropped: Counter = field(default_factory=Counter)
    evm_lin_sum: float = 0.0
    evm_count: int = 0
    decode_s: float = 0.0

    def as_dict(self) -> dict:
        d = {
            "worker": self.worker,
            "frames": self.frames,
            "frames_ok": self.frames_ok,
            "blocks": self.blocks,
            "blocks_ok": self.blocks_ok,
            "batches": self.batches,
            "dropped": dict(self.dropped),
            "dropped_total": sum(self.dropped.values()),
            "evm_db": 10 * np.log10(self.evm_lin_sum / self.evm_count) if self.evm_count else None,
            "evm_count": self.evm_count,
            "evm_lin_sum": self.evm_lin_sum,
            "decode_s": self.decode_s,
        }
        d["decode_ms_per_frame"] = 1e3 * self.decode_s / self.frames if self.frames else None
        return d


def merge_metrics(parts: list[dict]) -> dict:
    """Sum the metrics of several workers into one dict."""
    out: dict = {"workers": len(parts)}
    for key in ("frames", "frames_ok", "blocks", "blocks_ok", "batches", "evm_count",
                "evm_lin_sum", "decode_s", "dropped_total"):
        out[key] = sum(p.get(key) or 0 for p in parts)
    dropped: Counter = Counter()
    for p in parts:
        dropped.update(p.get("dropped", {}))
    out["dropped"] = dict(dropped)
    out["evm_db"] = (10 * np.log10(out["evm_lin_sum"] / out["evm_count"])
                     if out["evm_count"] else None)
    out["decode_ms_per_frame"] = 1e3 * out["decode_s"] / out["frames"] if out["frames"] else None
    return out


def _queue_curve(curve_secret: str, curve_server_key: str, results_server_key: str = ""):
    """Client keys for the RX queue; ``curve_secret`` alone is fine when it only serves the
    results channel (``results_server_key``), otherwise half a pair is a one-line
    ``ValueError``."""
    if results_server_key and not curve_server_key:
        return None
    return client_curve(curve_secret, curve_server_key)


def _results_curve(curve_secret: str, results_server_key: str):
    """Client keys for the results channel: ``None`` without ``results_server_key``; it
    needs ``curve_secret`` (one-line ``ValueError`` otherwise, or for a bad key file)."""
    if not results_server_key:
        return None
    if not curve_secret:
        raise ValueError("a results server key needs this decoder's secret key "
                         "(--curve-secret)")
    return client_curve(curve_secret, results_server_key)


class DecoderWorker:
    """One decoder worker (see the module docstring).

    :param connect: Endpoint of the RX flowgraph's reliable work queue.
    :param grid: Grid JSON (path or shipped name) the flowgraph uses.
    :param results: Endpoint to push per-frame results to (``None``: none).
    :param worker: Worker index (in results and metric file names).
    :param out_dir: Folder for ``decoder-wN.json`` (``None``: none).
    :param batch_max: Most frames decoded together.
    :param device: torch device.
    :param idle_exit_s: Stop after this long without a frame (0: never).
    :param loopback_traffic: Read frame numbers from payloads (``gsc loopback`` traffic).
    :param threads: torch CPU threads of this worker (1: several workers scale across cores
        and a small batch does not pay for thread hand-offs).
    :param curve_secret: This decoder's CurveZMQ secret key file ('' = plain ZeroMQ).
    :param curve_server_key: The RX host's public key file (with ``curve_secret``).
    :param results_server_key: The results receiver's public key file: results go out as a
        CurveZMQ client with ``curve_secret`` ('' = plain ZeroMQ).
    """

    def __init__(
        self,
        connect: str,
        grid: str = "default",
        results: str | None = None,
        worker: int = 0,
        out_dir: str | None = None,
        batch_max: int = 16,
        device: str = "cpu",
        idle_exit_s: float = 0.0,
        loopback_traffic: bool = True,
        threads: int = 1,
        curve_secret: str = "",
        curve_server_key: str = "",
        results_server_key: str = "",
    ) -> None:
        import torch

        from .grid_export import config_from_grid
        from .stream_decode import StreamCodec

        if threads > 0:
            torch.set_num_threads(int(threads))
        with open(grid_path(grid), encoding="utf-8") as fh:
            self.grid_doc = json.load(fh)
        self.format_id = int(self.grid_doc["format_id"])
        self.codec = StreamCodec(config_from_grid(self.grid_doc), device=device)
        self.shape = self.codec.data_shape
        self.connect = connect
        self.curve = _queue_curve(curve_secret, curve_server_key, results_server_key)
        self.results_curve = _results_curve(curve_secret, results_server_key)
        self.results_ep = results
        self.out_dir = out_dir
        self.batch_max = max(1, int(batch_max))
        self.idle_exit_s = float(idle_exit_s)
        self.loopback_traffic = loopback_traffic
        self.metrics = WorkerMetrics(worker=worker)
        self.stop_event = threading.Event()
        self._rx: ReliableConsumer | None = None
        self._res: Pusher | None = None

    # ------------------------------------------------------------------ plumbing
    def _open(self) -> None:
        if self.results_ep:
            self._res = Pusher(self.results_ep, bind=False, timeout_ms=2000, linger_ms=2000,
                               curve=self.results_curve)
        self._rx = ReliableConsumer(self.connect, name=f"w{self.metrics.worker}",
                                    credit=2 * self.batch_max, curve=self.curve)
        self._send({"type": "ready", "worker": self.metrics.worker, "pid": os.getpid()})

    def _send(self, obj: dict) -> None:
        if self._res is not None:
            self._res.send(Frame.from_json(obj, kind=PayloadKind.CONTROL))

    def close(self) -> dict:
        """Write the metrics file, then close the sockets (which may linger); returns the
        metrics."""
        if self._rx is not None:
            self.metrics.dropped.update({k[len("dropped_"):]: v for k, v in
                                         self._rx.counters.items() if k.startswith("dropped_")})
        m = self.metrics.as_dict()
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            path = os.path.join(self.out_dir, f"decoder-w{self.metrics.worker}.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(m, fh, indent=1)
        if self._rx is not None:
            self._rx.close()
            self._rx = None
        if self._res is not None:
            self._send({"type": "bye", "worker": self.metrics.worker, "metrics": m})
            self._res.close()
            self._res = None
        return m

    def _drop(self, cause: str, detail: str) -> None:
        n = self.metrics.dropped[cause] = self.metrics.dropped[cause] + 1
        if n <= 10 or n % 1000 == 0:
            logger.warning("decoder worker %d: dropped message (%s): %s [%d]",
                           self.metrics.worker, cause, detail, n)

    # ------------------------------------------------------------------ work
    def run(self) -> dict:
        """Serve until :attr:`stop_event` is set (or idle exit); returns the metrics."""
        self._open()
        last = time.monotonic()
        try:
            while not self.stop_event.is_set():
                f = self._rx.get(timeout_s=0.2)
                if f is None:
                    if self.idle_exit_s and time.monotonic() - last > self.idle_exit_s:
                        break
                    continue
                last = time.monotonic()
                batch = [f]
                while len(batch) < self.batch_max:
                    g = self._rx.get(timeout_s=0)
                    if g is None:
                        break
                    batch.append(g)
                self._handle(batch)
                self._rx.ack(*batch)  # results are out: the queue may forget these
        finally:
            metrics = self.close()
        return metrics

    def _handle(self, batch: list[Frame]) -> None:
        """Decode a batch of work frames; count and drop those that are not RX frames."""
        frames = []
        for f in batch:
            try:
                frames.append(parse_rx_frame(f, self.shape, self.format_id))
            except WireError as e:
                self._drop(e.cause, str(e))
        if frames:
            try:
                self._decode(frames)
            except Exception:  # never die on a batch: count it, log it, go on
                logger.exception("decoder worker %d: batch failed", self.metrics.worker)
                self.metrics.dropped["decode_error"] += len(frames)

    def _decode(self, frames: list) -> None:
        from .stream_decode import payload_crc32, payload_seq

        t0 = time.perf_counter()
        x = np.stack([f.x_hat for f in frames])
        no = np.stack([f.no_eff for f in frames])
        out = self.codec.decode(x, no)
        dt = time.perf_counter() - t0
        m = self.metrics
        m.batches += 1
        m.decode_s += dt
        done = time.time_ns()
        for i, f in enumerate(frames):
            ok = out.block_ok[i]
            m.frames += 1
            m.blocks += int(ok.size)
            m.blocks_ok += int(ok.sum())
            all_ok = bool(ok.all())
            m.frames_ok += int(all_ok)
            evm = float(out.evm_db[i])
            if np.isfinite(evm):
                m.evm_lin_sum += 10 ** (evm / 10)
                m.evm_count += 1
            if self._res is None:
                continue
            bits = out.bits_hat[i]
            self._send({
                "type": "result",
                "worker": m.worker,
                "rx_seq": int(f.seq),
                "stream_id": int(f.format_id),
                "ok": [bool(v) for v in ok],
                "tx_seq": payload_seq(bits) if (all_ok and self.loopback_traffic) else None,
                "payload_crc32": payload_crc32(bits) if all_ok else None,
                "evm_db": evm if np.isfinite(evm) else None,
                "snr_db": f.meta.get("snr_db"),
                "cfo": f.meta.get("cfo"),
                "t_rx_ns": int(f.timestamp_ns),
                "t_done_ns": done,
            })


def _worker_main(kwargs: dict) -> None:
    """Entry point of a worker process: serve until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    w = DecoderWorker(**kwargs)

    def _stop(signum, frame):  # noqa: ARG001 - signal handler signature
        w.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    w.run()


def serve(
    connect: str,
    workers: int = 1,
    grid: str = "default",
    results: str | None = None,
    out_dir: str | None = None,
    batch_max: int = 16,
    device: str = "cpu",
    idle_exit_s: float = 0.0,
    threads: int = 1,
    max_restarts: int = 3,
    curve_secret: str = "",
    curve_server_key: str = "",
    results_server_key: str = "",
) -> dict:
    """Run and supervise ``workers`` decoder worker processes until SIGTERM/SIGINT.

    Workers (``spawn``) connect to ``connect`` and share the RX stream. A worker that exits
    with an error or a signal is started again under the same index while fewer than
    ``max_restarts`` restarts have happened; one that exits cleanly (idle exit) is not.
    ``curve_secret`` and ``curve_server_key`` (both or neither; checked before any worker
    starts, ``ValueError`` otherwise) make every worker a CurveZMQ client of the queue;
    ``results_server_key`` (with ``curve_secret``) of the results receiver.

    :output: Merged metrics (:func:`merge_metrics`) plus ``worker_restarts`` and
        ``workers_failed`` (workers that died with no restart left), also written to
        ``OUT/decoder.json``.
    """
    # bad keys: one line before any worker runs
    _queue_curve(curve_secret, curve_server_key, results_server_key)
    _results_curve(curve_secret, results_server_key)
    base = dict(connect=connect, grid=grid, results=results, out_dir=out_dir,
                batch_max=batch_max, device=device, idle_exit_s=idle_exit_s, threads=threads,
                curve_secret=curve_secret, curve_server_key=curve_server_key,
                results_server_key=results_server_key)
    ctx = mp.get_context("spawn")
    stopping = threading.Event()

    def _start(i: int):
        p = ctx.Process(target=_worker_main, args=({**base, "worker": i},), daemon=False)
        p.start()
        return p

    def _forward(signum, frame):  # noqa: ARG001 - signal handler signature
        stopping.set()
        for p in procs.values():
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)

    old = {s: signal.signal(s, _forward) for s in (signal.SIGTERM, signal.SIGINT)}
    procs = {i: _start(i) for i in range(workers)}
    restarts, failed = 0, []
    try:
        while procs:
            time.sleep(_SUPERVISE_S)
            for i, p in list(procs.items()):
                if p.is_alive():
                    continue
                p.join()
                del procs[i]
                if stopping.is_set() or p.exitcode == 0:
                    continue
                if restarts < max_restarts:
                    restarts += 1
                    logger.warning("decoder worker %d died (exit code %s); restarting it "
                                   "(%d/%d)", i, p.exitcode, restarts, max_restarts)
                    procs[i] = _start(i)
                else:
                    failed.append(i)
                    logger.error("decoder worker %d died (exit code %s); no restart left",
                                 i, p.exitcode)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    parts = [_read_worker_metrics(out_dir, i) for i in range(workers)]
    merged = merge_metrics([p for p in parts if p])
    merged["worker_restarts"] = restarts
    merged["workers_failed"] = failed
    if out_dir:
        with open(os.path.join(out_dir, "decoder.json"), "w", encoding="utf-8") as fh:
            json.dump(merged, fh, indent=1)
    return merged


def _read_worker_metrics(out_dir: str | None, worker: int) -> dict | None:
    if not out_dir:
        return None
    path = os.path.join(out_dir, f"decoder-w{worker}.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


@click.group()
def decoder() -> None:
    """Decoder service for the GNU Radio streaming link."""


@decoder.command("serve")
@click.option("--connect", required=True, help="RX flowgraph endpoint, e.g. tcp://127.0.0.1:5601")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Worker processes sharing the stream")
@click.option("--grid", default="default", show_default=True,
              help="Grid JSON of the flowgraph (path or shipped name)")
@click.option("--results", default=None, help="Endpoint to push per-frame results to")
@click.option("--out", "out_dir", default="runs/decoder", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the metrics JSON")
@click.option("--batch", type=int, default=16, show_default=True, help="Frames per decode batch")
@click.option("--device", default="cpu", show_default=True)
@click.option("--idle-exit", type=float, default=0.0, show_default=True,
              help="Stop after this many seconds without frames (0: run until stopped)")
@click.option("--threads", type=int, default=1, show_default=True,
              help="torch CPU threads per worker (0: torch's default)")
@click.option("--max-restarts", type=int, default=3, show_default=True,
              help="Worker processes restarted after dying, in all")
@click.option("--curve-secret", default="", metavar="PATH",
              help="This decoder's CurveZMQ secret key (NAME.key_secret from 'gsc keys "
                   "generate'), for an RX host that binds a non-loopback endpoint")
@click.option("--curve-server-key", default="", metavar="PATH",
              help="The RX host's CurveZMQ public key (NAME.key); with --curve-secret")
@click.option("--results-server-key", default="", metavar="PATH",
              help="The results receiver's CurveZMQ public key (NAME.key); with "
                   "--curve-secret, for a --results endpoint on another host")
@click.option("--seed", type=int, default=0, show_default=True, help="(decoding is deterministic)")
def serve_cmd(connect, workers, grid, results, out_dir, batch, device, idle_exit, threads,
              max_restarts, curve_secret, curve_server_key, results_server_key, seed) -> None:
    """Decode the RX stream of a flowgraph (demap, LDPC, CRC); write metrics; Ctrl-C stops.

    A remote decoder (RX flowgraph on another host, its RX block bound with CurveZMQ keys)
    gives --curve-secret and --curve-server-key; the RX host must hold this decoder's
    public key in its authorised-keys directory. Example:

    \b
    gsc decoder serve --connect tcp://SDR_HOST:5601 \\
        --curve-secret keys/gpu1.key_secret --curve-server-key keys/sdr.key
    """
    from bridge.common import ConfigError

    del seed
    try:
        _queue_curve(curve_secret, curve_server_key, results_server_key)
    except ValueError as e:
        raise ConfigError(f"--curve-secret/--curve-server-key: {e}") from None
    try:
        _results_curve(curve_secret, results_server_key)
    except ValueError as e:
        raise ConfigError(f"--results-server-key: {e}") from None
    if workers < 1:
        raise ConfigError("--workers must be >= 1")
    try:
        grid_path(grid)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if max_restarts < 0:
        raise ConfigError("--max-restarts must be >= 0")
    os.makedirs(out_dir, exist_ok=True)
    m = serve(connect, workers, grid, results, out_dir, batch, device, idle_exit,
              threads=threads, max_restarts=max_restarts, curve_secret=curve_secret,
              curve_server_key=curve_server_key, results_server_key=results_server_key)
    click.echo(
        f"decoded {m['frames']} frames ({m['frames_ok']} CRC ok), dropped {m['dropped_total']}, "
        f"{m['worker_restarts']} worker restart(s); "
        f"wrote {os.path.join(out_dir, 'decoder.json')}"
    )
    if m["workers_failed"] and len(m["workers_failed"]) == workers:
        click.echo(f"gsc: error: every decoder worker died ({m['workers_failed']})", err=True)
        sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    """``python -m gsc_stream.decoder_service serve ...`` (what ``gsc loopback`` launches)."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        decoder.main(args=argv, prog_name="gsc decoder", standalone_mode=False)
    except click.ClickException as e:
        click.echo(f"gsc: error: {e.format_message()}", err=True)
        return 2
    except ValueError as e:
        click.echo(f"gsc: error: {e}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
