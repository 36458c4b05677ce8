"""The delay-learning E/I network kernel (bioplastic.neurons.rsnn) and its protocol."""

import numpy as np
import pytest

from bioplastic.neurons.rsnn import (
    DEFAULT_RSNN_STDP,
    RSNNParams,
    lateral_inhibition,
    rsnn_init,
    rsnn_prepare,
    rsnn_set_delays,
    rsnn_step,
    rsnn_topology,
    run_rsnn,
)
from bioplastic.neurons.rsnn_train import (
    NO_DELAY_LEARNING,
    RDL,
    UDL,
    class_groups,
    decide,
    delay_weight_update,
    learner_init,
    present,
    reward_for,
)

from .naive import naive_rsnn

REST = -65.0  # RSNNParams' v_rest_exc_mv


def _one_neuron(pre, delays, w=1.0, max_delay_ms=20.0):
    """Inputs -> one excitatory neuron, weight ``w`` mV (sub-threshold), no STDP."""
    topo, w0, d0 = rsnn_topology(max(pre) + 1, 1, 0, {
        "input_exc": (np.array(pre), np.zeros(len(pre), int), w, np.array(delays, float))})
    params = RSNNParams(max_delay_ms=max_delay_ms, stdp_input=False)
    return topo, params, rsnn_init(topo, params, w0, d0)


def _v(topo, params, state, x):
    return run_rsnn(x, state, topo, params, record=("v",))["v"][:, 0]


@pytest.mark.parametrize("delay", [0, 1, 4])
def test_a_spike_arrives_exactly_delay_steps_later(delay):
    topo, params, state = _one_neuron([0], [float(delay)])
    x = np.zeros((12, 1), bool)
    x[3] = True
    v = _v(topo, params, state, x)
    arrival = 3 + delay          # D = 0 delivers in the same step (after its update)
    assert np.all(v[:arrival] == REST)
    assert v[arrival] == REST + 1.0


def test_spikes_landing_in_one_slot_accumulate():
    topo, params, state = _one_neuron([0, 1], [3.0, 1.0], w=0.75)
    x = np.zeros((8, 2), bool)
    x[2, 0] = x[4, 1] = True      # 2 + 3 = 4 + 1 = 5
    v = _v(topo, params, state, x)
    assert v[4] == REST and v[5] == REST + 1.5


def test_the_ring_wraps_around_at_the_largest_delay():
    # ring of max_delay + 1 = 6 rows; an input every 6 steps through a 5-step delay
    topo, params, state = _one_neuron([0], [5.0], max_delay_ms=5.0)
    assert state.history.shape[0] == 6
    x = np.zeros((20, 1), bool)
    x[[0, 6, 12], 0] = True
    v = _v(topo, params, state, x)
    jumps = np.nonzero(np.diff(np.concatenate([[REST], v])) > 0.5)[0]
    assert jumps.tolist() == [5, 11, 17]


def _small_network(seed, n_in=12, n_maps=3, n_pos=4, max_delay=6, taus_ms=(10.0, 10.0)):
    rng = np.random.default_rng(seed)
    n_exc = n_maps * n_pos
    syn = {"input_exc": (rng.integers(0, n_in, 80), rng.integers(0, n_exc, 80),
                         rng.uniform(1.0, 5.0, 80), rng.integers(0, max_delay + 1, 80) * 1.0),
           "exc_exc": (rng.integers(0, n_exc, 30), rng.integers(0, n_exc, 30),
                       rng.uniform(0.0, 3.0, 30), rng.integers(0, max_delay + 1, 30) * 1.0)}
    syn.update(lateral_inhibition(n_maps, n_pos, 6.0, -4.0))
    topo, w, d = rsnn_topology(n_in, n_exc, n_exc, syn)
    params = RSNNParams(max_delay_ms=float(max_delay), theta_plus_mv=0.3)
    stdp = DEFAULT_RSNN_STDP._replace(eta_pre=0.05, eta_post=0.05, w_max=6.0,
                                      tau_pre_ms=taus_ms[0], tau_post_ms=taus_ms[1])
    return rng, topo, w, d, params, stdp


# (tau_pre, tau_post) in ms: equal (one shared decay factor per event, the kernel's fast
# path) and unequal both ways (two factors: the path that must not reuse one for the other)
@pytest.mark.parametrize("taus_ms", [(10.0, 10.0), (20.0, 7.0), (5.0, 15.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_equals_naive_spike_queue_across_delay_changes(seed, taus_ms):
    """Delays change every 15 steps while spikes are queued (no rest), including events of one
    synapse sent with two delays that land in the same step: the kernel keeps each queued
    spike's old arrival step, in push order, like the naive explicit queue."""
    rng, topo, w, d, params, stdp = _small_network(seed, taus_ms=taus_ms)
    stimuli = [rng.random((15, topo.n_in)) < 0.3 for _ in range(6)]
    delays = [np.floor(d + 0.5).astype(int)]
    for _ in range(5):
        delays.append(rng.integers(0, 7, d.size))
    v0 = rng.uniform(-65.0, -56.0, topo.n_neurons)
    state = rsnn_init(topo, params, w, d, v0_mv=v0)
    spikes = []
    for k, stim in enumerate(stimuli):
        if k:
            state = rsnn_set_delays(state, topo, params, delays[k].astype(float))
        trace = run_rsnn(stim, state, topo, params, stdp)
        spikes.append(trace.spikes)
        state = trace.state
    kp = rsnn_prepare(params, topo.n_exc, topo.n_inh, stdp)
    want_spikes, want_w, want_v = naive_rsnn(stimuli, delays, topo, kp, w, v0)
    got = np.concatenate(spikes)
    assert got.sum() > 50
    np.testing.assert_array_equal(got, want_spikes)
    np.testing.assert_array_equal(state.w, want_w)
    np.testing.assert_array_equal(state.v, want_v)


def test_simulate_equals_a_loop_over_the_step_and_inputs_are_not_modified():
    rng, topo, w, d, params, stdp = _small_network(3)
    x = rng.random((30, topo.n_in)) < 0.3
    x_copy = x.copy()
    state = rsnn_init(topo, params, w, d)
    before = [a.copy() for a in state if isinstance(a, np.ndarray)]
    trace = run_rsnn(x, state, topo, params, stdp)
    kp = rsnn_prepare(params, topo.n_exc, topo.n_inh, stdp)
    s, rows = state, []
    for t in range(x.shape[0]):
        sp, s = rsnn_step(x[t], s, kp, topo)
        rows.append(sp)
    np.testing.assert_array_equal(trace.spikes, np.array(rows))
    np.testing.assert_array_equal(trace.state.w, s.w)
    np.testing.assert_array_equal(x, x_copy)
    for a, b in zip(before, [a for a in state if isinstance(a, np.ndarray)], strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_public_step_checks_its_pieces():
    # Before rsnn_step was checked, a short x or another network's state reached the kernel,
    # which indexes them without bounds checks.
    rng, topo, w, d, params, stdp = _small_network(3)
    state = rsnn_init(topo, params, w, d)
    kp = rsnn_prepare(params, topo.n_exc, topo.n_inh, stdp)
    x = rng.random(topo.n_in) < 0.3
    with pytest.raises(ValueError, match=rf"x must have shape \({topo.n_in},\)"):
        rsnn_step(x[:-1], state, kp, topo)
    with pytest.raises(TypeError, match="x must be boolean spikes"):
        rsnn_step(x.astype(float), state, kp, topo)
    _, other_topo, other_w, other_d, _, _ = _small_network(3, n_pos=5)
    with pytest.raises(ValueError, match="state"):
        rsnn_step(x, rsnn_init(other_topo, params, other_w, other_d), kp, topo)
    checked = rsnn_step(x, state, kp, topo)
    unchecked = rsnn_step(x, state, kp, topo, check=False)
    np.testing.assert_array_equal(checked[0], unchecked[0])
    np.testing.assert_array_equal(checked[1].v, unchecked[1].v)


@pytest.mark.parametrize("bad, match", [
    (-1.0, "delay_ms must be >= 0"),
    (np.nan, "delay_ms must be finite"),
    (np.inf, "delay_ms must be finite"),
    (7.0, "at most 6 steps"),       # the ring of max_delay_ms = 6 holds 0..6
])
def test_bad_delays_are_refused_and_nothing_changes(bad, match):
    rng, topo, w, d, params, stdp = _small_network(4)
    with pytest.raises(ValueError, match=match):
        rsnn_init(topo, params, w, np.where(np.arange(d.size) == 3, bad, d))
    state = run_rsnn(rng.random((10, topo.n_in)) < 0.3, rsnn_init(topo, params, w, d), topo,
                     params, stdp).state
    saved = [a.copy() for a in state if isinstance(a, np.ndarray)]
    with pytest.raises(ValueError, match=match):
        rsnn_set_delays(state, topo, params, np.where(np.arange(d.size) == 3, bad, d))
    for a, b in zip(saved, [a for a in state if isinstance(a, np.ndarray)], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_non_finite_reward_leaves_delays_and_weights_as_they_were():
    rng, topo, w, d, params, stdp = _small_network(5)
    x = rng.random((20, topo.n_in)) < 0.3
    trace = run_rsnn(x, rsnn_init(topo, params, w, d), topo, params, stdp)
    src = np.concatenate([x, trace.spikes], axis=1)
    d_before, w_before = trace.state.delay_ms.copy(), trace.state.w.copy()
    for reward in (np.nan, np.inf):
        with pytest.raises(ValueError, match="reward"):
            delay_weight_update(topo, trace.state.delay_ms, trace.state.w, src, trace.spikes,
                                reward, learner_init(topo), 1.0)
    np.testing.assert_array_equal(trace.state.delay_ms, d_before)
    np.testing.assert_array_equal(trace.state.w, w_before)


def test_readout_without_class_groups_is_refused():
    with pytest.raises(ValueError, match="groups"):
        decide(np.ones((5, 4), bool), np.full(4, -1), 2)


def test_decision_reward_and_undecided_ties():
    spikes = np.zeros((10, 6), bool)
    spikes[2, 4] = spikes[3, 5] = spikes[4, 0] = True     # class 2 has 2 spikes, class 0 has 1
    groups = class_groups(3, 2)
    assert decide(spikes, groups, 3) == 2
    assert decide(spikes, groups, 3, start_step=4) == 0   # window [4, end)
    assert decide(np.zeros((10, 6), bool), groups, 3) == -1   # silence: undecided
    assert reward_for(2, 2) == 1.0 and reward_for(-1, 0) == -1.0 and reward_for(1, 2) == -1.0


def test_arms_differ_only_in_what_they_learn():
    rng, topo, w, d, params, stdp = _small_network(6)
    x = rng.random((25, topo.n_in)) < 0.3
    groups = class_groups(3, 4)
    state0 = rsnn_init(topo, params, w, d)
    results = {}
    # the weights' bound is STDP's (the bounds' default w_max = 1 would clip the 1-5 mV
    # weights, with a warning)
    arms = [(name, arm._replace(bounds=arm.bounds._replace(d_max_ms=6.0, w_max=stdp.w_max)))
            for name, arm in (("none", NO_DELAY_LEARNING), ("udl", UDL), ("rdl", RDL))]
    with pytest.raises(ValueError, match="d_max_ms"):
        present(x, 1, state0, topo, learner_init(topo), groups, 3, params, stdp, RDL)
    for name, learning in arms:
        st, _, decision, reward, _ = present(x, 1, state0, topo, learner_init(topo, learning),
                                             groups, 3, params, stdp, learning)
        results[name] = (st, reward)
    assert np.array_equal(results["none"][0].delay_ms, d)        # delays fixed
    assert not np.array_equal(results["udl"][0].delay_ms, d)
    learned = np.nonzero(topo.pathway < 2)[0]
    # RDL = reward x UDL's eligibility (same stimulus, same start): the changes have the
    # reward's sign relation, up to the homeostasis and growth terms both share
    r = results["rdl"][1]
    du = results["udl"][0].delay_ms[learned] - d[learned]
    dr = results["rdl"][0].delay_ms[learned] - d[learned]
    if r > 0:
        np.testing.assert_allclose(du, dr)
    else:
        assert not np.allclose(du, dr)


@pytest.mark.parametrize("seed, reward, all_pairs", [(7, -1.0, False), (8, 1.0, False),
                                                     (9, -1.0, True)])
def test_fused_update_equals_the_separate_rules(seed, reward, all_pairs):
    """``delay_weight_update`` (one fused Numba pass, the eligibility walk skipped for silent
    post neurons) gives bit for bit what the separate public rules give: eligibility, r x Σ G,
    homeostasis, then the bounded update with the stop criterion; for both pairings."""
    from bioplastic.rules.delay_learning import (
        apply_delay_update,
        homeostasis_update,
        rdl_delta,
        stimulus_eligibility,
    )

    rng, topo, w, d, params, stdp = _small_network(seed)
    x = rng.random((12, topo.n_in)) < 0.1
    trace = run_rsnn(x, rsnn_init(topo, params, w, d), topo, params, stdp)
    assert 0 < trace.spikes[:, :topo.n_exc].any(axis=0).sum() < topo.n_exc   # some silent
    src = np.concatenate([x, trace.spikes], axis=1)
    assert 0 < src.any(axis=0).sum() < src.shape[1]     # silent sources too (walk skipped)
    learning = RDL._replace(bounds=RDL.bounds._replace(d_max_ms=6.0, w_max=6.0,
                                                       growth_ms=0.01),
                            rule=RDL.rule._replace(all_pairs=all_pairs))
    learner = learner_init(topo, learning)
    d_new, w_new, _ = delay_weight_update(topo, trace.state.delay_ms, trace.state.w, src,
                                          trace.spikes, reward, learner, 1.0, learning)
    hi = int(topo.pathway_ptr[2])
    e_d, e_w = stimulus_eligibility(src, trace.spikes, topo.pre[:hi], topo.post[:hi],
                                    trace.state.delay_ms[:hi], 1.0, learning.rule)
    _, hd, hw = homeostasis_update(learner.window, 0, trace.spikes[:, :topo.n_exc].any(axis=0),
                                   learning.homeostasis)
    post = topo.post[:hi]
    hd_all, hw_all = np.zeros(topo.n_neurons), np.zeros(topo.n_neurons)
    hd_all[:topo.n_exc], hw_all[:topo.n_exc] = hd, hw
    d_ref, w_ref = apply_delay_update(trace.state.delay_ms[:hi], trace.state.w[:hi],
                                      rdl_delta(e_d, reward) + hd_all[post],
                                      e_w + hw_all[post], post, topo.n_neurons,
                                      learning.bounds)
    np.testing.assert_array_equal(d_new[:hi], d_ref)
    np.testing.assert_array_equal(w_new[:hi], w_ref)
    np.testing.assert_array_equal(d_new[hi:], trace.state.delay_ms[hi:])   # static pathways


def test_a_non_finite_weight_is_refused_and_nothing_changes():
    rng, topo, w, d, params, stdp = _small_network(9)
    state = run_rsnn(rng.random((10, topo.n_in)) < 0.3, rsnn_init(topo, params, w, d), topo,
                     params, stdp).state
    saved = [a.copy() for a in state if isinstance(a, np.ndarray)]
    bad = np.where(np.arange(w.size) == 5, np.nan, state.w)
    with pytest.raises(ValueError, match="weight must contain only finite"):
        rsnn_set_delays(state, topo, params, state.delay_ms, weight=bad)
    with pytest.raises(ValueError, match="weight must contain only finite"):
        rsnn_init(topo, params, bad, d)
    src = np.zeros((10, topo.n_in + topo.n_neurons), bool)
    with pytest.raises(ValueError, match="weight must contain only finite"):
        delay_weight_update(topo, state.delay_ms, bad, src, src[:, topo.n_in:], 1.0,
                            learner_init(topo), 1.0)
    for a, b in zip(saved, [a for a in state if isinstance(a, np.ndarray)], strict=True):
        np.testing.assert_array_equal(a, b)


def _pieces(n_pos, max_delay=6, seed=0):
    rng = np.random.default_rng(seed)
    n_exc = 2 * n_pos
    syn = {"input_exc": (rng.integers(0, 5, 40), rng.integers(0, n_exc, 40), 2.0,
                         rng.integers(0, max_delay + 1, 40) * 1.0),
           **lateral_inhibition(2, n_pos, 6.0, -4.0)}
    topo, w, d = rsnn_topology(5, n_exc, n_exc, syn)
    params = RSNNParams(max_delay_ms=float(max_delay))
    return topo, rsnn_init(topo, params, w, d), rsnn_prepare(params, n_exc, n_exc)


_TOPO, _STATE, _KP = _pieces(3)
_TOPO4, _STATE4, _KP4 = _pieces(4)
_X = np.random.default_rng(1).random((5, 5)) < 0.3


def _by_post_out_of_order(topo):
    """``topo`` with two synapses of one neuron swapped in its post-major list (the kernel
    reads each synapse's pathway from the ascending order)."""
    indptr, synapses = topo.by_post
    j = int(np.argmax(np.diff(indptr) >= 2))
    swapped = synapses.copy()
    swapped[indptr[j]], swapped[indptr[j] + 1] = synapses[indptr[j] + 1], synapses[indptr[j]]
    return topo._replace(by_post=type(topo.by_post)(indptr, swapped))


@pytest.mark.parametrize("args, match", [
    ((_X, _STATE4, _KP, _TOPO), "state.v must have shape"),           # state for 16 neurons
    ((_X, _STATE, _KP4, _TOPO), "params.lif.decay_m must have shape"),
    ((_X, _STATE, _KP, _TOPO4), "state.v must have shape"),           # topology for 16
    ((np.zeros((5, 4), bool), _STATE, _KP, _TOPO), "inputs must have shape"),
    ((_X * 1.0, _STATE, _KP, _TOPO), "inputs must be boolean"),
    ((_X, _STATE._replace(by_delay=_STATE.by_delay[::-1].copy()), _KP, _TOPO), "by_delay"),
    ((_X, _STATE._replace(delay_steps=_STATE.delay_steps + 7), _KP, _TOPO), "delay_steps"),
    ((_X, _STATE._replace(n_spikers=np.full(7, 99)), _KP, _TOPO), "n_spikers"),
    ((_X, _STATE._replace(pend_syn=np.array([10**6]), pend_step=np.array([3])), _KP, _TOPO),
     "pend_syn"),
    ((_X, _STATE, _KP, _TOPO._replace(post=_TOPO.post + 100)), "topo.post"),
    ((_X, _STATE, _KP, _TOPO._replace(n_in=True)), "topo.n_in"),
    ((_X, _STATE, _KP, _by_post_out_of_order(_TOPO)), "by_post.synapses .* ascending"),
    ((_X, _STATE, _KP._replace(dt_s=float("nan")), _TOPO), "params.dt_s"),
    ((_X, _STATE._replace(v=_STATE.v.astype(np.float32)), _KP, _TOPO), "state.v"),
])
def test_mismatched_pieces_give_a_clear_error(args, match):
    """simulate's check_consistency hook (bioplastic.neurons.rsnn.check_consistency): pieces
    built for other sizes, delays or by hand are refused before the kernel indexes them."""
    from bioplastic import simulate
    from bioplastic.neurons.rsnn import rsnn_advance

    with pytest.raises((TypeError, ValueError), match=match):
        simulate(rsnn_advance, *args)


def test_matching_pieces_pass_the_check():
    from bioplastic import simulate
    from bioplastic.neurons.rsnn import check_consistency, rsnn_advance

    check_consistency(_X, _STATE, _KP, _TOPO)
    assert simulate(rsnn_advance, _X, _STATE, _KP, _TOPO).spikes.shape == (5, _TOPO.n_neurons)


@pytest.mark.parametrize("arm", ["none", "rdl"])
def test_classifier_updates_keep_the_initial_weights_bound(arm):
    """Regression: the between-stimuli clip used ``DelayBounds``' default ``w_max = 1`` while
    the classifier draws initial weights up to ``w_input`` (3 mV) and bounds STDP there, so the
    first update clipped every weight above 1 (the mean input weight fell from 1.5 to 0.83)."""
    from bioplastic.sklearn import RSNNClassifier

    rng = np.random.default_rng(3)
    X = [rng.random((30, 20)) < 0.1 for _ in range(4)]
    clf = RSNNClassifier(delay_learning=arm, n_per_class=3, n_epochs=1, max_delay_ms=5.0,
                         random_state=0).fit(X, [0, 1, 0, 1])
    learned = clf.topology_.pathway == 0
    assert clf.stdp_.w_max == 3.0                       # max(w_input, w_recurrent, 1)
    assert clf.state_.w[learned].max() > 1.0            # not clipped at the bounds' default
    assert clf.state_.w[learned].max() <= 3.0
    capped = RSNNClassifier(delay_learning=arm, n_per_class=3, n_epochs=1, max_delay_ms=5.0,
                            w_max=1.0, random_state=0).fit(X, [0, 1, 0, 1])
    assert capped.state_.w[learned].max() <= 1.0 and capped.stdp_.w_max == 1.0


def test_set_delays_refuses_bad_params_and_a_non_finite_state():
    """Found by the property suite: ``params=1.0`` gave an AttributeError, and a NaN membrane
    passed into the new state (which shares it) without a word."""
    topo, params, state = _one_neuron([0, 1], [1.0, 2.0])
    with pytest.raises(TypeError, match="params must be RSNNParams"):
        rsnn_set_delays(state, topo, 1.0, state.delay_ms)
    bad = state._replace(v=np.array([np.nan]))
    with pytest.raises(ValueError, match="state.v"):
        rsnn_set_delays(bad, topo, params, state.delay_ms)
    # a state straight from run_rsnn skips the checks (check=False), as present() does
    rsnn_set_delays(state, topo, params, state.delay_ms, check=False)


def test_set_delays_copy_false_takes_the_arrays_and_changes_nothing_else():
    """``copy=False`` (what ``present`` uses for its fresh arrays) gives the same state as the
    default, sharing the given float64 arrays instead of copying them."""
    rng, topo, w, d, params, stdp = _small_network(4)
    x = rng.random((10, topo.n_in)) < 0.3
    state = run_rsnn(x, rsnn_init(topo, params, w, d), topo, params, stdp).state
    d_new = np.minimum(state.delay_ms + 1.0, 6.0)
    w_new = state.w * 0.5
    copied = rsnn_set_delays(state, topo, params, d_new, weight=w_new)
    taken = rsnn_set_delays(state, topo, params, d_new, weight=w_new, check=False, copy=False)
    assert taken.delay_ms is d_new and taken.w is w_new
    assert not np.shares_memory(copied.delay_ms, d_new)
    assert not np.shares_memory(copied.w, w_new)
    for field in copied._fields:
        np.testing.assert_array_equal(getattr(taken, field), getattr(copied, field))
    # a non-float64 or strided array is still converted into a private copy
    strided = rsnn_set_delays(state, topo, params, np.repeat(d_new, 2)[::2], copy=False)
    np.testing.assert_array_equal(strided.delay_ms, d_new)
