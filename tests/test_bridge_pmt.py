"""bridge.pmt: PMT serialisation and gr-zeromq tag headers without GNU Radio.

Golden bytes below were produced by GNU Radio 3.10.5 (``pmt.serialize_str`` and a
``zeromq.push_sink`` with ``pass_tags``); the ``radio`` tests re-check them against the
installed ``pmt`` module and run small gr-zeromq flowgraphs against the bridge.
"""

from __future__ import annotations

import doctest
import socket
import time

import numpy as np
import pytest

from bridge import pmt as bp
from bridge.pmt import Pair, PmtError, Tag, UInt64, deserialize, serialize
from bridge.wire import WireError

pytestmark = pytest.mark.both

# (python value, hex of GNU Radio 3.10.5 pmt.serialize_str of the same PMT)
GOLDEN = [
    (True, "00"),
    (False, "01"),
    (None, "06"),
    (5, "0300000005"),
    (-(2**40), "0dffffff0000000000"),
    (UInt64(7), "0b0000000000000007"),
    (1.5, "043ff8000000000000"),
    (1 + 2j, "053ff00000000000004000000000000000"),
    ("ab", "0200026162"),
    (Pair(1, "x"), "0703000000010200 0178"),
    ({"b": 2.0, "a": 1}, "0907020001620440000000000000000907020001610300000001 06"),
    ((1, "z"), "0c00000002030000000102 00017a"),
    ((), "0c00000000"),
    ([3, None], "08000000020300000003 06"),
    (bp.make_list([1, 2]), "07030000000107 0300000002 06"),
    (np.array([1, 2, 255], np.uint8), "0a00000000030100 0102ff"),
    (np.array([-1, 2], np.int8), "0a01000000020100 ff02"),
    (np.array([1, 0x102], np.uint16), "0a02000000020100 00010102"),
    (np.array([-2, 0x1020304], np.int32), "0a05000000020100 fffffffe01020304"),
    (np.array([0x0102030405060708], np.uint64), "0a06000000010100 0102030405060708"),
    (np.array([1.0, -2.5], np.float32), "0a08000000020100 3f800000c0200000"),
    (np.array([1.0], np.float64), "0a09000000010100 3ff0000000000000"),
    (np.array([1 + 2j], np.complex64), "0a0a000000010100 3f80000040000000"),
    (np.array([1 + 2j], np.complex128), "0a0b000000010100 3ff00000000000004000000000000000"),
    (np.zeros(0, np.uint8), "0a00000000000100"),
    (Pair(None, np.array([1, 2], np.uint8)), "0706 0a00000000020100 0102"),
]
GOLDEN = [(v, bytes.fromhex(h.replace(" ", ""))) for v, h in GOLDEN]

# zeromq.push_sink(sizeof_short, pass_tags=True) fed 0..9 with tags
# (2, k, 7, src) and (5, rx_time, (uint64 3, 0.5), False)
GR_TAGGED = bytes.fromhex(
    "f05f01000000000000000002000000000000000200000000000000020001"
    "6b0300000007020003737263050000000000000002000772785f74696d65"
    "0c000000020b0000000000000003043fe000000000000001"
    "0000010002000300040005000600070008000900"
)


def same(a, b) -> bool:
    """Structural equality that understands numpy arrays, UInt64 and bool-vs-int."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.all(a == b))
        )
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int) and isinstance(b, int):  # int / UInt64
        return int(a) == int(b)
    if isinstance(a, Pair) and isinstance(b, Pair):
        return same(a.car, b.car) and same(a.cdr, b.cdr)
    if isinstance(a, (list, tuple)) and type(a) is type(b):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- golden bytes


@pytest.mark.parametrize("value,raw", GOLDEN, ids=[repr(v)[:30] for v, _ in GOLDEN])
def test_serialize_matches_gnuradio_bytes(value, raw):
    assert serialize(value) == raw


@pytest.mark.parametrize("value,raw", GOLDEN, ids=[repr(v)[:30] for v, _ in GOLDEN])
def test_deserialize_gnuradio_bytes(value, raw):
    assert same(deserialize(raw), value)


def test_python_conveniences():
    assert serialize(b"\x01\x02") == serialize(np.array([1, 2], np.uint8))
    assert serialize(np.int16(3)) == serialize(3)
    assert serialize(np.float32(0.5)) == serialize(0.5)
    assert serialize(np.complex64(1j)) == serialize(1j)
    assert serialize(np.bool_(True)) == b"\x00" and serialize(np.bool_(False)) == b"\x01"
    assert serialize({}) == b"\x06"  # GNU Radio's empty dict is NIL
    assert serialize(2**31) == bytes.fromhex("0d0000000080000000")
    assert serialize(2**63) == bytes.fromhex("0b8000000000000000")
    assert isinstance(deserialize(serialize(UInt64(1))), UInt64)
    assert repr(UInt64(3)) == "UInt64(3)"
    big_endian = np.array([1.0, 2.0], ">f8")
    assert serialize(big_endian) == serialize(big_endian.astype("<f8"))
    out = deserialize(serialize(np.array([1, 2], np.uint16)))
    assert out.dtype == np.dtype("uint16") and out.flags.writeable


def test_symbols_keep_non_utf8_bytes():
    raw = b"\x02\x00\x02\xff\xfe"
    assert serialize(deserialize(raw)) == raw
    assert deserialize(serialize("é")) == "é"


def test_lists_and_pdus():
    lst = bp.make_list(["a", 1, None])
    assert bp.list_items(lst) == ["a", 1, None]
    assert bp.list_items(None) == []
    with pytest.raises(PmtError):
        bp.list_items(Pair(1, 2))
    long = bp.make_list(range(5000))  # spines are iterative: no recursion limit
    assert bp.list_items(deserialize(serialize(long))) == list(range(5000))
    pdu = bp.make_pdu({"packet_len": 4}, np.array([1, 2, 3, 4], np.uint8))
    meta, data = bp.parse_pdu(deserialize(serialize(pdu)))
    assert meta == {"packet_len": 4} and data.tolist() == [1, 2, 3, 4]
    with pytest.raises(PmtError):
        bp.parse_pdu(5)
    with pytest.raises(PmtError):
        bp.parse_pdu(Pair(5, np.zeros(1, np.uint8)))
    with pytest.raises(PmtError):
        bp.make_pdu(None, np.zeros((2, 2), np.uint8))


def test_dict_order_and_duplicates():
    d = {"z": 1, "a": [1.0, "x"], 3: (1, 2), (1, "t"): None}
    assert list(deserialize(serialize(d))) == ["z", "a", 3, (1, "t")]
    dup = bytes.fromhex("0907020001610300000001090702000161030000000206")
    assert deserialize(dup) == {"a": 1}  # first entry wins, as pmt::dict_ref


@pytest.mark.parametrize(
    "value",
    [
        object(),
        np.zeros((2, 2)),
        np.array([True]),
        np.zeros(2, np.float16),
        2**64,
        -(2**63) - 1,
        UInt64(-1),
        "x" * 70000,
        {1: object()},
    ],
)
def test_serialize_rejects(value):
    with pytest.raises(PmtError):
        serialize(value)


def test_serialize_depth_limit():
    deep: list = []
    for _ in range(bp.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(PmtError) as e:
        serialize(deep)
    assert e.value.cause == "depth"


# ---------------------------------------------------------------- rejections


def pmt_cause(raw) -> str:
    with pytest.raises(PmtError) as e:
        deserialize(raw)
    assert isinstance(e.value, WireError) and isinstance(e.value, ValueError)
    return e.value.cause


def test_every_truncation_rejected():
    for value, raw in GOLDEN:
        for n in range(len(raw)):
            assert pmt_cause(raw[:n]) == "truncated", (value, n)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("0600", "length"),  # trailing bytes
        ("0e", "pmt_type"),  # unknown tag
        ("3b", "pmt_type"),  # comment: unsupported
        ("0a0c00000000000100", "pmt_type"),  # unknown uniform vector type
        ("0a8000000000000100", "pmt_type"),  # big-endian flag is not produced by GNU Radio
        ("09030000000106", "pmt_type"),  # dict entry not a pair
        ("090703000000010300000002", "truncated"),
        ("0907030000000103000000020300000001", "pmt_type"),  # dict does not end in NIL
        ("09070800000000030000000106", "pmt_type"),  # unhashable key
        ("08ffffffff06", "truncated"),  # huge vector claim, no allocation
        ("0c7fffffff", "truncated"),
        ("0a0bffffffff0100", "truncated"),  # huge uniform vector
        ("0a00000000010500", "truncated"),  # padding longer than the buffer
        ("02ffff61", "truncated"),
    ],
)
def test_deserialize_rejects(raw, expected):
    assert pmt_cause(bytes.fromhex(raw)) == expected


def test_deserialize_depth_limit():
    raw = bytes.fromhex("0800000001") * (bp.MAX_DEPTH + 5) + b"\x06"
    assert pmt_cause(raw) == "depth"
    assert pmt_cause(object()) == "type"
    with pytest.raises(PmtError):
        bp.deserialize_prefix(b"\x06", 5)


def test_deserialize_prefix_walks_a_buffer():
    raw = serialize("k") + serialize(7) + serialize(None)
    out, pos = [], 0
    while pos < len(raw):
        value, pos = bp.deserialize_prefix(raw, pos)
        out.append(value)
    assert out == ["k", 7, None]


# ---------------------------------------------------------------- tag headers


def test_parse_gnuradio_tag_header():
    m = bp.parse_tagged(GR_TAGGED)
    assert m.offset == 0
    assert m.tags == (Tag(2, "k", 7, "src"), Tag(5, "rx_time", (UInt64(3), 0.5), False))
    assert m.items(np.int16).tolist() == list(range(10))
    assert bp.build_tagged(m.offset, m.tags, m.payload) == GR_TAGGED


def test_build_tagged_round_trip():
    items = np.arange(4, dtype=np.complex64)
    tags = [Tag(100, "packet_len", 4, "me"), Tag(102, "snr_db", 3.5)]
    msg = bp.build_tagged(100, tags, items)
    m = bp.parse_tagged(msg)
    assert m.offset == 100 and list(m.tags) == tags
    np.testing.assert_array_equal(m.items(np.complex64), items)
    assert bp.build_tagged(0, [], items.astype(">c8")) == bp.build_tagged(0, [], items)
    with pytest.raises(PmtError):
        bp.TaggedMessage(0, (), b"\x00" * 5).items(np.int16)
    with pytest.raises(PmtError):
        bp.build_tagged(-1, [], b"")
    with pytest.raises(PmtError):
        bp.build_tagged(0, [Tag(2**64, "k", 1)], b"")


def tag_cause(raw) -> str:
    with pytest.raises(PmtError) as e:
        bp.parse_tagged(raw)
    return e.value.cause


def test_tag_header_rejections():
    header_end = len(GR_TAGGED) - 20  # 10 int16 items follow the header
    for n in range(header_end):
        assert tag_cause(GR_TAGGED[:n]) == "truncated", n
    assert tag_cause(b"\xf1" + GR_TAGGED[1:]) == "magic"
    assert tag_cause(GR_TAGGED[:2] + b"\x02" + GR_TAGGED[3:]) == "version"
    too_many = GR_TAGGED[:11] + (2**40).to_bytes(8, "little") + GR_TAGGED[19:]
    assert tag_cause(too_many) == "truncated"
    bad_pmt = GR_TAGGED[:27] + b"\x0e" + GR_TAGGED[28:]
    assert tag_cause(bad_pmt) == "pmt_type"


def test_doctests():
    assert doctest.testmod(bp).failed == 0


# ---------------------------------------------------------------- properties

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    given = None

if given is not None:
    FAST = settings(max_examples=60, deadline=None)
    UV_DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "c8", "c16"]
    leaves = st.one_of(
        st.booleans(),
        st.none(),
        st.integers(-(2**63), 2**64 - 1),
        st.integers(0, 2**64 - 1).map(UInt64),
        st.floats(allow_nan=False),
        st.complex_numbers(allow_nan=False),
        st.text(max_size=20),
        st.sampled_from(UV_DTYPES).flatmap(
            lambda dt: hnp.arrays(
                dt, st.integers(0, 6), elements=None if dt[0] in "ui" else {"allow_nan": False}
            )
        ),
    )

    def containers(children, nonempty_tuples=False):
        return st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, min_size=1 if nonempty_tuples else 0, max_size=4).map(tuple),
            st.dictionaries(st.text(max_size=5), children, min_size=1, max_size=3),
            st.builds(Pair, children, children),
        )

    PMTS = st.recursive(leaves, containers, max_leaves=12)
    # GNU Radio 3.10.5 serialises an empty tuple but fails to deserialise one.
    GR_PMTS = st.recursive(leaves, lambda c: containers(c, nonempty_tuples=True), max_leaves=12)

    @FAST
    @given(PMTS)
    def test_round_trip_property(value):
        raw = serialize(value)
        back = deserialize(raw)
        assert same(back, value)
        assert serialize(back) == raw

    @FAST
    @given(st.binary(max_size=120))
    def test_random_bytes_only_raise_pmt_error(data):
        for parse in (deserialize, bp.parse_tagged):
            try:
                parse(data)
            except PmtError:
                pass

    @FAST
    @given(st.binary(min_size=1, max_size=16), st.integers(0, 120))
    def test_corrupted_tag_headers_only_raise_pmt_error(junk, at):
        at = min(at, len(GR_TAGGED))
        for buf in (GR_TAGGED[:at] + junk, GR_TAGGED[:at] + junk + GR_TAGGED[at + len(junk) :]):
            try:
                bp.parse_tagged(buf)
            except PmtError:
                pass

else:

    def test_properties():
        pytest.skip("hypothesis is not installed")


# ---------------------------------------------------------------- against GNU Radio


@pytest.fixture
def gr_pmt():
    return pytest.importorskip("pmt", reason="GNU Radio's pmt module is not importable")


def to_gr(value, pmt):
    """Build the GNU Radio PMT for a Python value of the bridge mapping."""
    if isinstance(value, (bool, np.bool_)):
        return pmt.PMT_T if value else pmt.PMT_F
    if value is None:
        return pmt.PMT_NIL
    if isinstance(value, UInt64) or isinstance(value, int) and value >= 2**63:
        return pmt.from_uint64(int(value))
    if isinstance(value, int):
        return pmt.from_long(value)
    if isinstance(value, float):
        return pmt.from_double(value)
    if isinstance(value, complex):
        return pmt.from_complex(value)
    if isinstance(value, str):
        return pmt.intern(value)
    if isinstance(value, Pair):
        return pmt.cons(to_gr(value.car, pmt), to_gr(value.cdr, pmt))
    if isinstance(value, list):
        vec = pmt.make_vector(len(value), pmt.PMT_NIL)
        for i, item in enumerate(value):
            pmt.vector_set(vec, i, to_gr(item, pmt))
        return vec
    if isinstance(value, tuple):
        return pmt.make_tuple(*[to_gr(item, pmt) for item in value])
    if isinstance(value, dict):
        d = pmt.make_dict()
        for k in reversed(list(value)):  # dict_add prepends new keys
            d = pmt.dict_add(d, to_gr(k, pmt), to_gr(value[k], pmt))
        return d
    if isinstance(value, np.ndarray):
        init = {
            "u1": pmt.init_u8vector,
            "i1": pmt.init_s8vector,
            "u2": pmt.init_u16vector,
            "i2": pmt.init_s16vector,
            "u4": pmt.init_u32vector,
            "i4": pmt.init_s32vector,
            "u8": pmt.init_u64vector,
            "i8": pmt.init_s64vector,
            "f4": pmt.init_f32vector,
            "f8": pmt.init_f64vector,
            "c8": pmt.init_c32vector,
            "c16": pmt.init_c64vector,
        }[value.dtype.kind + str(value.dtype.itemsize)]
        return init(len(value), value.tolist())
    raise TypeError(value)


@pytest.mark.radio
@pytest.mark.parametrize("value,raw", GOLDEN, ids=[repr(v)[:30] for v, _ in GOLDEN])
def test_golden_bytes_are_gnuradio_bytes(gr_pmt, value, raw):
    assert gr_pmt.serialize_str(to_gr(value, gr_pmt)) == raw
    if raw != serialize(()):  # GNU Radio 3.10.5 cannot deserialise an empty tuple
        assert gr_pmt.serialize_str(gr_pmt.deserialize_str(raw)) == raw


@pytest.mark.radio
def test_nested_values_match_gnuradio(gr_pmt):
    values = [
        {"freq_hz": 2.4e9, "gain": 30, "ant": "RX2", "flags": [True, None, (1, 2.5)]},
        Pair({"packet_len": 3}, np.array([1, 2, 3], np.uint8)),
        bp.make_list([Pair("a", 1), Pair("b", UInt64(2))]),
        (np.array([1 - 1j], np.complex64), -(2**31), 2**31 - 1, -(2**31) - 1),
        "x" * 300,
    ]
    for v in values:
        raw = gr_pmt.serialize_str(to_gr(v, gr_pmt))
        assert serialize(v) == raw
        assert same(deserialize(raw), v)
        assert gr_pmt.equal(gr_pmt.deserialize_str(serialize(v)), to_gr(v, gr_pmt))


if given is not None:

    @pytest.mark.radio
    @FAST
    @given(GR_PMTS)
    def test_gnuradio_reads_what_we_write(value):
        pmt = pytest.importorskip("pmt", reason="GNU Radio's pmt module is not importable")
        raw = serialize(value)
        assert pmt.serialize_str(pmt.deserialize_str(raw)) == raw


# ---------------------------------------------------------------- gr-zeromq flowgraphs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gr_zmq():
    pytest.importorskip("pmt", reason="GNU Radio's pmt module is not importable")
    gr = pytest.importorskip("gnuradio.gr", reason="GNU Radio is not importable")
    blocks = pytest.importorskip("gnuradio.blocks")
    zeromq = pytest.importorskip("gnuradio.zeromq", reason="gr-zeromq is not installed")
    return gr, blocks, zeromq


@pytest.mark.radio
def test_gr_push_sink_tags_reach_bridge(gr_zmq):
    import pmt

    from bridge.transport import Puller

    gr, blocks, zeromq = gr_zmq
    n = 2000
    addr = f"tcp://127.0.0.1:{free_port()}"
    gr_tags = [
        gr.tag_utils.python_to_tag(
            (off, pmt.intern("burst"), pmt.from_long(off), pmt.intern("src"))
        )
        for off in (0, 7, 1999)
    ]
    tb = gr.top_block()
    src = blocks.vector_source_c(np.arange(n).astype(np.complex64).tolist(), False, 1, gr_tags)
    sink = zeromq.push_sink(gr.sizeof_gr_complex, 1, addr, 100, True, -1)
    tb.connect(src, sink)
    with Puller(addr, bind=False, decoder=bp.parse_tagged, timeout_ms=5000) as rx:
        tb.start()
        items, tags, expected_offset = [], [], 0
        while expected_offset < n:
            m = rx.recv()
            assert m is not None, "timed out waiting for gr-zeromq"
            assert m.offset == expected_offset
            items.append(m.items(np.complex64))
            tags.extend(m.tags)
            expected_offset += len(items[-1])
        tb.wait()
    np.testing.assert_array_equal(np.concatenate(items), np.arange(n))
    assert [(t.offset, t.key, t.value, t.srcid) for t in tags] == [
        (o, "burst", o, "src") for o in (0, 7, 1999)
    ]


@pytest.mark.radio
def test_bridge_tags_reach_gr_pull_source(gr_zmq):
    from bridge.transport import Pusher

    gr, blocks, zeromq = gr_zmq
    items = (np.arange(64) * (1 + 1j)).astype(np.complex64)
    with Pusher(timeout_ms=5000) as tx:
        tb = gr.top_block()
        src = zeromq.pull_source(gr.sizeof_gr_complex, 1, tx.endpoint, 100, True, -1)
        head = blocks.head(gr.sizeof_gr_complex, len(items))
        sink = blocks.vector_sink_c()
        tb.connect(src, head, sink)
        tb.start()
        msg = bp.build_tagged(
            0, [Tag(3, "packet_len", 61, "bridge"), Tag(10, "snr_db", 7.5)], items
        )
        assert tx.send(msg)
        deadline = time.monotonic() + 10
        while len(sink.data()) < len(items) and time.monotonic() < deadline:
            time.sleep(0.01)
        tb.stop()
        tb.wait()
    np.testing.assert_array_equal(np.array(sink.data(), np.complex64), items)
    got = sorted((t.offset, str(t.key), t.value) for t in sink.tags())
    import pmt

    assert [(o, k) for o, k, _ in got] == [(3, "packet_len"), (10, "snr_db")]
    assert pmt.to_long(got[0][2]) == 61 and pmt.to_double(got[1][2]) == 7.5


@pytest.mark.radio
def test_gr_message_blocks_interoperate(gr_zmq):
    import pmt

    from bridge.transport import Puller, Pusher

    gr, blocks, zeromq = gr_zmq
    meta = {"seq": 9, "ok": True}
    data = np.arange(5, dtype=np.uint8)
    gr_pdu = pmt.cons(to_gr(meta, pmt), pmt.init_u8vector(5, data.tolist()))
    out_addr = f"tcp://127.0.0.1:{free_port()}"
    with Pusher(timeout_ms=5000, encoder=serialize) as tx:
        tb = gr.top_block()
        strobe = blocks.message_strobe(gr_pdu, 20)
        push = zeromq.push_msg_sink(out_addr, 100, True)
        pull = zeromq.pull_msg_source(tx.endpoint, 100, False)
        debug = blocks.message_debug()
        tb.msg_connect(strobe, "strobe", push, "in")
        tb.msg_connect(pull, "out", debug, "store")
        with Puller(out_addr, bind=False, decoder=deserialize, timeout_ms=5000) as rx:
            tb.start()
            got = rx.recv()  # GNU Radio -> bridge
            assert tx.send(bp.make_pdu({"from": "bridge"}, b"xyz"))  # bridge -> GNU Radio
            deadline = time.monotonic() + 10
            while debug.num_messages() < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            tb.stop()
            tb.wait()
    meta_in, data_in = bp.parse_pdu(got)
    assert meta_in == meta and data_in.tolist() == data.tolist()
    assert debug.num_messages() >= 1
    back = debug.get_message(0)
    assert (
        pmt.symbol_to_string(pmt.dict_ref(pmt.car(back), pmt.intern("from"), pmt.PMT_NIL))
        == "bridge"
    )
    assert bytes(pmt.u8vector_elements(pmt.cdr(back))) == b"xyz"
