"""The receiver's impairment specification through the emulated radio path (ML side).

gsc_stream/emulated_link.py chains the same numpy code the GNU Radio blocks wrap (burst
modulator, impairment emulator, streaming receiver with gsc_rx's settings) with gsc_phy's
encoder and LDPC decoder. Frame delivery (CRC ok, right payload) must be >= 99 % at Es/N0
15 dB with CFO +-3 subcarrier spacings, +-50 ppm SRO, 1 dB / 3 deg IQ imbalance, DC offset
and 50 Hz phase noise; beyond the integer-CFO search range the frames must be lost (so the
test can fail), and losses are counted, not hidden.
"""

import pytest

pytest.importorskip("torch")

from gsc_stream.emulated_link import run_emulated  # noqa: E402

SPEC = {"phase_noise_linewidth_hz": 50.0, "iq_gain_db": 1.0, "iq_phase_deg": 3.0,
        "dc_offset": [0.03, -0.02], "esno_db": 15.0}


@pytest.mark.parametrize("cfo, sro", [(-3.0, 50.0), (3.0, -50.0)])
def test_acceptance_conditions_deliver_99_percent(cfo, sro):
    r = run_emulated({**SPEC, "cfo_subcarriers": cfo, "sro_ppm": sro}, frames=60, seed=3)
    assert r["delivery"] >= 0.99, r
    assert r["false_frames"] == 0


def test_cfo_beyond_the_search_range_is_lost_and_counted():
    r = run_emulated({"esno_db": 15.0, "cfo_subcarriers": 5.5}, frames=6, seed=1)
    assert r["delivered"] == 0
    assert r["crc_failed"] + (r["frames"] - r["detected"]) == 6


def test_low_snr_loses_frames():
    r = run_emulated({"esno_db": -2.0}, frames=6, seed=1)
    assert r["delivered"] < 6
