"""The simulated link against closed-form theory (issue: foundation + PHY, verification).

The measurement code lives in gsc_phy.verification; benchmarks/bench_theory.py runs the
same functions with larger budgets and reports the figures.
"""

import pytest

from gsc_phy import theory, verification
from gsc_phy.config import LinkConfig
from gsc_phy.link import Link


@pytest.mark.parametrize("mod", ["qpsk", "16qam", "64qam"])
def test_uncoded_qam_awgn_matches_closed_form(mod):
    """SNR at BER 1e-3 within 0.25 dB of the exact Gray-QAM BER (Cho & Yoon 2002)."""
    r = verification.uncoded_awgn_gap(mod, bits=2e6)
    assert abs(r["gap_db"]) <= 0.25, r


@pytest.mark.parametrize("mod", ["bpsk", "qpsk"])
def test_uncoded_rayleigh_perfect_csi_matches_closed_form(mod):
    """Flat Rayleigh block fading, perfect CSI: SNR at BER 1e-2 within 0.5 dB of theory."""
    r = verification.uncoded_rayleigh_gap(mod, frames=12288)
    assert abs(r["gap_db"]) <= 0.5, r


def test_ldpc_rate_half_qpsk_within_normal_approximation():
    """5G LDPC (1024, 2048) QPSK on AWGN: BLER <= 1e-2 at 1.5 dB above the normal
    approximation of the same (k, n); and, as a sanity check, no code beats the bound:
    BLER > 1e-2 at the bound itself."""
    s_na = theory.normal_approximation_snr_db(1024, 2048, 1e-2)
    link = Link(LinkConfig(k=1024, n=2048, modulation="qpsk", seed=3))
    assert verification.ldpc_bler(link, s_na + 1.5, frames=384) <= 1e-2
    assert verification.ldpc_bler(link, s_na, frames=128) > 1e-2


def test_mimo_svd_waterfilling_reaches_ergodic_capacity():
    """2x2 i.i.d. Rayleigh, SVD precoding + water-filling, perfect CSI: the measured
    sum_k log2(1 + SINR_k) of the equalised streams equals the ergodic capacity, and the
    equaliser's noise estimate is the real error variance."""
    r = verification.mimo_capacity_check(batches=8)
    assert abs(r["relative_gap"]) < 0.03, r
    assert abs(r["error_variance_over_no_eff"] - 1.0) < 0.05, r
