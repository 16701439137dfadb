"""flowgraphs.gsc_ofdm: the numpy streaming modem (grid, preamble, TX, RX, channel, messages).

Pure numpy: runs under both interpreters (numpy 1.24 radio side, numpy 2.x ML side).
"""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from bridge import wire
from flowgraphs.gsc_ofdm import channel as ch_mod
from flowgraphs.gsc_ofdm import grid as grid_mod
from flowgraphs.gsc_ofdm import messages, preamble, rx, tx
from flowgraphs.gsc_ofdm.channel import ChannelEmulator, tdl_profile
from flowgraphs.gsc_ofdm.grid import GridError, GridLayout
from flowgraphs.gsc_ofdm.rx import StreamReceiver
from flowgraphs.gsc_ofdm.tx import BurstModulator, BurstStream, ofdm_modulate

pytestmark = pytest.mark.both


@pytest.fixture(scope="module")
def layout() -> GridLayout:
    return GridLayout.load("default")


def qam(rng, lay: GridLayout, n: int = 1, bps: int = 2) -> np.ndarray:
    """Random Gray-free square QAM symbols of unit energy, [n, 1, Nd]."""
    m = 2 ** (bps // 2)
    shape = (n, 1, lay.num_data_symbols)
    re = rng.integers(0, m, shape) * 2 - (m - 1)
    im = rng.integers(0, m, shape) * 2 - (m - 1)
    return ((re + 1j * im) / np.sqrt(2 * (m * m - 1) / 3)).astype(np.complex64)


def run_link(lay, data, chunk=4096, gap=(40, 400), seed=0, rx_kw=None, **ch_kw):
    """Bursts -> stream with random gaps -> channel -> receiver; bursts and true starts."""
    stream = BurstStream(BurstModulator(lay), *gap, seed=seed)
    for i, x in enumerate(data):
        stream.push(x, i)
    chan = ChannelEmulator(seed=seed, fft_size=lay.fft_size, **ch_kw)
    recv = StreamReceiver(lay, **(rx_kw or {}))
    got, starts = [], []
    while True:
        x, st = stream.read(chunk)
        if not len(x):
            break
        first = stream.samples_out - len(x)
        starts += [s[0] for s in st]
        got += recv.process(chan.process(x, [s[0] - first for s in st]))
    got += recv.flush()
    return got, np.asarray(starts), recv


def match(got, starts, data, tol=40):
    """Pair received bursts with the frames sent (by start time): [(burst, sent symbols)]."""
    pairs = []
    for b in got:
        i = int(np.argmin(np.abs(starts - b.start)))
        if abs(int(starts[i]) - b.start) <= tol:
            pairs.append((b, data[i]))
    return pairs


def test_doctests():
    for mod in (grid_mod, preamble, tx, rx, ch_mod, messages):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0, mod.__name__


# ---------------------------------------------------------------- grid


def test_grid_layout_matches_export_conventions(layout):
    lay = layout
    assert lay.fft_size == 72 and lay.cp_length == 6 and lay.num_streams == 1
    assert lay.num_effective_subcarriers == 64
    assert 36 not in set(lay.effective_subcarriers.tolist())  # DC null
    assert list(lay.pilot_symbol_indices) == [2, 11, 16, 25]  # two slots of QPSK
    assert lay.num_data_symbols == 24 * 64
    assert np.allclose(np.abs(lay.pilots), 1.0)
    assert lay.samp_rate_hz == pytest.approx(2.16e6)


def test_grid_map_extract_round_trip(layout):
    rng = np.random.default_rng(0)
    x = qam(rng, layout, 3)
    g = layout.map(x)
    assert g.shape == (3, 1, layout.num_ofdm_symbols, layout.fft_size)
    assert np.array_equal(layout.extract(g), x)
    # nulls stay empty, pilots sit on pilot REs
    null = np.setdiff1d(np.arange(layout.fft_size), layout.effective_subcarriers)
    assert not g[..., null].any()
    pil = layout.effective(g)[0, 0][layout.pilot_mask[0]]
    assert np.allclose(pil, layout.pilots[0])
    with pytest.raises(GridError):
        layout.map(x[..., :-1])


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.update(version=9), "version"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.pop("fft_size"), "malformed"),
        (lambda d: d["pilot_mask"][0].pop(), "pilot_mask"),
        (lambda d: d.update(effective_subcarriers=[0, 0]), "malformed|repeated|shape"),
    ],
)
def test_grid_rejects_bad_documents(mutate, words):
    with open(grid_mod.grid_path("default"), encoding="utf-8") as fh:
        doc = json.load(fh)
    mutate(doc)
    with pytest.raises(GridError, match=words):
        GridLayout.from_dict(doc)


def test_grid_unknown_name():
    with pytest.raises(GridError, match="shipped"):
        GridLayout.load("no-such-grid")


# ---------------------------------------------------------------- transmitter


def test_ofdm_modulation_is_sionnas_convention(layout):
    rng = np.random.default_rng(1)
    grid = (rng.standard_normal((2, 72)) + 1j * rng.standard_normal((2, 72))).astype(np.complex64)
    td = ofdm_modulate(grid, 6)
    sym = np.fft.ifft(np.fft.ifftshift(grid[0])) * np.sqrt(72)
    assert np.allclose(td[:78], np.concatenate([sym[-6:], sym]), atol=1e-5)
    # unitary: energy per sample equals energy per RE (CP excluded)
    assert np.isclose(np.sum(np.abs(td[6:78]) ** 2), np.sum(np.abs(grid[0]) ** 2), rtol=1e-5)


def test_burst_layout_and_preamble(layout):
    mod = BurstModulator(layout)
    pre = mod.preamble
    b = mod.modulate(qam(np.random.default_rng(2), layout)[0])
    assert len(b) == mod.burst_length == 144 + 28 * 78
    a = pre.half
    assert np.allclose(b[:a], b[a : 2 * a]) and np.allclose(b[:a], -b[3 * a : 4 * a])
    # preamble power equals data power (64 unit REs over 72 samples)
    assert np.mean(np.abs(b[:144]) ** 2) == pytest.approx(64 / 72, rel=1e-3)
    assert np.mean(np.abs(b[144:]) ** 2) == pytest.approx(64 / 72, rel=0.05)


def test_burst_stream_reports_starts_across_reads(layout):
    mod = BurstModulator(layout)
    st = BurstStream(mod, 10, 30, seed=3)
    rng = np.random.default_rng(3)
    for i in range(3):
        st.push(qam(rng, layout)[0], seq=100 + i)
    total, starts = [], []
    while True:
        x, s = st.read(1000)
        if not len(x):
            break
        total.append(x)
        starts += s
    sig = np.concatenate(total)
    assert [s[2] for s in starts] == [100, 101, 102]
    for off, blen, _ in starts:
        assert np.allclose(sig[off : off + 144], mod.preamble.samples)
        assert blen == mod.burst_length
    assert st.pending == 0 and st.bursts_out == 3


# ---------------------------------------------------------------- receiver


def test_noiseless_recovery_any_chunking(layout):
    rng = np.random.default_rng(4)
    data = list(qam(rng, layout, 6))
    ref, _, _ = run_link(layout, data, chunk=1 << 16, snr_db=None)
    assert len(ref) == 6
    for b, x in zip(ref, data, strict=True):
        assert np.abs(b.x_hat - x).max() < 0.02
    # irregular chunk sizes give the same bursts
    stream = BurstStream(BurstModulator(layout), 40, 400, seed=0)
    for i, x in enumerate(data):
        stream.push(x, i)
    recv = StreamReceiver(layout)
    got = []
    while True:
        x, _ = stream.read(int(rng.integers(1, 3000)))
        if not len(x):
            break
        got += recv.process(x)
    got += recv.flush()
    assert [b.start for b in got] == [b.start for b in ref]
    assert all(np.allclose(g.x_hat, r.x_hat, atol=1e-4) for g, r in zip(got, ref, strict=True))


def test_awgn_cfo_timing_sfo_at_15db(layout):
    """The delivery target's conditions: Es/N0 15 dB, CFO 0.1, random timing, SFO 20 ppm."""
    rng = np.random.default_rng(5)
    data = list(qam(rng, layout, 150))
    got, starts, recv = run_link(
        layout, data, snr_db=15.0, cfo=0.1, delay=5.37, sfo_ppm=20.0, seed=5
    )
    pairs = match(got, starts, data)
    assert len(got) == len(pairs) == 150
    no = 10 ** -1.5
    evm = np.array([np.mean(np.abs(b.x_hat - x) ** 2) for b, x in pairs])
    assert np.median(evm) < no * 10 ** (0.08)  # within 0.8 dB of the channel noise
    assert evm.max() < no * 10 ** 0.3
    cfo = np.array([b.cfo for b, _ in pairs])
    assert np.abs(cfo - 0.1).max() < 0.02
    # noise variance estimate and no_eff are calibrated
    assert np.median([b.noise_var for b, _ in pairs]) == pytest.approx(no, rel=0.15)
    ratio = np.median(evm / np.array([b.no_eff.mean() for b, _ in pairs]))
    assert 0.85 < ratio < 1.2
    assert recv.stats["bursts"] == 150


@pytest.mark.parametrize("cfo", [2.3, -3.4, 0.97, -1.02])
def test_integer_and_large_fractional_cfo(layout, cfo):
    rng = np.random.default_rng(6)
    data = list(qam(rng, layout, 20))
    got, starts, _ = run_link(layout, data, snr_db=15.0, cfo=cfo, delay=2.5, seed=6)
    pairs = match(got, starts, data)
    assert len(pairs) == 20
    assert np.abs(np.array([b.cfo for b, _ in pairs]) - cfo).max() < 0.02
    evm = np.median([np.mean(np.abs(b.x_hat - x) ** 2) for b, x in pairs])
    assert 10 * np.log10(evm) < -14.0


def test_multipath_tdl_a(layout):
    rng = np.random.default_rng(7)
    data = list(qam(rng, layout, 40, bps=4))
    got, starts, _ = run_link(
        layout, data, snr_db=25.0, cfo=0.1, channel="tdl-a", delay_spread_s=300e-9,
        delay=1.3, seed=7,
    )
    pairs = match(got, starts, data)
    assert len(pairs) == 40
    # block Rayleigh fading: compare EVM with the reported noise level, burst by burst
    ratio = [np.mean(np.abs(b.x_hat - x) ** 2) / b.no_eff.mean() for b, x in pairs]
    assert 0.6 < np.median(ratio) < 1.6
    good = [b for b, _ in pairs if b.snr_db > 15]
    assert len(good) > 25


def test_low_snr_detection(layout):
    rng = np.random.default_rng(8)
    data = list(qam(rng, layout, 60))
    got, starts, _ = run_link(layout, data, snr_db=2.0, cfo=0.1, delay=0.5, seed=8)
    assert len(match(got, starts, data)) >= 59


def test_noise_only_gives_no_bursts(layout):
    recv = StreamReceiver(layout)
    rng = np.random.default_rng(9)
    for _ in range(20):
        n = (rng.standard_normal(8192) + 1j * rng.standard_normal(8192)).astype(np.complex64)
        assert recv.process(n) == []
    assert recv.flush() == []
    assert recv.stats["bursts"] == 0
    assert recv.stats["candidates"] < 50  # few costly candidates on pure noise


def test_truncated_burst_at_end_is_counted(layout):
    b = BurstModulator(layout).modulate(qam(np.random.default_rng(10), layout)[0])
    recv = StreamReceiver(layout)
    assert recv.process(np.concatenate([np.zeros(50, np.complex64), b[:1500]])) == []
    assert recv.flush() == []
    assert recv.stats["incomplete"] == 1


def test_16qam_grid():
    lay = GridLayout.load("16qam")
    assert lay.num_ofdm_symbols == 14 and lay.bits_per_symbol == 4
    rng = np.random.default_rng(11)
    data = list(qam(rng, lay, 10, bps=4))
    got, starts, _ = run_link(lay, data, snr_db=25.0, cfo=0.1, delay=0.7, seed=11)
    pairs = match(got, starts, data)
    assert len(pairs) == 10
    assert max(np.mean(np.abs(b.x_hat - x) ** 2) for b, x in pairs) < 10 ** -2.2


# ---------------------------------------------------------------- channel emulator


def test_channel_noise_variance_is_per_complex_sample():
    chan = ChannelEmulator(snr_db=10.0, seed=1)
    y = chan.process(np.zeros(200_000, np.complex64))
    assert np.mean(np.abs(y) ** 2) == pytest.approx(0.1, rel=0.02)
    assert np.var(y.real) == pytest.approx(0.05, rel=0.03)


def test_channel_cfo_and_state_continuity():
    x = np.ones(5000, np.complex64)
    whole = ChannelEmulator(snr_db=None, cfo=0.25, fft_size=72, delay=2.4, sfo_ppm=50).process(x)
    chan = ChannelEmulator(snr_db=None, cfo=0.25, fft_size=72, delay=2.4, sfo_ppm=50)
    parts = np.concatenate([chan.process(x[a : a + 700]) for a in range(0, 5000, 700)])
    n = min(len(whole), len(parts))
    assert np.allclose(whole[:n], parts[:n], atol=1e-4)
    ph = np.angle(whole[200:1000] * np.conj(whole[199:999]))
    assert np.allclose(ph, 2 * np.pi * 0.25 / 72, atol=1e-3)


def test_channel_sampling_offset_changes_rate():
    chan = ChannelEmulator(snr_db=None, sfo_ppm=1000.0)
    y = chan.process(np.ones(100_000, np.complex64))
    assert len(y) == pytest.approx(100_000 / 1.001, abs=40)


def test_tdl_profiles_and_unit_energy():
    delays, powers, los = tdl_profile("tdl-a", 100e-9)
    assert len(delays) == 23 and powers.sum() == pytest.approx(1.0) and not los
    assert tdl_profile("tdl-d", 1e-9)[2]
    with pytest.raises(ValueError, match="unknown channel"):
        tdl_profile("tdl-z", 1e-9)
    chan = ChannelEmulator(channel="tdl-a", delay_spread_s=300e-9, seed=2)
    energy = []
    for _ in range(400):
        energy.append(np.sum(np.abs(chan._draw_taps()) ** 2))
    assert np.mean(energy) == pytest.approx(1.0, rel=0.12)


# ---------------------------------------------------------------- messages


def test_messages_round_trip_and_rejections(layout):
    s, nd = 1, layout.num_data_symbols
    x = np.ones((s, nd), np.complex64)
    f = wire.decode(wire.encode(messages.tx_frame(x, 5, layout.format_id)))
    assert np.array_equal(messages.parse_tx_frame(f, (s, nd), layout.format_id), x)
    with pytest.raises(wire.WireError) as e:
        messages.parse_tx_frame(f, (s, nd + 1))
    assert e.value.cause == "shape"
    with pytest.raises(wire.WireError) as e:
        messages.parse_tx_frame(f, (s, nd), layout.format_id + 1)
    assert e.value.cause == "format"
    bad = wire.Frame(wire.PayloadKind.SYMBOLS, np.full((s, nd), np.nan, np.complex64))
    with pytest.raises(wire.WireError) as e:
        messages.parse_tx_frame(bad, (s, nd))
    assert e.value.cause == "value"
    with pytest.raises(wire.WireError) as e:
        messages.parse_rx_frame(f)
    assert e.value.cause == "shape"
    r = messages.rx_frame(x, np.full((s, nd), 0.5), {"snr_db": 12.5}, seq=9, format_id=3)
    p = messages.parse_rx_frame(wire.decode(wire.encode(r)), (s, nd), 3)
    assert p.seq == 9 and p.meta["snr_db"] == pytest.approx(12.5) and p.no_eff[0, 0] == 0.5
    assert messages.is_eos(wire.decode(wire.encode(messages.eos_frame())))
    assert not messages.is_eos(wire.Frame(wire.PayloadKind.CONTROL, b"not json"))
