"""Find radios, check them, and run the device flowgraphs (radio interpreter).

Everything that touches GNU Radio, UHD or libiio goes through here, and every failure of
theirs comes out as one :class:`DeviceError` line: the device is absent, busy, unreachable,
or GNU Radio / gr-uhd / gr-iio is missing. The ML side calls it as a subprocess::

    python3 -m hardware.device find --json                 # USRPs (UHD) and Plutos (libiio)
    python3 -m hardware.device check PROFILE [--json]      # is the profile's device there?
    python3 -m hardware.device run PROFILE --direction rx [--duration 10] [--set rx.gain_db=20]
    python3 -m hardware.device record PROFILE DIR/NAME [--duration 1]   # raw IQ -> SigMF

``run`` exits 0 when the flowgraph ends or is stopped (SIGINT/SIGTERM, ``--duration``), 2
with one ``gsc: error: ...`` line on bad input or a missing/busy device, and prints one
JSON summary line on stdout (for UHD: underruns ``U`` and overruns ``O`` counted from its
console markers).

Importable without GNU Radio (GNU Radio is imported inside the functions), so the error
translation is tested under both interpreters.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from bridge.common import REPO_ROOT

from .profiles import ProfileError, RadioProfile, load_profile

__all__ = [
    "DeviceError",
    "find_devices",
    "find_uhd",
    "find_iio",
    "check_device",
    "translate_error",
    "build_flowgraph",
    "run_flowgraph",
    "record_iq",
    "open_iio_context",
    "UhdConsoleCounter",
    "main",
]

_INSTALL_HINT = ("install GNU Radio 3.10 for this Python (Debian/Ubuntu: apt-get install "
                 "gnuradio python3-zmq; gr-uhd and gr-iio come with it) or point "
                 "GSC_RADIO_PYTHON at the interpreter GNU Radio was built for")
IIOD_PORT = 30431


class DeviceError(RuntimeError):
    """A radio could not be found, opened or run (one line).

    :param message: The line shown to the user.
    :param reason: ``absent``, ``busy``, ``unreachable``, ``missing_software`` or ``failed``.
    """

    def __init__(self, message: str, reason: str = "failed"):
        super().__init__(message)
        self.reason = reason


# ------------------------------------------------------------------------ stderr capture


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Redirect file descriptor 2 (C libraries write there) into a buffer.

    Yields a list that holds the captured text once the block exits.
    """
    out: list[str] = []
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:
        yield out
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            try:
                sys.stderr.flush()
            except (AttributeError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))


# ------------------------------------------------------------------------ discovery


def _import_gr(module: str) -> Any:
    """Import ``gnuradio.<module>`` or raise a one-line :class:`DeviceError`."""
    try:
        from gnuradio import gr  # noqa: F401
    except Exception as e:  # ImportError, or numpy ABI errors under the wrong interpreter
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise DeviceError(f"GNU Radio does not import under {sys.executable} ({first}): "
                          f"{_INSTALL_HINT}", "missing_software") from None
    try:
        return importlib.import_module(f"gnuradio.{module}")
    except Exception as e:
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        pkg = {"uhd": "gr-uhd (libgnuradio-uhd, with uhd-host for uhd_find_devices)",
               "iio": "gr-iio (libgnuradio-iio and libiio0)",
               "zeromq": "gr-zeromq (libgnuradio-zeromq)"}.get(module, f"gr-{module}")
        raise DeviceError(f"GNU Radio has no {pkg} under {sys.executable} ({first}): "
                          f"{_INSTALL_HINT}", "missing_software") from None


def _addr_to_dict(addr: Any) -> dict[str, str]:
    try:
        return {str(k): str(addr.get(k)) for k in addr.keys()}
    except Exception:  # pragma: no cover - depends on the UHD binding
        text = str(addr)
        return dict(kv.split("=", 1) for kv in text.split(",") if "=" in kv)


def find_uhd(args: str = "", timeout_s: float = 10.0) -> list[dict[str, str]]:
    """USRPs UHD can see (``[{"type": "b200", "serial": ..., ...}]``), matching ``args``.

    Uses gr-uhd's ``find`` binding (the ``find_devices`` wrapper of GNU Radio 3.10.5 is
    broken), else the ``uhd_find_devices`` program.
    """
    try:
        uhd = _import_gr("uhd")
    except DeviceError:
        exe = shutil.which("uhd_find_devices")
        if exe is None:
            raise
        return _find_uhd_cli(exe, args, timeout_s)
    with _captured_stderr():
        finder = getattr(uhd.uhd_python, "find", None)
        if finder is None:
            raise DeviceError("this gr-uhd has no device discovery binding", "missing_software")
        found = finder(uhd.device_addr_t(args))
        return [_addr_to_dict(a) for a in found]


def _find_uhd_cli(exe: str, args: str, timeout_s: float) -> list[dict[str, str]]:
    try:
        res = subprocess.run([exe, f"--args={args}"], capture_output=True, text=True,
                             timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"uhd_find_devices did not answer within {timeout_s:g} s",
                          "failed") from None
    devices, cur = [], {}
    for line in res.stdout.splitlines():
        m = re.match(r"^\s+(\w+):\s*(.*)$", line)
        if m:
            cur[m.group(1)] = m.group(2).strip()
        elif cur and line.startswith("---"):
            devices.append(cur)
            cur = {}
    if cur:
        devices.append(cur)
    return devices


def _find_iio_ctypes() -> list[dict[str, str]] | None:
    name = ctypes.util.find_library("iio") or "libiio.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.iio_create_scan_context.restype = ctypes.c_void_p
    lib.iio_create_scan_context.argtypes = [ctypes.c_char_p, ctypes.c_uint]
    lib.iio_scan_context_get_info_list.restype = ctypes.c_ssize_t
    lib.iio_scan_context_get_info_list.argtypes = [ctypes.c_void_p,
                                                   ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))]
    lib.iio_context_info_get_uri.restype = ctypes.c_char_p
    lib.iio_context_info_get_uri.argtypes = [ctypes.c_void_p]
    lib.iio_context_info_get_description.restype = ctypes.c_char_p
    lib.iio_context_info_get_description.argtypes = [ctypes.c_void_p]
    lib.iio_context_info_list_free.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.iio_scan_context_destroy.argtypes = [ctypes.c_void_p]
    out: list[dict[str, str]] = []
    with _captured_stderr():  # the ip backend complains when avahi is not running
        ctx = lib.iio_create_scan_context(None, 0)
        if not ctx:
            return out
        try:
            infos = ctypes.POINTER(ctypes.c_void_p)()
            n = lib.iio_scan_context_get_info_list(ctx, ctypes.byref(infos))
            for i in range(max(0, n)):
                uri = (lib.iio_context_info_get_uri(infos[i]) or b"").decode("utf-8", "replace")
                desc = (lib.iio_context_info_get_description(infos[i]) or b"").decode(
                    "utf-8", "replace")
                out.append({"uri": uri, "description": desc})
            if n > 0:
                lib.iio_context_info_list_free(infos)
        finally:
            lib.iio_scan_context_destroy(ctx)
    return out


def open_iio_context(uri: str, timeout_s: float = 8.0) -> str:
    """Open and close an IIO context through libiio (ctypes); returns its description.

    Runs in a thread with a deadline, so a half-open network path cannot hang the caller.

    :raises DeviceError: libiio missing, no context at ``uri``, or no answer in time.
    """
    name = ctypes.util.find_library("iio") or "libiio.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise DeviceError("libiio is not installed (apt-get install libiio0 libiio-utils)",
                          "missing_software") from None
    lib.iio_create_context_from_uri.restype = ctypes.c_void_p
    lib.iio_create_context_from_uri.argtypes = [ctypes.c_char_p]
    lib.iio_context_get_description.restype = ctypes.c_char_p
    lib.iio_context_get_description.argtypes = [ctypes.c_void_p]
    lib.iio_context_destroy.argtypes = [ctypes.c_void_p]
    result: dict[str, Any] = {}

    def work() -> None:
        ctx = lib.iio_create_context_from_uri(uri.encode())
        if not ctx:
            result["error"] = ctypes.get_errno() or -1
            return
        result["description"] = (lib.iio_context_get_description(ctx) or b"").decode(
            "utf-8", "replace")
        lib.iio_context_destroy(ctx)

    with _captured_stderr():
        t = threading.Thread(target=work, daemon=True)
        t.start()
        t.join(timeout_s)
    if t.is_alive():
        raise DeviceError(f"the IIO device at {uri} did not answer within {timeout_s:g} s "
                          "(is iiod running? replug the Pluto)", "unreachable")
    if "description" not in result:
        raise DeviceError(f"no IIO context at {uri} (libiio could not open it: check the "
                          "cable, the URI, and gsc radio list)", "absent")
    return result["description"]


def find_iio(timeout_s: float = 10.0) -> tuple[list[dict[str, Any]], str]:
    """IIO contexts libiio can see and the method used (``iio_info -s``, ``pylibiio``,
    ``libiio``); each entry has ``uri``, ``description`` and ``pluto`` (bool)."""
    found: list[dict[str, str]] | None = None
    method = "none"
    exe = shutil.which("iio_info")
    if exe:
        try:
            res = subprocess.run([exe, "-s"], capture_output=True, text=True, timeout=timeout_s)
            found = []
            for line in res.stdout.splitlines():
                m = re.match(r"^\s*\d+:\s*(.*?)\s*\[(\S+)\]\s*$", line)
                if m:
                    found.append({"uri": m.group(2), "description": m.group(1)})
            method = "iio_info -s"
        except (OSError, subprocess.TimeoutExpired):
            found = None
    if found is None:
        try:
            import iio  # type: ignore[import-not-found]

            found = [{"uri": u, "description": d} for u, d in iio.scan_contexts().items()]
            method = "pylibiio"
        except Exception:
            found = _find_iio_ctypes()
            method = "libiio" if found is not None else "none"
    items = []
    for f in found or []:
        desc = f["description"]
        is_pluto = bool(re.search(r"pluto|adalm|ad936[34]", desc, re.I))
        items.append({**f, "pluto": is_pluto})
    return items, method


def find_devices(timeout_s: float = 10.0) -> dict[str, Any]:
    """All radios: ``{"uhd": [...], "iio": [...], "notes": [...]}`` (never raises)."""
    out: dict[str, Any] = {"uhd": [], "iio": [], "notes": []}
    try:
        out["uhd"] = find_uhd("", timeout_s)
    except DeviceError as e:
        out["notes"].append(f"UHD: {e}")
    except Exception as e:  # a driver error must not hide the other search
        out["notes"].append(f"UHD: discovery failed ({str(e).splitlines()[0][:160]})")
    try:
        out["iio"], method = find_iio(timeout_s)
        if method == "none":
            out["notes"].append("libiio: not installed (apt-get install libiio0 libiio-utils)")
    except Exception as e:
        out["notes"].append(f"libiio: discovery failed ({str(e).splitlines()[0][:160]})")
    return out


# ------------------------------------------------------------------------ errors


def translate_error(exc: BaseException, profile: RadioProfile) -> DeviceError:
    """Turn a UHD/libiio/GNU Radio exception into one :class:`DeviceError` line.

    >>> from hardware.profiles import load_profile
    >>> e = RuntimeError("LookupError: KeyError: No devices found for ----->\\nEmpty Device")
    >>> err = translate_error(e, load_profile("b210"))
    >>> err.reason, str(err).split(" (")[0]
    ('absent', "no USRP B210 found for device args 'type=b200'")
    """
    if isinstance(exc, DeviceError):
        return exc
    text = " ".join(str(exc).split())
    low = text.lower()
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    if "address already in use" in low:  # a ZeroMQ endpoint the flowgraph binds
        return DeviceError(f"a ZeroMQ endpoint of profile {profile.name} is already in use "
                           f"({profile.rx_endpoint}): another gsc running? stop it or change "
                           "zmq.rx_endpoint", "busy")
    if profile.kind == "uhd":
        args = profile.device.get("args", "")
        where = ("check USB 3 cable and power" if profile.device.get("model", "").startswith("b2")
                 else "check the Ethernet link, host IP and MTU")
        if "no devices found" in low:
            return DeviceError(f"no {profile.label} found for device args {args!r} ({where}, "
                               "run uhd_find_devices, or set device.args)", "absent")
        if re.search(r"busy|already in use|claim|resource temporarily unavailable", low):
            return DeviceError(f"the {profile.label} ({args}) is busy: another program holds it "
                               f"(close GNU Radio Companion, uhd_fft or another gsc; UHD: "
                               f"{first})", "busy")
        if "images" in low and ("firmware" in low or "fpga" in low):
            return DeviceError(f"the {profile.label} needs UHD images: run uhd_images_downloader "
                               f"({first})", "failed")
        return DeviceError(f"could not open the {profile.label} ({args}): {first}", "failed")
    if profile.kind == "pluto":
        uri = profile.device.get("uri") or "(first Pluto found)"
        if "no pluto device found" in low:
            return DeviceError("no PlutoSDR found (libiio scan of USB and network): plug it in "
                               "or set device.uri", "absent")
        if re.search(r"busy|resource temporarily unavailable", low):
            return DeviceError(f"the PlutoSDR at {uri} is busy: another program holds its "
                               "buffers (close IIO Oscilloscope, GRC or another gsc)", "busy")
        if "unable to create context" in low or "connection refused" in low:
            return DeviceError(f"could not open the PlutoSDR at {uri} (no IIO context: check "
                               "the USB cable, ping 192.168.2.1, or run gsc radio list)", "absent")
        return DeviceError(f"could not open the PlutoSDR at {uri}: {first}", "failed")
    return DeviceError(f"profile {profile.name}: {first}", "failed")


# ------------------------------------------------------------------------ checks


def _check_tcp(host: str, port: int, timeout_s: float) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except TimeoutError:
        return "timed out"
    except OSError as e:
        return e.strerror or str(e)


def check_bindable(endpoint: str) -> str | None:
    """Why ``tcp://HOST:PORT`` cannot be bound now (None when it can, or is not TCP)."""
    m = re.match(r"^tcp://([^:]+):(\d+)$", endpoint)
    if not m:
        return None
    host = m.group(1)
    if host in ("*", "0.0.0.0"):
        host = ""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, int(m.group(2))))
        except OSError as e:
            return e.strerror or str(e)
    return None


def check_device(profile: RadioProfile, timeout_s: float = 5.0) -> dict[str, Any]:
    """Fast presence check of the profile's device (no flowgraph built).

    :returns: ``{"profile", "kind", "ok": True, "found": [...], "detail"}``.
    :raises DeviceError: absent, unreachable, busy endpoint, unreadable recording.
    """
    info: dict[str, Any] = {"profile": profile.name, "kind": profile.kind, "ok": True,
                            "found": [], "detail": ""}
    if profile.kind == "uhd":
        found = find_uhd(profile.device["args"], timeout_s)
        if not found:
            raise translate_error(RuntimeError("No devices found"), profile)
        info["found"] = found
        info["detail"] = ", ".join(f"{d.get('product') or d.get('type', '?')} serial "
                                   f"{d.get('serial', '?')}" for d in found)
    elif profile.kind == "pluto":
        uri = profile.device["uri"]
        m = re.match(r"^ip:(.+)$", uri)
        if m:
            err = _check_tcp(m.group(1), IIOD_PORT, timeout_s)
            if err:
                raise DeviceError(f"the PlutoSDR at {uri} is unreachable ({err} on port "
                                  f"{IIOD_PORT}): check the USB cable / network gadget and "
                                  f"ping {m.group(1)}", "unreachable")
            desc = open_iio_context(uri, timeout_s + 3.0)
            info["found"] = [{"uri": uri, "description": desc}]
            info["detail"] = f"{uri}: {desc or 'IIO context'}"
        else:
            contexts, method = find_iio(timeout_s)
            if method == "none":
                raise DeviceError("libiio is not installed, cannot look for a PlutoSDR "
                                  "(apt-get install libiio0 libiio-utils)", "missing_software")
            plutos = [c for c in contexts if c["pluto"]]
            match = [c for c in plutos if not uri or c["uri"] == uri]
            if not match:
                seen = ", ".join(c["uri"] for c in plutos) or "none"
                raise DeviceError(f"no PlutoSDR at {uri or 'any URI'} (libiio found: {seen}); "
                                  "plug it in or set device.uri", "absent")
            info["found"] = match
            info["detail"] = ", ".join(f"{c['uri']} ({c['description']})" for c in match)
    elif profile.kind == "zmq":
        err = check_bindable(profile.rx_endpoint)
        if err:
            raise DeviceError(f"cannot bind {profile.rx_endpoint} ({err}): another gsc or "
                              "program uses it; change zmq.rx_endpoint", "busy")
        info["detail"] = f"{profile.tx_endpoint} -> channel -> {profile.rx_endpoint}"
    else:
        from .sigmf_lite import RecordingError, read_recording

        try:
            rec = read_recording(profile.device["path"])
        except RecordingError as e:
            raise DeviceError(str(e), "absent") from None
        info["detail"] = (f"{rec.num_samples} samples at {rec.sample_rate_hz:g} S/s, "
                          f"{len(rec.annotations)} annotations")
    return info


# ------------------------------------------------------------------------ flowgraphs


def _apply_post(tb: Any, spec_post: dict[str, Any], profile: RadioProfile) -> None:
    if profile.kind == "uhd":
        dev = getattr(tb, "usrp_source", None) or getattr(tb, "usrp_sink", None)
        if spec_post.get("bandwidth"):
            dev.set_bandwidth(float(spec_post["bandwidth"]), 0)
        if spec_post.get("agc"):
            dev.set_rx_agc(True, 0)
    elif profile.kind == "pluto" and hasattr(tb, "pluto_source"):
        src = tb.pluto_source
        src.set_gain_mode(0, spec_post["gain_mode"])
        if spec_post["gain_mode"] == "manual":
            src.set_gain(0, float(profile.rx["gain_db"]))
        src.set_quadrature(bool(spec_post["quadrature"]))
        src.set_rfdc(bool(spec_post["rfdc"]))
        src.set_bbdc(bool(spec_post["bbdc"]))


def build_flowgraph(profile: RadioProfile, direction: str, preflight: bool = True,
                    **overrides: Any) -> Any:
    """Construct (not start) the device flowgraph of ``profile`` for ``direction``.

    :param preflight: Run :func:`check_device` first (fast, clear errors before UHD/libiio
        get a chance to block).
    :param overrides: Replace constructor arguments (e.g. ``center_freq_hz`` for ``sigmf_tx``).
    :raises DeviceError: one line; never a traceback for absent or busy hardware.
    """
    spec = profile.flowgraph(direction)
    module = {"uhd": "uhd", "pluto": "iio"}.get(profile.kind, "zeromq")
    with _captured_stderr():
        _import_gr(module)
        _import_gr("zeromq")
    if preflight:
        if direction == "rx" or profile.kind == "zmq":  # these flowgraphs bind rx_endpoint
            err = check_bindable(profile.rx_endpoint)
            if err:
                raise DeviceError(f"cannot bind {profile.rx_endpoint} ({err}): another gsc "
                                  "running? stop it or change zmq.rx_endpoint", "busy")
        if profile.kind in ("uhd", "pluto"):
            check_device(profile)  # the sigmf source block validates its recording itself
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    try:
        mod = importlib.import_module(spec.module)
    except ImportError as e:
        raise DeviceError(f"flowgraph {spec.name} is not generated ({e}); run python3 -m "
                          "flowgraphs.device.build", "missing_software") from None
    cls = getattr(mod, spec.name)
    kwargs = {**spec.kwargs, **overrides}
    captured: list[str] = []
    error: DeviceError | None = None
    try:
        with _captured_stderr() as captured:
            tb = cls(**kwargs)
            _apply_post(tb, spec.post, profile)
    except Exception as e:
        from .sigmf_lite import RecordingError

        error = (DeviceError(str(e), "absent") if isinstance(e, RecordingError)
                 else translate_error(e, profile))
    if error is not None:
        # raised outside the except block: the half-built flowgraph (and the ZeroMQ socket
        # it may already have bound) is released with the original traceback
        raise error
    noise = "".join(captured).strip()
    if noise and os.environ.get("GSC_VERBOSE"):
        print(noise, file=sys.stderr)
    return tb


class UhdConsoleCounter:
    """Counts UHD's console markers (``U`` underrun, ``O`` overrun, ``L`` late, ``S``
    sequence error, ``D`` dropped) in text written to stderr, passing other text on.

    >>> c = UhdConsoleCounter()
    >>> c.feed("UU[INFO] [UHD] Under a bridge\\nOU")
    '[INFO] [UHD] Under a bridge\\n'
    >>> c.counts["U"], c.counts["O"]
    (3, 1)
    """

    MARKERS = "UOLSD"

    def __init__(self) -> None:
        self.counts = {m: 0 for m in self.MARKERS}
        self._in_line = False

    def feed(self, text: str) -> str:
        """Count markers in ``text``; return the rest (log lines) to forward."""
        out = []
        for ch in text:
            if self._in_line:
                out.append(ch)
                if ch == "\n":
                    self._in_line = False
            elif ch in self.MARKERS:
                self.counts[ch] += 1
            elif ch == "\n":
                continue
            else:
                self._in_line = True
                out.append(ch)
        return "".join(out)


@contextlib.contextmanager
def _count_uhd_markers(counter: UhdConsoleCounter) -> Iterator[None]:
    r, w = os.pipe()
    saved = os.dup(2)
    sys.stderr.flush()
    os.dup2(w, 2)
    os.close(w)

    def pump() -> None:
        with os.fdopen(r, "rb", buffering=0) as fh:
            while True:
                chunk = fh.read(4096)
                if not chunk:
                    break
                rest = counter.feed(chunk.decode("utf-8", "replace"))
                if rest:
                    os.write(saved, rest.encode())

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last writer: the pump ends
        t.join(timeout=2.0)
        os.close(saved)


def run_flowgraph(profile: RadioProfile, direction: str, duration_s: float | None = None,
                  stop: threading.Event | None = None, **overrides: Any) -> dict[str, Any]:
    """Build, start and run the device flowgraph until it ends, SIGINT/SIGTERM (main thread),
    ``duration_s`` or ``stop`` is set; returns a summary (``underruns``/``overruns`` for UHD,
    the emulator's counters for the ZeroMQ radio).
    """
    tb = build_flowgraph(profile, direction, **overrides)
    stop = stop if stop is not None else threading.Event()
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    counter = UhdConsoleCounter()
    t0 = time.monotonic()
    ctx = _count_uhd_markers(counter) if profile.kind == "uhd" else contextlib.nullcontext()
    try:
        with ctx:
            tb.start()
            waiter = threading.Thread(target=lambda: (tb.wait(), done.set()), daemon=True)
            waiter.start()
            while not stop.is_set() and not done.is_set():
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
                stop.wait(0.1)
            tb.stop()
            tb.wait()
    except Exception as e:
        raise translate_error(e, profile) from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    summary: dict[str, Any] = {"profile": profile.name, "kind": profile.kind,
                               "direction": direction,
                               "flowgraph": profile.flowgraph(direction).name,
                               "duration_s": round(time.monotonic() - t0, 3),
                               "finished": done.is_set()}
    if profile.kind == "uhd":
        summary["underruns"] = counter.counts["U"]
        summary["overruns"] = counter.counts["O"]
        summary["late"] = counter.counts["L"]
        summary["seq_errors"] = counter.counts["S"] + counter.counts["D"]
    channel = getattr(tb, "channel", None)
    if channel is not None and hasattr(channel, "stats"):
        summary["impairments"] = channel.stats()
    return summary


def record_iq(profile: RadioProfile, base: str, duration_s: float = 1.0,
              overwrite: bool = False) -> dict[str, Any]:
    """Record ``duration_s`` of the profile's received IQ into a SigMF recording.

    Runs the device RX flowgraph, pulls its IQ from ``rx_endpoint`` and writes ``base``
    (:class:`hardware.sigmf_lite.SigMFWriter`: device, rate, frequency, gain, time). For
    bench work: noise floor, receive level, CFO calibration tones (hardware/README.md).

    :returns: The run summary plus ``recording``, ``samples`` and the levels of
        :func:`hardware.calibration.iq_levels`.
    """
    import numpy as np
    import zmq

    from bridge.pmt import PmtError, parse_tagged

    from .calibration import iq_levels
    from .sigmf_lite import RecordingError, SigMFWriter

    want = int(round(duration_s * profile.samp_rate_hz))
    if want < 1:
        raise DeviceError("the recording duration must be positive", "failed")
    gain = profile.rx.get("gain_db")
    hw = f"{profile.label} ({profile.device.get('args') or profile.device.get('uri') or ''})"
    if profile.rx.get("antenna"):
        hw += f", {profile.rx['antenna']}"
    try:
        writer = SigMFWriter(base, sample_rate_hz=profile.samp_rate_hz,
                             center_freq_hz=profile.center_freq_hz, hw=hw,
                             extra_global={"gsc:profile": profile.name},
                             overwrite=overwrite)
    except RecordingError as e:
        raise DeviceError(str(e), "failed") from None
    if gain is not None:
        writer.capture["gsc:gain_db"] = float(gain)
    stop = threading.Event()
    result: dict[str, Any] = {}
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.update(run_flowgraph(profile, "rx", duration_s=duration_s + 30.0,
                                        stop=stop))
        except BaseException as e:  # reported by the caller
            errors.append(e)
            stop.set()

    sock = zmq.Context.instance().socket(zmq.PULL)
    sock.connect(profile.rx_endpoint)
    runner = threading.Thread(target=target, daemon=True)
    runner.start()
    got, chunks = 0, []
    deadline = time.monotonic() + duration_s + 20.0
    try:
        while got < want and time.monotonic() < deadline and not stop.is_set():
            if sock.poll(100):
                try:  # device flowgraphs send gr-zeromq tag headers (pass_tags)
                    a = parse_tagged(sock.recv()).items(np.complex64)[: want - got]
                except (PmtError, ValueError):
                    continue
                writer.write(a)
                chunks.append(a[:: max(1, len(a) // 256)])  # decimated copy for levels
                got += len(a)
    finally:
        stop.set()
        runner.join(timeout=10)
        sock.close(0)
        writer.close()
    if errors:
        raise errors[0]
    if got == 0:
        raise DeviceError(f"no samples arrived from {profile.rx_endpoint} within "
                          f"{duration_s + 20:g} s", "failed")
    result.update({"recording": base, "samples": got,
                   **iq_levels(np.concatenate(chunks))})
    return result


# ------------------------------------------------------------------------ command line


def _overrides(items: list[str]) -> dict[str, Any]:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise ProfileError(f"--set needs KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python3 -m hardware.device {find,check,run}``; exit 2 with one line on errors."""
    ap = argparse.ArgumentParser(prog="python3 -m hardware.device", description=__doc__
                                 .splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("find", help="list USRPs and IIO devices")
    f.add_argument("--json", action="store_true")
    f.add_argument("--timeout", type=float, default=10.0)
    c = sub.add_parser("check", help="is the profile's device there?")
    c.add_argument("profile")
    c.add_argument("--json", action="store_true")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--build", action="store_true",
                   help="also construct the device flowgraphs (opens the device)")
    r = sub.add_parser("run", help="run a device flowgraph")
    r.add_argument("profile")
    r.add_argument("--direction", choices=("tx", "rx"), required=True)
    r.add_argument("--duration", type=float, default=None, help="seconds (default: until "
                   "stopped or the flowgraph ends)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    rc = sub.add_parser("record", help="record received IQ into a SigMF recording")
    rc.add_argument("profile")
    rc.add_argument("out", help="recording base path (DIR/NAME)")
    rc.add_argument("--duration", type=float, default=1.0, help="seconds (default 1)")
    rc.add_argument("--overwrite", action="store_true")
    rc.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "find":
            res = find_devices(a.timeout)
            if a.json:
                print(json.dumps(res))
            else:
                for d in res["uhd"]:
                    print("USRP  " + ", ".join(f"{k}={v}" for k, v in d.items()))
                for d in res["iio"]:
                    print(f"IIO   {d['uri']}  {d['description']}")
                for n in res["notes"]:
                    print(f"note: {n}")
                if not res["uhd"] and not res["iio"]:
                    print("no USRP or IIO device found")
            return 0
        profile = load_profile(a.profile, _overrides(a.set))
        if a.cmd == "check":
            info = check_device(profile)
            if a.build:
                for d in ("tx", "rx"):
                    build_flowgraph(profile, d, preflight=False)
                info["built"] = True
            print(json.dumps(info) if a.json else f"ok: {profile.label}: {info['detail']}")
            return 0
        if a.cmd == "record":
            summary = record_iq(profile, a.out, a.duration, a.overwrite)
        else:
            summary = run_flowgraph(profile, a.direction, a.duration)
        print(json.dumps(summary))
        return 0
    except (DeviceError, ProfileError) as e:
        print(f"gsc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
