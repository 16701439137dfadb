"""Closed-form references the simulated link is checked against.

All SNRs are Es/N0 (linear unless the name says ``_db``), Es = average symbol energy,
N0 = noise variance per complex symbol (N0/2 per real dimension).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats
from scipy.optimize import brentq

__all__ = [
    "qfunc",
    "ber_qam_awgn",
    "ber_bpsk_rayleigh",
    "ber_qpsk_rayleigh",
    "biawgn_capacity_dispersion",
    "normal_approximation_snr_db",
    "ergodic_capacity_mimo",
    "snr_at_ber",
]


def qfunc(x):
    """Gaussian tail probability Q(x)."""
    return 0.5 * special.erfc(np.asarray(x, dtype=float) / math.sqrt(2.0))


def ber_qam_awgn(esno_db, bits_per_symbol: int):
    """Exact bit error rate of Gray-mapped square M-QAM (or BPSK for 1 bit) on AWGN.

    Cho & Yoon, "On the general BER expression of one- and two-dimensional amplitude
    modulations", IEEE Trans. Commun. 50(7), 2002, eq. (14)-(16): a square M-QAM is two
    independent sqrt(M)-PAM with half the symbol energy each.
    """
    esno = 10.0 ** (np.asarray(esno_db, dtype=float) / 10.0)
    if bits_per_symbol == 1:
        return qfunc(np.sqrt(2.0 * esno))
    if bits_per_symbol % 2:
        raise ValueError("square QAM needs an even number of bits per symbol")
    m = 2**bits_per_symbol
    sqrt_m = 2 ** (bits_per_symbol // 2)
    arg = np.sqrt(3.0 * esno / (2.0 * (m - 1)))
    ber = np.zeros_like(esno)
    for k in range(1, bits_per_symbol // 2 + 1):
        for i in range(int((1 - 2.0**-k) * sqrt_m)):
            q = i * 2 ** (k - 1) / sqrt_m
            weight = (-1) ** math.floor(q) * (2 ** (k - 1) - math.floor(q + 0.5))
            ber = ber + weight * special.erfc((2 * i + 1) * arg) / sqrt_m
    return ber / (bits_per_symbol // 2)


def ber_bpsk_rayleigh(esno_db):
    """BPSK over flat Rayleigh fading with coherent detection: 0.5 (1 - sqrt(g/(1+g)))."""
    g = 10.0 ** (np.asarray(esno_db, dtype=float) / 10.0)
    return 0.5 * (1.0 - np.sqrt(g / (1.0 + g)))


def ber_qpsk_rayleigh(esno_db):
    """Gray QPSK over flat Rayleigh: each bit is BPSK with half the symbol energy."""
    return ber_bpsk_rayleigh(np.asarray(esno_db, dtype=float) - 10.0 * math.log10(2.0))


def biawgn_capacity_dispersion(snr: float, num_points: int = 200) -> tuple[float, float]:
    """Capacity C (bits/use) and dispersion V (bits^2/use) of the BI-AWGN channel.

    Channel y = x + n, x = +-1, n ~ N(0, 1/snr) (snr = Es/N0 of each real BPSK use,
    which equals Es/N0 of Gray QPSK). Information density i = 1 - log2(1 + e^{-L}),
    L = 2 y / sigma^2; C = E[i], V = Var[i] (Polyanskiy-Poor-Verdu 2010), computed
    by Gauss-Hermite quadrature.
    """
    sigma2 = 1.0 / snr  # x = +-1 carries Es/2, noise N0/2 per real dimension
    nodes, weights = np.polynomial.hermite_e.hermegauss(num_points)
    weights = weights / weights.sum()
    y = 1.0 + math.sqrt(sigma2) * nodes
    llr = 2.0 * y / sigma2
    info = 1.0 - np.logaddexp(0.0, -llr) / math.log(2.0)
    c = float(np.sum(weights * info))
    v = float(np.sum(weights * (info - c) ** 2))
    return c, v


def normal_approximation_snr_db(k: int, n: int, error_rate: float) -> float:
    """Es/N0 (dB, QPSK) at which the normal approximation allows k bits in n BI-AWGN uses.

    log2 M* ~ n C - sqrt(n V) Q^-1(eps) + 0.5 log2 n  (PPV 2010, eq. 296), solved for SNR.
    """
    q_inv = stats.norm.isf(error_rate)

    def gap(snr_db: float) -> float:
        c, v = biawgn_capacity_dispersion(10.0 ** (snr_db / 10.0))
        return n * c - math.sqrt(n * v) * q_inv + 0.5 * math.log2(n) - k

    return float(brentq(gap, -15.0, 20.0))


def ergodic_capacity_mimo(
    snr_db: float,
    num_tx: int,
    num_rx: int,
    water_filling: bool = True,
    num_samples: int = 20000,
    seed: int = 0,
) -> float:
    """Ergodic capacity (bits/s/Hz) of an i.i.d. Rayleigh Nt x Nr channel, total power Es.

    With CSIT and water-filling: E[sum_i log2(1 + p_i lambda_i snr)], p from water-filling
    per realisation (short-term power constraint sum p_i = 1). Without: E[log2 det(I + snr/Nt
    H H^H)]. Monte Carlo over ``num_samples`` channels.
    """
    rng = np.random.default_rng(seed)
    snr = 10.0 ** (snr_db / 10.0)
    h = (rng.standard_normal((num_samples, num_rx, num_tx))
         + 1j * rng.standard_normal((num_samples, num_rx, num_tx))) / math.sqrt(2.0)
    lam = np.linalg.svd(h, compute_uv=False) ** 2  # [N, min]
    if not water_filling:
        return float(np.mean(np.sum(np.log2(1.0 + snr / num_tx * lam), axis=-1)))
    caps = np.empty(num_samples)
    for i, g in enumerate(lam * snr):
        g = np.sort(g)[::-1]
        for m in range(len(g), 0, -1):
            mu = (1.0 + np.sum(1.0 / g[:m])) / m
            if mu - 1.0 / g[m - 1] > 0:
                break
        p = np.maximum(mu - 1.0 / g, 0.0)
        caps[i] = np.sum(np.log2(1.0 + p * g))
    return float(np.mean(caps))


def snr_at_ber(snr_db, ber, target: float) -> float:
    """SNR (dB) where a measured, decreasing BER curve crosses ``target`` (log-linear interp.)."""
    snr_db = np.asarray(snr_db, dtype=float)
    logb = np.log10(np.clip(np.asarray(ber, dtype=float), 1e-12, 1.0))
    t = math.log10(target)
    for i in range(len(snr_db) - 1):
        if logb[i] >= t >= logb[i + 1]:
            frac = (logb[i] - t) / (logb[i] - logb[i + 1])
            return float(snr_db[i] + frac * (snr_db[i + 1] - snr_db[i]))
    raise ValueError(f"BER curve does not cross {target}: {list(np.round(logb, 2))}")
