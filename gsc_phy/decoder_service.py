"""Decoder service of the GNU Radio streaming link: ``gsc decoder serve``.

Workers connect (ZeroMQ PULL) to the RX flowgraph's PUSH endpoint and share its stream of RX
frames (equalised symbols + noise variances, :mod:`flowgraphs.gsc_ofdm.messages`). Each worker
batches what has arrived, demaps and LDPC-decodes it with gsc_phy
(:class:`~gsc_phy.stream_decode.StreamCodec`), checks the masked CRC-24A, and

* pushes one result per frame (``CONTROL`` JSON ``{"type": "result", "rx_seq", "ok",
  "tx_seq", "payload_crc32", "evm_db", "snr_db", "cfo", "t_rx_ns", "t_done_ns",
  "worker"}``) to ``--results`` when given (``tx_seq``: the frame number of loopback test
  traffic, read from the payload; ``payload_crc32``: CRC-32 of the decoded payload);
* counts and writes metrics (``OUT/decoder-wN.json``, merged into ``OUT/decoder.json``).

Malformed, truncated, wrong-version, CRC-failing or wrong-grid messages are counted by cause
and dropped with a log line; a worker never stops because of what arrived. Workers that stop
and start again simply reconnect: the flowgraph keeps running (frames sent while no worker
listens are counted by the RX block).

.. code-block:: sh

    gsc decoder serve --connect tcp://127.0.0.1:5601 --workers 2 --out runs/decoder
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
import zmq

from bridge.transport import Puller, Pusher
from bridge.wire import Frame, PayloadKind, WireError
from flowgraphs.gsc_ofdm.grid import grid_path
from flowgraphs.gsc_ofdm.messages import parse_rx_frame

__all__ = ["DecoderWorker", "WorkerMetrics", "serve", "merge_metrics", "decoder"]

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


class DecoderWorker:
    """One decoder worker (see the module docstring).

    :param connect: Endpoint of the RX flowgraph's PUSH socket.
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
        self.results_ep = results
        self.out_dir = out_dir
        self.batch_max = max(1, int(batch_max))
        self.idle_exit_s = float(idle_exit_s)
        self.loopback_traffic = loopback_traffic
        self.metrics = WorkerMetrics(worker=worker)
        self.stop_event = threading.Event()
        self._rx: Puller | None = None
        self._res: Pusher | None = None

    # ------------------------------------------------------------------ plumbing
    def _open(self, ready_timeout_s: float) -> None:
        self._rx = _MonitoredPuller(self.connect, bind=False, timeout_ms=200, hwm=64)
        connected = _wait_connected(self._rx, ready_timeout_s)
        if self.results_ep:
            self._res = Pusher(self.results_ep, bind=False, timeout_ms=2000, linger_ms=2000)
            self._send({"type": "ready", "worker": self.metrics.worker, "connected": connected,
                        "pid": os.getpid()})

    def _send(self, obj: dict) -> None:
        if self._res is not None:
            self._res.send(Frame.from_json(obj, kind=PayloadKind.CONTROL))

    def close(self) -> dict:
        """Close the sockets, write the metrics file; returns the metrics."""
        if self._rx is not None:
            self.metrics.dropped.update(self._rx.stats.dropped)
            self._rx.close()
            self._rx = None
        m = self.metrics.as_dict()
        if self._res is not None:
            self._send({"type": "bye", "worker": self.metrics.worker, "metrics": m})
            self._res.close()
            self._res = None
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            path = os.path.join(self.out_dir, f"decoder-w{self.metrics.worker}.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(m, fh, indent=1)
        return m

    def _drop(self, cause: str, detail: str) -> None:
        n = self.metrics.dropped[cause] = self.metrics.dropped[cause] + 1
        if n <= 10 or n % 1000 == 0:
            logger.warning("decoder worker %d: dropped message (%s): %s [%d]",
                           self.metrics.worker, cause, detail, n)

    # ------------------------------------------------------------------ work
    def run(self, ready_timeout_s: float = 30.0) -> dict:
        """Serve until :attr:`stop_event` is set (or idle exit); returns the metrics."""
        self._open(ready_timeout_s)
        last = time.monotonic()
        try:
            while not self.stop_event.is_set():
                f = self._rx.recv()
                if f is None:
                    if self.idle_exit_s and time.monotonic() - last > self.idle_exit_s:
                        break
                    continue
                last = time.monotonic()
                batch = [f]
                while len(batch) < self.batch_max:
                    g = self._rx.recv(timeout_ms=0)
                    if g is None:
                        break
                    batch.append(g)
                if self._handle(batch):
                    break
        finally:
            metrics = self.close()
        return metrics

    def _handle(self, batch: list[Frame]) -> bool:
        """Decode a batch of messages; True when a stop command arrived."""
        frames, stop = [], False
        for f in batch:
            if f.kind == PayloadKind.CONTROL:
                try:
                    cmd = f.json()
                except WireError as e:
                    self._drop(e.cause, str(e))
                    continue
                if isinstance(cmd, dict) and cmd.get("cmd") == "stop":
                    stop = True
                continue
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
        return stop

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
                "ok": [bool(v) for v in ok],
                "tx_seq": payload_seq(bits) if (all_ok and self.loopback_traffic) else None,
                "payload_crc32": payload_crc32(bits) if all_ok else None,
                "evm_db": evm if np.isfinite(evm) else None,
                "snr_db": f.meta.get("snr_db"),
                "cfo": f.meta.get("cfo"),
                "t_rx_ns": int(f.timestamp_ns),
                "t_done_ns": done,
            })


class _MonitoredPuller(Puller):
    """A :class:`Puller` whose connection monitor is attached *before* it connects, so the
    CONNECTED event cannot fire unseen."""

    def _setup(self, sock: zmq.Socket) -> None:
        super()._setup(sock)
        self.monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED)


def _wait_connected(rx: _MonitoredPuller, timeout_s: float) -> bool:
    """Wait until ``rx`` has connected to its peer (socket monitor), up to ``timeout_s``."""
    try:
        poller = zmq.Poller()
        poller.register(rx.monitor, zmq.POLLIN)
        if poller.poll(int(timeout_s * 1000)):
            rx.monitor.recv_multipart()
            return True
        return False
    finally:
        rx.socket.disable_monitor()
        rx.monitor.close(linger=0)


def _worker_main(kwargs: dict, ready_timeout_s: float) -> None:
    """Entry point of a worker process: serve until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    w = DecoderWorker(**kwargs)

    def _stop(signum, frame):  # noqa: ARG001 - signal handler signature
        w.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    w.run(ready_timeout_s)


def serve(
    connect: str,
    workers: int = 1,
    grid: str = "default",
    results: str | None = None,
    out_dir: str | None = None,
    batch_max: int = 16,
    device: str = "cpu",
    idle_exit_s: float = 0.0,
    ready_timeout_s: float = 30.0,
    threads: int = 1,
) -> dict:
    """Run ``workers`` decoder workers until SIGTERM/SIGINT (or idle exit); merged metrics.

    One worker runs in this process; more run as processes (``spawn``), all connected to
    ``connect`` so the RX stream is shared among them (PUSH/PULL round robin).
    """
    base = dict(connect=connect, grid=grid, results=results, out_dir=out_dir,
                batch_max=batch_max, device=device, idle_exit_s=idle_exit_s, threads=threads)
    if workers <= 1:
        _worker_main({**base, "worker": 0}, ready_timeout_s)
        parts = [_read_worker_metrics(out_dir, 0)]
    else:
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker_main, args=({**base, "worker": i}, ready_timeout_s),
                             daemon=False) for i in range(workers)]
        for p in procs:
            p.start()

        def _forward(signum, frame):  # noqa: ARG001
            for p in procs:
                if p.is_alive() and p.pid:
                    os.kill(p.pid, signal.SIGTERM)

        signal.signal(signal.SIGTERM, _forward)
        signal.signal(signal.SIGINT, _forward)
        for p in procs:
            p.join()
        parts = [_read_worker_metrics(out_dir, i) for i in range(workers)]
    merged = merge_metrics([p for p in parts if p])
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
@click.option("--seed", type=int, default=0, show_default=True, help="(decoding is deterministic)")
def serve_cmd(connect, workers, grid, results, out_dir, batch, device, idle_exit, threads,
              seed) -> None:
    """Decode the RX stream of a flowgraph (demap, LDPC, CRC); write metrics; Ctrl-C stops."""
    from .config import ConfigError

    del seed
    if workers < 1:
        raise ConfigError("--workers must be >= 1")
    try:
        grid_path(grid)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    os.makedirs(out_dir, exist_ok=True)
    m = serve(connect, workers, grid, results, out_dir, batch, device, idle_exit,
              threads=threads)
    click.echo(
        f"decoded {m['frames']} frames ({m['frames_ok']} CRC ok), dropped {m['dropped_total']}; "
        f"wrote {os.path.join(out_dir, 'decoder.json')}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m gsc_phy.decoder_service serve ...`` (what ``gsc loopback`` launches)."""
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
