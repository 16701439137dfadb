"""gsc_stream.channel_feed: per-frame Sionna/RIS realisations for the GNU Radio channel feed, and
2-stream decoding of streaming frames (gsc_stream.stream_decode)."""

from __future__ import annotations

import numpy as np
import pytest

from bridge import wire
from bridge.common import ConfigError
from flowgraphs.gsc_ofdm.grid import GridLayout
from flowgraphs.gsc_ofdm.mimo import BurstPrecoder, MimoBurstModulator, MimoStreamReceiver
from flowgraphs.gsc_ofdm.mimo_channel import MimoChannel, parse_channel_frame
from gsc_phy.config import LinkConfig
from gsc_stream.channel_feed import L_MIN, ChannelFeed
from gsc_stream.grid_export import config_from_grid, export_grid
from gsc_stream.loopback_mimo import RIS_DEFAULTS
from gsc_stream.stream_decode import StreamCodec


def test_tdl_a_realisations_have_unit_average_energy():
    feed = ChannelFeed("tdl-a", num_tx=2, num_rx=2, samp_rate_hz=2.16e6, seed=0)
    taps, ris = feed.draw(256)
    assert ris is None and taps.shape[:3] == (256, 2, 2) and taps.dtype == np.complex64
    energy = (np.abs(taps) ** 2).sum(axis=-1).mean()
    assert 0.85 < energy < 1.15  # E|h|^2 = 1 per pair, fading kept
    peak = np.abs(taps).mean(axis=(0, 1, 2)).argmax()
    assert peak >= -L_MIN  # the first path sits after the kept sinc tail
    frames = feed.frames(5, 3)
    seq, t, _ = parse_channel_frame(wire.decode(wire.encode(frames[1])), 2, 2)
    assert seq == 6 and t.shape[:2] == (2, 2)


def test_ris_realisation_is_the_flat_cascade():
    cfg = LinkConfig(snr_db=[20.0], **RIS_DEFAULTS)
    feed = ChannelFeed("ris", cfg=cfg)
    taps, ris = feed.draw(2)
    assert np.allclose(taps, 0)  # direct path blocked
    assert np.abs(ris).min() > 0 and np.allclose(ris[0], ris[1])
    assert feed.ris_gain_db is not None and np.isfinite(feed.ris_gain_db)


def test_unknown_channel_is_a_config_error():
    with pytest.raises(ConfigError, match="channel feed"):
        ChannelFeed("rayleigh")


def test_two_stream_frame_decodes_from_the_streaming_receiver():
    """gsc_phy's 2-stream transmitter -> numpy MIMO modem and 2x2 channel -> gsc_phy decoder."""
    doc = export_grid(LinkConfig(num_tx_ant=2, num_rx_ant=2))
    lay = GridLayout.from_dict(doc)
    codec = StreamCodec(config_from_grid(doc))
    payload, x = codec.encode(batch_size=2)
    mod = MimoBurstModulator(lay)
    pre = BurstPrecoder(2, 2, mod.preamble.length)
    rng = np.random.default_rng(0)
    h = ((rng.standard_normal((2, 2, 1)) + 1j * rng.standard_normal((2, 2, 1))) / np.sqrt(2))
    ch = MimoChannel(2, 2, snr_db=22.0, seed=1)
    rx = MimoStreamReceiver(lay)
    gap = np.zeros((2, 300), np.complex64)
    sig = np.concatenate([gap, mod.modulate(x[0]), gap, mod.modulate(x[1]), gap, gap], axis=1)
    starts = [(300, None), (600 + mod.burst_length, None)]
    y = ch.process(pre.process(sig, starts), [(0, h, None)])
    got = rx.process(y) + rx.flush()
    assert len(got) == 2
    res = codec.decode(np.stack([b.x_hat for b in got]), np.stack([b.no_eff for b in got]))
    assert res.block_ok.all()
    assert np.array_equal(res.bits_hat, payload)
    assert np.isfinite(res.evm_db).all() and (res.evm_db < -10).all()


def _mimo_setup():
    cfg = LinkConfig(num_tx_ant=2, num_rx_ant=2, estimator="ls")
    doc = export_grid(cfg)
    return cfg, GridLayout.from_dict(doc), StreamCodec(config_from_grid(doc))


def test_sionna_mimo_frame_decodes_in_the_streaming_receiver():
    """gsc_phy -> radio: Sionna's resource grid and OFDMModulator, gsc_phy's ``none`` precoder
    (I / sqrt 2), then the streaming 2-antenna receiver."""
    import torch
    from sionna.phy.ofdm import OFDMModulator

    _, lay, codec = _mimo_setup()
    payload, _ = codec.encode(batch_size=1)
    _, _, x_rg = codec.transmitter(torch.as_tensor(payload, dtype=torch.float32))
    body = OFDMModulator(lay.cp_length)(x_rg)[0, 0].numpy() / np.sqrt(2)  # [S=Nt, samples]
    mod = MimoBurstModulator(lay)
    burst = np.concatenate([mod.preambles / np.sqrt(2), body], axis=1).astype(np.complex64)
    h = np.array([[1.0, 0.4j], [-0.3, 0.9]], np.complex64)[:, :, None]
    gap = np.zeros((2, 200), np.complex64)
    y = MimoChannel(2, 2, snr_db=25.0, seed=2).process(
        np.concatenate([gap, burst, gap, gap], axis=1), [(0, h, None)])
    rx = MimoStreamReceiver(lay)
    got = rx.process(y) + rx.flush()
    assert len(got) == 1
    out = codec.decode(got[0].x_hat[None], got[0].no_eff[None])
    assert out.block_ok.all() and np.array_equal(out.bits_hat, payload)


def test_streaming_mimo_burst_decodes_with_gsc_phy_receiver():
    """radio -> gsc_phy: the streaming MIMO burst (identity precoder), Sionna's
    OFDMDemodulator per RX antenna and gsc_phy's Receiver (LS estimation, LMMSE)."""
    import torch
    from sionna.phy.ofdm import OFDMDemodulator

    from gsc_phy.link import Receiver

    cfg, lay, codec = _mimo_setup()
    payload, x = codec.encode(batch_size=2)
    mod = MimoBurstModulator(lay)
    pre = BurstPrecoder(2, 2, mod.preamble.length)
    h = np.array([[0.8, -0.5], [0.3j, 1.1]], np.complex64)
    no = 10 ** (-25 / 10)
    rng = np.random.default_rng(3)
    ys = []
    for xi in x:
        body = pre.process(mod.modulate(xi), [(0, None)])[:, mod.preamble.length:]
        yi = h @ body
        ys.append(yi + (rng.standard_normal(yi.shape) + 1j * rng.standard_normal(yi.shape))
                  * np.sqrt(no / 2))
    y_t = torch.as_tensor(np.stack(ys).astype(np.complex64))  # [B, Nr, samples]
    y = OFDMDemodulator(lay.fft_size, 0, lay.cp_length)(y_t)[:, None]  # [B, 1, Nr, T, F]
    rx = Receiver(cfg, codec.frame, codec.transmitter, codec.constellation)
    bits_hat, block_ok, *_ = rx(y, torch.tensor(no), None)
    assert bool(block_ok.all())
    assert np.array_equal(bits_hat.numpy().astype(np.uint8), payload)
