"""Throughput of the gsc link against a bare Sionna chain of the same configuration.

Reference config: TDL-A, 2x2 (2 streams), 16-QAM, 5G LDPC k=1024 n=2048, LS estimation,
LMMSE equalisation. The anchor is written here directly from Sionna blocks (no gsc code)
and timed in the same run, alternating batches so both see the same machine load.
Prints JSON: information bits/s of each and their ratio (gsc / sionna).

    .venv/bin/python benchmarks/bench_link.py [--batches 6] [--batch 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from sionna.phy import config as sn_config
from sionna.phy.channel import OFDMChannel
from sionna.phy.channel.tr38901 import TDL
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import BinarySource, Demapper, Mapper
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import LMMSEEqualizer, LSChannelEstimator, ResourceGrid, ResourceGridMapper

from gsc_phy.config import LinkConfig
from gsc_phy.link import Link, default_device
from gsc_phy.provenance import versions

SNR_DB = 15.0


class BareSionnaLink:
    """The same PHY written the way Sionna's tutorials compose it."""

    def __init__(self, cfg: LinkConfig, device: str) -> None:
        self.rg = ResourceGrid(
            num_ofdm_symbols=14, fft_size=cfg.fft_size,
            subcarrier_spacing=cfg.subcarrier_spacing_hz,
            num_tx=1, num_streams_per_tx=2, cyclic_prefix_length=cfg.cyclic_prefix_length,
            num_guard_carriers=cfg.guard_carriers, dc_null=cfg.dc_null, pilot_pattern="kronecker",
            pilot_ofdm_symbol_indices=list(cfg.pilot_symbols), device=device,
        )
        sm = StreamManagement([[1]], 2)
        self.bits_per_stream = self.rg.num_data_symbols * 4
        self.cws = 2 * self.bits_per_stream // cfg.n
        self.source = BinarySource(device=device)
        self.encoder = LDPC5GEncoder(cfg.k, cfg.n, num_bits_per_symbol=4, device=device)
        self.decoder = LDPC5GDecoder(self.encoder, hard_out=True, num_iter=cfg.ldpc_iterations,
                                     device=device)
        self.mapper = Mapper("qam", 4, device=device)
        self.demapper = Demapper("app", "qam", 4, device=device)
        self.rg_mapper = ResourceGridMapper(self.rg, device=device)
        tdl = TDL("A", cfg.delay_spread_s, cfg.carrier_frequency_hz, num_rx_ant=2, num_tx_ant=2,
                  device=device)
        self.channel = OFDMChannel(tdl, self.rg, return_channel=False, device=device)
        self.estimator = LSChannelEstimator(self.rg, interpolation_type="lin", device=device)
        self.equalizer = LMMSEEqualizer(self.rg, sm, device=device)
        self.k = cfg.k

    def __call__(self, batch: int, no: torch.Tensor) -> int:
        b = self.source([batch, self.cws, self.k])
        c = self.encoder(b).reshape(batch, 1, 2, -1)
        x = self.mapper(c) * 2**-0.5  # total energy 1 per RE, gsc's convention
        y = self.channel(self.rg_mapper(x), no)
        h_hat, err_var = self.estimator(y, no)
        x_hat, no_eff = self.equalizer(y, h_hat, err_var, no)
        llr = self.demapper(x_hat, no_eff).reshape(batch, self.cws, -1)
        b_hat = self.decoder(llr)
        return int((b_hat != b).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    device = default_device(args.device)
    cfg = LinkConfig(channel="tdl-a", num_tx_ant=2, num_rx_ant=2, modulation="16qam",
                     k=1024, n=2048, estimator="ls", seed=args.seed, device=device)
    gsc = Link(cfg)
    sn_config.seed = args.seed
    bare = BareSionnaLink(cfg, device)
    no = torch.tensor(10 ** (-SNR_DB / 10), device=device)
    gsc_info_bits = cfg.k - 24  # payload per codeword: gsc spends 24 bits of k on the CRC
    times = {"gsc": [], "sionna": []}
    errors = {"gsc": 0, "sionna": 0}

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.no_grad():
        gsc(batch_size=args.batch, snr_db=SNR_DB)  # warm-up both
        bare(args.batch, no)
        for _ in range(args.batches):
            sync()
            t = time.perf_counter()
            out = gsc(batch_size=args.batch, snr_db=SNR_DB)
            sync()
            times["gsc"].append(time.perf_counter() - t)
            errors["gsc"] += int((out.bits != out.bits_hat).sum())
            t = time.perf_counter()
            errors["sionna"] += bare(args.batch, no)
            sync()
            times["sionna"].append(time.perf_counter() - t)
    cws = gsc.frame.codewords_per_frame
    assert cws == bare.cws, (cws, bare.cws)
    gsc_rate = args.batch * cws * gsc_info_bits / statistics.median(times["gsc"])
    # the anchor gets credit for all k bits (it carries no CRC): a conservative ratio
    bare_rate = args.batch * bare.cws * cfg.k / statistics.median(times["sionna"])
    print(json.dumps({
        "benchmark": "bench_link",
        "config": {"channel": "tdl-a", "mimo": "2x2", "modulation": "16qam", "k": 1024,
                   "n": 2048, "estimator": "ls", "snr_db": SNR_DB, "snr_kind": "esno",
                   "batch": args.batch, "batches": args.batches, "device": device},
        "gsc_info_bits_per_s": round(gsc_rate),
        "sionna_info_bits_per_s": round(bare_rate),
        "ratio_gsc_over_sionna": round(gsc_rate / bare_rate, 3),
        "median_batch_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
        # same physical link: the BERs must agree up to Monte Carlo noise
        "ber": {"gsc": errors["gsc"] / (args.batches * args.batch * cws * gsc_info_bits),
                "sionna": errors["sionna"] / (args.batches * args.batch * cws * cfg.k)},
        "versions": versions(),
        "seed": args.seed,
    }, indent=2))


if __name__ == "__main__":
    main()
