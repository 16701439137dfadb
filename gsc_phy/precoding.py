"""Single-user MIMO precoders on OFDM grids (perfect CSI at the transmitter, per RE).

Power convention: every precoder has ``||W||_F^2 = 1`` on every resource element, so
the total transmitted energy per RE is 1 whatever Nt and the number of streams S.
The receiver sees the effective channel ``H_eff = H W`` (Nr x S per RE); pilots are
precoded like data (as 5G DM-RS), so LS/LMMSE estimation estimates ``H_eff``.
"""

from __future__ import annotations

import torch
from sionna.phy.mimo import rzf_precoding_matrix

__all__ = ["waterfilling", "Precoder"]


def waterfilling(gains: torch.Tensor, total_power: float = 1.0) -> torch.Tensor:
    """Water-filling power allocation over the last axis.

    :param gains: [..., S] channel gains ``sigma_i^2 / no`` (>= 0).
    :param total_power: Power to share.
    :output p: [..., S] powers, ``p_i = max(0, mu - 1/g_i)``, summing to ``total_power``.

    .. code-block:: python

        p = waterfilling(torch.tensor([10.0, 1.0, 0.01]))
        # tensor([0.9500, 0.0500, 0.0000])
    """
    g = gains.clamp_min(1e-12)
    g_sorted, order = torch.sort(g, dim=-1, descending=True)
    inv = 1.0 / g_sorted
    m = torch.arange(1, g.shape[-1] + 1, device=g.device, dtype=g.dtype)
    mu = (total_power + torch.cumsum(inv, dim=-1)) / m
    valid = mu - inv > 0
    # number of active streams = last index where valid (valid is a prefix)
    active = valid.sum(dim=-1, keepdim=True).clamp_min(1)
    mu_star = torch.gather(mu, -1, active - 1)
    p_sorted = (mu_star - inv).clamp_min(0.0)
    p = torch.empty_like(p_sorted).scatter_(-1, order, p_sorted)
    return p


class Precoder:
    """Computes precoding matrices W [..., Nt, S] from channels H [..., Nr, Nt].

    :param kind: ``none`` (identity, S = Nt), ``svd`` (right singular vectors),
        ``zf`` or ``rzf`` (Sionna's ``rzf_precoding_matrix``; S = Nr).
    :param num_streams: S.
    :param water_filling: Only with ``svd``: water-filling over the S eigenmodes
        instead of equal power.

    :input h: [..., Nr, Nt], complex.
    :input no: Noise variance (float), used by water-filling and RZF.
    :output w: [..., Nt, S], complex, ``||W||_F = 1``.

    .. code-block:: python

        h = torch.randn(4, 2, 2, dtype=torch.complex64)
        w = Precoder("svd", 2)(h, 0.1)
    """

    def __init__(self, kind: str, num_streams: int, water_filling: bool = False) -> None:
        self.kind = kind
        self.num_streams = num_streams
        self.water_filling = water_filling

    def __call__(self, h: torch.Tensor, no: float) -> torch.Tensor:
        s = self.num_streams
        nt = h.shape[-1]
        if self.kind == "none":
            eye = torch.eye(nt, s, dtype=h.dtype, device=h.device) / s**0.5
            return eye.expand(*h.shape[:-2], nt, s)
        if self.kind == "svd":
            _, sv, vh = torch.linalg.svd(h)
            v = vh.mH[..., :s]
            if self.water_filling:
                p = waterfilling(sv[..., :s] ** 2 / no)
            else:
                p = torch.full_like(sv[..., :s], 1.0 / s)
            return v * p.sqrt().to(v.dtype)[..., None, :]
        alpha = 0.0 if self.kind == "zf" else s * no
        g = rzf_precoding_matrix(h, alpha=alpha)  # unit-norm columns
        return g / s**0.5
