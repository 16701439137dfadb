"""Plots of link results (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_link"]


def plot_link(result: dict, path: str) -> None:
    """BER and BLER against SNR (log scale) from a ``link.json`` document."""
    pts = result["points"]
    snr = [p["snr_db"] for p in pts]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for key, style in (("ber", "o-"), ("bler", "s--")):
        vals = [p[key] if p[key] > 0 else float("nan") for p in pts]
        ax.semilogy(snr, vals, style, label=key.upper())
    c = result["config"]
    mimo = f"{c['num_tx_ant']}x{c['num_rx_ant']}"
    code = "uncoded" if c["uncoded"] else f"LDPC ({c['k']},{c['n']})"
    ax.set_title(f"{c['channel']} {mimo} {c['modulation']} {code} est={c['estimator']}",
                 fontsize=9)
    ax.set_xlabel("Es/N0 [dB]" if result["snr_kind"] == "esno" else "Eb/N0 [dB]")
    ax.set_ylabel("error rate")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
