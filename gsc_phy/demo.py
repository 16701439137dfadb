"""``gsc demo`` (PHY part): reference link curves and an HTML report in ``gsc-demo/``.

Runs a handful of short ``gsc link`` simulations (AWGN/LDPC, TDL-A with LS estimation,
2x2 MIMO with SVD precoding, a RIS link) with their closed-form references where one
exists, and writes ``report.html`` with the plots and a table.
"""

from __future__ import annotations

import html
import json
import os
import time

import click

from .config import LinkConfig
from .plots import plot_link
from .simulate import simulate

__all__ = ["REFERENCE_LINKS", "run_phy_demo", "demo"]

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


def _write_report(rows: list[dict], out_dir: str) -> str:
    parts = ["<!doctype html><meta charset=utf-8><title>gsc demo</title>",
             "<style>body{font-family:sans-serif;max-width:980px;margin:auto}"
             "td,th{padding:2px 8px;text-align:right}</style>",
             "<h1>gsc demo: reference links</h1>",
             "<p>Es/N0 per complex channel symbol (see docs/conventions.md). BER counts payload "
             "bits; BLER counts transport blocks (CRC-24A).</p>"]
    for row in rows:
        parts.append(f"<h2>{html.escape(row['description'])}</h2>")
        parts.append(f"<img src='{row['name']}.png' width=520>")
        parts.append("<table><tr><th>Es/N0 dB</th><th>BER</th><th>BLER</th><th>frames</th>"
                     "<th>block errors</th></tr>")
        for p in row["points"]:
            parts.append(f"<tr><td>{p['snr_db']:g}</td><td>{p['ber']:.2e}</td>"
                         f"<td>{p['bler']:.2e}</td><td>{p['frames']}</td>"
                         f"<td>{p['block_errors']}</td></tr>")
        parts.append(f"</table><p>{row['seconds']:.0f} s</p>")
    path = os.path.join(out_dir, "report.html")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))
    return path


@click.command()
@click.option("--out", "out_dir", default="gsc-demo", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--max-frames", type=int, default=256, show_default=True)
@click.option("--device", default=None)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out_dir: str, max_frames: int, device: str | None, seed: int) -> None:
    """Run the reference links and write OUT/report.html."""
    rows = run_phy_demo(out_dir, max_frames=max_frames, seed=seed, device=device)
    click.echo(f"wrote {_write_report(rows, out_dir)}")
