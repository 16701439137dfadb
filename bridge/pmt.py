"""GNU Radio PMT serialisation and gr-zeromq tag headers, without GNU Radio.

gr-zeromq's message blocks (``pub_msg_sink``, ``push_msg_sink``, ``*_msg_source``) carry
one ``pmt::serialize_str`` blob per ZeroMQ message. Its stream blocks with ``pass_tags``
prefix each message with a tag header. This module reads and writes both, so the ML side
talks to flowgraphs without importing GNU Radio.

PMT binary format (GNU Radio 3.10 ``pmt_serialize.cc``; numbers big-endian):

====  ==============  =================================================================
tag   PMT             body
====  ==============  =================================================================
0x00  ``PMT_T``       --
0x01  ``PMT_F``       --
0x02  symbol          u16 length, bytes
0x03  int32           i32 (``from_long`` values that fit 32 bits)
0x04  double          f64
0x05  complex         f64 real, f64 imag
0x06  ``PMT_NIL``     -- (also the empty dict and the end of a list)
0x07  pair            car, cdr (lists are pair chains ending in NIL)
0x08  vector          u32 n, n PMTs
0x09  dict            (key . value) pair, then the rest of the dict (0x09 ... or 0x06)
0x0a  uniform vector  u8 type, u32 n, u8 npad (1), npad zero bytes, n elements
0x0b  uint64          u64
0x0c  tuple           u32 n, n PMTs
0x0d  int64           i64 (``from_long`` values that need 64 bits)
====  ==============  =================================================================

Uniform vector types: 0 u8, 1 s8, 2 u16, 3 s16, 4 u32, 5 s32, 6 u64, 7 s64, 8 f32, 9 f64,
10 c32 (complex64), 11 c64 (complex128).

Python mapping: ``True``/``False``, ``None`` (NIL), ``int`` (:class:`UInt64` for uint64),
``float``, ``complex``, ``str`` (symbol), :class:`Pair`, ``list`` (vector), ``tuple``,
``dict`` (entries in wire order), 1-D numpy arrays (uniform vectors; ``bytes`` serialise as
u8 vectors). Blobs and comments are not supported.

The tag header (gr-zeromq ``tag_headers.cc``; native byte order, little-endian on every
host GNU Radio runs on): u16 magic ``0x5FF0``, u8 version 1, u64 offset of the first item,
u64 number of tags, then per tag u64 absolute offset and the key, value and srcid PMTs; the
stream items follow in the same message.

>>> deserialize(serialize({"freq": 2.4e9, "len": 3}))
{'freq': 2400000000.0, 'len': 3}
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from .wire import WireError

__all__ = [
    "PmtError",
    "Pair",
    "UInt64",
    "Tag",
    "TaggedMessage",
    "serialize",
    "deserialize",
    "deserialize_prefix",
    "make_list",
    "list_items",
    "make_pdu",
    "parse_pdu",
    "parse_tagged",
    "build_tagged",
    "TAG_MAGIC",
    "TAG_VERSION",
    "MAX_DEPTH",
]

PST_TRUE = 0x00
PST_FALSE = 0x01
PST_SYMBOL = 0x02
PST_INT32 = 0x03
PST_DOUBLE = 0x04
PST_COMPLEX = 0x05
PST_NULL = 0x06
PST_PAIR = 0x07
PST_VECTOR = 0x08
PST_DICT = 0x09
PST_UNIFORM_VECTOR = 0x0A
PST_UINT64 = 0x0B
PST_TUPLE = 0x0C
PST_INT64 = 0x0D

#: Uniform vector type byte -> big-endian numpy dtype of the elements on the wire.
_UV_WIRE = {
    0: np.dtype("u1"),
    1: np.dtype("i1"),
    2: np.dtype(">u2"),
    3: np.dtype(">i2"),
    4: np.dtype(">u4"),
    5: np.dtype(">i4"),
    6: np.dtype(">u8"),
    7: np.dtype(">i8"),
    8: np.dtype(">f4"),
    9: np.dtype(">f8"),
    10: np.dtype(">c8"),
    11: np.dtype(">c16"),
}
_UV_CODE = {(dt.kind, dt.itemsize): code for code, dt in _UV_WIRE.items()}

TAG_MAGIC = 0x5FF0
TAG_VERSION = 1
#: Deepest container nesting :func:`deserialize` follows (list/dict spines do not count).
MAX_DEPTH = 64

_I32 = struct.Struct(">i")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_C128 = struct.Struct(">dd")
_TAG_HDR = struct.Struct("<HBQQ")
_TAG_OFFSET = struct.Struct("<Q")


class PmtError(WireError):
    """A PMT blob or tag header could not be parsed or built (a :class:`WireError`).

    >>> try:
    ...     deserialize(b"\\x03\\x00")
    ... except PmtError as e:
    ...     print(e.cause)
    truncated
    """

    def __init__(self, message: str, cause: str = "pmt"):
        super().__init__(message, cause)


class UInt64(int):
    """An ``int`` that serialises as a PMT uint64 (``pmt::from_uint64``).

    >>> serialize(UInt64(7)).hex()
    '0b0000000000000007'
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"UInt64({int(self)})"


@dataclass(frozen=True)
class Pair:
    """A PMT pair (``pmt::cons(car, cdr)``); lists are chains of pairs ending in ``None``.

    >>> Pair(None, 1)
    Pair(car=None, cdr=1)
    """

    car: Any
    cdr: Any


def make_list(items: Any) -> Any:
    """A PMT list (pair chain ending in NIL) from a Python iterable.

    >>> make_list([1, 2])
    Pair(car=1, cdr=Pair(car=2, cdr=None))
    """
    out: Any = None
    for item in reversed(list(items)):
        out = Pair(item, out)
    return out


def list_items(obj: Any) -> list:
    """The elements of a proper PMT list (pair chain ending in ``None``).

    >>> list_items(make_list(["a", 1]))
    ['a', 1]
    """
    out = []
    while isinstance(obj, Pair):
        out.append(obj.car)
        obj = obj.cdr
    if obj is not None:
        raise PmtError("not a proper list (does not end in NIL)", "pmt_type")
    return out


def make_pdu(meta: dict | None, data: Any) -> Pair:
    """A GNU Radio PDU: ``(meta-dict . uniform-vector)``.

    >>> make_pdu({"seq": 1}, np.array([1, 2], np.uint8)).car
    {'seq': 1}
    """
    arr = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
    arr = np.asarray(arr)
    if arr.ndim != 1 or (arr.dtype.kind, arr.dtype.itemsize) not in _UV_CODE:
        raise PmtError(f"PDU data must be a 1-D uniform vector, got {arr.dtype}", "pmt_type")
    return Pair(dict(meta) if meta else None, arr)


def parse_pdu(obj: Any) -> tuple[dict, np.ndarray]:
    """Split a deserialised PDU into ``(metadata dict, data array)``.

    >>> meta, data = parse_pdu(deserialize(serialize(make_pdu(None, b"ab"))))
    >>> meta, data.tolist()
    ({}, [97, 98])
    """
    if not isinstance(obj, Pair) or not isinstance(obj.cdr, np.ndarray):
        raise PmtError("not a PDU (pair of dict and uniform vector)", "pmt_type")
    meta = obj.car
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise PmtError("PDU metadata is not a dict", "pmt_type")
    return meta, obj.cdr


# --------------------------------------------------------------------------- serialise


def _ser(obj: Any, out: list, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise PmtError(f"PMT nested deeper than {MAX_DEPTH}", "depth")
    while isinstance(obj, Pair):  # list spine iteratively
        out.append(b"\x07")
        _ser(obj.car, out, depth + 1)
        obj = obj.cdr
    if obj is True or isinstance(obj, np.bool_) and obj:
        out.append(b"\x00")
    elif obj is False or isinstance(obj, np.bool_):
        out.append(b"\x01")
    elif obj is None:
        out.append(b"\x06")
    elif isinstance(obj, UInt64):
        if not 0 <= obj < 1 << 64:
            raise PmtError(f"{int(obj)} does not fit uint64", "range")
        out.append(b"\x0b" + _U64.pack(obj))
    elif isinstance(obj, (int, np.integer)):
        v = int(obj)
        if -(1 << 31) <= v < 1 << 31:
            out.append(b"\x03" + _I32.pack(v))
        elif -(1 << 63) <= v < 1 << 63:
            out.append(b"\x0d" + _I64.pack(v))
        elif 0 <= v < 1 << 64:
            out.append(b"\x0b" + _U64.pack(v))
        else:
            raise PmtError(f"integer {v} does not fit 64 bits", "range")
    elif isinstance(obj, (float, np.floating)):
        out.append(b"\x04" + _F64.pack(float(obj)))
    elif isinstance(obj, (complex, np.complexfloating)):
        c = complex(obj)
        out.append(b"\x05" + _C128.pack(c.real, c.imag))
    elif isinstance(obj, str):
        raw = obj.encode("utf-8", "surrogateescape")
        if len(raw) > 0xFFFF:
            raise PmtError(f"symbol of {len(raw)} bytes exceeds 65535", "range")
        out.append(b"\x02" + _U16.pack(len(raw)) + raw)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            out.append(b"\x09\x07")
            _ser(key, out, depth + 1)
            _ser(value, out, depth + 1)
        out.append(b"\x06")
    elif isinstance(obj, (list, tuple)):
        out.append((b"\x08" if isinstance(obj, list) else b"\x0c") + _U32.pack(len(obj)))
        for item in obj:
            _ser(item, out, depth + 1)
    elif isinstance(obj, (bytes, bytearray, memoryview, np.ndarray)):
        if isinstance(obj, np.ndarray):
            arr = obj
        else:
            arr = np.frombuffer(obj, np.uint8)
        if arr.ndim != 1:
            raise PmtError(f"uniform vectors are 1-D, got shape {arr.shape}", "pmt_type")
        code = _UV_CODE.get((arr.dtype.kind, arr.dtype.itemsize))
        if code is None:
            raise PmtError(f"no PMT uniform vector for dtype {arr.dtype}", "pmt_type")
        if arr.size >= 1 << 32:
            raise PmtError("uniform vector longer than 2**32-1", "range")
        out.append(b"\x0a" + bytes((code,)) + _U32.pack(arr.size) + b"\x01\x00")
        out.append(np.ascontiguousarray(arr, dtype=_UV_WIRE[code]).tobytes())
    else:
        raise PmtError(f"cannot serialise {type(obj).__name__} as a PMT", "pmt_type")


def serialize(obj: Any) -> bytes:
    """Serialise a Python value as GNU Radio's ``pmt::serialize_str`` does.

    :param obj: A value of the mapping in the module docstring.
    :output: The PMT bytes; :class:`PmtError` for values PMT cannot hold.

    >>> serialize(5).hex(), serialize("ab").hex()
    ('0300000005', '0200026162')
    """
    out: list = []
    _ser(obj, out, 0)
    return b"".join(out)


# --------------------------------------------------------------------------- parse


class _Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: memoryview, pos: int):
        self.buf = buf
        self.pos = pos
        self.end = len(buf)

    def take(self, n: int) -> int:
        """Advance by n bytes and return the start position."""
        p = self.pos
        if n > self.end - p:
            raise PmtError(f"PMT needs {n} bytes at offset {p}, {self.end - p} left", "truncated")
        self.pos = p + n
        return p

    def u8(self) -> int:
        return self.buf[self.take(1)]

    def unpack(self, st: struct.Struct) -> Any:
        return st.unpack_from(self.buf, self.take(st.size))


def _parse(r: _Reader, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise PmtError(f"PMT nested deeper than {MAX_DEPTH}", "depth")
    cars = []
    tag = r.u8()
    while tag == PST_PAIR:  # list spine iteratively
        cars.append(_parse(r, depth + 1))
        tag = r.u8()
    obj = _parse_tagged_value(r, tag, depth)
    for car in reversed(cars):
        obj = Pair(car, obj)
    return obj


def _parse_tagged_value(r: _Reader, tag: int, depth: int) -> Any:
    if tag == PST_TRUE:
        return True
    if tag == PST_FALSE:
        return False
    if tag == PST_NULL:
        return None
    if tag == PST_INT32:
        return r.unpack(_I32)[0]
    if tag == PST_INT64:
        return r.unpack(_I64)[0]
    if tag == PST_UINT64:
        return UInt64(r.unpack(_U64)[0])
    if tag == PST_DOUBLE:
        return r.unpack(_F64)[0]
    if tag == PST_COMPLEX:
        re, im = r.unpack(_C128)
        return complex(re, im)
    if tag == PST_SYMBOL:
        (n,) = r.unpack(_U16)
        p = r.take(n)
        return bytes(r.buf[p : p + n]).decode("utf-8", "surrogateescape")
    if tag in (PST_VECTOR, PST_TUPLE):
        (n,) = r.unpack(_U32)
        if n > r.end - r.pos:  # every element needs at least one byte
            raise PmtError(
                f"container claims {n} elements, {r.end - r.pos} bytes left", "truncated"
            )
        items = [_parse(r, depth + 1) for _ in range(n)]
        return items if tag == PST_VECTOR else tuple(items)
    if tag == PST_DICT:
        out: dict = {}
        while tag == PST_DICT:
            entry = _parse(r, depth + 1)
            if not isinstance(entry, Pair):
                raise PmtError("dict entry is not a (key . value) pair", "pmt_type")
            try:
                out.setdefault(entry.car, entry.cdr)
            except TypeError:
                raise PmtError("dict key is not hashable", "pmt_type") from None
            tag = r.u8()
        if tag != PST_NULL:
            raise PmtError(f"dict does not end in NIL (tag 0x{tag:02x})", "pmt_type")
        return out
    if tag == PST_UNIFORM_VECTOR:
        code = r.u8()
        (n,) = r.unpack(_U32)
        npad = r.u8()
        r.take(npad)
        dt = _UV_WIRE.get(code)
        if dt is None:
            raise PmtError(f"unknown uniform vector type 0x{code:02x}", "pmt_type")
        p = r.take(n * dt.itemsize)
        arr = np.frombuffer(r.buf, dtype=dt, count=n, offset=p) if n else np.zeros(0, dt)
        return arr.astype(dt.newbyteorder("="))
    raise PmtError(f"unknown or unsupported PMT tag 0x{tag:02x}", "pmt_type")


def _as_bytes_view(buf: Any) -> memoryview:
    try:
        mv = memoryview(buf)
    except TypeError:
        raise PmtError(f"cannot read PMT from {type(buf).__name__}", "type") from None
    if mv.ndim != 1 or mv.itemsize != 1:
        try:
            mv = mv.cast("B")
        except TypeError:
            raise PmtError("buffer is not contiguous", "type") from None
    return mv


def deserialize_prefix(buf: Any, offset: int = 0) -> tuple[Any, int]:
    """Parse one PMT starting at ``offset``; return ``(value, offset just after it)``.

    >>> deserialize_prefix(b"\\x06\\x00", 0)
    (None, 1)
    """
    mv = _as_bytes_view(buf)
    if not 0 <= offset <= len(mv):
        raise PmtError(f"offset {offset} outside the buffer", "truncated")
    r = _Reader(mv, offset)
    obj = _parse(r, 0)
    return obj, r.pos


def deserialize(buf: Any) -> Any:
    """Parse a whole ``pmt::serialize_str`` blob (e.g. one gr-zeromq message).

    :param buf: The bytes; trailing bytes after the PMT are an error.
    :output: The Python value; every rejection raises :class:`PmtError`.

    >>> deserialize(bytes.fromhex("0703000000010200017a"))
    Pair(car=1, cdr='z')
    """
    obj, end = deserialize_prefix(buf, 0)
    if end != len(_as_bytes_view(buf)):
        raise PmtError(f"{len(_as_bytes_view(buf)) - end} bytes after the PMT", "length")
    return obj


# --------------------------------------------------------------------------- tag headers


@dataclass(frozen=True)
class Tag:
    """One GNU Radio stream tag as carried in a gr-zeromq tag header.

    :param offset: Absolute item offset of the tag.
    :param key: Tag key (usually a ``str`` symbol).
    :param value: Tag value (any PMT value).
    :param srcid: Source id (``False`` is GNU Radio's default).

    >>> Tag(0, "packet_len", 64).srcid
    False
    """

    offset: int
    key: Any
    value: Any
    srcid: Any = False


@dataclass(frozen=True)
class TaggedMessage:
    """A gr-zeromq stream message sent with ``pass_tags``: header fields plus the items.

    :param offset: Absolute offset of the first item in ``payload``.
    :param tags: The tags, with absolute offsets.
    :param payload: The raw item bytes (native, i.e. little-endian, items).

    >>> TaggedMessage(0, (), b"\\x01\\x00\\x02\\x00").items("<i2").tolist()
    [1, 2]
    """

    offset: int
    tags: tuple
    payload: bytes

    def items(self, dtype: Any) -> np.ndarray:
        """The payload as a 1-D array of ``dtype`` (e.g. ``np.complex64``)."""
        dt = np.dtype(dtype)
        if len(self.payload) % dt.itemsize:
            raise PmtError(
                f"{len(self.payload)} bytes is not a whole number of {dt} items", "length"
            )
        return np.frombuffer(self.payload, dtype=dt)


def parse_tagged(buf: Any) -> TaggedMessage:
    """Parse a gr-zeromq ``pass_tags`` stream message (tag header + items).

    :param buf: The ZeroMQ message bytes.
    :output: A :class:`TaggedMessage`; :class:`PmtError` on any malformed header.

    >>> m = parse_tagged(build_tagged(10, [Tag(11, "k", 1)], b"\\x00" * 8))
    >>> m.offset, m.tags[0].key, len(m.payload)
    (10, 'k', 8)
    """
    mv = _as_bytes_view(buf)
    if len(mv) < _TAG_HDR.size:
        raise PmtError(f"{len(mv)} bytes is shorter than the tag header", "truncated")
    magic, version, offset, ntags = _TAG_HDR.unpack_from(mv)
    if magic != TAG_MAGIC:
        raise PmtError(f"bad tag header magic 0x{magic:04x}", "magic")
    if version != TAG_VERSION:
        raise PmtError(f"unsupported tag header version {version}", "version")
    pos = _TAG_HDR.size
    if ntags > (len(mv) - pos) // 11:  # offset + three PMTs of at least one byte each
        raise PmtError(f"tag header claims {ntags} tags, too few bytes", "truncated")
    tags = []
    for _ in range(ntags):
        if len(mv) - pos < 8:
            raise PmtError("truncated tag offset", "truncated")
        (toff,) = _TAG_OFFSET.unpack_from(mv, pos)
        key, pos = deserialize_prefix(mv, pos + 8)
        value, pos = deserialize_prefix(mv, pos)
        srcid, pos = deserialize_prefix(mv, pos)
        tags.append(Tag(toff, key, value, srcid))
    return TaggedMessage(offset, tuple(tags), bytes(mv[pos:]))


def build_tagged(offset: int, tags: Any, payload: Any) -> bytes:
    """Build a gr-zeromq ``pass_tags`` stream message, as a zmq sink with tags sends.

    :param offset: Absolute offset of the first item.
    :param tags: Iterable of :class:`Tag` (absolute offsets).
    :param payload: Item bytes or a numpy array (sent little-endian / native).

    >>> msg = build_tagged(0, [], b"")
    >>> msg[:3].hex(), len(msg)  # magic 0x5FF0 LE, version 1; 19-byte header, no tags
    ('f05f01', 19)
    """
    tags = list(tags)
    for name, v in [("offset", offset)] + [("tag offset", t.offset) for t in tags]:
        if not 0 <= int(v) < 1 << 64:
            raise PmtError(f"{name} {v} does not fit u64", "range")
    parts = [_TAG_HDR.pack(TAG_MAGIC, TAG_VERSION, int(offset), len(tags))]
    for t in tags:
        parts.append(_TAG_OFFSET.pack(int(t.offset)))
        parts.append(serialize(t.key))
        parts.append(serialize(t.value))
        parts.append(serialize(t.srcid))
    if isinstance(payload, np.ndarray):
        payload = np.ascontiguousarray(payload, payload.dtype.newbyteorder("<")).tobytes()
    parts.append(bytes(payload))
    return b"".join(parts)
