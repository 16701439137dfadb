"""Bench calibration helpers: receive levels and carrier frequency offset from a recording.

numpy only (both interpreters). Used by the over-the-air runbook (hardware/README.md)::

    python3 -m hardware.calibration RECORDING [--tone-hz 100e3]

prints the received level (RMS/peak dBFS, DC) and, with ``--tone-hz``, the frequency offset
of a CW tone sent at that baseband frequency, in Hz and ppm of the recording's centre
frequency, with the corrections to apply.

>>> fs = 1e6
>>> x = 0.1 * np.exp(2j * np.pi * (100e3 + 1234.5) / fs * np.arange(20000))
>>> round(estimate_tone_offset(x, fs, 100e3)["offset_hz"], 1)
1234.5
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

__all__ = ["iq_levels", "estimate_tone_offset", "corrections", "main"]


def iq_levels(x: np.ndarray) -> dict[str, float]:
    """RMS, peak and DC levels in dBFS (full scale = 1.0) and the peak-to-average ratio.

    >>> iq_levels(np.full(100, 0.5 + 0j))["rms_dbfs"]
    -6.02
    """
    x = np.asarray(x, np.complex128)
    if x.size == 0:
        raise ValueError("no samples")
    p = np.abs(x) ** 2
    mean_p = float(np.mean(p))
    peak_p = float(np.max(p))

    def db(v: float) -> float:
        return round(10 * math.log10(v), 2) if v > 0 else -math.inf

    dc = complex(np.mean(x))
    return {"rms_dbfs": db(mean_p), "peak_dbfs": db(peak_p), "papr_db": round(
        db(peak_p) - db(mean_p), 2) if mean_p > 0 else 0.0,
        "dc_dbfs": db(abs(dc) ** 2), "clipped_fraction": float(np.mean(p >= 0.99))}


def estimate_tone_offset(x: np.ndarray, samp_rate_hz: float,
                         expected_tone_hz: float = 0.0) -> dict[str, float]:
    """Frequency of the strongest tone and its offset from ``expected_tone_hz``.

    Coarse peak of a 4x zero-padded FFT (Hann window), then the phase advance of the tone,
    mixed down to DC, between the two halves of the record (lag ``N/2``): about 1 Hz for a
    10 dB tone of 50k samples at 2 MS/s.
    """
    x = np.asarray(x, np.complex128)
    n = len(x)
    if n < 64:
        raise ValueError("need at least 64 samples")
    spec = np.abs(np.fft.fft(x * np.hanning(n), 4 * n))
    k = int(np.argmax(spec))
    f_coarse = np.fft.fftfreq(4 * n, 1.0 / samp_rate_hz)[k]
    y = x * np.exp(-2j * np.pi * f_coarse / samp_rate_hz * np.arange(n))
    lag = n // 2  # residual <= fs/(8n) is well inside the +-fs/n this lag resolves
    f_fine = float(np.angle(np.sum(y[lag:] * np.conj(y[:n - lag])))) * samp_rate_hz / (
        2 * np.pi * lag)
    f = float(f_coarse + f_fine)
    snr = float(spec[k] ** 2 / max(float(np.median(spec ** 2)), 1e-300))
    return {"tone_hz": f, "offset_hz": f - expected_tone_hz,
            "peak_to_median_db": round(10 * math.log10(snr), 1)}


def corrections(offset_hz: float, center_freq_hz: float) -> dict[str, Any]:
    """What to change so the receiver sees no offset (assuming the transmitter is right).

    ``rx_center_freq_hz``: retune the receiver by the offset (``--set center_freq_hz=...``);
    ``pluto_xo_correction``: the PlutoSDR's ``xo_correction`` (40 MHz reference scaled by the
    LO error; both LO and sample clock derive from it).
    """
    out: dict[str, Any] = {"offset_ppm": None, "rx_center_freq_hz": None,
                           "pluto_xo_correction": None}
    if center_freq_hz > 0:
        ppm = -offset_hz / center_freq_hz * 1e6  # receiver LO high -> tone appears low
        out["offset_ppm"] = round(ppm, 3)
        out["rx_center_freq_hz"] = center_freq_hz + offset_hz
        out["pluto_xo_correction"] = int(round(40e6 * (1 + ppm * 1e-6)))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python3 -m hardware.calibration RECORDING [--tone-hz F]``: JSON on stdout."""
    from .sigmf_lite import RecordingError, read_recording

    ap = argparse.ArgumentParser(prog="python3 -m hardware.calibration",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("recording", help="SigMF recording (base name or .sigmf-meta)")
    ap.add_argument("--tone-hz", type=float, default=None,
                    help="baseband frequency of the CW tone the transmitter sends")
    ap.add_argument("--max-samples", type=int, default=2_000_000)
    a = ap.parse_args(argv)
    try:
        rec = read_recording(a.recording)
        x = rec.samples(0, a.max_samples)
        out: dict[str, Any] = {"recording": a.recording, "samples": len(x),
                               "sample_rate_hz": rec.sample_rate_hz,
                               "center_freq_hz": rec.center_freq_hz, **iq_levels(x)}
        if a.tone_hz is not None:
            est = estimate_tone_offset(x, rec.sample_rate_hz, a.tone_hz)
            out.update(est)
            out.update(corrections(est["offset_hz"], rec.center_freq_hz or 0.0))
    except (RecordingError, ValueError) as e:
        print(f"gsc: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
