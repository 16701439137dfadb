"""bridge.transport: PUB/SUB and PUSH/PULL on pyzmq, drops, timeouts, shutdown."""

from __future__ import annotations

import doctest
import logging
import time
import zlib

import numpy as np
import pytest
import zmq

from bridge import pmt as bp
from bridge import transport, wire
from bridge.transport import Publisher, Puller, Pusher, Subscriber, check_bind_endpoint
from bridge.wire import Frame, PayloadKind, encode

pytestmark = pytest.mark.both


def frame(seq: int, n: int = 16) -> Frame:
    return Frame(PayloadKind.SYMBOLS, np.full(n, seq, np.complex64), stream_id=1, seq=seq)


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


# ---------------------------------------------------------------- bind policy


@pytest.mark.parametrize(
    "ep",
    [
        "tcp://127.0.0.1:5555",
        "tcp://127.0.0.2:*",
        "tcp://localhost:1",
        "tcp://[::1]:7000",
        "ipc:///tmp/gsc.sock",
        "inproc://x",
    ],
)
def test_loopback_endpoints_allowed(ep):
    check_bind_endpoint(ep)


@pytest.mark.parametrize(
    "ep",
    [
        "tcp://*:5555",
        "tcp://0.0.0.0:5555",
        "tcp://192.168.1.5:1",
        "tcp://eth0:5555",
        "tcp://[::]:1",
        "pgm://eth0;239.1.1.1:5555",
        "udp://127.0.0.1:5",
        "5555",
        "tcp://10.0.0.1",
    ],
)
def test_remote_endpoints_refused(ep):
    with pytest.raises(ValueError, match="allow_remote"):
        check_bind_endpoint(ep)
    with pytest.raises(ValueError, match="needs CurveZMQ.*gsc keys generate"):
        check_bind_endpoint(ep, allow_remote=True)
    check_bind_endpoint(ep, allow_remote=True, secured=True)


def test_constructors_refuse_remote_bind(ctx):
    for cls in (Publisher, Pusher, Puller):
        with pytest.raises(ValueError):
            cls("tcp://*:*", context=ctx)
    with pytest.raises(ValueError):
        Subscriber("tcp://0.0.0.0:*", bind=True, context=ctx)
    for cls in (Publisher, Pusher, Puller):  # allow_remote alone is not enough: CURVE needed
        with pytest.raises(ValueError, match="needs CurveZMQ"):
            cls("tcp://0.0.0.0:*", allow_remote=True, context=ctx)
    # connecting elsewhere is not binding: allowed (nothing listens there)
    with Pusher("tcp://192.0.2.1:5555", bind=False, context=ctx, linger_ms=0) as tx:
        assert tx.endpoint.startswith("tcp://192.0.2.1")


def test_ipv6_loopback_bind(ctx):
    try:
        rx = Puller("tcp://[::1]:*", context=ctx)
    except zmq.ZMQError:
        pytest.skip("no IPv6 loopback on this host")
    with rx, Pusher(rx.endpoint, bind=False, context=ctx) as tx:
        assert tx.send(b"\x00") and rx.recv(timeout_ms=200) is None  # junk dropped, timeout
        assert rx.stats.dropped["truncated"] == 1


def test_default_binds_loopback_free_port(ctx):
    with Puller(context=ctx) as rx:
        assert rx.endpoint.startswith("tcp://127.0.0.1:")
        assert int(rx.endpoint.rsplit(":", 1)[1]) > 0
        assert "open" in repr(rx)


# ---------------------------------------------------------------- PUSH/PULL


def test_push_pull_frames_in_order(ctx):
    with (
        Puller(context=ctx, timeout_ms=2000) as rx,
        Pusher(rx.endpoint, bind=False, context=ctx) as tx,
    ):
        for i in range(200):
            assert tx.send(frame(i))
        got = [rx.recv() for _ in range(200)]
    assert [f.seq for f in got] == list(range(200))
    assert got[-1].payload[0] == 199 and got[-1].kind is PayloadKind.SYMBOLS
    assert tx.stats.sent == 200 and rx.stats.received == 200
    assert rx.stats.dropped_total == 0
    assert rx.stats.bytes_received == 200 * len(encode(frame(0)))
    assert rx.closed and tx.closed


def test_frame_crc_covers_the_payload_only_where_zeromq_does_not(ctx):
    """Local carriers keep bytes intact: the CRC covers the header (HEADER_CRC flag), which
    still catches a damaged header; plain TCP to another host covers the payload too."""
    with (
        Puller(context=ctx, decoder=None, timeout_ms=2000) as rx,
        Pusher(rx.endpoint, bind=False, context=ctx) as tx,
    ):
        assert tx.carrier_intact
        tx.send(frame(7))
        raw = rx.recv()
    assert int.from_bytes(raw[12:14], "little") & wire.FLAG_HEADER_CRC
    assert wire.decode(raw).seq == 7
    bad = bytearray(raw)
    bad[24] ^= 1  # seq
    with pytest.raises(wire.WireError, match="CRC"):
        wire.decode(bytes(bad))
    full = wire.encode(frame(7))  # encode() alone covers the payload
    assert not int.from_bytes(full[12:14], "little") & wire.FLAG_HEADER_CRC
    with Pusher("tcp://192.0.2.1:5555", bind=False, context=ctx, linger_ms=0) as far:
        assert not far.carrier_intact


def test_close_flushes_queued_messages(ctx):
    rx = Puller(context=ctx, timeout_ms=3000)
    tx = Pusher(rx.endpoint, bind=False, context=ctx, linger_ms=3000)
    for i in range(500):
        assert tx.send(frame(i, 1024))
    tx.close()  # lingers until delivered
    tx.close()  # idempotent
    assert [rx.recv().seq for _ in range(500)] == list(range(500))
    rx.close()
    assert rx.recv(timeout_ms=10) is None  # closed: None, no exception
    with pytest.raises(zmq.ZMQError):
        tx.send(b"after close")  # a programming error, not input: it raises


def test_inproc_shared_context(ctx):
    with (
        Puller("inproc://bridge-test", context=ctx) as rx,
        Pusher("inproc://bridge-test", bind=False, context=ctx) as tx,
    ):
        tx.send(Frame.from_json({"cmd": "ping"}))
        assert rx.recv().json() == {"cmd": "ping"}


def test_recv_timeout_returns_none(ctx):
    with Puller(context=ctx, timeout_ms=50) as rx:
        t0 = time.monotonic()
        assert rx.recv() is None
        assert 0.04 <= time.monotonic() - t0 < 1.0
        assert rx.recv(timeout_ms=0) is None
        assert rx.stats.recv_timeouts == 2
        assert list(rx) == []  # iteration ends at the first timeout


def test_send_timeout_without_peer_and_at_hwm(ctx):
    with Pusher(context=ctx, timeout_ms=30) as tx:
        t0 = time.monotonic()
        assert tx.send(b"x") is False
        assert time.monotonic() - t0 < 1.0
        assert tx.stats.send_timeouts == 1 and tx.stats.sent == 0
    with (
        Puller("inproc://hwm", context=ctx, hwm=2) as rx,
        Pusher("inproc://hwm", bind=False, context=ctx, hwm=2, timeout_ms=0, linger_ms=0) as tx,
    ):
        sent = sum(tx.send(frame(i)) for i in range(50))
        assert 2 <= sent <= 10  # both queues full: PUSH refuses instead of blocking
        assert tx.stats.send_timeouts == 50 - sent
        assert sum(rx.recv(timeout_ms=100) is not None for _ in range(sent)) == sent


def test_raw_and_custom_decoders(ctx):
    with (
        Puller(context=ctx, decoder=None) as rx,
        Pusher(rx.endpoint, bind=False, context=ctx) as tx,
    ):
        tx.send(b"\x00\x01")
        tx.send(bytearray(b"ab"))
        tx.send(memoryview(b"cd"))
        assert [rx.recv(), rx.recv(), rx.recv()] == [b"\x00\x01", b"ab", b"cd"]
        with pytest.raises(TypeError):
            tx.send(12345)
    with (
        Puller(context=ctx, decoder=bp.deserialize) as rx,
        Pusher(rx.endpoint, bind=False, context=ctx, encoder=bp.serialize) as tx,
    ):
        tx.send({"k": [1, 2.5]})
        assert rx.recv() == {"k": [1, 2.5]}


# ---------------------------------------------------------------- malformed input


def junk_messages() -> list[tuple[bytes, str]]:
    good = encode(frame(0))
    bad_version = bytearray(good)
    bad_version[8] = 9
    bad_version[4:8] = zlib.crc32(bytes(bad_version[8:])).to_bytes(4, "little")
    flipped = bytearray(good)
    flipped[-1] ^= 0xFF
    return [
        (b"", "truncated"),
        (good[:30], "truncated"),
        (good[:-3], "truncated"),
        (b"NOPE" + good[4:], "magic"),
        (bytes(bad_version), "version"),
        (bytes(flipped), "crc"),
        (good + b"\x00", "length"),
    ]


def test_malformed_messages_are_counted_and_dropped(ctx, caplog):
    caplog.set_level(logging.WARNING, logger="bridge.transport")
    with Puller(context=ctx, timeout_ms=2000) as rx:
        raw = ctx.socket(zmq.PUSH)
        raw.connect(rx.endpoint)
        for msg, _ in junk_messages():
            raw.send(msg)
        raw.send(encode(frame(42)))
        f = rx.recv()
        assert f is not None and f.seq == 42
        expected: dict = {}
        for _, cause in junk_messages():
            expected[cause] = expected.get(cause, 0) + 1
        assert dict(rx.stats.dropped) == expected
        assert rx.stats.received == 1
        assert rx.stats.as_dict()["dropped_total"] == len(junk_messages())
        raw.close(linger=0)
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge.transport"]
    assert len(lines) == len(junk_messages())
    assert any("(crc)" in line for line in lines) and any("(version)" in line for line in lines)


def test_drops_do_not_extend_the_timeout(ctx):
    with Puller(context=ctx, timeout_ms=200) as rx:
        raw = ctx.socket(zmq.PUSH)
        raw.connect(rx.endpoint)
        for _ in range(5):
            raw.send(b"junk")
        t0 = time.monotonic()
        assert rx.recv() is None
        assert time.monotonic() - t0 < 1.0
        assert rx.stats.dropped["truncated"] == 5 and rx.stats.recv_timeouts == 1
        raw.close(linger=0)


def test_log_lines_are_rate_limited(ctx, caplog):
    caplog.set_level(logging.WARNING, logger="bridge.transport")
    with Puller(context=ctx, timeout_ms=1000) as rx:
        raw = ctx.socket(zmq.PUSH)
        raw.connect(rx.endpoint)
        for _ in range(1000):
            raw.send(b"x")
        raw.send(encode(frame(1)))
        assert rx.recv().seq == 1
        raw.close(linger=0)
    assert rx.stats.dropped["truncated"] == 1000
    assert len(caplog.records) == transport._LOG_FIRST + 1  # first 10, then the 1000th


def test_decoder_bugs_are_contained(ctx):
    def buggy(data):
        if data == b"boom":
            raise RuntimeError("decoder bug")
        if data == b"bad":
            raise ValueError("plain ValueError")
        return data

    with Puller(context=ctx, decoder=buggy) as rx:
        raw = ctx.socket(zmq.PUSH)
        raw.connect(rx.endpoint)
        for m in (b"boom", b"bad", b"fine"):
            raw.send(m)
        assert rx.recv() == b"fine"
        assert dict(rx.stats.dropped) == {"decoder_error": 1, "invalid": 1}
        raw.close(linger=0)


def test_multipart_parts_are_separate_messages_unless_keyed(ctx):
    with Puller(context=ctx) as rx:
        raw = ctx.socket(zmq.PUSH)
        raw.connect(rx.endpoint)
        raw.send_multipart([b"key", encode(frame(5))])
        assert rx.recv().seq == 5
        assert dict(rx.stats.dropped) == {"truncated": 1}
        raw.close(linger=0)


# ---------------------------------------------------------------- PUB/SUB


def recv_after_join(pub, sub, make, topic=None, tries=200):
    """Publish until the (slow-joining) subscriber gets something."""
    for i in range(tries):
        pub.send(make(i), topic=topic)
        got = sub.recv(timeout_ms=20)
        if got is not None:
            return got
    raise AssertionError("subscriber never joined")


def test_pub_sub_frames(ctx):
    with Publisher(context=ctx) as pub, Subscriber(pub.endpoint, context=ctx) as sub:
        first = recv_after_join(pub, sub, frame)
        for i in range(first.seq + 1, first.seq + 50):
            pub.send(frame(i))
        seqs = [sub.recv(timeout_ms=1000).seq for _ in range(49)]
        assert seqs == list(range(first.seq + 1, first.seq + 50))
        assert sub.stats.received == 50 and sub.stats.dropped_total == 0


def test_pub_sub_keyed_topics(ctx):
    with (
        Publisher(context=ctx) as pub,
        Subscriber(pub.endpoint, topics=[b"rx0"], keyed=True, context=ctx) as sub,
    ):
        got = recv_after_join(pub, sub, frame, topic=b"rx0")
        assert sub.last_topic == b"rx0" and isinstance(got, Frame)
        pub.send(frame(1), topic=b"rx1")  # filtered out by ZeroMQ
        pub.send(frame(2), topic=b"rx0")
        assert sub.recv(timeout_ms=1000).seq == 2
        pub.send(b"single part", topic=None)  # not a [key, message] pair -> not delivered
        assert sub.recv(timeout_ms=50) is None


def test_keyed_subscriber_drops_wrong_part_count(ctx):
    with Subscriber("inproc://keyed", bind=True, keyed=True, context=ctx) as sub:
        raw = ctx.socket(zmq.PUB)
        raw.connect("inproc://keyed")
        for _ in range(100):  # let the subscription propagate
            raw.send_multipart([b"a", b"b", b"c"])
            raw.send_multipart([b"k", encode(frame(3))])
            got = sub.recv(timeout_ms=10)
            if got is not None:
                break
        assert got.seq == 3 and sub.stats.dropped["multipart"] >= 1
        raw.close(linger=0)


def test_subscriber_string_topics_and_pub_drops_without_subscribers(ctx):
    with Publisher(context=ctx) as pub:
        assert all(pub.send(frame(i)) for i in range(10))  # nobody listens: no blocking
        with Subscriber(pub.endpoint, topics=["GSCW"], context=ctx) as sub:
            assert recv_after_join(pub, sub, frame).kind is PayloadKind.SYMBOLS


def test_doctests():
    assert doctest.testmod(transport).failed == 0


# ---------------------------------------------------------------- properties

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    given = None

if given is not None:

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.binary(max_size=80), max_size=5), st.integers(0, 2**64 - 1))
    def test_receiver_survives_any_bytes(junk, seq):
        c = zmq.Context()
        try:
            with (
                Puller("inproc://fuzz", context=c, timeout_ms=1000) as rx,
                Pusher("inproc://fuzz", bind=False, context=c) as tx,
            ):
                for j in junk:
                    tx.send(j)
                tx.send(Frame(PayloadKind.ACK, b"", seq=seq))
                f = rx.recv()
                assert f is not None and f.seq == seq
                assert rx.stats.dropped_total == len(junk)
        finally:
            c.destroy(linger=0)

else:

    def test_properties():
        pytest.skip("hypothesis is not installed")
