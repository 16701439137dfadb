"""``gsc loopback --mimo 2x2`` and ``--channel cdl-a|ris|tdl-a`` through the channel feed.

Two GNU Radio flowgraphs (radio interpreter), both ending in the decoder service as the SISO
loopback of :mod:`gsc_stream.loopback` does:

* ``flowgraphs/gsc_mimo_loopback_gen.py`` (``--mimo 2x2``): two streams per frame ->
  ``gsc Precoder`` (``--precoder identity`` or ``svd``: eigen-beamforming per frame with
  genie CSI) -> 2x2 ``gsc Channel Feed`` -> 2-antenna receiver (LMMSE per RE);
* ``flowgraphs/gsc_feed_loopback_gen.py`` (SISO): ``gsc OFDM Burst TX`` -> 1x1
  ``gsc Channel Feed`` -> ``gsc OFDM Burst RX``.

The channel of each frame is drawn here by :class:`gsc_stream.channel_feed.ChannelFeed`
(Sionna TDL/CDL, gsc_phy's RIS at the README's geometry, or ``sqrt(Nt) I`` for ``awgn``) and
pushed over ZeroMQ just before the frame itself; with ``--precoder svd`` the flowgraph
draws TDL realisations itself (numpy TR 38.901 profiles) so the precoder can recompute the
one a frame will see. ``OUT/loopback.json`` has the fields of ``gsc loopback`` plus
``channel_feed`` counters (realisations sent/used, frames without one).

.. code-block:: sh

    gsc loopback --mimo 2x2 --precoder svd --channel tdl-a --snr 20 --frames 500
    gsc loopback --channel ris --snr 10 --frames 200
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np

from bridge.common import REPO_ROOT, ConfigError
from bridge.transport import Puller, Pusher
from bridge.wire import PayloadKind
from flowgraphs.gsc_ofdm.messages import eos_frame, tx_frame
from gsc_phy.config import LinkConfig

from .losses import attribute_losses
from .processes import radio_python_or_error, read_json, tail, terminate

__all__ = [
    "run_feed_loopback",
    "needs_feed_loopback",
    "run_from_options",
    "feed_loopback_command",
    "RIS_DEFAULTS",
]

MIMO_FLOWGRAPH = os.path.join(REPO_ROOT, "flowgraphs", "gsc_mimo_loopback_gen.py")
FEED_FLOWGRAPH = os.path.join(REPO_ROOT, "flowgraphs", "gsc_feed_loopback_gen.py")
#: RIS geometry of ``--channel ris`` (the README's example: 256 elements, direct path blocked).
RIS_DEFAULTS = dict(ris_elements=256, tx_pos=(0.0, 0.0, 5.0), ris_pos=(10.0, 5.0, 5.0),
                    rx_pos=(20.0, 0.0, 1.5), ris_phases="cophase", ris_direct_blocked=True)


def needs_feed_loopback(mimo: str | None, channel: str) -> bool:
    """Whether ``gsc loopback`` runs here rather than in the SISO emulator loopback."""
    return bool(mimo) or channel.startswith("cdl") or channel == "ris"


def _mimo_size(mimo: str | None) -> int:
    if not mimo:
        return 1
    if mimo != "2x2":
        raise ConfigError(f"the streaming loopback supports --mimo 2x2, got {mimo!r}")
    return 2


def run_feed_loopback(
    snr_db: float = 20.0,
    frames: int = 500,
    channel: str = "tdl-a",
    mimo: str | None = None,
    precoder: str = "identity",
    cfo: float = 0.1,
    delay_spread_ns: float = 100.0,
    modulation: str = "qpsk",
    k: int = 1024,
    n: int = 2048,
    window: int = 16,
    seed: int = 0,
    out_dir: str = "runs/loopback",
    timeout_s: float = 600.0,
    channel_source: str | None = None,
    echo=None,
) -> dict:
    """Run the feed/MIMO streaming loopback (see the module docstring); returns loopback.json.

    ``channel_source``: ``feed`` (gsc_phy realisations over ZeroMQ) or ``flowgraph`` (the
    channel block's own numpy TDL draws, which ``--precoder svd`` needs for its genie CSI);
    default: ``flowgraph`` with ``svd``, else ``feed``. Both precoders on the same
    ``flowgraph`` draws compare them on identical channels.
    """
    import torch

    from gsc_phy.provenance import versions

    from .channel_feed import FEED_CHANNELS, ChannelFeed
    from .grid_export import write_grid_json
    from .stream_decode import StreamCodec, loopback_payload, payload_crc32

    say = echo or (lambda msg: None)
    ant = _mimo_size(mimo)
    if frames < 1 or window < 1:
        raise ConfigError("--frames and --window must be >= 1")
    if channel not in FEED_CHANNELS:
        raise ConfigError(f"--channel must be one of {', '.join(FEED_CHANNELS)}, got {channel!r}")
    if precoder not in ("identity", "svd"):
        raise ConfigError(f"--precoder must be identity or svd, got {precoder!r}")
    if channel_source not in (None, "feed", "flowgraph"):
        raise ConfigError(f"channel_source must be feed or flowgraph, got {channel_source!r}")
    local = (channel_source or ("flowgraph" if precoder == "svd" else "feed")) == "flowgraph"
    if precoder == "svd" and not local:
        raise ConfigError("--precoder svd takes its genie CSI from the flowgraph's TDL draws")
    if local and (ant == 1 or not channel.startswith("tdl")):
        raise ConfigError("the flowgraph's own channel draws (and with them --precoder svd, "
                          "whose genie CSI they are) need --mimo 2x2 and a tdl-a .. tdl-e "
                          "channel")
    radio_py = radio_python_or_error()
    cfg = LinkConfig(modulation=modulation, k=k, n=n, seed=seed, num_tx_ant=ant, num_rx_ant=ant)
    os.makedirs(out_dir, exist_ok=True)
    radio_dir, dec_dir = os.path.join(out_dir, "radio"), os.path.join(out_dir, "decoder")
    for d in (radio_dir, dec_dir):
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if name.endswith(".json"):
                os.remove(os.path.join(d, name))
    grid_file = os.path.abspath(os.path.join(out_dir, "grid.json"))
    doc = write_grid_json(cfg, grid_file)
    samp_rate = float(doc["fft_size"]) * float(doc["subcarrier_spacing_hz"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    codec = StreamCodec(cfg)
    f = codec.frame
    fid = int(doc["format_id"])
    ris_cfg = LinkConfig(num_tx_ant=ant, num_rx_ant=ant, snr_db=[snr_db], seed=seed,
                         **RIS_DEFAULTS) if channel == "ris" else None
    feed = None if local else ChannelFeed(channel, ant, ant, samp_rate, delay_spread_ns * 1e-9,
                                          seed, cfg=ris_cfg)

    sock_dir = tempfile.mkdtemp(prefix="gsc-lbf-")
    eps = {name: f"ipc://{sock_dir}/{name}.sock" for name in ("tx", "rx", "res", "feed")}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO_ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    radio_log, dec_log = os.path.join(out_dir, "radio.log"), os.path.join(out_dir, "decoder.log")
    radio = dec = results = src = feed_tx = None
    t_send: dict[int, int] = {}
    res_list: list[dict] = []
    fed = 0
    try:
        results = Puller(eps["res"], timeout_ms=200, hwm=100000)
        src = Pusher(eps["tx"], timeout_ms=30000, hwm=window + 4)
        if feed is not None:
            feed_tx = Pusher(eps["feed"], timeout_ms=30000, hwm=4 * window + 64)
        with open(dec_log, "w") as dlog:
            dec = subprocess.Popen(
                [sys.executable, "-m", "gsc_stream.decoder_service", "serve",
                 "--connect", eps["rx"],
                 "--workers", "1", "--grid", grid_file, "--results", eps["res"],
                 "--out", os.path.abspath(dec_dir)],
                stdout=dlog, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                start_new_session=True,  # terminate stops the whole process group
            )
        flowgraph = MIMO_FLOWGRAPH if ant > 1 else FEED_FLOWGRAPH
        args = [radio_py, flowgraph, "--grid", grid_file, "--tx-endpoint", eps["tx"],
                "--rx-endpoint", eps["rx"], "--feed-endpoint", eps["feed"] if feed else "",
                "--snr-db", repr(float(snr_db)), "--cfo", repr(float(cfo)),
                "--channel", channel if local else "awgn",
                "--delay-spread-ns", repr(float(delay_spread_ns)), "--seed", str(seed),
                "--stats-dir", os.path.abspath(radio_dir)]
        if ant > 1:
            args += ["--precoder", precoder]
        with open(radio_log, "w") as rlog:
            radio = subprocess.Popen(args, stdout=rlog, stderr=subprocess.STDOUT, env=env,
                                     cwd=REPO_ROOT, start_new_session=True)
        say(f"radio: {radio_py} {os.path.relpath(flowgraph, REPO_ROOT)}; channel {channel} "
            f"({'flowgraph TDL draws' if local else 'gsc_phy feed'})")
        t0 = time.monotonic()
        ready = 0
        while ready < 1:
            for proc, log, what in ((dec, dec_log, "decoder service"),
                                    (radio, radio_log, "loopback flowgraph")):
                if proc.poll() is not None:
                    raise ConfigError(f"the {what} exited: {tail(log, 3)}")
            if time.monotonic() - t0 > 180:
                raise ConfigError("the decoder service did not come up within 180 s")
            msg = results.recv()
            if msg is not None and msg.kind == PayloadKind.CONTROL:
                ready += msg.json().get("type") == "ready"
        sent = accounted = 0
        last_progress = t_start = time.monotonic()
        pending: list = []
        while accounted < frames:
            if radio.poll() is not None:
                raise ConfigError(f"the loopback flowgraph exited: {tail(radio_log, 3)}")
            if time.monotonic() - t_start > timeout_s:
                raise ConfigError(f"loopback timed out after {timeout_s:.0f} s")
            if sent < frames and sent - accounted < window:
                if not pending:
                    seqs = list(range(sent, min(frames, sent + 64)))
                    pl = np.stack([loopback_payload(s, seed, f.codewords_per_frame,
                                                    f.payload_bits_per_block) for s in seqs])
                    _, x = codec.encode(pl)
                    reals = feed.frames(seqs[0], len(seqs)) if feed else [None] * len(seqs)
                    pending = list(zip(seqs, x, reals, strict=True))
                seq, x, real = pending.pop(0)
                if real is not None:  # the realisation first: the block waits for it
                    if not feed_tx.send(real):
                        raise ConfigError("the channel feed block did not take realisations")
                    fed += 1
                t_send[seq] = time.time_ns()
                if not src.send(tx_frame(x, seq, fid)):
                    raise ConfigError("the flowgraph did not take frames for 30 s")
                sent += 1
                continue
            msg = results.recv()
            now = time.monotonic()
            if msg is None:
                if now - last_progress > 3.0 and accounted < sent:
                    accounted += 1  # presume the oldest frame in flight lost
                    last_progress = now
                continue
            if msg.kind == PayloadKind.CONTROL and msg.json().get("type") == "result":
                res_list.append(msg.json())
                accounted += 1
                last_progress = now
        src.send(eos_frame(sent))
        say(f"sent {sent} frames in {time.monotonic() - t_start:.1f} s; draining the flowgraph")
        try:
            radio.wait(60)
        except subprocess.TimeoutExpired:
            terminate(radio)
        expected = read_json(os.path.join(radio_dir, "rx.json")).get("frames_queued", 0)
        t_quiet = time.monotonic()
        while len(res_list) < expected and time.monotonic() - t_quiet < 5.0:
            msg = results.recv()
            if msg is not None and msg.kind == PayloadKind.CONTROL:
                if msg.json().get("type") == "result":
                    res_list.append(msg.json())
                    t_quiet = time.monotonic()
        wall_s = time.monotonic() - t_start
    finally:
        torch.set_num_threads(threads)
        terminate(radio)
        terminate(dec, 20)
        for sock in (results, src, feed_tx):
            if sock is not None:
                sock.close(linger_ms=0)
        shutil.rmtree(sock_dir, ignore_errors=True)

    decoded: dict[int, dict] = {}
    measured: Counter = Counter()
    blocks_ok = 0
    for r in res_list:
        ok = r.get("ok") or []
        seq = r.get("tx_seq")
        if not all(ok):
            measured["crc_failed"] += 1
            blocks_ok += sum(bool(v) for v in ok)
            continue
        want = None if seq is None or not 0 <= seq < frames else payload_crc32(
            loopback_payload(seq, seed, f.codewords_per_frame, f.payload_bits_per_block))
        if want is None or seq in decoded or r.get("payload_crc32") != want:
            measured["undetected_error"] += 1
            continue
        decoded[seq] = r
        blocks_ok += len(ok)
    stats = {name: read_json(os.path.join(radio_dir, f"{name}.json"))
             for name in ("tx", "precoder", "channel", "rx")}
    dec_stats = read_json(os.path.join(dec_dir, "decoder.json"))
    lost = frames - len(decoded)
    measured["queue_overflow"] = int(stats["rx"].get("queue_overflow", 0))
    measured["decoder_absent"] = int(stats["rx"].get("decoder_absent", 0))
    measured["decoder_dropped"] = int(dec_stats.get("dropped_total", 0) or 0)
    causes = attribute_losses(lost, measured)
    lat = np.array([(r["t_done_ns"] - t_send[s]) / 1e6 for s, r in decoded.items()])
    evm = [10 ** (r["evm_db"] / 10) for r in decoded.values() if r.get("evm_db") is not None]
    samples = int(stats["channel"].get("samples_in", 0))
    busy = sum(float(s.get("busy_s") or 0.0) for s in stats.values())
    sps = samples / busy if busy > 0 else None
    blocks_sent = frames * f.codewords_per_frame
    errors = blocks_sent - min(blocks_ok, blocks_sent)
    result = {
        "config": {
            "snr_db": snr_db, "channel": channel, "mimo": mimo or "1x1", "precoder": precoder,
            "cfo_subcarriers": cfo, "delay_spread_ns": delay_spread_ns,
            "modulation": modulation, "k": k, "n": n, "window": window, "frames": frames,
            "grid_format_id": fid, "channel_source": "flowgraph-tdl" if local else "gsc_phy-feed",
            "ris": {k_: list(v) if isinstance(v, tuple) else v for k_, v in RIS_DEFAULTS.items()}
            if channel == "ris" else None,
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
        "block_errors": errors,
        "bler": errors / blocks_sent,
        "evm_db": float(10 * np.log10(np.mean(evm))) if evm else None,
        "latency_ms_p50": float(np.percentile(lat, 50)) if len(lat) else None,
        "latency_ms_p99": float(np.percentile(lat, 99)) if len(lat) else None,
        "samples_per_s": sps,
        "samples_per_s_kind": "samples per antenna stream through TX, precoder, channel and "
                              "RX per second those blocks were busy",
        "samp_rate_hz": samp_rate,
        "realtime_factor": sps / samp_rate if sps else None,
        "wall_s": wall_s,
        "ris_gain_db": feed.ris_gain_db if feed is not None else None,
        "channel_feed": {"realisations_sent": fed,
                         "realisations_used": int(stats["channel"].get("realisations_used", 0)),
                         "no_realisation": int(stats["channel"].get("no_realisation", 0))},
        "radio_python": radio_py,
        "radio": stats,
        "decoder": dec_stats,
    }
    with open(os.path.join(out_dir, "loopback.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    return result


def run_from_options(o: dict, echo=None) -> dict | None:
    """Pop ``mimo``/``precoder``/``channel_feed`` from ``gsc loopback``'s options ``o``; run
    :func:`run_feed_loopback` and return its result when they (or a cdl/ris channel) ask for
    it, else return None (``o`` then fits :func:`gsc_stream.loopback.run_loopback`)."""
    mimo, precoder = o.pop("mimo", None), o.pop("precoder", "identity")
    forced = o.pop("channel_feed", False)
    if not (forced or needs_feed_loopback(mimo, o["channel"])):
        if precoder != "identity":
            raise ConfigError("--precoder needs --mimo 2x2")
        return None
    if o.get("radio"):
        raise ConfigError("--radio runs the SISO link; drop --mimo/--channel-feed")
    return run_feed_loopback(
        snr_db=o["snr_db"], frames=o["frames"], channel=o["channel"], mimo=mimo,
        precoder=precoder, cfo=o["cfo"], delay_spread_ns=o["delay_spread_ns"],
        modulation=o["modulation"], k=o["k"], n=o["n"], window=o["window"], seed=o["seed"],
        out_dir=o["out_dir"], timeout_s=o["timeout_s"], echo=echo,
    )


def feed_loopback_command(o: dict, echo) -> bool:
    """``gsc loopback`` dispatch: True when :func:`run_from_options` ran (summary echoed)."""
    r = run_from_options(o, echo)
    if r is None:
        return False
    lost = ", ".join(f"{k} {v}" for k, v in r["frames_lost"].items() if v) or "none"
    evm = "n/a" if r["evm_db"] is None else f"{r['evm_db']:.1f} dB"
    echo(f"Es/N0 {r['config']['snr_db']:g} dB {r['config']['channel']} "
         f"{r['config']['mimo']} {r['config']['precoder']}: decoded {r['frames_decoded']}/"
         f"{r['frames_sent']} frames ({100 * r['delivery']:.2f} %), lost: {lost}; "
         f"BLER {r['bler']:.3e}; EVM {evm}; {(r['samples_per_s'] or 0) / 1e6:.2f} Msamples/s")
    echo(f"wrote {os.path.join(o['out_dir'], 'loopback.json')}")
    return True
