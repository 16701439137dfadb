"""MIMO burst modem (flowgraphs.gsc_ofdm.mimo / mimo_channel) and its GNU Radio blocks.

The numpy tests run under both interpreters; the GNU Radio ones under the radio interpreter.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from bridge import wire
from bridge.transport import Pusher
from flowgraphs.gsc_ofdm import mimo, mimo_channel
from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.mimo import (
    BurstPrecoder,
    MimoBurstModulator,
    MimoBurstStream,
    MimoStreamReceiver,
    precoder_matrix,
)
from flowgraphs.gsc_ofdm.mimo_channel import (
    MimoChannel,
    TdlRealisations,
    channel_frame,
    parse_channel_frame,
)


@pytest.fixture(scope="module")
def layout() -> GridLayout:
    return GridLayout.load("mimo2x2")


def qpsk(rng, lay: GridLayout, n: int) -> list[np.ndarray]:
    shape = (2, lay.num_data_symbols)
    return [((rng.integers(0, 2, shape) * 2 - 1) + 1j * (rng.integers(0, 2, shape) * 2 - 1))
            .astype(np.complex64) / np.float32(np.sqrt(2)) for _ in range(n)]


def run(lay, data, kind="identity", snr_db=None, cfo=0.0, profile="tdl-a", chunk=3000):
    """Stream -> per-burst precoder -> 2x2 TDL channel -> receiver; the received bursts."""
    mod = MimoBurstModulator(lay)
    stream = MimoBurstStream(mod, 40, 300, seed=1)
    for i, x in enumerate(data):
        stream.push(x, i)
    real = TdlRealisations(profile, 2, 2, seed=5)
    pre = BurstPrecoder(2, 2, mod.preamble.length)
    ch = MimoChannel(2, 2, snr_db=snr_db, cfo=cfo, seed=2)
    rx = MimoStreamReceiver(lay)
    got = []
    while True:
        s, starts = stream.read(chunk)
        if not s.shape[1]:
            break
        first = stream.samples_out - s.shape[1]
        ev = [(off - first, real.taps(seq), None) for off, _, seq in starts]
        pev = [(e[0], precoder_matrix(kind, 2, 2, e[1], lay.fft_size,
                                      lay.effective_subcarriers)) for e in ev]
        got += rx.process(ch.process(pre.process(s, pev), ev))
    return got + rx.flush()


@pytest.mark.both
def test_doctests():
    for mod in (mimo, mimo_channel):
        assert doctest.testmod(mod).failed == 0


@pytest.mark.both
def test_noiseless_identity_channel_round_trip(layout):
    data = qpsk(np.random.default_rng(0), layout, 1)
    mod = MimoBurstModulator(layout)
    sig = BurstPrecoder(2, 2, mod.preamble.length).process(mod.modulate(data[0]), [(0, None)])
    pad = np.zeros((2, 200), np.complex64)
    rx = MimoStreamReceiver(layout)
    got = rx.process(np.concatenate([pad, sig, pad, pad], axis=1)) + rx.flush()
    assert len(got) == 1 and got[0].start == 200
    np.testing.assert_allclose(got[0].x_hat, data[0], atol=2e-2)
    assert got[0].x_hat.shape == (2, layout.num_data_symbols)


@pytest.mark.both
@pytest.mark.parametrize("kind", ["identity", "svd"])
def test_tdl_a_high_snr_bits_equal(layout, kind):
    data = qpsk(np.random.default_rng(1), layout, 6)
    got = run(layout, data, kind=kind, snr_db=40.0, cfo=0.1)
    assert len(got) == len(data)
    for b, x in zip(got, data, strict=True):
        assert np.array_equal(np.sign(b.x_hat.real), np.sign(x.real))
        assert np.array_equal(np.sign(b.x_hat.imag), np.sign(x.imag))
        assert np.isfinite(b.no_eff).all() and (b.no_eff > 0).all()
        assert abs(b.cfo - 0.1) < 0.01


@pytest.mark.both
def test_svd_precoder_is_unit_norm_and_diagonalises(layout):
    rng = np.random.default_rng(3)
    taps = (rng.standard_normal((2, 2, 1)) + 1j * rng.standard_normal((2, 2, 1)))  # flat
    w = precoder_matrix("svd", 2, 2, taps, layout.fft_size, layout.effective_subcarriers)
    assert np.isclose(np.linalg.norm(w), 1.0, atol=1e-6)
    g = (taps[:, :, 0] @ w).conj().T @ (taps[:, :, 0] @ w)
    assert abs(g[0, 1]) < 1e-5 * abs(g[0, 0])  # orthogonal effective streams
    with pytest.raises(ValueError, match="genie CSI"):
        precoder_matrix("svd", 2, 2)
    with pytest.raises(ValueError, match="unknown precoder"):
        precoder_matrix("zf", 2, 2)


@pytest.mark.both
def test_known_realisation_over_the_wire_is_applied_exactly():
    rng = np.random.default_rng(4)
    taps = (rng.standard_normal((2, 2, 5)) + 1j * rng.standard_normal((2, 2, 5))).astype(
        np.complex64)
    ris = np.array([[0.5j, 0], [0, -0.25]], np.complex64)
    seq, t2, r2 = parse_channel_frame(wire.decode(wire.encode(channel_frame(taps, ris, 9))), 2, 2)
    assert seq == 9 and np.array_equal(t2, taps) and np.array_equal(r2, ris)
    x = (rng.standard_normal((2, 700)) + 1j * rng.standard_normal((2, 700))).astype(np.complex64)
    ch = MimoChannel(2, 2, snr_db=None)
    y = np.concatenate([ch.process(x[:, :300], [(100, t2, r2)]), ch.process(x[:, 300:])], axis=1)
    h = taps.copy()
    h[:, :, 0] += ris
    for r in range(2):  # from sample 100 on: the new realisation over the full history
        want = sum(np.convolve(x[t], h[r, t])[:700] for t in range(2))
        np.testing.assert_allclose(y[r, 100:], want[100:], atol=1e-4)
        np.testing.assert_allclose(y[r, :100], x[r, :100], atol=1e-6)  # identity before


@pytest.mark.both
def test_channel_noise_per_rx_antenna_and_bad_messages():
    ch = MimoChannel(2, 2, snr_db=10.0, seed=1)
    y = ch.process(np.zeros((2, 20000), np.complex64))
    assert np.allclose(np.var(y, axis=1), 0.1, rtol=0.05)
    assert abs(np.vdot(y[0], y[1])) / 20000 < 0.01  # independent
    bad = wire.Frame(wire.PayloadKind.CHANNEL, np.zeros((2, 2, 3), np.complex64))
    with pytest.raises(wire.WireError, match="shape"):
        parse_channel_frame(bad, 1, 1)
    with pytest.raises(wire.WireError, match="CHANNEL"):
        parse_channel_frame(wire.Frame(wire.PayloadKind.SYMBOLS, np.zeros(3, np.complex64)), 2, 2)


# ---------------------------------------------------------------- GNU Radio blocks


def _tagged_source(gr, blocks, pmt, x: np.ndarray, offsets_seqs):
    tags = []
    for off, seq in offsets_seqs:
        t = gr.tag_t()
        t.offset, t.key, t.value = off, pmt.intern("gsc_seq"), pmt.from_uint64(seq)
        tags.append(t)
    return blocks.vector_source_c(x.tolist(), False, 1, tags)


@pytest.mark.radio
def test_precoder_block_matches_numpy(layout):
    gr = pytest.importorskip("gnuradio.gr")
    import pmt
    from gnuradio import blocks

    from flowgraphs import gsc_gr

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 3000)) + 1j * rng.standard_normal((2, 3000))).astype(
        np.complex64)
    tb = gr.top_block()
    srcs = [_tagged_source(gr, blocks, pmt, x[0], [(100, 3), (1700, 4)]),
            blocks.vector_source_c(x[1].tolist())]
    pc = gsc_gr.precoder(grid="mimo2x2", mode="svd", channel="tdl-a", channel_seed=7)
    sinks = [blocks.vector_sink_c(), blocks.vector_sink_c()]
    for i in range(2):
        tb.connect(srcs[i], (pc, i))
        tb.connect((pc, i), sinks[i])
    tb.run()
    y = np.stack([np.asarray(s.data(), np.complex64) for s in sinks])
    real = TdlRealisations("tdl-a", 2, 2, seed=7)
    ws = [precoder_matrix("svd", 2, 2, real.taps(s), 72, layout.effective_subcarriers)
          for s in (3, 4)]
    want = BurstPrecoder(2, 2, 144).process(x, [(100, ws[0]), (1700, ws[1])])
    np.testing.assert_allclose(y, want, atol=1e-5)
    assert not np.allclose(ws[0], ws[1])
    np.testing.assert_allclose(y[:, 100:244], x[:, 100:244] / np.sqrt(2), atol=1e-6)  # preamble


@pytest.mark.radio
def test_channel_feed_block_applies_zmq_realisation_exactly(tmp_path):
    gr = pytest.importorskip("gnuradio.gr")
    import pmt
    from gnuradio import blocks

    from flowgraphs import gsc_gr

    ep = f"ipc://{tmp_path}/feed.sock"
    rng = np.random.default_rng(6)
    taps = (rng.standard_normal((1, 1, 4)) + 1j * rng.standard_normal((1, 1, 4))).astype(
        np.complex64)
    x = (rng.standard_normal(2000) + 1j * rng.standard_normal(2000)).astype(np.complex64)
    with Pusher(ep, timeout_ms=10000) as push:
        tb = gr.top_block()
        src = _tagged_source(gr, blocks, pmt, x, [(0, 11), (1000, 12)])
        ch = gsc_gr.channel_feed(num_tx=1, num_rx=1, snr_db=-200, endpoint=ep, wait_ms=5000,
                                 stats_file=str(tmp_path / "ch.json"))
        sink = blocks.vector_sink_c()
        tb.connect(src, ch, sink)
        tb.start()  # the block connects, then waits for frame 11's realisation
        assert push.send(channel_frame(taps, None, seq=11))
        tb.wait()
    y = np.asarray(sink.data(), np.complex64)
    np.testing.assert_allclose(y, np.convolve(x, taps[0, 0])[:2000], atol=1e-4)
    st = ch.stats()  # frame 12 had no realisation: the previous one, counted
    assert st["realisations_used"] == 1 and st["no_realisation"] == 1 and st["bursts"] == 2


@pytest.mark.radio
@pytest.mark.parametrize("name", ["gsc_mimo_burst_tx", "gsc_precoder", "gsc_channel_feed",
                                  "gsc_mimo_burst_rx"])
def test_block_yaml_matches_the_python_block(name):
    import inspect
    import os
    import re

    pytest.importorskip("gnuradio")
    yaml = pytest.importorskip("yaml")
    from flowgraphs import gsc_gr

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "flowgraphs", "grc")
    with open(os.path.join(folder, f"{name}.block.yml"), encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    cls = getattr(gsc_gr, re.search(r"gsc_gr\.(\w+)\(", doc["templates"]["make"]).group(1))
    params = {p["id"] for p in doc["parameters"]}
    assert params == set(inspect.signature(cls.__init__).parameters) - {"self"}
    with open(os.path.join(folder, "gsc.tree.yml"), encoding="utf-8") as fh:
        assert name in fh.read()
