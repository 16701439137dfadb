"""MCS table, measured thresholds and genie link adaptation (gsc_phy.mcs)."""

import math

import numpy as np
import pytest

from bridge.common import ConfigError
from gsc_phy.config import LinkConfig
from gsc_phy.frame import FrameFormat
from gsc_phy.mcs import (
    MCS_TABLE,
    SINGLE_SLOT_TABLE,
    bler_crossing_db,
    calibrated_profiles,
    expected_bler,
    load_thresholds,
    mcs_by_index,
    select_mcs,
    shannon_snr_db,
    threshold_db,
)

PROFILES = ("awgn", "tdl-a", "rayleigh")


def test_table_follows_38214_and_fills_one_slot():
    assert [m.index for m in SINGLE_SLOT_TABLE] == list(range(1, 28))
    assert MCS_TABLE[3:] == SINGLE_SLOT_TABLE  # MCS 1x8, 1x4, 1x2 first
    assert [m.bits_per_symbol for m in SINGLE_SLOT_TABLE] == [2] * 4 + [4] * 6 + [6] * 9 + [8] * 8
    assert mcs_by_index(13).table_rate == pytest.approx(567 / 1024)
    assert mcs_by_index(1).target_rate == pytest.approx(0.2)  # 193/1024 raised to 1/5
    se = [m.spectral_efficiency for m in MCS_TABLE]
    assert se == sorted(se)
    for m in MCS_TABLE:
        ff = FrameFormat.from_config(m.link_config())
        assert ff.num_slots == 1 and ff.codewords_per_frame == 1 and ff.padding_bits == 0
        rate = ff.code_rate * m.repetitions  # the LDPC rate of one transmission
        assert 0.2 <= rate <= 948 / 1024 + 1e-9
        assert abs(rate - m.target_rate) < 1 / ff.n + 1e-9


def test_thresholds_cover_the_table_and_respect_shannon():
    doc = load_thresholds()
    assert doc["snr_kind"] == "esno" and doc["target_bler"] == 0.1
    assert set(PROFILES) <= set(calibrated_profiles(doc))
    for profile in PROFILES:
        for m in MCS_TABLE:
            entry = doc["profiles"][profile]["mcs"][m.key]
            # no code beats the AWGN capacity of its payload rate (fading costs more)
            assert entry["threshold_db"] > shannon_snr_db(entry["payload_bits_per_data_re"])
            assert entry["points"], "raw measurements are stored"
    awgn = [threshold_db(m, "awgn") for m in MCS_TABLE]
    tdl = [threshold_db(m, "tdl-a") for m in MCS_TABLE]
    assert all(t > a for a, t in zip(awgn, tdl, strict=True))


@pytest.mark.parametrize("channel", PROFILES)
def test_selection_is_monotone_in_snr(channel):
    snrs = np.arange(-14.0, 50.0, 0.25)
    chosen = [select_mcs(float(s), channel) for s in snrs]
    se = [0.0 if m is None else m.spectral_efficiency for m in chosen]
    assert all(b >= a for a, b in zip(se, se[1:], strict=False))
    assert chosen[0] is None and chosen[-1] is not None
    for s, m in zip(snrs, chosen, strict=True):
        if m is not None:
            assert threshold_db(m, channel) <= s
            assert expected_bler(m, float(s), channel) <= 0.1 + 1e-9
    # backoff shifts the choice
    assert select_mcs(20.0, channel, backoff_db=5.0) == select_mcs(15.0, channel)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ConfigError, match="calibrate_mcs"):
        select_mcs(10.0, "cdl-c")
    with pytest.raises(ConfigError, match="bracket"):
        select_mcs(10.0, "awgn", target_bler=1e-6)


def test_bler_crossing_interpolates_log_linearly():
    pts = [[0.0, 1.0, 100], [1.0, 0.5, 100], [2.0, 0.02, 100]]
    x = bler_crossing_db(pts, 0.1)
    assert x == pytest.approx(1.0 + math.log(5) / math.log(25))
    assert bler_crossing_db([[5.0, 0.0, 100]], 0.1) is None


def test_link_config_keeps_base_settings():
    cfg = mcs_by_index(20).link_config(LinkConfig(channel="tdl-a", estimator="ls"))
    assert (cfg.channel, cfg.estimator, cfg.modulation, cfg.n) == ("tdl-a", "ls", "256qam", 6144)
