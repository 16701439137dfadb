"""Bench calibration helpers (hardware/calibration.py): both interpreters."""

import json
import subprocess
import sys

import numpy as np
import pytest

from hardware.calibration import corrections, estimate_tone_offset, iq_levels
from hardware.impairments import apply_impairments
from hardware.sigmf_lite import SigMFWriter

pytestmark = pytest.mark.both


def test_tone_offset_through_cfo_and_noise():
    fs, tone, cfo = 2.16e6, 100e3, -37_123.4
    x = 0.3 * np.exp(2j * np.pi * tone / fs * np.arange(50_000))
    y = apply_impairments(x.astype(np.complex64), samp_rate_hz=fs, cfo_hz=cfo, esno_db=10,
                          signal_power=0.09, seed=1)
    est = estimate_tone_offset(y, fs, tone)
    assert est["offset_hz"] == pytest.approx(cfo, abs=2.0)
    c = corrections(est["offset_hz"], 2.45e9)
    assert c["offset_ppm"] == pytest.approx(37_123.4 / 2.45e3, abs=0.01)
    assert c["rx_center_freq_hz"] == pytest.approx(2.45e9 + cfo, abs=2.0)
    assert abs(c["pluto_xo_correction"] - 40e6 * (1 + c["offset_ppm"] * 1e-6)) <= 1


def test_levels():
    lv = iq_levels(np.full(1000, 0.5 + 0.5j))
    assert lv["rms_dbfs"] == pytest.approx(-3.01, abs=0.01) and lv["papr_db"] == 0.0
    assert lv["dc_dbfs"] == pytest.approx(-3.01, abs=0.01) and lv["clipped_fraction"] == 0
    with pytest.raises(ValueError):
        iq_levels(np.zeros(0, np.complex64))


def test_command_line(tmp_path):
    base = str(tmp_path / "tone")
    w = SigMFWriter(base, sample_rate_hz=1e6, center_freq_hz=915e6)
    w.write((0.2 * np.exp(2j * np.pi * 0.1005 * np.arange(20000))).astype(np.complex64))
    w.close()
    res = subprocess.run([sys.executable, "-m", "hardware.calibration", base, "--tone-hz",
                          "100e3"], capture_output=True, text=True, timeout=60)
    out = json.loads(res.stdout)
    assert res.returncode == 0 and out["offset_hz"] == pytest.approx(500.0, abs=0.5)
    res = subprocess.run([sys.executable, "-m", "hardware.calibration", base + "x"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
