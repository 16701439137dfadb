"""LayeredLink: unequal error protection of layered bits at a channel-use budget."""

import numpy as np
import pytest

from bridge.common import ConfigError
from gsc_semantic.scenarios.layered_link import LayeredLink, plan_layers

BITS = [598, 256, 512, 768]


@pytest.mark.parametrize("channel", ["awgn", "tdl-a"])
@pytest.mark.parametrize("rho", [1 / 8, 1 / 6, 1 / 4])
def test_ladder_is_ordered_and_fits_the_budget(channel, rho):
    budget = rho * 3 * 64 * 64
    plan = plan_layers(BITS, budget, channel, "adaptive")
    sent = [m for m in plan.mcs if m is not None]
    eff = [m.spectral_efficiency for m in sent]
    assert eff == sorted(eff)                       # layer l no more robust than l-1
    assert plan.thresholds_db[0] < plan.thresholds_db[len(sent) - 1]  # really unequal
    assert plan.total_channel_uses <= budget + 1e-6
    assert plan.channel_uses[0] == pytest.approx(
        BITS[0] / sent[0].payload_bits_per_channel_use())


def test_single_design_uses_one_mcs_within_budget():
    budget = 3 * 64 * 64 / 6
    plan = plan_layers(BITS, budget, "awgn", "single")
    assert len({m.index for m in plan.mcs}) == 1 and plan.layers_sent == 4
    assert plan.total_channel_uses <= budget
    ladder = plan_layers(BITS, budget, "awgn", "adaptive")
    assert ladder.thresholds_db[0] < plan.thresholds_db[0] < ladder.thresholds_db[-1]


def test_too_small_budget_drops_trailing_layers():
    plan = plan_layers(BITS, 400.0, "awgn", "adaptive")
    assert 1 <= plan.layers_sent < 4 and plan.mcs[-1] is None
    assert plan.total_channel_uses <= 400.0


@pytest.mark.parametrize("design,match", [
    ([5, 3, 7, 9], "no more robust"),
    ([27, 27, 27, 27], "budget"),
    ([1, 2], "4 layers"),
    ("fancy", "mcs_per_layer"),
])
def test_bad_designs_raise_config_error(design, match):
    with pytest.raises(ConfigError, match=match):
        plan_layers(BITS, 300.0, "awgn", design)


def test_sim_or_loopback_link_and_positive_budget():
    with pytest.raises(ConfigError, match="sigmf"):
        LayeredLink("awgn", 1 / 6, BITS, link="sigmf")
    with pytest.raises(ConfigError, match="streaming loopback emulates"):
        LayeredLink("rayleigh", 1 / 6, BITS, link="loopback")
    with pytest.raises(ConfigError):
        LayeredLink("awgn", 0.0, BITS)
    with pytest.raises(ConfigError, match="first layer"):
        plan_layers([10 ** 6], 100.0)


def _bits(n, sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 2, (n, b)).astype(np.uint8) for b in sizes]


def test_transmission_steps_with_snr():
    sizes = [300, 200, 400]
    link = LayeredLink("awgn", 1 / 12, sizes, "adaptive")
    thr = link.plan.thresholds_db
    assert thr[0] < thr[-1] - 6
    bits = _bits(4, sizes)

    high = link(bits, snr_db=30.0, seed=1)
    assert not high.erased.any() and (high.layers_received == 3).all()
    for sent, got in zip(bits, high.bits, strict=True):
        assert np.array_equal(sent, got)
    assert high.channel_uses_sent >= 4 * link.plan.total_channel_uses

    low = link(bits, snr_db=-15.0, seed=2)
    assert low.erased.all() and (low.layers_received == 0).all()

    mid = link(bits, snr_db=thr[0] + 3.0, seed=3)   # first layer safe, last one hopeless
    assert not mid.erased[:, 0].any() and mid.erased[:, -1].all()
    assert (mid.layers_received >= 1).all() and (mid.layers_received < 3).all()


def test_bad_layer_arrays():
    link = LayeredLink("awgn", 1 / 12, [100, 100])
    with pytest.raises(ValueError, match="layers given"):
        link(_bits(2, [100]), 10.0)
    with pytest.raises(ValueError, match="expected"):
        link(_bits(2, [100, 99]), 10.0)
