"""Reference PHY links of ``gsc demo``: short ``gsc link`` simulations (AWGN/LDPC, TDL-A
with LS estimation, 2x2 MIMO with SVD precoding, a RIS link) with plots and JSON."""

from __future__ import annotations

import json
import os
import time

import click

from .config import LinkConfig
from .plots import plot_link
from .simulate import simulate

__all__ = ["REFERENCE_LINKS", "run_phy_demo"]

#: name -> (description, LinkConfig keyword arguments)
REFERENCE_LINKS: dict[str, tuple[str, dict]] = {
    "awgn_qpsk_ldpc": (
        "AWGN, QPSK, 5G LDPC (1024, 2048), perfect CSI",
        dict(channel="awgn", modulation="qpsk", snr_db=[-1.0, 0.0, 1.0, 1.5, 2.0]),
    ),
    "tdla_16qam_ls": (
        "TDL-A 100 ns, 16-QAM, LDPC (1024, 2048), LS estimation",
        dict(channel="tdl-a", modulation="16qam", estimator="ls",
             snr_db=[6.0, 9.0, 12.0, 15.0, 18.0]),
    ),
    "rayleigh_2x2_svd": (
        "Rayleigh 2x2, SVD precoding, QPSK, LDPC (1024, 2048), perfect CSI",
        dict(channel="rayleigh", num_tx_ant=2, num_rx_ant=2, precoder="svd",
             snr_db=[0.0, 4.0, 8.0, 12.0, 16.0]),
    ),
    "ris_64_blocked": (
        "RIS 64 elements, co-phased, blocked direct path (TX 0,0,5 RIS 10,5,5 RX 20,0,1.5)",
        dict(channel="ris", ris_elements=64, tx_pos=(0.0, 0.0, 5.0), ris_pos=(10.0, 5.0, 5.0),
             rx_pos=(20.0, 0.0, 1.5), ris_direct_blocked=True,
             snr_db=[16.0, 18.0, 20.0, 22.0, 24.0, 26.0]),
    ),
}


def run_phy_demo(out_dir: str, max_frames: int = 256, seed: int = 0,
                 device: str | None = None) -> list[dict]:
    """Simulate every reference link into ``out_dir``; returns one summary row per link."""
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for name, (desc, kwargs) in REFERENCE_LINKS.items():
        click.echo(f"[demo] {name}: {desc}")
        cfg = LinkConfig(max_frames=max_frames, target_errors=50, batch_size=64, seed=seed,
                         device=device, **kwargs)
        t0 = time.perf_counter()
        result = simulate(cfg)
        with open(os.path.join(out_dir, f"{name}.json"), "w") as fh:
            json.dump(result, fh, indent=2)
        plot_link(result, os.path.join(out_dir, f"{name}.png"))
        rows.append({"name": name, "description": desc, "seconds": time.perf_counter() - t0,
                     "points": result["points"]})
    return rows
