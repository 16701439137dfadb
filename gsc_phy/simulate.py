"""Monte Carlo BER/BLER simulation over an SNR range (what ``gsc link`` runs).

.. code-block:: python

    from gsc_phy.config import LinkConfig
    from gsc_phy.simulate import simulate
    result = simulate(LinkConfig(snr_db=[0.0, 1.0], max_frames=64), progress=False)
    print(result["points"][0]["bler"])
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from .config import LinkConfig
from .link import Link
from .provenance import versions

__all__ = ["simulate", "simulate_point"]


def simulate_point(link: Link, snr_db: float, bar: tqdm | None = None) -> dict:
    """Run batches at one SNR until ``target_errors`` block errors or ``max_frames`` frames.

    Bits and bit errors count payload bits only (CRC, parity and padding excluded); a
    block is one transport block (one LDPC codeword), or the whole frame when uncoded.
    """
    cfg = link.cfg
    frames = bits = bit_errors = blocks = block_errors = 0
    while frames < cfg.max_frames and block_errors < cfg.target_errors:
        batch = min(cfg.batch_size, cfg.max_frames - frames)
        with torch.no_grad():
            out = link(batch_size=batch, snr_db=snr_db)
        frames += batch
        bits += out.bits.numel()
        bit_errors += int((out.bits != out.bits_hat).sum())
        blocks += out.block_ok.numel()
        block_errors += int((~out.block_ok).sum())
        if bar is not None:
            bar.update(batch)
            bar.set_postfix(snr=f"{snr_db:g}", ber=f"{bit_errors / bits:.2e}",
                            blk_err=block_errors, refresh=False)
    ff = link.frame
    esno_db = ff.esno_db(snr_db, cfg.snr_kind)
    rate = ff.num_streams * ff.bits_per_symbol * ff.code_rate * ff.grid_efficiency
    return {
        "snr_db": snr_db,
        "esno_db": round(esno_db, 4),
        "ebno_db": round(esno_db - 10 * math.log10(rate), 4),
        "ber": bit_errors / bits,
        "bler": block_errors / blocks,
        "bits": bits,
        "bit_errors": bit_errors,
        "frames": frames,
        "blocks": blocks,
        "block_errors": block_errors,
    }


def simulate(cfg: LinkConfig, progress: bool = True) -> dict:
    """Simulate every SNR point of ``cfg``; returns the ``link.json`` document."""
    link = Link(cfg)
    ff = link.frame
    points = []
    total = cfg.max_frames * len(cfg.snr_db)
    with tqdm(total=total, disable=not progress, unit="frame", desc="gsc link",
              dynamic_ncols=True) as bar:
        for snr in cfg.snr_db:
            start = bar.n
            points.append(simulate_point(link, snr, bar))
            bar.update(cfg.max_frames - (bar.n - start))  # points that stopped early
    return {
        "config": cfg.to_dict() | {"device": str(link.device)},
        "snr_kind": cfg.snr_kind,
        "frame": {
            "num_slots": ff.num_slots,
            "num_ofdm_symbols": int(ff.resource_grid.num_ofdm_symbols),
            "streams": ff.num_streams,
            "k": ff.k,
            "n": ff.n,
            "codewords_per_frame": ff.codewords_per_frame,
            "padding_bits": ff.padding_bits,
            "payload_bits_per_frame": ff.payload_bits_per_frame,
            "channel_uses_per_frame": ff.channel_uses_per_frame,
            "grid_efficiency": round(ff.grid_efficiency, 6),
        },
        "versions": versions(),
        "seed": cfg.seed,
        "points": points,
    }
