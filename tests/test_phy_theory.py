"""The simulated link against closed-form theory (issue: foundation + PHY, verification)."""

import math

import numpy as np
import pytest
import torch

from gsc_phy import theory
from gsc_phy.config import LinkConfig
from gsc_phy.link import Link


def _ber_curve(link: Link, snrs, frames: int, batch: int):
    out = []
    for snr in snrs:
        errors = bits = 0
        for _ in range(math.ceil(frames / batch)):
            with torch.no_grad():
                o = link(batch_size=batch, snr_db=float(snr))
            errors += int((o.bits != o.bits_hat).sum())
            bits += o.bits.numel()
        out.append(errors / bits)
    return out


@pytest.mark.parametrize("mod,bps", [("qpsk", 2), ("16qam", 4), ("64qam", 6)])
def test_uncoded_qam_awgn_matches_closed_form(mod, bps):
    """SNR at BER 1e-3 within 0.25 dB of the exact Gray-QAM BER (Cho & Yoon 2002)."""
    grid = np.arange(0.0, 30.0, 0.01)
    s_theory = float(grid[np.argmin(np.abs(np.log10(theory.ber_qam_awgn(grid, bps)) + 3))])
    link = Link(LinkConfig(modulation=mod, uncoded=True, seed=1))
    snrs = [s_theory - 0.5, s_theory, s_theory + 0.5]
    bers = _ber_curve(link, snrs, frames=1536 // bps * 2, batch=512)
    s_sim = theory.snr_at_ber(snrs, bers, 1e-3)
    assert abs(s_sim - s_theory) <= 0.25, (s_sim, s_theory, bers)


@pytest.mark.parametrize("mod", ["bpsk", "qpsk"])
def test_uncoded_rayleigh_perfect_csi_matches_closed_form(mod):
    """Flat Rayleigh block fading, perfect CSI: SNR at BER 1e-2 within 0.5 dB of theory."""
    ber_fn = theory.ber_bpsk_rayleigh if mod == "bpsk" else theory.ber_qpsk_rayleigh
    grid = np.arange(0.0, 40.0, 0.01)
    s_theory = float(grid[np.argmin(np.abs(np.log10(ber_fn(grid)) + 2))])
    link = Link(LinkConfig(channel="rayleigh", modulation=mod, uncoded=True, seed=2))
    snrs = [s_theory - 1.0, s_theory, s_theory + 1.0]
    # block fading: one fade per frame, so the statistics come from the number of frames
    bers = _ber_curve(link, snrs, frames=12288, batch=2048)
    s_sim = theory.snr_at_ber(snrs, bers, 1e-2)
    assert abs(s_sim - s_theory) <= 0.5, (s_sim, s_theory, bers)


def test_ldpc_rate_half_qpsk_within_normal_approximation():
    """5G LDPC (1024, 2048) QPSK on AWGN: BLER <= 1e-2 at 1.5 dB above the normal
    approximation of the same (k, n); and, as a sanity check, no code beats the bound:
    BLER > 1e-2 at the bound itself."""
    k, n = 1024, 2048
    s_na = theory.normal_approximation_snr_db(k, n, 1e-2)
    link = Link(LinkConfig(k=k, n=n, modulation="qpsk", seed=3))
    blers = {}
    for snr, frames in ((s_na + 1.5, 384), (s_na, 128)):
        errs = blocks = 0
        for _ in range(frames // 64):
            with torch.no_grad():
                o = link(batch_size=64, snr_db=snr)
            errs += int((~o.block_ok).sum())
            blocks += o.block_ok.numel()
        blers[snr] = errs / blocks
    assert blers[s_na + 1.5] <= 1e-2, blers
    assert blers[s_na] > 1e-2, blers


def test_mimo_svd_waterfilling_reaches_ergodic_capacity():
    """2x2 i.i.d. Rayleigh, SVD precoding + water-filling, perfect CSI: the measured
    sum_k log2(1 + SINR_k) of the equalised streams equals the ergodic capacity."""
    snr_db = 10.0
    cfg = LinkConfig(channel="rayleigh", num_tx_ant=2, num_rx_ant=2, precoder="svd",
                     water_filling=True, uncoded=True, modulation="qpsk", seed=4)
    link = Link(cfg)
    mi, ratio = [], []
    for _ in range(8):
        with torch.no_grad():
            o = link(batch_size=256, snr_db=snr_db)
        active = o.no_eff < 1e6  # streams switched off by water-filling carry nothing
        sinr = torch.where(active, 1.0 / o.no_eff, torch.zeros_like(o.no_eff))
        mi.append(torch.log2(1 + sinr).sum(dim=1).mean().item())
        err = (o.x_hat - o.x).abs() ** 2
        ratio.append((err[active] / o.no_eff[active]).mean().item())
    c_formula = theory.ergodic_capacity_mimo(snr_db, 2, 2, water_filling=True, seed=7)
    assert abs(np.mean(mi) - c_formula) / c_formula < 0.03, (np.mean(mi), c_formula)
    # the equaliser's noise estimate is the real error variance
    assert abs(np.mean(ratio) - 1.0) < 0.05, np.mean(ratio)
