"""Bridge throughput and latency next to raw pyzmq, measured in the same run; prints JSON.

Throughput: a sender process pushes ``--count`` messages of ``--size`` payload bytes over
``tcp://127.0.0.1`` PUSH/PULL to this process. *raw* sends a prebuilt bytes object with
pyzmq; *bridge* builds a :class:`bridge.wire.Frame` per message (complex64 symbols, new
sequence number), sends it with :class:`bridge.transport.Pusher` (encode + CRC-32) and
receives with :class:`bridge.transport.Puller` (CRC check, decode to a numpy view). On this
loopback carrier the transports use the ``HEADER_CRC`` frame form (CRC over header and shape;
ZeroMQ keeps the payload intact); ``codec_us`` has both forms. Trials
alternate raw/bridge; the medians are compared (``ratio`` = bridge / raw, target >= 0.9).
``*_cpu_us_per_msg`` is the CPU time of both processes (all their threads) per message: on a
host with few free cores throughput is CPU-bound and the ratio follows the CPU ratio.
``codec_us`` times the bridge's steps alone (best of 5).

Latency: one message in flight at a time, send and receive in one thread; the added latency
is bridge minus raw at each percentile (target p99 < 2 ms), plus the encode+decode time
alone.

Run: ``python benchmarks/bench_bridge.py [--count 50000] [--trials 7]`` (either interpreter).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
import zlib

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bridge import wire  # noqa: E402
from bridge.transport import Puller, Pusher  # noqa: E402


def _symbols(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    nsym = size // 8
    return (rng.standard_normal(nsym) + 1j * rng.standard_normal(nsym)).astype(np.complex64)


def _sender(mode: str, endpoint: str, count: int, size: int, seed: int, conn) -> None:
    """Send ``count`` messages; report (process CPU seconds, wall seconds) of the loop."""
    symbols = _symbols(size, seed)
    if mode == "raw":
        ctx = zmq.Context()
        sock = ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.connect(endpoint)
        data = symbols.tobytes()
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(count):
            sock.send(data)
        sock.close(linger=-1)
        ctx.term()
    else:
        tx = Pusher(endpoint, bind=False, hwm=1000, timeout_ms=-1, linger_ms=-1)
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(count):
            tx.send(wire.Frame(wire.PayloadKind.SYMBOLS, symbols, stream_id=1, seq=i))
        tx.close()
    conn.send((time.process_time() - c0, time.perf_counter() - t0))
    conn.close()


def _throughput(mode: str, count: int, size: int, seed: int) -> dict:
    """Messages per second received by this process, and CPU microseconds per message."""
    ctx = zmq.Context()
    if mode == "raw":
        sock = ctx.socket(zmq.PULL)
        sock.setsockopt(zmq.RCVHWM, 1000)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        endpoint = f"tcp://127.0.0.1:{port}"
        sock.setsockopt(zmq.RCVTIMEO, 30000)  # zmq.Again rather than a hang if the sender dies
        recv = sock.recv
    else:
        rx = Puller(hwm=1000, timeout_ms=30000, context=ctx)
        endpoint = rx.endpoint

        def recv():
            frame = rx.recv()
            if frame is None:
                raise RuntimeError("bridge sender stalled for 30 s")
            return frame

    mpc = mp.get_context("spawn")
    parent, child = mpc.Pipe()
    proc = mpc.Process(target=_sender, args=(mode, endpoint, count, size, seed, child))
    proc.start()
    first = recv()  # start the clock at the first message: excludes process start-up
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(count - 1):
        msg = recv()
    dt = time.perf_counter() - t0
    rx_cpu = time.process_time() - c0
    tx_cpu, _ = parent.recv()
    proc.join()
    if mode == "raw":
        assert len(first) == len(msg) == size
        sock.close(linger=0)
    else:
        assert msg.seq == count - 1 and msg.payload.nbytes == size, "lost or reordered"
        assert rx.stats.dropped_total == 0 and rx.stats.received == count
        rx.close()
    ctx.term()
    return {"msgs_per_s": (count - 1) / dt, "cpu_us_per_msg": (tx_cpu + rx_cpu) / count * 1e6}


def _latency(count: int, size: int, seed: int) -> dict:
    """Per-message one-way latencies (microseconds) through loopback TCP, one in flight."""
    ctx = zmq.Context()
    symbols = _symbols(size, seed)
    data = symbols.tobytes()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    rx = Puller(context=ctx, timeout_ms=5000)
    tx = Pusher(rx.endpoint, bind=False, context=ctx, timeout_ms=5000)
    raw_us, bridge_us, codec_us = [], [], []
    for i in range(count + 200):  # 200 warm-up rounds
        t0 = time.perf_counter()
        push.send(data)
        pull.recv()
        t1 = time.perf_counter()
        tx.send(wire.Frame(wire.PayloadKind.SYMBOLS, symbols, seq=i))
        f = rx.recv()
        t2 = time.perf_counter()
        wire.decode(wire.encode(wire.Frame(wire.PayloadKind.SYMBOLS, symbols, seq=i)))
        t3 = time.perf_counter()
        assert f is not None and f.seq == i
        if i >= 200:
            raw_us.append((t1 - t0) * 1e6)
            bridge_us.append((t2 - t1) * 1e6)
            codec_us.append((t3 - t2) * 1e6)
    for s in (push, pull):
        s.close(linger=0)
    tx.close(0)
    rx.close(0)
    ctx.term()
    out = {}
    for name, xs in (("raw_us", raw_us), ("bridge_us", bridge_us), ("codec_us", codec_us)):
        out[name] = {p: float(np.percentile(xs, q)) for p, q in (("p50", 50), ("p99", 99))}
    out["added_us"] = {p: out["bridge_us"][p] - out["raw_us"][p] for p in ("p50", "p99")}
    return out


def _codec_costs(size: int, seed: int, number: int = 20000) -> dict:
    """Best-of-5 CPU cost (microseconds) of the bridge's per-message steps, in-process."""
    import timeit

    symbols = _symbols(size, seed)
    frame = wire.Frame(wire.PayloadKind.SYMBOLS, symbols, seq=1)
    msg = wire.encode(frame)
    msg_h = wire.encode(frame, payload_crc=False)
    env = {"wire": wire, "symbols": symbols, "frame": frame, "msg": msg, "msg_h": msg_h,
           "zlib": zlib}
    stmts = {
        "frame": "wire.Frame(wire.PayloadKind.SYMBOLS, symbols, seq=1)",
        "encode": "wire.encode(frame)",
        "decode": "wire.decode(msg)",
        "encode_header_crc": "wire.encode(frame, payload_crc=False)",
        "decode_header_crc": "wire.decode(msg_h)",
        "crc32": "zlib.crc32(msg)",
    }
    return {
        k: min(timeit.repeat(v, globals=env, number=number, repeat=5)) / number * 1e6
        for k, v in stmts.items()
    }


def main(argv: list[str] | None = None) -> dict:
    """Run both measurements and print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50000, help="messages per throughput trial")
    ap.add_argument("--size", type=int, default=8192, help="payload bytes per message")
    ap.add_argument("--trials", type=int, default=7, help="trials per mode (alternating)")
    ap.add_argument("--latency-count", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    trials: dict[str, list[dict]] = {"raw": [], "bridge": []}
    for _ in range(args.trials):
        for mode in ("raw", "bridge"):
            trials[mode].append(_throughput(mode, args.count, args.size, args.seed))

    def med(mode: str, key: str) -> float:
        return statistics.median(t[key] for t in trials[mode])

    raw_rate, bridge_rate = med("raw", "msgs_per_s"), med("bridge", "msgs_per_s")
    paired = [
        b["msgs_per_s"] / r["msgs_per_s"]
        for r, b in zip(trials["raw"], trials["bridge"], strict=True)
    ]
    lat = _latency(args.latency_count, args.size, args.seed)
    codec = _codec_costs(args.size, args.seed)
    result = {
        "benchmark": "bridge",
        "transport": "tcp://127.0.0.1 PUSH/PULL, sender in a second process",
        "payload_bytes": args.size,
        "wire_bytes": args.size + wire.HEADER_SIZE + 8,
        "count": args.count,
        "trials": args.trials,
        "seed": args.seed,
        "throughput": {
            "raw_msgs_per_s": raw_rate,
            "bridge_msgs_per_s": bridge_rate,
            "raw_MB_per_s": raw_rate * args.size / 1e6,
            "bridge_MB_per_s": bridge_rate * args.size / 1e6,
            "ratio": bridge_rate / raw_rate,
            "ratio_paired_median": statistics.median(paired),
            "target_ratio": 0.9,
            "raw_cpu_us_per_msg": med("raw", "cpu_us_per_msg"),
            "bridge_cpu_us_per_msg": med("bridge", "cpu_us_per_msg"),
            "raw_trials_msgs_per_s": [t["msgs_per_s"] for t in trials["raw"]],
            "bridge_trials_msgs_per_s": [t["msgs_per_s"] for t in trials["bridge"]],
        },
        "codec_us": codec,
        "latency": {**lat, "count": args.latency_count, "target_added_p99_us": 2000.0},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pyzmq": zmq.__version__,
            "libzmq": zmq.zmq_version(),
        },
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
