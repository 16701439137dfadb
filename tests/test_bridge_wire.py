"""bridge.wire: frame header layout, array codec, rejections (both interpreters)."""

from __future__ import annotations

import doctest
import json
import struct
import zlib

import numpy as np
import pytest

from bridge import wire
from bridge.wire import DType, Frame, PayloadKind, WireError, decode, encode

pytestmark = pytest.mark.both

ALL_DTYPES = [
    "?",
    "u1",
    "i1",
    "<u2",
    ">i2",
    "u4",
    "i4",
    "u8",
    ">i8",
    "f2",
    "f4",
    ">f8",
    "c8",
    ">c16",
]


def reseal(msg: bytes | bytearray) -> bytes:
    """Recompute the CRC of a hand-edited message so that a later check is reached."""
    msg = bytearray(msg)
    msg[4:8] = zlib.crc32(bytes(msg[8:])).to_bytes(4, "little")
    return bytes(msg)


def patch(msg: bytes, offset: int, fmt: str, value: int) -> bytes:
    buf = bytearray(msg)
    struct.pack_into(fmt, buf, offset, value)
    return reseal(buf)


def sample(**kw) -> bytes:
    kw.setdefault("timestamp_ns", 123)
    return encode(Frame(PayloadKind.SYMBOLS, np.arange(6, dtype=np.complex64).reshape(2, 3), **kw))


# ---------------------------------------------------------------- layout


def test_header_layout_golden():
    f = Frame(
        PayloadKind.LLRS,
        np.array([1.5, -2.0], dtype=np.float32),
        stream_id=0x01020304,
        seq=0x1122334455667788,
        layer=3,
        timestamp_ns=-5,
    )
    msg = encode(f)
    assert len(msg) == wire.HEADER_SIZE + 8 + 8
    assert msg[0:4] == b"GSCW"
    assert int.from_bytes(msg[4:8], "little") == zlib.crc32(msg[8:])
    assert msg[8] == wire.VERSION == 1
    assert msg[9] == PayloadKind.LLRS == 4
    assert msg[10] == DType.F32 == 11
    assert msg[11] == 1  # ndim
    assert struct.unpack_from("<HHIIQq", msg, 12) == (0, 3, 0x01020304, 8, 0x1122334455667788, -5)
    assert struct.unpack_from("<Q", msg, 40) == (2,)
    assert msg[48:] == np.array([1.5, -2.0], "<f4").tobytes()
    # frozen format: any change to the layout must bump VERSION
    assert msg.hex() == (
        "475343572a25fb1401040b010000030004030201080000008877665544332211"
        "fbffffffffffffff02000000000000000000c03f000000c0"
    )


def test_payload_is_8_byte_aligned():
    for ndim in range(wire.MAX_NDIM + 1):
        msg = encode(Frame(PayloadKind.CHANNEL, np.zeros((1,) * ndim, np.complex128)))
        assert (len(msg) - 16) % 8 == 0


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("dt", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3), (2, 0, 4), (1, 2, 1, 2, 1, 2, 1, 2)])
def test_array_round_trip(dt, shape):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, size=shape) if dt == "?" else rng.integers(-50, 50, size=shape)
    a = np.asarray(a).astype(dt)
    f = decode(
        encode(
            Frame(
                PayloadKind.SYMBOLS,
                a,
                stream_id=9,
                seq=2**64 - 1,
                layer=65535,
                timestamp_ns=-(2**63),
            )
        )
    )
    assert f.payload.shape == a.shape
    assert f.payload.dtype == np.dtype(dt).newbyteorder("<")
    np.testing.assert_array_equal(f.payload, a)
    assert (f.kind, f.stream_id, f.seq, f.layer, f.timestamp_ns) == (
        PayloadKind.SYMBOLS,
        9,
        2**64 - 1,
        65535,
        -(2**63),
    )
    assert f.packed_bits is False


def test_non_contiguous_and_list_payloads():
    a = np.arange(30, dtype=np.float64).reshape(5, 6)[:, ::2].T
    np.testing.assert_array_equal(decode(encode(Frame(PayloadKind.CHANNEL, a))).payload, a)
    f = decode(encode(Frame(PayloadKind.LLRS, [[1.0, 2.0]])))
    assert f.payload.shape == (1, 2) and f.payload.dtype == np.float64


def test_big_endian_input_goes_out_little_endian():
    a = np.array([1, 2], dtype=">u2")
    msg = encode(Frame(PayloadKind.TRANSPORT_BLOCK, a))
    assert msg[-4:] == b"\x01\x00\x02\x00"


def test_decode_view_is_read_only_and_copy_is_writable():
    msg = sample()
    view = decode(msg).payload
    assert not view.flags.writeable
    out = decode(msg, copy=True).payload
    out[0, 0] = 7
    assert out.flags.writeable


def test_decode_accepts_buffers():
    msg = sample()
    for buf in (bytearray(msg), memoryview(msg), np.frombuffer(msg, np.uint8)):
        assert decode(buf).payload.shape == (2, 3)


def test_bytes_and_json_payloads():
    f = decode(encode(Frame(PayloadKind.CONTROL, bytearray(b"\x00\xff"))))
    assert f.payload == b"\x00\xff" and isinstance(f.payload, bytes)
    ack = decode(encode(Frame.from_json({"ack": 3, "ok": True}, PayloadKind.ACK, seq=3)))
    assert ack.kind is PayloadKind.ACK and ack.json() == {"ack": 3, "ok": True}
    with pytest.raises(WireError):
        Frame(PayloadKind.CONTROL, b"\xff").json()
    with pytest.raises(WireError):
        Frame(PayloadKind.CONTROL, np.zeros(2)).json()
    with pytest.raises(ValueError):
        Frame.from_json({"x": float("nan")})
    assert json.loads(decode(encode(Frame.from_json([1]))).payload) == [1]


def test_timestamp_defaults_to_now():
    import time

    before = time.time_ns()
    f = decode(encode(Frame(PayloadKind.ACK, b"")))
    assert before <= f.timestamp_ns <= time.time_ns()


# ---------------------------------------------------------------- bits


def test_pack_bits_msb_first():
    assert wire.pack_bits([1, 0, 0, 0, 0, 0, 0, 0]) == b"\x80"
    assert wire.pack_bits([0, 0, 0, 0, 0, 0, 0, 1, 1]) == b"\x01\x80"
    assert wire.unpack_bits(b"\x80\x01").tolist() == [1] + [0] * 14 + [1]
    with pytest.raises(WireError):
        wire.pack_bits([0, 2])
    with pytest.raises(WireError):
        wire.unpack_bits(b"\x00", 9)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 64, 1001])
@pytest.mark.parametrize("dt", [np.uint8, np.bool_])
def test_packed_bits_round_trip(n, dt):
    bits = (np.random.default_rng(n).integers(0, 2, n)).astype(dt)
    msg = encode(Frame(PayloadKind.SEMANTIC_BITS, bits, layer=1, packed_bits=True))
    assert len(msg) == wire.HEADER_SIZE + 8 + (n + 7) // 8
    f = decode(msg)
    assert f.packed_bits and f.payload.dtype == np.dtype(dt)
    np.testing.assert_array_equal(f.payload, bits)


def test_packed_bits_shape_and_wire_bytes():
    bits = np.array([[1, 0, 1], [1, 0, 0]], np.uint8)
    msg = encode(Frame(PayloadKind.SEMANTIC_BITS, bits, packed_bits=True))
    assert msg[-1:] == bytes([0b10110000])
    assert decode(msg).payload.shape == (2, 3)


def test_packed_bits_encode_errors():
    with pytest.raises(WireError):
        encode(Frame(PayloadKind.SEMANTIC_BITS, np.array([0.0, 1.0]), packed_bits=True))
    with pytest.raises(WireError):
        encode(Frame(PayloadKind.SEMANTIC_BITS, np.array([0, 3], np.uint8), packed_bits=True))
    with pytest.raises(WireError):
        encode(Frame(PayloadKind.SEMANTIC_BITS, b"\x01", packed_bits=True))


# ---------------------------------------------------------------- encode errors


@pytest.mark.parametrize(
    "field,value",
    [
        ("stream_id", -1),
        ("stream_id", 2**32),
        ("seq", -1),
        ("seq", 2**64),
        ("layer", 2**16),
        ("timestamp_ns", 2**63),
        ("seq", 1.5),
    ],
)
def test_encode_rejects_out_of_range_fields(field, value):
    with pytest.raises(WireError) as e:
        encode(Frame(PayloadKind.ACK, b"", **{field: value}))
    assert e.value.cause == "field"


def test_encode_rejects_bad_kind_dtype_ndim():
    with pytest.raises(WireError):
        encode(Frame(99, b""))
    with pytest.raises(WireError):
        encode(Frame(0, b""))
    bad_arrays = [np.array(["a"]), np.array([object()]), np.zeros(2, "M8[s]")]
    if np.dtype(np.longdouble).itemsize not in (2, 4, 8):
        bad_arrays.append(np.zeros(2, np.longdouble))
    for bad in bad_arrays:
        with pytest.raises(WireError) as e:
            encode(Frame(PayloadKind.CHANNEL, bad))
        assert e.value.cause == "dtype"
    with pytest.raises(WireError):
        encode(Frame(PayloadKind.CHANNEL, np.zeros((1,) * 9)))
    assert issubclass(WireError, ValueError)


def test_dtype_codes():
    assert DType.from_numpy(">c8") is DType.C64
    assert DType.C128.numpy == np.dtype("<c16")
    with pytest.raises(WireError):
        DType.from_numpy("U3")


# ---------------------------------------------------------------- rejections


def cause(buf) -> str:
    with pytest.raises(WireError) as e:
        decode(buf)
    return e.value.cause


def test_every_truncation_rejected():
    msg = sample()
    for n in range(len(msg)):
        assert cause(msg[:n]) == "truncated"


def test_trailing_bytes_rejected():
    assert cause(sample() + b"\x00") == "length"


def test_every_single_byte_corruption_rejected():
    msg = sample()
    for i in range(len(msg)):
        buf = bytearray(msg)
        buf[i] ^= 0x10
        assert cause(bytes(buf)) in {"magic", "crc", "version", "shape", "truncated", "length"}
    buf = bytearray(msg)
    buf[-1] ^= 1
    assert cause(bytes(buf)) == "crc"


def test_specific_causes():
    msg = sample()
    assert cause(b"XXXX" + msg[4:]) == "magic"
    assert cause(patch(msg, 8, "<B", 2)) == "version"
    assert cause(patch(msg, 9, "<B", 0)) == "kind"
    assert cause(patch(msg, 9, "<B", 200)) == "kind"
    assert cause(patch(msg, 10, "<B", 77)) == "dtype"
    assert cause(patch(msg, 11, "<B", 9)) == "shape"
    assert cause(patch(msg, 12, "<H", 0x8000)) == "flags"
    assert cause(patch(msg, 40, "<Q", 3)) == "length"  # shape (3,3) vs 48 bytes
    assert cause(patch(msg, 40, "<Q", 2**63)) == "length"
    assert cause(patch(msg, 20, "<I", 49)) == "truncated"
    assert cause(object()) == "type"
    assert cause(np.zeros((8, 8), np.uint8)[:, ::2]) == "type"  # not contiguous
    with pytest.raises(WireError) as e:
        decode(msg, max_payload=10)
    assert e.value.cause == "length"


def test_value_checks():
    b = encode(Frame(PayloadKind.SEMANTIC_BITS, np.array([True, False])))
    assert cause(reseal(b[:-1] + b"\x02")) == "value"
    p = encode(Frame(PayloadKind.SEMANTIC_BITS, np.array([1, 0, 1], np.uint8), packed_bits=True))
    assert cause(reseal(p[:-1] + b"\xa1")) == "value"  # padding bit set
    assert cause(patch(p, 10, "<B", DType.F32)) == "dtype"  # packed float
    raw = encode(Frame(PayloadKind.CONTROL, b"abc"))
    assert cause(patch(raw, 12, "<H", wire.FLAG_PACKED_BITS)) == "shape"


def test_doctests():
    assert doctest.testmod(wire).failed == 0


# ---------------------------------------------------------------- properties

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    given = None

if given is None:

    def test_properties():
        pytest.skip("hypothesis is not installed")

else:
    FAST = settings(max_examples=60, deadline=None)

    @FAST
    @given(st.binary(max_size=200))
    def test_random_bytes_only_raise_wire_error(data):
        try:
            decode(data)
        except WireError:
            pass

    @FAST
    @given(st.binary(min_size=1, max_size=64), st.integers(0, 200), st.booleans())
    def test_random_corruption_only_raises_wire_error(junk, at, seal):
        msg = sample()
        at = min(at, len(msg))
        overwritten = (msg[:at] + junk + msg[at + len(junk) :])[: len(msg)]
        for buf in (msg[:at] + junk, reseal(overwritten) if seal else overwritten):
            try:
                f = decode(buf)
            except WireError:
                continue
            assert isinstance(f, Frame)

    @FAST
    @given(
        st.sampled_from(ALL_DTYPES),
        st.lists(st.integers(0, 4), max_size=4),
        st.sampled_from(list(PayloadKind)),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**16 - 1),
        st.integers(-(2**63), 2**63 - 1),
        st.data(),
    )
    def test_round_trip_property(dt, shape, kind, stream_id, seq, layer, ts, data):
        itemsize = np.dtype(dt).itemsize
        n = int(np.prod(shape)) if shape else 1
        raw = data.draw(st.binary(min_size=n * itemsize, max_size=n * itemsize))
        a = np.frombuffer(raw, dtype="u1" if dt == "?" else dt).reshape(shape)
        if dt == "?":
            a = (a & 1).astype(bool)
        msg = encode(Frame(kind, a, stream_id=stream_id, seq=seq, layer=layer, timestamp_ns=ts))
        g = decode(msg)
        assert (g.kind, g.stream_id, g.seq, g.layer, g.timestamp_ns) == (
            kind,
            stream_id,
            seq,
            layer,
            ts,
        )
        assert g.payload.shape == a.shape
        wire_bytes = np.ascontiguousarray(a, np.dtype(dt).newbyteorder("<")).tobytes()
        assert g.payload.tobytes() == wire_bytes
        assert encode(g) == msg

    @FAST
    @given(st.lists(st.integers(0, 1), max_size=300), st.booleans())
    def test_packed_round_trip_property(bits, as_bool):
        a = np.array(bits, dtype=bool if as_bool else np.uint8)
        g = decode(encode(Frame(PayloadKind.SEMANTIC_BITS, a, packed_bits=True)))
        np.testing.assert_array_equal(g.payload, a)
