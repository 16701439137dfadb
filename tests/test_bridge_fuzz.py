"""Hostile input for the bridge parsers (property-based, small budget; both interpreters).

Every input (200 per property here) must be answered (a value) or rejected with the
parser's own error type:

- :func:`bridge.wire.decode`: :class:`bridge.wire.WireError`;
- :func:`bridge.pmt.deserialize` and :func:`bridge.pmt.parse_tagged`:
  :class:`bridge.pmt.PmtError` (a ``WireError``).

Any other exception is a crash (a parser bug). ``benchmarks/fuzz_parsers.py`` runs the same
parsers on >= 100,000 inputs each.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from bridge import pmt, wire

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.both

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------ valid seeds

_DTYPES = [dt for code, dt in wire._WIRE_DTYPES.items() if code != wire.DType.BYTES]


@st.composite
def frames(draw) -> wire.Frame:
    """Valid frames: every kind, dtype, 0..3-D shapes, opaque bytes and packed bits."""
    kind = draw(st.sampled_from(list(wire.PayloadKind)))
    meta = {
        "stream_id": draw(st.integers(0, 2**32 - 1)),
        "seq": draw(st.integers(0, 2**64 - 1)),
        "layer": draw(st.integers(0, 2**16 - 1)),
        "timestamp_ns": draw(st.integers(-(2**63), 2**63 - 1)),
    }
    form = draw(st.sampled_from(["bytes", "array", "bits"]))
    if form == "bytes":
        return wire.Frame(kind, draw(st.binary(max_size=64)), **meta)
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    if form == "bits":
        bits = np.frombuffer(draw(st.binary(min_size=int(np.prod(shape)),
                                            max_size=int(np.prod(shape)))), np.uint8) & 1
        return wire.Frame(kind, bits.reshape(shape), packed_bits=True, **meta)
    dt = draw(st.sampled_from(_DTYPES))
    raw = draw(st.binary(min_size=int(np.prod(shape)) * dt.itemsize,
                         max_size=int(np.prod(shape)) * dt.itemsize))
    arr = np.frombuffer(raw, np.uint8).copy()
    if dt == np.bool_:
        arr &= 1
    return wire.Frame(kind, arr.view(dt).reshape(shape), **meta)


def mutate(data: bytes, draw, fix_crc: bool = False) -> bytes:
    """Bit flips, byte overwrites, truncation, insertion; optionally re-sign the CRC so the
    checks behind it (kind, dtype, flags, shape, values) are reached."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "header"]))
        if op == "flip" and buf:
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
        elif op == "cut":
            buf = buf[: draw(st.integers(0, len(buf)))]
        elif op == "insert":
            i = draw(st.integers(0, len(buf)))
            buf[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "header" and len(buf) >= 40:  # one header field to an extreme value
            i = draw(st.sampled_from([8, 9, 10, 11, 12, 14, 16, 20, 24, 32, 40]))
            width = {8: 1, 9: 1, 10: 1, 11: 1, 12: 2, 14: 2, 16: 4, 20: 4}.get(i, 8)
            value = draw(st.sampled_from([0, 1, 2**(8 * width) - 1, 2**(8 * width - 1)]))
            buf[i:i + width] = value.to_bytes(width, "little")[: len(buf) - i]
    if fix_crc and len(buf) >= 8:
        end = len(buf)
        if len(buf) >= 14 and buf[12] & wire.FLAG_HEADER_CRC:  # re-sign what the flag covers
            end = 40 + 8 * buf[11]
        buf[4:8] = zlib.crc32(bytes(buf[8:end])).to_bytes(4, "little")
    return bytes(buf)


def answered_or_rejected(parse, data, error):
    """Run ``parse(data)``; return the value, or None when rejected with ``error``."""
    try:
        return parse(data)
    except error as e:
        assert str(e) and "\n" not in str(e)  # one clear line
        return None


# ------------------------------------------------------------------ wire


@FUZZ
@given(st.binary(max_size=300))
def test_wire_random_bytes(data):
    answered_or_rejected(wire.decode, data, wire.WireError)
    answered_or_rejected(wire.decode, wire.MAGIC + data, wire.WireError)


@FUZZ
@given(frames(), st.booleans())
def test_wire_round_trip(frame, payload_crc):
    got = wire.decode(wire.encode(frame, payload_crc=payload_crc))
    assert (got.kind, got.seq, got.stream_id, got.layer, got.timestamp_ns) == (
        frame.kind, frame.seq, frame.stream_id, frame.layer, frame.timestamp_ns)
    if isinstance(frame.payload, bytes):
        assert got.payload == frame.payload
    else:
        assert got.payload.shape == frame.payload.shape
        assert got.payload.tobytes() == frame.payload.astype(got.payload.dtype).tobytes()


@FUZZ
@given(frames(), st.data(), st.booleans(), st.booleans())
def test_wire_mutated_frames(frame, data, fix_crc, payload_crc):
    msg = mutate(wire.encode(frame, payload_crc=payload_crc), data.draw, fix_crc)
    out = answered_or_rejected(wire.decode, msg, wire.WireError)
    if out is not None:
        assert wire.decode(wire.encode(out)).seq == out.seq  # what is accepted re-encodes


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 2**16 - 1),
       st.integers(0, 2**32 - 1), st.lists(st.integers(0, 2**64 - 1), max_size=9),
       st.binary(max_size=64))
def test_wire_any_signed_header(kind, code, ndim, flags, length, dims, body):
    """Headers with every field at any value but a correct CRC: parsed or rejected."""
    import struct

    tail = struct.pack("<BBBBHHIIQq", wire.VERSION, kind, code, ndim, flags, 0, 0,
                       length, 0, 0) + b"".join(struct.pack("<Q", d) for d in dims) + body
    msg = wire.MAGIC + zlib.crc32(tail).to_bytes(4, "little") + tail
    answered_or_rejected(wire.decode, msg, wire.WireError)
    answered_or_rejected(lambda m: wire.decode(m, copy=True), bytearray(msg), wire.WireError)


@pytest.mark.parametrize("dims,flags", [([2**64 - 1, 0], 0), ([0, 2**62], 0), ([2**63, 0], 1)])
def test_wire_empty_arrays_with_huge_dimensions(dims, flags):
    """Found by fuzzing: an empty array whose other dimensions overflow numpy (was a bare
    ValueError from numpy, now a WireError)."""
    import struct

    tail = struct.pack("<BBBBHHIIQq", wire.VERSION, 3, 2, len(dims), flags, 0, 0, 0, 0, 0)
    tail += b"".join(struct.pack("<Q", d) for d in dims)
    msg = wire.MAGIC + zlib.crc32(tail).to_bytes(4, "little") + tail
    with pytest.raises(wire.WireError, match="numpy cannot hold"):
        wire.decode(msg)


def test_wire_non_bytes_inputs_rejected():
    for junk in (None, 3, "text", np.zeros((2, 3), np.float32)[:, ::2], object()):
        answered_or_rejected(wire.decode, junk, wire.WireError)


# ------------------------------------------------------------------ PMT

_pmt_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.complex_numbers(allow_nan=False, allow_infinity=False)
    | st.integers(0, 2**64 - 1).map(pmt.UInt64)
    | st.binary(max_size=8).map(lambda b: np.frombuffer(b, np.uint8).astype(np.float32))
)
pmt_values = st.recursive(
    _pmt_scalars,
    lambda kids: st.lists(kids, max_size=4) | st.lists(kids, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    | st.tuples(kids, kids).map(lambda p: pmt.Pair(*p)),
    max_leaves=12,
)


@FUZZ
@given(st.binary(max_size=200))
def test_pmt_random_bytes(data):
    answered_or_rejected(pmt.deserialize, data, pmt.PmtError)
    answered_or_rejected(pmt.parse_tagged, data, pmt.PmtError)
    answered_or_rejected(pmt.parse_tagged, b"\xf0\x5f\x01" + data, pmt.PmtError)


@FUZZ
@given(pmt_values, st.data())
def test_pmt_mutated_values(value, data):
    blob = pmt.serialize(value)
    answered_or_rejected(pmt.deserialize, blob, pmt.PmtError)  # floats -> f32 may narrow
    answered_or_rejected(pmt.deserialize, mutate(blob, data.draw), pmt.PmtError)
    tagged = pmt.build_tagged(7, [pmt.Tag(9, "k", value)], b"\x00" * 8)
    answered_or_rejected(pmt.parse_tagged, mutate(tagged, data.draw), pmt.PmtError)


@pytest.mark.parametrize("blob", ids=lambda v: repr(v)[:30], argvalues=[
    b"\x07" * 100_000 + b"\x06",  # a list 100,000 long: iterative, accepted
    b"\x08\x00\x00\x00\x01" * 100_000,  # vectors nested 100,000 deep: depth limit
    b"\x09\x07" * 50_000,  # dicts nested in dict keys
    b"\x0a\x0b\xff\xff\xff\xff\x00",  # uniform vector claiming 4 G elements
    b"\x08\xff\xff\xff\xff",  # vector claiming 4 G elements
])
def test_pmt_bombs(blob):
    answered_or_rejected(pmt.deserialize, blob, pmt.PmtError)


def test_fuzz_benchmark_script_small_run():
    """benchmarks/fuzz_parsers.py on a few hundred inputs: its JSON, no crash, no hang."""
    import json
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks", "fuzz_parsers.py")
    out = subprocess.run([sys.executable, script, "--inputs", "300", "--targets",
                          "wire,pmt_tagged"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout)
    for name in ("wire", "pmt_tagged"):
        r = res["targets"][name]
        assert r["inputs"] == 300 and r["answered"] + r["rejected"] == 300
        assert (r["crashes"], r["hangs"]) == (0, 0), r["examples"]
        assert r["rejected"] > 0 and r["max_ms"] > 0
    bad = subprocess.run([sys.executable, script, "--targets", "nope"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "unknown targets" in bad.stderr
