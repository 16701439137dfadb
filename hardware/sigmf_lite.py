"""Minimal SigMF reader and writer without the ``sigmf`` package (both interpreters).

The radio side (GNU Radio's Python) has no ``sigmf`` package, yet replays recordings inside
flowgraphs. This module reads a recording's ``.sigmf-meta`` (JSON) and maps its
``.sigmf-data`` with ``numpy.memmap``, checking what replay depends on, and writes
spec-conforming recordings (SigMF 1.x core namespace) from a sample stream. The ML side's
:mod:`hardware.sigmf_io` does the same through the ``sigmf`` package, with its schema
validation on top; both raise :class:`RecordingError` with one line naming the problem.

Supported datatypes: complex ``cf64``, ``cf32``, ``ci32``, ``ci16``, ``ci8``, ``cu32``,
``cu16``, ``cu8``, little (``_le``) or big (``_be``) endian (8-bit types have no suffix);
one channel; no header/trailing bytes. Integers are scaled to [-1, 1) like the ``sigmf``
package does (``x / 2^(bits-1)``; unsigned types are offset by ``2^(bits-1)`` first).

>>> import tempfile, os
>>> base = os.path.join(tempfile.mkdtemp(), "demo")
>>> w = SigMFWriter(base, sample_rate_hz=1e6, center_freq_hz=2.45e9)
>>> w.write(np.ones(10, np.complex64)); w.annotate(2, 5, label="frame")
>>> path = w.close()
>>> rec = read_recording(base)
>>> rec.num_samples, rec.sample_rate_hz, rec.annotations[0]["core:label"]
(10, 1000000.0, 'frame')
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "RecordingError",
    "Recording",
    "SigMFWriter",
    "read_recording",
    "read_meta",
    "recording_paths",
    "datatype_dtype",
    "SIGMF_VERSION",
    "GSC_EXTENSION",
]

#: Version written into ``core:version`` (the sigmf package 1.14 implements spec 1.2).
SIGMF_VERSION = "1.2.0"
#: The ``gsc:`` extension namespace declared in recordings gsc writes.
GSC_EXTENSION = {"name": "gsc", "version": "0.1.0", "optional": True}

_DT_RE = re.compile(r"^c(f|i|u)(8|16|32|64)(_le|_be)?$")


class RecordingError(ValueError):
    """A SigMF recording is missing, truncated, corrupted or unsupported (one line)."""


def recording_paths(path: str) -> tuple[str, str]:
    """``(meta_path, data_path)`` of a recording given its base name or either file.

    >>> recording_paths("cap/x.sigmf-meta")
    ('cap/x.sigmf-meta', 'cap/x.sigmf-data')
    """
    base = str(path)
    for ext in (".sigmf-meta", ".sigmf-data", ".sigmf"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return base + ".sigmf-meta", base + ".sigmf-data"


def datatype_dtype(datatype: str) -> np.dtype:
    """numpy dtype of one complex sample of a SigMF ``core:datatype`` (components as a pair).

    The returned dtype is structured-free: a ``(2,)`` sub-array of the component type, so a
    memmap of shape ``[n]`` holds ``n`` samples.

    >>> datatype_dtype("ci16_le").itemsize, datatype_dtype("cf32_le").itemsize
    (4, 8)
    """
    if not isinstance(datatype, str):
        raise RecordingError(f"core:datatype must be a string, got {datatype!r}")
    m = _DT_RE.match(datatype)
    if not m:
        if re.match(r"^r(f|i|u)(8|16|32|64)", datatype):
            raise RecordingError(f"core:datatype {datatype!r} is real-valued; gsc replays "
                                 "complex IQ only")
        raise RecordingError(f"core:datatype {datatype!r} is not a SigMF sample type")
    kind, bits, endian = m.group(1), int(m.group(2)), m.group(3)
    if kind == "f" and bits not in (32, 64):
        raise RecordingError(f"core:datatype {datatype!r}: floats are 32 or 64 bits")
    if bits == 8 and endian:
        raise RecordingError(f"core:datatype {datatype!r}: 8-bit types take no endianness")
    if bits > 8 and not endian:
        raise RecordingError(f"core:datatype {datatype!r} needs _le or _be")
    base = np.dtype({"f": "f", "i": "i", "u": "u"}[kind] + str(bits // 8))
    if bits > 8:
        base = base.newbyteorder("<" if endian == "_le" else ">")
    return np.dtype((base, (2,)))


def _scale(raw: np.ndarray, datatype: str) -> np.ndarray:
    comp = raw.dtype.base if raw.dtype.subdtype is None else raw.dtype.subdtype[0]
    x = raw.astype(np.float64) if comp.kind != "f" else raw
    if comp.kind == "u":
        x = x - 2.0 ** (comp.itemsize * 8 - 1)
    if comp.kind in "iu":
        x = x / 2.0 ** (comp.itemsize * 8 - 1)
    out = np.empty(x.shape[0], np.complex64)
    out.real = x[:, 0]
    out.imag = x[:, 1]
    return out


def _to_raw(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    comp = dtype.subdtype[0]
    pair = np.empty((len(x), 2), np.float64)
    pair[:, 0] = x.real
    pair[:, 1] = x.imag
    if comp.kind in "iu":
        full = 2.0 ** (comp.itemsize * 8 - 1)
        pair = np.clip(np.round(pair * full), -full, full - 1)
        if comp.kind == "u":
            pair = pair + full
    return pair.astype(comp)


def _finite_number(meta_name: str, where: str, value: Any, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordingError(f"{meta_name}: {where} must be a number, got {value!r}")
    v = float(value) if abs(value) < 1e308 else math.inf  # float(huge int) would overflow
    if not math.isfinite(v) or (positive and v <= 0):
        shown = f"{value!r}" if math.isfinite(v) else "a number out of range"
        raise RecordingError(f"{meta_name}: {where} must be a {'positive ' if positive else ''}"
                             f"finite number, got {shown}")
    return v


def _index(meta_name: str, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordingError(f"{meta_name}: {where} must be a non-negative integer, "
                             f"got {value!r}")
    return value


def read_meta(meta_path: str) -> dict[str, Any]:
    """Parse and structurally check a ``.sigmf-meta`` file (not the data).

    Checks: valid UTF-8 JSON object with ``global``, ``captures`` and ``annotations``;
    ``core:datatype`` supported, ``core:sample_rate`` positive, one channel; captures and
    annotations with non-negative integer ``core:sample_start`` (captures ascending).
    """
    name = os.path.basename(meta_path)
    try:
        with open(meta_path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise RecordingError(f"no SigMF metadata file {meta_path}") from None
    except OSError as e:
        raise RecordingError(f"cannot read {meta_path}: {e.strerror}") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecordingError(f"{name} is not UTF-8 text (corrupted metadata)") from None
    except json.JSONDecodeError as e:
        raise RecordingError(f"{name} is not valid JSON (line {e.lineno} column {e.colno}: "
                             f"{e.msg}); truncated or corrupted metadata") from None
    except RecursionError:
        raise RecordingError(f"{name}: JSON nested too deeply (corrupted metadata)") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise RecordingError(f"{name}: unreadable JSON value ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise RecordingError(f"{name}: the top level must be a JSON object")
    for key, typ, what in (("global", dict, "object"), ("captures", list, "array"),
                           ("annotations", list, "array")):
        if key not in meta:
            raise RecordingError(f"{name}: missing the {key!r} section")
        if not isinstance(meta[key], typ):
            raise RecordingError(f"{name}: {key!r} must be a JSON {what}")
    g = meta["global"]
    if "core:datatype" not in g:
        raise RecordingError(f"{name}: global core:datatype is missing")
    datatype_dtype(g["core:datatype"])
    if "core:sample_rate" not in g:
        raise RecordingError(f"{name}: global core:sample_rate is missing (replay needs it)")
    _finite_number(name, "core:sample_rate", g["core:sample_rate"], positive=True)
    nch = g.get("core:num_channels", 1)
    if nch != 1:
        raise RecordingError(f"{name}: core:num_channels = {nch!r}; gsc replays one channel")
    if g.get("core:trailing_bytes"):
        raise RecordingError(f"{name}: core:trailing_bytes is not supported")
    if g.get("core:metadata_only"):
        raise RecordingError(f"{name}: a metadata-only recording has no samples to replay")
    last = -1
    for i, cap in enumerate(meta["captures"]):
        if not isinstance(cap, dict):
            raise RecordingError(f"{name}: captures[{i}] must be an object")
        start = _index(name, f"captures[{i}].core:sample_start", cap.get("core:sample_start", 0))
        if start < last:
            raise RecordingError(f"{name}: captures are not in ascending core:sample_start order")
        last = start
        if cap.get("core:header_bytes", 0):
            raise RecordingError(f"{name}: captures[{i}] has core:header_bytes, which gsc "
                                 "replay does not support")
        if "core:frequency" in cap:
            _finite_number(name, f"captures[{i}].core:frequency", cap["core:frequency"])
    for i, ann in enumerate(meta["annotations"]):
        if not isinstance(ann, dict):
            raise RecordingError(f"{name}: annotations[{i}] must be an object")
        if "core:sample_start" not in ann:
            raise RecordingError(f"{name}: annotations[{i}] has no core:sample_start")
        _index(name, f"annotations[{i}].core:sample_start", ann["core:sample_start"])
        if "core:sample_count" in ann:
            _index(name, f"annotations[{i}].core:sample_count", ann["core:sample_count"])
    return meta


@dataclass(eq=False)
class Recording:
    """A SigMF recording opened for replay (samples are memory-mapped, not loaded).

    :param meta_path: Path of the ``.sigmf-meta`` file.
    :param data_path: Path of the ``.sigmf-data`` file.
    :param meta: The parsed metadata.
    :param num_samples: Complex samples in the data file.
    """

    meta_path: str
    data_path: str
    meta: dict[str, Any]
    num_samples: int
    _raw: np.ndarray | None = field(default=None, repr=False)

    @property
    def datatype(self) -> str:
        """``core:datatype`` (e.g. ``cf32_le``)."""
        return self.meta["global"]["core:datatype"]

    @property
    def sample_rate_hz(self) -> float:
        """``core:sample_rate``."""
        return float(self.meta["global"]["core:sample_rate"])

    @property
    def center_freq_hz(self) -> float | None:
        """``core:frequency`` of the first capture, if recorded."""
        caps = self.meta["captures"]
        if caps and "core:frequency" in caps[0]:
            return float(caps[0]["core:frequency"])
        return None

    @property
    def captures(self) -> list[dict[str, Any]]:
        """The capture segments."""
        return self.meta["captures"]

    @property
    def annotations(self) -> list[dict[str, Any]]:
        """The annotations (e.g. detected gsc frames)."""
        return self.meta["annotations"]

    @property
    def global_info(self) -> dict[str, Any]:
        """The ``global`` object."""
        return self.meta["global"]

    def samples(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """complex64 samples ``[start, start + count)`` (scaled to [-1, 1) for integers)."""
        if start < 0 or start > self.num_samples:
            raise RecordingError(f"start {start} is outside the {self.num_samples} samples")
        stop = self.num_samples if count is None else min(self.num_samples, start + count)
        if self._raw is None or stop <= start:
            return np.zeros(0, np.complex64)
        raw = np.asarray(self._raw[start:stop])  # [n, 2] components
        if self.datatype == "cf32_le":
            return np.ascontiguousarray(raw).view("<c8").reshape(-1).astype(np.complex64)
        return _scale(raw, self.datatype)


def _sha512(path: str, chunk: int = 1 << 22) -> str:
    h = hashlib.sha512()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def read_recording(path: str, verify_hash: bool = True) -> Recording:
    """Open a recording for replay, checking that data and metadata agree.

    :param path: Base name, ``.sigmf-meta`` or ``.sigmf-data`` path.
    :param verify_hash: Check ``core:sha512`` when present (reads the whole file once).
    :raises RecordingError: metadata missing/invalid; data file missing, empty, not a whole
        number of samples (truncated), shorter than what captures/annotations reference, or
        not matching its SHA-512.
    """
    meta_path, data_path = recording_paths(path)
    meta = read_meta(meta_path)
    name = os.path.basename(data_path)
    if not os.path.isfile(data_path):
        raise RecordingError(f"no SigMF data file {data_path} next to its metadata")
    dt = datatype_dtype(meta["global"]["core:datatype"])
    size = os.path.getsize(data_path)
    if size % dt.itemsize:
        raise RecordingError(
            f"{name} has {size} bytes, not a whole number of {dt.itemsize}-byte "
            f"{meta['global']['core:datatype']} samples: truncated or corrupted data")
    n = size // dt.itemsize
    for i, cap in enumerate(meta["captures"]):
        if cap.get("core:sample_start", 0) > n:
            raise RecordingError(f"captures[{i}] starts at sample {cap['core:sample_start']} "
                                 f"but {name} holds {n} samples: truncated data")
    for i, ann in enumerate(meta["annotations"]):
        end = ann["core:sample_start"] + ann.get("core:sample_count", 0)
        if end > n:
            raise RecordingError(f"annotations[{i}] ends at sample {end} but {name} holds {n} "
                                 "samples: truncated data")
    want = meta["global"].get("core:sha512")
    if verify_hash and want is not None:
        if not isinstance(want, str) or not re.fullmatch(r"[0-9a-fA-F]{128}", want):
            raise RecordingError(f"{os.path.basename(meta_path)}: core:sha512 is not a "
                                 "SHA-512 hex digest")
        if _sha512(data_path).lower() != want.lower():
            raise RecordingError(f"{name} does not match the core:sha512 of its metadata: "
                                 "corrupted or modified data")
    raw = np.memmap(data_path, dtype=dt, mode="r", shape=(n,)) if n else None
    return Recording(meta_path, data_path, meta, n, raw)


def _now_iso() -> str:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SigMFWriter:
    """Stream complex samples into ``BASE.sigmf-data`` and write ``BASE.sigmf-meta`` on close.

    :param base: Base path (``.sigmf-meta``/``.sigmf-data`` are added; directories created).
    :param sample_rate_hz: ``core:sample_rate``.
    :param center_freq_hz: ``core:frequency`` of the capture (optional).
    :param datatype: Sample format on disk (default ``cf32_le``).
    :param datetime_utc: ISO-8601 ``core:datetime`` of the first sample (default: now).
    :param hw: ``core:hw`` (device description).
    :param description: ``core:description``.
    :param extra_global: More ``global`` keys (``gsc:`` keys declare the gsc extension).
    :param overwrite: Replace an existing recording.
    """

    def __init__(self, base: str, sample_rate_hz: float, center_freq_hz: float | None = None,
                 datatype: str = "cf32_le", datetime_utc: str | None = None,
                 hw: str | None = None, description: str | None = None,
                 extra_global: Mapping[str, Any] | None = None, overwrite: bool = False):
        self.meta_path, self.data_path = recording_paths(base)
        if not overwrite:
            for p in (self.meta_path, self.data_path):
                if os.path.exists(p):
                    raise RecordingError(f"{p} already exists (choose another name)")
        _finite_number("recording", "sample_rate_hz", sample_rate_hz, positive=True)
        self.dtype = datatype_dtype(datatype)
        self.datatype = datatype
        self.sample_rate_hz = float(sample_rate_hz)
        self.global_info: dict[str, Any] = {
            "core:datatype": datatype,
            "core:sample_rate": self.sample_rate_hz,
            "core:version": SIGMF_VERSION,
            "core:num_channels": 1,
            "core:recorder": "gsc",
        }
        if hw:
            self.global_info["core:hw"] = str(hw)
        if description:
            self.global_info["core:description"] = str(description)
        if extra_global:
            self.global_info.update(extra_global)
        self.capture: dict[str, Any] = {"core:sample_start": 0,
                                        "core:datetime": datetime_utc or _now_iso()}
        if center_freq_hz is not None:
            self.capture["core:frequency"] = _finite_number("recording", "center_freq_hz",
                                                            center_freq_hz)
        self.annotations: list[dict[str, Any]] = []
        d = os.path.dirname(os.path.abspath(self.data_path))
        os.makedirs(d, exist_ok=True)
        self._fh = open(self.data_path, "wb", buffering=0)  # the file size tracks the writes
        self._hash = hashlib.sha512()
        self.num_samples = 0
        self.closed = False

    def write(self, samples: np.ndarray) -> None:
        """Append complex samples."""
        if self.closed:
            raise RecordingError("the recording is closed")
        x = np.asarray(samples).reshape(-1)
        if self.datatype == "cf32_le":
            b = x.astype("<c8").tobytes()
        else:
            b = _to_raw(x, self.dtype).tobytes()
        self._fh.write(b)
        self._hash.update(b)
        self.num_samples += len(x)

    def annotate(self, sample_start: int, sample_count: int, label: str | None = None,
                 comment: str | None = None, **extra: Any) -> None:
        """Add an annotation (e.g. a detected frame); ``extra`` keys like ``gsc:seq``."""
        ann: dict[str, Any] = {"core:sample_start": int(sample_start),
                               "core:sample_count": int(sample_count)}
        if label is not None:
            ann["core:label"] = str(label)
        if comment is not None:
            ann["core:comment"] = str(comment)
        ann.update(extra)
        self.annotations.append(ann)

    def metadata(self) -> dict[str, Any]:
        """The metadata as it will be written."""
        g = dict(self.global_info)
        g["core:sha512"] = self._hash.hexdigest()
        keys = _all_keys([g, self.capture, *self.annotations])
        if any(k.startswith("gsc:") for k in keys):
            g.setdefault("core:extensions", [dict(GSC_EXTENSION)])
        anns = sorted(self.annotations, key=lambda a: a["core:sample_start"])
        return {"global": g, "captures": [dict(self.capture)], "annotations": anns}

    def close(self) -> str:
        """Flush the data, write the metadata; returns the metadata path."""
        if self.closed:
            return self.meta_path
        self._fh.close()
        self.closed = True
        for i, a in enumerate(self.annotations):
            if a["core:sample_start"] + a["core:sample_count"] > self.num_samples:
                raise RecordingError(f"annotation {i} ends beyond the {self.num_samples} "
                                     "samples written")
        tmp = self.meta_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(self.metadata(), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, self.meta_path)
        return self.meta_path

    def __enter__(self) -> SigMFWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _all_keys(objs: Iterable[Mapping[str, Any]]) -> set[str]:
    out: set[str] = set()
    for o in objs:
        out.update(o)
    return out
