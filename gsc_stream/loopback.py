"""``gsc loopback``: the GNU Radio streaming link end to end, with gsc_phy at both ends.

This process (ML side) encodes numbered test frames with gsc_phy (CRC-24A, 5G LDPC, Gray
QAM), sends their data symbols over ZeroMQ to the loopback flowgraph
(``flowgraphs/gsc_loopback_gen.py``: OFDM bursts -> channel emulator -> synchronisation and
equalisation), which runs under the radio interpreter (found by
:func:`bridge.interpreters.find_radio_python`), and the decoder service
(``python -m gsc_stream.decoder_service serve``, ``--workers`` processes) decodes what the
flowgraph receives and reports each frame back. At most ``--window`` frames are in flight.
At the end the flowgraph gets end-of-stream and drains, the workers are stopped, and
``OUT/loopback.json`` is written:

``frames_sent``, ``frames_decoded``, ``delivery``, ``frames_lost`` (by cause, see
:data:`LOSS_CAUSES`; ``frames_sent == frames_decoded + sum(frames_lost)`` always holds),
``duplicates_suppressed`` (results of frames decoded twice after a worker died), ``bler``
(codeword errors / codewords sent, lost frames included), ``evm_db``,
``latency_ms_p50``/``p99`` (send -> decoded), ``samples_per_s`` (complex samples through
TX + channel + RX per second those three blocks were busy: what the flowgraph sustains
when nothing waits for it), ``stream_samples_per_s`` (samples per second of the whole run,
decoding and flow control included), plus config, versions, seed and the flowgraph's and
decoder's own counters.

The flowgraph hands received frames to the workers through a reliable queue
(:mod:`bridge.reliable`): a worker that is killed loses nothing (the decoder service starts it
again, the queue resends its unacknowledged frames; duplicates are dropped here by
``(stream_id, rx_seq)``). Both children run in their own process groups: if one of them dies,
the other is stopped, ``loopback.json`` is written with ``failed`` naming it, and the command
ends with one line and exit code 1; Ctrl-C stops both groups, leaving no process behind.

.. code-block:: sh

    gsc loopback --snr 20 --frames 500 --channel tdl-a --cfo 0.1 --out runs/loopback
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import click
import numpy as np

from bridge.common import REPO_ROOT, ConfigError
from bridge.reliable import SeenFilter
from bridge.transport import Puller, Pusher
from bridge.wire import PayloadKind
from flowgraphs.gsc_ofdm.messages import eos_frame, tx_frame
from gsc_phy.config import LinkConfig

from .losses import LOSS_CAUSES, attribute_losses
from .processes import ChildFailed, check_child, radio_python_or_error, read_json, terminate

__all__ = ["run_loopback", "loopback", "radio_python_or_error", "LOSS_CAUSES",
           "ChildFailed", "attribute_losses"]

FLOWGRAPH = os.path.join(REPO_ROOT, "flowgraphs", "gsc_loopback_gen.py")
CHANNELS = ("awgn", "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e")
RADIO_OPTIONS = ("radio", "sets", "record")  # gsc loopback --radio: gsc_stream.radio_link


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
    deadline_ms: float | None = None,
    echo=None,
    payloads: np.ndarray | None = None,
) -> dict:
    """Run the streaming loopback (see the module docstring); returns the loopback.json dict.

    ``workers=0`` runs no decoder (every detected frame ends as ``decoder_absent`` or
    ``queue_overflow``); ``deadline_ms``: a frame decoded later than this after it was sent
    counts as ``late``. Raises :class:`ChildFailed` (after writing loopback.json with
    ``failed``) when the flowgraph or the decoder service ends early.

    ``payloads`` (uint8 0/1 [frames, codewords_per_frame, payload_bits_per_block]) sends these
    bits instead of the numbered test payloads (``frames`` is then their count); the first
    :data:`~gsc_stream.stream_decode.SEQ_BITS` bits of each are its frame number, as in
    :func:`~gsc_stream.stream_decode.loopback_payload`. The returned dict (not loopback.json) then
    adds ``delivered_seqs`` (frames decoded with every CRC-24A passing and the payload CRC-32
    of what was sent) and ``frame_results`` (``{"tx_seq", "ok", "crc_match"}`` per decoded
    burst; ``tx_seq`` is None unless every block passed).
    """
    import torch

    from gsc_phy.provenance import versions

    from .grid_export import write_grid_json
    from .stream_decode import StreamCodec, loopback_payload, payload_crc32

    say = echo or (lambda msg: None)
    if payloads is not None:
        payloads = np.asarray(payloads, dtype=np.uint8)
        frames = int(payloads.shape[0]) if payloads.ndim == 3 else 0
    if frames < 1 or window < 1 or workers < 0:
        raise ConfigError("--frames and --window must be >= 1, --workers >= 0")
    if deadline_ms is not None and deadline_ms <= 0:
        raise ConfigError("--deadline-ms must be > 0")
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
    if payloads is not None:
        _check_payloads(payloads, f.codewords_per_frame, f.payload_bits_per_block)

    def frame_payload(seq: int) -> np.ndarray:
        if payloads is not None:
            return payloads[seq]
        return loopback_payload(seq, seed, f.codewords_per_frame, f.payload_bits_per_block)

    sock_dir = tempfile.mkdtemp(prefix="gsc-lb-")
    tx_ep, rx_ep, res_ep = (f"ipc://{sock_dir}/{name}.sock" for name in ("tx", "rx", "res"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    radio_log = os.path.join(out_dir, "radio.log")
    dec_log = os.path.join(out_dir, "decoder.log")
    radio = dec = None
    results = src = None
    t_send: dict[int, int] = {}
    res_list: list[dict] = []
    bye: list[dict] = []
    seen = SeenFilter()
    failure: ChildFailed | None = None
    sent = 0
    wall_s = 0.0
    t_start = time.monotonic()

    def take(obj: dict) -> None:  # one result per (stream, rx burst): duplicates dropped
        if not seen.check(int(obj.get("stream_id", 0)), int(obj.get("rx_seq", -1))):
            res_list.append(obj)

    try:
        results = Puller(res_ep, timeout_ms=200, hwm=100000)
        src = Pusher(tx_ep, timeout_ms=30000, hwm=window + 4)
        with open(dec_log, "w") as dlog:
            if workers:
                dec = subprocess.Popen(
                    [sys.executable, "-m", "gsc_stream.decoder_service", "serve", "--connect",
                     rx_ep, "--workers", str(workers), "--grid", grid_file, "--results",
                     res_ep, "--out", os.path.abspath(dec_dir)],
                    stdout=dlog, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                    start_new_session=True,
                )
        with open(radio_log, "w") as rlog:
            radio = subprocess.Popen(
                [radio_py, FLOWGRAPH, "--grid", grid_file, "--tx-endpoint", tx_ep,
                 "--rx-endpoint", rx_ep, "--snr-db", repr(float(snr_db)),
                 "--cfo", repr(float(cfo)), "--channel", channel,
                 "--delay-spread-ns", repr(float(delay_spread_ns)),
                 "--delay", repr(float(delay)), "--sfo-ppm", repr(float(sfo_ppm)),
                 "--seed", str(seed), "--stats-dir", os.path.abspath(radio_dir)],
                stdout=rlog, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                start_new_session=True,
            )
        say(f"radio: {radio_py} flowgraphs/gsc_loopback_gen.py; decoder: {workers} worker(s)")
        # wait for every worker to be connected to the flowgraph's RX endpoint
        ready, t0 = 0, time.monotonic()
        while ready < workers:
            check_child(dec, "decoder service", dec_log)
            check_child(radio, "flowgraph", radio_log)
            if time.monotonic() - t0 > 180:
                raise ConfigError("the decoder service did not come up within 180 s")
            msg = results.recv()
            if msg is not None and msg.kind == PayloadKind.CONTROL:
                obj = msg.json()
                ready += obj.get("type") == "ready"
        say(f"sending {frames} frames")
        # send numbered frames, at most `window` without an answer (all at once: no decoder)
        window = window if workers else frames
        accounted = 0
        last_progress = t_start = time.monotonic()
        batch = 64
        pending: list[tuple[int, np.ndarray]] = []
        while accounted < frames:
            check_child(radio, "flowgraph", radio_log)
            check_child(dec, "decoder service", dec_log)
            if time.monotonic() - t_start > timeout_s:
                raise ConfigError(f"loopback timed out after {timeout_s:.0f} s")
            if sent < frames and sent - accounted < window:
                if not pending:
                    seqs = list(range(sent, min(frames, sent + batch)))
                    pl = np.stack([frame_payload(s) for s in seqs])
                    _, x = codec.encode(pl)
                    pending = list(zip(seqs, x, strict=True))
                seq, x = pending.pop(0)
                t_send[seq] = time.time_ns()
                msg_tx, t_try = tx_frame(x, seq, fid), time.monotonic()
                while not src.send(msg_tx, timeout_ms=500):  # a dead peer must not hang us
                    check_child(radio, "flowgraph", radio_log)
                    if time.monotonic() - t_try > 30:
                        raise ConfigError("the flowgraph did not take frames for 30 s")
                sent += 1
                continue
            msg = results.recv()
            now = time.monotonic()
            if msg is None:
                if now - last_progress > (2.0 if workers else 0.0) and accounted < sent:
                    accounted += 1  # presume the oldest frame in flight lost
                    last_progress = now
                continue
            obj = msg.json() if msg.kind == PayloadKind.CONTROL else {}
            if obj.get("type") == "result":
                take(obj)
                accounted += 1
                last_progress = now
            elif obj.get("type") == "bye":
                bye.append(obj)
        t_sent_all = time.monotonic()
        src.send(eos_frame(sent))
        say(f"sent {sent} frames in {t_sent_all - t_start:.1f} s; draining the flowgraph")
        t_eos = time.monotonic()
        while radio.poll() is None and time.monotonic() - t_eos < 60:  # RX drains its queue
            check_child(dec, "decoder service", dec_log)
            msg = results.recv()
            if msg is not None and msg.kind == PayloadKind.CONTROL:
                obj = msg.json()
                if obj.get("type") == "result":
                    take(obj)
        if radio.poll() not in (None, 0):
            check_child(radio, "flowgraph", radio_log)
        terminate(radio)
        rx_stats = read_json(os.path.join(radio_dir, "rx.json"))
        expected = rx_stats.get("frames_acked", len(res_list))
        t_quiet = time.monotonic()
        while len(res_list) < expected and time.monotonic() - t_quiet < 5.0:
            msg = results.recv()
            if msg is not None and msg.kind == PayloadKind.CONTROL:
                obj = msg.json()
                if obj.get("type") == "result":
                    take(obj)
                    t_quiet = time.monotonic()
        wall_s = time.monotonic() - t_start
    except ChildFailed as e:
        failure = e
        wall_s = time.monotonic() - t_start
    finally:
        torch.set_num_threads(threads)
        terminate(radio)
        terminate(dec, 20)
        if results is not None:
            while True:  # the workers' goodbye messages carry their metrics
                msg = results.recv(timeout_ms=300)
                if msg is None:
                    break
                if msg.kind == PayloadKind.CONTROL and msg.json().get("type") == "bye":
                    bye.append(msg.json())
                elif msg.kind == PayloadKind.CONTROL and msg.json().get("type") == "result":
                    take(msg.json())
            results.close()
        if src is not None:
            src.close(linger_ms=0)
        shutil.rmtree(sock_dir, ignore_errors=True)

    # ---------------------------------------------------------------- metrics
    decoded: dict[int, dict] = {}
    undetected = crc_fail = late = twice = 0
    blocks_ok = 0
    deadline_ns = None if deadline_ms is None else deadline_ms * 1e6
    for r in res_list:
        ok = r.get("ok") or []
        if not all(ok):
            crc_fail += 1
            blocks_ok += sum(bool(v) for v in ok)
            continue
        seq = r.get("tx_seq")
        if seq in decoded:  # one frame detected as two bursts: counted once
            twice += 1
            continue
        if seq is None or not 0 <= seq < sent:
            undetected += 1
            continue
        want = payload_crc32(frame_payload(seq))
        if r.get("payload_crc32") != want:
            undetected += 1
            continue
        blocks_ok += len(ok)
        if deadline_ns is not None and r["t_done_ns"] - t_send[seq] > deadline_ns:
            late += 1
            decoded[seq] = {}  # decoded, too late: not delivered
            continue
        decoded[seq] = r
    decoded = {seq: r for seq, r in decoded.items() if r}
    tx_stats = read_json(os.path.join(radio_dir, "tx.json"))
    ch_stats = read_json(os.path.join(radio_dir, "channel.json"))
    rx_stats = read_json(os.path.join(radio_dir, "rx.json"))
    dec_stats = read_json(os.path.join(dec_dir, "decoder.json"))
    if not dec_stats and bye:
        from .decoder_service import merge_metrics

        dec_stats = merge_metrics([b.get("metrics", {}) for b in bye])
    frames_sent = sent if failure else frames
    lost = frames_sent - len(decoded)
    acked = int(rx_stats.get("frames_acked", 0))
    dec_dropped = int(dec_stats.get("dropped_total", 0) or 0)
    measured = {
        "late": late,
        "undetected_error": undetected,
        "crc_failed": crc_fail,
        "queue_overflow": int(rx_stats.get("queue_overflow", 0)),
        "decoder_absent": int(rx_stats.get("decoder_absent", 0)),
        "decoder_dropped": dec_dropped,
        "result_lost": max(0, acked - len(res_list) - dec_dropped),
    }
    causes = attribute_losses(lost, measured, aborted=failure is not None)
    lat = np.array([(r["t_done_ns"] - t_send[s]) / 1e6 for s, r in decoded.items()])
    evm = [10 ** (r["evm_db"] / 10) for r in decoded.values() if r.get("evm_db") is not None]
    samples = int(ch_stats.get("samples_in", tx_stats.get("samples_out", 0)))
    busy = sum(float(s.get("busy_s") or 0.0) for s in (tx_stats, ch_stats, rx_stats))
    sps = samples / busy if busy > 0 else None
    active = float(rx_stats.get("active_s") or 0.0)
    blocks_sent = max(frames_sent, 1) * f.codewords_per_frame
    samp_rate = float(doc["fft_size"]) * float(doc["subcarrier_spacing_hz"])
    result = {
        "config": {
            "snr_db": snr_db, "channel": channel, "cfo_subcarriers": cfo, "sfo_ppm": sfo_ppm,
            "timing_offset_samples": delay, "delay_spread_ns": delay_spread_ns,
            "modulation": modulation, "k": k, "n": n, "workers": workers, "window": window,
            "frames": frames, "grid_format_id": fid, "deadline_ms": deadline_ms,
        },
        "snr_kind": "esno",
        "seed": seed,
        "versions": versions(),
        "frames_sent": frames_sent,
        "frames_decoded": len(decoded),
        "delivery": len(decoded) / max(frames_sent, 1),
        "frames_lost": causes,
        "frames_lost_total": lost,
        "duplicates_suppressed": seen.duplicates,
        "bursts_of_one_frame": twice,
        "frames_requeued": int(rx_stats.get("queue_requeued", 0)),
        "worker_restarts": int(dec_stats.get("worker_restarts", 0) or 0),
        "failed": None if failure is None else {"process": failure.process,
                                                "detail": str(failure)},
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
    if failure is not None:
        raise failure
    if payloads is not None:
        result["delivered_seqs"] = sorted(decoded)
        result["frame_results"] = [
            {"tx_seq": r.get("tx_seq"), "ok": [bool(v) for v in r.get("ok") or []],
             "crc_match": r.get("tx_seq") in range(sent)
             and r.get("payload_crc32") == payload_crc32(frame_payload(r["tx_seq"]))}
            for r in res_list]
    return result


def _check_payloads(payloads: np.ndarray, codewords: int, payload_bits: int) -> None:
    """:class:`ConfigError` unless ``payloads`` is [frames, codewords, payload_bits] of 0/1
    whose first SEQ_BITS bits number the frames 0, 1, ..."""
    from .stream_decode import payload_seq

    if payloads.shape[1:] != (codewords, payload_bits):
        raise ConfigError(f"payloads of shape {payloads.shape}, the frame format needs "
                          f"[frames, {codewords}, {payload_bits}]")
    if payloads.max(initial=0) > 1:
        raise ConfigError("payloads must hold bits (0/1)")
    bad = [i for i in range(len(payloads)) if payload_seq(payloads[i]) != i]
    if bad:
        raise ConfigError(f"payload {bad[0]} does not start with its frame number")


@click.command()
@click.option("--snr", "snr_db", type=float, default=20.0, show_default=True,
              help="Es/N0 in dB (per RE)")
@click.option("--frames", type=int, default=500, show_default=True)
@click.option("--channel", default="awgn", show_default=True,
              help="awgn, tdl-a .. tdl-e; cdl-a .. cdl-e and ris through the channel feed")
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
@click.option("--deadline-ms", "deadline_ms", type=float, default=None,
              help="Frames decoded later than this after sending count as lost (late)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default="runs/loopback", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--radio", default=None, metavar="PROFILE",
              help="Run through a radio profile's device flowgraphs instead of the channel "
                   "emulator (zmq_impaired, b210, ...; see hardware/README.md)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="With --radio: override a profile value, repeatable")
@click.option("--record", default=None, metavar="DIR/NAME",
              help="With --radio: store the received IQ as a SigMF recording")
@click.option("--mimo", default=None, metavar="2x2",
              help="MIMO 2x2 streaming loopback (precoder, 2x2 channel, 2-antenna receiver)")
@click.option("--precoder", default="identity", show_default=True,
              help="With --mimo: identity or svd (eigen-beamforming, genie CSI, tdl-* only)")
@click.option("--channel-feed", "channel_feed", is_flag=True,
              help="Take the channel from gsc_phy's Sionna models over ZMQ (implied by "
                   "--mimo, cdl-* and ris)")
def loopback(**o) -> None:
    """Run the GNU Radio streaming loopback with the decoder service; writes OUT/loopback.json."""
    from .loopback_mimo import feed_loopback_command

    if feed_loopback_command(o, click.echo):
        return
    radio = {key: o.pop(key) for key in RADIO_OPTIONS}
    if radio["radio"]:
        from .radio_link import loopback_radio_command

        _refuse_emulator_options()

        loopback_radio_command(o, **radio)
        return
    try:
        r = run_loopback(echo=click.echo, **o)
    except ChildFailed as e:  # loopback.json is written, with "failed"
        click.echo(f"gsc: error: {e} (summary: {os.path.join(o['out_dir'], 'loopback.json')})",
                   err=True)
        sys.exit(1)  # not bad input (2): a process failed
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


EMULATOR_OPTIONS = ("snr_db", "channel", "cfo", "sfo_ppm", "delay", "delay_spread_ns", "mimo",
                    "precoder", "channel_feed")


def _refuse_emulator_options() -> None:
    """With ``--radio`` the profile is the channel: channel-emulator options given on the
    command line would be ignored, so they are refused (one line) instead."""
    ctx = click.get_current_context()
    given = [p.opts[0] for p in ctx.command.params if p.name in EMULATOR_OPTIONS
             and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
    if given:
        raise ConfigError(
            f"{', '.join(given)} set the software channel emulator, which --radio does not use: "
            "the radio (or the profile's impairments, e.g. --set impairments.esno_db=15) is "
            "the channel")


def _run_loopback_point(o: dict, seed: int) -> list[dict]:
    """One sweep point of ``gsc loopback`` -> one row (its loopback.json summary)."""
    import tempfile

    from .loopback_mimo import run_from_options

    o = {k: v for k, v in o.items() if k not in RADIO_OPTIONS}
    with tempfile.TemporaryDirectory(prefix="gsc-sweep-lb-") as tmp:
        o = o | {"seed": seed, "out_dir": tmp}
        r = run_from_options(o) or run_loopback(**o)  # --mimo / channel feed, else SISO
    row = {k: v for k, v in r.items() if not isinstance(v, dict | list)}
    row["snr_db"] = r["config"]["snr_db"]
    row.update({f"lost_{k}": v for k, v in r["frames_lost"].items()})
    return [row]


def sweep_runner():
    """``gsc loopback`` as a ``gsc sweep`` runner (a point = one streaming run)."""
    from gsc_phy.sweep.runners import ReportSpec, Runner

    return Runner.from_click(
        "loopback", loopback, _run_loopback_point,
        report=ReportSpec(x="snr_db", y=("bler", "delivery"), x_param="snr"))
