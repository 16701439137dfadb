"""The streaming modem and gsc_phy carry the same frames: grid export, both directions.

* the grids shipped for the radio side are what ``gsc_stream.grid_export`` exports now, and
  their data/pilot REs are those of Sionna's ``ResourceGridMapper`` (pilots included);
* gsc_phy -> radio: a frame built by gsc_phy/Sionna (transmitter, resource grid mapper,
  ``OFDMModulator``) is found, synchronised and equalised by the numpy stream receiver and
  decodes to the same bits;
* radio -> gsc_phy: a burst from the numpy transmitter, demodulated by Sionna's
  ``OFDMDemodulator`` and received by gsc_phy's ``Receiver`` (LS estimation, LMMSE), decodes
  to the same bits.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sionna.phy.ofdm import OFDMDemodulator, OFDMModulator

from flowgraphs.gsc_ofdm import BurstModulator, GridLayout, StreamReceiver
from flowgraphs.gsc_ofdm.channel import ChannelEmulator
from gsc_phy.config import LinkConfig
from gsc_phy.link import Link, Receiver
from gsc_stream.grid_export import SHIPPED_GRIDS, export_grid, grid_json_text, shipped_grid_path
from gsc_stream.stream_decode import StreamCodec, loopback_payload, payload_crc32, payload_seq


@pytest.fixture(scope="module", params=["qpsk", "16qam"])
def setup(request):
    cfg = LinkConfig(modulation=request.param, estimator="ls")
    codec = StreamCodec(cfg)
    lay = GridLayout.from_dict(export_grid(cfg))
    f = codec.frame
    payload = np.stack(
        [loopback_payload(s, 7, f.codewords_per_frame, f.payload_bits_per_block) for s in range(4)]
    )
    return cfg, codec, lay, payload


@pytest.mark.parametrize("name", sorted(SHIPPED_GRIDS))
def test_shipped_grids_are_current(name):
    with open(shipped_grid_path(name), encoding="utf-8") as fh:
        shipped = fh.read()
    assert shipped == grid_json_text(LinkConfig(**SHIPPED_GRIDS[name])), (
        "regenerate with: python -m gsc_stream.grid_export --shipped"
    )
    doc = json.loads(shipped)
    assert GridLayout.from_dict(doc).format_id == doc["format_id"]


@pytest.mark.parametrize("kw", [{"modulation": "qpsk"}, {"modulation": "64qam", "n": 2040},
                                {"num_tx_ant": 2, "num_rx_ant": 2}])
def test_grid_layout_is_sionnas_mapping(kw):
    cfg = LinkConfig(**kw)
    lay = GridLayout.from_dict(export_grid(cfg))
    link = Link(cfg, device="cpu")  # seeds Sionna like export_grid: same pilots
    _, x, x_rg = link.transmitter(batch_size=2)
    assert np.array_equal(lay.map(x.numpy()), x_rg[:, 0].numpy())
    assert np.array_equal(lay.extract(x_rg[:, 0].numpy()), x.numpy())


def test_payload_helpers():
    p = loopback_payload(123456, 1, 2, 100)
    assert p.shape == (2, 100) and payload_seq(p) == 123456
    assert payload_crc32(p) != payload_crc32(loopback_payload(123457, 1, 2, 100))
    assert np.array_equal(p, loopback_payload(123456, 1, 2, 100))


def test_gsc_phy_frame_decodes_with_radio_receiver(setup):
    cfg, codec, lay, payload = setup
    bits, x = codec.encode(payload)
    assert np.array_equal(bits, payload)
    # Sionna builds the time signal: resource grid mapper + OFDM modulator
    x_rg = codec.transmitter._rg_mapper(torch.as_tensor(x)[:, None])  # [B, 1, S, T, F]
    body = OFDMModulator(lay.cp_length)(x_rg)[:, 0, 0].numpy()
    pre = BurstModulator(lay).preamble.samples
    gap = np.zeros(300, np.complex64)
    sig = np.concatenate([np.concatenate([gap, pre, b]) for b in body] + [gap])
    chan = ChannelEmulator(snr_db=20.0, cfo=0.1, delay=3.3, fft_size=lay.fft_size, seed=1)
    recv = StreamReceiver(lay)
    bursts = recv.process(chan.process(sig)) + recv.flush()
    assert len(bursts) == len(payload)
    out = codec.decode(np.stack([b.x_hat for b in bursts]), np.stack([b.no_eff for b in bursts]))
    assert out.block_ok.all()
    assert np.array_equal(out.bits_hat, payload)
    assert [payload_seq(b) for b in out.bits_hat] == [0, 1, 2, 3]
    assert np.all(out.evm_db < -17)


def test_radio_burst_decodes_with_sionna_demodulator(setup):
    cfg, codec, lay, payload = setup
    bits, x = codec.encode(payload)
    mod = BurstModulator(lay)
    body = mod.modulate(x)[:, mod.preamble.length :]  # known timing: drop the preamble
    no = 10 ** (-20 / 10)
    rng = np.random.default_rng(3)
    noise = (rng.standard_normal(body.shape) + 1j * rng.standard_normal(body.shape)) * np.sqrt(
        no / 2
    )
    y_t = torch.as_tensor((body + noise).astype(np.complex64))
    y = OFDMDemodulator(lay.fft_size, 0, lay.cp_length)(y_t)  # [B, T, F]
    y = y[:, None, None]  # [B, num_rx=1, num_rx_ant=1, T, F]
    rx = Receiver(cfg, codec.frame, codec.transmitter, codec.constellation)
    bits_hat, block_ok, *_ = rx(y, torch.tensor(no), None)
    assert bool(block_ok.all())
    assert np.array_equal(bits_hat.numpy().astype(np.uint8), payload)
