"""Radio profiles (hardware/profiles.py, hardware/profiles/*.yaml): loading and validation.

Standard library + PyYAML + numpy: runs under both interpreters.
"""

import os

import numpy as np
import pytest
import yaml

from hardware.profiles import (
    KINDS,
    PROFILES_DIR,
    ProfileError,
    list_profiles,
    load_profile,
    parse_profile,
)
from hardware.sigmf_lite import SigMFWriter

pytestmark = pytest.mark.both


def test_every_shipped_profile_loads_and_names_a_device_flowgraph():
    names = list_profiles()
    assert {"b210", "n210", "x310", "pluto", "zmq", "zmq_impaired", "sigmf"} <= set(names)
    kinds = set()
    for name in names:
        p = load_profile(name)
        kinds.add(p.kind)
        assert p.name == name
        for d in ("tx", "rx"):
            spec = p.flowgraph(d)
            assert os.path.isfile(spec.grc_path), spec.grc_path
        assert p.summary()[0].startswith(f"profile {name}")
    assert kinds == set(KINDS)


def test_profiles_are_documented_with_comments():
    for name in list_profiles():
        with open(os.path.join(PROFILES_DIR, f"{name}.yaml")) as fh:
            text = fh.read()
        assert text.lstrip().startswith("#"), name


def test_flowgraph_arguments_follow_the_profile():
    b210 = load_profile("b210")
    rx = b210.flowgraph("rx")
    assert rx.name == "uhd_rx" and rx.module == "flowgraphs.device.uhd_rx_gen"
    assert rx.kwargs["dev_args"] == "type=b200" and rx.kwargs["gain"] == 30.0
    assert rx.kwargs["zmq_endpoint"] == b210.rx_endpoint
    tx = b210.flowgraph("tx")
    assert tx.kwargs["tx_scale"] == pytest.approx(10 ** (-12 / 20))
    assert tx.kwargs["zmq_endpoint"] == b210.tx_endpoint
    burst = b210.with_overrides({"tx.burst_tag": "packet_len"}).flowgraph("tx")
    assert burst.name == "uhd_tx_burst" and burst.kwargs["len_tag_key"] == "packet_len"
    pluto = load_profile("pluto")
    assert pluto.flowgraph("rx").post["gain_mode"] == "manual"
    assert isinstance(pluto.flowgraph("tx").kwargs["samp_rate"], int)
    assert pluto.burst_padding == (256, 32768)
    imp = load_profile("zmq_impaired")
    assert imp.flowgraph("rx").name == "zmq_channel"
    assert imp.impairments.cfo_hz == pytest.approx(2.7 * 2.16e6 / 72)
    assert imp.impairments.sro_ppm == 50 and imp.impairments.esno_db == 15
    with pytest.raises(ProfileError):
        b210.flowgraph("sideways")


def test_to_dict_round_trip_and_overrides():
    for name in ("b210", "x310", "pluto", "zmq_harsh"):
        p = load_profile(name)
        q = parse_profile(yaml.safe_load(yaml.safe_dump(p.to_dict())), p.source)
        assert q == p
    p = load_profile("pluto", {"center_freq_hz": 915e6, "rx.gain_db": 60})
    assert p.center_freq_hz == 915e6 and p.rx["gain_db"] == 60
    with pytest.raises(ProfileError, match="rx.gain_db = 72"):
        load_profile("pluto", {"center_freq_hz": 2.45e9, "rx.gain_db": 72})  # 71 dB max > 1.3 GHz
    assert load_profile("pluto", {"center_freq_hz": 900e6, "rx.gain_db": 72}).rx["gain_db"] == 72


def write_profile(tmp_path, data, name="p.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def base(kind="b210"):
    with open(os.path.join(PROFILES_DIR, f"{kind}.yaml")) as fh:
        return yaml.safe_load(fh)


def edit(data, key, value):
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node[p]
    if value is KeyError:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return data


BAD = [
    ("b210", "samp_rate_hz", 100e6, "samp_rate_hz = 100 MS/s is out of range for the USRP B210"),
    ("b210", "samp_rate_hz", KeyError, "missing samp_rate_hz"),
    ("b210", "center_freq_hz", 60e6, "center_freq_hz = 60 MHz is out of range"),
    ("b210", "center_freq_hz", "2.4 GHz", "center_freq_hz must be a number"),
    ("b210", "rx.gain_db", 80, "rx.gain_db = 80 dB is out of range for the USRP B210"),
    ("b210", "tx.gain_db", KeyError, "missing tx.gain_db"),
    ("b210", "tx.gain_db", True, "tx.gain_db must be a number"),
    ("b210", "rx.antenna", "RX1", "rx.antenna = 'RX1' is not one of"),
    ("b210", "rx.bandwidth_hz", 100e6, "rx.bandwidth_hz = 100 MHz is out of range"),
    ("b210", "rx.agc", "yes", "rx.agc must be true or false"),
    ("b210", "device.model", "b100", "device.model = 'b100' is not one of"),
    ("b210", "device.args", KeyError, "missing device.args"),
    ("b210", "device.clock_source", "atomic", "device.clock_source"),
    ("b210", "device.daughterboard", "sbx", "only for the N210 and X310"),
    ("b210", "kind", "hackrf", "kind = 'hackrf' is not one of"),
    ("b210", "rx.gian_db", 3, "unknown key rx.gian_db"),
    ("b210", "tx.amplitude_backoff_db", -3, "tx.amplitude_backoff_db = -3 dB is out of range"),
    ("b210", "tx.burst_tag", "packet len", "tx.burst_tag"),
    ("b210", "zmq.rx_endpoint", "localhost:5000", "is not a ZeroMQ endpoint"),
    ("b210", "zmq.rx_endpoint", "tcp://127.0.0.1:5710", "must differ"),
    # gr-zeromq IQ blocks bind without CurveZMQ: only this host's addresses
    ("b210", "zmq.rx_endpoint", "tcp://0.0.0.0:5711", "is not loopback: the gr-zeromq IQ"),
    ("zmq", "zmq.tx_endpoint", "tcp://*:5710", "cannot use CurveZMQ"),
    ("zmq", "zmq.tx_endpoint", "tcp://192.168.1.5:5710", "is not loopback"),
    ("zmq", "zmq.rx_endpoint", "tcp://sdr-host:5711", "is not loopback"),
    ("zmq", "zmq.rx_endpoint", "tcp://[::1]:5711", "gr-zeromq 3.10 cannot use IPv6"),
    ("b210", "impairments", {"cfo_hz": 1}, "impairments apply to the zmq virtual radio only"),
    ("n210", "samp_rate_hz", 2.16e6, "not the USRP N210's master clock 100 MHz divided by an"),
    ("n210", "samp_rate_hz", 50e6, "out of range for the USRP N210"),
    ("n210", "device.daughterboard", KeyError, "missing device.daughterboard"),
    ("n210", "center_freq_hz", 5.8e9, "out of range for the USRP N210 with a SBX"),
    ("n210", "tx.gain_db", 40, "tx.gain_db = 40 dB is out of range for the USRP N210 with a SBX"),
    ("x310", "device.master_clock_rate_hz", 100e6, "is not one of the USRP X310's"),
    ("pluto", "samp_rate_hz", 65e3, "out of range for the PlutoSDR (65.1 kS/s to 61.44 MS/s)"),
    ("pluto", "samp_rate_hz", 61.45e6, "out of range for the PlutoSDR"),
    ("pluto", "center_freq_hz", 6.1e9, "out of range for the PlutoSDR (70 MHz to 6 GHz)"),
    ("pluto", "center_freq_hz", 69e6, "out of range for the PlutoSDR (70 MHz to 6 GHz)"),
    ("pluto", "tx.attenuation_db", 90, "tx.attenuation_db = 90 dB is out of range"),
    ("pluto", "tx.bandwidth_hz", 100e3, "tx.bandwidth_hz = 100 kHz is out of range"),
    ("pluto", "rx.gain_mode", "auto", "rx.gain_mode = 'auto' is not one of"),
    ("pluto", "rx.gain_db", KeyError, "missing rx.gain_db"),
    ("pluto", "device.uri", "192.168.2.1", "is not a libiio URI"),
    ("pluto", "device.buffer_size", 100, "device.buffer_size = 100 is out of range"),
    ("pluto", "tx.burst_pad_back_samples", 1024, "must be >= device.buffer_size"),
    ("zmq_impaired", "impairments.sro_ppm", 5000, "impairments: sro_ppm = 5000"),
    ("zmq_impaired", "impairments.cfo_typo", 1, "unknown impairment 'cfo_typo'"),
]


@pytest.mark.parametrize("endpoint", ["tcp://localhost:5799", "tcp://127.0.0.2:5799",
                                      "ipc:///tmp/gsc-iq-rx"])
def test_iq_endpoints_on_this_host_are_accepted(tmp_path, endpoint):
    path = write_profile(tmp_path, edit(base("zmq"), "zmq.rx_endpoint", endpoint))
    assert load_profile(path).rx_endpoint == endpoint


@pytest.mark.parametrize("kind,key,value,needle", BAD)
def test_bad_profiles_give_one_clear_line(tmp_path, kind, key, value, needle):
    path = write_profile(tmp_path, edit(base(kind), key, value))
    with pytest.raises(ProfileError) as ei:
        load_profile(path)
    msg = str(ei.value)
    assert needle in msg, msg
    assert "\n" not in msg and msg.startswith(("profile ", "no radio"))


def test_pluto_rate_bounds_are_inclusive(tmp_path):
    for fs in (65105.0, 61.44e6):
        p = load_profile(write_profile(tmp_path, edit(base("pluto"), "samp_rate_hz", fs)))
        assert p.samp_rate_hz == fs


def test_broken_files(tmp_path):
    cases = {
        "empty.yaml": ("", "is empty"),
        "list.yaml": ("- 1\n- 2\n", "must hold a YAML mapping"),
        "bad.yaml": ("name: x\nkind: [uhd\n", r"is not valid YAML \(line"),
        "bin.yaml": (b"\xff\xfe\x00kind", "not UTF-8"),
    }
    for fname, (content, needle) in cases.items():
        path = tmp_path / fname
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        with pytest.raises(ProfileError, match=needle):
            load_profile(str(path))
    with pytest.raises(ProfileError, match="no radio profile 'nope'"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="no radio profile file"):
        load_profile(str(tmp_path / "missing.yaml"))


def test_sigmf_profile_takes_rate_and_frequency_from_the_recording(tmp_path):
    base_path = str(tmp_path / "cap")
    w = SigMFWriter(base_path, sample_rate_hz=1.0e6, center_freq_hz=915e6)
    w.write(np.zeros(100, np.complex64))
    w.close()
    p = load_profile(f"sigmf:{base_path}")
    assert (p.kind, p.samp_rate_hz, p.center_freq_hz) == ("sigmf", 1.0e6, 915e6)
    assert p.flowgraph("rx").kwargs["path"] == base_path
    with pytest.raises(ProfileError, match="no recording at"):
        load_profile(f"sigmf:{tmp_path / 'nothing'}")
    with pytest.raises(ProfileError, match="needs a recording path"):
        load_profile("sigmf:")
    (tmp_path / "bad.sigmf-meta").write_text('{"global": {"core:datatype": "cf32_le"')
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profile(f"sigmf:{tmp_path / 'bad'}")
    prof = edit(base("sigmf"), "device.path", base_path)
    with pytest.raises(ProfileError, match="disagrees with the recording"):
        load_profile(write_profile(tmp_path, prof))
