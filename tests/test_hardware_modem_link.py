"""The streaming modem's TX and RX flowgraphs through the ZeroMQ virtual radio.

gsc_tx_gen -> (IQ, tags passed) -> zmq_channel with a profile's impairments -> gsc_rx_gen:
the IQ contract between the modem flowgraphs and the device flowgraphs, end to end, on the
radio side. Frame *delivery* (decoding, CRC) is the ML side's part; here every burst must be
detected and equalised. Skipped if the modem flowgraphs are not there.
"""

import threading
import time

import numpy as np
import pytest

pytest.importorskip("gnuradio.gr")
tx_mod = pytest.importorskip("flowgraphs.gsc_tx_gen")
rx_mod = pytest.importorskip("flowgraphs.gsc_rx_gen")

from bridge.reliable import ReliableConsumer  # noqa: E402
from bridge.transport import Pusher  # noqa: E402
from flowgraphs.gsc_ofdm import GridLayout  # noqa: E402
from flowgraphs.gsc_ofdm.messages import eos_frame, parse_rx_frame, tx_frame  # noqa: E402
from hardware.device import run_flowgraph  # noqa: E402
from hardware.profiles import load_profile  # noqa: E402

pytestmark = pytest.mark.radio


def run_link(tmp_path, profile_name, n_frames):
    eps = {n: f"ipc://{tmp_path}/{n}.sock" for n in ("frames", "iq_tx", "iq_rx", "rx")}
    profile = load_profile(profile_name, {"zmq.tx_endpoint": eps["iq_tx"],
                                          "zmq.rx_endpoint": eps["iq_rx"]})
    lay = GridLayout.load()
    rng = np.random.default_rng(4)
    shape = (n_frames, 1, lay.num_data_symbols)
    data = (((rng.integers(0, 2, shape) * 2 - 1) + 1j * (rng.integers(0, 2, shape) * 2 - 1))
            / np.sqrt(2)).astype(np.complex64)
    txg = tx_mod.gsc_tx_gen(tx_endpoint=eps["frames"], iq_endpoint=profile.tx_endpoint,
                            stats_dir=str(tmp_path))
    rxg = rx_mod.gsc_rx_gen(iq_endpoint=profile.rx_endpoint, rx_endpoint=eps["rx"],
                            stats_dir=str(tmp_path))
    stop, summary, frames = threading.Event(), {}, []
    radio = threading.Thread(target=lambda: summary.update(
        run_flowgraph(profile, "rx", duration_s=120.0, stop=stop)))
    sink = ReliableConsumer(eps["rx"], name="sink", credit=n_frames)
    with Pusher(eps["frames"], timeout_ms=10000) as src:
        rxg.start()
        radio.start()
        txg.start()
        for i, x in enumerate(data):
            src.send(tx_frame(x, i, lay.format_id))
        deadline = time.monotonic() + 60
        while len(frames) < n_frames and time.monotonic() < deadline:
            f = sink.get(timeout_s=0.1)
            if f is not None:
                frames.append(parse_rx_frame(f))
                sink.ack(f)
        src.send(eos_frame())
        txg.wait()
        stop.set()
        radio.join(timeout=20)
        rxg.stop()
        rxg.wait()
    sink.close()
    evm = {f.seq: 10 * np.log10(np.mean(np.abs(f.x_hat - data[f.seq]) ** 2)) for f in frames}
    return evm, summary


def test_clean_virtual_radio_passes_every_frame(tmp_path):
    evm, summary = run_link(tmp_path, "zmq", 20)
    assert sorted(evm) == list(range(20))
    assert max(evm.values()) < -30.0
    assert summary["flowgraph"] == "zmq_channel"


def test_impaired_virtual_radio_detects_every_frame(tmp_path):
    # CFO 2.7 subcarriers, 50 ppm SRO, 50 Hz phase noise, 1 dB / 3 deg IQ, DC, Es/N0 15 dB
    evm, summary = run_link(tmp_path, "zmq_impaired", 40)
    assert len(evm) >= 39, sorted(evm)
    assert np.median(list(evm.values())) < -8.0
    assert summary["impairments"]["samples_out"] < summary["impairments"]["samples_in"]  # SRO
