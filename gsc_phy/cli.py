"""``gsc link``: the simulator's command, and the :class:`LinkConfig` of its options.

The ``gsc`` root (:mod:`gsc_cli.root`, above every package) registers :func:`link`;
:func:`link_config` is shared with ``gsc sweep``'s ``link`` runner.
"""

from __future__ import annotations

import json
import os

import click

from bridge.common import ConfigError

from .config import (
    MODULATIONS,
    LinkConfig,
    parse_mimo,
    parse_position,
    parse_rate,
    parse_snr_range,
)

__all__ = ["link", "link_config"]


def _k_n(k: int | None, n: int | None, rate: str | None, uncoded: bool, modulation: str):
    """(k, n) from ``--k/--n/--rate``; the default n is the largest multiple of the bits per
    symbol up to 2048 (2048 for QPSK/16-QAM/256-QAM, 2046 for 64-QAM), rate 1/2."""
    bits = MODULATIONS.get(str(modulation).lower(), (None, 1))[1]
    default_n = 2048 - 2048 % bits
    if uncoded:
        if k or n or rate:
            raise ConfigError("--uncoded cannot be combined with --k/--n/--rate")
        return None, None
    if rate is not None:
        r = parse_rate(rate)
        if not 0 < r < 1:
            raise ConfigError(f"--rate must be within (0, 1), got {rate}")
        if k and n:
            raise ConfigError("give either --rate or both --k and --n, not all three")
        if k:
            return k, round(k / r)
        n = n or default_n
        return round(n * r), n
    if (k is None) != (n is None):
        raise ConfigError("--k and --n go together (or use --rate)")
    return (k, n) if k else (default_n // 2, default_n)


def link_config(o: dict, seed: int) -> LinkConfig:
    """The :class:`LinkConfig` of ``gsc link`` options (shared with ``gsc sweep``)."""
    nt, nr = parse_mimo(o["mimo"])
    k, n = _k_n(o["k"], o["n"], o["rate"], o["uncoded"], o["modulation"])
    pos = {key: parse_position(o[key], "--" + key.replace("_", "-")) if o[key] else None
           for key in ("tx_pos", "ris_pos", "rx_pos")}
    cfg = LinkConfig(
        channel=str(o["channel"]).lower(), modulation=str(o["modulation"]).lower(),
        k=k, n=n, uncoded=o["uncoded"], repetitions=o.get("repetitions", 1),
        num_tx_ant=nt, num_rx_ant=nr, num_streams=o["streams"],
        precoder=o["precoder"], water_filling=o["water_filling"],
        detector=o["detector"], kbest_k=o["kbest_k"], estimator=o["estimator"],
        delay_spread_s=o["delay_spread"] * 1e-9, speed_mps=o["speed"],
        ris_elements=o["ris_elements"], ris_phases=o["ris_phases"], ris_bits=o["ris_bits"],
        ris_near_field=o["ris_near_field"], ris_direct_blocked=o["ris_blocked"],
        snr_db=parse_snr_range(o["snr"]), snr_kind=o["snr_kind"],
        batch_size=o["batch"], max_frames=o["max_frames"], target_errors=o["target_errors"],
        device=o["device"], seed=seed, **pos,
    )
    if cfg.channel == "ris" and cfg.ris_elements < 1:
        raise ConfigError("--channel ris needs --ris N and its geometry")
    return cfg


@click.command()
@click.option("--channel", default="awgn", show_default=True,
              help="awgn, rayleigh, tdl-a..e, cdl-a..e, umi, uma, ris")
@click.option("--mimo", default="1x1", show_default=True, help="Nt x Nr antennas, e.g. 2x2")
@click.option("--streams", type=int, default=None, help="Spatial streams (default min(Nt,Nr))")
@click.option("--precoder", default="none", show_default=True, help="none, svd, zf, rzf")
@click.option("--water-filling", is_flag=True, help="Water-filling power over SVD modes")
@click.option("--detector", default="lmmse", show_default=True, help="lmmse or kbest")
@click.option("--kbest-k", type=int, default=16, show_default=True)
@click.option("--ris", "ris_elements", type=int, default=0, help="RIS elements N (square)")
@click.option("--tx-pos", default=None, help="TX position x,y,z [m] (RIS geometry)")
@click.option("--ris-pos", default=None, help="RIS centre x,y,z [m]")
@click.option("--rx-pos", default=None, help="RX position x,y,z [m]")
@click.option("--ris-phases", default="cophase", show_default=True,
              help="random, cophase (SISO optimum) or optimized (MIMO)")
@click.option("--ris-bits", type=int, default=0, show_default=True,
              help="Phase resolution in bits (0 = continuous)")
@click.option("--ris-near-field", is_flag=True, help="Spherical-wave (near-field) geometry")
@click.option("--ris-blocked", is_flag=True, help="Block the direct TX-RX path")
@click.option("--mod", "modulation", default="qpsk", show_default=True,
              help="bpsk, qpsk, 16qam, 64qam, 256qam")
@click.option("--rate", default=None,
              help="Code rate (0.5 or 1/2); n defaults to 2048 (2046 for 64qam)")
@click.option("--k", type=int, default=None, help="LDPC information bits incl. CRC-24")
@click.option("--n", type=int, default=None, help="LDPC codeword bits")
@click.option("--uncoded", is_flag=True, help="No CRC/LDPC: raw bits on the grid")
@click.option("--repetitions", type=int, default=1, show_default=True,
              help="Slot aggregation: each frame in 1, 2, 4 or 8 slots, chase-combined")
@click.option("--estimator", default="perfect", show_default=True,
              help="perfect, ls or lmmse channel estimation")
@click.option("--snr", "snr", default="0:10:2", show_default=True,
              help="START:STOP:STEP in dB (STOP included) or a comma list")
@click.option("--snr-kind", default="esno", show_default=True, help="esno or ebno")
@click.option("--delay-spread", type=float, default=100.0, show_default=True,
              help="TDL/CDL delay spread [ns]")
@click.option("--speed", type=float, default=0.0, show_default=True, help="UT speed [m/s]")
@click.option("--max-frames", type=int, default=2000, show_default=True)
@click.option("--target-errors", type=int, default=100, show_default=True,
              help="Stop a point after this many block errors")
@click.option("--batch", type=int, default=64, show_default=True, help="Frames per batch")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when present)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default="runs/link", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True, help="No progress bar")
def link(**o) -> None:
    """Simulate BER/BLER vs SNR of the gsc PHY; writes OUT/link.json and OUT/link.png."""
    if o["device"] and o["device"].startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {o['device']}: no CUDA device is available here")
    cfg = link_config(o, o["seed"])
    from .plots import plot_link
    from .simulate import simulate

    os.makedirs(o["out_dir"], exist_ok=True)
    result = simulate(cfg, progress=not o["quiet"])
    path = os.path.join(o["out_dir"], "link.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=2)
    plot_link(result, os.path.join(o["out_dir"], "link.png"))
    for p in result["points"]:
        click.echo(
            f"{result['snr_kind']} {p['snr_db']:6.2f} dB  BER {p['ber']:.3e}  "
            f"BLER {p['bler']:.3e}  ({p['frames']} frames, {p['block_errors']} block errors)"
        )
    click.echo(f"wrote {path} and link.png")
