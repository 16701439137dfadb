"""Hostile input for the link configuration parsers (property-based, small budget).

Every input is answered (a value) or rejected with :class:`bridge.common.ConfigError`;
anything else (a bare ValueError, OverflowError, a hang building a huge SNR list) is a bug.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from bridge.common import ConfigError
from gsc_phy import config
from gsc_phy.config import LinkConfig

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))

_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["1e308", "-1e308", "1e-308", "nan", "inf", "0", "9" * 5000, "1_0", "0x10"]),
)
# text made of the characters these parsers split on, plus numbers and junk
_texts = st.one_of(
    st.text(max_size=40),
    st.lists(_numbers, min_size=1, max_size=4).flatmap(
        lambda ps: st.sampled_from([":", ",", "/", "x"]).map(lambda sep: sep.join(ps))
    ),
)


def answered_or_rejected(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return None


@FUZZ
@given(_texts)
def test_string_parsers(text):
    snr = answered_or_rejected(config.parse_snr_range, text)
    if snr is not None:
        assert 1 <= len(snr) <= 200 and all(math.isfinite(p) and abs(p) <= 100 for p in snr)
    mimo = answered_or_rejected(config.parse_mimo, text)
    if mimo is not None:
        assert all(1 <= a <= 16 for a in mimo)
    answered_or_rejected(config.parse_rate, text)
    pos = answered_or_rejected(config.parse_position, text, "--tx-pos")
    if pos is not None:
        assert len(pos) == 3 and all(math.isfinite(v) for v in pos)


@pytest.mark.parametrize("text", ids=lambda v: repr(v)[:30], argvalues=[
    "0:1e308:1e-308",  # infinitely many points: rejected before any list is built
    "0:100:1e-12",  # 1e14 points: rejected at once, not after building them
    "-1e308:1e308:1",
    "9" * 5000 + "x2",  # more digits than int() converts
    "2x" + "9" * 5000,
])
def test_range_bombs_rejected(text):
    for fn in (config.parse_snr_range, config.parse_mimo):
        answered_or_rejected(fn, text)


def _field_values(f: dataclasses.Field) -> st.SearchStrategy:
    """Values of the field's annotated type, edges included (what the CLI can pass)."""
    t = str(f.type)
    ints = st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, 2, 24, 25, 8448, 65536])
    floats = st.floats(allow_nan=True, allow_infinity=True)
    if t.startswith("int"):
        return ints | st.none() if "None" in t else ints
    if t == "float":
        return floats
    if t == "bool":
        return st.booleans()
    if t.startswith("str"):
        choices = [config.CHANNELS, list(config.MODULATIONS), config.PRECODERS,
                   config.ESTIMATORS, config.DETECTORS, config.RIS_PHASES, ["esno", "ebno"]]
        return st.sampled_from([c for cs in choices for c in cs]) | st.text(max_size=8)
    if t.startswith("tuple[float"):
        return st.none() | st.tuples(floats, floats, floats)
    if t.startswith("tuple[int, int]"):
        return st.tuples(ints, ints)
    if t.startswith("tuple[int"):
        return st.lists(ints, max_size=4).map(tuple)
    if t.startswith("list[float]"):
        return st.lists(floats, max_size=4)
    raise AssertionError(f"no strategy for {f.name}: {t}")


_FIELDS = [f for f in dataclasses.fields(LinkConfig)]


@FUZZ
@given(st.data())
def test_link_config_any_field_values(data):
    overrides = {}
    for f in data.draw(st.lists(st.sampled_from(_FIELDS), max_size=6, unique_by=id)):
        overrides[f.name] = data.draw(_field_values(f), label=f.name)
    cfg = answered_or_rejected(LinkConfig, **overrides)
    if cfg is not None:
        assert cfg.bits_per_symbol >= 1 and 0 < cfg.code_rate <= 1
        assert cfg.snr_db and all(math.isfinite(s) for s in cfg.snr_db)
        typing.cast(dict, cfg.to_dict())
