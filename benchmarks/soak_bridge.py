"""Soak test of the bridge: N frames, one producer, 4 workers, a collector; prints JSON.

Pipeline (every hop a bridge transport on ``tcp://127.0.0.1``, a process each)::

    producer (Pusher, binds) ─PUSH/PULL─► 4 workers (Puller: CRC check + decode;
        Pusher: an ACK frame with the same stream_id/seq) ─PUSH/PULL─► collector (Puller)

The producer sends ``--frames`` wire frames (``SYMBOLS``, ``--size`` payload bytes,
``seq`` = 0..N-1) with blocking sends (nothing is dropped at a high-water mark). The
collector (this process) counts every sequence number: ``lost`` = never arrived,
``duplicates`` = arrived more than once, ``dropped`` = rejected by a parser (by cause). It
stops once all frames arrived or after ``--idle-timeout`` seconds without any. Resident
memory (``VmRSS``) of the producer and of each worker is read when ``--warmup`` frames have
arrived and again at the end; ``rss_growth`` = end / warm-up (target <= 1.10).

Anchor, measured in the same run: the same pipeline in raw pyzmq (a prebuilt message with
the sequence number in its first 8 bytes, workers forward those 8 bytes; no encoding, no
CRC, no decoding) for ``--anchor-frames`` frames; ``ratio`` = bridge frames/s / raw
frames/s.

Run: ``python benchmarks/soak_bridge.py [--frames 1000000] [--workers 4]`` (either
interpreter; Linux for the RSS figures).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import time

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bridge import wire  # noqa: E402
from bridge.transport import Puller, Pusher  # noqa: E402

#: Message sent by the producer to each worker's control pipe: stop now.
_STOP = "stop"


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (Linux ``/proc``), or None where unavailable.

    >>> rss_bytes(os.getpid()) is None or rss_bytes(os.getpid()) > 0
    True
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _producer(mode: str, endpoint_q, frames: int, size: int, ctl) -> None:
    """Bind, wait for the go signal, send ``frames`` messages, wait for stop."""
    symbols = np.zeros(size // 8, np.complex64)
    if mode == "bridge":
        tx = Pusher(hwm=1000, timeout_ms=-1, linger_ms=-1)
        endpoint_q.put(tx.endpoint)
        ctl.recv()  # go: all workers connected
        for seq in range(frames):
            tx.send(wire.Frame(wire.PayloadKind.SYMBOLS, symbols, stream_id=1, seq=seq))
        ctl.send(tx.stats.as_dict())
        ctl.recv()
        tx.close()
    else:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.SNDHWM, 1000)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        endpoint_q.put(f"tcp://127.0.0.1:{port}")
        ctl.recv()
        msg = bytearray(8 + size)
        for seq in range(frames):
            msg[:8] = seq.to_bytes(8, "little")
            sock.send(msg)
        ctl.send({"sent": frames})
        ctl.recv()
        sock.close(linger=-1)
        ctx.term()


def _worker(mode: str, source: str, sink: str, ready, ctl) -> None:
    """Pull messages, check them, forward one acknowledgement each until told to stop."""
    if mode == "bridge":
        rx = Puller(source, bind=False, hwm=1000, timeout_ms=100)
        tx = Pusher(sink, bind=False, hwm=1000, timeout_ms=-1, linger_ms=-1)
        ready.set()
        while not ctl.poll():
            f = rx.recv()
            if f is not None:
                tx.send(wire.Frame(wire.PayloadKind.ACK, b"", stream_id=f.stream_id, seq=f.seq,
                                   timestamp_ns=f.timestamp_ns))
        ctl.send({"received": rx.stats.received, "dropped": dict(rx.stats.dropped)})
        rx.close()
        tx.close()
    else:
        ctx = zmq.Context()
        rx, tx = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
        rx.setsockopt(zmq.RCVTIMEO, 100)
        rx.connect(source)
        tx.connect(sink)
        ready.set()
        n = 0
        while not ctl.poll():
            try:
                msg = rx.recv()
            except zmq.Again:
                continue
            tx.send(msg[:8])
            n += 1
        ctl.send({"received": n, "dropped": {}})
        rx.close(linger=0)
        tx.close(linger=-1)
        ctx.term()


def run_pipeline(mode: str, frames: int, workers: int, size: int, warmup: int,
                 idle_timeout_s: float) -> dict:
    """One soak run (``mode`` = ``bridge`` or ``raw``); the counts, rate and RSS figures."""
    mpc = mp.get_context("spawn")
    ctx = zmq.Context()
    if mode == "bridge":
        col = Puller(hwm=1000, timeout_ms=int(idle_timeout_s * 1000), context=ctx)
        sink = col.endpoint

        def recv_seq() -> int | None:
            f = col.recv()
            return None if f is None else f.seq
    else:
        raw = ctx.socket(zmq.PULL)
        raw.setsockopt(zmq.RCVTIMEO, int(idle_timeout_s * 1000))
        sink = f"tcp://127.0.0.1:{raw.bind_to_random_port('tcp://127.0.0.1')}"

        def recv_seq() -> int | None:
            try:
                return int.from_bytes(raw.recv(), "little")
            except zmq.Again:
                return None

    endpoint_q = mpc.Queue()
    prod_ctl, prod_child = mpc.Pipe()
    producer = mpc.Process(target=_producer, args=(mode, endpoint_q, frames, size, prod_child))
    producer.start()
    source = endpoint_q.get(timeout=60)
    procs, ctls = [], []
    for _ in range(workers):
        ready, (ctl, child) = mpc.Event(), mpc.Pipe()
        p = mpc.Process(target=_worker, args=(mode, source, sink, ready, child))
        p.start()
        if not ready.wait(60):
            raise RuntimeError("a worker did not start within 60 s")
        procs.append(p)
        ctls.append(ctl)
    time.sleep(0.2)  # let every worker's connection complete, so PUSH spreads over all 4
    counts = np.zeros(frames, np.uint8)
    received = out_of_range = 0
    rss_warm: dict[str, int | None] = {}
    prod_ctl.send("go")
    t0 = time.perf_counter()
    t_warm = None
    while received < frames:
        seq = recv_seq()
        if seq is None:
            break  # idle timeout: whatever is missing is lost
        if seq < frames:
            counts[seq] = min(int(counts[seq]) + 1, 255)
        else:
            out_of_range += 1
        received += 1
        if received == warmup:
            t_warm = time.perf_counter()
            rss_warm = {"producer": rss_bytes(producer.pid), "collector": rss_bytes(os.getpid()),
                        **{f"worker{i}": rss_bytes(p.pid) for i, p in enumerate(procs)}}
    t_end = time.perf_counter()
    elapsed = t_end - t0
    rss_end = {"producer": rss_bytes(producer.pid), "collector": rss_bytes(os.getpid()),
               **{f"worker{i}": rss_bytes(p.pid) for i, p in enumerate(procs)}}
    producer_stats = prod_ctl.recv() if prod_ctl.poll(idle_timeout_s) else None
    prod_ctl.send(_STOP)
    worker_stats = []
    for ctl in ctls:
        ctl.send(_STOP)
        worker_stats.append(ctl.recv() if ctl.poll(30) else None)
    for p in [producer, *procs]:
        p.join(30)
        if p.is_alive():
            p.kill()
    dropped: dict[str, int] = {}
    for ws in worker_stats:
        for cause, n in (ws or {}).get("dropped", {}).items():
            dropped[cause] = dropped.get(cause, 0) + n
    if mode == "bridge":
        for cause, n in col.stats.dropped.items():
            dropped[cause] = dropped.get(cause, 0) + n
        col.close()
    else:
        raw.close(linger=0)
    ctx.term()
    growth = {k: (rss_end[k] / v if v and rss_end.get(k) else None) for k, v in rss_warm.items()}
    after = received - warmup
    return {
        "frames": frames,
        "delivered": int(np.count_nonzero(counts)),
        "lost": int(np.count_nonzero(counts == 0)),
        "duplicates": int(counts[counts > 1].sum() - np.count_nonzero(counts > 1)),
        "out_of_range": out_of_range,
        "dropped": dropped,
        "frames_per_s": received / elapsed,
        "frames_per_s_after_warmup": after / (t_end - t_warm) if t_warm and after > 0 else None,
        "elapsed_s": elapsed,
        "per_worker_received": [(ws or {}).get("received") for ws in worker_stats],
        "producer": producer_stats,
        "rss_warmup_bytes": rss_warm,
        "rss_end_bytes": rss_end,
        "rss_growth": growth,
        "rss_max_growth": max((g for g in growth.values() if g), default=None),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the soak and its raw-pyzmq anchor; print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--size", type=int, default=512, help="payload bytes per frame (x8)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="frames before the warm-up RSS reading (default: frames / 10)")
    ap.add_argument("--anchor-frames", type=int, default=None,
                    help="frames of the raw pyzmq anchor (default: min(frames, 200000); 0: skip)")
    ap.add_argument("--idle-timeout", type=float, default=20.0,
                    help="seconds without a frame before the collector gives up")
    args = ap.parse_args(argv)
    if args.frames < 10 or args.workers < 1 or args.size < 8 or args.size % 8:
        ap.error("--frames >= 10, --workers >= 1, --size a positive multiple of 8")
    warmup = args.warmup or max(1, args.frames // 10)
    anchor_frames = min(args.frames, 200_000) if args.anchor_frames is None else args.anchor_frames
    bridge = run_pipeline("bridge", args.frames, args.workers, args.size, warmup,
                          args.idle_timeout)
    result = {
        "benchmark": "soak_bridge",
        "transport": "tcp://127.0.0.1 PUSH/PULL: producer -> workers -> collector, processes",
        "workers": args.workers,
        "payload_bytes": args.size,
        "warmup_frames": warmup,
        "bridge": bridge,
        "zero_loss": bridge["lost"] == 0 and bridge["duplicates"] == 0
        and bridge["out_of_range"] == 0 and not bridge["dropped"],
        "rss_within_10_percent": bridge["rss_max_growth"] is not None
        and bridge["rss_max_growth"] <= 1.10,
    }
    if anchor_frames:
        raw = run_pipeline("raw", anchor_frames, args.workers, args.size,
                           max(1, anchor_frames // 10), args.idle_timeout)
        result["raw_anchor"] = {k: raw[k] for k in ("frames", "lost", "duplicates",
                                                    "frames_per_s", "elapsed_s")}
        result["ratio"] = bridge["frames_per_s"] / raw["frames_per_s"]
    result["versions"] = {"python": platform.python_version(), "numpy": np.__version__,
                          "pyzmq": zmq.__version__, "libzmq": zmq.zmq_version()}
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
