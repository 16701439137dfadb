"""Write the device flowgraphs (``*.grc``) and compile them with ``grcc`` (``*_gen.py``).

The ``.grc`` files are generated from the specs below so that all of them follow one
contract (ZeroMQ endpoints, parameter names = :meth:`hardware.profiles.RadioProfile.flowgraph`
keyword arguments). They are ordinary GRC files: open them in GNU Radio Companion with
the gsc blocks installed (``make setup``), or ``GRC_BLOCKS_PATH=flowgraphs/grc``.

Usage (radio interpreter, repository root)::

    python3 -m flowgraphs.device.build            # write .grc, run grcc, write *_gen.py
    python3 -m flowgraphs.device.build --check    # fail if a file is out of date
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import yaml

__all__ = ["FLOWGRAPHS", "HERE", "BLOCKS_DIR", "grc_documents", "write_grc", "compile_grc",
           "main"]

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCKS_DIR = os.path.join(os.path.dirname(HERE), "grc")  # the one tree of block YAML
_ROW = 120  # canvas spacing


def _param(name: str, label: str, typ: str, value: Any, x: int) -> dict[str, Any]:
    return {"name": name, "id": "parameter",
            "parameters": {"alias": "", "comment": "", "hide": "none", "label": label,
                           "short_id": "", "type": typ, "value": str(value)},
            "states": {"coordinate": [x, 8], "rotation": 0, "state": "enabled"}}


def _block(name: str, block_id: str, x: int, y: int, **params: Any) -> dict[str, Any]:
    return {"name": name, "id": block_id,
            "parameters": {k: str(v) for k, v in params.items()},
            "states": {"coordinate": [x, y], "rotation": 0, "state": "enabled"}}


_UHD_COMMON = dict(type="fc32", dev_addr="dev_args", dev_args="''", sync="none",
                   num_mboards="1", clock_source0="clock_source", time_source0="time_source",
                   nchan="1", samp_rate="samp_rate", center_freq0="center_freq", gain0="gain",
                   gain_type0="default", ant0="antenna", bw0="bandwidth")

_UHD_PARAMS = [
    ("dev_args", "UHD device args", "str", '"type=b200"'),
    ("clock_source", "Clock source", "str", '"internal"'),
    ("time_source", "Time source", "str", '"internal"'),
    ("samp_rate", "Sample rate (S/s)", "eng_float", "2.16e6"),
    ("center_freq", "Centre frequency (Hz)", "eng_float", "2.45e9"),
]
_PLUTO_PARAMS = [
    ("uri", "IIO context URI", "str", '"ip:192.168.2.1"'),
    ("samp_rate", "Sample rate (S/s)", "intx", "2160000"),
    ("center_freq", "Centre frequency (Hz)", "intx", "2450000000"),
    ("buffer_size", "Buffer size (samples)", "intx", "32768"),
]


# Every ZeroMQ stream block passes tags: the modem flowgraphs (flowgraphs/gsc_tx.grc,
# gsc_rx.grc) send and expect gr-zeromq tag headers, so both ends must agree.
def _tx_source(x: int, y: int, address: str = "zmq_endpoint") -> dict[str, Any]:
    return _block("zmq_source", "zeromq_pull_source", x, y, type="complex", vlen="1",
                  address=address, timeout="100", pass_tags="True", hwm="-1")


def _rx_sink(x: int, y: int, address: str = "zmq_endpoint") -> dict[str, Any]:
    return _block("zmq_sink", "zeromq_push_sink", x, y, type="complex", vlen="1",
                  address=address, timeout="100", pass_tags="True", hwm="-1")


def _scale(x: int, y: int) -> dict[str, Any]:
    return _block("tx_backoff", "blocks_multiply_const_vxx", x, y, type="complex",
                  const="tx_scale", vlen="1")


#: flowgraph id -> (title, description, parameters, blocks, connections)
FLOWGRAPHS: dict[str, dict[str, Any]] = {
    "uhd_tx": {
        "title": "gsc device TX: ZeroMQ IQ -> USRP",
        "description": "Modem TX IQ (PULL from zmq_endpoint) scaled by tx_scale (amplitude "
                       "back-off) into a USRP sink, streaming continuously.",
        "params": _UHD_PARAMS + [
            ("gain", "TX gain (dB)", "eng_float", "50"),
            ("antenna", "TX antenna", "str", '"TX/RX"'),
            ("bandwidth", "TX analog bandwidth (Hz, 0 = default)", "eng_float", "0"),
            ("tx_scale", "Amplitude scale (back-off)", "eng_float", "0.25"),
            ("zmq_endpoint", "Modem TX IQ endpoint", "str", '"tcp://127.0.0.1:5710"'),
        ],
        "blocks": [_tx_source(8, 200), _scale(260, 200),
                   _block("usrp_sink", "uhd_usrp_sink", 480, 180, len_tag_name="''",
                          **_UHD_COMMON)],
        "connections": [["zmq_source", "0", "tx_backoff", "0"],
                        ["tx_backoff", "0", "usrp_sink", "0"]],
    },
    "uhd_tx_burst": {
        "title": "gsc device TX (bursts): tagged ZeroMQ IQ -> USRP burst mode",
        "description": "Modem TX IQ with length tags (PULL from zmq_endpoint, tags passed) "
                       "into a USRP sink in burst mode (len_tag_key, e.g. packet_len): the "
                       "radio idles between bursts.",
        "params": _UHD_PARAMS + [
            ("gain", "TX gain (dB)", "eng_float", "50"),
            ("antenna", "TX antenna", "str", '"TX/RX"'),
            ("bandwidth", "TX analog bandwidth (Hz, 0 = default)", "eng_float", "0"),
            ("tx_scale", "Amplitude scale (back-off)", "eng_float", "0.25"),
            ("len_tag_key", "Burst length tag", "str", '"packet_len"'),
            ("zmq_endpoint", "Modem TX IQ endpoint", "str", '"tcp://127.0.0.1:5710"'),
        ],
        "blocks": [_tx_source(8, 200), _scale(260, 200),
                   _block("usrp_sink", "uhd_usrp_sink", 480, 180, len_tag_name="len_tag_key",
                          **_UHD_COMMON)],
        "connections": [["zmq_source", "0", "tx_backoff", "0"],
                        ["tx_backoff", "0", "usrp_sink", "0"]],
    },
    "uhd_rx": {
        "title": "gsc device RX: USRP -> ZeroMQ IQ",
        "description": "USRP source into a PUSH sink bound at zmq_endpoint for the modem RX.",
        "params": _UHD_PARAMS + [
            ("gain", "RX gain (dB)", "eng_float", "30"),
            ("antenna", "RX antenna", "str", '"RX2"'),
            ("bandwidth", "RX analog bandwidth (Hz, 0 = default)", "eng_float", "0"),
            ("zmq_endpoint", "RX IQ endpoint", "str", '"tcp://127.0.0.1:5711"'),
        ],
        "blocks": [_block("usrp_source", "uhd_usrp_source", 8, 180, rx_agc0="Default",
                          **_UHD_COMMON),
                   _rx_sink(420, 200)],
        "connections": [["usrp_source", "0", "zmq_sink", "0"]],
    },
    "pluto_tx": {
        "title": "gsc device TX: ZeroMQ IQ -> PlutoSDR",
        "description": "Modem TX IQ (PULL from zmq_endpoint) scaled by tx_scale into the "
                       "PlutoSDR sink (iio.fmcomms2_sink_fc32).",
        "params": _PLUTO_PARAMS + [
            ("bandwidth", "TX RF bandwidth (Hz)", "intx", "2160000"),
            ("attenuation", "TX attenuation (dB)", "eng_float", "20"),
            ("tx_scale", "Amplitude scale (back-off)", "eng_float", "0.25"),
            ("zmq_endpoint", "Modem TX IQ endpoint", "str", '"tcp://127.0.0.1:5710"'),
        ],
        "blocks": [_tx_source(8, 200), _scale(260, 200),
                   _block("pluto_sink", "iio_pluto_sink", 480, 160, type="fc32", uri="uri",
                          frequency="center_freq", samplerate="samp_rate",
                          bandwidth="bandwidth", buffer_size="buffer_size", cyclic="False",
                          attenuation1="attenuation", filter_source="'Auto'", filter="",
                          fpass="0", fstop="0", len_tag_key="''")],
        "connections": [["zmq_source", "0", "tx_backoff", "0"],
                        ["tx_backoff", "0", "pluto_sink", "0"]],
    },
    "pluto_rx": {
        "title": "gsc device RX: PlutoSDR -> ZeroMQ IQ",
        "description": "PlutoSDR source (iio.fmcomms2_source_fc32) into a PUSH sink bound at "
                       "zmq_endpoint. Gain mode and tracking loops are applied by "
                       "hardware.device after construction (GRC enums cannot be variables); "
                       "gr-iio 3.10.5 sets the RX RF bandwidth from the sample rate ('Auto' "
                       "filter: the source has no bandwidth setter).",
        "params": _PLUTO_PARAMS + [
            ("gain", "RX manual gain (dB)", "eng_float", "30"),
            ("zmq_endpoint", "RX IQ endpoint", "str", '"tcp://127.0.0.1:5711"'),
        ],
        "blocks": [_block("pluto_source", "iio_pluto_source", 8, 160, type="fc32", uri="uri",
                          frequency="center_freq", samplerate="samp_rate",
                          buffer_size="buffer_size", quadrature="True", rfdc="True",
                          bbdc="True", gain1="'manual'", manual_gain1="gain",
                          filter_source="'Auto'", filter="", fpass="0", fstop="0",
                          bandwidth="20000000", len_tag_key="''"),
                   _rx_sink(420, 200)],
        "connections": [["pluto_source", "0", "zmq_sink", "0"]],
    },
    "zmq_channel": {
        "title": "gsc ZeroMQ virtual radio: TX IQ -> impairments -> RX IQ",
        "description": "The air between two gsc processes: PULL the modem TX IQ from "
                       "tx_endpoint, apply the profile's RF impairments, PUSH to rx_endpoint "
                       "(TX tags do not cross the air).",
        "params": [
            ("tx_endpoint", "Modem TX IQ endpoint", "str", '"tcp://127.0.0.1:5710"'),
            ("rx_endpoint", "RX IQ endpoint", "str", '"tcp://127.0.0.1:5711"'),
            ("samp_rate", "Sample rate (S/s)", "eng_float", "2.16e6"),
            ("impairments", "Impairments (JSON)", "str", "'{}'"),
        ],
        "blocks": [_tx_source(8, 200, address="tx_endpoint"),
                   _block("channel", "gsc_impairments", 260, 200, config_json="impairments",
                          samp_rate="samp_rate"),
                   _rx_sink(480, 200, address="rx_endpoint")],
        "connections": [["zmq_source", "0", "channel", "0"],
                        ["channel", "0", "zmq_sink", "0"]],
    },
    "sigmf_rx": {
        "title": "gsc SigMF file radio RX: recording -> ZeroMQ IQ",
        "description": "Replays a SigMF recording into a PUSH sink bound at zmq_endpoint "
                       "(back-pressure paces it), then ends.",
        "params": [
            ("path", "Recording", "str", '"recordings/gsc-capture"'),
            ("repeat", "Repeat", "", "False"),
            ("zmq_endpoint", "RX IQ endpoint", "str", '"tcp://127.0.0.1:5711"'),
        ],
        "blocks": [_block("sigmf_source", "gsc_sigmf_source", 8, 200, path="path",
                          repeat="repeat", verify_hash="True"),
                   _rx_sink(300, 200)],
        "connections": [["sigmf_source", "0", "zmq_sink", "0"]],
    },
    "sigmf_tx": {
        "title": "gsc SigMF file radio TX: ZeroMQ IQ -> recording",
        "description": "Records the modem TX IQ (PULL from zmq_endpoint) into a SigMF "
                       "recording; the metadata is written when the flowgraph stops.",
        "params": [
            ("path", "Recording", "str", '"recordings/gsc-tx"'),
            ("samp_rate", "Sample rate (S/s)", "eng_float", "2.16e6"),
            ("center_freq", "Centre frequency (Hz)", "eng_float", "2.45e9"),
            ("zmq_endpoint", "Modem TX IQ endpoint", "str", '"tcp://127.0.0.1:5710"'),
        ],
        "blocks": [_tx_source(8, 200),
                   _block("sigmf_sink", "gsc_sigmf_sink", 300, 200, path="path",
                          samp_rate="samp_rate", center_freq="center_freq",
                          hw="'gsc modem TX (SigMF file radio)'", overwrite="False")],
        "connections": [["zmq_source", "0", "sigmf_sink", "0"]],
    },
}


def grc_documents() -> dict[str, dict[str, Any]]:
    """The ``.grc`` YAML documents, by flowgraph id."""
    docs = {}
    for fg_id, spec in FLOWGRAPHS.items():
        blocks = [_param(n, label, typ, value, 200 + _ROW * i)
                  for i, (n, label, typ, value) in enumerate(spec["params"])]
        blocks += spec["blocks"]
        docs[fg_id] = {
            "options": {
                "parameters": {
                    "author": "gsc", "catch_exceptions": "True", "category": "[gsc]",
                    "description": spec["description"], "generate_options": "no_gui",
                    "id": fg_id, "output_language": "python", "run": "True",
                    "run_options": "run", "title": spec["title"],
                },
                "states": {"coordinate": [8, 8], "rotation": 0, "state": "enabled"},
            },
            "blocks": blocks,
            "connections": spec["connections"],
            "metadata": {"file_format": 1, "grc_version": "3.10.5.1"},
        }
    return docs


def _dump(doc: dict[str, Any]) -> str:
    header = ("# Generated by flowgraphs/device/build.py (python3 -m flowgraphs.device.build);\n"
              "# edit the spec there, or edit in GRC and port the change back.\n")
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)


def write_grc(out_dir: str = HERE) -> list[str]:
    """Write every ``.grc`` into ``out_dir``; returns the paths."""
    paths = []
    for fg_id, doc in grc_documents().items():
        path = os.path.join(out_dir, f"{fg_id}.grc")
        with open(path, "w") as fh:
            fh.write(_dump(doc))
        paths.append(path)
    return paths


def compile_grc(grc_paths: list[str], out_dir: str, timeout_s: float = 240.0) -> None:
    """Run ``grcc`` once on all files (one platform load), output into ``out_dir``.

    :raises RuntimeError: grcc missing, failing, or a flowgraph not generated.
    """
    grcc = shutil.which("grcc")
    if grcc is None:
        raise RuntimeError("grcc not found: install gnuradio (apt-get install gnuradio)")
    env = dict(os.environ)
    env["GRC_BLOCKS_PATH"] = os.pathsep.join(
        p for p in (BLOCKS_DIR, env.get("GRC_BLOCKS_PATH", "")) if p)
    res = subprocess.run([grcc, "-o", out_dir, *grc_paths], capture_output=True, text=True,
                         timeout=timeout_s, env=env)
    missing = [p for p in grc_paths
               if not os.path.isfile(os.path.join(out_dir, os.path.basename(p)[:-4] + ".py"))]
    if res.returncode != 0 or missing:
        tail = (res.stderr or res.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"grcc failed (exit {res.returncode}) for "
                           f"{', '.join(os.path.basename(m) for m in missing) or 'some file'}: "
                           + " | ".join(tail))


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate, or ``--check`` that the committed files are current."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed files instead of writing")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_grc(tmp)
        compile_grc(paths, tmp)
        stale = []
        for p in paths:
            fg_id = os.path.basename(p)[:-4]
            for name, dest in ((f"{fg_id}.grc", f"{fg_id}.grc"),
                               (f"{fg_id}.py", f"{fg_id}_gen.py")):
                new = os.path.join(tmp, name)
                old = os.path.join(HERE, dest)
                with open(new) as fh:
                    text = fh.read()
                if args.check:
                    if not os.path.isfile(old) or open(old).read() != text:
                        stale.append(dest)
                else:
                    with open(old, "w") as fh:
                        fh.write(text)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python3 -m flowgraphs.device.build)",
              file=sys.stderr)
        return 1
    print("device flowgraphs " + ("are up to date" if args.check else "written"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
