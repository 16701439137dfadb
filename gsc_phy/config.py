"""Link configuration: one validated dataclass shared by ``gsc link``, tests and benchmarks.

Every invalid combination raises :class:`ConfigError` with one readable sentence; the CLI
turns it into a single ``gsc: error: ...`` line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from bridge.common import ConfigError

__all__ = [
    "LinkConfig",
    "MODULATIONS",
    "CHANNELS",
    "PRECODERS",
    "ESTIMATORS",
    "DETECTORS",
    "REPETITIONS",
    "parse_mimo",
    "parse_snr_range",
    "parse_rate",
    "parse_position",
]


#: modulation name -> (Sionna constellation type, bits per symbol)
MODULATIONS: dict[str, tuple[str, int]] = {
    "bpsk": ("pam", 1),
    "qpsk": ("qam", 2),
    "16qam": ("qam", 4),
    "64qam": ("qam", 6),
    "256qam": ("qam", 8),
}
CHANNELS = (
    ["awgn", "rayleigh"]
    + [f"tdl-{m}" for m in "abcde"]
    + [f"cdl-{m}" for m in "abcde"]
    + ["umi", "uma", "ris"]
)
PRECODERS = ("none", "svd", "zf", "rzf")
ESTIMATORS = ("perfect", "ls", "lmmse")
DETECTORS = ("lmmse", "kbest")
#: Slot aggregation factors of 38.214 (pdsch-AggregationFactor), 1 = none.
REPETITIONS = (1, 2, 4, 8)
RIS_PHASES = ("random", "cophase", "optimized")


def parse_mimo(text: str) -> tuple[int, int]:
    """Parse ``"NtxNr"`` (e.g. ``"2x2"``) into ``(num_tx_ant, num_rx_ant)``."""
    m = re.fullmatch(r"\s*(\d{1,6})\s*[xX]\s*(\d{1,6})\s*", text or "")
    if not m:
        raise ConfigError(f"--mimo must look like 2x2 (Nt x Nr), got {text!r}")
    nt, nr = int(m.group(1)), int(m.group(2))
    if nt < 1 or nr < 1:
        raise ConfigError(f"--mimo needs at least one antenna on each side, got {text!r}")
    if nt > 16 or nr > 16:
        raise ConfigError(f"--mimo supports up to 16x16, got {text!r}")
    return nt, nr


def parse_snr_range(text: str) -> list[float]:
    """Parse ``START:STOP:STEP`` (dB, STOP included) or a comma list into SNR points."""
    text = (text or "").strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) == 2:
                parts.append(1.0)
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if step == 0 or not all(math.isfinite(p) for p in parts):
                raise ConfigError(f"--snr step must be a finite non-zero number, got {text!r}")
            span = (stop - start) / step
            if not math.isfinite(span) or span > 1000:  # check before building the list
                raise ConfigError(f"--snr range {text!r} has too many points; 200 at most")
            n = math.floor(span + 1e-9) + 1
            points = [round(start + i * step, 6) for i in range(max(n, 0))]
        else:
            points = [float(p) for p in text.split(",") if p.strip()]
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError(
            f"--snr must be START:STOP:STEP in dB or a comma list, got {text!r}"
        ) from None
    if not points:
        raise ConfigError(f"--snr range {text!r} is empty (check the sign of STEP)")
    if len(points) > 200:
        raise ConfigError(f"--snr range {text!r} has {len(points)} points; 200 at most")
    if any(not math.isfinite(p) or abs(p) > 100 for p in points):
        raise ConfigError(f"--snr values must be finite and within +-100 dB, got {text!r}")
    return points


def parse_rate(text: str) -> float:
    """Parse a code rate given as ``0.5`` or ``1/2``."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            rate = float(num) / float(den)
        else:
            rate = float(text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"--rate must be a number like 0.5 or 1/2, got {text!r}") from None
    return rate


def parse_position(text: str, flag: str = "position") -> tuple[float, float, float]:
    """Parse ``"x,y,z"`` (metres) into a 3-tuple."""
    try:
        xyz = tuple(float(v) for v in text.split(","))
    except ValueError:
        xyz = ()
    if len(xyz) != 3 or not all(math.isfinite(v) for v in xyz):
        raise ConfigError(f"{flag} must be x,y,z in metres, got {text!r}")
    return xyz  # type: ignore[return-value]


@dataclass
class LinkConfig:
    """Everything that defines one simulated link.

    Defaults give a SISO 5G-LDPC (k=1024, n=2048) QPSK link over AWGN on a 14-symbol
    OFDM slot (72 subcarriers, 30 kHz, 64 used) with perfect CSI.
    """

    channel: str = "awgn"
    modulation: str = "qpsk"
    k: int | None = 1024
    n: int | None = 2048
    uncoded: bool = False
    num_tx_ant: int = 1
    num_rx_ant: int = 1
    num_streams: int | None = None
    precoder: str = "none"
    water_filling: bool = False
    detector: str = "lmmse"
    kbest_k: int = 16
    estimator: str = "perfect"
    ldpc_iterations: int = 20
    # slot aggregation (38.214 5.1.2.1, pdsch-AggregationFactor): every frame is sent in
    # this many consecutive slots over the same channel realisation, LLRs chase-combined
    repetitions: int = 1
    # 5G scrambling of the coded bits (38.211 7.3.1.1: c_init = n_rnti*2^15 + q*2^14 + n_id, q=0)
    n_rnti: int = 1
    n_id: int = 1
    # OFDM numerology
    fft_size: int = 72
    subcarrier_spacing_hz: float = 30e3
    cyclic_prefix_length: int = 6
    guard_carriers: tuple[int, int] = (4, 3)
    dc_null: bool = True
    pilot_symbols: tuple[int, ...] = (2, 11)
    carrier_frequency_hz: float = 3.5e9
    # channel model parameters
    delay_spread_s: float = 100e-9
    speed_mps: float = 0.0
    # RIS
    ris_elements: int = 0
    tx_pos: tuple[float, float, float] | None = None
    ris_pos: tuple[float, float, float] | None = None
    rx_pos: tuple[float, float, float] | None = None
    ris_phases: str = "cophase"
    ris_bits: int = 0
    ris_near_field: bool = False
    ris_direct_blocked: bool = False
    # simulation
    snr_db: list[float] = field(default_factory=lambda: [0.0, 2.0, 4.0])
    snr_kind: str = "esno"
    batch_size: int = 64
    max_frames: int = 2000
    target_errors: int = 100
    device: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    # ----------------------------------------------------------------- derived values
    @property
    def constellation_type(self) -> str:
        return MODULATIONS[self.modulation][0]

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation][1]

    @property
    def streams(self) -> int:
        """Spatial streams; default min(Nt, Nr) with a precoder, Nt without."""
        if self.num_streams is not None:
            return self.num_streams
        if self.precoder == "none":
            return self.num_tx_ant
        return min(self.num_tx_ant, self.num_rx_ant)

    @property
    def code_rate(self) -> float:
        """LDPC rate k/n (k includes the 24 CRC bits, as in Sionna); 1.0 when uncoded."""
        return 1.0 if self.uncoded else self.k / self.n

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["streams"] = self.streams
        d["code_rate"] = self.code_rate
        return d

    # ----------------------------------------------------------------- validation
    def validate(self) -> None:  # noqa: C901 - one check per line reads best here
        if self.modulation not in MODULATIONS:
            raise ConfigError(
                f"unknown modulation {self.modulation!r}; choose from {', '.join(MODULATIONS)}"
            )
        if self.channel not in CHANNELS:
            raise ConfigError(
                f"unknown channel {self.channel!r}; choose from {', '.join(CHANNELS)}"
            )
        if self.snr_kind not in ("esno", "ebno"):
            raise ConfigError(f"--snr-kind must be esno or ebno, got {self.snr_kind!r}")
        if self.precoder not in PRECODERS:
            raise ConfigError(f"unknown precoder {self.precoder!r}; choose from {PRECODERS}")
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"unknown estimator {self.estimator!r}; choose from {ESTIMATORS}")
        if self.detector not in DETECTORS:
            raise ConfigError(f"unknown detector {self.detector!r}; choose from {DETECTORS}")
        if self.num_tx_ant < 1 or self.num_rx_ant < 1:
            raise ConfigError("MIMO needs at least one antenna on each side")
        s = self.streams
        if not 1 <= s <= min(self.num_tx_ant, self.num_rx_ant) and self.precoder != "none":
            raise ConfigError(
                f"{s} streams do not fit a {self.num_tx_ant}x{self.num_rx_ant} link "
                f"(at most min(Nt, Nr) = {min(self.num_tx_ant, self.num_rx_ant)})"
            )
        if self.precoder == "none" and s != self.num_tx_ant:
            raise ConfigError(
                f"without a precoder every TX antenna carries one stream: --streams must be "
                f"{self.num_tx_ant}"
            )
        if self.precoder == "none" and s > self.num_rx_ant:
            raise ConfigError(
                f"{s} unprecoded streams cannot be separated by {self.num_rx_ant} RX antennas; "
                "add RX antennas or use --precoder svd"
            )
        if self.precoder in ("zf", "rzf") and not s == self.num_rx_ant <= self.num_tx_ant:
            raise ConfigError(
                f"--precoder {self.precoder} sends one stream per RX antenna: it needs "
                f"streams = Nr <= Nt, got {s} streams on {self.num_tx_ant}x{self.num_rx_ant}"
            )
        if self.water_filling and self.precoder != "svd":
            raise ConfigError("--water-filling needs --precoder svd")
        if self.detector == "kbest" and self.kbest_k < 1:
            raise ConfigError("--kbest-k must be >= 1")
        if not self.uncoded:
            if self.k is None or self.n is None:
                raise ConfigError("coded links need k and n (or --rate), or pass --uncoded")
            if self.k <= 24:
                raise ConfigError(f"k={self.k} must exceed the 24 CRC bits")
            if self.k >= self.n:
                raise ConfigError(
                    f"code rate k/n = {self.k}/{self.n} must be below 1 (use --uncoded for none)"
                )
            if self.k > 8448:
                raise ConfigError(f"5G LDPC supports k <= 8448, got k={self.k}")
            if self.n > 316800:
                raise ConfigError(f"n={self.n} is too large for one 5G LDPC codeword")
            if self.k / self.n < 1 / 5:
                raise ConfigError(f"5G LDPC supports rates >= 1/5, got {self.k}/{self.n}")
            m = self.bits_per_symbol
            if self.n % m:
                lo, hi = self.n - self.n % m, self.n - self.n % m + m
                raise ConfigError(
                    f"n={self.n} is not a multiple of the {m} bits per {self.modulation} "
                    f"symbol: use --n {lo} or --n {hi}"
                )
        if self.repetitions not in REPETITIONS:
            raise ConfigError(f"--repetitions must be one of {', '.join(map(str, REPETITIONS))} "
                              f"(5G slot aggregation factors), got {self.repetitions!r}")
        if not (isinstance(self.n_rnti, int) and 0 <= self.n_rnti <= 65535
                and isinstance(self.n_id, int) and 0 <= self.n_id <= 1023):
            raise ConfigError(
                f"scrambling needs n_rnti in 0..65535 and n_id in 0..1023, got "
                f"n_rnti={self.n_rnti!r}, n_id={self.n_id!r}"
            )
        if self.fft_size < 8 or self.cyclic_prefix_length < 0:
            raise ConfigError("fft_size must be >= 8 and the cyclic prefix >= 0")
        if self.cyclic_prefix_length >= self.fft_size:
            raise ConfigError("the cyclic prefix must be shorter than the FFT")
        if sum(self.guard_carriers) + int(self.dc_null) >= self.fft_size - 2:
            raise ConfigError("guard carriers leave no subcarriers for data")
        if any(not 0 <= p < 14 for p in self.pilot_symbols):
            raise ConfigError("pilot OFDM symbol indices must be within the 14-symbol slot")
        if self.estimator != "perfect" and not self.pilot_symbols:
            raise ConfigError(f"--estimator {self.estimator} needs pilot OFDM symbols")
        if not all(0 < v < math.inf for v in (self.subcarrier_spacing_hz,
                                               self.carrier_frequency_hz)):
            raise ConfigError("subcarrier spacing and carrier frequency must be positive")
        if not all(0 <= v < math.inf for v in (self.delay_spread_s, self.speed_mps)):
            raise ConfigError("delay spread and speed must be finite and >= 0")
        if self.channel == "ris" or self.ris_elements:
            self._validate_ris()
        if not self.snr_db:
            raise ConfigError("the SNR range is empty")
        if not all(-100 <= v <= 100 for v in self.snr_db):  # NaN fails too
            raise ConfigError("SNR values must be finite and within +-100 dB")
        if self.batch_size < 1 or self.max_frames < 1 or self.target_errors < 1:
            raise ConfigError("--batch, --max-frames and --target-errors must be >= 1")

    def _validate_ris(self) -> None:
        if self.ris_elements < 1:
            raise ConfigError("the ris channel needs --ris N with N >= 1 elements")
        if self.ris_elements > 65536:
            raise ConfigError(f"--ris {self.ris_elements}: at most 65536 elements")
        missing = [
            flag
            for flag, val in (
                ("--tx-pos", self.tx_pos),
                ("--ris-pos", self.ris_pos),
                ("--rx-pos", self.rx_pos),
            )
            if val is None
        ]
        if missing:
            raise ConfigError(
                f"--ris {self.ris_elements} needs its geometry: give {', '.join(missing)} "
                "(x,y,z in metres)"
            )
        if self.ris_phases not in RIS_PHASES:
            raise ConfigError(f"--ris-phases must be one of {RIS_PHASES}")
        if not 0 <= self.ris_bits <= 8:
            raise ConfigError("--ris-bits must be 0 (continuous) to 8")
        if self.channel != "ris":
            self.channel = "ris"
