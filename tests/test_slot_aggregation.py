"""Slot aggregation (38.214 pdsch-AggregationFactor): MCS 1x2/1x4/1x8 below MCS 1."""

from __future__ import annotations

import pytest
import torch

from bridge.common import ConfigError
from gsc_phy.config import LinkConfig
from gsc_phy.frame import FrameFormat
from gsc_phy.link import Link, combine_repetitions
from gsc_phy.mcs import MCS_TABLE, SINGLE_SLOT_TABLE, mcs_by_index, select_mcs, threshold_db
from gsc_semantic.baselines import AdaptiveLink


def test_config_accepts_only_5g_aggregation_factors():
    assert LinkConfig(repetitions=4).repetitions == 4
    with pytest.raises(ConfigError, match="slot aggregation"):
        LinkConfig(repetitions=3)


def test_frame_costs_r_slots_and_rate_divides():
    one = FrameFormat.from_config(LinkConfig())
    four = FrameFormat.from_config(LinkConfig(repetitions=4))
    assert four.channel_uses_per_frame == 4 * one.channel_uses_per_frame
    assert four.payload_bits_per_frame == one.payload_bits_per_frame
    assert four.code_rate == pytest.approx(one.code_rate / 4)
    # Eb/N0 counts the energy of all r slots: 10 log10(4) = 6.02 dB more noise per Es
    assert four.esno_db(0.0, "ebno") == pytest.approx(one.esno_db(0.0, "ebno") - 6.0206,
                                                       abs=1e-3)


def test_combining_adds_llrs_and_averages_symbols():
    x = torch.arange(8, dtype=torch.float32).reshape(4, 1, 1, 2)
    no = torch.ones(4, 1, 1, 2)
    llr = torch.tensor([[1.0, -2.0], [3.0, 1.0], [0.5, 0.5], [-0.5, 0.5]])
    xc, noc, llrc = combine_repetitions(x, no, llr, 2)
    assert torch.equal(llrc, torch.tensor([[4.0, -1.0], [0.0, 1.0]]))
    assert torch.equal(xc[:, 0, 0], torch.tensor([[1.0, 2.0], [5.0, 6.0]]))
    assert torch.equal(noc, torch.full((2, 1, 1, 2), 0.5))


def test_table_order_and_keys():
    assert [m.key for m in MCS_TABLE[:4]] == ["1x8", "1x4", "1x2", "1"]
    se = [m.spectral_efficiency for m in MCS_TABLE]
    assert se == sorted(se)
    assert all(m.repetitions == 1 for m in SINGLE_SLOT_TABLE)
    assert mcs_by_index("1x4").name == "MCS1x4" and mcs_by_index(1).repetitions == 1
    assert mcs_by_index("1x2").link_config().repetitions == 2


@pytest.mark.parametrize("channel", ["awgn", "tdl-a", "rayleigh"])
def test_thresholds_are_calibrated_and_gain_about_3db_per_doubling(channel):
    thr = [threshold_db(mcs_by_index(k), channel) for k in ("1", "1x2", "1x4", "1x8")]
    gains = [a - b for a, b in zip(thr, thr[1:], strict=False)]
    # same channel in every aggregated slot: chase combining gives 10log10(2) per doubling
    # (up to the 200-codeword counting error of the calibration: ~1 dB on flat fading)
    assert all(1.0 < g < 5.0 for g in gains), thr


def test_aggregation_decodes_where_mcs1_fails():
    torch.manual_seed(0)
    snr = -5.0  # MCS 1's 10 % BLER point is about -3.5 dB
    blers = {}
    for key in ("1", "1x2"):
        link = Link(mcs_by_index(key).link_config(LinkConfig(channel="awgn", seed=1)),
                    device="cpu")
        with torch.no_grad():
            out = link(batch_size=40, snr_db=snr)
        assert out.bits_hat.shape == out.bits.shape and out.llr.shape[0] == 40
        blers[key] = 1.0 - out.block_ok.float().mean().item()
    assert blers["1"] > 0.8 and blers["1x2"] < 0.2, blers


def test_link_adaptation_uses_aggregation_only_on_the_simulated_link():
    assert select_mcs(-8.0, "awgn").key in ("1x4", "1x8")
    sim = AdaptiveLink("awgn", rho=1 / 12)
    mcs, ok = sim.choose_mcs(-8.0)
    assert ok and mcs.repetitions > 1
    streamed = AdaptiveLink("awgn", rho=1 / 12, transport=object())  # any transport object
    mcs, ok = streamed.choose_mcs(-8.0)
    assert not ok and mcs.key == "1"
    with pytest.raises(ConfigError, match="slot aggregation"):
        streamed.budget((1, 28, 28), -8.0, mcs="1x2")
