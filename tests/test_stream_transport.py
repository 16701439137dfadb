"""Transport blocks of the scenarios through the GNU Radio streaming loopback.

* :func:`frame_payloads` numbers frames and carries the stream bits in order;
* ``run_loopback(payloads=...)`` refuses payloads without their frame numbers;
* a layered transmission over the loopback at high Es/N0 arrives bit-exact, with the loopback
  counters (frames, losses by cause, channel-use overhead of the frame numbers) summed;
* at very low Es/N0 every block is erased and none is wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from bridge.common import ConfigError
from bridge.interpreters import find_radio_python
from gsc_semantic.baselines import AdaptiveLink
from gsc_semantic.scenarios.layered_link import LayeredLink
from gsc_semantic.stream_transport import StreamTransport, frame_payloads
from gsc_stream.loopback import run_loopback
from gsc_stream.stream_decode import SEQ_BITS, payload_seq

_RADIO = find_radio_python()
needs_radio = pytest.mark.skipif(
    not (_RADIO and _RADIO.get("gnuradio")),
    reason="no radio interpreter (GNU Radio) found: install gnuradio python3-zmq or set "
    "GSC_RADIO_PYTHON",
)


def test_frame_payloads_number_frames_and_keep_bit_order():
    bits = np.random.default_rng(1).integers(0, 2, 1000, dtype=np.uint8)
    p = frame_payloads(bits, 2, 100, seed=3)
    per_frame = 2 * 100 - SEQ_BITS
    assert p.shape == (int(np.ceil(1000 / per_frame)), 2, 100)
    assert [payload_seq(f) for f in p] == list(range(len(p)))
    data = p.reshape(len(p), -1)[:, SEQ_BITS:].reshape(-1)
    assert np.array_equal(data[:1000], bits)
    assert np.array_equal(frame_payloads(bits, 2, 100, seed=3), p)  # reproducible fill
    with pytest.raises(ConfigError, match="frame number"):
        frame_payloads(bits, 1, SEQ_BITS)


@needs_radio
def test_run_loopback_refuses_unnumbered_payloads(tmp_path):
    bad = np.zeros((2, 1, 284), np.uint8)  # frame 1 does not carry its number
    with pytest.raises(ConfigError, match="frame number"):
        run_loopback(modulation="qpsk", k=308, n=1536, payloads=bad, out_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="shape"):
        run_loopback(modulation="qpsk", k=308, n=1536, payloads=np.zeros((2, 1, 9), np.uint8),
                     out_dir=str(tmp_path))


def test_unsupported_channel_or_transport_is_one_clear_error():
    with pytest.raises(ConfigError, match="streaming loopback emulates"):
        StreamTransport("rayleigh")
    with pytest.raises(ConfigError, match="transport"):
        AdaptiveLink("awgn", transport="radio")


@needs_radio
def test_layered_bits_round_trip_through_the_loopback(tmp_path):
    transport = StreamTransport("awgn", seed=5, out_dir=str(tmp_path))
    bits = np.random.default_rng(2).integers(0, 2, (2, 900), dtype=np.uint8)
    link = LayeredLink("awgn", 1.0, [900], [1], link=transport, image_shape=(3, 64, 64))
    out = link([bits], snr_db=20.0, seed=1)
    assert not out.erased.any()
    assert np.array_equal(out.bits[0], bits)
    c = transport.take()
    blocks = int(np.ceil(2 * 900 / 284))  # MCS 1: 284 payload bits per block and frame
    assert c["transmissions"] == 1 and c["blocks_sent"] == blocks and c["blocks_erased"] == 0
    frames = int(np.ceil(blocks * 284 / (284 - SEQ_BITS)))  # 32-bit frame numbers cost frames
    assert c["frames_sent"] == c["frames_decoded"] == frames
    assert c["frames_lost_total"] == 0
    assert c["channel_uses_overhead"] == (frames - blocks) * c["channel_uses"] / frames > 0
    assert (tmp_path / "tx0001" / "loopback.json").is_file()
    assert transport.take()["transmissions"] == 0  # take() resets


@needs_radio
def test_very_low_snr_erases_blocks_and_never_delivers_wrong_bits():
    transport = StreamTransport("awgn", seed=7)
    link = AdaptiveLink("awgn", 1 / 12, transport=transport)
    budget = link.budget((3, 64, 64), -8.0, 9)  # 16-QAM far below its threshold
    stream, frames = link.empty_stream(2, budget)
    stream[:] = np.random.default_rng(3).integers(0, 2, stream.size, dtype=np.uint8)
    rx, ok = link.transmit(stream, budget, True, channel_seed=4)
    assert rx.shape == stream.shape and ok.shape == (stream.size // 1824,)
    assert not ok.any()
    c = transport.take()
    assert c["frames_decoded"] == 0 and c["frames_lost_undetected_error"] == 0
    assert c["frames_lost_total"] == c["frames_sent"] > frames - 1
    assert sum(v for k, v in c.items() if k.startswith("frames_lost_")
               and k != "frames_lost_total") == c["frames_lost_total"]
