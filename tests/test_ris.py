"""Tests of the RIS channel model and phase configuration (gsc_phy.ris)."""

import math

import numpy as np
import pytest
import torch
from sionna.phy.channel import ApplyOFDMChannel
from sionna.phy.constants import SPEED_OF_LIGHT

from gsc_phy.config import parse_position
from gsc_phy.ris import (
    RISChannel,
    RISGeometry,
    RISPhaseController,
    capacity_objective,
    cophase_phases,
    optimize_phases_capacity,
    quantize_phases,
    random_phases,
    ris_grid,
)

FC = 3.5e9
SCS = 30e3


def freqs(fft_size: int, scs: float = SCS) -> torch.Tensor:
    return (torch.arange(fft_size) - fft_size // 2) * scs


def snr_gain(h: torch.Tensor) -> torch.Tensor:
    """Received SNR relative to the direct link: mean |h|^2 over subcarriers, per example."""
    return (h.abs() ** 2).mean(dim=tuple(range(1, h.dim())))


def blocked_geometry(side: int, **kw) -> RISGeometry:
    base = dict(
        tx_pos_m=(0.0, -20.0, 5.0),
        ris_pos_m=(10.0, 0.0, 5.0),
        rx_pos_m=(0.0, 20.0, 8.0),
        num_rows=side,
        num_cols=side,
        carrier_frequency_hz=FC,
        direct_path_blocked=True,
        ris_normal=(-1.0, 0.2, 0.1),  # not specular: co-phasing phases vary over the RIS
    )
    base.update(kw)
    return RISGeometry(**base)


def test_cophased_gain_grows_as_n_squared():
    f = freqs(64)
    sizes = [4, 8, 16, 32]
    results = {}
    for near in (False, True):
        gains, random_gains = [], []
        for side in sizes:
            ch = RISChannel(blocked_geometry(side, near_field=near), precision="double")
            h_d, h_ru, h_br = ch.paths(1, f)
            g_co = snr_gain(ch.cascade(h_d, h_ru, h_br, cophase_phases(h_d, h_ru, h_br, f)))
            gen = torch.Generator().manual_seed(side)
            rnd = random_phases(200, side * side, gen, dtype=torch.float64)
            g_rnd = snr_gain(ch.cascade(h_d, h_ru, h_br, rnd)).mean()
            gains.append(float(g_co[0]))
            random_gains.append(float(g_rnd))
        n_db = 10 * np.log10(np.square(sizes))
        slope = np.polyfit(n_db, 10 * np.log10(gains), 1)[0]
        slope_rnd = np.polyfit(n_db, 10 * np.log10(random_gains), 1)[0]
        results[near] = (slope, slope_rnd)
        # coherent combining: N^2; random phases: incoherent, N
        assert abs(slope - 2.0) < 0.2, (near, slope)
        assert abs(slope_rnd - 1.0) < 0.2, (near, slope_rnd)
    print("N^2 slopes (far, near):", results)


def test_single_element_amplitude_and_delay_follow_the_model():
    """One far-field element: |h| = dx dy d0 sqrt(cos_t cos_r) / (lam d_t d_r) and the
    phase slope over frequency gives the excess delay (d_t + d_r - d0) / c."""
    g = blocked_geometry(1)
    ch = RISChannel(g, precision="double")
    f = freqs(128, 120e3)
    h = ch(1, 1, f, torch.zeros(1))[0, 0, 0, 0, 0, 0]
    t, s, r = (np.asarray(p) for p in (g.tx_pos_m, g.ris_pos_m, g.rx_pos_m))
    d_t, d_r, d0 = np.linalg.norm(t - s), np.linalg.norm(r - s), np.linalg.norm(r - t)
    cos_t, cos_r = (t - s) @ g.normal / d_t, (r - s) @ g.normal / d_r
    lam = SPEED_OF_LIGHT / FC
    expected = (lam / 2) ** 2 * d0 * math.sqrt(cos_t * cos_r) / (lam * d_t * d_r)
    np.testing.assert_allclose(h.abs().numpy(), expected, rtol=1e-9)
    phase = np.unwrap(torch.angle(h).numpy())
    slope = np.polyfit(f.numpy(), phase, 1)[0]
    np.testing.assert_allclose(-slope / (2 * np.pi), (d_t + d_r - d0) / SPEED_OF_LIGHT, rtol=1e-6)


def test_optimized_and_cophased_beat_random_phases():
    f = freqs(32)
    ch = RISChannel(blocked_geometry(8), precision="double")
    h_d, h_ru, h_br = ch.paths(1, f)
    gen = torch.Generator().manual_seed(1)
    rnd = random_phases(100, 64, gen, dtype=torch.float64)
    g_rnd = 10 * math.log10(float(snr_gain(ch.cascade(h_d, h_ru, h_br, rnd)).mean()))
    for strategy in ("cophase", "optimized"):
        ctrl = RISPhaseController(strategy, snr_db=0.0, num_iter=30, precision="double")
        g = 10 * math.log10(float(snr_gain(ch.cascade(h_d, h_ru, h_br, ctrl(h_d, h_ru, h_br, f)))))
        # coherent vs incoherent combining of 64 elements: 10 log10(64) = 18 dB in theory
        assert g - g_rnd > 15.0, (strategy, g, g_rnd)

    # with the direct path present, co-phasing adds the RIS coherently to it
    g2 = blocked_geometry(8, direct_path_blocked=False, tx_pos_m=(9.0, -1.0, 5.0))
    ch2 = RISChannel(g2, precision="double")
    h_d, h_ru, h_br = ch2.paths(1, f)
    g_co = float(snr_gain(ch2.cascade(h_d, h_ru, h_br, cophase_phases(h_d, h_ru, h_br, f))))
    g_rnd = float(snr_gain(ch2.cascade(h_d, h_ru, h_br, rnd)).mean())
    assert 10 * math.log10(g_co / g_rnd) > 3.0, (g_co, g_rnd)


def test_quantization_loss_matches_sinc_squared():
    """Large N, random non-specular geometries and RIS orientations: the co-phasing
    quantisation errors are spread uniformly over [-pi/2^b, pi/2^b], so the power loss is
    -10 log10(sinc^2(pi/2^b)). Per geometry the coherent sum of N = 4096 elements deviates
    from its mean by about std(cos e) / (sqrt(N) E[cos e]) < 1 % (< 0.07 dB for b = 1);
    the mean over 12 geometries is well inside 0.3 dB, while a wrong number of levels
    (e.g. 2^(b+1)) would miss by >= 0.7 dB."""
    rng = np.random.default_rng(7)
    f = torch.zeros(1)
    losses = {1: [], 2: [], 3: []}
    for _ in range(12):
        normal = np.array([1.0, 0.0, 0.0])
        # TX and RX at random directions in front of the RIS (normal +x), 20-60 m away
        pos = []
        for _ in range(2):
            az, el = rng.uniform(-1.2, 1.2), rng.uniform(-0.6, 0.6)
            d = rng.uniform(20, 60)
            pos.append(d * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)]))
        g = RISGeometry(
            tx_pos_m=tuple(pos[0]),
            ris_pos_m=(0.0, 0.0, 0.0),
            rx_pos_m=tuple(pos[1]),
            num_rows=64,
            num_cols=64,
            carrier_frequency_hz=FC,
            ris_normal=tuple(normal),
            ris_rotation_deg=float(rng.uniform(0, 90)),
            direct_path_blocked=True,
        )
        ch = RISChannel(g, precision="double")
        h_d, h_ru, h_br = ch.paths(1, f)
        theta = cophase_phases(h_d, h_ru, h_br, f)
        p_cont = float(snr_gain(ch.cascade(h_d, h_ru, h_br, theta)))
        for b in losses:
            p_q = float(snr_gain(ch.cascade(h_d, h_ru, h_br, quantize_phases(theta, b))))
            losses[b].append(10 * math.log10(p_cont / p_q))
    measured = {}
    for b, values in losses.items():
        x = math.pi / 2**b
        theory = -10 * math.log10((math.sin(x) / x) ** 2)
        measured[b] = (float(np.mean(values)), theory)
        assert abs(np.mean(values) - theory) < 0.3, (b, np.mean(values), theory)
    print("quantisation loss dB (measured, theory):", measured)


def test_quantize_phases_levels():
    theta = torch.linspace(-7.0, 7.0, 1001, dtype=torch.float64)
    for b in (1, 2, 3):
        q = quantize_phases(theta, b)
        step = 2 * math.pi / 2**b
        levels = torch.unique(torch.round(q / step))
        assert len(levels) == 2**b and float(q.min()) >= 0 and float(q.max()) < 2 * math.pi
        err = torch.remainder(q - theta + math.pi, 2 * math.pi) - math.pi
        assert float(err.abs().max()) <= step / 2 + 1e-9
    assert torch.equal(quantize_phases(theta, None), theta)
    with pytest.raises(ValueError):
        quantize_phases(theta, 0)


def test_mimo_optimizer_increases_capacity():
    g = RISGeometry(
        tx_pos_m=(0.7, -0.5, 2.0),  # RIS close to the TX: its path matters
        ris_pos_m=(0.0, 0.0, 2.0),
        rx_pos_m=(3.0, 20.0, 1.5),
        num_rows=8,
        num_cols=8,
        carrier_frequency_hz=FC,
        num_tx_ant=2,
        num_rx_ant=2,
        ris_normal=(1.0, 0.0, 0.0),
        near_field=True,
    )
    f = freqs(16, 240e3)
    ch = RISChannel(g, precision="double")
    h_d, h_ru, h_br = ch.paths(1, f)
    snr_db = 10.0
    gen = torch.Generator().manual_seed(3)
    rnd = random_phases(8, 64, gen, dtype=torch.float64)
    c_rnd = capacity_objective(ch.cascade(h_d, h_ru, h_br, rnd), snr_db)
    # optimiser started from each random configuration: never worse, clearly better
    c_opt_rnd = capacity_objective(
        ch.cascade(h_d, h_ru, h_br, optimize_phases_capacity(h_d, h_ru, h_br, snr_db, 40, rnd)),
        snr_db,
    )
    c_co = capacity_objective(
        ch.cascade(h_d, h_ru, h_br, cophase_phases(h_d, h_ru, h_br, f)), snr_db
    )
    ctrl = RISPhaseController("optimized", snr_db=snr_db, num_iter=40, precision="double")
    c_opt = capacity_objective(ch.cascade(h_d, h_ru, h_br, ctrl(h_d, h_ru, h_br, f)), snr_db)
    assert torch.all(c_opt_rnd >= c_rnd)
    assert float((c_opt_rnd - c_rnd).mean()) > 0.3, (c_opt_rnd, c_rnd)
    assert float(c_opt) >= float(c_co) - 1e-9
    assert float(c_opt) > float(c_rnd.mean()) + 0.3, (c_opt, c_rnd.mean())
    print(
        f"capacity bit/s/Hz: random {float(c_rnd.mean()):.3f}, "
        f"cophase {float(c_co):.3f}, optimized {float(c_opt):.3f}"
    )


def _rel_diff_near_far(tx, rx, side, ant=2) -> dict[str, float]:
    """Relative difference near-field vs far-field of each link and of the RIS part of
    the cascade (direct path blocked there so that it cannot hide the RIS part)."""
    kw = dict(
        tx_pos_m=tx,
        ris_pos_m=(0.0, 0.0, 0.0),
        rx_pos_m=rx,
        num_rows=side,
        num_cols=side,
        carrier_frequency_hz=FC,
        num_tx_ant=ant,
        num_rx_ant=ant,
        ris_normal=(1.0, 0.0, 0.0),
    )
    f = freqs(16, 240e3)
    phases = random_phases(4, side * side, torch.Generator().manual_seed(5), dtype=torch.float64)
    paths, ris_part = [], []
    for nf in (False, True):
        paths.append(RISChannel(RISGeometry(**kw, near_field=nf), precision="double").paths(1, f))
        blocked = RISGeometry(**kw, near_field=nf, direct_path_blocked=True)
        ris_part.append(RISChannel(blocked, precision="double")(4, 1, f, phases))

    def rel(a, b):
        return float((b - a).norm() / b.norm())

    out = {name: rel(a, b) for name, a, b in zip(("d", "ru", "br"), *paths, strict=True)}
    out["ris"] = rel(*ris_part)
    return out


def test_near_and_far_field_agree_far_and_differ_close():
    far = _rel_diff_near_far((200.0, -150.0, 10.0), (150.0, 200.0, -5.0), 4)
    close = _rel_diff_near_far((0.5, -0.2, 0.1), (0.6, 0.3, 0.0), 16)
    print("near/far relative difference: far", far, "close", close)
    assert max(far.values()) < 0.02
    assert close["ris"] > 0.3 and close["ru"] > 0.3 and close["br"] > 0.3


def test_ofdm_shape_dtype_contract_with_apply_ofdm_channel():
    g = blocked_geometry(3, num_tx_ant=2, num_rx_ant=3, direct_path_blocked=False)
    b, s, n = 5, 4, 12
    for precision, cdtype in (("single", torch.complex64), ("double", torch.complex128)):
        ch = RISChannel(g, precision=precision, phase_controller=RISPhaseController("random"))
        h = ch(b, s, freqs(n))
        assert h.shape == (b, 1, 3, 1, 2, s, n) and h.dtype == cdtype
        assert ch.last_phases.shape == (b, 9)
        x = torch.randn(b, 1, 2, s, n, dtype=cdtype)
        y = ApplyOFDMChannel(precision=precision)(x, h)
        assert y.shape == (b, 1, 3, s, n) and y.dtype == cdtype
        ref = torch.einsum("brtsf,btsf->brsf", h[:, 0, :, 0], x[:, 0])
        torch.testing.assert_close(y[:, 0], ref)
        # the channel is constant over OFDM symbols and differs between random configs
        assert torch.equal(h[..., 0, :], h[..., -1, :])
        assert not torch.allclose(h[0], h[1])
    # explicit phases: shape [N] broadcast over the batch, complex coefficients accepted
    ch = RISChannel(g, precision="double")
    theta = torch.rand(9, dtype=torch.float64) * 6
    h1 = ch(2, 1, freqs(n), theta)
    h2 = ch(2, 1, freqs(n), torch.polar(torch.ones_like(theta), theta))
    torch.testing.assert_close(h1, h2)
    with pytest.raises(ValueError):
        ch(2, 1, freqs(n), torch.zeros(8))
    with pytest.raises(ValueError):
        ch(2, 1, freqs(n))  # no phases and no controller


def test_direct_path_normalisation_and_cached_controller():
    g = blocked_geometry(4, direct_path_blocked=False)
    ch = RISChannel(g, precision="double")
    h_d, _, _ = ch.paths(1, freqs(8))
    # far-field SISO direct path: unit gain, LOS delay removed (flat over frequency)
    torch.testing.assert_close(h_d.abs(), torch.ones_like(h_d.abs()))
    assert float((h_d - h_d[:, :1]).abs().max()) < 1e-9
    ctrl = RISPhaseController("optimized", bits=2, num_iter=5, precision="double")
    ch = RISChannel(g, phase_controller=ctrl, precision="double")
    ch(3, 2, freqs(8))
    first = ch.last_phases.clone()
    ch(3, 2, freqs(8))
    assert torch.equal(first, ch.last_phases) and first.shape == (3, 16)
    step = 2 * math.pi / 4
    assert torch.allclose(first / step, torch.round(first / step))


def test_rician_fading_is_random_power_preserving_and_tends_to_los():
    g = blocked_geometry(2, direct_path_blocked=False)
    f = freqs(4)
    h_los = RISChannel(g, precision="double").paths(1, f)
    h = RISChannel(g, rician_k_db=0.0, precision="double").paths(4000, f)
    for los, fad in zip(h_los, h, strict=True):
        assert fad.shape[0] == 4000
        ratio = float((fad.abs() ** 2).mean() / (los.abs() ** 2).mean())
        assert abs(ratio - 1.0) < 0.08, ratio
        assert float(fad[:, 0].std(dim=0).mean()) > 0.1 * float(los.abs().mean())
    h = RISChannel(g, rician_k_db=60.0, precision="double").paths(8, f)
    for los, fad in zip(h_los, h, strict=True):
        torch.testing.assert_close(fad, los.expand_as(fad), rtol=0.01, atol=0.01 * los.abs().max())


BAD_GEOMETRIES = [
    dict(rx_pos_m=(0.0, -20.0, 5.0)),  # TX == RX
    dict(ris_pos_m=(0.0, -20.0, 5.0)),  # TX == RIS
    dict(num_rows=0),
    dict(num_cols=-3),
    dict(num_rows=2.5),
    dict(carrier_frequency_hz=0.0),
    dict(carrier_frequency_hz=-1e9),
    dict(carrier_frequency_hz=float("nan")),
    dict(element_spacing_m=0.0),
    dict(antenna_spacing_m=-0.1),
    dict(num_tx_ant=0),
    dict(ris_normal=(0.0, 0.0, 0.0)),
    dict(ris_normal=(1.0, 0.0, 0.0)),  # TX and RX behind the RIS
    dict(tx_pos_m=(1.0, 2.0)),
    dict(tx_pos_m=(float("inf"), 0.0, 0.0)),
    dict(tx_pos_m=(20.0, 0.0, 5.0), rx_pos_m=(0.0, 0.0, 5.0), ris_normal=None),  # opposite
    dict(element_pattern_exponent=-1.0),
]


@pytest.mark.parametrize("bad", BAD_GEOMETRIES)
def test_bad_geometry_raises_value_error(bad):
    kw = dict(
        tx_pos_m=(0.0, -20.0, 5.0),
        ris_pos_m=(10.0, 0.0, 5.0),
        rx_pos_m=(0.0, 20.0, 5.0),
        num_rows=4,
        num_cols=4,
    )
    kw.update(bad)
    with pytest.raises(ValueError) as info:
        RISGeometry(**kw)
    assert "\n" not in str(info.value)


def test_parse_position_and_controller_arguments():
    assert parse_position("1.5, -2, 10") == (1.5, -2.0, 10.0)
    assert RISGeometry("0,-20,5", "10,0,5", "0,20,5", 2, 2).num_elements == 4
    for text in ("1,2", "a,b,c", "1,2,3,4", "1,nan,2"):
        with pytest.raises(ValueError):
            parse_position(text)
    with pytest.raises(ValueError):
        RISPhaseController("best")
    with pytest.raises(ValueError):
        RISPhaseController("cophase", bits=0)


def test_ris_grid():
    for n in (1, 7, 64, 128, 100, 1024, 96):
        rows, cols = ris_grid(n)
        assert rows * cols == n and rows <= cols
    assert ris_grid(64) == (8, 8) and ris_grid(128) == (8, 16) and ris_grid(7) == (1, 7)
    with pytest.raises(ValueError):
        ris_grid(0)


def test_capacity_gradient_matches_autograd_and_subsampled_optimizer_improves():
    from gsc_phy.ris import _capacity_gradient, cascade_channel

    gen = torch.Generator().manual_seed(11)
    c = torch.complex128
    h_d = torch.randn(3, 5, 2, 3, dtype=c, generator=gen)
    h_ru = torch.randn(3, 5, 2, 7, dtype=c, generator=gen)
    h_br = torch.randn(3, 5, 7, 3, dtype=c, generator=gen)
    theta = random_phases(3, 7, gen, dtype=torch.float64)
    phi = torch.polar(torch.ones_like(theta), theta).requires_grad_(True)
    capacity_objective(cascade_channel(h_d, h_ru, h_br, phi), 7.0).sum().backward()
    grad = _capacity_gradient(h_d, h_ru, h_br, phi.detach(), 10**0.7)
    # torch returns 2 x the conjugate Wirtinger derivative for a real loss
    torch.testing.assert_close(phi.grad, 2 * grad)
    c0 = capacity_objective(cascade_channel(h_d, h_ru, h_br, theta), 7.0)
    opt = optimize_phases_capacity(h_d, h_ru, h_br, 7.0, 30, theta, max_subcarriers=2)
    c1 = capacity_objective(cascade_channel(h_d, h_ru, h_br, opt), 7.0)
    assert float((c1 - c0).mean()) > 0.1, (c0, c1)
