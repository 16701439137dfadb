"""Each rule of docs/conventions.md, enforced."""

import math

import numpy as np
import torch
from sionna.phy.channel import AWGN

from gsc_phy.bits import bits_to_bytes, bytes_to_bits
from gsc_phy.config import LinkConfig
from gsc_phy.frame import FrameFormat, bandwidth_ratio
from gsc_phy.link import Link


def test_noise_variance_per_complex_sample():
    """Es/N0 = 10 dB -> no = 0.1 and the link adds complex noise of variance 0.1 (0.05 per
    real part) to unit-energy symbols."""
    ff = FrameFormat.from_config(LinkConfig())
    assert math.isclose(ff.noise_variance(10.0, "esno"), 0.1, rel_tol=1e-12)
    torch.manual_seed(0)
    n = AWGN()(torch.zeros(200000, dtype=torch.complex64), 0.1)
    assert abs(n.real.var().item() - 0.05) < 2e-3 and abs(n.imag.var().item() - 0.05) < 2e-3
    # end to end: y - h x on an AWGN link has variance `no` per complex sample
    link = Link(LinkConfig(uncoded=True, modulation="16qam"))
    _, x, x_rg = link.transmitter(None, batch_size=16)
    h = link.effective_channel(16, 0.1)
    y = link._apply_channel(x_rg, h, torch.tensor(0.1))
    resid = (y[:, 0, 0] - x_rg[:, 0, 0]).flatten()
    assert abs((resid.abs() ** 2).mean().item() - 0.1) < 3e-3
    assert abs((x.abs() ** 2).mean().item() - 1.0) < 0.03  # unit-energy constellation


def test_ebno_conversion_matches_formula():
    for kw in (dict(), dict(modulation="16qam", num_tx_ant=2, num_rx_ant=2, k=1000, n=3000)):
        cfg = LinkConfig(**kw)
        ff = FrameFormat.from_config(cfg)
        rg = ff.resource_grid
        eta = rg.num_data_symbols / (
            rg.num_ofdm_symbols * rg.num_effective_subcarriers * (1 + rg.cyclic_prefix_length
                                                                  / rg.fft_size))
        expected_gap = 10 * math.log10(cfg.streams * cfg.bits_per_symbol * cfg.k / cfg.n * eta)
        esno = ff.esno_db(5.0, "ebno")
        assert math.isclose(esno - 5.0, expected_gap, abs_tol=1e-5)


def test_bandwidth_ratio_counts_everything():
    ff = FrameFormat.from_config(LinkConfig())
    rg = ff.resource_grid
    per_symbol = rg.fft_size + rg.cyclic_prefix_length
    assert ff.channel_uses_per_frame == rg.num_ofdm_symbols * per_symbol
    assert ff.channel_uses_per_frame > ff.data_symbols_per_stream  # pilots, guards, CP count
    assert math.isclose(bandwidth_ratio(3 * 1024, 3, 32, 32), 1.0)
    assert math.isclose(bandwidth_ratio(64, 3, 32, 32), 1 / 48)


def test_bits_are_msb_first():
    assert bytes_to_bits(b"\x80").tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert bytes_to_bits(b"\x01\xa5").tolist() == [0] * 7 + [1] + [1, 0, 1, 0, 0, 1, 0, 1]
    data = bytes(range(256))
    assert bits_to_bytes(bytes_to_bits(data)) == data


def _crc24a_reference(bits: np.ndarray) -> np.ndarray:
    """Plain polynomial long division by g(D) = 0x1864CFB (38.212 5.1 CRC24A)."""
    poly = [int(b) for b in f"{0x1864CFB:025b}"]
    reg = [int(b) for b in bits] + [0] * 24
    for i in range(len(bits)):
        if reg[i]:
            for j, p in enumerate(poly):
                reg[i + j] ^= p
    return np.array(reg[-24:])


def test_crc24a_matches_polynomial_division():
    link = Link(LinkConfig(k=124, n=300))
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 2, (3, 1, 100)).astype(np.float32)
    tb = link.transmitter.crc_encoder(torch.tensor(payload)).numpy()
    for row in range(3):
        assert tb[row, 0, :100].tolist() == payload[row, 0].tolist()
        assert tb[row, 0, 100:].tolist() == _crc24a_reference(payload[row, 0]).tolist()


def test_llr_sign_convention():
    """A transmitted 1 yields a positive LLR at high SNR."""
    link = Link(LinkConfig(uncoded=True, modulation="qpsk"))
    with torch.no_grad():
        out = link(batch_size=2, snr_db=30.0)
    bits = out.bits.reshape(2, -1)
    assert torch.equal((out.llr > 0).float(), bits)
