"""RF impairment emulator: what a real radio front end does to complex baseband IQ.

numpy only (1.24 and 2.x), so the same code runs under both interpreters and inside the GNU
Radio block ``gsc_impairments`` (``flowgraphs/device/gr_blocks.py``). The impairments are
applied in this order, each keeping its state across calls of :meth:`Impairments.process`,
so a stream cut into any chunks gives the same output as one call (to rounding):

1. **underruns** (TX side): every ~``underrun_interval_samples`` input samples (exponential
   intervals) ``underrun_length_samples`` zeros are inserted, as when a TX host falls behind;
2. **multipath**: FIR ``sum_k a_k x[n - d_k]`` with integer delays ``d_k`` (samples), gains
   ``a_k`` from ``multipath_gains_db`` / ``multipath_phases_deg``, normalised to unit energy;
3. **sampling-rate offset**: the output sample ``n`` is the input at time ``n (1 + sro_ppm
   1e-6)`` (16-tap Blackman-windowed sinc, 4096 polyphase branches; the receiver's sample
   clock is slower by ``sro_ppm`` for positive values, so a burst of ``L`` samples lasts
   ``L / (1 + sro_ppm 1e-6)`` output samples; same sign as ``flowgraphs.gsc_ofdm.channel``);
4. **carrier frequency offset** ``cfo_hz`` (rotation ``exp(j 2 pi cfo_hz n / samp_rate_hz)``)
   and **phase noise**: a Wiener phase with increments of variance ``2 pi linewidth / fs``
   (Lorentzian spectrum of 3-dB width ``phase_noise_linewidth_hz``);
5. **AWGN** of variance ``no = signal_power * 10^(-esno_db/10)`` per complex sample (``no/2``
   per real part, gsc's convention), when ``esno_db`` is set;
6. **IQ imbalance** of the receive mixer: ``I + j g (Q cos phi - I sin phi)`` with
   ``g = 10^(iq_gain_db/20)``, ``phi = iq_phase_deg``; equivalently ``mu z + nu conj(z)``,
   image rejection ratio ``|mu|^2/|nu|^2`` (:func:`image_rejection_ratio_db`);
7. **DC offset** ``dc_offset`` (complex, in sample units) added;
8. **AGC-like gain steps**: every ``agc_interval_samples`` the gain moves by
   ``+-agc_step_db`` (random sign, kept within ``+-agc_max_db``);
9. **overruns** (RX side): every ~``overrun_interval_samples`` samples
   ``overrun_length_samples`` samples are lost.

Every stage is off at its default. All randomness comes from ``seed``: one independent
generator per stage, so results do not depend on how the stream is chunked.

>>> imp = Impairments(ImpairmentConfig(samp_rate_hz=1e6, cfo_hz=1e3))
>>> y = imp.process(np.ones(4, np.complex64))
>>> bool(np.allclose(np.angle(y[1] / y[0]), 2 * np.pi * 1e3 / 1e6))
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

__all__ = [
    "ImpairmentError",
    "ImpairmentConfig",
    "Impairments",
    "apply_impairments",
    "image_rejection_ratio_db",
    "iq_imbalance_coefficients",
    "linewidth_from_dbc_hz",
    "SRO_HALF_TAPS",
]

#: Half length of the windowed-sinc interpolator of the sampling-rate offset (16 taps).
SRO_HALF_TAPS = 8
_MAX_SRO_PPM = 1000.0
_MAX_DELAY = 4096


class ImpairmentError(ValueError):
    """An impairment parameter is missing, of the wrong type or out of range (one line)."""


def iq_imbalance_coefficients(gain_db: float, phase_deg: float) -> tuple[complex, complex]:
    """``(mu, nu)`` of the IQ imbalance model ``y = mu z + nu conj(z)``.

    >>> mu, nu = iq_imbalance_coefficients(0.0, 0.0)
    >>> mu, nu
    ((1+0j), 0j)
    """
    g = 10.0 ** (gain_db / 20.0)
    phi = math.radians(phase_deg)
    mu = (1.0 + g * complex(math.cos(phi), -math.sin(phi))) / 2.0
    nu = (1.0 - g * complex(math.cos(phi), math.sin(phi))) / 2.0
    return mu, nu


def image_rejection_ratio_db(gain_db: float, phase_deg: float) -> float:
    """Image rejection ratio ``10 log10(|mu|^2/|nu|^2)`` of an IQ imbalance (``inf`` if none).

    >>> round(image_rejection_ratio_db(1.0, 3.0), 1)
    24.0
    """
    mu, nu = iq_imbalance_coefficients(gain_db, phase_deg)
    if abs(nu) == 0.0:
        return math.inf
    return 10.0 * math.log10(abs(mu) ** 2 / abs(nu) ** 2)


def linewidth_from_dbc_hz(dbc_hz: float, offset_hz: float) -> float:
    """Wiener phase-noise linewidth giving ``dbc_hz`` at ``offset_hz`` (``L(f) = b/(pi f^2)``).

    >>> round(linewidth_from_dbc_hz(-80.0, 10e3), 4)
    3.1416
    """
    return math.pi * offset_hz**2 * 10.0 ** (dbc_hz / 10.0)


def _num(name: str, value: Any, lo: float | None = None, hi: float | None = None,
         unit: str = "", lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ImpairmentError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except OverflowError:  # an integer beyond the float range
        digits = int(int(value).bit_length() * math.log10(2)) + 1
        raise ImpairmentError(f"{name} is an integer too large for a float "
                              f"(about {digits} digits)") from None
    if not math.isfinite(v):
        raise ImpairmentError(f"{name} must be finite, got {value!r}")
    if (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        brk = "(" if lo_open else "["
        raise ImpairmentError(
            f"{name} = {value!r} is out of range {brk}{lo_s}, {hi_s}]{(' ' + unit) if unit else ''}"
        )
    return v


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ImpairmentError(f"{name} must be an integer, got {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise ImpairmentError(f"{name} = {v} is out of range [{lo}, {hi}]")
    return v


def _complex(name: str, value: Any) -> complex:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        re_, im_ = (_num(f"{name}[{i}]", v) for i, v in enumerate(value))
        return complex(re_, im_)
    if isinstance(value, (complex, np.complexfloating)):
        c = complex(value)
        if not (math.isfinite(c.real) and math.isfinite(c.imag)):
            raise ImpairmentError(f"{name} must be finite, got {value!r}")
        return c
    if isinstance(value, str):
        try:
            return _complex(name, complex(value.replace(" ", "")))
        except ValueError:
            pass
        raise ImpairmentError(f"{name} must be a complex number or [re, im], got {value!r}")
    return complex(_num(name, value), 0.0)


@dataclass(frozen=True)
class ImpairmentConfig:
    """Validated parameters of :class:`Impairments` (all stages off by default).

    :param samp_rate_hz: Sample rate the Hz-valued parameters refer to.
    :param cfo_hz: Carrier frequency offset, ``|cfo_hz| < samp_rate_hz / 2``.
    :param sro_ppm: Sampling-rate offset in ppm, ``|sro_ppm| <= 1000``.
    :param phase_noise_linewidth_hz: Wiener phase-noise 3-dB linewidth (0 = off).
    :param iq_gain_db: Q/I amplitude imbalance, ``|.| <= 6`` dB.
    :param iq_phase_deg: Quadrature phase error, ``|.| <= 45`` degrees.
    :param dc_offset: Complex DC offset added (sample units), ``|.| <= 10``.
    :param multipath_delays_samples: Path delays (integer samples, 0..4096).
    :param multipath_gains_db: Path powers in dB (same length as the delays).
    :param multipath_phases_deg: Path phases (same length, or empty for all zero).
    :param agc_step_db: Size of one gain step (0 = off), ``<= 30`` dB.
    :param agc_interval_samples: Samples between gain steps (``>= 1`` when stepping).
    :param agc_max_db: The gain stays within ``+-agc_max_db``.
    :param underrun_interval_samples: Mean input samples between underruns (0 = off).
    :param underrun_length_samples: Zeros inserted per underrun.
    :param overrun_interval_samples: Mean samples between overruns (0 = off).
    :param overrun_length_samples: Samples lost per overrun.
    :param esno_db: Es/N0 of added AWGN (``None`` = no noise), -50..100 dB.
    :param signal_power: Reference signal power Es of ``esno_db`` (1 for gsc's unit-energy REs).
    :param seed: Seed of all random stages (``>= 0``).

    >>> try:
    ...     ImpairmentConfig(samp_rate_hz=1e6, cfo_hz=6e5)
    ... except ImpairmentError as e:
    ...     print(e)
    cfo_hz = 600000.0 is out of range [-500000, 500000] Hz
    """

    samp_rate_hz: float = 1.0e6
    cfo_hz: float = 0.0
    sro_ppm: float = 0.0
    phase_noise_linewidth_hz: float = 0.0
    iq_gain_db: float = 0.0
    iq_phase_deg: float = 0.0
    dc_offset: complex = 0j
    multipath_delays_samples: tuple[int, ...] = ()
    multipath_gains_db: tuple[float, ...] = ()
    multipath_phases_deg: tuple[float, ...] = ()
    agc_step_db: float = 0.0
    agc_interval_samples: int = 0
    agc_max_db: float = 10.0
    underrun_interval_samples: int = 0
    underrun_length_samples: int = 0
    overrun_interval_samples: int = 0
    overrun_length_samples: int = 0
    esno_db: float | None = None
    signal_power: float = 1.0
    seed: int = 0
    _taps: np.ndarray = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        fs = _num("samp_rate_hz", self.samp_rate_hz, 0.0, 1e11, "S/s", lo_open=True)
        s(self, "samp_rate_hz", fs)
        s(self, "cfo_hz", _num("cfo_hz", self.cfo_hz, -fs / 2, fs / 2, "Hz"))
        s(self, "sro_ppm", _num("sro_ppm", self.sro_ppm, -_MAX_SRO_PPM, _MAX_SRO_PPM, "ppm"))
        s(self, "phase_noise_linewidth_hz",
          _num("phase_noise_linewidth_hz", self.phase_noise_linewidth_hz, 0.0, fs / 10, "Hz"))
        s(self, "iq_gain_db", _num("iq_gain_db", self.iq_gain_db, -6.0, 6.0, "dB"))
        s(self, "iq_phase_deg", _num("iq_phase_deg", self.iq_phase_deg, -45.0, 45.0, "degrees"))
        dc = _complex("dc_offset", self.dc_offset)
        if abs(dc) > 10.0:
            raise ImpairmentError(f"dc_offset = {dc} is out of range (|dc_offset| <= 10)")
        s(self, "dc_offset", dc)
        delays = self._seq("multipath_delays_samples", self.multipath_delays_samples)
        gains = self._seq("multipath_gains_db", self.multipath_gains_db)
        phases = self._seq("multipath_phases_deg", self.multipath_phases_deg)
        delays = tuple(_int(f"multipath_delays_samples[{i}]", d, 0, _MAX_DELAY)
                       for i, d in enumerate(delays))
        gains = tuple(_num(f"multipath_gains_db[{i}]", g, -100.0, 40.0, "dB")
                      for i, g in enumerate(gains))
        phases = tuple(_num(f"multipath_phases_deg[{i}]", p, -360.0, 360.0, "degrees")
                       for i, p in enumerate(phases))
        if len(gains) != len(delays):
            raise ImpairmentError(
                f"multipath_gains_db has {len(gains)} entries but multipath_delays_samples "
                f"has {len(delays)}")
        if phases and len(phases) != len(delays):
            raise ImpairmentError(
                f"multipath_phases_deg has {len(phases)} entries, expected {len(delays)} or none")
        s(self, "multipath_delays_samples", delays)
        s(self, "multipath_gains_db", gains)
        s(self, "multipath_phases_deg", phases)
        s(self, "agc_step_db", _num("agc_step_db", self.agc_step_db, 0.0, 30.0, "dB"))
        s(self, "agc_max_db", _num("agc_max_db", self.agc_max_db, 0.0, 60.0, "dB"))
        s(self, "agc_interval_samples",
          _int("agc_interval_samples", self.agc_interval_samples, 0, 1 << 40))
        if self.agc_step_db > 0 and self.agc_interval_samples < 1:
            raise ImpairmentError("agc_step_db > 0 needs agc_interval_samples >= 1")
        if self.agc_step_db > self.agc_max_db:
            raise ImpairmentError(
                f"agc_step_db = {self.agc_step_db:g} exceeds agc_max_db = {self.agc_max_db:g}")
        for kind in ("underrun", "overrun"):
            iv = _int(f"{kind}_interval_samples", getattr(self, f"{kind}_interval_samples"),
                      0, 1 << 40)
            ln = _int(f"{kind}_length_samples", getattr(self, f"{kind}_length_samples"),
                      0, 1 << 24)
            if iv > 0 and ln < 1:
                raise ImpairmentError(f"{kind}_interval_samples > 0 needs "
                                      f"{kind}_length_samples >= 1")
            s(self, f"{kind}_interval_samples", iv)
            s(self, f"{kind}_length_samples", ln)
        if self.esno_db is not None:
            s(self, "esno_db", _num("esno_db", self.esno_db, -50.0, 100.0, "dB"))
        s(self, "signal_power", _num("signal_power", self.signal_power, 0.0, 1e6, lo_open=True))
        s(self, "seed", _int("seed", self.seed, 0, (1 << 63) - 1))
        if delays:
            amp = 10.0 ** (np.asarray(gains) / 20.0)
            ph = np.radians(np.asarray(phases)) if phases else np.zeros(len(delays))
            taps = np.zeros(max(delays) + 1, np.complex128)
            np.add.at(taps, np.asarray(delays), amp * np.exp(1j * ph))
            energy = float(np.sum(np.abs(taps) ** 2))
            if energy <= 0.0:
                raise ImpairmentError("multipath taps have zero energy")
            s(self, "_taps", taps / math.sqrt(energy))

    @staticmethod
    def _seq(name: str, value: Any) -> tuple:
        if value is None:
            return ()
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            raise ImpairmentError(f"{name} must be a list, got {value!r}")
        return tuple(value)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, samp_rate_hz: float | None = None,
                  seed: int | None = None) -> ImpairmentConfig:
        """Build from a mapping (a profile's ``impairments:`` section), rejecting unknown keys.

        Besides the field names, ``cfo_subcarriers`` with ``fft_size`` gives the CFO in
        subcarrier spacings (integer and fractional part: ``cfo_hz = cfo_subcarriers *
        samp_rate_hz / fft_size``), and ``dc_offset`` may be ``[re, im]``.

        >>> ImpairmentConfig.from_dict({"cfo_subcarriers": 2.5, "fft_size": 72},
        ...                            samp_rate_hz=2.16e6).cfo_hz
        75000.0
        """
        if not isinstance(data, Mapping) and data is not None:
            raise ImpairmentError(f"impairments must be a mapping, got {type(data).__name__}")
        d = dict(data or {})
        for key in d:
            if not isinstance(key, str):
                raise ImpairmentError(f"impairment names must be strings, got {key!r}")
        known = {f.name for f in fields(cls) if f.init}
        extra = {"cfo_subcarriers", "fft_size"}
        unknown = sorted(set(d) - known - extra)
        if unknown:
            raise ImpairmentError(
                f"unknown impairment {unknown[0]!r} (known: {', '.join(sorted(known | extra))})")
        if samp_rate_hz is not None and "samp_rate_hz" not in d:
            d["samp_rate_hz"] = samp_rate_hz
        if seed is not None and "seed" not in d:
            d["seed"] = seed
        if "cfo_subcarriers" in d:
            if "cfo_hz" in d:
                raise ImpairmentError("give either cfo_hz or cfo_subcarriers, not both")
            if "fft_size" not in d:
                raise ImpairmentError("cfo_subcarriers needs fft_size (subcarrier spacing = "
                                      "samp_rate_hz / fft_size)")
            n_fft = _int("fft_size", d.pop("fft_size"), 1, 1 << 20)
            sub = _num("cfo_subcarriers", d.pop("cfo_subcarriers"), -n_fft / 2, n_fft / 2)
            fs = _num("samp_rate_hz", d.get("samp_rate_hz", cls.samp_rate_hz), 0.0, 1e11,
                      "S/s", lo_open=True)
            d["cfo_hz"] = sub * fs / n_fft
        elif "fft_size" in d:
            raise ImpairmentError("fft_size is only used with cfo_subcarriers")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-friendly dict (complex ``dc_offset`` as ``[re, im]``, tuples as lists)."""
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        out["dc_offset"] = [self.dc_offset.real, self.dc_offset.imag]
        for k in ("multipath_delays_samples", "multipath_gains_db", "multipath_phases_deg"):
            out[k] = list(out[k])
        return out

    @property
    def multipath_taps(self) -> np.ndarray | None:
        """Unit-energy FIR taps of the multipath stage (``None`` when off)."""
        return None if self._taps is None else self._taps.copy()

    @property
    def noise_variance(self) -> float:
        """``no`` per complex sample (0 without noise)."""
        return 0.0 if self.esno_db is None else self.signal_power * 10.0 ** (-self.esno_db / 10)

    @property
    def is_identity(self) -> bool:
        """True when every stage is off (the output equals the input)."""
        return (self.cfo_hz == 0 and self.sro_ppm == 0 and self.phase_noise_linewidth_hz == 0
                and self.iq_gain_db == 0 and self.iq_phase_deg == 0 and self.dc_offset == 0
                and self._taps is None and self.agc_step_db == 0 and self.esno_db is None
                and self.underrun_interval_samples == 0 and self.overrun_interval_samples == 0)


def _blackman_sinc(frac: np.ndarray) -> np.ndarray:
    """[n, 2K] interpolation weights for fractional positions ``frac`` in [0, 1]."""
    k = np.arange(-SRO_HALF_TAPS + 1, SRO_HALF_TAPS + 1, dtype=np.float64)
    u = k[None, :] - frac[:, None]
    w = 0.42 + 0.5 * np.cos(np.pi * u / SRO_HALF_TAPS) + 0.08 * np.cos(2 * np.pi * u
                                                                        / SRO_HALF_TAPS)
    h = np.sinc(u) * w
    return h / h.sum(axis=1, keepdims=True)


#: Polyphase table of the SRO interpolator: _SRO_PHASES + 1 fractional positions.
_SRO_PHASES = 4096
_SRO_TABLE = _blackman_sinc(np.arange(_SRO_PHASES + 1) / _SRO_PHASES)


class _Gaps:
    """Insert zeros (underrun) or drop samples (overrun) at exponential intervals."""

    def __init__(self, mean_interval: int, length: int, insert: bool, rng: np.random.Generator):
        self.mean = mean_interval
        self.length = length
        self.insert = insert
        self.rng = rng
        self.countdown = self._draw()
        self.pending_drop = 0
        self.events = 0

    def _draw(self) -> int:
        return max(1, int(round(self.rng.exponential(self.mean))))

    def process(self, x: np.ndarray) -> np.ndarray:
        parts = []
        pos = 0
        n = len(x)
        while pos < n:
            if self.pending_drop:
                k = min(self.pending_drop, n - pos)
                pos += k
                self.pending_drop -= k
                continue
            take = min(self.countdown, n - pos)
            parts.append(x[pos:pos + take])
            pos += take
            self.countdown -= take
            if self.countdown == 0:
                self.events += 1
                self.countdown = self._draw()
                if self.insert:
                    parts.append(np.zeros(self.length, x.dtype))
                else:
                    self.pending_drop = self.length
        if not parts:
            return x[:0]
        return np.concatenate(parts)


class Impairments:
    """Stateful streaming impairment chain (see the module docstring for the model).

    :param config: An :class:`ImpairmentConfig` (or a mapping for
        :meth:`ImpairmentConfig.from_dict`).

    :input x: [n] complex samples (any chunk size; ``process`` keeps state between calls).
    :output: complex64 samples; the count differs from ``n`` with SRO, underruns and overruns
        (the SRO interpolator delays the stream by :data:`SRO_HALF_TAPS` samples until
        :meth:`flush`).

    >>> imp = Impairments({"iq_gain_db": 1.0, "iq_phase_deg": 3.0})
    >>> y = imp.process(np.exp(2j * np.pi * 0.1 * np.arange(1000)))
    >>> y.dtype, y.shape
    (dtype('complex64'), (1000,))
    """

    def __init__(self, config: ImpairmentConfig | Mapping[str, Any] | None = None) -> None:
        if config is None:
            config = ImpairmentConfig()
        elif not isinstance(config, ImpairmentConfig):
            config = ImpairmentConfig.from_dict(config)
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Back to the initial state (same random streams as a fresh instance)."""
        c = self.config
        ss = np.random.SeedSequence(c.seed)
        rngs = [np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(5)]
        self._rng_pn, self._rng_noise, self._rng_agc = rngs[0], rngs[1], rngs[2]
        self._under = (_Gaps(c.underrun_interval_samples, c.underrun_length_samples, True,
                             rngs[3]) if c.underrun_interval_samples else None)
        self._over = (_Gaps(c.overrun_interval_samples, c.overrun_length_samples, False,
                            rngs[4]) if c.overrun_interval_samples else None)
        taps = c._taps
        self._fir_hist = (np.zeros(len(taps) - 1, np.complex128) if taps is not None else None)
        # SRO: buffer of input samples starting at absolute index _sro_start (K zeros before 0)
        self._sro_buf = np.zeros(SRO_HALF_TAPS, np.complex128)
        self._sro_start = -SRO_HALF_TAPS
        self._sro_n = 0  # next output index
        self._rot_phase = 0.0  # CFO + phase noise, radians, kept in (-pi, pi]
        self._pn_phase = 0.0
        self._agc_db = 0.0
        self._agc_countdown = c.agc_interval_samples
        self.samples_in = 0
        self.samples_out = 0
        self.agc_steps = 0

    @property
    def stats(self) -> dict[str, int | float]:
        """Counters: samples in/out, underruns, overruns, AGC steps, current AGC gain (dB)."""
        return {
            "samples_in": self.samples_in,
            "samples_out": self.samples_out,
            "underruns": self._under.events if self._under else 0,
            "overruns": self._over.events if self._over else 0,
            "agc_steps": self.agc_steps,
            "agc_gain_db": self._agc_db,
        }

    # ---------------------------------------------------------------- stages

    def _multipath(self, x: np.ndarray) -> np.ndarray:
        taps = self.config._taps
        if taps is None:
            return x
        if len(taps) == 1:
            return x * taps[0]
        ext = np.concatenate([self._fir_hist, x])
        y = np.convolve(ext, taps)[len(taps) - 1:len(ext)]
        self._fir_hist = ext[len(ext) - (len(taps) - 1):]
        return y

    def _sro(self, x: np.ndarray, flush: bool = False) -> np.ndarray:
        ppm = self.config.sro_ppm
        if ppm == 0.0:
            return x
        k = SRO_HALF_TAPS
        buf = np.concatenate([self._sro_buf, x])
        if flush:
            buf = np.concatenate([buf, np.zeros(k, np.complex128)])
        last = self._sro_start + len(buf) - 1  # absolute index of the last sample held
        # produce outputs n while floor(n * r) + K <= last
        r = 1.0 + ppm * 1e-6
        n_end = int(math.floor((last - k) / r)) + 1
        n_end = max(n_end, self._sro_n)
        n = np.arange(self._sro_n, n_end, dtype=np.int64)
        if len(n):
            t = n.astype(np.float64) * r
            i0 = np.floor(t).astype(np.int64)
            # nearest of 4096 polyphase filters: timing error <= 1/8192 sample
            h = _SRO_TABLE[np.rint((t - i0) * _SRO_PHASES).astype(np.intp)]
            idx = (i0 - self._sro_start)[:, None] + np.arange(-k + 1, k + 1)[None, :]
            y = np.einsum("ij,ij->i", buf[idx], h)
            self._sro_n = n_end
        else:
            y = np.zeros(0, np.complex128)
        # keep what the next output still needs: from floor(n_end * r) - K + 1 on
        keep_from = int(math.floor(self._sro_n * r)) - k + 1
        drop = min(max(0, keep_from - self._sro_start), len(buf))
        self._sro_buf = buf[drop:]
        self._sro_start += drop
        if flush:
            self._sro_buf = np.zeros(k, np.complex128)
            self._sro_start = -k  # a new stream after a flush
            self._sro_n = 0
        return y

    def _rotate(self, x: np.ndarray) -> np.ndarray:
        c = self.config
        if (c.cfo_hz == 0.0 and c.phase_noise_linewidth_hz == 0.0) or len(x) == 0:
            return x
        m = len(x)
        w = 2.0 * math.pi * c.cfo_hz / c.samp_rate_hz
        phase = self._rot_phase + w * np.arange(m, dtype=np.float64)
        self._rot_phase = math.remainder(self._rot_phase + w * m, 2.0 * math.pi)
        if c.phase_noise_linewidth_hz > 0.0:
            sigma = math.sqrt(2.0 * math.pi * c.phase_noise_linewidth_hz / c.samp_rate_hz)
            walk = self._pn_phase + np.cumsum(self._rng_pn.standard_normal(m) * sigma)
            # the phase noise of sample n is the walk after n increments (sample 0 uses the
            # previous state): shift by one
            pn = np.concatenate([[self._pn_phase], walk[:-1]])
            self._pn_phase = float(walk[-1])
            phase = phase + pn
        return x * np.exp(1j * phase)

    def _noise(self, x: np.ndarray) -> np.ndarray:
        no = self.config.noise_variance
        if self.config.esno_db is None or len(x) == 0:
            return x
        z = self._rng_noise.standard_normal((len(x), 2)) @ np.array([1.0, 1j])
        return x + z * math.sqrt(no / 2.0)

    def _iq(self, x: np.ndarray) -> np.ndarray:
        c = self.config
        if c.iq_gain_db == 0.0 and c.iq_phase_deg == 0.0:
            return x
        mu, nu = iq_imbalance_coefficients(c.iq_gain_db, c.iq_phase_deg)
        return mu * x + nu * np.conj(x)

    def _agc(self, x: np.ndarray) -> np.ndarray:
        c = self.config
        if c.agc_step_db == 0.0 or len(x) == 0:
            return x
        out = np.empty_like(x)
        pos = 0
        while pos < len(x):
            take = min(self._agc_countdown, len(x) - pos)
            out[pos:pos + take] = x[pos:pos + take] * 10.0 ** (self._agc_db / 20.0)
            pos += take
            self._agc_countdown -= take
            if self._agc_countdown == 0:
                step = c.agc_step_db if self._rng_agc.random() < 0.5 else -c.agc_step_db
                if abs(self._agc_db + step) > c.agc_max_db + 1e-12:
                    step = -step
                self._agc_db += step
                self.agc_steps += 1
                self._agc_countdown = c.agc_interval_samples
        return out

    # ---------------------------------------------------------------- public

    def process(self, x: np.ndarray, flush: bool = False) -> np.ndarray:
        """Impair the next chunk of the stream.

        :param x: [n] complex samples.
        :param flush: End of stream: push the SRO interpolator's last samples out (the next
            call starts a new stream for the SRO stage).
        :output: complex64 samples.
        """
        x = np.asarray(x)
        if x.ndim != 1:
            raise ImpairmentError(f"impairments take a 1-D sample stream, got shape {x.shape}")
        if not np.iscomplexobj(x) and x.dtype.kind not in "fiu":
            raise ImpairmentError(f"impairments take complex samples, got dtype {x.dtype}")
        self.samples_in += len(x)
        y = x.astype(np.complex128)
        if self._under is not None:
            y = self._under.process(y)
        y = self._multipath(y)
        y = self._sro(y, flush=flush)
        y = self._rotate(y)
        y = self._noise(y)
        y = self._iq(y)
        if self.config.dc_offset != 0:
            y = y + self.config.dc_offset
        y = self._agc(y)
        if self._over is not None:
            y = self._over.process(y)
        y = y.astype(np.complex64)
        self.samples_out += len(y)
        return y

    def flush(self) -> np.ndarray:
        """The samples still held by the SRO interpolator (end of stream)."""
        return self.process(np.zeros(0, np.complex64), flush=True)


def apply_impairments(x: np.ndarray, config: ImpairmentConfig | Mapping[str, Any] | None = None,
                      **kw: Any) -> np.ndarray:
    """One-shot helper: impair a whole finite signal (flushing the SRO interpolator).

    :param x: [n] complex samples.
    :param config: An :class:`ImpairmentConfig` or a mapping; keyword arguments add to it.

    >>> y = apply_impairments(np.zeros(100, np.complex64), dc_offset=0.1 + 0.2j)
    >>> print(np.round(complex(y.mean()), 3))
    (0.1+0.2j)
    """
    if isinstance(config, ImpairmentConfig):
        if kw:
            d = config.to_dict()
            d.update(kw)
            config = ImpairmentConfig.from_dict(d)
    else:
        d = dict(config or {})
        d.update(kw)
        config = ImpairmentConfig.from_dict(d)
    imp = Impairments(config)
    y = imp.process(x, flush=True)
    return y
