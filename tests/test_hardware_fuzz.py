"""Hostile input for the radio-side readers (property-based, small budget; both interpreters).

Every input is answered or rejected with the module's own error type:

- SigMF recordings (:func:`hardware.sigmf_lite.read_recording`, then reading samples):
  :class:`hardware.sigmf_lite.RecordingError`, for corrupted, truncated and spliced files;
- radio profiles (:func:`hardware.profiles.parse_profile` on random mappings,
  :func:`hardware.profiles.load_profile` on random YAML text): :class:`ProfileError`.

Anything else (KeyError, TypeError, OverflowError, RecursionError ...) is a crash: a bug.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile

import numpy as np
import pytest
import yaml

from hardware import profiles
from hardware.profiles import ProfileError
from hardware.sigmf_lite import RecordingError, SigMFWriter, read_recording

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.both

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=3),
    max_leaves=8,
)


# ------------------------------------------------------------------ SigMF


@pytest.fixture(scope="module")
def seed_recording():
    """A small valid recording (meta bytes, data bytes) to mutate."""
    with tempfile.TemporaryDirectory() as d:
        w = SigMFWriter(os.path.join(d, "seed"), sample_rate_hz=1e6, center_freq_hz=2.4e9,
                        datatype="ci16_le")
        w.write((np.arange(64) * (1 + 1j) / 64).astype(np.complex64))
        w.annotate(4, 16, label="gsc-frame")
        w.close()
        with open(os.path.join(d, "seed.sigmf-meta"), "rb") as fh:
            meta = fh.read()
        with open(os.path.join(d, "seed.sigmf-data"), "rb") as fh:
            data = fh.read()
    return meta, data


def read_all(meta: bytes, data: bytes | None):
    """Write a recording, open it and read every sample; None when rejected cleanly."""
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "r")
        with open(base + ".sigmf-meta", "wb") as fh:
            fh.write(meta)
        if data is not None:
            with open(base + ".sigmf-data", "wb") as fh:
                fh.write(data)
        try:
            rec = read_recording(base)
            x = rec.samples(0)
            rec.samples(rec.num_samples // 2, 3)
            return rec, x
        except RecordingError as e:
            assert str(e) and "\n" not in str(e)
            return None


def _mutate_bytes(data: bytes, draw) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "splice"]))
        if op == "flip" and buf:
            buf[draw(st.integers(0, len(buf) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            buf = buf[: draw(st.integers(0, len(buf)))]
        elif op == "insert":
            i = draw(st.integers(0, len(buf)))
            buf[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "splice" and buf:  # a piece of the file copied over another place
            i, j = sorted(draw(st.lists(st.integers(0, len(buf)), min_size=2, max_size=2)))
            k = draw(st.integers(0, len(buf)))
            buf[k:k + j - i] = buf[i:j]
    return bytes(buf)


@FUZZ
@given(st.data())
def test_sigmf_corrupted_files(seed_recording, data):
    meta, samples = seed_recording
    which = data.draw(st.sampled_from(["meta", "data", "both", "no-data"]))
    if which in ("meta", "both"):
        meta = _mutate_bytes(meta, data.draw)
    if which in ("data", "both"):
        samples = _mutate_bytes(samples, data.draw)
    read_all(meta, None if which == "no-data" else samples)


@FUZZ
@given(st.data())
def test_sigmf_any_metadata_values(seed_recording, data):
    """Valid JSON whose fields hold any value: types, ranges, missing sections."""
    meta_bytes, samples = seed_recording
    meta = json.loads(meta_bytes)
    for _ in range(data.draw(st.integers(1, 3))):
        section = data.draw(st.sampled_from(["global", "captures", "annotations", "top"]))
        value = data.draw(json_values)
        if section == "top":
            key = data.draw(st.sampled_from(["global", "captures", "annotations"]))
            if data.draw(st.booleans()):
                meta.pop(key, None)
            else:
                meta[key] = value
        elif section == "global" and isinstance(meta.get("global"), dict):
            key = data.draw(st.sampled_from(sorted(meta["global"]) + ["core:num_channels",
                                                                      "core:sha512"]))
            meta["global"][key] = value
        elif isinstance(meta.get(section), list) and meta[section]:
            entry = meta[section][0]
            if isinstance(entry, dict):
                key = data.draw(st.sampled_from(sorted(entry) + ["core:sample_count",
                                                                 "core:header_bytes"]))
                entry[key] = value
            meta[section].append(copy.deepcopy(entry))
    read_all(json.dumps(meta).encode(), samples)


@pytest.mark.parametrize("meta", ids=lambda v: repr(v)[:30], argvalues=[
    b"[" * 100_000 + b"]" * 100_000,  # nesting bomb: json recursion limit
    b'{"global": ' * 50_000,
    # found by fuzzing: numbers beyond float (OverflowError) or beyond int() (ValueError)
    b'{"global": {"core:datatype": "cf32_le", "core:sample_rate": 1' + b"0" * 400
    + b'}, "captures": [], "annotations": []}',
    b'{"global": {"core:datatype": "cf32_le", "core:sample_rate": ' + b"9" * 5000
    + b'}, "captures": [], "annotations": []}',
    b"\xff\xfe{}",
    b"",
])
def test_sigmf_metadata_bombs(meta, seed_recording):
    assert read_all(meta, seed_recording[1]) is None


# ------------------------------------------------------------------ radio profiles


def _shipped() -> list[dict]:
    out = []
    for name in profiles.list_profiles():
        with open(profiles.profile_path(name), encoding="utf-8") as fh:
            out.append(yaml.safe_load(fh))
    return out


SHIPPED = _shipped()
_yaml_keys = st.text(max_size=8) | st.integers(-5, 5) | st.none() | st.booleans()
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**1100), 2**1100)
    | st.floats() | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_yaml_keys, kids, max_size=3),
    max_leaves=8,
)


def parsed_or_rejected(fn, *args):
    try:
        return fn(*args)
    except ProfileError as e:
        assert str(e) and "\n" not in str(e)
        return None


@FUZZ
@given(st.sampled_from(SHIPPED), st.data())
def test_profiles_any_values(profile, data):
    """Shipped profiles with keys replaced, added or removed (any YAML value or key type)."""
    p = copy.deepcopy(profile)
    for _ in range(data.draw(st.integers(1, 3))):
        node = p
        while isinstance(node, dict) and node and data.draw(st.booleans()):
            child = node[data.draw(st.sampled_from(sorted(node, key=repr)))]
            if not isinstance(child, dict):
                break
            node = child
        if not isinstance(node, dict):
            break
        keys = sorted(node, key=repr)
        op = data.draw(st.sampled_from(["set", "add", "drop"]))
        if op == "set" and keys:
            node[data.draw(st.sampled_from(keys))] = data.draw(yaml_values)
        elif op == "add":
            node[data.draw(_yaml_keys)] = data.draw(yaml_values)
        elif keys:
            node.pop(data.draw(st.sampled_from(keys)))
    parsed_or_rejected(profiles.parse_profile, p, "fuzz.yaml")


@FUZZ
@given(st.sampled_from(SHIPPED), st.data())
def test_profiles_from_mangled_yaml_text(profile, data):
    text = yaml.safe_dump(profile).encode()
    raw = _mutate_bytes(text, data.draw)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "p.yaml")
        with open(path, "wb") as fh:
            fh.write(raw)
        parsed_or_rejected(profiles.load_profile, path)


@pytest.mark.parametrize("text", ids=lambda v: repr(v)[:30], argvalues=[
    "[" * 20_000 + "]" * 20_000,  # nesting bomb
    "a: &a [*a]",  # self-referencing alias
    "name: x\nkind: zmq\nsamp_rate_hz: " + "9" * 5000 + "\ncenter_freq_hz: 1e9\n",
    "!!python/object:os.system {}",  # safe_load refuses it
    # found by fuzzing: huge integers in an impairment (float overflow in the emulator's
    # checks) and in a string field (str() refuses > 4300 digits)
    "name: x\nkind: zmq\nsamp_rate_hz: 1e6\ncenter_freq_hz: 1e9\nimpairments:\n  cfo_hz: 1"
    + "0" * 400 + "\n",
    "name: x\nkind: zmq\nsamp_rate_hz: 1e6\ncenter_freq_hz: 1e9\ndescription: [" + "9" * 4000
    + "]\n",
    "\x00\x01",
])
def test_profile_yaml_bombs(text, tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(text, encoding="utf-8")
    assert parsed_or_rejected(profiles.load_profile, str(path)) is None
