"""Modulation-and-coding schemes (MCS) and genie link adaptation for gsc's PHY.

The table follows 3GPP TS 38.214 Table 5.1.3.1-2 (the 256-QAM PDSCH table; modulation
order and target rate read from Sionna's :func:`sionna.phy.nr.utils.decode_mcs_index`)
with two changes forced by gsc's 5G LDPC (rates >= 1/5): MCS 0 (rate 120/1024) is left
out and MCS 1 (rate 193/1024) is raised to rate 1/5. Below MCS 1 the table continues as 5G
does for coverage, with slot aggregation (38.214 5.1.2.1, ``pdsch-AggregationFactor`` 2, 4,
8): ``MCS1x2``, ``MCS1x4``, ``MCS1x8`` send each MCS-1 frame in 2, 4 or 8 slots and
chase-combine them (effective rates 1/10, 1/20, 1/40; see :class:`gsc_phy.link.Link`).

One MCS = one codeword per 14-symbol slot: ``n`` = the coded bits one slot carries
(``streams x data REs x bits/symbol``: 1536/3072/4608/6144 bits for QPSK/16/64/256-QAM on
the default SISO grid, no filler), ``k = round(R n)`` (CRC-24A included, as ``LinkConfig.k``).

**Link adaptation is genie-aided**: the transmitter is assumed to know the *average* Es/N0
of the link (not the fading realisation) and picks the highest-rate MCS whose block error
rate at that SNR, *measured* with :class:`gsc_phy.link.Link` and stored in
``mcs_thresholds.json`` (written by ``benchmarks/calibrate_mcs.py``), is below the target
(10 %). This is the usual assumption when separation baselines are compared with joint
source-channel schemes; a real link would add CSI feedback delay and outer-loop margins
(``backoff_db``).

.. code-block:: python

    from gsc_phy.mcs import select_mcs
    mcs = select_mcs(12.0, "awgn")
    print(mcs.name, mcs.modulation, mcs.code_rate(), mcs.link_config().k)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
from dataclasses import dataclass

import numpy as np

from bridge.common import ConfigError

from .config import LinkConfig
from .frame import FrameFormat

__all__ = [
    "Mcs",
    "MCS_TABLE",
    "SINGLE_SLOT_TABLE",
    "AGGREGATION_FACTORS",
    "THRESHOLDS_PATH",
    "TARGET_BLER",
    "load_thresholds",
    "threshold_db",
    "bler_crossing_db",
    "expected_bler",
    "select_mcs",
    "mcs_by_index",
    "calibrated_profiles",
    "profile_name",
    "shannon_snr_db",
]

#: Where ``benchmarks/calibrate_mcs.py`` writes the measured thresholds.
THRESHOLDS_PATH = pathlib.Path(__file__).with_name("mcs_thresholds.json")
#: Block error rate the stored thresholds are measured at.
TARGET_BLER = 0.1

_MODULATION_BY_ORDER = {2: "qpsk", 4: "16qam", 6: "64qam", 8: "256qam"}
_MIN_RATE = 1.0 / 5.0


@dataclass(frozen=True)
class Mcs:
    """One modulation-and-coding scheme.

    :param index: MCS index in 38.214 Table 5.1.3.1-2.
    :param modulation: gsc modulation name (``qpsk`` .. ``256qam``).
    :param bits_per_symbol: Modulation order Qm.
    :param target_rate: Target code rate R (k/n, CRC included) used by gsc.
    :param table_rate: R of the 3GPP table (differs from ``target_rate`` only for MCS 1).
    :param repetitions: Slot aggregation factor (1: none; 2, 4, 8: every frame in that many
        slots, chase-combined).
    """

    index: int
    modulation: str
    bits_per_symbol: int
    target_rate: float
    table_rate: float
    repetitions: int = 1

    @property
    def key(self) -> str:
        """Identifier in tables and calibration files: ``"13"``, ``"1x4"``."""
        return str(self.index) if self.repetitions == 1 else f"{self.index}x{self.repetitions}"

    @property
    def name(self) -> str:
        return f"MCS{self.key}"

    @property
    def spectral_efficiency(self) -> float:
        """Nominal bits per data resource element, Qm x R / repetitions."""
        return self.bits_per_symbol * self.target_rate / self.repetitions

    def codeword(self, base: LinkConfig | None = None) -> tuple[int, int]:
        """``(k, n)`` for one codeword per slot of ``base``'s grid (k includes the CRC)."""
        base = base or LinkConfig()
        probe = dataclasses.replace(base, modulation=self.modulation, uncoded=True)
        n = FrameFormat.from_config(probe).coded_bits_per_frame  # one slot when uncoded
        k = max(int(round(self.target_rate * n)), math.ceil(n * _MIN_RATE))
        return min(k, 8448), n

    def code_rate(self, base: LinkConfig | None = None) -> float:
        """Actual k/n after rounding k to whole bits."""
        k, n = self.codeword(base)
        return k / n

    def link_config(self, base: LinkConfig | None = None, **overrides) -> LinkConfig:
        """``base`` (default: ``LinkConfig()``) with this MCS's modulation, k and n."""
        base = base or LinkConfig()
        k, n = self.codeword(base)
        return dataclasses.replace(
            base, modulation=self.modulation, k=k, n=n, uncoded=False,
            repetitions=self.repetitions, **overrides
        )

    def payload_bits_per_channel_use(self, base: LinkConfig | None = None) -> float:
        """Payload bits (CRC excluded) per complex channel use, all overheads counted."""
        ff = FrameFormat.from_config(self.link_config(base))
        return ff.payload_bits_per_frame / ff.channel_uses_per_frame


#: Slot aggregation factors below MCS 1, most robust first.
AGGREGATION_FACTORS = (8, 4, 2)


def _build_table() -> tuple[Mcs, ...]:
    from sionna.phy.nr.utils import decode_mcs_index

    table = []
    for index in range(1, 28):
        qm, rate = decode_mcs_index(index, table_index=2, is_pusch=False)
        qm, rate = int(qm), float(rate)
        table.append(
            Mcs(index, _MODULATION_BY_ORDER[qm], qm, max(rate, _MIN_RATE), rate)
        )
    aggregated = [dataclasses.replace(table[0], repetitions=r) for r in AGGREGATION_FACTORS]
    return tuple(aggregated + table)


#: MCS 1x8, 1x4, 1x2 (slot aggregation), then MCS 1..27 of 38.214 Table 5.1.3.1-2: most
#: robust first.
MCS_TABLE: tuple[Mcs, ...] = _build_table()
#: The entries without slot aggregation (what the streaming link can send).
SINGLE_SLOT_TABLE: tuple[Mcs, ...] = tuple(m for m in MCS_TABLE if m.repetitions == 1)


def mcs_by_index(index: int | str) -> Mcs:
    """The table entry with 38.214 index ``index`` (1..27) or key (``"1x4"``)."""
    for mcs in MCS_TABLE:
        if mcs.key == str(index):
            return mcs
    raise ValueError(f"MCS {index} is not in gsc's table (1x8, 1x4, 1x2, 1..27)")


def shannon_snr_db(bits_per_channel_use: float) -> float:
    """Es/N0 (dB) at which the AWGN capacity log2(1+snr) equals ``bits_per_channel_use``."""
    return 10.0 * math.log10(2.0**bits_per_channel_use - 1.0)


def profile_name(channel: str, estimator: str = "perfect") -> str:
    """Key of a calibration profile: ``"tdl-a"`` (perfect CSI) or ``"tdl-a+ls"``."""
    return channel if estimator == "perfect" else f"{channel}+{estimator}"


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_thresholds(path: str | pathlib.Path | None = None) -> dict:
    """The calibration document (see ``benchmarks/calibrate_mcs.py``)."""
    path = pathlib.Path(path or THRESHOLDS_PATH)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `.venv/bin/python benchmarks/calibrate_mcs.py`"
        )
    return _load(str(path.resolve()))


def calibrated_profiles(thresholds: dict | None = None) -> list[str]:
    """Profiles (channel[+estimator]) with measured thresholds."""
    return sorted((thresholds or load_thresholds())["profiles"])


def bler_crossing_db(points: list[list[float]], target: float) -> float | None:
    """Es/N0 (dB) where a measured BLER curve first drops to ``target``.

    ``points`` are ``[snr_db, bler, blocks]``; log(BLER) is interpolated linearly between
    the last point above and the first point at or below the target (zero counts are
    floored at half an error). ``None`` when the points do not bracket the target.
    """
    pts = sorted(points)
    for (s0, b0, n0), (s1, b1, n1) in zip(pts, pts[1:], strict=False):
        if b0 > target >= b1:
            l0 = math.log(max(b0, 0.5 / n0))
            l1 = math.log(max(b1, 0.5 / n1))
            lt = math.log(target)
            if l0 == l1:
                return float(s1)
            return float(s0 + (s1 - s0) * (l0 - lt) / (l0 - l1))
    if pts and pts[0][1] <= target and pts[0][0] <= -20:  # works at any practical SNR
        return float(pts[0][0])
    return None


def threshold_db(
    mcs: Mcs,
    channel: str = "awgn",
    estimator: str = "perfect",
    target_bler: float = TARGET_BLER,
    thresholds: dict | None = None,
) -> float:
    """Measured Es/N0 (dB) at which ``mcs`` reaches ``target_bler`` on ``channel``."""
    doc = thresholds or load_thresholds()
    profile = profile_name(channel, estimator)
    if profile not in doc["profiles"]:
        raise ConfigError(
            f"no MCS thresholds measured for {profile!r} (have: "
            f"{', '.join(calibrated_profiles(doc))}); run benchmarks/calibrate_mcs.py "
            f"--channels {channel} --estimator {estimator}"
        )
    entry = doc["profiles"][profile]["mcs"].get(mcs.key)
    if entry is None:
        raise ConfigError(f"{mcs.name} was not calibrated for {profile!r}")
    if math.isclose(target_bler, doc["target_bler"]):
        value = entry["threshold_db"]
    else:
        value = bler_crossing_db(entry["points"], target_bler)
    if value is None:
        raise ConfigError(
            f"the calibration points of {mcs.name} on {profile!r} do not bracket "
            f"BLER {target_bler:g}; calibrate at that target"
        )
    return float(value)


def select_mcs(
    snr_db: float,
    channel: str = "awgn",
    target_bler: float = TARGET_BLER,
    estimator: str = "perfect",
    backoff_db: float = 0.0,
    thresholds: dict | None = None,
    table: tuple[Mcs, ...] = MCS_TABLE,
) -> Mcs | None:
    """Genie link adaptation: the highest-rate MCS whose measured BLER at ``snr_db`` is below
    ``target_bler``, or ``None`` when even the most robust one misses it.

    The transmitter knows the average Es/N0 (``snr_db``) exactly; ``backoff_db`` subtracts
    a margin (e.g. for imperfect CSI at the transmitter). Monotone: a higher SNR never gets
    a lower spectral efficiency.

    :param snr_db: Average Es/N0 in dB.
    :param channel: Channel model name (``awgn``, ``tdl-a``, ``rayleigh``: what was measured).
    :param target_bler: Block error rate target.
    :param estimator: Receiver channel estimator of the calibration profile.
    :param backoff_db: Margin subtracted from ``snr_db``.
    :param thresholds: Calibration document; default ``gsc_phy/mcs_thresholds.json``.
    :param table: MCS candidates.

    .. code-block:: python

        >>> from gsc_phy.mcs import select_mcs
        >>> select_mcs(-10.0, "awgn") is None
        True
    """
    best: Mcs | None = None
    for mcs in table:
        thr = threshold_db(mcs, channel, estimator, target_bler, thresholds)
        if thr <= snr_db - backoff_db and (
            best is None or mcs.spectral_efficiency > best.spectral_efficiency
        ):
            best = mcs
    return best


def expected_bler(
    mcs: Mcs,
    snr_db: float,
    channel: str = "awgn",
    estimator: str = "perfect",
    thresholds: dict | None = None,
) -> float:
    """BLER of ``mcs`` at ``snr_db`` from the calibration points (log-linear interpolation,
    clamped to the measured range; zero error counts floored at half an error)."""
    doc = thresholds or load_thresholds()
    threshold_db(mcs, channel, estimator, thresholds=doc)  # raises a clear error if absent
    entry = doc["profiles"][profile_name(channel, estimator)]["mcs"][mcs.key]
    pts = sorted(entry["points"])
    s = np.array([p[0] for p in pts])
    lb = np.log(np.maximum([p[1] for p in pts], [0.5 / p[2] for p in pts]))
    return float(np.exp(np.interp(snr_db, s, lb)))
