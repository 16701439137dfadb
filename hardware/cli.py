"""``gsc radio list`` and ``gsc radio check PROFILE`` (ML side; registered lazily).

Device discovery needs GNU Radio's Python (gr-uhd, libiio), so these commands run
``python3 -m hardware.device ...`` under the radio interpreter
(:func:`bridge.interpreters.find_radio_python`, ``GSC_RADIO_PYTHON`` overrides) and turn its
answer into text. Profiles, ZeroMQ endpoints and SigMF recordings are checked here directly.
Bad input, an absent or busy device, a broken recording or a missing GNU Radio each end as
one ``gsc: error: ...`` line and exit code 2 (via :class:`bridge.common.ConfigError`).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import click

from bridge.common import REPO_ROOT, ConfigError

from .profiles import ProfileError, RadioProfile, list_profiles, load_profile

__all__ = ["radio", "radio_list", "radio_check", "run_radio_side", "load_profile_spec"]

_NO_GR = ("no Python interpreter here imports GNU Radio, which radio discovery needs: install "
          "GNU Radio 3.10 (Debian/Ubuntu as root: apt-get install gnuradio python3-zmq "
          "libiio-utils uhd-host, or make setup) or set GSC_RADIO_PYTHON")


def _radio_python() -> str:
    from bridge.interpreters import find_radio_python

    info = find_radio_python()
    if not info or not info.get("gnuradio"):
        forced = os.environ.get("GSC_RADIO_PYTHON")
        if forced:
            why = (info or {}).get("gnuradio_error") or "it does not run"
            raise ConfigError(f"GSC_RADIO_PYTHON={forced} cannot import GNU Radio ({why}): "
                              "install GNU Radio 3.10 for it (apt-get install gnuradio "
                              "python3-zmq) or unset GSC_RADIO_PYTHON")
        raise ConfigError(_NO_GR)
    return info["executable"]


def run_radio_side(args: list[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """Run ``python3 -m hardware.device ARGS --json`` on the radio side; parsed JSON.

    :raises ConfigError: one line (the radio side's own error line when it has one).
    """
    exe = _radio_python()
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    try:
        res = subprocess.run([exe, "-m", "hardware.device", *args, "--json"], cwd=REPO_ROOT,
                             env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"the radio side did not answer within {timeout_s:g} s (a device "
                          "may hang: unplug and replug it, then retry)") from None
    except OSError as e:
        raise ConfigError(f"cannot start the radio interpreter {exe}: {e.strerror}") from None
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("gsc: error: ")]
    if res.returncode != 0:
        if lines:
            raise ConfigError(lines[-1][len("gsc: error: "):])
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise ConfigError(f"the radio side failed (exit {res.returncode}): {tail}")
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ConfigError("the radio side answered something that is not JSON") from None


def load_profile_spec(spec: str, sets: tuple[str, ...]) -> tuple[RadioProfile, str]:
    """Load a profile (ConfigError on problems) and the spec to hand to the radio side."""
    import yaml

    overrides: dict[str, Any] = {}
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set needs KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: cannot parse {value!r}") from None
    if spec.startswith("sigmf:"):
        remote = "sigmf:" + os.path.abspath(spec[len("sigmf:"):])
    elif os.path.isfile(spec):
        remote = os.path.abspath(spec)
    else:
        remote = spec
    try:
        return load_profile(spec, overrides or None), remote
    except ProfileError as e:
        raise ConfigError(str(e)) from None


@click.group("radio")
def radio() -> None:
    """Radios: list the attached USRPs/Plutos and the shipped profiles; check a profile."""


@radio.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for device discovery.")
def radio_list(as_json: bool, timeout: float) -> None:
    """Find USRPs (UHD) and PlutoSDRs (libiio); list the shipped radio profiles."""
    found = run_radio_side(["find", "--timeout", str(max(1.0, timeout / 2))], timeout)
    profiles = []
    for name in list_profiles():
        try:
            p = load_profile(name)
            profiles.append({"name": name, "kind": p.kind, "radio": p.label,
                             "samp_rate_hz": p.samp_rate_hz,
                             "center_freq_hz": p.center_freq_hz})
        except ProfileError as e:  # a shipped profile must load; show it anyway
            profiles.append({"name": name, "error": str(e)})
    if as_json:
        click.echo(json.dumps({"devices": found, "profiles": profiles}, indent=2))
        return
    uhd, iio = found.get("uhd", []), found.get("iio", [])
    plutos = [d for d in iio if d.get("pluto")]
    for d in uhd:
        desc = d.get("product") or d.get("type", "?")
        where = d.get("serial") or d.get("addr") or ""
        click.echo(f"USRP   {desc:<10} serial/addr {where:<16} args: "
                   + ",".join(f"{k}={v}" for k, v in d.items() if k in ("type", "serial",
                                                                          "addr")))
    for d in plutos:
        click.echo(f"Pluto  {d['uri']:<28} {d['description']}")
    others = [d for d in iio if not d.get("pluto")]
    for d in others:
        click.echo(f"IIO    {d['uri']:<28} {d['description']} (not a Pluto)")
    if not uhd and not plutos:
        click.echo("no radio found: no USRP answered UHD discovery and libiio found no "
                   "PlutoSDR (check cables and power; the zmq profiles need no hardware)")
    for note in found.get("notes", []):
        click.echo(f"note: {note}")
    click.echo("\nprofiles (gsc radio check NAME):")
    for p in profiles:
        if "error" in p:
            click.echo(f"  {p['name']:<14} INVALID: {p['error']}")
        else:
            click.echo(f"  {p['name']:<14} {p['kind']:<6} {p['radio']:<22} "
                       f"{p['samp_rate_hz'] / 1e6:g} MS/s at {p['center_freq_hz'] / 1e9:g} GHz")


@radio.command("check")
@click.argument("profile")
@click.option("--offline", is_flag=True, help="Validate the profile only; touch no device.")
@click.option("--build", is_flag=True,
              help="Also construct its device flowgraphs (opens the device).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a profile value, e.g. --set rx.gain_db=20 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--timeout", type=float, default=60.0, show_default=True)
def radio_check(profile: str, offline: bool, build: bool, sets: tuple[str, ...],
                as_json: bool, timeout: float) -> None:
    """Validate PROFILE (a shipped name, a YAML path, or sigmf:PATH) and find its device."""
    p, remote = load_profile_spec(profile, sets)
    result: dict[str, Any] = {"profile": p.to_dict(), "source": p.source, "device": None}
    if p.kind == "sigmf":
        from .sigmf_io import read_recording, recording_summary
        from .sigmf_lite import RecordingError

        if not offline:
            try:
                result["device"] = recording_summary(read_recording(p.device["path"]))
            except RecordingError as e:
                if p.source.startswith("sigmf:") or os.path.exists(
                        p.device["path"] + ".sigmf-meta"):
                    raise ConfigError(str(e)) from None
                result["device"] = {"path": p.device["path"], "note": "no recording yet "
                                    "(gsc tx will record into it)"}
    elif p.kind == "zmq":
        from .device import DeviceError, check_device

        if not offline:
            try:
                result["device"] = check_device(p)
            except DeviceError as e:
                raise ConfigError(str(e)) from None
    elif not offline:
        args = ["check", remote] + [a for s in sets for a in ("--set", s)]
        if build:
            args.append("--build")
        result["device"] = run_radio_side(args, timeout)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    for line in p.summary():
        click.echo(line)
    dev = result["device"]
    if offline:
        click.echo("profile ok (offline: no device checked)")
    elif p.kind == "sigmf":
        if "note" in dev:
            click.echo(f"recording: {dev['note']}")
        else:
            click.echo(f"recording ok: {dev['num_samples']} samples ({dev['duration_s']:.3f} s), "
                       f"{dev['frames']} frame annotations, {dev['datatype']}")
    else:
        click.echo(f"device ok: {dev.get('detail', '')}"
                   + (" (device flowgraphs built)" if dev.get("built") else ""))
