"""Delay rule G, weight rule F, RDL, homeostasis, bounds and stop (bioplastic.rules)."""

import math

import numpy as np
import pytest

from bioplastic.rules.delay_learning import (
    DelayBounds,
    DelayRuleParams,
    HomeostasisParams,
    apply_delay_update,
    delay_dw,
    delay_kernel,
    homeostasis_init,
    homeostasis_update,
    rdl_delta,
    spike_lists,
    stimulus_eligibility,
    stopped_neurons,
    weight_dw,
    weight_kernel,
)

from .naive import naive_eligibility

P = DelayRuleParams()  # B± = 2.5 ms, θ± = 1 ms, A± = 0.01, τ± = 1 ms (reference code @85fff8d)


def test_kernels_match_closed_forms_at_minus_one_zero_and_one_ms():
    # lag 0 belongs to the >= branch: G(0) = -B-, F(0) = +A+
    np.testing.assert_allclose(delay_kernel([-1.0, 0.0, 1.0]),
                               [2.5 * math.exp(-1), -2.5, -2.5 * math.exp(-1)], rtol=1e-15)
    np.testing.assert_allclose(weight_kernel([-1.0, 0.0, 1.0]),
                               [-0.01 * math.exp(-1), 0.01, 0.01 * math.exp(-1)], rtol=1e-15)


def test_single_pair_functions_use_the_delayed_lag():
    # pre at 2 ms, post at 10 ms, delay 7 ms: lag = 10 - 2 - 7 = 1 ms
    assert delay_dw([2.0], [10.0], 7.0) == pytest.approx(-2.5 * math.exp(-1), rel=1e-15)
    assert weight_dw([2.0], [10.0], 7.0) == pytest.approx(0.01 * math.exp(-1), rel=1e-15)
    # the arrival (2 + 9 = 11 ms) comes after the post spike: lag = -1 ms, delay grows
    assert delay_dw([2.0], [10.0], 9.0) == pytest.approx(2.5 * math.exp(-1), rel=1e-15)
    # the pairing is on arrival times: a pre spike at 2 ms with delay 7 ms arrives at 9 ms,
    # before the post spike at 10 ms (lag +1), even though a later pre spike at 6 ms (arrival
    # 13 ms) was *emitted* before the post spike: that one pairs on its arrival side (lag -3)
    assert delay_dw([2.0, 6.0], [10.0], 7.0) == pytest.approx(
        -2.5 * math.exp(-1) + 2.5 * math.exp(-3), rel=1e-15)
    # an arrival after the last post spike pairs with it (lag -3 ms); nothing before it
    assert delay_dw([12.0], [10.0], 1.0) == pytest.approx(2.5 * math.exp(-3), rel=1e-15)
    assert delay_dw([12.0], [], 1.0) == 0.0


@pytest.mark.parametrize("all_pairs", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stimulus_eligibility_equals_naive_transcription(seed, all_pairs):
    rng = np.random.default_rng(seed)
    t, n_pre, n_post, n_syn = 60, 7, 5, 30
    pre_spikes = rng.random((t, n_pre)) < 0.1
    post_spikes = rng.random((t, n_post)) < 0.1
    pre, post = rng.integers(0, n_pre, n_syn), rng.integers(0, n_post, n_syn)
    d = rng.uniform(0.0, 8.0, n_syn)
    p = P._replace(all_pairs=all_pairs, epsilon_ms=0.3, b_plus_ms=1.5, theta_plus_ms=2.0)
    got_d, got_w = stimulus_eligibility(pre_spikes, post_spikes, pre, post, d, 0.5, p)
    want_d, want_w = naive_eligibility(pre_spikes, post_spikes, pre, post, d, 0.5, p)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-13, atol=1e-15)
    assert np.any(got_d != 0)


def test_zero_reward_gives_no_delay_change_and_sign_follows_reward():
    e = np.array([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(rdl_delta(e, 0.0), np.zeros(3))
    np.testing.assert_array_equal(rdl_delta(e, -1.0), -e)
    np.testing.assert_array_equal(rdl_delta(e, 1.0), e)


@pytest.mark.parametrize("reward", [np.nan, np.inf, -np.inf])
def test_non_finite_reward_is_refused(reward):
    with pytest.raises(ValueError, match="reward"):
        rdl_delta(np.ones(3), reward)


def test_homeostasis_below_target_shortens_delays_and_grows_weights():
    hp = HomeostasisParams()
    window = homeostasis_init(2, hp)
    # neuron 0 silent (below the target rate), neuron 1 spiked (far above 0.003)
    new, dd, dw = homeostasis_update(window, 0, np.array([False, True]), hp)
    assert dd[0] < 0 < dw[0]
    assert dd[1] > 0 > dw[1]
    # K = (R_target - R_obs)/R_target with R_obs = mean of the 10-stimulus window
    k0 = (0.003 - 9 * 0.003 / 10) / 0.003
    assert dd[0] == pytest.approx(-0.0006 * k0) and dw[0] == pytest.approx(0.00003 * k0)
    np.testing.assert_array_equal(window, homeostasis_init(2, hp))  # input untouched
    assert new[0].tolist() == [0.0, 1.0]


def test_delays_stay_within_bounds_and_stopped_neurons_keep_theirs():
    bounds = DelayBounds(d_min_ms=0.0, d_max_ms=10.0, w_min=0.0, w_max=1.0, stop_ms=0.5,
                         growth_ms=0.01)
    d = np.array([5.0, 9.0, 2.0, 0.4, 3.0])
    w = np.array([0.5, 0.9, 0.1, 0.5, 0.5])
    post = np.array([0, 0, 1, 2, 2])   # neuron 2 has a delay <= 0.5 ms: it has stopped
    d_new, w_new = apply_delay_update(d, w, [-9.0, 5.0, 0.0, -1.0, 1.0], [1.0, 0.5, -1.0, 1, 1],
                                      post, 3, bounds)
    np.testing.assert_allclose(d_new, [0.0, 10.0, 2.01, 0.4, 3.0])
    np.testing.assert_allclose(w_new, [1.0, 1.0, 0.0, 0.5, 0.5])
    assert stopped_neurons(d_new, post, 3, 0.5).tolist() == [True, False, True]


def test_a_failing_update_leaves_its_inputs_as_they_were():
    d, w = np.array([1.0, 2.0]), np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="dd_ms"):
        apply_delay_update(d, w, [np.nan, 0.0], [0.0, 0.0], [0, 0], 1)
    np.testing.assert_array_equal(d, [1.0, 2.0])
    np.testing.assert_array_equal(w, [0.5, 0.5])


def test_spike_lists_equal_a_per_neuron_nonzero():
    raster = np.random.default_rng(3).random((40, 7)) < 0.2
    raster[:, 2] = False                                   # a silent neuron
    indptr, steps = spike_lists(raster)
    for i in range(raster.shape[1]):
        np.testing.assert_array_equal(steps[indptr[i]:indptr[i + 1]], np.nonzero(raster[:, i])[0])
    assert indptr[-1] == raster.sum() and steps.dtype == np.int64
