"""Device flowgraphs (flowgraphs/device/) under GNU Radio: grcc, missing hardware, ZeroMQ radio,
SigMF replay/record, and the impairment block. Radio interpreter only."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

gr = pytest.importorskip("gnuradio.gr")

from bridge.pmt import Tag, build_tagged, parse_tagged  # noqa: E402
from flowgraphs.device import build  # noqa: E402
from hardware.device import DeviceError, build_flowgraph, find_uhd, run_flowgraph  # noqa: E402
from hardware.impairments import ImpairmentConfig, Impairments  # noqa: E402
from hardware.profiles import load_profile  # noqa: E402
from hardware.sigmf_lite import SigMFWriter, read_recording  # noqa: E402

pytestmark = pytest.mark.radio
zmq = pytest.importorskip("zmq")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(n=2):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def endpoints():
    a, b = free_ports()
    return {"zmq.tx_endpoint": f"tcp://127.0.0.1:{a}", "zmq.rx_endpoint": f"tcp://127.0.0.1:{b}"}


def test_grcc_compiles_every_device_flowgraph_and_committed_files_are_current(tmp_path):
    paths = build.write_grc(str(tmp_path))
    assert {os.path.basename(p)[:-4] for p in paths} >= {"uhd_tx", "uhd_rx", "pluto_tx",
                                                          "pluto_rx", "zmq_channel",
                                                          "sigmf_rx", "sigmf_tx"}
    build.compile_grc(paths, str(tmp_path))  # one grcc run for all; raises on any failure
    for p in paths:
        fg_id = os.path.basename(p)[:-4]
        with open(p) as fh, open(os.path.join(build.HERE, f"{fg_id}.grc")) as committed:
            assert fh.read() == committed.read(), f"{fg_id}.grc is stale: run the build"
        with open(tmp_path / f"{fg_id}.py") as fh, \
                open(os.path.join(build.HERE, f"{fg_id}_gen.py")) as committed:
            assert fh.read() == committed.read(), f"{fg_id}_gen.py is stale: run the build"


NO_HARDWARE = [("b210", "rx", {}), ("b210", "tx", {}), ("b210", "tx", {"tx.burst_tag": "len"}),
               ("n210", "rx", {}), ("x310", "tx", {}),
               ("pluto", "rx", {"device.uri": "usb:9.9.9"}), ("pluto", "tx", {"device.uri": ""})]


@pytest.mark.parametrize("name,direction,overrides", NO_HARDWARE)
@pytest.mark.parametrize("preflight", [True, False])
def test_device_flowgraph_without_hardware_fails_with_one_clear_line(name, direction,
                                                                      overrides, preflight):
    if name in ("b210", "n210", "x310") and find_uhd(""):
        pytest.skip("a USRP is attached")
    profile = load_profile(name, overrides)
    t0 = time.monotonic()
    with pytest.raises(DeviceError) as ei:
        build_flowgraph(profile, direction, preflight=preflight)
    msg = str(ei.value)
    assert "\n" not in msg and ei.value.reason in ("absent", "unreachable"), msg
    assert ("no USRP" in msg) if profile.kind == "uhd" else ("Pluto" in msg or "IIO" in msg)
    assert time.monotonic() - t0 < 15


def test_device_runner_exits_2_with_one_line():
    env = {**os.environ, "PYTHONPATH": ROOT}
    for args in (["run", "b210", "--direction", "rx"],
                 ["run", "pluto", "--direction", "tx", "--set", "device.uri=usb:9.9.9"],
                 ["check", "b210", "--set", "rx.gain_db=100"]):
        res = subprocess.run([sys.executable, "-m", "hardware.device", *args], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gsc: error: "), res.stderr
        assert "Traceback" not in res.stderr


def _push_all(sock, x, chunk=8192, tags=()):
    """Send like the modem TX's PUSH sink does: gr-zeromq tag header + items."""
    for i in range(0, len(x), chunk):
        mine = [t for t in tags if i <= t.offset < i + chunk]
        sock.send(build_tagged(i, mine, x[i:i + chunk]))


def _pull_all(sock, n_expected, timeout_s=20.0, tags=None):
    """Receive like the modem RX's PULL source does (tag headers parsed)."""
    got, n = [], 0
    deadline = time.monotonic() + timeout_s
    while n < n_expected and time.monotonic() < deadline:
        if sock.poll(200):
            m = parse_tagged(sock.recv())
            if tags is not None:
                tags.extend(m.tags)
            a = m.items(np.complex64)
            got.append(a)
            n += len(a)
    return np.concatenate(got) if got else np.zeros(0, np.complex64)


def test_zmq_virtual_radio_applies_the_profile_impairments():
    imp = {"cfo_hz": 5000.0, "sro_ppm": 50.0, "iq_gain_db": 1.0, "iq_phase_deg": 3.0,
           "dc_offset": [0.02, -0.01], "esno_db": 30.0, "underrun_interval_samples": 20000,
           "underrun_length_samples": 100, "seed": 11}
    profile = load_profile("zmq", {**endpoints(), "impairments": imp})
    rng = np.random.default_rng(0)
    x = ((rng.standard_normal(100_000) + 1j * rng.standard_normal(100_000)) / np.sqrt(2)
         ).astype(np.complex64)
    ref = Impairments(ImpairmentConfig.from_dict(imp, samp_rate_hz=profile.samp_rate_hz))
    expected = ref.process(x)
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    push.bind(profile.tx_endpoint)  # the modem TX's side
    pull = ctx.socket(zmq.PULL)
    pull.connect(profile.rx_endpoint)  # the modem RX's side
    result, stop = {}, threading.Event()
    runner = threading.Thread(
        target=lambda: result.update(run_flowgraph(profile, "rx", duration_s=30.0, stop=stop)))
    rx_tags = []
    try:
        runner.start()
        _push_all(push, x, tags=[Tag(1000, "packet_len", 5000), Tag(1000, "tx_sob", True)])
        y = _pull_all(pull, len(expected), tags=rx_tags)
    finally:
        stop.set()
        runner.join(timeout=20)
        push.close(0)
        pull.close(0)
    assert len(y) == len(expected)
    np.testing.assert_allclose(y, expected, atol=1e-4)  # the GR block is the numpy emulator
    assert result["flowgraph"] == "zmq_channel"
    assert result["impairments"]["underruns"] == ref.stats["underruns"] > 0
    assert not [t for t in rx_tags if t.key in ("packet_len", "tx_sob")]  # not through the air


def test_impairment_block_changes_the_rate_like_the_numpy_model():
    from gnuradio import blocks

    from flowgraphs.device.gr_blocks import impairments_cc

    cfg = {"sro_ppm": -300.0, "overrun_interval_samples": 3000, "overrun_length_samples": 7,
           "underrun_interval_samples": 5000, "underrun_length_samples": 11, "seed": 5}
    x = np.exp(2j * np.pi * 0.01 * np.arange(40_000)).astype(np.complex64)
    tb = gr.top_block()
    src = blocks.vector_source_c(x.tolist(), False)
    blk = impairments_cc(json.dumps(cfg), 1e6)
    snk = blocks.vector_sink_c()
    tb.connect(src, blk, snk)
    tb.run()
    y = np.array(snk.data(), np.complex64)
    expected = Impairments(cfg).process(x)
    assert abs(len(y) - len(expected)) <= 16
    n = min(len(y), len(expected))
    np.testing.assert_allclose(y[:n], expected[:n], atol=1e-5)


def test_sigmf_replay_flowgraph_streams_the_recording_then_ends(tmp_path):
    base = str(tmp_path / "cap")
    x = (0.5 * np.exp(2j * np.pi * 0.003 * np.arange(30_000))).astype(np.complex64)
    w = SigMFWriter(base, sample_rate_hz=2.16e6, center_freq_hz=2.45e9, datatype="ci16_le")
    w.write(x)
    w.close()
    profile = load_profile(f"sigmf:{base}", endpoints())
    pull = zmq.Context.instance().socket(zmq.PULL)
    pull.connect(profile.rx_endpoint)
    result = {}
    runner = threading.Thread(
        target=lambda: result.update(run_flowgraph(profile, "rx", duration_s=15.0)))
    try:
        runner.start()
        y = _pull_all(pull, len(x))
        runner.join(timeout=20)
    finally:
        pull.close(0)
    np.testing.assert_allclose(y, x, atol=1 / 32768 + 1e-7)
    assert result["finished"] is True  # the source ended the flowgraph by itself


def test_sigmf_file_radio_records_the_tx_stream(tmp_path):
    base = str(tmp_path / "tx")
    profile = load_profile("sigmf", {**endpoints(), "device.path": base})
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.bind(profile.tx_endpoint)
    x = (np.arange(20_000) % 97 / 97.0 + 0.25j).astype(np.complex64)
    result, stop = {}, threading.Event()
    runner = threading.Thread(
        target=lambda: result.update(run_flowgraph(profile, "tx", duration_s=30.0, stop=stop)))
    try:
        runner.start()
        _push_all(push, x, chunk=5000)
        deadline = time.monotonic() + 20
        data = base + ".sigmf-data"
        while time.monotonic() < deadline and (
                not os.path.exists(data) or os.path.getsize(data) < 8 * len(x)):
            time.sleep(0.05)
        stop.set()
        runner.join(timeout=20)
    finally:
        push.close(0)
    rec = read_recording(base)  # verifies the SHA-512 written on stop
    assert rec.sample_rate_hz == 2.16e6 and rec.center_freq_hz == 2.45e9
    np.testing.assert_array_equal(rec.samples(), x)


def test_corrupted_recording_does_not_start_a_replay(tmp_path):
    base = str(tmp_path / "bad")
    w = SigMFWriter(base, sample_rate_hz=1e6)
    w.write(np.ones(1000, np.complex64))
    w.close()
    os.truncate(base + ".sigmf-data", 8 * 1000 - 2)
    profile = load_profile(f"sigmf:{base}", endpoints())
    with pytest.raises(DeviceError) as ei:
        build_flowgraph(profile, "rx")
    assert "truncated" in str(ei.value) and "\n" not in str(ei.value)


def test_record_received_iq_and_calibrate_the_cfo(tmp_path):
    from hardware.calibration import estimate_tone_offset
    from hardware.device import record_iq

    cfo = 21_500.0
    profile = load_profile("zmq", {**endpoints(), "impairments": {"cfo_hz": cfo}})
    push = zmq.Context.instance().socket(zmq.PUSH)
    push.bind(profile.tx_endpoint)
    tone = (0.25 * np.exp(2j * np.pi * 100e3 / profile.samp_rate_hz * np.arange(400_000))
            ).astype(np.complex64)
    feeder = threading.Thread(target=lambda: _push_all(push, tone, chunk=10_000))
    feeder.start()
    try:
        summary = record_iq(profile, str(tmp_path / "cal"), duration_s=0.1)
    finally:
        feeder.join(timeout=10)
        push.close(0)
    assert summary["samples"] == round(0.1 * profile.samp_rate_hz)
    assert summary["rms_dbfs"] == pytest.approx(20 * np.log10(0.25), abs=0.05)
    rec = read_recording(str(tmp_path / "cal"))
    assert rec.captures[0]["core:frequency"] == profile.center_freq_hz
    assert rec.global_info["gsc:profile"] == "zmq"
    est = estimate_tone_offset(rec.samples(), rec.sample_rate_hz, 100e3)
    assert est["offset_hz"] == pytest.approx(cfo, abs=1.0)
