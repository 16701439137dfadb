"""RF impairment emulator (hardware/impairments.py): each impairment checked numerically.

Pure numpy: runs under both interpreters.
"""

import math

import numpy as np
import pytest

from hardware.impairments import (
    SRO_HALF_TAPS,
    ImpairmentConfig,
    ImpairmentError,
    Impairments,
    apply_impairments,
    image_rejection_ratio_db,
    iq_imbalance_coefficients,
    linewidth_from_dbc_hz,
)

pytestmark = pytest.mark.both

FS = 2.16e6


def tone(n, f_cyc, amp=1.0):
    return (amp * np.exp(2j * np.pi * f_cyc * np.arange(n))).astype(np.complex64)


def noise(n, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(
        np.complex64)


def test_defaults_are_identity():
    x = noise(1000)
    cfg = ImpairmentConfig()
    assert cfg.is_identity
    np.testing.assert_array_equal(apply_impairments(x, cfg), x)


def test_cfo_rotates_by_expected_phase_per_sample():
    cfo = 12_345.0
    x = np.ones(5000, np.complex64)
    y = apply_impairments(x, samp_rate_hz=FS, cfo_hz=cfo).astype(np.complex128)
    step = np.angle(y[1:] * np.conj(y[:-1]))
    np.testing.assert_allclose(step, 2 * np.pi * cfo / FS, atol=1e-6)
    assert abs(y[0] - 1) < 1e-6  # the rotation starts at phase 0


def test_cfo_in_subcarrier_spacings_integer_and_fractional():
    cfg = ImpairmentConfig.from_dict({"cfo_subcarriers": -2.7, "fft_size": 72},
                                     samp_rate_hz=FS)
    assert cfg.cfo_hz == pytest.approx(-2.7 * FS / 72)
    # a tone on subcarrier 5 lands between subcarriers 2 and 3 after -2.7 spacings
    n = 72 * 50
    y = Impairments(cfg).process(tone(n, 5 / 72)).astype(np.complex128)
    f = np.angle(np.sum(y[1:] * np.conj(y[:-1]))) / (2 * np.pi) * 72
    assert f == pytest.approx(5 - 2.7, abs=1e-6)


@pytest.mark.parametrize("ppm", [50.0, -50.0, 400.0])
def test_sro_scales_time_and_frequency(ppm):
    n, f0 = 200_000, 0.05
    y = apply_impairments(tone(n, f0), samp_rate_hz=FS, sro_ppm=ppm).astype(np.complex128)
    r = 1 + ppm * 1e-6
    # output sample k is the input at time k*r: length n/r, tone at f0*r
    assert abs(len(y) - n / r) <= 1
    inner = y[SRO_HALF_TAPS * 2:-SRO_HALF_TAPS * 2]
    k = np.arange(SRO_HALF_TAPS * 2, len(y) - SRO_HALF_TAPS * 2)
    slope = np.polyfit(k, np.unwrap(np.angle(inner)), 1)[0] / (2 * np.pi)
    assert slope == pytest.approx(f0 * r, rel=1e-8)
    # and the waveform itself is the resampled tone to the interpolator's accuracy (-70 dB)
    assert np.max(np.abs(inner - np.exp(2j * np.pi * f0 * r * k))) < 1e-3


def test_sro_moves_a_burst_by_the_expected_number_of_samples():
    ppm, pos, length = 50.0, 200_000, 256
    x = np.zeros(pos + 2000, np.complex64)
    x[pos:pos + length] = noise(length, seed=5)
    y = apply_impairments(x, sro_ppm=ppm)
    ref = x[pos:pos + length]
    corr = np.abs(np.correlate(y[pos - 50:pos + 50 + length], ref, mode="valid"))
    found = pos - 50 + int(np.argmax(corr))
    # the burst starting at input time pos appears at output index pos / (1 + ppm 1e-6)
    assert found == round(pos / (1 + ppm * 1e-6)) == pos - 10


def test_phase_noise_increment_variance_matches_linewidth():
    beta = 500.0
    y = apply_impairments(np.ones(200_000, np.complex64), samp_rate_hz=FS,
                          phase_noise_linewidth_hz=beta, seed=4).astype(np.complex128)
    inc = np.angle(y[1:] * np.conj(y[:-1]))
    assert np.var(inc) == pytest.approx(2 * np.pi * beta / FS, rel=0.03)
    assert np.allclose(np.abs(y), 1.0, atol=1e-6)
    assert linewidth_from_dbc_hz(-80.0, 10e3) == pytest.approx(math.pi * 1e8 * 1e-8)


@pytest.mark.parametrize("gain_db,phase_deg", [(1.0, 3.0), (-0.5, 1.0), (2.0, -5.0)])
def test_iq_imbalance_image_rejection_ratio(gain_db, phase_deg):
    n, k = 4096, 300  # an integer number of cycles: the image sits on bin -k exactly
    y = apply_impairments(tone(n, k / n), iq_gain_db=gain_db, iq_phase_deg=phase_deg)
    spec = np.abs(np.fft.fft(y.astype(np.complex128))) ** 2
    irr_measured = 10 * np.log10(spec[k] / spec[n - k])
    g = 10 ** (gain_db / 20)
    phi = math.radians(phase_deg)
    irr_theory = 10 * math.log10((1 + g * g + 2 * g * math.cos(phi))
                                 / (1 + g * g - 2 * g * math.cos(phi)))
    assert irr_measured == pytest.approx(irr_theory, abs=0.01)
    assert image_rejection_ratio_db(gain_db, phase_deg) == pytest.approx(irr_theory)
    # the model is I unchanged, Q scaled by g and skewed by phi
    z = noise(100, seed=1).astype(np.complex128)
    mu, nu = iq_imbalance_coefficients(gain_db, phase_deg)
    w = mu * z + nu * np.conj(z)
    np.testing.assert_allclose(w.real, z.real, atol=1e-12)
    np.testing.assert_allclose(w.imag, g * (z.imag * math.cos(phi) - z.real * math.sin(phi)),
                               atol=1e-12)


def test_one_db_three_degrees_is_about_24_db_image_rejection():
    assert image_rejection_ratio_db(1.0, 3.0) == pytest.approx(23.99, abs=0.01)
    assert image_rejection_ratio_db(0.0, 0.0) == math.inf


def test_dc_offset_mean():
    y = apply_impairments(noise(200_000, seed=2), dc_offset=[0.05, -0.03])
    m = complex(np.mean(y.astype(np.complex128)))
    assert abs(m - (0.05 - 0.03j)) < 0.006  # 4 sigma of the mean of unit-power noise


def test_multipath_impulse_response_is_normalised_taps():
    cfg = ImpairmentConfig(multipath_delays_samples=(0, 3, 7),
                           multipath_gains_db=(0.0, -3.0, -10.0),
                           multipath_phases_deg=(0.0, 90.0, 180.0))
    x = np.zeros(32, np.complex64)
    x[0] = 1
    h = Impairments(cfg).process(x)
    amp = 10 ** (np.array([0.0, -3.0, -10.0]) / 20) * np.exp(1j * np.radians([0, 90, 180]))
    amp /= np.sqrt(np.sum(np.abs(amp) ** 2))
    expected = np.zeros(32, complex)
    expected[[0, 3, 7]] = amp
    np.testing.assert_allclose(h, expected, atol=1e-6)
    assert np.sum(np.abs(h) ** 2) == pytest.approx(1.0, abs=1e-6)


def test_awgn_variance_matches_esno():
    y = apply_impairments(np.zeros(200_000, np.complex64), esno_db=15.0, seed=9)
    no = 10 ** (-15 / 10)
    assert np.mean(np.abs(y) ** 2) == pytest.approx(no, rel=0.02)
    assert np.var(y.real) == pytest.approx(no / 2, rel=0.03)  # no/2 per real part


def test_agc_gain_steps():
    step, interval, gmax = 2.0, 1000, 4.0
    y = apply_impairments(np.ones(50_000, np.complex64), agc_step_db=step,
                          agc_interval_samples=interval, agc_max_db=gmax, seed=6)
    g_db = 20 * np.log10(np.abs(y.astype(np.complex128)))
    seg = g_db.reshape(-1, interval)
    assert np.allclose(seg, seg[:, :1], atol=1e-4)  # constant within each interval
    levels = seg[:, 0]
    assert levels[0] == pytest.approx(0.0, abs=1e-4)
    np.testing.assert_allclose(np.abs(np.diff(levels)), step, atol=1e-4)  # one step each
    assert np.max(np.abs(levels)) <= gmax + 1e-4
    assert len(set(np.round(levels, 3))) >= 3  # it moves


def test_underruns_insert_zeros_and_overruns_drop_samples():
    x = np.ones(100_000, np.complex64)
    imp = Impairments({"underrun_interval_samples": 5000, "underrun_length_samples": 40,
                       "seed": 3})
    y = imp.process(x)
    events = imp.stats["underruns"]
    assert 10 <= events <= 35
    assert len(y) == len(x) + 40 * events
    zero = np.abs(y) == 0
    edges = np.flatnonzero(np.diff(zero.astype(int)) == 1) + 1
    assert len(edges) == events and all(np.all(zero[e:e + 40]) for e in edges)
    imp = Impairments({"overrun_interval_samples": 5000, "overrun_length_samples": 30,
                       "seed": 3})
    y = imp.process(np.arange(100_000).astype(np.complex64))
    assert len(y) == 100_000 - 30 * imp.stats["overruns"]
    jumps = np.diff(y.real)
    assert np.count_nonzero(jumps != 1) == imp.stats["overruns"]
    assert set(jumps[jumps != 1]) == {31.0}


def full_config(seed=3):
    return ImpairmentConfig(
        samp_rate_hz=FS, cfo_hz=1234.0, sro_ppm=37.0, phase_noise_linewidth_hz=100.0,
        iq_gain_db=1.0, iq_phase_deg=3.0, dc_offset=0.01 + 0.02j,
        multipath_delays_samples=(0, 3), multipath_gains_db=(0.0, -3.0), agc_step_db=1.0,
        agc_interval_samples=5000, agc_max_db=3.0, underrun_interval_samples=7000,
        underrun_length_samples=50, overrun_interval_samples=9000, overrun_length_samples=20,
        esno_db=20.0, seed=seed)


def test_chunked_stream_equals_one_call_and_seed_is_deterministic():
    x = noise(60_000, seed=0)
    a = Impairments(full_config())
    y1 = np.concatenate([a.process(x), a.flush()])
    b = Impairments(full_config())
    rng = np.random.default_rng(1)
    parts, i = [], 0
    while i < len(x):
        k = int(rng.integers(1, 4000))
        parts.append(b.process(x[i:i + k]))
        i += k
    parts.append(b.flush())
    y2 = np.concatenate(parts)
    assert len(y1) == len(y2)
    np.testing.assert_allclose(y1, y2, atol=1e-5)
    assert a.stats == b.stats
    y3 = apply_impairments(x, full_config())
    np.testing.assert_array_equal(y1, y3)
    y4 = apply_impairments(x, full_config(seed=4))
    assert len(y4) != len(y3) or not np.allclose(y3, y4)
    a.reset()
    np.testing.assert_array_equal(np.concatenate([a.process(x), a.flush()]), y1)


def test_config_round_trips_through_dict():
    cfg = full_config()
    assert ImpairmentConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("kw,needle", [
    ({"cfo_hz": 2e6, "samp_rate_hz": 1e6}, "cfo_hz"),
    ({"cfo_hz": float("nan")}, "cfo_hz must be finite"),
    ({"cfo_hz": "fast"}, "cfo_hz must be a number"),
    ({"sro_ppm": 5000}, "sro_ppm"),
    ({"samp_rate_hz": 0}, "samp_rate_hz"),
    ({"phase_noise_linewidth_hz": -1}, "phase_noise_linewidth_hz"),
    ({"iq_gain_db": 7}, "iq_gain_db"),
    ({"iq_phase_deg": 60}, "iq_phase_deg"),
    ({"dc_offset": [1, 2, 3]}, "dc_offset"),
    ({"dc_offset": 100}, "dc_offset"),
    ({"multipath_delays_samples": [0, 2], "multipath_gains_db": [0]}, "multipath_gains_db"),
    ({"multipath_delays_samples": [0, -1], "multipath_gains_db": [0, 0]}, "delays"),
    ({"multipath_delays_samples": [0.5], "multipath_gains_db": [0]}, "integer"),
    ({"multipath_delays_samples": "0,1", "multipath_gains_db": [0]}, "must be a list"),
    ({"agc_step_db": 1}, "agc_interval_samples"),
    ({"agc_step_db": 5, "agc_interval_samples": 10, "agc_max_db": 2}, "exceeds agc_max_db"),
    ({"underrun_interval_samples": 100}, "underrun_length_samples"),
    ({"overrun_length_samples": -1}, "overrun_length_samples"),
    ({"esno_db": 500}, "esno_db"),
    ({"seed": -1}, "seed"),
    ({"cfo_subcarriers": 1.5}, "fft_size"),
    ({"cfo_subcarriers": 1.5, "fft_size": 72, "cfo_hz": 3}, "not both"),
    ({"cfo_subcarriers": 50, "fft_size": 72}, "cfo_subcarriers"),
    ({"cfo": 3}, "unknown impairment 'cfo'"),
    # found by benchmarks/fuzz_parsers.py: mixed key types, integers beyond float range
    ({"cfo": 3, 7: 1}, "impairment names must be strings, got 7"),
    ({"cfo_hz": 10**400}, "cfo_hz is an integer too large for a float (about 401 digits)"),
    ({"dc_offset": [0, -(10**400)]}, "dc_offset[1] is an integer too large"),
    ({"cfo_subcarriers": 10**5000, "fft_size": 72}, "cfo_subcarriers is an integer too large"),
])
def test_bad_parameters_give_one_line_naming_the_parameter(kw, needle):
    with pytest.raises(ImpairmentError) as ei:
        ImpairmentConfig.from_dict(kw)
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg


def test_bad_input_shape():
    with pytest.raises(ImpairmentError):
        Impairments().process(np.zeros((2, 2), np.complex64))
