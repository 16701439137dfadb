"""Bridge messages of the streaming link (wire format: :mod:`bridge.wire`).

Three messages cross the ZeroMQ boundary between the ML side and the flowgraphs:

``TX frame`` (ML side -> TX flowgraph)
    kind ``SYMBOLS``, complex64 ``[S, Nd]``: the data symbols of one frame (Gray QAM of
    the LDPC codewords, as ``gsc_phy``'s transmitter maps them); ``seq`` = frame number,
    ``stream_id`` = the grid's ``format_id``.
``RX frame`` (RX flowgraph -> decoder service)
    kind ``SYMBOLS``, complex64 ``[3, S, Nd]``: row 0 the equalised data symbols ``x_hat``,
    row 1 their effective noise variance ``no_eff`` (real part), row 2 burst metadata in its
    first elements (:data:`META_FIELDS`: CFO in subcarrier spacings, SNR estimate in dB,
    noise variance, preamble correlation, detection metric); ``seq`` = RX burst counter,
    ``timestamp_ns`` = detection time, ``stream_id`` = ``format_id``.
``end of stream`` (ML side -> TX flowgraph)
    kind ``CONTROL``, JSON ``{"cmd": "eos"}``: the TX source finishes once its queue is sent,
    which ends a headless flowgraph.

>>> import numpy as np
>>> from bridge import wire
>>> x = np.ones((1, 8), np.complex64); no = np.full((1, 8), 0.1, np.float32)
>>> f = rx_frame(x, no, {"cfo": 0.1}, seq=3, format_id=7)
>>> r = parse_rx_frame(wire.decode(wire.encode(f)), format_id=7)
>>> r.x_hat.shape, round(float(r.no_eff[0, 0]), 3), round(r.meta["cfo"], 3)
((1, 8), 0.1, 0.1)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bridge.wire import Frame, PayloadKind, WireError

__all__ = [
    "META_FIELDS",
    "EOS",
    "RxFrame",
    "tx_frame",
    "parse_tx_frame",
    "rx_frame",
    "parse_rx_frame",
    "eos_frame",
    "set_frame",
    "control_set",
    "is_eos",
]

META_FIELDS = ("cfo", "snr_db", "noise_var", "xcorr", "metric")
EOS = {"cmd": "eos"}


@dataclass
class RxFrame:
    """A parsed RX frame: equalised symbols, noise variances, metadata and wire fields."""

    x_hat: np.ndarray
    no_eff: np.ndarray
    meta: dict = field(default_factory=dict)
    seq: int = 0
    timestamp_ns: int = 0
    format_id: int = 0


def tx_frame(data: np.ndarray, seq: int, format_id: int = 0) -> Frame:
    """The TX frame of one frame's data symbols [S, Nd]."""
    arr = np.ascontiguousarray(data, np.complex64)
    if arr.ndim != 2:
        raise ValueError(f"data symbols must be [streams, symbols], got shape {arr.shape}")
    return Frame(PayloadKind.SYMBOLS, arr, stream_id=int(format_id), seq=int(seq))


def parse_tx_frame(frame: Frame, shape: tuple[int, int], format_id: int | None = None):
    """Data symbols [S, Nd] of a TX frame; :class:`WireError` (cause ``kind``, ``shape``,
    ``dtype``, ``format`` or ``value``) if it does not fit the grid."""
    if frame.kind != PayloadKind.SYMBOLS:
        raise WireError(f"expected SYMBOLS, got {frame.kind.name}", "kind")
    arr = frame.payload
    if not isinstance(arr, np.ndarray) or arr.dtype != np.complex64:
        raise WireError("TX symbols must be a complex64 array", "dtype")
    if tuple(arr.shape) != tuple(shape):
        raise WireError(f"TX symbols shape {arr.shape} != grid {tuple(shape)}", "shape")
    if format_id is not None and frame.stream_id not in (0, format_id):
        raise WireError(
            f"frame for grid format {frame.stream_id:#010x}, this one is {format_id:#010x}",
            "format",
        )
    if not np.isfinite(arr).all():
        raise WireError("TX symbols hold NaN or Inf", "value")
    return arr


def rx_frame(
    x_hat: np.ndarray,
    no_eff: np.ndarray,
    meta: dict | None = None,
    seq: int = 0,
    format_id: int = 0,
    timestamp_ns: int | None = None,
) -> Frame:
    """The RX frame of one burst (see the module docstring for the layout)."""
    x_hat = np.asarray(x_hat)
    s, nd = x_hat.shape
    if nd < len(META_FIELDS):
        raise ValueError("too few data symbols to carry the metadata row")
    arr = np.zeros((3, s, nd), np.complex64)
    arr[0] = x_hat
    arr[1] = np.asarray(no_eff, np.float32)
    meta = meta or {}
    arr[2, 0, : len(META_FIELDS)] = [float(meta.get(k, 0.0)) for k in META_FIELDS]
    kw = {} if timestamp_ns is None else {"timestamp_ns": int(timestamp_ns)}
    return Frame(PayloadKind.SYMBOLS, arr, stream_id=int(format_id), seq=int(seq), **kw)


def parse_rx_frame(
    frame: Frame, shape: tuple[int, int] | None = None, format_id: int | None = None
) -> RxFrame:
    """Parse an RX frame; :class:`WireError` (cause ``kind``, ``dtype``, ``shape``,
    ``format`` or ``value``) if it is not one for this grid."""
    if frame.kind != PayloadKind.SYMBOLS:
        raise WireError(f"expected SYMBOLS, got {frame.kind.name}", "kind")
    arr = frame.payload
    if not isinstance(arr, np.ndarray) or arr.dtype != np.complex64:
        raise WireError("RX payload must be a complex64 array", "dtype")
    if arr.ndim != 3 or arr.shape[0] != 3 or arr.shape[2] < len(META_FIELDS):
        raise WireError(f"RX payload shape {arr.shape} is not [3, S, Nd]", "shape")
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise WireError(f"RX payload shape {arr.shape[1:]} != grid {tuple(shape)}", "shape")
    if format_id is not None and frame.stream_id != format_id:
        raise WireError(
            f"frame for grid format {frame.stream_id:#010x}, this one is {format_id:#010x}",
            "format",
        )
    x_hat, no_eff = arr[0], arr[1].real
    if not (np.isfinite(x_hat).all() and np.isfinite(no_eff).all()) or (no_eff < 0).any():
        raise WireError("RX symbols or noise variances are not finite/non-negative", "value")
    meta = {k: float(arr[2, 0, i].real) for i, k in enumerate(META_FIELDS)}
    return RxFrame(
        x_hat=x_hat,
        no_eff=no_eff.astype(np.float32),
        meta=meta,
        seq=frame.seq,
        timestamp_ns=frame.timestamp_ns,
        format_id=frame.stream_id,
    )


def eos_frame(seq: int = 0) -> Frame:
    """The end-of-stream CONTROL frame."""
    return Frame.from_json(EOS, seq=seq)


def set_frame(snr_db: float, seq: int = 0) -> Frame:
    """A CONTROL frame ``{"cmd": "set", "snr_db": ...}``: the channel emulator takes this
    Es/N0 from the next burst on (a persistent session's next transmission)."""
    return Frame.from_json({"cmd": "set", "snr_db": float(snr_db)}, seq=seq)


def control_set(frame: Frame) -> dict | None:
    """The settings of a ``set`` CONTROL frame (``{"snr_db": ...}``), else None."""
    if frame.kind != PayloadKind.CONTROL:
        return None
    try:
        obj = frame.json()
    except WireError:
        return None
    if not isinstance(obj, dict) or obj.get("cmd") != "set":
        return None
    return {k: v for k, v in obj.items() if k != "cmd"}


def is_eos(frame: Frame) -> bool:
    """Whether ``frame`` is an end-of-stream CONTROL frame."""
    if frame.kind != PayloadKind.CONTROL:
        return False
    try:
        obj = frame.json()
    except WireError:
        return False
    return isinstance(obj, dict) and obj.get("cmd") == "eos"
