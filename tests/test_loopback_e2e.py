"""gsc loopback and the decoder service, ML side.

* the decoder worker decodes RX frames, reports results and counts bad messages;
* ``run_loopback`` end to end: the GNU Radio loopback flowgraph under the radio interpreter
  (subprocess) and two decoder workers (subprocesses), loopback.json checked;
* no GNU Radio: one clear line naming what to install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from bridge import wire
from bridge.common import ConfigError
from bridge.interpreters import find_radio_python
from bridge.reliable import ReliableQueue
from bridge.transport import Puller
from flowgraphs.gsc_ofdm import BurstModulator, GridLayout, StreamReceiver
from flowgraphs.gsc_ofdm.channel import ChannelEmulator
from flowgraphs.gsc_ofdm.messages import rx_frame
from gsc_phy.config import LinkConfig
from gsc_stream.decoder_service import DecoderWorker, merge_metrics
from gsc_stream.loopback import loopback, run_loopback
from gsc_stream.stream_decode import StreamCodec, loopback_payload

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rx_frames(n: int, snr_db: float, seed: int = 0):
    """RX frames of loopback traffic through the numpy modem (the flowgraph's math)."""
    cfg = LinkConfig()
    codec = StreamCodec(cfg)
    lay = GridLayout.load("default")
    f = codec.frame
    pl = np.stack([loopback_payload(s, seed, f.codewords_per_frame, f.payload_bits_per_block)
                   for s in range(n)])
    _, x = codec.encode(pl)
    mod = BurstModulator(lay)
    sig = np.concatenate([np.concatenate([mod.modulate(xi), np.zeros(300, np.complex64)])
                          for xi in x])
    chan = ChannelEmulator(snr_db=snr_db, cfo=0.1, delay=2.5, seed=seed)
    recv = StreamReceiver(lay)
    bursts = recv.process(chan.process(sig)) + recv.flush()
    meta = [{"cfo": b.cfo, "snr_db": b.snr_db} for b in bursts]
    return [rx_frame(b.x_hat, b.no_eff, m, seq=b.seq, format_id=lay.format_id)
            for b, m in zip(bursts, meta, strict=True)]


def test_decoder_worker_decodes_and_counts_bad_input(tmp_path):
    frames = _rx_frames(4, snr_db=15.0)
    lay = GridLayout.load("default")
    bad = [  # valid wire frames (the queue checks the wire format) that are not RX frames
        wire.Frame(wire.PayloadKind.SYMBOLS, np.zeros((3, 1, 8), np.complex64),
                   stream_id=lay.format_id, seq=100),
        wire.Frame(wire.PayloadKind.SYMBOLS, np.zeros((3, 1, 1536), np.complex64),
                   stream_id=lay.format_id ^ 1, seq=101),
        wire.Frame.from_json({"cmd": "stop"}, stream_id=lay.format_id, seq=102),
        wire.Frame(wire.PayloadKind.SYMBOLS, np.full((3, 1, 1536), np.nan, np.complex64),
                   stream_id=lay.format_id, seq=103),
    ]
    ep = f"ipc://{tmp_path}/q.sock"
    queue = ReliableQueue(ep).start()
    # generous timeouts: building the LDPC decoder on a loaded 2-core machine takes seconds
    with Puller(timeout_ms=60000) as results:
        w = DecoderWorker(ep, results=results.endpoint, out_dir=str(tmp_path), batch_max=3)
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        msg = results.recv()
        assert msg.json()["type"] == "ready"
        for g, b in zip(frames, bad, strict=True):
            queue.put(b)
            queue.put(g)
        got = []
        while len(got) < 4:
            m = results.recv()
            assert m is not None, "the worker stopped answering"
            got.append(m.json())
        stats = queue.drain(timeout_s=30)  # every frame, bad ones included, acknowledged
        w.stop_event.set()
        t.join(30)
        assert results.recv().json()["type"] == "bye"
    assert stats["acked"] == 8 and stats.get("decoder_absent", 0) == 0
    assert sorted(r["tx_seq"] for r in got) == [0, 1, 2, 3]
    assert all(r["ok"] == [True] for r in got)
    assert all(r["evm_db"] < -13 for r in got)
    metrics = json.loads((tmp_path / "decoder-w0.json").read_text())
    assert metrics["frames"] == 4 and metrics["frames_ok"] == 4
    assert metrics["dropped_total"] == 4
    for cause in ("shape", "format", "kind", "value"):
        assert cause in metrics["dropped"], metrics["dropped"]
    merged = merge_metrics([metrics, metrics])
    assert merged["frames"] == 8 and merged["workers"] == 2


def test_missing_gnu_radio_gives_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("GSC_RADIO_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(ConfigError, match="apt-get install gnuradio"):
        run_loopback(frames=1, out_dir=str(tmp_path / "out"))
    res = CliRunner().invoke(loopback, ["--frames", "1", "--out", str(tmp_path / "o")],
                             standalone_mode=False)
    assert isinstance(res.exception, ConfigError)
    assert "\n" not in str(res.exception)


def test_gsc_gr_without_gnu_radio_names_the_package():
    """Importing the GNU Radio blocks where GNU Radio is missing: one clear ImportError."""
    code = ("import sys; sys.modules['gnuradio'] = None\n"
            "try:\n import flowgraphs.gsc_gr\nexcept ImportError as e: print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert "apt-get install gnuradio" in out.stdout
    assert out.stdout.count("\n") == 1


def test_decoder_cli_bad_grid_is_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "gsc_stream.decoder_service", "serve", "--connect",
         "tcp://127.0.0.1:1", "--grid", "no-such-grid"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().startswith("gsc: error:") and "no-such-grid" in out.stderr


_RADIO = find_radio_python()


@pytest.mark.skipif(
    not (_RADIO and _RADIO.get("gnuradio")),
    reason="no radio interpreter (GNU Radio) found: install gnuradio python3-zmq or set "
    "GSC_RADIO_PYTHON",
)
def test_loopback_end_to_end(tmp_path, monkeypatch):
    """Flowgraph under the radio interpreter + 2 decoder workers; nothing lost at 15 dB.
    ``--out`` is relative: every child's files land under it, not where the child runs."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "lb"
    res = CliRunner().invoke(
        loopback,
        ["--snr", "15", "--frames", "60", "--cfo", "0.1", "--workers", "2", "--seed", "3",
         "--out", "lb"],
        standalone_mode=False,
    )
    assert res.exception is None, res.output
    assert "decoded 60/60 frames" in res.output
    r = json.loads((out / "loopback.json").read_text())
    for key in ("frames_sent", "frames_decoded", "frames_lost", "bler", "evm_db",
                "latency_ms_p50", "latency_ms_p99", "samples_per_s", "snr_kind", "seed",
                "versions", "config"):
        assert key in r
    assert r["frames_sent"] == r["frames_decoded"] == 60
    assert r["bler"] == 0.0 and sum(r["frames_lost"].values()) == 0
    assert r["duplicates_suppressed"] == 0 and r["failed"] is None
    assert -16.5 < r["evm_db"] < -13.0
    assert r["latency_ms_p50"] <= r["latency_ms_p99"]
    assert r["samples_per_s"] > 0
    assert r["radio"]["rx"]["bursts"] == 60
    # both workers shared the stream
    per_worker = [json.loads((out / "decoder" / f"decoder-w{i}.json").read_text())
                  for i in range(2)]
    assert sum(w["frames"] for w in per_worker) == 60
    assert all(w["frames"] > 0 for w in per_worker)
