"""bridge.reliable: credit, acks, resend after a consumer dies, spool, overflow, duplicates.

Consumers run as separate processes (this interpreter) so they can be SIGKILLed mid-stream.
"""

from __future__ import annotations

import doctest
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bridge import reliable
from bridge.reliable import ReliableConsumer, ReliableQueue, SeenFilter
from bridge.transport import Puller
from bridge.wire import Frame, PayloadKind

pytestmark = pytest.mark.both

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A consumer process: takes frames, "works" delay_s on each, sends a result (stream, seq,
# payload sum) to the results endpoint, then acks. Prints "up" once connected.
CONSUMER = """
import sys, time
from bridge.reliable import ReliableConsumer
from bridge.transport import Pusher
from bridge.wire import Frame, PayloadKind
ep, res_ep, name, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
c = ReliableConsumer(ep, name=name, credit=4, heartbeat_s=0.1)
out = Pusher(res_ep, bind=False, timeout_ms=5000)
print("up", flush=True)
while True:
    f = c.get(timeout_s=0.5)
    if f is None:
        continue
    time.sleep(delay)
    out.send(Frame.from_json({"stream": f.stream_id, "seq": f.seq, "sum": int(f.payload.sum()),
                              "name": name}))
    c.ack(f)
"""


def _frame(seq: int, stream: int = 7) -> Frame:
    return Frame(PayloadKind.SYMBOLS, np.full(8, seq, np.int32), stream_id=stream, seq=seq)


def _start(ep: str, res_ep: str, name: str, delay_s: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.Popen([sys.executable, "-c", CONSUMER, ep, res_ep, name, str(delay_s)],
                         stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert p.stdout.readline().strip() == "up"
    return p


def _collect(results: Puller, want: int, seen: SeenFilter, deadline_s: float = 60.0) -> dict:
    got: dict[int, dict] = {}
    t0 = time.monotonic()
    while len(got) < want and time.monotonic() - t0 < deadline_s:
        m = results.recv(timeout_ms=200)
        if m is None:
            continue
        r = m.json()
        if not seen.check(r["stream"], r["seq"]):
            got[r["seq"]] = r
    return got


@pytest.fixture
def endpoints(tmp_path):
    return f"ipc://{tmp_path}/q.sock", f"ipc://{tmp_path}/res.sock"


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        p.stdout.close()


def test_doctests():
    assert doctest.testmod(reliable).failed == 0


def test_seen_filter_bounded_memory():
    s = SeenFilter(max_tracked=4)
    assert not any(s.check(0, q) for q in (10, 12, 14, 16, 18))  # gaps: floor moves up
    assert s.check(0, 3) and s.check(0, 10)  # below the floor now
    assert not s.check(1, 10)  # streams are apart
    assert s.duplicates == 2


def test_consumer_sigkilled_and_restarted_loses_nothing(endpoints):
    ep, res_ep = endpoints
    n = 120
    q = ReliableQueue(ep, queue_max=n, heartbeat_timeout_s=2.0).start()
    seen = SeenFilter()
    procs = []
    with Puller(res_ep, timeout_ms=200, hwm=10000) as results:
        try:
            procs.append(_start(ep, res_ep, "w0", 0.01))
            for s in range(n):
                assert q.put(_frame(s))
            got = _collect(results, 30, seen)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait(10)
            procs.append(_start(ep, res_ep, "w0", 0.0))  # same name: resend at once
            got |= _collect(results, n - len(got), seen)
        finally:
            stats = q.drain(timeout_s=30)
            _stop(procs)
    assert sorted(got) == list(range(n))
    assert all(r["sum"] == 8 * s for s, r in got.items())
    assert stats["put"] == n and stats["acked"] == n
    assert stats["requeued"] >= 1 and stats["consumers_dead"] >= 1
    assert stats.get("decoder_absent", 0) == 0 and stats.get("queue_overflow", 0) == 0
    # a frame whose result went out before the kill but whose ack did not is resent:
    # the filter suppressed it (and the total over all results is n + duplicates)
    assert len(got) == n


def test_one_of_two_consumers_dies(endpoints):
    ep, res_ep = endpoints
    n = 80
    q = ReliableQueue(ep, queue_max=n, heartbeat_timeout_s=1.0).start()
    seen = SeenFilter()
    procs = []
    with Puller(res_ep, timeout_ms=200, hwm=10000) as results:
        try:
            procs = [_start(ep, res_ep, "a", 0.02), _start(ep, res_ep, "b", 0.02)]
            for s in range(n):
                q.put(_frame(s))
            got = _collect(results, 20, seen)
            procs[0].send_signal(signal.SIGKILL)  # "a" holds up to 4 frames in flight
            got |= _collect(results, n - len(got), seen)
        finally:
            stats = q.drain(timeout_s=30)
            _stop(procs)
    assert sorted(got) == list(range(n))
    assert {r["name"] for r in got.values()} == {"a", "b"}
    assert stats["acked"] == n and stats["consumers_dead"] == 1


def test_overflow_and_spool_are_counted(tmp_path):
    ep = f"ipc://{tmp_path}/q.sock"
    # no consumer: 3 in memory, 4 in the spool, the other 3 overflow
    q = ReliableQueue(ep, queue_max=3, spool_dir=str(tmp_path / "spool"), spool_max=4).start()
    accepted = [q.put(_frame(s)) for s in range(10)]
    assert accepted == [True] * 7 + [False] * 3
    st = q.stats()
    assert st["queue_overflow"] == 3 and st["spooled"] == 4 and st["waiting"] == 7
    assert len(os.listdir(tmp_path / "spool")) == 4
    q.close()
    # a new producer on the same spool picks the spooled frames up again, in order
    q2 = ReliableQueue(ep, queue_max=8, spool_dir=str(tmp_path / "spool"), spool_max=4).start()
    with ReliableConsumer(ep, name="c", credit=8) as c:
        got = []
        while len(got) < 4:
            f = c.get(timeout_s=10)
            assert f is not None
            got.append(f.seq)
            c.ack(f)
        stats = q2.drain(timeout_s=10)
    assert got == [3, 4, 5, 6]
    assert stats["acked"] == 4 and stats.get("decoder_absent", 0) == 0


def test_no_consumer_counts_decoder_absent(tmp_path):
    q = ReliableQueue(f"ipc://{tmp_path}/q.sock", queue_max=16).start()
    for s in range(5):
        q.put(_frame(s))
    t0 = time.monotonic()
    stats = q.drain(timeout_s=30, absent_s=0.3)
    assert stats["decoder_absent"] == 5 and stats["waiting"] == 0
    assert time.monotonic() - t0 < 25  # gave up for lack of consumers, not at the timeout


def test_credit_bounds_frames_in_flight(tmp_path):
    ep = f"ipc://{tmp_path}/q.sock"
    q = ReliableQueue(ep, queue_max=32).start()
    with ReliableConsumer(ep, name="slow", credit=3) as c:
        for s in range(10):
            q.put(_frame(s))
        held = []
        f = c.get(timeout_s=10)
        while f is not None:
            held.append(f)
            f = c.get(timeout_s=0.5)
        assert [h.seq for h in held] == [0, 1, 2]  # nothing more without an ack
        assert q.stats()["in_flight"] == 3
        c.ack(*held)
        rest = [c.get(timeout_s=10) for _ in range(3)]
        assert [r.seq for r in rest] == [3, 4, 5]
        c.ack(*rest)
        for _ in range(4):
            c.ack(c.get(timeout_s=10))
        stats = q.drain(timeout_s=10)
    assert stats["acked"] == 10 and stats["sent"] == 10


def test_malformed_and_bind_policy(tmp_path):
    import zmq

    with pytest.raises(ValueError, match="non-loopback"):
        ReliableQueue("tcp://0.0.0.0:5999")
    ep = f"ipc://{tmp_path}/q.sock"
    q = ReliableQueue(ep).start()
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.connect(ep)
    s.send(b"junk")
    s.send(b"")
    t0 = time.monotonic()
    while q.stats().get("malformed", 0) < 2 and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    s.close(linger=0)
    assert q.stats()["malformed"] == 2
    q.close()
