"""Radio profiles: one YAML file fixes a radio, its RF settings and how gsc streams to it.

Four kinds of radio, all behind the same two ZeroMQ IQ endpoints so the modem flowgraphs
never know which one they talk to:

=========  ==========================================================  =====================
kind       radio                                                       device flowgraphs
=========  ==========================================================  =====================
``uhd``    Ettus USRP B200/B200mini/B210, N210, X310 via gr-uhd        ``uhd_tx``, ``uhd_rx``
``pluto``  ADALM-PlutoSDR via gr-iio (``iio.fmcomms2_source/sink``)    ``pluto_tx``,
                                                                       ``pluto_rx``
``zmq``    virtual radio: TX and RX processes exchange IQ over ZeroMQ  ``zmq_channel``
           through the impairment emulator (:mod:`hardware.impairments`)
``sigmf``  a SigMF recording: RX replays it, TX records into it        ``sigmf_rx``,
                                                                       ``sigmf_tx``
=========  ==========================================================  =====================

The wiring (every kind): the modem's TX flowgraph **binds** ``zmq.tx_endpoint`` with a
gr-zeromq PUSH sink of complex64 samples and the device TX flowgraph connects to it with a
PULL source; the device RX flowgraph binds ``zmq.rx_endpoint`` with a PUSH sink and the
modem's RX flowgraph connects with a PULL source. The TX stream is unit-RMS complex
baseband (gsc's unit-energy REs); the device TX flowgraph scales it by
``10^(-tx.amplitude_backoff_db/20)`` so OFDM peaks stay below the DAC's full scale (1.0),
and the modem pads each burst with ``tx.burst_pad_front_samples`` /
``tx.burst_pad_back_samples`` zeros (ramp-up of the TX chain; Pluto sends only whole
``device.buffer_size`` buffers, so its back padding must fill one).

Profiles are validated on load: unknown keys, missing values, wrong types and values out of
the device's range each raise :class:`ProfileError` with one line, e.g.
``profile b210: rx.gain_db = 90 is out of range for the USRP B210 (0 to 76 dB)``.

Standard library + PyYAML only, so both interpreters import it.

>>> p = load_profile("b210")
>>> p.kind, p.samp_rate_hz, p.flowgraph("rx").name
('uhd', 2160000.0, 'uhd_rx')
"""

from __future__ import annotations

import copy
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from bridge.common import repo_path

from .impairments import ImpairmentConfig, ImpairmentError

__all__ = [
    "ProfileError",
    "RadioProfile",
    "FlowgraphSpec",
    "UhdModel",
    "UHD_MODELS",
    "UHD_DAUGHTERBOARDS",
    "PLUTO_LIMITS",
    "PROFILES_DIR",
    "KINDS",
    "DIRECTIONS",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "profile_path",
]

PROFILES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")
KINDS = ("uhd", "pluto", "zmq", "sigmf")
DIRECTIONS = ("tx", "rx")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENDPOINT_RE = re.compile(r"^(tcp://[^\s:]+:\d{1,5}|ipc://\S+|inproc://\S+)$")


class ProfileError(ValueError):
    """A radio profile is missing, malformed, incomplete or out of range (one line)."""


@dataclass(frozen=True)
class UhdModel:
    """Ranges of one USRP model (UHD manual and datasheets; daughterboards may narrow them).

    :param label: Human name.
    :param freq_hz: LO range (``None``: set by the daughterboard).
    :param rate_hz: Sample rate range over the host link.
    :param rx_gain_db: RX gain range (``None``: daughterboard).
    :param tx_gain_db: TX gain range (``None``: daughterboard).
    :param bandwidth_hz: Analog filter bandwidth range (0 = driver default is always allowed).
    :param master_clock_hz: Fixed master clock: rates must divide it by an integer (``None``:
        flexible, as on the AD9361-based B2xx).
    :param rx_antennas: Valid RX antenna names.
    :param tx_antennas: Valid TX antenna names.
    :param daughterboards: Whether ``device.daughterboard`` is required.
    :param args_hint: Typical device args.
    """

    label: str
    freq_hz: tuple[float, float] | None
    rate_hz: tuple[float, float]
    rx_gain_db: tuple[float, float] | None
    tx_gain_db: tuple[float, float] | None
    bandwidth_hz: tuple[float, float]
    master_clock_hz: tuple[float, ...] | None
    rx_antennas: tuple[str, ...] = ("TX/RX", "RX2")
    tx_antennas: tuple[str, ...] = ("TX/RX",)
    daughterboards: bool = False
    args_hint: str = ""


_B2XX = dict(freq_hz=(70e6, 6e9), rate_hz=(62.5e3, 61.44e6), rx_gain_db=(0.0, 76.0),
             tx_gain_db=(0.0, 89.8), bandwidth_hz=(200e3, 56e6), master_clock_hz=None)

#: USRP models gsc knows. N210 and X310 ranges come from the daughterboard.
UHD_MODELS: dict[str, UhdModel] = {
    "b200": UhdModel("USRP B200", args_hint="type=b200", **_B2XX),
    "b200mini": UhdModel("USRP B200mini", args_hint="type=b200", **_B2XX),
    "b210": UhdModel("USRP B210", args_hint="type=b200", **_B2XX),
    "n210": UhdModel("USRP N210", freq_hz=None, rate_hz=(100e6 / 512, 25e6), rx_gain_db=None,
                     tx_gain_db=None, bandwidth_hz=(0.0, 40e6), master_clock_hz=(100e6,),
                     daughterboards=True, args_hint="addr=192.168.10.2"),
    "x310": UhdModel("USRP X310", freq_hz=None, rate_hz=(200e6 / 1024, 200e6),
                     rx_gain_db=None, tx_gain_db=None, bandwidth_hz=(0.0, 160e6),
                     master_clock_hz=(200e6, 184.32e6), daughterboards=True,
                     args_hint="addr=192.168.40.2"),
}

#: Daughterboards of the N210/X310: LO range and RX/TX gain ranges (Ettus datasheets).
UHD_DAUGHTERBOARDS: dict[str, dict[str, tuple[float, float]]] = {
    "wbx": {"freq_hz": (50e6, 2.2e9), "rx_gain_db": (0.0, 31.5), "tx_gain_db": (0.0, 25.0)},
    "sbx": {"freq_hz": (400e6, 4.4e9), "rx_gain_db": (0.0, 31.5), "tx_gain_db": (0.0, 31.5)},
    "cbx": {"freq_hz": (1.2e9, 6e9), "rx_gain_db": (0.0, 31.5), "tx_gain_db": (0.0, 31.5)},
    "ubx": {"freq_hz": (10e6, 6e9), "rx_gain_db": (0.0, 31.5), "tx_gain_db": (0.0, 31.5)},
}

#: ADALM-PlutoSDR (AD9363 with the common 70 MHz-6 GHz firmware setting) through gr-iio
#: 3.10.5: the asserts of ``iio_pluto_source/sink.block.yml`` plus the AD9361 gain tables.
PLUTO_LIMITS: dict[str, Any] = {
    "freq_hz": (70e6, 6e9),
    "rate_hz": (65105.0, 61.44e6),  # 65.1 kS/s needs the FIR (filter 'Auto'); gr-iio assert
    "tx_bandwidth_hz": (200e3, 40e6),
    "tx_attenuation_db": (0.0, 89.75),
    # manual RX gain by LO band (AD9361 full gain table): up to 1.3 GHz, 4 GHz, 6 GHz
    "rx_gain_db": ((1.3e9, (-1.0, 73.0)), (4.0e9, (-3.0, 71.0)), (6.0e9, (-10.0, 62.0))),
    "gain_modes": ("manual", "slow_attack", "fast_attack", "hybrid"),
    "buffer_size": (1024, 1 << 24),
}

_CLOCK_SOURCES = ("internal", "external", "gpsdo", "mimo")


# ------------------------------------------------------------------------ helpers


class _Reader:
    """Pops typed values from a profile mapping, with the profile name in every error."""

    def __init__(self, profile: str, data: Mapping[str, Any], prefix: str = ""):
        self.profile = profile
        self.data = dict(data)
        self.prefix = prefix
        self.used: set[str] = set()

    def err(self, key: str, msg: str) -> ProfileError:
        return ProfileError(f"profile {self.profile}: {self.prefix}{key} {msg}")

    def _get(self, key: str, required: bool, default: Any) -> tuple[bool, Any]:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise ProfileError(f"profile {self.profile}: missing {self.prefix}{key}")
            return False, default
        return True, self.data[key]

    def number(self, key: str, default: float | None = None, required: bool = False,
               rng: tuple[float, float] | None = None, unit: str = "", what: str = "") -> float:
        present, v = self._get(key, required, default)
        if not present:
            return v
        if isinstance(v, str):
            try:
                v = float(v.replace("_", ""))
            except ValueError:
                raise self.err(key, f"must be a number, got {self.data[key]!r}") from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.err(key, f"must be a number, got {_short(v)}")
        v = float(v) if abs(v) < 1e308 else math.inf  # float(huge int) would overflow
        if not math.isfinite(v):
            raise self.err(key, f"must be finite, got {_short(v)}")
        if rng is not None and not rng[0] <= v <= rng[1]:
            where = f" for the {what}" if what else ""
            raise self.err(key, f"= {_fmt(v, unit)} is out of range{where} "
                                f"({_fmt(rng[0], unit)} to {_fmt(rng[1], unit)})")
        return v

    def integer(self, key: str, default: int | None = None, required: bool = False,
                rng: tuple[int, int] | None = None) -> int:
        present, v = self._get(key, required, default)
        if not present:
            return v
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.err(key, f"must be an integer, got {_short(v)}")
        if rng is not None and not rng[0] <= v <= rng[1]:
            raise self.err(key, f"= {_short(v)} is out of range ({rng[0]} to {rng[1]})")
        return v

    def string(self, key: str, default: str | None = None, required: bool = False,
               choices: tuple[str, ...] | None = None) -> str:
        present, v = self._get(key, required, default)
        if not present:
            return v
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if isinstance(v, int) and abs(v) >= 10**64:  # str() of a huge int: slow or refused
                raise self.err(key, "must be a string, got a huge integer")
            v = str(v)
        if not isinstance(v, str):
            raise self.err(key, f"must be a string, got {_short(v)}")
        if choices is not None and v not in choices:
            raise self.err(key, f"= {_short(v)} is not one of "
                                f"{', '.join(repr(c) for c in choices)}")
        return v

    def boolean(self, key: str, default: bool) -> bool:
        present, v = self._get(key, False, default)
        if not present:
            return v
        if not isinstance(v, bool):
            raise self.err(key, f"must be true or false, got {_short(v)}")
        return v

    def section(self, key: str, required: bool = False) -> _Reader:
        present, v = self._get(key, required, {})
        if present and not isinstance(v, Mapping):
            raise self.err(key, f"must be a mapping, got {type(v).__name__}")
        return _Reader(self.profile, v or {}, f"{self.prefix}{key}.")

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used, key=str)  # YAML keys of any type
        if extra:
            known = ", ".join(sorted(self.used))
            raise ProfileError(f"profile {self.profile}: unknown key {self.prefix}{extra[0]} "
                               f"(known here: {known})")


def _short(v: Any) -> str:
    """A value's repr for a one-line message: at most 60 characters, never raising.

    >>> _short(10**5000)
    '<an integer of 16610 bits>'
    """
    if isinstance(v, int) and v.bit_length() > 200:
        return f"<an integer of {v.bit_length()} bits>"
    try:
        text = repr(v)
    except ValueError:  # a container holding an integer too long to print
        return f"<a {type(v).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _fmt(v: float, unit: str) -> str:
    if unit == "Hz" or unit == "S/s":
        for scale, pre in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= scale:
                return f"{v / scale:g} {pre}{unit}"
        return f"{v:g} {unit}"
    return f"{v:g}{(' ' + unit) if unit else ''}"


# ------------------------------------------------------------------------ the profile


@dataclass(frozen=True)
class FlowgraphSpec:
    """Which generated device flowgraph to build and with which constructor arguments.

    :param name: Flowgraph id, e.g. ``uhd_rx``: ``flowgraphs/device/uhd_rx.grc`` and the
        generated module ``flowgraphs.device.uhd_rx_gen`` with the top-block class ``uhd_rx``.
    :param kwargs: Keyword arguments of the top-block constructor (the GRC parameters).
    :param post: Settings applied after construction by :mod:`hardware.device` (those GRC
        cannot take as variables or applies only when non-zero at generation time: Pluto gain
        mode and tracking loops, UHD AGC and analog bandwidth).
    """

    name: str
    kwargs: dict[str, Any]
    post: dict[str, Any] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """Importable module of the generated flowgraph."""
        return f"flowgraphs.device.{self.name}_gen"

    @property
    def grc_path(self) -> str:
        """Path of the ``.grc`` file."""
        return repo_path("flowgraphs", "device", f"{self.name}.grc")


@dataclass(frozen=True)
class RadioProfile:
    """A validated radio profile (see the module docstring and ``hardware/profiles/``).

    :param name: Profile name.
    :param kind: ``uhd``, ``pluto``, ``zmq`` or ``sigmf``.
    :param samp_rate_hz: Sample rate (S/s).
    :param center_freq_hz: RF centre frequency (nominal for ``zmq``; from the file for
        ``sigmf``).
    :param description: Free text.
    :param device: Device settings (``args``, ``model``, ``clock_source``, ... / ``uri``,
        ``buffer_size`` / ``path``).
    :param tx: TX settings (gain or attenuation, antenna, bandwidth, back-off, padding).
    :param rx: RX settings (gain or gain mode, antenna, bandwidth, AGC).
    :param tx_endpoint: ZeroMQ endpoint of the modem's TX IQ stream.
    :param rx_endpoint: ZeroMQ endpoint of the received IQ stream.
    :param impairments: Impairments of the ``zmq`` virtual radio (``None``: clean channel).
    :param source: File the profile was read from (or ``sigmf:PATH``).
    """

    name: str
    kind: str
    samp_rate_hz: float
    center_freq_hz: float
    description: str = ""
    device: dict[str, Any] = field(default_factory=dict)
    tx: dict[str, Any] = field(default_factory=dict)
    rx: dict[str, Any] = field(default_factory=dict)
    tx_endpoint: str = "tcp://127.0.0.1:5710"
    rx_endpoint: str = "tcp://127.0.0.1:5711"
    impairments: ImpairmentConfig | None = None
    source: str = ""

    # ---------------------------------------------------------------- derived values

    @property
    def tx_scale(self) -> float:
        """Amplitude factor the device TX flowgraph applies: ``10^(-backoff_db/20)``."""
        return 10.0 ** (-float(self.tx.get("amplitude_backoff_db", 0.0)) / 20.0)

    @property
    def label(self) -> str:
        """Human name of the radio."""
        if self.kind == "uhd":
            return UHD_MODELS[self.device["model"]].label
        return {"pluto": "ADALM-PlutoSDR", "zmq": "ZeroMQ virtual radio",
                "sigmf": "SigMF file radio"}[self.kind]

    @property
    def burst_padding(self) -> tuple[int, int]:
        """``(front, back)`` zero samples the modem puts around each TX burst."""
        return (int(self.tx.get("burst_pad_front_samples", 0)),
                int(self.tx.get("burst_pad_back_samples", 0)))

    def flowgraph(self, direction: str) -> FlowgraphSpec:
        """The device flowgraph for ``direction`` (``tx`` or ``rx``) and its arguments.

        >>> load_profile("pluto").flowgraph("tx").kwargs["attenuation"]
        20.0
        """
        if direction not in DIRECTIONS:
            raise ProfileError(f"direction must be 'tx' or 'rx', got {direction!r}")
        d, t, r = self.device, self.tx, self.rx
        if self.kind == "uhd":
            common = {"dev_args": d["args"], "clock_source": d["clock_source"],
                      "time_source": d["time_source"], "samp_rate": self.samp_rate_hz,
                      "center_freq": self.center_freq_hz}
            if direction == "tx":
                kw = {**common, "gain": t["gain_db"], "antenna": t["antenna"],
                      "bandwidth": t["bandwidth_hz"], "tx_scale": self.tx_scale,
                      "zmq_endpoint": self.tx_endpoint}
                if t["burst_tag"]:  # UHD burst mode: the modem must send length tags
                    return FlowgraphSpec("uhd_tx_burst", {**kw, "len_tag_key": t["burst_tag"]},
                                         post={"bandwidth": t["bandwidth_hz"]})
                return FlowgraphSpec("uhd_tx", kw, post={"bandwidth": t["bandwidth_hz"]})
            return FlowgraphSpec("uhd_rx", {**common, "gain": r["gain_db"],
                                            "antenna": r["antenna"],
                                            "bandwidth": r["bandwidth_hz"],
                                            "zmq_endpoint": self.rx_endpoint},
                                 post={"agc": r["agc"], "bandwidth": r["bandwidth_hz"]})
        if self.kind == "pluto":
            common = {"uri": d["uri"], "samp_rate": int(round(self.samp_rate_hz)),
                      "center_freq": int(round(self.center_freq_hz)),
                      "buffer_size": d["buffer_size"]}
            if direction == "tx":
                return FlowgraphSpec("pluto_tx", {**common,
                                                  "bandwidth": int(round(t["bandwidth_hz"])),
                                                  "attenuation": t["attenuation_db"],
                                                  "tx_scale": self.tx_scale,
                                                  "zmq_endpoint": self.tx_endpoint})
            return FlowgraphSpec("pluto_rx", {**common, "gain": r["gain_db"],
                                              "zmq_endpoint": self.rx_endpoint},
                                 post={"gain_mode": r["gain_mode"],
                                       "quadrature": r["quadrature"], "rfdc": r["rfdc"],
                                       "bbdc": r["bbdc"]})
        if self.kind == "zmq":
            import json

            imp = self.impairments.to_dict() if self.impairments is not None else {}
            return FlowgraphSpec("zmq_channel", {"tx_endpoint": self.tx_endpoint,
                                                 "rx_endpoint": self.rx_endpoint,
                                                 "samp_rate": self.samp_rate_hz,
                                                 "impairments": json.dumps(imp)})
        # sigmf
        if direction == "rx":
            return FlowgraphSpec("sigmf_rx", {"path": d["path"], "repeat": d["repeat"],
                                              "zmq_endpoint": self.rx_endpoint})
        return FlowgraphSpec("sigmf_tx", {"path": d["path"], "samp_rate": self.samp_rate_hz,
                                          "center_freq": self.center_freq_hz,
                                          "zmq_endpoint": self.tx_endpoint})

    def to_dict(self) -> dict[str, Any]:
        """The profile as a YAML/JSON-ready mapping (loads back to the same profile)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.description:
            out["description"] = self.description
        out["samp_rate_hz"] = self.samp_rate_hz
        out["center_freq_hz"] = self.center_freq_hz
        out["device"] = copy.deepcopy(self.device)
        out["tx"] = copy.deepcopy(self.tx)
        out["rx"] = copy.deepcopy(self.rx)
        out["zmq"] = {"tx_endpoint": self.tx_endpoint, "rx_endpoint": self.rx_endpoint}
        if self.impairments is not None:
            imp = self.impairments.to_dict()
            defaults = ImpairmentConfig().to_dict()
            out["impairments"] = {k: v for k, v in imp.items()
                                  if k != "samp_rate_hz" and v != defaults[k]}
        return out

    def with_overrides(self, overrides: Mapping[str, Any]) -> RadioProfile:
        """A re-validated copy with dotted keys replaced (``{"rx.gain_db": 30}``).

        >>> load_profile("b210").with_overrides({"rx.gain_db": 30}).rx["gain_db"]
        30.0
        """
        data = self.to_dict()
        if self.kind == "sigmf":
            data.pop("samp_rate_hz")
            data.pop("center_freq_hz")
        _apply_overrides(data, overrides, self.name)
        return parse_profile(data, self.source or self.name)

    def summary(self) -> list[str]:
        """Human-readable lines for ``gsc radio check``."""
        lines = [f"profile {self.name} ({self.kind}: {self.label})"
                 + (f" from {self.source}" if self.source else "")]
        lines.append(f"  sample rate {_fmt(self.samp_rate_hz, 'S/s')}, centre frequency "
                     f"{_fmt(self.center_freq_hz, 'Hz')}")
        if self.kind == "uhd":
            d = self.device
            lines.append(f"  device args {d['args']!r}, clock {d['clock_source']}, time "
                         f"{d['time_source']}"
                         + (f", daughterboard {d['daughterboard']}" if d.get("daughterboard")
                            else ""))
            lines.append(f"  TX gain {self.tx['gain_db']:g} dB on {self.tx['antenna']}, RX gain "
                         f"{self.rx['gain_db']:g} dB on {self.rx['antenna']}"
                         + (" (AGC)" if self.rx["agc"] else ""))
        elif self.kind == "pluto":
            d = self.device
            lines.append(f"  uri {d['uri'] or '(first Pluto found)'}, buffer {d['buffer_size']}")
            gain = (f"{self.rx['gain_db']:g} dB" if self.rx["gain_mode"] == "manual"
                    else self.rx["gain_mode"])
            lines.append(f"  TX attenuation {self.tx['attenuation_db']:g} dB, RX gain {gain}")
        elif self.kind == "sigmf":
            lines.append(f"  recording {self.device['path']}")
        if self.kind in ("uhd", "pluto", "zmq"):
            front, back = self.burst_padding
            lines.append(f"  TX back-off {self.tx['amplitude_backoff_db']:g} dB "
                         f"(scale {self.tx_scale:.4f}), burst padding {front}+{back} samples")
        lines.append(f"  IQ: modem TX -> {self.tx_endpoint}, RX <- {self.rx_endpoint}")
        if self.kind == "zmq":
            if self.impairments is None or self.impairments.is_identity:
                lines.append("  impairments: none (clean channel)")
            else:
                imp = self.impairments.to_dict()
                defaults = ImpairmentConfig().to_dict()
                on = [f"{k}={v}" for k, v in imp.items()
                      if k not in ("samp_rate_hz", "seed") and v != defaults[k]]
                lines.append("  impairments: " + ", ".join(on))
        return lines


# ------------------------------------------------------------------------ parsing


def _parse_tx_common(r: _Reader, out: dict[str, Any], default_backoff: float,
                     default_back_pad: int) -> None:
    out["amplitude_backoff_db"] = r.number("amplitude_backoff_db", default_backoff,
                                           rng=(0.0, 40.0), unit="dB")
    out["burst_pad_front_samples"] = r.integer("burst_pad_front_samples", 0, rng=(0, 1 << 24))
    out["burst_pad_back_samples"] = r.integer("burst_pad_back_samples", default_back_pad,
                                              rng=(0, 1 << 24))


def _check_endpoint(profile: str, key: str, value: str) -> str:
    """Validate one IQ endpoint: a ZeroMQ address on this host (loopback TCP or ipc/inproc).

    gr-zeromq's IQ blocks bind these with plain ZeroMQ (no CurveZMQ option), so a TCP host
    other than ``127.x.x.x``/``localhost`` is refused; IPv6 literals too, as gr-zeromq 3.10
    sets no IPv6 socket option and fails to bind them.
    """
    if value.startswith("tcp://["):
        raise ProfileError(f"profile {profile}: zmq.{key} = {value!r}: gr-zeromq 3.10 cannot "
                           "use IPv6 addresses; use tcp://127.0.0.1:PORT or ipc://PATH")
    if not _ENDPOINT_RE.match(value):
        raise ProfileError(f"profile {profile}: zmq.{key} = {value!r} is not a ZeroMQ endpoint "
                           "(tcp://HOST:PORT, ipc://PATH)")
    m = re.match(r"^tcp://[^\s:]+:(\d+)$", value)
    if m and not 1 <= int(m.group(1)) <= 65535:
        raise ProfileError(f"profile {profile}: zmq.{key} port {m.group(1)} is out of range "
                           "(1 to 65535)")
    host = value[len("tcp://"):].rsplit(":", 1)[0] if value.startswith("tcp://") else ""
    if host and not _is_loopback_host(host):
        raise ProfileError(f"profile {profile}: zmq.{key} = {value!r} is not loopback: the "
                           "gr-zeromq IQ blocks cannot use CurveZMQ, so IQ stays on this host "
                           "(127.0.0.1, localhost or ipc://); put the decoder on another host "
                           "through the RX block's CURVE-secured queue instead")
    return value


def _is_loopback_host(host: str) -> bool:
    """Whether a TCP host name/address stays on this machine (``127.0.0.0/8``, localhost).

    >>> [_is_loopback_host(h) for h in ("127.0.0.1", "localhost", "0.0.0.0", "*", "eth0")]
    [True, True, False, False, False]
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a wildcard, an interface or a host name
        return False


def _parse_uhd(name: str, top: _Reader, fs: float, fc: float) -> tuple[dict, dict, dict]:
    d = top.section("device", required=True)
    model_name = d.string("model", required=True, choices=tuple(UHD_MODELS))
    model = UHD_MODELS[model_name]
    dev: dict[str, Any] = {"model": model_name,
                           "args": d.string("args", required=True),
                           "clock_source": d.string("clock_source", "internal",
                                                    choices=_CLOCK_SOURCES),
                           "time_source": d.string("time_source", "internal",
                                                   choices=_CLOCK_SOURCES)}
    if model.daughterboards:
        db = d.string("daughterboard", required=True, choices=tuple(UHD_DAUGHTERBOARDS))
        dev["daughterboard"] = db
        ranges = UHD_DAUGHTERBOARDS[db]
        what = f"{model.label} with a {db.upper()}"
    else:
        if d.raw("daughterboard") is not None:
            raise ProfileError(f"profile {name}: device.daughterboard is only for the N210 "
                               "and X310 (the B2xx has an integrated front end)")
        ranges = {"freq_hz": model.freq_hz, "rx_gain_db": model.rx_gain_db,
                  "tx_gain_db": model.tx_gain_db}
        what = model.label
    mcr = d.number("master_clock_rate_hz", None)
    d.done()
    m = re.search(r"master_clock_rate=([0-9.eE+-]+)", dev["args"])
    if m:
        try:
            mcr = float(m.group(1))
        except ValueError:
            raise ProfileError(f"profile {name}: device.args master_clock_rate="
                               f"{m.group(1)!r} is not a number") from None
    if mcr is not None:
        dev["master_clock_rate_hz"] = mcr
        if "master_clock_rate" not in dev["args"]:
            dev["args"] = ",".join(a for a in (dev["args"], f"master_clock_rate={mcr:g}") if a)
    if not model.rate_hz[0] <= fs <= model.rate_hz[1]:
        raise ProfileError(f"profile {name}: samp_rate_hz = {_fmt(fs, 'S/s')} is out of range "
                           f"for the {model.label} ({_fmt(model.rate_hz[0], 'S/s')} to "
                           f"{_fmt(model.rate_hz[1], 'S/s')})")
    if model.master_clock_hz is not None:
        clocks = (mcr,) if mcr is not None else model.master_clock_hz[:1]
        if mcr is not None and mcr not in model.master_clock_hz:
            raise ProfileError(f"profile {name}: master clock {_fmt(mcr, 'Hz')} is not one of "
                               f"the {model.label}'s "
                               + ", ".join(_fmt(c, "Hz") for c in model.master_clock_hz))
        ratio = clocks[0] / fs
        if abs(ratio - round(ratio)) > 1e-6 * ratio:
            raise ProfileError(
                f"profile {name}: samp_rate_hz = {_fmt(fs, 'S/s')} is not the "
                f"{model.label}'s master clock {_fmt(clocks[0], 'Hz')} divided by an integer "
                f"(UHD would coerce it; e.g. {_fmt(clocks[0] / max(1, round(ratio)), 'S/s')})")
    if not ranges["freq_hz"][0] <= fc <= ranges["freq_hz"][1]:
        raise ProfileError(f"profile {name}: center_freq_hz = {_fmt(fc, 'Hz')} is out of range "
                           f"for the {what} ({_fmt(ranges['freq_hz'][0], 'Hz')} to "
                           f"{_fmt(ranges['freq_hz'][1], 'Hz')})")
    t = top.section("tx", required=True)
    tx: dict[str, Any] = {
        "gain_db": t.number("gain_db", required=True, rng=ranges["tx_gain_db"], unit="dB",
                            what=what),
        "antenna": t.string("antenna", model.tx_antennas[0], choices=model.tx_antennas),
        "bandwidth_hz": t.number("bandwidth_hz", 0.0),
        "burst_tag": t.string("burst_tag", ""),
    }
    _parse_tx_common(t, tx, 12.0, 0)
    t.done()
    r = top.section("rx", required=True)
    rx: dict[str, Any] = {
        "gain_db": r.number("gain_db", required=True, rng=ranges["rx_gain_db"], unit="dB",
                            what=what),
        "antenna": r.string("antenna", "RX2", choices=model.rx_antennas),
        "bandwidth_hz": r.number("bandwidth_hz", 0.0),
        "agc": r.boolean("agc", False),
    }
    r.done()
    for sec, vals in (("tx", tx), ("rx", rx)):
        bw = vals["bandwidth_hz"]
        lo, hi = model.bandwidth_hz
        if bw != 0.0 and not lo <= bw <= hi:
            raise ProfileError(f"profile {name}: {sec}.bandwidth_hz = {_fmt(bw, 'Hz')} is out of "
                               f"range for the {model.label} (0 = default, or "
                               f"{_fmt(lo, 'Hz')} to {_fmt(hi, 'Hz')})")
    if tx["burst_tag"] and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", tx["burst_tag"]):
        raise ProfileError(f"profile {name}: tx.burst_tag = {tx['burst_tag']!r} is not a tag "
                           "name (letters, digits, _)")
    return dev, tx, rx


def _pluto_gain_range(fc: float) -> tuple[float, float]:
    for upper, rng in PLUTO_LIMITS["rx_gain_db"]:
        if fc <= upper:
            return rng
    return PLUTO_LIMITS["rx_gain_db"][-1][1]


def _parse_pluto(name: str, top: _Reader, fs: float, fc: float) -> tuple[dict, dict, dict]:
    lim = PLUTO_LIMITS
    d = top.section("device", required=True)
    uri = d.string("uri", required=True)
    if uri and not re.match(r"^(ip|usb|local|serial):", uri):
        raise ProfileError(f"profile {name}: device.uri = {uri!r} is not a libiio URI "
                           "(ip:192.168.2.1, usb:1.2.5, or \"\" for the first Pluto found)")
    dev = {"uri": uri, "buffer_size": d.integer("buffer_size", 32768, rng=lim["buffer_size"])}
    d.done()
    if not lim["rate_hz"][0] <= fs <= lim["rate_hz"][1]:
        raise ProfileError(f"profile {name}: samp_rate_hz = {_fmt(fs, 'S/s')} is out of range "
                           f"for the PlutoSDR (65.1 kS/s to 61.44 MS/s)")
    if not lim["freq_hz"][0] <= fc <= lim["freq_hz"][1]:
        raise ProfileError(f"profile {name}: center_freq_hz = {_fmt(fc, 'Hz')} is out of range "
                           "for the PlutoSDR (70 MHz to 6 GHz)")
    t = top.section("tx", required=True)
    tx: dict[str, Any] = {
        "attenuation_db": t.number("attenuation_db", required=True,
                                   rng=lim["tx_attenuation_db"], unit="dB", what="PlutoSDR"),
        "bandwidth_hz": t.number("bandwidth_hz", max(lim["tx_bandwidth_hz"][0], min(fs, 40e6)),
                                 rng=lim["tx_bandwidth_hz"], unit="Hz", what="PlutoSDR TX"),
    }
    _parse_tx_common(t, tx, 12.0, dev["buffer_size"])
    t.done()
    if tx["burst_pad_back_samples"] < dev["buffer_size"]:
        raise ProfileError(
            f"profile {name}: tx.burst_pad_back_samples = {tx['burst_pad_back_samples']} must be "
            f">= device.buffer_size = {dev['buffer_size']}: the Pluto sink sends whole buffers "
            "only, so a burst's tail would wait for the next burst")
    r = top.section("rx", required=True)
    rx: dict[str, Any] = {
        "gain_mode": r.string("gain_mode", required=True, choices=lim["gain_modes"]),
        "quadrature": r.boolean("quadrature", True),
        "rfdc": r.boolean("rfdc", True),
        "bbdc": r.boolean("bbdc", True),
    }
    grng = _pluto_gain_range(fc)
    rx["gain_db"] = r.number("gain_db", None, required=rx["gain_mode"] == "manual", rng=grng,
                             unit="dB", what=f"PlutoSDR at {_fmt(fc, 'Hz')}")
    if rx["gain_db"] is None:
        rx["gain_db"] = 0.0
    r.done()
    return dev, tx, rx


def parse_profile(data: Any, source: str = "<profile>") -> RadioProfile:
    """Validate a profile mapping (as loaded from YAML) into a :class:`RadioProfile`.

    :param data: The mapping.
    :param source: Where it came from (file path), for messages.
    :raises ProfileError: one line naming the profile, the key and the problem.
    """
    fallback = os.path.splitext(os.path.basename(str(source)))[0] or "<profile>"
    if not isinstance(data, Mapping):
        raise ProfileError(f"profile {fallback}: the file must hold a YAML mapping, got "
                           f"{type(data).__name__}")
    top = _Reader(fallback, data)
    name = top.string("name", fallback)
    if not _NAME_RE.match(name):
        raise ProfileError(f"profile {fallback}: name {name!r} must be letters, digits, ._- "
                           "(64 at most)")
    top.profile = name
    kind = top.string("kind", required=True, choices=KINDS)
    description = top.string("description", "")
    z = top.section("zmq")
    tx_ep = _check_endpoint(name, "tx_endpoint", z.string("tx_endpoint",
                                                          RadioProfile.tx_endpoint))
    rx_ep = _check_endpoint(name, "rx_endpoint", z.string("rx_endpoint",
                                                          RadioProfile.rx_endpoint))
    z.done()
    if tx_ep == rx_ep:
        raise ProfileError(f"profile {name}: zmq.tx_endpoint and zmq.rx_endpoint must differ")
    impairments = None
    if kind == "sigmf":
        dev, tx, rx, fs, fc = _parse_sigmf(name, top)
    else:
        fs = top.number("samp_rate_hz", required=True, rng=(1.0, 1e10), unit="S/s")
        fc = top.number("center_freq_hz", required=True, rng=(0.0, 1e11), unit="Hz")
        if kind == "uhd":
            dev, tx, rx = _parse_uhd(name, top, fs, fc)
        elif kind == "pluto":
            dev, tx, rx = _parse_pluto(name, top, fs, fc)
        else:  # zmq
            d = top.section("device")
            d.done()
            dev = {}
            t = top.section("tx")
            tx = {}
            _parse_tx_common(t, tx, 0.0, 0)
            t.done()
            r = top.section("rx")
            r.done()
            rx = {}
    if kind == "zmq":
        imp = top.raw("impairments")
        if imp is not None:
            if not isinstance(imp, Mapping):
                raise ProfileError(f"profile {name}: impairments must be a mapping")
            bad = [k for k in imp if not isinstance(k, str)]
            if bad:
                raise ProfileError(f"profile {name}: impairments key {bad[0]!r} is not a name")
            try:
                impairments = ImpairmentConfig.from_dict(imp, samp_rate_hz=fs)
            except ImpairmentError as e:
                raise ProfileError(f"profile {name}: impairments: {e}") from None
            except (OverflowError, ValueError, TypeError) as e:  # values the emulator can't take
                raise ProfileError(f"profile {name}: impairments: a value out of range "
                                   f"({type(e).__name__}: {str(e).splitlines()[0][:80]})") from None
    elif top.raw("impairments") is not None:
        raise ProfileError(f"profile {name}: impairments apply to the zmq virtual radio only "
                           f"(a {kind} radio has real ones)")
    top.done()
    return RadioProfile(name=name, kind=kind, samp_rate_hz=fs, center_freq_hz=fc,
                        description=description, device=dev, tx=tx, rx=rx,
                        tx_endpoint=tx_ep, rx_endpoint=rx_ep, impairments=impairments,
                        source=str(source))


def _parse_sigmf(name: str, top: _Reader) -> tuple[dict, dict, dict, float, float]:
    from .sigmf_lite import RecordingError, read_meta, recording_paths

    d = top.section("device", required=True)
    path = d.string("path", required=True)
    repeat = d.boolean("repeat", False)
    d.done()
    if not path:
        raise ProfileError(f"profile {name}: device.path is empty")
    meta_path, _ = recording_paths(os.path.expanduser(path))
    fs = top.number("samp_rate_hz", None, rng=(1.0, 1e10), unit="S/s")
    fc = top.number("center_freq_hz", None, rng=(0.0, 1e11), unit="Hz")
    if os.path.exists(meta_path):  # replay: rate and frequency come from the recording
        try:
            meta = read_meta(meta_path)
        except RecordingError as e:
            raise ProfileError(f"profile {name}: {e}") from None
        file_fs = float(meta["global"]["core:sample_rate"])
        if fs is not None and abs(fs - file_fs) > 1e-9 * file_fs:
            raise ProfileError(f"profile {name}: samp_rate_hz = {fs:g} disagrees with the "
                               f"recording's core:sample_rate {file_fs:g}")
        fs = file_fs
        caps = meta["captures"]
        if fc is None:
            fc = float(caps[0]["core:frequency"]) if caps and "core:frequency" in caps[0] else 0.0
    elif fs is None:
        raise ProfileError(f"profile {name}: no recording at {meta_path}; to record into a new "
                           "one give samp_rate_hz")
    t = top.section("tx")
    t.done()
    r = top.section("rx")
    r.done()
    # absolute, relative to the working directory of whoever loads the profile, so the
    # radio-side subprocess (cwd = repository root) opens the same file
    return ({"path": os.path.abspath(os.path.expanduser(path)), "repeat": repeat}, {}, {}, fs,
            0.0 if fc is None else fc)


# ------------------------------------------------------------------------ loading


def list_profiles() -> list[str]:
    """Names of the profiles shipped in ``hardware/profiles/``.

    >>> "b210" in list_profiles() and "pluto" in list_profiles()
    True
    """
    return sorted(f[: -len(".yaml")] for f in os.listdir(PROFILES_DIR) if f.endswith(".yaml"))


def profile_path(spec: str) -> str:
    """Path of a profile given its shipped name or a YAML path."""
    if os.path.isfile(spec):
        return spec
    if re.match(r"^[A-Za-z0-9_.-]+$", spec) and not spec.endswith((".yaml", ".yml")):
        p = os.path.join(PROFILES_DIR, f"{spec}.yaml")
        if os.path.isfile(p):
            return p
        raise ProfileError(f"no radio profile {spec!r} (shipped: {', '.join(list_profiles())}; "
                           "or give a YAML path, or sigmf:PATH)")
    raise ProfileError(f"no radio profile file {spec}")


def load_profile(spec: str, overrides: Mapping[str, Any] | None = None) -> RadioProfile:
    """Load and validate a profile.

    :param spec: A shipped name (``b210``, ``pluto``, ``zmq``, ...), a YAML path, or
        ``sigmf:PATH`` for the SigMF file radio on the recording ``PATH``.
    :param overrides: Dotted keys to replace before validation (``{"rx.gain_db": 20}``).
    :raises ProfileError: one line.
    """
    if not isinstance(spec, str) or not spec:
        raise ProfileError("a radio profile name or path is required")
    if spec.startswith("sigmf:"):
        path = spec[len("sigmf:"):]
        if not path:
            raise ProfileError("sigmf: needs a recording path (sigmf:DIR/NAME)")
        data: Any = {"name": "sigmf", "kind": "sigmf", "device": {"path": path}}
        source = spec
    else:
        source = profile_path(spec)
        try:
            with open(source, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except UnicodeDecodeError:
            raise ProfileError(f"profile {source} is not UTF-8 text") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ProfileError(f"profile {source} is not valid YAML{where}: {problem}") from None
        except OSError as e:
            raise ProfileError(f"cannot read profile {source}: {e.strerror}") from None
        except RecursionError:
            raise ProfileError(f"profile {source} is nested too deeply to be a profile") from None
        except ValueError as e:  # e.g. an integer with more digits than Python converts
            raise ProfileError(f"profile {source} holds an unreadable value: "
                               f"{str(e).splitlines()[0]}") from None
        if data is None:
            raise ProfileError(f"profile {source} is empty")
    if overrides:
        if not isinstance(data, dict):
            return parse_profile(data, source)
        data = copy.deepcopy(data)
        _apply_overrides(data, overrides, spec)
    return parse_profile(data, source)


def _apply_overrides(data: dict, overrides: Mapping[str, Any], name: str) -> None:
    """Set dotted keys (``"rx.gain_db"``) of a profile mapping in place."""
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ProfileError(f"cannot override {key} in profile {name}")
        node[parts[-1]] = value
