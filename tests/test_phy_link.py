"""Link building blocks: configs, precoders, channel normalisation, every receiver path."""

import pytest
import torch

from gsc_phy.channels import make_channel
from gsc_phy.config import ConfigError, LinkConfig, parse_mimo, parse_snr_range
from gsc_phy.frame import FrameFormat
from gsc_phy.link import Link, mask_crc
from gsc_phy.precoding import Precoder, waterfilling


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(k=2048, n=1024), "below 1"),
        (dict(modulation="8psk"), "unknown modulation"),
        (dict(channel="tdl-z"), "unknown channel"),
        (dict(ris_elements=64), "needs its geometry"),
        (dict(ris_elements=10**6, tx_pos=(0, 0, 0), ris_pos=(1, 1, 1), rx_pos=(2, 0, 0)),
         "at most"),
        (dict(num_tx_ant=2, num_rx_ant=1), "cannot be separated"),
        (dict(num_tx_ant=2, num_rx_ant=2, precoder="svd", num_streams=3), "do not fit"),
        (dict(water_filling=True), "needs --precoder svd"),
        (dict(num_tx_ant=2, num_rx_ant=4, precoder="zf"), "streams = Nr <= Nt"),
        (dict(snr_db=[]), "empty"),
    ],
)
def test_invalid_configs_raise_one_line(kwargs, needle):
    with pytest.raises(ConfigError) as e:
        LinkConfig(**kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_parsers():
    assert parse_mimo("4x2") == (4, 2)
    assert parse_snr_range("-5:20:5") == [-5, 0, 5, 10, 15, 20]
    assert parse_snr_range("1,2.5") == [1.0, 2.5]
    for bad in ("0x2", "2", "axb"):
        with pytest.raises(ConfigError):
            parse_mimo(bad)
    for bad in ("5:0:1", "0:1:0", "x"):
        with pytest.raises(ConfigError):
            parse_snr_range(bad)


def test_frame_fills_the_grid_exactly():
    for mod in ("qpsk", "16qam", "256qam"):
        ff = FrameFormat.from_config(LinkConfig(modulation=mod, num_tx_ant=2, num_rx_ant=2))
        assert ff.codewords_per_frame >= 1
        assert ff.codewords_per_frame * ff.n + ff.padding_bits == ff.coded_bits_per_frame
        assert ff.padding_bits < ff.n


def test_crc_mask_rejects_all_zero_decoder_output():
    tb = torch.zeros(1, 1, 100)
    assert mask_crc(mask_crc(tb)).eq(tb).all()
    link = Link(LinkConfig(k=100, n=300))
    _, ok = link.receiver._crc_decoder(mask_crc(torch.zeros(2, 1, 100)))
    assert not ok.any()


def test_waterfilling_known_values():
    p = waterfilling(torch.tensor([[10.0, 1.0, 0.01], [1.0, 1.0, 1.0]]))
    assert torch.allclose(p[0], torch.tensor([0.95, 0.05, 0.0]), atol=1e-6)
    assert torch.allclose(p[1], torch.full((3,), 1 / 3))


@pytest.mark.parametrize("kind", ["none", "svd", "zf", "rzf"])
def test_precoders_unit_power_and_structure(kind):
    torch.manual_seed(0)
    h = torch.randn(500, 2, 2, dtype=torch.complex64)
    w = Precoder(kind, 2, water_filling=(kind == "svd"))(h, 0.1)
    power = (w.abs() ** 2).sum(dim=(-2, -1))
    assert torch.allclose(power, torch.ones_like(power), atol=1e-4)
    he = h @ w
    if kind == "svd":  # H W = U S: orthogonal stream signatures, (HW)^H HW diagonal
        he = he.mH @ he
    if kind in ("svd", "zf"):  # ZF: H W itself is diagonal
        off = he[:, 0, 1].abs() ** 2 + he[:, 1, 0].abs() ** 2
        assert (off / (he.abs() ** 2).sum(dim=(-2, -1))).max() < 1e-6


@pytest.mark.parametrize("channel", ["rayleigh", "tdl-a", "tdl-d", "cdl-a", "cdl-c", "umi", "uma"])
def test_channels_have_unit_average_energy_and_fade(channel):
    cfg = LinkConfig(channel=channel, num_tx_ant=2, num_rx_ant=2)
    ff = FrameFormat.from_config(cfg)
    sampler = make_channel(cfg, ff.resource_grid, "cpu")
    h = torch.cat([sampler(128) for _ in range(4)])
    energy = (h.abs() ** 2).mean(dim=(1, 2, 3, 4, 5, 6))  # per realisation
    assert abs(energy.mean().item() - 1.0) < 0.15, energy.mean()
    assert energy.std().item() > 0.05  # fading is not normalised away


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(channel="awgn", modulation="256qam", k=4000, n=6000),
        dict(channel="tdl-a", estimator="ls", modulation="16qam"),
        dict(channel="tdl-c", estimator="lmmse", speed_mps=30.0),
        dict(channel="cdl-b", num_tx_ant=2, num_rx_ant=2, estimator="ls"),
        dict(channel="rayleigh", num_tx_ant=2, num_rx_ant=2, detector="kbest"),
        dict(channel="rayleigh", num_tx_ant=4, num_rx_ant=2, precoder="rzf"),
        dict(channel="rayleigh", num_tx_ant=2, num_rx_ant=4, precoder="svd", num_streams=1),
        dict(channel="uma", estimator="ls"),
        dict(channel="awgn", modulation="bpsk", rate_snr=None),
    ],
)
def test_every_path_decodes_at_high_snr(kwargs):
    kwargs = {k: v for k, v in kwargs.items() if k != "rate_snr"}
    link = Link(LinkConfig(seed=5, **kwargs))
    with torch.no_grad():
        out = link(batch_size=8, snr_db=35.0)
    assert out.block_ok.float().mean() >= 0.95
    assert out.llr.shape == (8, link.frame.coded_bits_per_frame)
    s, nd = link.frame.num_streams, link.frame.data_symbols_per_stream
    assert out.x_hat.shape == (8, s, nd)
    # and the link really is noisy at low SNR
    with torch.no_grad():
        bad = link(batch_size=8, snr_db=-10.0)
    assert bad.block_ok.float().mean() < 0.5


def test_payload_round_trip_and_seed_reproducibility():
    cfg = LinkConfig(channel="tdl-a", estimator="ls", seed=11)
    a = Link(cfg)(batch_size=4, snr_db=5.0)
    b = Link(cfg)(batch_size=4, snr_db=5.0)
    assert torch.equal(a.bits, b.bits) and torch.equal(a.llr, b.llr)
    link = Link(LinkConfig(seed=1))
    ff = link.frame
    payload = torch.randint(0, 2, (3, ff.codewords_per_frame, ff.payload_bits_per_block)).float()
    out = link(batch_size=3, snr_db=30.0, payload=payload)
    assert torch.equal(out.bits_hat, payload)


def test_ris_link_gain_shows_in_ber():
    """Blocked direct path: 256 co-phased elements deliver where random phases do not."""
    geo = dict(tx_pos=(0.0, 0.0, 5.0), ris_pos=(10.0, 5.0, 5.0), rx_pos=(20.0, 0.0, 1.5),
               ris_direct_blocked=True, uncoded=True)
    ber = {}
    for phases in ("cophase", "random"):
        link = Link(LinkConfig(channel="ris", ris_elements=256, ris_phases=phases, **geo))
        with torch.no_grad():
            out = link(batch_size=4, snr_db=20.0)
        ber[phases] = (out.bits != out.bits_hat).float().mean().item()
    assert ber["cophase"] < 1e-3 < ber["random"], ber
