"""``gsc loopback``: the GNU Radio streaming link end to end, with gsc_phy at both ends.

This process (ML side) encodes numbered test frames with gsc_phy (CRC-24A, 5G LDPC, Gray
QAM), sends their data symbols over ZeroMQ to the loopback flowgraph
(``flowgraphs/gsc_loopback_gen.py``: OFDM bursts -> channel emulator -> synchronisation and
equalisation), which runs under the radio interpreter (found by
:func:`bridge.interpreters.find_radio_python`), and the decoder service
(``python -m gsc_phy.decoder_service serve``, ``--workers`` processes) decodes what the
flowgraph receives and reports each frame back. At most ``--window`` frames are in flight.
At the end the flowgraph gets end-of-stream and drains, the workers are stopped, and
``OUT/loopback.json`` is written:

``frames_sent``, ``frames_decoded``, ``delivery``, ``frames_lost`` (by cause: ``crc`` -
detected but not decodable, ``not_detected`` - no burst found, ``rx_no_decoder`` - no decoder
took it, ``decoder_dropped`` - rejected message, ``undetected_error`` - CRC passed on wrong
bits), ``bler`` (codeword errors / codewords sent, lost frames included), ``evm_db``,
``latency_ms_p50``/``p99`` (send -> decoded), ``samples_per_s`` (complex samples through
TX + channel + RX per second those three blocks were busy: what the flowgraph sustains
when nothing waits for it), ``stream_samples_per_s`` (samples per second of the whole run,
decoding and flow control included), plus config, versions, seed and the flowgraph's and
decoder's own counters.

.. code-block:: sh

    gsc loopback --snr 20 --frames 500 --channel tdl-a --cfo 0.1 --out runs/loopback
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import click
import numpy as np

from bridge.interpreters import find_radio_python
from bridge.transport import Puller, Pusher
from bridge.wire import PayloadKind
from flowgraphs.gsc_ofdm.messages import eos_frame, tx_frame

from .config import ConfigError, LinkConfig

__all__ = ["run_loopback", "loopback", "radio_python_or_error", "ROOT"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOWGRAPH = os.path.join(ROOT, "flowgraphs", "gsc_loopback_gen.py")
CHANNELS = ("awgn", "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e")


def radio_python_or_error() -> str:
    """Path of the radio interpreter; :class:`ConfigError` (one line) when there is none."""
    info = find_radio_python()
    forced = os.environ.get("GSC_RADIO_PYTHON")
    if not info or not info.get("gnuradio"):
        where = f"GSC_RADIO_PYTHON={forced}" if forced else "no Python on this host"
        raise ConfigError(
            f"GNU Radio not found ({where} imports gnuradio): install it with "
            "'apt-get install gnuradio python3-zmq' (Debian/Ubuntu), or set GSC_RADIO_PYTHON "
            "to the Python GNU Radio was built for"
        )
    if not info.get("pyzmq"):
        raise ConfigError(
            f"{info['executable']} has GNU Radio but no pyzmq: install it with "
            "'apt-get install python3-zmq'"
        )
    return info["executable"]


def _terminate(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> int | None:
    """SIGTERM ``proc`` (our own child), then SIGKILL if it does not exit in time."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def _tail(path: str, lines: int = 8) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).strip()
    except OSError:
        return ""


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def run_loopback(
    snr_db: float = 20.0,
    frames: int = 500,
    channel: str = "awgn",
    cfo: float = 0.1,
    sfo_ppm: float = 10.0,
    delay: float = 3.37,
    delay_spread_ns: float = 100.0,
    modulation: str = "qpsk",
    k: int = 1024,
    n: int = 2048,
    workers: int = 1,
    window: int = 16,
    seed: int = 0,
    out_dir: str = "runs/loopback",
    timeout_s: float = 600.0,
    echo=None,
) -> dict:
    """Run the streaming loopback (see the module docstring); returns the loopback.json dict."""
    import torch

    from .grid_export import write_grid_json
    from .provenance import versions
    from .stream_decode import StreamCodec, loopback_payload, payload_crc32

    say = echo or (lambda msg: None)
    if frames < 1 or workers < 1 or window < 1:
        raise ConfigError("--frames, --workers and --window must be >= 1")
    if channel not in CHANNELS:
        raise ConfigError(f"--channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    if delay < 0:
        raise ConfigError("--delay must be >= 0 samples")
    radio_py = radio_python_or_error()
    cfg = LinkConfig(modulation=modulation, k=k, n=n, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    radio_dir = os.path.join(out_dir, "radio")
    dec_dir = os.path.join(out_dir, "decoder")
    for d in (radio_dir, dec_dir):
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.endswith(".json"):
                os.remove(os.path.join(d, f))
    grid_file = os.path.abspath(os.path.join(out_dir, "grid.json"))
    doc = write_grid_json(cfg, grid_file)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small encoder batches: threads only add hand-offs
    codec = StreamCodec(cfg)
    f = codec.frame
    fid = int(doc["format_id"])

    sock_dir = tempfile.mkdtemp(prefix="gsc-lb-")
    tx_ep, rx_ep, res_ep = (f"ipc://{sock_dir}/{name}.sock" for name in ("tx", "rx", "res"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    radio_log = os.path.join(out_dir, "radio.log")
    dec_log = os.path.join(out_dir, "decoder.log")
    radio = dec = None
    results = src = None
    t_send: dict[int, int] = {}
    res_list: list[dict] = []
    bye: list[dict] = []
    try:
        results = Puller(res_ep, timeout_ms=200, hwm=100000)
        src = Pusher(tx_ep, timeout_ms=30000, hwm=window + 4)
        with open(dec_log, "w") as dlog:
            dec = subprocess.Popen(
                [sys.executable, "-m", "gsc_phy.decoder_service", "serve", "--connect", rx_ep,
                 "--workers", str(workers), "--grid", grid_file, "--results", res_ep,
                 "--out", dec_dir],
                stdout=dlog, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            )
        with open(radio_log, "w") as rlog:
            radio = subprocess.Popen(
                [radio_py, FLOWGRAPH, "--grid", grid_file, "--tx-endpoint", tx_ep,
                 "--rx-endpoint", rx_ep, "--snr-db", repr(float(snr_db)),
                 "--cfo", repr(float(cfo)), "--channel", channel,
                 "--delay-spread-ns", repr(float(delay_spread_ns)),
                 "--delay", repr(float(delay)), "--sfo-ppm", repr(float(sfo_ppm)),
                 "--seed", str(seed), "--stats-dir", os.path.abspath(radio_dir)],
                stdout=rlog, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            )
        say(f"radio: {radio_py} flowgraphs/gsc_loopback_gen.py; decoder: {workers} worker(s)")
        # wait for every worker to be connected to the flowgraph's RX endpoint
        ready, t0 = 0, time.monotonic()
        while ready < workers:
            if dec.poll() is not None:
                raise ConfigError(f"the decoder service exited: {_tail(dec_log, 3)}")
            if radio.poll() is not None:
                raise ConfigError(f"the loopback flowgraph exited: {_tail(radio_log, 3)}")
            if time.monotonic() - t0 > 180:
                raise ConfigError("the decoder service did not come up within 180 s")
            msg = results.recv()
            if msg is not None and msg.kind == PayloadKind.CONTROL:
                obj = msg.json()
                ready += obj.get("type") == "ready"
        # send numbered frames, at most `window` without an answer
        sent = accounted = 0
        last_progress = t_start = time.monotonic()
        batch = 64
        pending: list[tuple[int, np.ndarray]] = []
        while accounted < frames:
            if radio.poll() is not None:
                raise ConfigError(f"the loopback flowgraph exited: {_tail(radio_log, 3)}")
            if time.monotonic() - t_start > timeout_s:
                raise ConfigError(f"loopback timed out after {timeout_s:.0f} s")
            if sent < frames and sent - accounted < window:
                if not pending:
                    seqs = list(range(sent, min(frames, sent + batch)))
                    pl = np.stack([loopback_payload(s, seed, f.codewords_per_frame,
                                                    f.payload_bits_per_block) for s in seqs])
                    _, x = codec.encode(pl)
                    pending = list(zip(seqs, x, strict=True))
                seq, x = pending.pop(0)
                t_send[seq] = time.time_ns()
                if not src.send(tx_frame(x, seq, fid)):
                    raise ConfigError("the flowgraph did not take frames for 30 s")
                sent += 1
                continue
            msg = results.recv()
            now = time.monotonic()
            if msg is None:
                if now - last_progress > 2.0 and accounted < sent:
                    accounted += 1  # presume the oldest frame in flight lost
                    last_progress = now
                continue
            obj = msg.json() if msg.kind == PayloadKind.CONTROL else {}
            if obj.get("type") == "result":
                res_list.append(obj)
                accounted += 1
                last_progress = now
            elif obj.get("type") == "bye":
                bye.append(obj)
        t_sent_all = time.monotonic()
        src.send(eos_frame(sent))
        say(f"sent {sent} frames in {t_sent_all - t_start:.1f} s; draining the flowgraph")
        try:
            radio.wait(60)
        except subprocess.TimeoutExpired:
            _terminate(radio)
        rx_stats = _read_json(os.path.join(radio_dir, "rx.json"))
        expected = rx_stats.get("frames_sent", len(res_list))
        t_quiet = time.monotonic()
        while len(res_list) < expected and time.monotonic() - t_quiet < 5.0:
            msg = results.recv()
            if msg is not None and msg.kind == PayloadKind.CONTROL:
                obj = msg.json()
                if obj.get("type") == "result":
                    res_list.append(obj)
                    t_quiet = time.monotonic()
        wall_s = time.monotonic() - t_start
    finally:
        torch.set_num_threads(threads)
        _terminate(radio)
        _terminate(dec, 20)
        if results is not None:
            while True:  # the workers' goodbye messages carry their metrics
                msg = results.recv(timeout_ms=300)
                if msg is None:
                    break
                if msg.kind == PayloadKind.CONTROL and msg.json().get("type") == "bye":
                    bye.append(msg.json())
            results.close()
        if src is not None:
            src.close(linger_ms=0)
        shutil.rmtree(sock_dir, ignore_errors=True)

    # ---------------------------------------------------------------- metrics
    decoded: dict[int, dict] = {}
    undetected = crc_fail = 0
    blocks_ok = 0
    for r in res_list:
        ok = r.get("ok") or []
        if not all(ok):
            crc_fail += 1
            blocks_ok += sum(bool(v) for v in ok)
            continue
        seq = r.get("tx_seq")
        if seq is None or not 0 <= seq < frames or seq in decoded:
            undetected += 1
            continue
        want = payload_crc32(loopback_payload(seq, seed, f.codewords_per_frame,
                                              f.payload_bits_per_block))
        if r.get("payload_crc32") != want:
            undetected += 1
            continue
        decoded[seq] = r
        blocks_ok += len(ok)
    tx_stats = _read_json(os.path.join(radio_dir, "tx.json"))
    ch_stats = _read_json(os.path.join(radio_dir, "channel.json"))
    rx_stats = _read_json(os.path.join(radio_dir, "rx.json"))
    dec_stats = _read_json(os.path.join(dec_dir, "decoder.json"))
    if not dec_stats and bye:
        from .decoder_service import merge_metrics

        dec_stats = merge_metrics([b.get("metrics", {}) for b in bye])
    lost = frames - len(decoded)
    causes: Counter = Counter()
    causes["crc"] = crc_fail
    causes["undetected_error"] = undetected
    causes["rx_no_decoder"] = int(rx_stats.get("dropped_no_decoder", 0))
    causes["decoder_dropped"] = int(dec_stats.get("dropped_total", 0) or 0)
    causes["not_detected"] = max(0, lost - sum(causes.values()))
    lat = np.array([(r["t_done_ns"] - t_send[s]) / 1e6 for s, r in decoded.items()])
    evm = [10 ** (r["evm_db"] / 10) for r in decoded.values() if r.get("evm_db") is not None]
    samples = int(ch_stats.get("samples_in", tx_stats.get("samples_out", 0)))
    busy = sum(float(s.get("busy_s") or 0.0) for s in (tx_stats, ch_stats, rx_stats))
    sps = samples / busy if busy > 0 else None
    active = float(rx_stats.get("active_s") or 0.0)
    blocks_sent = frames * f.codewords_per_frame
    samp_rate = float(doc["fft_size"]) * float(doc["subcarrier_spacing_hz"])
    result = {
        "config": {
            "snr_db": snr_db, "channel": channel, "cfo_subcarriers": cfo, "sfo_ppm": sfo_ppm,
            "timing_offset_samples": delay, "delay_spread_ns": delay_spread_ns,
            "modulation": modulation, "k": k, "n": n, "workers": workers, "window": window,
            "frames": frames, "grid_format_id": fid,
        },
        "snr_kind": "esno",
        "seed": seed,
        "versions": versions(),
        "frames_sent": frames,
        "frames_decoded": len(decoded),
        "delivery": len(decoded) / frames,
        "frames_lost": dict(causes),
        "frames_lost_total": lost,
        "blocks": blocks_sent,
        "block_errors": blocks_sent - min(blocks_ok, blocks_sent),
        "bler": (blocks_sent - min(blocks_ok, blocks_sent)) / blocks_sent,
        "evm_db": float(10 * np.log10(np.mean(evm))) if evm else None,
        "latency_ms_p50": float(np.percentile(lat, 50)) if len(lat) else None,
        "latency_ms_p99": float(np.percentile(lat, 99)) if len(lat) else None,
        "samples_per_s": sps,
        "samp_rate_hz": samp_rate,
        "realtime_factor": sps / samp_rate if sps else None,
        "stream_samples_per_s": samples / active if active > 0 else None,
        "wall_s": wall_s,
        "radio_python": radio_py,
        "radio": {"tx": tx_stats, "channel": ch_stats, "rx": rx_stats},
        "decoder": dec_stats,
    }
    with open(os.path.join(out_dir, "loopback.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    return result


@click.command()
@click.option("--snr", "snr_db", type=float, default=20.0, show_default=True,
              help="Es/N0 in dB (per RE)")
@click.option("--frames", type=int, default=500, show_default=True)
@click.option("--channel", default="awgn", show_default=True, help="awgn, tdl-a .. tdl-e")
@click.option("--cfo", type=float, default=0.1, show_default=True,
              help="Carrier frequency offset in subcarrier spacings")
@click.option("--sfo", "sfo_ppm", type=float, default=10.0, show_default=True,
              help="Sampling frequency offset in ppm")
@click.option("--delay", type=float, default=3.37, show_default=True,
              help="Timing offset in samples (bursts also start after random gaps)")
@click.option("--delay-spread", "delay_spread_ns", type=float, default=100.0,
              show_default=True, help="TDL delay spread [ns]")
@click.option("--mod", "modulation", default="qpsk", show_default=True,
              help="bpsk, qpsk, 16qam, 64qam, 256qam")
@click.option("--k", type=int, default=1024, show_default=True)
@click.option("--n", type=int, default=2048, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Decoder workers")
@click.option("--window", type=int, default=16, show_default=True,
              help="Frames in flight without an answer")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default="runs/loopback", show_default=True,
              type=click.Path(file_okay=False))
def loopback(**o) -> None:
    """Run the GNU Radio streaming loopback with the decoder service; writes OUT/loopback.json."""
    r = run_loopback(echo=click.echo, **o)
    lost = ", ".join(f"{k} {v}" for k, v in r["frames_lost"].items() if v) or "none"
    sps = r["samples_per_s"]
    evm = "n/a" if r["evm_db"] is None else f"{r['evm_db']:.1f} dB"
    p50 = "n/a" if r["latency_ms_p50"] is None else f"{r['latency_ms_p50']:.1f}"
    p99 = "n/a" if r["latency_ms_p99"] is None else f"{r['latency_ms_p99']:.1f}"
    click.echo(
        f"Es/N0 {r['config']['snr_db']:g} dB {r['config']['channel']}: decoded "
        f"{r['frames_decoded']}/{r['frames_sent']} frames ({100 * r['delivery']:.2f} %), "
        f"lost: {lost}; BLER {r['bler']:.3e}; EVM {evm}; latency p50/p99 {p50}/{p99} ms; "
        f"{(sps or 0) / 1e6:.2f} Msamples/s"
    )
    click.echo(f"wrote {os.path.join(o['out_dir'], 'loopback.json')}")


def _run_loopback_point(o: dict, seed: int) -> list[dict]:
    """One sweep point of ``gsc loopback`` -> one row (its loopback.json summary)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gsc-sweep-lb-") as tmp:
        r = run_loopback(**(o | {"seed": seed, "out_dir": tmp}))
    row = {k: v for k, v in r.items() if not isinstance(v, dict | list)}
    row["snr_db"] = r["config"]["snr_db"]
    row.update({f"lost_{k}": v for k, v in r["frames_lost"].items()})
    return [row]


def sweep_runner():
    """``gsc loopback`` as a ``gsc sweep`` runner (a point = one streaming run)."""
    from .sweep.runners import ReportSpec, Runner

    return Runner.from_click(
        "loopback", loopback, _run_loopback_point,
        report=ReportSpec(x="snr_db", y=("bler", "delivery"), x_param="snr"))
