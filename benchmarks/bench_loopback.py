"""GNU Radio streaming loopback next to the stock gr-digital OFDM loopback; prints JSON.

Three figures, each with its anchor measured in the same run:

* **throughput** (radio interpreter, subprocess): complex samples per second through
  TX + channel + RX, wall clock, of the gsc flowgraph (``ofdm_burst_tx`` with frames queued
  up front -> ``channel_emulator`` -> ``ofdm_burst_rx``) and of the stock loopback
  (``vector_source`` -> ``ofdm_tx`` (QPSK payload) -> ``channels.channel_model`` ->
  ``ofdm_rx``), Es/N0 30 dB (where both deliver), CFO 0.1 subcarrier spacing, 10 ppm
  sampling offset; trials alternate, medians compared (target: gsc >= stock and
  >= 2.16 Msps, real time for the grid's sample rate). Es/N0 is the average energy per used
  RE (unitary DFT) over noise per sample for both;
* **delivery** at Es/N0 15 dB, CFO 0.1, random timing (random gaps + fractional delay) and
  10 ppm: ``gsc loopback`` end to end (flowgraph + decoder workers), next to the stock
  loopback's delivery in the same conditions (target >= 99.9 %);
* **BLER vs Es/N0**: ``gsc loopback`` at several Es/N0 against the gsc_phy simulation of the
  same frame (perfect CSI and LS estimation); the gap is the Es/N0 difference at BLER 0.1
  by log-linear interpolation (target <= 1.5 dB).

Run: ``.venv/bin/python benchmarks/bench_loopback.py [--quick]`` (the radio part runs itself
under the radio interpreter).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


# ---------------------------------------------------------------- radio side


def _stock_run(packets: int, snr_db: float, cfo: float, sfo_ppm: float, seed: int) -> dict:
    from gnuradio import blocks, channels, digital, gr

    plen, fft, used = 96, 64, 52
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, packets * plen).astype(np.uint8).tolist()
    # Es per RE (unitary DFT) of ofdm_tx's output, measured once: P_sample * N / N_used
    tb = gr.top_block()
    src = blocks.vector_source_b(data[: 20 * plen], False)
    tagger = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, plen, "packet_len")
    tx = digital.ofdm_tx(fft_len=fft, cp_len=16, packet_length_tag_key="packet_len",
                         bps_header=1, bps_payload=2, rolloff=0)
    sink = blocks.vector_sink_c()
    tb.connect(src, tagger, tx, sink)
    tb.run()
    es = float(np.mean(np.abs(np.asarray(sink.data())) ** 2)) * fft / used
    noise_voltage = float(np.sqrt(es * 10 ** (-snr_db / 10)))

    tb = gr.top_block()
    src = blocks.vector_source_b(data, False)
    tagger = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, plen, "packet_len")
    tx = digital.ofdm_tx(fft_len=fft, cp_len=16, packet_length_tag_key="packet_len",
                         bps_header=1, bps_payload=2, rolloff=0)
    count = blocks.copy(gr.sizeof_gr_complex)
    chan = channels.channel_model(noise_voltage=noise_voltage, frequency_offset=cfo / fft,
                                  epsilon=1.0 + sfo_ppm * 1e-6, taps=[1.0 + 0j],
                                  noise_seed=seed + 1, block_tags=True)
    rx = digital.ofdm_rx(fft_len=fft, cp_len=16, frame_length_tag_key="frame_len",
                         packet_length_tag_key="packet_len", bps_header=1, bps_payload=2)
    out = blocks.vector_sink_b()
    tb.connect(src, tagger, tx, count, chan, rx, out)
    t0 = time.perf_counter()
    tb.run()
    dt = time.perf_counter() - t0
    samples = int(count.nitems_written(0))
    return {"samples": samples, "wall_s": dt, "samples_per_s": samples / dt,
            "packets_sent": packets, "packets_delivered": len(out.data()) // plen}


def _gsc_run(frames: int, snr_db: float, cfo: float, sfo_ppm: float, seed: int) -> dict:
    from gnuradio import gr

    from flowgraphs import gsc_gr
    from flowgraphs.gsc_ofdm import GridLayout

    lay = GridLayout.load("default")
    rng = np.random.default_rng(seed)
    tb = gr.top_block()
    tx = gsc_gr.ofdm_burst_tx(gap_min=64, gap_max=512, seed=seed)
    chan = gsc_gr.channel_emulator(snr_db=snr_db, cfo=cfo, fft_size=lay.fft_size,
                                   delay=3.37, sfo_ppm=sfo_ppm, seed=seed + 1)
    rx = gsc_gr.ofdm_burst_rx()
    tb.connect(tx, chan, rx)
    shape = (frames, 1, lay.num_data_symbols)
    sym = ((rng.integers(0, 2, shape) * 2 - 1) + 1j * (rng.integers(0, 2, shape) * 2 - 1))
    for i, x in enumerate((sym / np.sqrt(2)).astype(np.complex64)):
        tx.stream.push(x, i)  # queued, modulated while the flowgraph runs
    tx._eos = True
    t0 = time.perf_counter()
    tb.run()
    dt = time.perf_counter() - t0
    samples = chan.emu.samples_in
    return {"samples": samples, "wall_s": dt, "samples_per_s": samples / dt,
            "frames_sent": frames, "bursts_received": int(rx.receiver.stats["bursts"])}


def radio_part(trials: int, frames: int, packets: int) -> dict:
    """Throughput trials (alternating, Es/N0 30 dB where both deliver) and the stock
    loopback's delivery at 15 dB and with no noise."""
    from gnuradio import gr

    runs: dict[str, list[dict]] = {"gsc": [], "stock": []}
    for t in range(trials):
        runs["stock"].append(_stock_run(packets, 30.0, 0.1, 10.0, seed=t))
        runs["gsc"].append(_gsc_run(frames, 30.0, 0.1, 10.0, seed=t))
    med = {k: statistics.median(r["samples_per_s"] for r in v) for k, v in runs.items()}
    st = [_stock_run(packets, 15.0, 0.1, 10.0, seed=100 + t) for t in range(trials)]
    clean = _stock_run(packets, 200.0, 0.0, 0.0, seed=200)
    return {
        "gnuradio": gr.version(),
        "gsc_samples_per_s": med["gsc"],
        "stock_samples_per_s": med["stock"],
        "ratio": med["gsc"] / med["stock"],
        "gsc_samples_per_trial": runs["gsc"][0]["samples"],
        "stock_samples_per_trial": st[0]["samples"],
        "gsc_bursts_detected": sum(r["bursts_received"] for r in runs["gsc"]),
        "gsc_frames_sent": sum(r["frames_sent"] for r in runs["gsc"]),
        "stock_delivery_15db": sum(r["packets_delivered"] for r in st)
        / sum(r["packets_sent"] for r in st),
        "stock_delivery_30db": sum(r["packets_delivered"] for r in runs["stock"])
        / sum(r["packets_sent"] for r in runs["stock"]),
        "stock_delivery_no_noise": clean["packets_delivered"] / clean["packets_sent"],
        "stock_packets_sent_15db": sum(r["packets_sent"] for r in st),
        "throughput_conditions": "Es/N0 30 dB, CFO 0.1 subcarrier, 10 ppm SFO",
        "trials": trials,
    }


# ---------------------------------------------------------------- ML side


def _snr_at_bler(points: list[tuple[float, float]], target: float = 0.1) -> float | None:
    """Es/N0 where BLER crosses ``target`` (log-linear interpolation), None if it does not."""
    pts = sorted(points)
    for (s0, b0), (s1, b1) in zip(pts[:-1], pts[1:], strict=True):
        if b0 >= target >= b1 and b0 > 0:
            lb0, lb1 = np.log10(max(b0, 1e-6)), np.log10(max(b1, 1e-6))
            if lb0 == lb1:
                return s0
            return float(s0 + (np.log10(target) - lb0) * (s1 - s0) / (lb1 - lb0))
    return None


def _simulate(snr_points: list[float], frames: int, estimator: str) -> list[tuple[float, float]]:
    import torch

    from gsc_phy.config import LinkConfig
    from gsc_phy.link import Link

    torch.set_num_threads(1)
    link = Link(LinkConfig(estimator=estimator, seed=1), device="cpu")
    out = []
    for snr in snr_points:
        ok = n = 0
        while n < frames:
            r = link(batch_size=min(100, frames - n), snr_db=snr)
            ok += int(r.block_ok.sum())
            n += r.block_ok.numel()
        out.append((snr, 1 - ok / n))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--radio-part", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="fewer frames (a smoke run)")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--frames", type=int, default=1000, help="frames of the delivery run")
    ap.add_argument("--bler-frames", type=int, default=300, help="frames per Es/N0 point")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="runs/bench_loopback")
    args = ap.parse_args()
    if args.quick:
        args.trials, args.frames, args.bler_frames = 1, 200, 100
    if args.radio_part:
        print(json.dumps(radio_part(args.trials, 700 if not args.quick else 200,
                                    2000 if not args.quick else 500)))
        return 0

    from gsc_phy.provenance import versions
    from gsc_stream.loopback import radio_python_or_error, run_loopback

    radio_py = radio_python_or_error()
    env = dict(os.environ, PYTHONPATH=ROOT)
    cmd = [radio_py, os.path.abspath(__file__), "--radio-part", "--trials", str(args.trials)]
    if args.quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if proc.returncode:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return 1
    radio = json.loads(proc.stdout.strip().splitlines()[-1])

    lb = run_loopback(snr_db=15.0, frames=args.frames, cfo=0.1, sfo_ppm=10.0, delay=3.37,
                      workers=args.workers, seed=11, out_dir=os.path.join(args.out, "delivery"))

    snr_points = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    stream = []
    for snr in snr_points:
        r = run_loopback(snr_db=snr, frames=args.bler_frames, cfo=0.1, sfo_ppm=10.0, delay=3.37,
                         workers=args.workers, seed=20 + int(10 * snr),
                         out_dir=os.path.join(args.out, f"bler_{snr:+.1f}dB"))
        stream.append((snr, r["bler"]))
    sim_perfect = _simulate(snr_points, 3 * args.bler_frames, "perfect")
    ls_points = [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # raw LS + linear interpolation: later waterfall
    sim_ls = _simulate(ls_points, 3 * args.bler_frames, "ls")
    s_stream = _snr_at_bler(stream)
    s_perfect = _snr_at_bler(sim_perfect)
    s_ls = _snr_at_bler(sim_ls)

    def gap(a, b):
        return None if a is None or b is None else a - b

    result = {
        "benchmark": "bench_loopback",
        "snr_kind": "esno",
        "throughput": {
            **radio,
            "target": "gsc >= stock and >= 2.16e6 (real time at the grid's sample rate)",
            "pass": radio["ratio"] >= 1.0 and radio["gsc_samples_per_s"] >= 2.16e6,
        },
        "delivery_15db": {
            "frames_sent": lb["frames_sent"],
            "frames_decoded": lb["frames_decoded"],
            "delivery": lb["delivery"],
            "frames_lost": lb["frames_lost"],
            "evm_db": lb["evm_db"],
            "latency_ms_p50": lb["latency_ms_p50"],
            "latency_ms_p99": lb["latency_ms_p99"],
            "stock_delivery": radio["stock_delivery_15db"],
            "stock_delivery_no_noise": radio["stock_delivery_no_noise"],
            "conditions": "Es/N0 15 dB, CFO 0.1 subcarrier, 10 ppm SFO, random gaps, "
            "3.37-sample delay",
            "target": ">= 0.999",
            "pass": lb["delivery"] >= 0.999,
        },
        "bler_vs_esno": {
            "esno_db": snr_points,
            "stream_bler": [b for _, b in stream],
            "sim_perfect_csi_bler": [b for _, b in sim_perfect],
            "sim_ls_esno_db": ls_points,
            "sim_ls_bler": [b for _, b in sim_ls],
            "frames_per_point_stream": args.bler_frames,
            "frames_per_point_sim": 3 * args.bler_frames,
            "esno_at_bler_0.1": {"stream": s_stream, "sim_perfect_csi": s_perfect,
                                 "sim_ls": s_ls},
            "gap_db_vs_perfect_csi": gap(s_stream, s_perfect),
            "gap_db_vs_ls": gap(s_stream, s_ls),
            "target": "gap <= 1.5 dB",
            "pass": (gap(s_stream, s_perfect) is not None
                     and gap(s_stream, s_perfect) <= 1.5),
        },
        "versions": versions(),
        "seed": 11,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
