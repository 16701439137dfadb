"""SigMF recordings of received IQ through the ``sigmf`` package (ML side).

``gsc rx --record DIR/NAME`` stores the raw IQ it receives with SigMF metadata: the device
(``core:hw``), sample rate, centre frequency, receive gain (``gsc:gain_db``), the time of
the first sample (``core:datetime``) and one annotation per detected gsc frame
(``core:label`` ``gsc-frame``, ``gsc:seq``, ``gsc:crc_ok``, ``gsc:snr_db``,
``gsc:cfo_hz``); ``gsc rx --radio sigmf:DIR/NAME`` replays it through the same receiver.

Metadata is built and schema-validated by the ``sigmf`` package (``SigMFFile.validate``);
reading checks data and metadata with :mod:`hardware.sigmf_lite` first (truncated data,
annotations past the end, SHA-512 mismatch, broken JSON), then lets ``sigmf`` validate.
Every problem is one :class:`~hardware.sigmf_lite.RecordingError` line.

>>> import tempfile, os
>>> base = os.path.join(tempfile.mkdtemp(), "rx")
>>> x = np.exp(2j * np.pi * 0.01 * np.arange(1000)).astype(np.complex64)
>>> _ = write_recording(base, x, sample_rate_hz=2.16e6, center_freq_hz=2.45e9, gain_db=30,
...                     hw="USRP B210", annotations=[FrameAnnotation(100, 500, seq=7)])
>>> rec = read_recording(base)
>>> rec.num_samples, rec.annotations[0]["gsc:seq"], rec.captures[0]["gsc:gain_db"]
(1000, 7, 30.0)
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .sigmf_lite import (
    GSC_EXTENSION,
    SIGMF_VERSION,
    Recording,
    RecordingError,
    recording_paths,
)
from .sigmf_lite import read_recording as _read_lite

__all__ = [
    "RecordingError",
    "FrameAnnotation",
    "SigMFRecorder",
    "write_recording",
    "read_recording",
    "recording_summary",
    "FRAME_LABEL",
]

#: ``core:label`` of a detected gsc frame.
FRAME_LABEL = "gsc-frame"


def _sigmf() -> Any:
    try:
        import sigmf
        from sigmf import sigmffile
    except ImportError:
        raise RecordingError("the sigmf package is not installed in this Python (pip install "
                             "sigmf); the radio side replays with hardware.sigmf_lite") from None
    return sigmf, sigmffile


@dataclass(frozen=True)
class FrameAnnotation:
    """A detected frame in a recording.

    :param sample_start: First sample of the frame (its preamble).
    :param sample_count: Samples the frame spans.
    :param seq: Frame sequence number, if decoded.
    :param crc_ok: Whether its transport blocks passed CRC.
    :param snr_db: Estimated SNR.
    :param cfo_hz: Estimated carrier frequency offset.
    :param comment: Free text.
    """

    sample_start: int
    sample_count: int
    seq: int | None = None
    crc_ok: bool | None = None
    snr_db: float | None = None
    cfo_hz: float | None = None
    comment: str | None = None

    def to_metadata(self) -> dict[str, Any]:
        """The annotation's metadata keys besides start and count."""
        md: dict[str, Any] = {"core:label": FRAME_LABEL}
        if self.comment:
            md["core:comment"] = self.comment
        for key, value in (("gsc:seq", self.seq), ("gsc:crc_ok", self.crc_ok),
                           ("gsc:snr_db", self.snr_db), ("gsc:cfo_hz", self.cfo_hz)):
            if value is not None:
                md[key] = bool(value) if key == "gsc:crc_ok" else (
                    int(value) if key == "gsc:seq" else float(value))
        return md


def _as_annotation(a: FrameAnnotation | Mapping[str, Any]) -> FrameAnnotation:
    if isinstance(a, FrameAnnotation):
        return a
    if isinstance(a, Mapping):
        keys = {"sample_start", "sample_count", "seq", "crc_ok", "snr_db", "cfo_hz", "comment"}
        unknown = set(a) - keys
        if unknown:
            raise RecordingError(f"unknown frame annotation field {sorted(unknown)[0]!r}")
        return FrameAnnotation(**a)
    raise RecordingError(f"a frame annotation must be a FrameAnnotation or a mapping, got "
                         f"{type(a).__name__}")


class SigMFRecorder:
    """Stream received IQ into a SigMF recording; metadata validated and written on close.

    :param base: Recording base path (``DIR/NAME``; ``.sigmf-data``/``.sigmf-meta`` added).
    :param sample_rate_hz: Sample rate.
    :param center_freq_hz: Centre frequency of the capture.
    :param gain_db: Receive gain (``gsc:gain_db`` of the capture).
    :param hw: Device description (``core:hw``), e.g. ``"USRP B210 (type=b200), RX2"``.
    :param datetime_utc: ISO-8601 time of the first sample (default: now, UTC).
    :param description: ``core:description``.
    :param extra_global: More ``gsc:`` global keys (e.g. ``gsc:profile``).
    :param overwrite: Replace an existing recording.
    """

    def __init__(self, base: str, sample_rate_hz: float, center_freq_hz: float | None = None,
                 gain_db: float | None = None, hw: str | None = None,
                 datetime_utc: str | None = None, description: str | None = None,
                 extra_global: Mapping[str, Any] | None = None, overwrite: bool = False):
        import datetime as _dt

        self.meta_path, self.data_path = recording_paths(base)
        self.base = self.meta_path[: -len(".sigmf-meta")]
        if not overwrite:
            for p in (self.meta_path, self.data_path):
                if os.path.exists(p):
                    raise RecordingError(f"{p} already exists (choose another name or "
                                         "overwrite)")
        if not (isinstance(sample_rate_hz, (int, float)) and np.isfinite(sample_rate_hz)
                and sample_rate_hz > 0):
            raise RecordingError(f"sample_rate_hz must be a positive number, got "
                                 f"{sample_rate_hz!r}")
        self.sample_rate_hz = float(sample_rate_hz)
        self.center_freq_hz = center_freq_hz
        self.gain_db = gain_db
        self.hw = hw
        self.description = description
        self.extra_global = dict(extra_global or {})
        self.datetime_utc = datetime_utc or _dt.datetime.now(_dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        self.frames: list[FrameAnnotation] = []
        os.makedirs(os.path.dirname(os.path.abspath(self.data_path)), exist_ok=True)
        self._fh = open(self.data_path, "wb")
        self.num_samples = 0
        self.closed = False

    def write(self, samples: np.ndarray) -> None:
        """Append complex samples (stored as ``cf32_le``)."""
        if self.closed:
            raise RecordingError("the recording is closed")
        x = np.asarray(samples).reshape(-1)
        if not np.iscomplexobj(x):
            raise RecordingError(f"a recording takes complex samples, got {x.dtype}")
        self._fh.write(x.astype("<c8").tobytes())
        self.num_samples += len(x)

    def annotate(self, frame: FrameAnnotation | Mapping[str, Any]) -> None:
        """Add a detected frame."""
        self.frames.append(_as_annotation(frame))

    def close(self) -> str:
        """Finish the data file, build/validate the metadata with ``sigmf``; returns its path."""
        if self.closed:
            return self.meta_path
        self._fh.close()
        self.closed = True
        sigmf, sigmffile = _sigmf()
        g: dict[str, Any] = {
            "core:datatype": "cf32_le",
            "core:sample_rate": self.sample_rate_hz,
            "core:version": SIGMF_VERSION,
            "core:num_channels": 1,
            "core:recorder": "gsc",
            "core:extensions": [dict(GSC_EXTENSION)],
        }
        if self.hw:
            g["core:hw"] = str(self.hw)
        if self.description:
            g["core:description"] = str(self.description)
        g.update(self.extra_global)
        capture: dict[str, Any] = {"core:datetime": self.datetime_utc}
        if self.center_freq_hz is not None:
            capture["core:frequency"] = float(self.center_freq_hz)
        if self.gain_db is not None:
            capture["gsc:gain_db"] = float(self.gain_db)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = sigmffile.SigMFFile(global_info=g, data_file=self.data_path)
                f.add_capture(0, metadata=capture)
                for i, fr in enumerate(sorted(self.frames, key=lambda a: a.sample_start)):
                    if fr.sample_start < 0 or fr.sample_count < 0 or (
                            fr.sample_start + fr.sample_count > self.num_samples):
                        raise RecordingError(
                            f"frame annotation {i} ({fr.sample_start}+{fr.sample_count}) lies "
                            f"outside the {self.num_samples} recorded samples")
                    f.add_annotation(fr.sample_start, fr.sample_count, metadata=fr.to_metadata())
                f.tofile(self.base, overwrite=True)
        except RecordingError:
            raise
        except Exception as e:  # sigmf / jsonschema validation
            raise RecordingError(f"SigMF metadata for {self.base} is invalid: "
                                 f"{_first_line(e)}") from None
        return self.meta_path

    def __enter__(self) -> SigMFRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.closed:
            self.close()


def write_recording(base: str, samples: np.ndarray, *, sample_rate_hz: float,
                    center_freq_hz: float | None = None, gain_db: float | None = None,
                    hw: str | None = None, datetime_utc: str | None = None,
                    annotations: Iterable[FrameAnnotation | Mapping[str, Any]] = (),
                    description: str | None = None,
                    extra_global: Mapping[str, Any] | None = None,
                    overwrite: bool = False) -> str:
    """Write a whole recording at once (see :class:`SigMFRecorder`); returns the meta path."""
    rec = SigMFRecorder(base, sample_rate_hz, center_freq_hz=center_freq_hz, gain_db=gain_db,
                        hw=hw, datetime_utc=datetime_utc, description=description,
                        extra_global=extra_global, overwrite=overwrite)
    try:
        rec.write(samples)
        for a in annotations:
            rec.annotate(a)
    except BaseException:
        rec._fh.close()
        raise
    return rec.close()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:240]


def read_recording(path: str, verify_hash: bool = True) -> Recording:
    """Open and validate a recording (structure, data size, hash, then the SigMF schema).

    :param path: Base name or either file.
    :param verify_hash: Check ``core:sha512``.
    :raises RecordingError: one line.
    """
    rec = _read_lite(path, verify_hash=verify_hash)
    _sigmf_mod, sigmffile = _sigmf()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = sigmffile.fromfile(rec.meta_path, skip_checksum=True)
            f.validate()
    except Exception as e:
        raise RecordingError(f"{os.path.basename(rec.meta_path)} does not validate as SigMF: "
                             f"{_first_line(e)}") from None
    return rec


def recording_summary(rec: Recording) -> dict[str, Any]:
    """JSON-ready facts about a recording (for ``gsc radio check sigmf:PATH``)."""
    frames = [a for a in rec.annotations if a.get("core:label") == FRAME_LABEL]
    caps = rec.captures
    return {
        "path": rec.meta_path[: -len(".sigmf-meta")],
        "datatype": rec.datatype,
        "sample_rate_hz": rec.sample_rate_hz,
        "center_freq_hz": rec.center_freq_hz,
        "num_samples": rec.num_samples,
        "duration_s": rec.num_samples / rec.sample_rate_hz,
        "datetime": caps[0].get("core:datetime") if caps else None,
        "gain_db": caps[0].get("gsc:gain_db") if caps else None,
        "hw": rec.global_info.get("core:hw"),
        "frames": len(frames),
        "frames_crc_ok": sum(1 for a in frames if a.get("gsc:crc_ok")),
        "annotations": len(rec.annotations),
    }
