"""The gsc bridge wire format: one self-describing binary frame per ZeroMQ message.

A frame is a fixed 40-byte header, then ``ndim`` little-endian ``u64`` dimensions, then the
payload. All numbers are little-endian; arrays travel as raw little-endian bytes in C order
with their dtype and shape in the header (never pickle). Bits travel MSB-first inside bytes
when the ``PACKED_BITS`` flag is set.

=========  ======  =====  ===========  ======================================================
offset     size    type   field        meaning
=========  ======  =====  ===========  ======================================================
0          4       4s     magic        ``b"GSCW"``
4          4       u32    crc32        CRC-32 (IEEE 802.3, as ``zlib.crc32``) of bytes 8..end
                                       (of bytes 8..40+8*ndim with ``HEADER_CRC``)
8          1       u8     version      :data:`VERSION` (1); other versions are rejected
9          1       u8     kind         :class:`PayloadKind`
10         1       u8     dtype        :class:`DType` code (0 = opaque bytes)
11         1       u8     ndim         number of dimensions, 0..:data:`MAX_NDIM`
12         2       u16    flags        bit 0 ``PACKED_BITS``, bit 1 ``HEADER_CRC``; others 0
14         2       u16    layer        semantic layer index (z1 = 1, ...; 0 = not layered)
16         4       u32    stream_id    application stream / link identifier
20         4       u32    length       payload length in bytes
24         8       u64    seq          frame sequence number
32         8       i64    timestamp    nanoseconds since the Unix epoch (``time.time_ns()``)
40         8*ndim  u64[]  shape        array dimensions (C order)
40+8*ndim  length  raw    payload      array bytes (C order, little-endian) or opaque bytes
=========  ======  =====  ===========  ======================================================

The payload therefore starts 8-byte aligned. With the ``HEADER_CRC`` flag the CRC covers the
header and shape only and the payload's integrity is left to the carrier: the bridge
transports set it on loopback TCP, IPC, in-process and CurveZMQ sockets (where ZeroMQ
delivers bytes intact, CURVE with a MAC), saving a CRC pass over the payload at each end;
:func:`encode` alone (files, spools, other carriers) covers the payload. :func:`decode`
rejects anything malformed with a :class:`WireError` (a :class:`ValueError`) whose ``cause``
names the check that failed.

>>> import numpy as np
>>> f = Frame(PayloadKind.SYMBOLS, np.arange(4, dtype=np.complex64), seq=7, timestamp_ns=0)
>>> g = decode(encode(f))
>>> g.kind, g.seq, g.payload.dtype, g.payload.shape
(<PayloadKind.SYMBOLS: 3>, 7, dtype('complex64'), (4,))
"""

from __future__ import annotations

import enum
import json
import math
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "MAGIC",
    "VERSION",
    "HEADER_SIZE",
    "MAX_NDIM",
    "MAX_PAYLOAD",
    "FLAG_PACKED_BITS",
    "FLAG_HEADER_CRC",
    "WireError",
    "PayloadKind",
    "DType",
    "Frame",
    "encode",
    "decode",
    "pack_bits",
    "unpack_bits",
]

MAGIC = b"GSCW"
VERSION = 1
HEADER_SIZE = 40
MAX_NDIM = 8
#: Largest payload :func:`decode` accepts by default (bytes).
MAX_PAYLOAD = 1 << 30
FLAG_PACKED_BITS = 0x0001
#: The CRC covers bytes 8..40+8*ndim (header and shape), not the payload.
FLAG_HEADER_CRC = 0x0002
_KNOWN_FLAGS = FLAG_PACKED_BITS | FLAG_HEADER_CRC

_CRC_START = 8  # the CRC covers bytes 8..end
#: Largest product of the non-zero dimensions of an empty array (numpy's size limit is 2**63).
_MAX_EMPTY_DIMS = 1 << 48
_MAGIC_CRC = struct.Struct("<4sI")
# version, kind, dtype, ndim, flags, layer, stream_id, length, seq, timestamp, then dims
_FIELDS = "<BBBBHHIIQq"
_HDR = struct.Struct("<4sI" + _FIELDS[1:])
#: Per-ndim structs for bytes 8..40+8*ndim (fields + dims), built once.
_TAIL = tuple(struct.Struct(_FIELDS + "Q" * n) for n in range(MAX_NDIM + 1))
_DIMS = tuple(struct.Struct("<" + "Q" * n) for n in range(MAX_NDIM + 1))
assert _HDR.size == HEADER_SIZE and _TAIL[0].size == HEADER_SIZE - _CRC_START


class WireError(ValueError):
    """A message was rejected by a bridge parser.

    :param message: Human-readable reason.
    :param cause: Short machine-readable cause used as the drop counter key
        (``"truncated"``, ``"magic"``, ``"version"``, ``"crc"``, ``"length"``, ...).

    >>> try:
    ...     decode(b"junk")
    ... except WireError as e:
    ...     print(e.cause)
    truncated
    """

    def __init__(self, message: str, cause: str = "malformed"):
        super().__init__(message)
        self.cause = cause


class PayloadKind(enum.IntEnum):
    """What a frame's payload holds (header byte 9). 0 is never valid.

    >>> PayloadKind(4).name
    'LLRS'
    """

    SEMANTIC_BITS = 1  #: quantized semantic vector bits of one layer (u8/bool, often packed)
    TRANSPORT_BLOCK = 2  #: transport block bits/bytes before channel coding
    SYMBOLS = 3  #: received or transmitted complex constellation symbols
    LLRS = 4  #: soft bits (log-likelihood ratios) for the decoder
    CHANNEL = 5  #: channel estimates / state information
    CONTROL = 6  #: control message (UTF-8 JSON, see :meth:`Frame.from_json`)
    ACK = 7  #: acknowledgement (UTF-8 JSON or empty)
    IQ = 8  #: raw complex baseband samples


class DType(enum.IntEnum):
    """Array element type codes (header byte 10). Elements are little-endian on the wire.

    >>> DType.from_numpy(np.dtype(">f4")), DType.C64.numpy
    (<DType.F32: 11>, dtype('complex64'))
    """

    BYTES = 0  #: opaque bytes, ``ndim`` must be 0; decodes to :class:`bytes`
    BOOL = 1
    U8 = 2
    I8 = 3
    U16 = 4
    I16 = 5
    U32 = 6
    I32 = 7
    U64 = 8
    I64 = 9
    F16 = 10
    F32 = 11
    F64 = 12
    C64 = 13  #: complex64 (two f32)
    C128 = 14  #: complex128 (two f64)

    @property
    def numpy(self) -> np.dtype:
        """The little-endian numpy dtype of this code (``BYTES`` maps to ``uint8``)."""
        return _WIRE_DTYPES[self]

    @classmethod
    def from_numpy(cls, dtype: Any) -> DType:
        """The code for a numpy dtype of either byte order; :class:`WireError` if unsupported."""
        dt = np.dtype(dtype)
        try:
            return _CODE_BY_KIND[(dt.kind, dt.itemsize)]
        except KeyError:
            raise WireError(f"dtype {dt} cannot travel on the wire", "dtype") from None


_WIRE_DTYPES = {
    DType.BYTES: np.dtype("u1"),
    DType.BOOL: np.dtype("?"),
    DType.U8: np.dtype("u1"),
    DType.I8: np.dtype("i1"),
    DType.U16: np.dtype("<u2"),
    DType.I16: np.dtype("<i2"),
    DType.U32: np.dtype("<u4"),
    DType.I32: np.dtype("<i4"),
    DType.U64: np.dtype("<u8"),
    DType.I64: np.dtype("<i8"),
    DType.F16: np.dtype("<f2"),
    DType.F32: np.dtype("<f4"),
    DType.F64: np.dtype("<f8"),
    DType.C64: np.dtype("<c8"),
    DType.C128: np.dtype("<c16"),
}
_CODE_BY_KIND = {
    (dt.kind, dt.itemsize): code for code, dt in _WIRE_DTYPES.items() if code != DType.BYTES
}
_DTYPE_BY_CODE = {int(code): dt for code, dt in _WIRE_DTYPES.items()}
# Fast lookup by dtype object, both byte orders (``from_numpy`` is the general fallback).
_CODE_BY_DTYPE = {}
for _code, _dt in _WIRE_DTYPES.items():
    if _code != DType.BYTES:
        _CODE_BY_DTYPE[_dt] = _code
        _CODE_BY_DTYPE[_dt.newbyteorder(">")] = _code
        _CODE_BY_DTYPE[_dt.newbyteorder("=")] = _code
_KIND_BY_VALUE = {int(k): k for k in PayloadKind}
#: Codes of the dtypes whose bytes go out unchanged (little-endian or one byte): the fast path.
_CODE_AS_IS = {
    dt: code
    for code, dt in _WIRE_DTYPES.items()
    if code != DType.BYTES and dt.byteorder != ">" and dt.isnative
}


@dataclass(eq=False, slots=True)
class Frame:
    """One bridge message: a payload plus its routing metadata.

    :param kind: What the payload is (:class:`PayloadKind`).
    :param payload: A numpy array (any supported dtype and shape) or opaque ``bytes``.
        Decoded arrays are read-only views of the received message unless
        ``decode(..., copy=True)``.
    :param stream_id: Stream / link identifier (u32).
    :param seq: Frame sequence number (u64).
    :param layer: Semantic layer index (u16; 0 = not layered).
    :param timestamp_ns: Nanoseconds since the Unix epoch; defaults to now.
    :param packed_bits: Send a 0/1 ``uint8``/``bool`` array packed 8 bits per byte,
        MSB first (the receiver gets the unpacked array back).

    >>> f = Frame(PayloadKind.SEMANTIC_BITS, np.array([1, 0, 1], np.uint8), layer=2,
    ...           packed_bits=True)
    >>> len(encode(f))  # 40-byte header + one u64 dimension + one packed byte
    49
    """

    kind: PayloadKind
    payload: np.ndarray | bytes
    stream_id: int = 0
    seq: int = 0
    layer: int = 0
    timestamp_ns: int = field(default_factory=time.time_ns)
    packed_bits: bool = False

    @classmethod
    def from_json(cls, obj: Any, kind: PayloadKind = PayloadKind.CONTROL, **meta: Any) -> Frame:
        """A frame whose payload is ``obj`` as compact UTF-8 JSON (for CONTROL and ACK).

        >>> Frame.from_json({"cmd": "start"}, seq=1).json()
        {'cmd': 'start'}
        """
        data = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")
        return cls(kind, data, **meta)

    def json(self) -> Any:
        """The payload parsed as UTF-8 JSON; :class:`WireError` if it is not valid JSON.

        >>> Frame(PayloadKind.ACK, b'{"seq": 3}').json()["seq"]
        3
        """
        if not isinstance(self.payload, (bytes, bytearray, memoryview)):
            raise WireError("payload is an array, not JSON bytes", "json")
        try:
            return json.loads(bytes(self.payload).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WireError(f"payload is not UTF-8 JSON: {e}", "json") from None


def pack_bits(bits: Any) -> bytes:
    """Pack a sequence of 0/1 values MSB-first into bytes (the last byte zero-padded).

    >>> pack_bits([1, 0, 1, 1, 0, 0, 0, 0, 1]).hex()
    'b080'
    """
    arr = np.asarray(bits)
    if arr.size and (arr.dtype.kind not in "biu" or arr.min() < 0 or arr.max() > 1):
        raise WireError("bits must be 0 or 1", "value")
    return np.packbits(arr.astype(np.uint8, copy=False).ravel(), bitorder="big").tobytes()


def unpack_bits(data: Any, count: int | None = None) -> np.ndarray:
    """Unpack MSB-first bytes into a ``uint8`` array of 0/1 (the first ``count`` bits).

    >>> unpack_bits(b"\\xb0\\x80", 9).tolist()
    [1, 0, 1, 1, 0, 0, 0, 0, 1]
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if count is not None and not 0 <= count <= 8 * raw.size:
        raise WireError(f"cannot unpack {count} bits from {raw.size} bytes", "length")
    return np.unpackbits(raw, count=count, bitorder="big")


def encode(frame: Frame, *, payload_crc: bool = True) -> bytes:
    """Serialise a :class:`Frame` into one wire message (see the module table).

    :param frame: The frame; its payload is an array of a :class:`DType` or bytes.
    :param payload_crc: CRC over header and payload; ``False`` covers the header and shape
        only (flag ``HEADER_CRC``), for carriers that keep bytes intact themselves.
    :output: The message bytes. :class:`WireError` if a field or the dtype cannot be sent.

    >>> msg = encode(Frame(PayloadKind.ACK, b"", seq=1, timestamp_ns=0))
    >>> msg[:4], len(msg)
    (b'GSCW', 40)
    """
    payload = frame.payload
    if type(payload) is np.ndarray and not frame.packed_bits:
        # Fast path (the common case: a C-contiguous array of a wire dtype, shape 1..8-D):
        # one header pack, the CRC over header and array buffer, one join; no copies before.
        code = _CODE_AS_IS.get(payload.dtype)
        shape = payload.shape
        if code is not None and 0 < len(shape) <= MAX_NDIM and payload.flags.c_contiguous:
            if frame.kind not in _KIND_BY_VALUE:
                raise WireError(f"unknown payload kind {frame.kind!r}", "kind")
            try:
                tail = _TAIL[len(shape)].pack(
                    VERSION, frame.kind, code, len(shape), 0 if payload_crc else FLAG_HEADER_CRC,
                    frame.layer, frame.stream_id, payload.nbytes, frame.seq, frame.timestamp_ns,
                    *shape,
                )
            except (struct.error, TypeError) as e:
                raise WireError(
                    f"header field out of range or not an integer: {e}", "field"
                ) from None
            crc = zlib.crc32(payload, zlib.crc32(tail)) if payload_crc else zlib.crc32(tail)
            return b"".join((_MAGIC_CRC.pack(MAGIC, crc), tail, payload))
    return _encode_general(frame, payload_crc)


def _encode_general(frame: Frame, payload_crc: bool) -> bytes:
    """:func:`encode` for every payload: bytes, packed bits, conversions, 0-d arrays."""
    kind = frame.kind
    if kind not in _KIND_BY_VALUE:
        raise WireError(f"unknown payload kind {kind!r}", "kind")
    payload = frame.payload
    flags = 0
    if isinstance(payload, np.ndarray) or not isinstance(payload, (bytes, bytearray, memoryview)):
        arr = payload if isinstance(payload, np.ndarray) else np.asarray(payload)
        code = _CODE_BY_DTYPE.get(arr.dtype)
        if code is None:
            code = DType.from_numpy(arr.dtype)
        shape = arr.shape
        ndim = len(shape)
        if ndim > MAX_NDIM:
            raise WireError(f"ndim {ndim} > {MAX_NDIM}", "shape")
        if frame.packed_bits:
            if code not in (DType.U8, DType.BOOL):
                raise WireError("packed_bits needs a uint8 or bool array", "dtype")
            data = pack_bits(arr)
            nbytes = len(data)
            flags = FLAG_PACKED_BITS
        else:
            wdt = _WIRE_DTYPES[code]
            if arr.dtype == wdt and arr.dtype.byteorder != ">" and arr.flags.c_contiguous:
                data = arr if ndim else arr.reshape(1)
            else:
                data = np.ascontiguousarray(arr, dtype=wdt).reshape(-1)
            nbytes = data.nbytes
    else:
        if frame.packed_bits:
            raise WireError("packed_bits needs an array payload", "flags")
        code, shape, ndim = DType.BYTES, (), 0
        data = payload if isinstance(payload, bytes) else bytes(payload)
        nbytes = len(data)
    if not payload_crc:
        flags |= FLAG_HEADER_CRC
    try:
        tail = _TAIL[ndim].pack(
            VERSION,
            kind,
            code,
            ndim,
            flags,
            frame.layer,
            frame.stream_id,
            nbytes,
            frame.seq,
            frame.timestamp_ns,
            *shape,
        )
    except (struct.error, TypeError) as e:
        raise WireError(f"header field out of range or not an integer: {e}", "field") from None
    crc = zlib.crc32(data, zlib.crc32(tail)) if payload_crc else zlib.crc32(tail)
    return b"".join((_MAGIC_CRC.pack(MAGIC, crc), tail, data))


def decode(buf: Any, *, copy: bool = False, max_payload: int = MAX_PAYLOAD) -> Frame:
    """Parse and verify one wire message.

    Checks run in this order: size, magic, version, ndim, lengths, CRC, kind, flags, dtype,
    shape/length consistency, values (bool bytes, packed-bit padding).

    :param buf: The message (bytes, bytearray, memoryview, ``zmq.Frame``...).
    :param copy: Return a writable copy of an array payload instead of a read-only view.
    :param max_payload: Reject payloads longer than this many bytes.
    :output: The :class:`Frame`. Every rejection raises :class:`WireError` with a
        ``cause`` of ``truncated``, ``magic``, ``version``, ``length``, ``crc``, ``kind``,
        ``flags``, ``dtype``, ``shape``, ``value`` or ``type``.

    >>> decode(encode(Frame(PayloadKind.CONTROL, b"hi", timestamp_ns=5))).payload
    b'hi'
    """
    try:
        mv = memoryview(buf)
    except TypeError:
        raise WireError(f"cannot read a message from {type(buf).__name__}", "type") from None
    if type(buf) is not bytes and (mv.ndim != 1 or mv.itemsize != 1):
        try:
            mv = mv.cast("B")
        except TypeError:
            raise WireError("message buffer is not contiguous", "type") from None
    n = mv.nbytes
    if n < HEADER_SIZE:
        raise WireError(f"{n} bytes is shorter than the {HEADER_SIZE}-byte header", "truncated")
    (magic, crc, version, kind, code, ndim, flags, layer, stream_id, length, seq, ts) = (
        _HDR.unpack_from(mv)
    )
    if magic != MAGIC:
        raise WireError(f"bad magic {bytes(magic)!r}", "magic")
    if version != VERSION:
        raise WireError(f"unsupported wire version {version} (expected {VERSION})", "version")
    if ndim > MAX_NDIM:
        raise WireError(f"ndim {ndim} > {MAX_NDIM}", "shape")
    start = HEADER_SIZE + 8 * ndim
    if length > max_payload:
        raise WireError(f"payload length {length} > limit {max_payload}", "length")
    if n != start + length:
        if n < start + length:
            raise WireError(f"message has {n} bytes, header needs {start + length}", "truncated")
        raise WireError(f"{n - start - length} bytes after the payload", "length")
    # the flag is inside the range it selects: a flipped flag fails the CRC either way
    if zlib.crc32(mv[_CRC_START:start] if flags & FLAG_HEADER_CRC else mv[_CRC_START:]) != crc:
        raise WireError("CRC-32 mismatch", "crc")
    kind_code, kind = kind, _KIND_BY_VALUE.get(kind)
    if kind is None:
        raise WireError(f"unknown payload kind {kind_code}", "kind")
    if flags & ~_KNOWN_FLAGS:
        raise WireError(f"unknown flags 0x{flags:04x}", "flags")
    dtype = _DTYPE_BY_CODE.get(code)
    if dtype is None:
        raise WireError(f"unknown dtype code {code}", "dtype")
    shape = _DIMS[ndim].unpack_from(mv, HEADER_SIZE)
    packed = bool(flags & FLAG_PACKED_BITS)
    payload: np.ndarray | bytes
    if code == DType.BYTES:
        if ndim or packed:
            raise WireError("opaque bytes payload with a shape or packed flag", "shape")
        payload = bytes(mv[start:])
    else:
        count = shape[0] if ndim == 1 else math.prod(shape)
        if count == 0 and math.prod(d or 1 for d in shape) > _MAX_EMPTY_DIMS:
            raise WireError(f"empty array shape {shape} has dimensions numpy cannot hold",
                            "shape")
        if packed:
            if code not in (DType.U8, DType.BOOL):
                raise WireError("packed bits need dtype u8 or bool", "dtype")
            if length != (count + 7) // 8:
                raise WireError(f"{count} packed bits need {(count + 7) // 8} bytes", "length")
            raw = np.frombuffer(mv, np.uint8, length, start)
            if count % 8 and raw[-1] & ((1 << (8 - count % 8)) - 1):
                raise WireError("non-zero padding bits", "value")
            payload = np.unpackbits(raw, count=count, bitorder="big").reshape(shape)
            if code == DType.BOOL:
                payload = payload.view(np.bool_)
        else:
            if length != count * dtype.itemsize:
                raise WireError(
                    f"shape {shape} of {dtype} needs {count * dtype.itemsize} bytes, "
                    f"length says {length}",
                    "length",
                )
            if count == 0:
                payload = np.zeros(shape, dtype)
            else:
                payload = np.frombuffer(mv, dtype, count, start)
                if ndim != 1:
                    payload = payload.reshape(shape)
                if code == DType.BOOL and np.frombuffer(mv, np.uint8, count, start).max() > 1:
                    raise WireError("bool array holds bytes other than 0 and 1", "value")
                if copy:
                    payload = payload.copy()
    return Frame(kind, payload, stream_id, seq, layer, ts, packed)
