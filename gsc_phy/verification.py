"""Measure the simulated link against theory: used by the tests (small budgets, asserted)
and by ``benchmarks/bench_theory.py`` (large budgets, reported).

Every function returns a dict with the measured value, the theoretical one and the gap.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import theory
from .config import LinkConfig
from .link import Link

__all__ = ["uncoded_awgn_gap", "uncoded_rayleigh_gap", "ldpc_normal_approximation_gap",
           "mimo_capacity_check", "ber_curve"]


def ber_curve(link: Link, snrs, frames: int, batch: int) -> list[float]:
    """Payload BER of ``link`` at each SNR, over ``frames`` frames (rounded up to batches)."""
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


def _theory_snr(ber_fn, target: float, lo: float = -10.0, hi: float = 60.0) -> float:
    grid = np.arange(lo, hi, 0.001)
    return float(grid[np.argmin(np.abs(np.log10(ber_fn(grid)) - math.log10(target)))])


def uncoded_awgn_gap(modulation: str, bits: float = 2e6, seed: int = 1) -> dict:
    """SNR at BER 1e-3 of uncoded Gray QAM on AWGN vs Cho & Yoon's exact BER."""
    cfg = LinkConfig(modulation=modulation, uncoded=True, seed=seed)
    bps = cfg.bits_per_symbol
    s_theory = _theory_snr(lambda s: theory.ber_qam_awgn(s, bps), 1e-3)
    link = Link(cfg)
    frames = math.ceil(bits / link.frame.payload_bits_per_frame)
    snrs = [s_theory - 0.5, s_theory, s_theory + 0.5]
    bers = ber_curve(link, snrs, frames=frames, batch=512)
    s_sim = theory.snr_at_ber(snrs, bers, 1e-3)
    return {"modulation": modulation, "target_ber": 1e-3, "esno_db_sim": round(s_sim, 3),
            "esno_db_theory": round(s_theory, 3), "gap_db": round(s_sim - s_theory, 3)}


def uncoded_rayleigh_gap(modulation: str, frames: int = 12288, target: float = 1e-2,
                         seed: int = 2) -> dict:
    """SNR at ``target`` BER over flat Rayleigh block fading with perfect CSI vs theory.

    One fade per frame: the statistics come from the number of frames."""
    ber_fn = theory.ber_bpsk_rayleigh if modulation == "bpsk" else theory.ber_qpsk_rayleigh
    s_theory = _theory_snr(ber_fn, target)
    link = Link(LinkConfig(channel="rayleigh", modulation=modulation, uncoded=True, seed=seed))
    snrs = [s_theory - 1.0, s_theory, s_theory + 1.0]
    bers = ber_curve(link, snrs, frames=frames, batch=2048)
    s_sim = theory.snr_at_ber(snrs, bers, target)
    return {"modulation": modulation, "target_ber": target, "esno_db_sim": round(s_sim, 3),
            "esno_db_theory": round(s_theory, 3), "gap_db": round(s_sim - s_theory, 3)}


def ldpc_bler(link: Link, snr_db: float, frames: int, batch: int = 64) -> float:
    errs = blocks = 0
    for _ in range(math.ceil(frames / batch)):
        with torch.no_grad():
            o = link(batch_size=batch, snr_db=snr_db)
        errs += int((~o.block_ok).sum())
        blocks += o.block_ok.numel()
    return errs / blocks


def ldpc_normal_approximation_gap(k: int = 1024, n: int = 2048, frames: int = 1024,
                                  step_db: float = 0.25, seed: int = 3) -> dict:
    """Es/N0 where 5G LDPC + QPSK on AWGN crosses BLER 1e-2, vs the normal approximation
    (PPV 2010) for the same (k, n) on the BI-AWGN channel."""
    s_na = theory.normal_approximation_snr_db(k, n, 1e-2)
    link = Link(LinkConfig(k=k, n=n, modulation="qpsk", seed=seed))
    snrs, blers = [], []
    snr = s_na
    while True:
        snrs.append(round(snr, 3))
        blers.append(ldpc_bler(link, snr, frames))
        if blers[-1] < 1e-2 or snr > s_na + 4:
            break
        snr += step_db
    s_sim = theory.snr_at_ber(snrs, [max(b, 1e-4) for b in blers], 1e-2)
    return {"k": k, "n": n, "target_bler": 1e-2, "esno_db_sim": round(s_sim, 3),
            "esno_db_normal_approx": round(s_na, 3), "gap_db": round(s_sim - s_na, 3),
            "curve": dict(zip(snrs, blers, strict=True))}


def mimo_capacity_check(snr_db: float = 10.0, batches: int = 8, batch: int = 256,
                        seed: int = 4) -> dict:
    """2x2 Rayleigh, SVD + water-filling, perfect CSI: measured sum log2(1 + SINR_k) vs the
    ergodic capacity formula, and measured error variance / equaliser noise estimate."""
    cfg = LinkConfig(channel="rayleigh", num_tx_ant=2, num_rx_ant=2, precoder="svd",
                     water_filling=True, uncoded=True, modulation="qpsk", seed=seed)
    link = Link(cfg)
    mi, ratio = [], []
    for _ in range(batches):
        with torch.no_grad():
            o = link(batch_size=batch, snr_db=snr_db)
        active = o.no_eff < 1e6  # streams switched off by water-filling carry nothing
        sinr = torch.where(active, 1.0 / o.no_eff, torch.zeros_like(o.no_eff))
        mi.append(torch.log2(1 + sinr).sum(dim=1).mean().item())
        err = (o.x_hat - o.x).abs() ** 2
        ratio.append((err[active] / o.no_eff[active]).mean().item())
    c = theory.ergodic_capacity_mimo(snr_db, 2, 2, water_filling=True, seed=seed + 3)
    m = float(np.mean(mi))
    return {"snr_db": snr_db, "mi_bits_sim": round(m, 4), "capacity_bits_formula": round(c, 4),
            "relative_gap": round((m - c) / c, 4),
            "error_variance_over_no_eff": round(float(np.mean(ratio)), 4)}
