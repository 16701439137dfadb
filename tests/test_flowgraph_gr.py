"""GNU Radio side of the streaming link: GRC files, blocks, headless loopback, bad input.

Runs under the radio interpreter (GNU Radio 3.10, numpy 1.x): ``make test`` does that.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import shutil
import threading
import time

import numpy as np
import pytest

gr = pytest.importorskip("gnuradio.gr", reason="GNU Radio is not importable here")

from bridge import wire  # noqa: E402
from bridge.reliable import ReliableConsumer  # noqa: E402
from bridge.transport import Pusher  # noqa: E402
from flowgraphs import compile_grc  # noqa: E402
from flowgraphs.gsc_ofdm import GridLayout  # noqa: E402
from flowgraphs.gsc_ofdm.messages import eos_frame, parse_rx_frame, tx_frame  # noqa: E402

pytestmark = pytest.mark.radio

HERE = os.path.dirname(os.path.abspath(__file__))
FLOWGRAPHS = os.path.join(os.path.dirname(HERE), "flowgraphs")


def qpsk(rng, lay, n):
    shape = (n, 1, lay.num_data_symbols)
    s = (rng.integers(0, 2, shape) * 2 - 1) + 1j * (rng.integers(0, 2, shape) * 2 - 1)
    return (s / np.sqrt(2)).astype(np.complex64)


class Collector:
    """Background reader of RX frames: a consumer of the RX block's reliable queue that
    acknowledges each frame once stored."""

    def __init__(self, endpoint: str):
        self.rx = ReliableConsumer(endpoint, name="collector", credit=8)
        self.frames: list = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            f = self.rx.get(timeout_s=0.1)
            if f is not None:
                self.frames.append(parse_rx_frame(f))
                self.rx.ack(f)
        self.rx.close()

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        t0 = time.monotonic()
        while len(self.frames) < n and time.monotonic() - t0 < timeout:
            time.sleep(0.02)

    def close(self):
        self._stop.set()
        self._t.join(5)


# ---------------------------------------------------------------- GRC


@pytest.mark.skipif(shutil.which("grcc") is None, reason="grcc is not installed")
def test_grcc_compiles_every_grc_and_generated_code_is_committed(tmp_path):
    paths = compile_grc.grc_files(everything=True)
    mine = compile_grc.grc_files()
    assert len(mine) >= 3 and set(mine) <= set(paths)
    res = compile_grc.compile_grc(paths, str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    for path in mine:  # the streaming-link flowgraphs: committed output is up to date
        with open(path, encoding="utf-8") as fh:
            gen_id = re.search(r"^\s+id: (\S+)$", fh.read(), re.M).group(1)
        new = (tmp_path / f"{gen_id}.py").read_text()
        committed = os.path.join(FLOWGRAPHS, f"{gen_id}.py")
        assert os.path.exists(committed), f"{gen_id}.py is not committed"
        with open(committed, encoding="utf-8") as fh:
            assert fh.read() == new, f"regenerate: python3 flowgraphs/compile_grc.py ({gen_id})"


def test_block_yaml_matches_python_blocks():
    yaml = pytest.importorskip("yaml")
    from flowgraphs import gsc_gr

    folder = os.path.join(FLOWGRAPHS, "grc")
    files = sorted(f for f in os.listdir(folder) if f.endswith(".block.yml"))
    made = set()
    for name in files:
        with open(os.path.join(folder, name), encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        make = doc["templates"]["make"]
        block = re.search(r"gsc_gr\.(\w+)\(", make).group(1)
        made.add(block)
        cls = getattr(gsc_gr, block)
        sig = inspect.signature(cls.__init__)
        params = {p["id"] for p in doc["parameters"]}
        assert params == set(sig.parameters) - {"self"}, name
        assert doc["templates"]["imports"] == "from flowgraphs import gsc_gr"
    assert made == set(gsc_gr.__all__), "every exported block has one .block.yml"


# ---------------------------------------------------------------- headless loopback


def make_loopback(tmp_path, **kw):
    from flowgraphs.gsc_loopback_gen import gsc_loopback_gen

    tx_ep = f"ipc://{tmp_path}/tx.sock"
    rx_ep = f"ipc://{tmp_path}/rx.sock"
    args = dict(tx_endpoint=tx_ep, rx_endpoint=rx_ep, snr_db=15.0, cfo=0.1, delay=3.37,
                sfo_ppm=10.0, seed=1, stats_dir=str(tmp_path))
    args.update(kw)
    return gsc_loopback_gen(**args), tx_ep, rx_ep


def test_headless_loopback_delivers_every_frame(tmp_path):
    lay = GridLayout.load()
    tb, tx_ep, rx_ep = make_loopback(tmp_path)
    rng = np.random.default_rng(1)
    data = qpsk(rng, lay, 60)
    with Pusher(tx_ep, timeout_ms=10000) as src:
        col = Collector(rx_ep)
        tb.start()
        for i, x in enumerate(data):
            assert src.send(tx_frame(x, i, lay.format_id))
        src.send(eos_frame())
        tb.wait()  # end of stream: TX finishes, the channel and RX drain, stop() flushes
        col.wait_for(60)
        col.close()
    assert len(col.frames) == 60
    evm = [10 * np.log10(np.mean(np.abs(f.x_hat - data[f.seq]) ** 2)) for f in col.frames]
    assert max(evm) < -13.0  # Es/N0 15 dB with CFO 0.1, timing and sampling offsets
    assert all(abs(f.meta["cfo"] - 0.1) < 0.02 for f in col.frames)
    tx_stats = json.loads((tmp_path / "tx.json").read_text())
    rx_stats = json.loads((tmp_path / "rx.json").read_text())
    ch_stats = json.loads((tmp_path / "channel.json").read_text())
    assert tx_stats["frames_in"] == tx_stats["bursts_out"] == 60
    assert rx_stats["bursts"] == rx_stats["frames_acked"] == 60
    assert ch_stats["samples_in"] == tx_stats["samples_out"]


def test_bad_messages_are_counted_and_dropped(tmp_path, caplog):
    lay = GridLayout.load()
    tb, tx_ep, rx_ep = make_loopback(tmp_path, snr_db=30.0)
    rng = np.random.default_rng(2)
    data = qpsk(rng, lay, 6)
    good = [wire.encode(tx_frame(x, i, lay.format_id)) for i, x in enumerate(data)]
    bad = [
        b"junk",  # truncated
        good[0][:-7],  # truncated payload
        good[0][:8] + bytes([9]) + good[0][9:],  # wrong version
        good[0][:-1] + bytes([good[0][-1] ^ 1]),  # CRC mismatch
        wire.encode(wire.Frame(wire.PayloadKind.SYMBOLS, np.zeros((1, 5), np.complex64))),
        wire.encode(tx_frame(data[0], 99, lay.format_id ^ 1)),  # another grid
        wire.encode(wire.Frame(wire.PayloadKind.LLRS, np.zeros(4, np.float32))),
    ]
    with Pusher(tx_ep, timeout_ms=10000) as src:
        col = Collector(rx_ep)
        tb.start()
        for i in range(6):
            src.send(bad[i % len(bad)])
            src.send(good[i])
        src.send(bad[-1])
        src.send(eos_frame())
        tb.wait()
        col.wait_for(6)
        col.close()
    assert sorted(f.seq for f in col.frames) == list(range(6))
    stats = json.loads((tmp_path / "tx.json").read_text())
    dropped = {k: v for k, v in stats.items() if "dropped" in k}
    assert sum(dropped.values()) == 7
    for cause in ("truncated", "version", "crc", "shape", "format", "kind"):
        assert any(cause in k for k in dropped), (cause, dropped)


def test_decoder_that_goes_away_and_comes_back(tmp_path):
    """Frames that arrive while no decoder listens wait in the RX block's queue and are
    delivered when one connects again: nothing lost, no restart of the flowgraph."""
    lay = GridLayout.load()
    from flowgraphs import gsc_gr

    tx_ep = f"ipc://{tmp_path}/tx.sock"
    rx_ep = f"ipc://{tmp_path}/rx.sock"
    tb = gr.top_block()
    tx = gsc_gr.ofdm_burst_tx(endpoint=tx_ep, gap_min=100, gap_max=100)
    rx = gsc_gr.ofdm_burst_rx(endpoint=rx_ep, stats_file=str(tmp_path / "rx.json"))
    tb.connect(tx, rx)
    rng = np.random.default_rng(3)
    data = qpsk(rng, lay, 30)
    with Pusher(tx_ep, timeout_ms=10000) as src:
        col = Collector(rx_ep)
        tb.start()
        for i in range(10):
            src.send(tx_frame(data[i], i, lay.format_id))
        col.wait_for(10)
        col.close()  # the decoder goes away
        for i in range(10, 20):
            src.send(tx_frame(data[i], i, lay.format_id))
        t0 = time.monotonic()  # all 20 detected, 10 waiting for a decoder
        while rx.receiver.stats["bursts"] < 20 and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        col2 = Collector(rx_ep)  # ... and comes back
        for i in range(20, 30):
            src.send(tx_frame(data[i], i, lay.format_id))
        col2.wait_for(20)
        src.send(eos_frame())
        tb.wait()
        col2.close()
    assert sorted(f.seq for f in col.frames) == list(range(10))
    assert sorted(f.seq for f in col2.frames) == list(range(10, 30))
    stats = json.loads((tmp_path / "rx.json").read_text())
    assert stats["bursts"] == 30 and stats["frames_acked"] == 30
    assert stats["queue_overflow"] == 0 and stats["decoder_absent"] == 0


def test_split_tx_and_rx_flowgraphs_over_zmq_iq(tmp_path):
    """gsc_tx_gen -> IQ over gr-zeromq (tags passed) -> gsc_rx_gen, same bits through."""
    from flowgraphs.gsc_rx_gen import gsc_rx_gen
    from flowgraphs.gsc_tx_gen import gsc_tx_gen

    lay = GridLayout.load()
    tx_ep, iq_ep, rx_ep = (f"ipc://{tmp_path}/{n}.sock" for n in ("tx", "iq", "rx"))
    txg = gsc_tx_gen(tx_endpoint=tx_ep, iq_endpoint=iq_ep, stats_dir=str(tmp_path))
    rxg = gsc_rx_gen(iq_endpoint=iq_ep, rx_endpoint=rx_ep, stats_dir=str(tmp_path))
    data = qpsk(np.random.default_rng(4), lay, 8)
    with Pusher(tx_ep, timeout_ms=10000) as src:
        col = Collector(rx_ep)
        rxg.start()
        txg.start()
        for i, x in enumerate(data):
            src.send(tx_frame(x, i, lay.format_id))
        col.wait_for(8)
        src.send(eos_frame())
        txg.wait()
        rxg.stop()
        rxg.wait()
        col.close()
    assert sorted(f.seq for f in col.frames) == list(range(8))
    for f in col.frames:
        assert np.abs(f.x_hat - data[f.seq]).max() < 0.05


def test_pdu_input_and_output(tmp_path):
    """Message-port mode: PDUs in, bursts out, PDUs of equalised symbols out."""
    import pmt
    from gnuradio import blocks

    from flowgraphs import gsc_gr

    lay = GridLayout.load()
    data = qpsk(np.random.default_rng(5), lay, 3)
    tb = gr.top_block()
    tx = gsc_gr.ofdm_burst_tx()
    rx = gsc_gr.ofdm_burst_rx(pdus=True)
    dbg = blocks.message_debug()
    tb.connect(tx, rx)
    tb.msg_connect(rx, "frames", dbg, "store")
    port = pmt.intern("frames")
    for x in data:
        tx._post(port, pmt.cons(pmt.make_dict(), pmt.init_c32vector(x.size, x.reshape(-1))))
    tx._post(port, pmt.cons(pmt.make_dict(), pmt.init_c32vector(3, [1, 2, 3])))  # malformed
    tx._post(port, pmt.intern("eos"))
    tb.start()
    tb.wait()
    assert dbg.num_messages() == 3
    for i in range(3):
        msg = dbg.get_message(i)
        x_hat = np.asarray(pmt.c32vector_elements(pmt.cdr(msg)))
        assert np.abs(x_hat - data[i].reshape(-1)).max() < 0.02
        assert pmt.to_uint64(pmt.dict_ref(pmt.car(msg), pmt.intern("seq"), pmt.PMT_NIL)) == i
    assert tx.stats()["dropped_pdu"] == 1


def test_gsc_gr_import_error_names_what_to_install():
    src = importlib.util.find_spec("flowgraphs.gsc_gr").origin
    with open(src, encoding="utf-8") as fh:
        text = fh.read()
    assert "apt-get install gnuradio" in text
