"""``gsc radio list`` / ``gsc radio check`` (hardware/cli.py) through the real ``gsc`` entry point.

ML-side tests (unmarked): under the radio interpreter this file is collected but deselected.
No torch is imported. Device discovery runs on the radio side when GNU Radio is installed.
"""

import os
import sys

import numpy as np
import pytest

pytest.importorskip("click")

from bridge.interpreters import find_radio_python  # noqa: E402
from gsc_cli import root as cli  # noqa: E402
from hardware.sigmf_lite import SigMFWriter  # noqa: E402


@pytest.fixture
def gsc(capsys):
    """Run ``gsc ARGS``; returns (exit code, stdout, stderr)."""

    def run(*args):
        rc = cli.main(list(args))
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


@pytest.fixture(scope="module")
def radio_python():
    info = find_radio_python()
    if not info or not info.get("gnuradio"):
        pytest.skip("no radio interpreter with GNU Radio")
    return info["executable"]


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsc: error: "), err
    return lines[0]


def test_radio_list_says_clearly_when_no_radio_is_attached(gsc, radio_python):
    rc, out, err = gsc("radio", "list")
    assert rc == 0, err
    assert "no radio found" in out or "USRP" in out or "Pluto" in out
    for name in ("b210", "n210", "x310", "pluto", "zmq", "zmq_impaired", "sigmf"):
        assert f"  {name} " in out
    rc, out, _ = gsc("radio", "list", "--json")
    assert rc == 0 and '"devices"' in out and '"profiles"' in out


def test_absent_device_is_one_line_exit_2(gsc, radio_python):
    rc, out, err = gsc("radio", "check", "b210")
    assert rc == 2
    assert "no USRP B210 found" in one_error_line(err)
    rc, out, err = gsc("radio", "check", "pluto", "--set", "device.uri=usb:9.9.9")
    assert rc == 2 and "PlutoSDR" in one_error_line(err)


def test_offline_check_and_bad_profiles(gsc, tmp_path):
    rc, out, err = gsc("radio", "check", "b210", "--offline")
    assert rc == 0 and "profile b210 (uhd: USRP B210)" in out and "profile ok" in out
    rc, out, err = gsc("radio", "check", "pluto", "--offline", "--set", "samp_rate_hz=70e6")
    assert rc == 2 and "out of range for the PlutoSDR" in one_error_line(err)
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: uhd\nsamp_rate_hz: 1e6\n")
    rc, out, err = gsc("radio", "check", str(bad), "--offline")
    assert rc == 2 and "missing center_freq_hz" in one_error_line(err)
    rc, out, err = gsc("radio", "check", "nothere")
    assert rc == 2 and "no radio profile 'nothere'" in one_error_line(err)
    rc, out, err = gsc("radio", "check", "b210", "--set", "novalue")
    assert rc == 2 and "KEY=VALUE" in one_error_line(err)


def test_zmq_profile_check(gsc):
    rc, out, err = gsc("radio", "check", "zmq_impaired")
    assert rc == 0, err
    assert "sro_ppm=50.0" in out and "device ok" in out


def test_sigmf_recording_check(gsc, tmp_path):
    base = str(tmp_path / "cap")
    w = SigMFWriter(base, sample_rate_hz=1e6, center_freq_hz=915e6)
    w.write(np.zeros(500, np.complex64))
    w.annotate(10, 100, label="gsc-frame", **{"gsc:seq": 0, "gsc:crc_ok": True})
    w.close()
    rc, out, err = gsc("radio", "check", f"sigmf:{base}")
    assert rc == 0, err
    assert "recording ok: 500 samples" in out and "1 frame annotations" in out
    with open(base + ".sigmf-data", "r+b") as fh:
        fh.write(b"\x01\x02\x03")
    rc, out, err = gsc("radio", "check", f"sigmf:{base}")
    assert rc == 2 and "core:sha512" in one_error_line(err)
    os.truncate(base + ".sigmf-data", 8 * 50)
    rc, out, err = gsc("radio", "check", f"sigmf:{base}")
    assert rc == 2 and "truncated" in one_error_line(err)


def test_missing_gnu_radio_names_what_to_install(gsc, monkeypatch):
    monkeypatch.setenv("GSC_RADIO_PYTHON", sys.executable)  # .venv: numpy 2, no gnuradio
    rc, out, err = gsc("radio", "list")
    assert rc == 2
    line = one_error_line(err)
    assert "cannot import GNU Radio" in line and "apt-get install gnuradio" in line
    monkeypatch.setenv("GSC_RADIO_PYTHON", "/nonexistent/python3")
    rc, out, err = gsc("radio", "check", "b210")
    assert rc == 2 and "GNU Radio" in one_error_line(err)
