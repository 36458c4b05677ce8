"""Trace STDP kernels (bioplastic.rules.stdp): analytic windows, trace forms, bounds, twin."""

import math

import numpy as np
import pytest

from bioplastic.rules import (
    STDPParams,
    bounded,
    depression_dw,
    event_decay,
    pair_window,
    post_index,
    potentiation_dw,
    run_synapse,
    stdp_prepare,
    trace_on_spike,
)

DT_MS = 0.5
PAIR = STDPParams(triplet=False)     # classic pair rule, nearest-spike traces, additive


def _trains(n_steps, pre_steps=(), post_steps=()):
    pre = np.zeros(n_steps, dtype=bool)
    post = np.zeros(n_steps, dtype=bool)
    pre[list(pre_steps)] = True
    post[list(post_steps)] = True
    return pre, post


def test_decay_factor_is_the_exponential_of_elapsed_time():
    # exp(-(t - t_last)/tau) at t - t_last = tau is e^-1.
    assert event_decay(0.05, 0.03, 0.02) == pytest.approx(math.exp(-1.0), rel=1e-15)
    assert event_decay(0.01, 0.01, 0.02) == 1.0


def test_trace_forms():
    assert trace_on_spike(0.3, False) == 1.0     # nearest spike: reset to 1
    assert trace_on_spike(0.3, True) == 1.3      # all-to-all: accumulate


def test_pair_window_matches_the_exponentials():
    """Pre-before-post at lag k: +eta_post e^{-k dt/tau_pre}; post-before-pre: depression."""
    lags = np.arange(-40, 41)
    dw = pair_window(lags, PAIR, w0=0.5, dt_ms=DT_MS)
    k = np.abs(lags) * DT_MS
    expected = np.where(lags > 0, PAIR.eta_post * np.exp(-k / PAIR.tau_pre_ms),
                        -PAIR.eta_pre * np.exp(-k / PAIR.tau_post_ms))
    # Lag 0: on_pre runs first (post trace still 0), then on_post sees the bumped pre trace.
    expected[lags == 0] = PAIR.eta_post
    np.testing.assert_allclose(dw, expected, rtol=1e-12, atol=1e-18)


def test_window_integral():
    """Sum of dw*dt over lags = geometric series exactly; -> eta+ tau+ - eta- tau- as dt -> 0."""
    p = STDPParams(triplet=False, eta_pre=0.012, eta_post=0.01, tau_pre_ms=20.0,
                   tau_post_ms=25.0, w_min=-1.0, w_max=2.0)
    reach = 1000                           # 25 and 20 time constants at dt = 0.5 ms
    lags = np.arange(-reach, reach + 1)
    integral = float(np.sum(pair_window(lags, p, w0=0.5, dt_ms=DT_MS)) * DT_MS)
    q_pot = math.exp(-DT_MS / p.tau_pre_ms)
    q_dep = math.exp(-DT_MS / p.tau_post_ms)
    # lags 0..K potentiate (lag 0: eta_post, see above), lags -1..-K depress.
    geometric = DT_MS * (p.eta_post * (1 - q_pot ** (reach + 1)) / (1 - q_pot)
                         - p.eta_pre * q_dep * (1 - q_dep ** reach) / (1 - q_dep))
    assert integral == pytest.approx(geometric, rel=1e-9)
    continuum = p.eta_post * p.tau_pre_ms - p.eta_pre * p.tau_post_ms
    # Riemann sum vs integral: error O(dt * (eta_post + eta_pre)) / 2 per side.
    assert abs(integral - continuum) < DT_MS * (p.eta_post + p.eta_pre)


def test_triplet_needs_an_earlier_post_spike():
    p = STDPParams()                      # Diehl & Cook code: triplet, nearest
    assert pair_window(np.array([5]), p)[0] == 0.0
    # Two post spikes 20 steps apart after a pre spike: the second potentiates by
    # eta_post * x_pre * x_post2_before with x_post2 = e^{-20 dt / tau_post2}.
    pre, post = _trains(60, [10], [15, 35])
    w = run_synapse(pre, post, p, w0=0.5, dt_ms=DT_MS)
    expected = p.eta_post * math.exp(-25 * DT_MS / p.tau_pre_ms) * math.exp(
        -20 * DT_MS / p.tau_post2_ms)
    assert w[35] - w[34] == pytest.approx(expected, rel=1e-12)
    assert w[15] == w[14] == 0.5


def test_all_to_all_accumulates_and_nearest_does_not():
    pre, post = _trains(40, [0, 10], [20])
    a = math.exp(-20 * DT_MS / 20.0) + math.exp(-10 * DT_MS / 20.0)
    nearest = run_synapse(pre, post, PAIR, w0=0.5)[-1] - 0.5
    all_to_all = run_synapse(pre, post, PAIR._replace(all_to_all=True), w0=0.5)[-1] - 0.5
    assert nearest == pytest.approx(PAIR.eta_post * math.exp(-10 * DT_MS / 20.0), rel=1e-12)
    assert all_to_all == pytest.approx(PAIR.eta_post * a, rel=1e-12)


def test_weight_dependence_and_bounds():
    p = stdp_prepare(STDPParams(mu_dep=1.0, mu_pot=1.0, w_max=1.0, w_min=0.0))
    assert potentiation_dw(1.0, 1.0, 1.0, p) == 0.0     # (w_max - w)^mu = 0 at the bound
    assert depression_dw(0.0, 1.0, p) == 0.0            # w^mu = 0 at the floor
    assert potentiation_dw(0.25, 1.0, 1.0, p) == pytest.approx(p.eta_post * 0.75)
    additive = stdp_prepare(STDPParams())
    assert bounded(0.99, 0.5, additive) == 1.0
    assert bounded(0.01, -0.5, additive) == 0.0
    assert bounded(0.5, 0.1, additive) == 0.6


def test_soft_bounds_keep_weights_inside_without_clipping():
    rng = np.random.default_rng(0)
    pre = rng.random(4000) < 0.05
    post = rng.random(4000) < 0.05
    p = STDPParams(mu_dep=1.0, mu_pot=1.0, triplet=False, eta_pre=0.05, eta_post=0.05)
    w = run_synapse(pre, post, p, w0=0.5)
    assert np.all((w > 0.0) & (w < 1.0))


def test_zero_rates_give_zero_dw():
    p = stdp_prepare(STDPParams())
    assert depression_dw(0.3, 0.0, p) == 0.0
    assert potentiation_dw(0.3, 0.0, 1.0, p) == 0.0


def test_post_index_lists_synapses_of_each_post():
    post = np.array([2, 0, 2, 1, 0])
    idx = post_index(post, 3)
    assert [list(idx.synapses[idx.indptr[j]:idx.indptr[j + 1]]) for j in range(3)] == [
        [1, 4], [3], [0, 2]]


def test_inputs_not_mutated():
    pre, post = _trains(50, [3, 20], [10, 30])
    pre0, post0 = pre.copy(), post.copy()
    run_synapse(pre, post)
    assert np.array_equal(pre, pre0) and np.array_equal(post, post0)


@pytest.mark.parametrize("bad, match", [
    (STDPParams(tau_pre_ms=0.0), "tau_pre_ms"),
    (STDPParams(tau_post2_ms=-1.0), "tau_post2_ms"),
    (STDPParams(tau_post_ms=float("nan")), "tau_post_ms"),
    (STDPParams(w_min=1.0, w_max=1.0), "w_min"),
    (STDPParams(eta_pre=-1.0), "eta_pre"),
    (STDPParams(mu_dep=0.5, w_min=-1.0), "mu_dep"),
])
def test_bad_params(bad, match):
    with pytest.raises(ValueError, match=match):
        stdp_prepare(bad)


def test_bad_types_and_trains():
    with pytest.raises(TypeError, match="STDPParams"):
        stdp_prepare({"tau_pre_ms": 20.0})
    with pytest.raises(TypeError, match="all_to_all"):
        stdp_prepare(STDPParams(all_to_all="yes"))
    with pytest.raises(ValueError, match="pre_spikes"):
        run_synapse(np.zeros(5), np.zeros(5, bool))
    with pytest.raises(ValueError, match="equal length"):
        run_synapse(np.zeros(5, bool), np.zeros(6, bool))
    with pytest.raises(ValueError, match="w0"):
        run_synapse(np.zeros(5, bool), np.zeros(5, bool), w0=2.0)
    with pytest.raises(ValueError, match="lags_steps"):
        pair_window(np.array([0.5]))


@pytest.mark.brian2
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("params", [
    STDPParams(),
    STDPParams(triplet=False, all_to_all=True, mu_dep=0.5, mu_pot=0.7, eta_pre=0.02),
], ids=["code", "soft"])
def test_single_synapse_equals_brian2(seed, params):
    """One synapse between two spike generators: on_pre runs before on_post in the same step
    (coincident spikes are forced into the trains), event-driven traces as in Brian2."""
    pytest.importorskip("brian2")
    from bioplastic.reference._brian import exact_prefs
    from bioplastic.reference.wta import stdp_model, stdp_on_post, stdp_on_pre

    rng = np.random.default_rng(seed)
    n_steps = 600
    pre = rng.random(n_steps) < 0.08
    post = rng.random(n_steps) < 0.08
    post[pre.nonzero()[0][:5]] = True       # coincident pre and post spikes
    ours = run_synapse(pre, post, params, w0=0.5, dt_ms=DT_MS)
    with exact_prefs("numpy") as b2:
        dt = DT_MS * b2.ms
        source = b2.SpikeGeneratorGroup(1, np.zeros(pre.sum(), int), pre.nonzero()[0] * dt, dt=dt,
                                        name="pre")
        target = b2.NeuronGroup(1, "ge : 1", threshold="post_spike(t) > 0.5", dt=dt,
                                name="post", namespace={"post_spike": b2.TimedArray(
                                    post.astype(float), dt=dt)})
        namespace = {"tau_pre": params.tau_pre_ms * b2.ms, "tau_post1": params.tau_post_ms * b2.ms,
                     "tau_post2": params.tau_post2_ms * b2.ms, "eta_pre": params.eta_pre,
                     "eta_post": params.eta_post, "w_min": params.w_min, "w_max": params.w_max,
                     "mu_dep": params.mu_dep, "mu_pot": params.mu_pot}
        syn = b2.Synapses(source, target, stdp_model(params), on_pre=stdp_on_pre(params),
                          on_post=stdp_on_post(params), dt=dt, name="syn", namespace=namespace)
        syn.connect(i=[0], j=[0])
        syn.w = 0.5
        mon = b2.StateMonitor(syn, "w", record=[0], when="end", name="w_mon")
        b2.Network(source, target, syn, mon).run(n_steps * dt)
        twin = np.asarray(mon.w_[0])
    # Float64 round-off: NumPy's SIMD exp/power may differ from libm's by one ulp.
    np.testing.assert_allclose(ours, twin, rtol=0, atol=8 * np.finfo(float).eps)
    assert np.any(ours != 0.5)
