"""LIF kernel: naive reference, analytic results, invariants, structure, bad input, twins."""

import math

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.neurons import (
    connectivity,
    connectivity_from_arrays,
    lif_advance,
    lif_init,
    lif_prepare,
    lif_step,
    no_connectivity,
)
from bioplastic.neurons.lif import is_homogeneous
from bioplastic.reference.lif import random_network, run_lif_kernel, unpack

from .naive import naive_lif


def small_network(seed, n=30, n_steps=150, max_delay=3):
    inputs = random_network(seed, n=n, n_steps=n_steps, p=0.15, max_delay_steps=max_delay)
    inputs["drive"] = inputs["drive"] + 6.0  # well above threshold: many spikes in 15 ms
    return inputs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_equals_naive_transcription(seed):
    inputs = small_network(seed)
    params, drive, conn = unpack(inputs)
    kp = lif_prepare(params, drive.shape[1])
    trace = bp.run_lif(drive, params, weight=conn, v0_mv=inputs["v0_mv"], record=("v", "theta"))
    spikes, v, theta = naive_lif(
        drive, params.tau_m_ms, kp.v_rest, kp.v_reset, kp.v_th, kp.ref_steps, params.tau_theta_ms,
        kp.theta_plus, params.dt_ms, inputs["pre"], inputs["post"], inputs["weight"],
        inputs["delay_steps"], inputs["v0_mv"])
    assert spikes.sum() > 20  # the comparison must exercise spikes, resets and synapses
    np.testing.assert_array_equal(trace.spikes, spikes)
    np.testing.assert_array_equal(trace["v"], v)
    np.testing.assert_array_equal(trace["theta"], theta)


HOMOGENEOUS = {"tau_m_ms": 10.0, "v_rest_mv": -65.0, "v_reset_mv": -67.5, "v_th_mv": -50.0,
               "t_ref_ms": 0.5, "tau_theta_ms": 50.0, "theta_plus_mv": 0.5}   # one value each


@pytest.mark.parametrize("seed", [0, 1])
def test_homogeneous_kernel_equals_naive_transcription(seed):
    """Scalar parameters are read once per step (stride-0 views), not per neuron: the same
    bits as the naive per-neuron transcription and as the per-neuron-array kernel."""
    inputs = {**small_network(seed), **HOMOGENEOUS}
    params, drive, conn = unpack(inputs)
    n = drive.shape[1]
    hoisted, arrays = lif_prepare(params, n), lif_prepare(params, n, hoist=False)
    assert is_homogeneous(hoisted) and not is_homogeneous(arrays)
    assert all(h.strides == (0,) and np.array_equal(h, a) for h, a in zip(hoisted, arrays,
                                                                          strict=True))
    runs = [bp.simulate(lif_advance, drive, lif_init(n, params, conn, v0_mv=inputs["v0_mv"]),
                        kp, conn, record=("v", "theta")) for kp in (hoisted, arrays)]
    spikes, v, theta = naive_lif(
        drive, params.tau_m_ms, arrays.v_rest, arrays.v_reset, arrays.v_th, arrays.ref_steps,
        params.tau_theta_ms, arrays.theta_plus, params.dt_ms, inputs["pre"], inputs["post"],
        inputs["weight"], inputs["delay_steps"], inputs["v0_mv"])
    assert spikes.sum() > 20    # spikes, resets, refractory steps and delayed synapses all run
    for trace in runs:
        np.testing.assert_array_equal(trace.spikes, spikes)
        np.testing.assert_array_equal(trace["v"], v)
        np.testing.assert_array_equal(trace["theta"], theta)


def test_parameters_are_hoisted_all_or_none_and_bit_for_bit():
    n = 4
    assert is_homogeneous(lif_prepare(bp.LIFParams(), n))
    # one per-neuron field keeps every field an ordinary array (two kernel types, not 2**7)
    mixed = lif_prepare(bp.LIFParams(tau_m_ms=np.array([5.0, 10.0, 10.0, 10.0])), n)
    assert not is_homogeneous(mixed) and all(v.strides == (8,) for v in mixed)
    # equal values but different bits (-0.0, 0.0) are not one value: theta += -0.0 and += 0.0
    # differ when theta is -0.0
    signed = lif_prepare(bp.LIFParams(theta_plus_mv=np.array([0.0, -0.0, 0.0, 0.0])), n)
    assert not is_homogeneous(signed)
    # an array argument whose entries are all equal is hoisted like the scalar
    assert is_homogeneous(lif_prepare(bp.LIFParams(v_th_mv=np.full(n, -50.0)), n))


def test_subthreshold_decay_is_exact_exponential():
    # dv/dt = (v_rest + I - v)/tau has v(t) = v_inf + (v0 - v_inf) exp(-t/tau), v_inf = v_rest + I.
    tau, dt, current, v0 = 20.0, 0.1, 5.0, -70.0
    params = bp.LIFParams(tau_m_ms=tau, dt_ms=dt, v_th_mv=0.0)
    trace = bp.run_lif(np.full((500, 1), current), params, v0_mv=v0)
    t = np.arange(1, 501) * dt
    v_inf = -65.0 + current
    expected = v_inf + (v0 - v_inf) * np.exp(-t / tau)
    np.testing.assert_allclose(trace["v"][:, 0], expected, rtol=1e-12)
    assert not trace.spikes.any()


def test_regular_firing_period_matches_closed_form():
    # Constant drive I: after a spike at step s, v is clamped until step s + ref, where
    # integration resumes; after m integration steps v_m = v_inf + (v_reset - v_inf) e^m,
    # which first exceeds v_th at m* = floor(log((v_th - v_inf) / (v_reset - v_inf)) / log(e))
    # + 1, i.e. at step s + ref + m* - 1.
    tau, dt, current, ref_ms = 10.0, 0.1, 20.0, 2.0
    params = bp.LIFParams(tau_m_ms=tau, dt_ms=dt, t_ref_ms=ref_ms)
    trace = bp.run_lif(np.full((3000, 1), current), params)
    steps = np.nonzero(trace.spikes[:, 0])[0]
    v_inf, e = -65.0 + current, math.exp(-dt / tau)
    m_star = math.floor(math.log((-50.0 - v_inf) / (-65.0 - v_inf)) / math.log(e)) + 1
    ref = round(ref_ms / dt)
    assert len(steps) > 10
    np.testing.assert_array_equal(np.diff(steps), ref + m_star - 1)


def test_simulate_equals_python_loop_over_step():
    inputs = small_network(3)
    params, drive, conn = unpack(inputs)
    n = drive.shape[1]
    state = lif_init(n, params, conn, v0_mv=inputs["v0_mv"])
    kp = lif_prepare(params, n)
    trace = bp.simulate(lif_advance, drive, state, kp, conn, record=("v",))
    for t in range(drive.shape[0]):
        spikes, state = lif_step(drive[t], state, kp, conn)
        np.testing.assert_array_equal(trace.spikes[t], spikes)
        np.testing.assert_array_equal(trace["v"][t], state.v)
    np.testing.assert_array_equal(trace.state.v, state.v)


def test_simulate_runs_the_advance_on_a_private_copy():
    inputs = small_network(9)
    params, drive, conn = unpack(inputs)
    n = drive.shape[1]
    state = lif_init(n, params, conn, v0_mv=inputs["v0_mv"])
    before = [np.array(a, copy=True) for a in state[:4]]
    kp = lif_prepare(params, n)
    first = bp.simulate(lif_advance, drive, state, kp, conn, record=("v", "theta"))
    again = bp.simulate(lif_advance, drive, state, kp, conn, record=("v", "theta"))
    np.testing.assert_array_equal(first.spikes, again.spikes)
    np.testing.assert_array_equal(first["v"], again["v"])
    np.testing.assert_array_equal(first["theta"], again["theta"])
    for a, b in zip(before, state[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.state.v is not state.v


def test_step_is_advance_on_a_copy():
    inputs = small_network(4, n_steps=60)
    params, drive, conn = unpack(inputs)
    n = drive.shape[1]
    kp = lif_prepare(params, n)
    state = lif_init(n, params, conn, v0_mv=inputs["v0_mv"])
    v0 = state.v.copy()
    spikes, new = lif_step(drive[0], state, kp, conn)
    np.testing.assert_array_equal(state.v, v0)
    assert new.step == 1 and state.step == 0
    spikes_generic, generic = bp.step_once(lif_advance, drive[0], state, kp, conn)
    np.testing.assert_array_equal(spikes, spikes_generic)
    np.testing.assert_array_equal(new.v, generic.v)


def test_continuing_from_final_state_equals_one_run():
    inputs = small_network(5)
    params, drive, conn = unpack(inputs)
    n = drive.shape[1]
    kp = lif_prepare(params, n)
    state = lif_init(n, params, conn, v0_mv=inputs["v0_mv"])
    whole = bp.simulate(lif_advance, drive, state, kp, conn)
    first = bp.simulate(lif_advance, drive[:70], state, kp, conn)
    second = bp.simulate(lif_advance, drive[70:], first.state, kp, conn)
    np.testing.assert_array_equal(whole.spikes, np.concatenate([first.spikes, second.spikes]))


def test_inputs_and_state_are_not_mutated():
    inputs = small_network(6)
    params, drive, conn = unpack(inputs)
    n = drive.shape[1]
    state = lif_init(n, params, conn, v0_mv=inputs["v0_mv"])
    copies = [a.copy() for a in (drive, state.v, state.theta, state.last_spike, state.history,
                                 conn.weight, conn.post)]
    bp.simulate(lif_advance, drive, state, lif_prepare(params, n), conn, record=("v",))
    for before, after in zip(copies, (drive, state.v, state.theta, state.last_spike,
                                      state.history, conn.weight, conn.post), strict=True):
        np.testing.assert_array_equal(before, after)


def _two_neurons(weight, delay_ms, drive0, n_steps=40):
    drive = np.zeros((n_steps, 2))
    drive[:, 0] = drive0
    conn = connectivity_from_arrays([0], [1], [weight], 2, 2, delay_ms=delay_ms)
    return bp.run_lif(drive, bp.LIFParams(t_ref_ms=0.0), weight=conn)


@pytest.mark.parametrize("delay_steps", [0, 1, 4])
def test_delay_of_k_steps_delivers_at_step_n_plus_k(delay_steps):
    trace = _two_neurons(5.0, delay_steps * 0.1, drive0=400.0)  # fires within a few steps
    silent = _two_neurons(0.0, delay_steps * 0.1, drive0=400.0)
    first = int(np.nonzero(trace.spikes[:, 0])[0][0])
    # Neuron 1 has no drive, so it differs from the run with a zero weight only once the
    # 5 mV spike arrives. (Not "v leaves -65": whether v stays exactly at rest depends on the
    # last bit of exp(-0.01). NumPy's AVX2 exp, correctly rounded, gives -64.99999999999999
    # after one step; the value one unit lower leaves -65.0, which is what the AVX-512
    # machines, where the old form of this test passed, must have computed.)
    added = trace["v"][:, 1] - silent["v"][:, 1]
    assert np.nonzero(added)[0][0] == first + delay_steps
    assert added[first + delay_steps] == pytest.approx(5.0)


def test_zero_delay_input_to_a_neuron_that_spikes_is_lost_like_brian2():
    # Neuron 0 spikes at step n and has a zero-delay self-synapse: Brian2 drops input to
    # targets that are refractory or just spiked, so v after the step is exactly v_reset.
    conn = connectivity(np.array([[50.0]]))
    trace = bp.run_lif(np.full((30, 1), 400.0), bp.LIFParams(t_ref_ms=0.0), weight=conn)
    spike_steps = np.nonzero(trace.spikes[:, 0])[0]
    assert spike_steps.size > 0
    np.testing.assert_array_equal(trace["v"][spike_steps, 0], -65.0)


def test_refractory_neuron_can_spike_again_after_exactly_t_ref():
    # 1e5 mV drive crosses threshold in the first integration step after the clamp ends.
    trace = bp.run_lif(np.full((200, 1), 1e5), bp.LIFParams(t_ref_ms=1.3))
    np.testing.assert_array_equal(np.diff(np.nonzero(trace.spikes[:, 0])[0]), 13)


def test_adaptive_threshold_lowers_the_rate():
    drive = np.full((3000, 1), 25.0)
    plain = bp.run_lif(drive, bp.LIFParams()).spikes.sum()
    adaptive = bp.run_lif(drive, bp.LIFParams(theta_plus_mv=2.0)).spikes.sum()
    assert 0 < adaptive < plain


def test_connectivity_round_trips_dense_weights(rng):
    dense = (rng.random((20, 15)) < 0.3) * rng.normal(size=(20, 15))
    conn = connectivity(dense)
    np.testing.assert_array_equal(conn.to_dense(20), dense)
    assert conn.n_synapses == np.count_nonzero(dense)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tau_m_ms": 0.0}, ValueError, "tau_m_ms"),
        ({"tau_m_ms": -5.0}, ValueError, "tau_m_ms"),
        ({"dt_ms": 0.0}, ValueError, "dt_ms"),
        ({"tau_theta_ms": np.nan}, ValueError, "tau_theta_ms"),
        ({"t_ref_ms": 0.25}, ValueError, "t_ref_ms"),
        ({"v_th_mv": np.ones(3)}, ValueError, "v_th_mv"),
        ({"v_th_mv": 1j}, TypeError, "v_th_mv"),
    ],
)
def test_bad_parameters_raise_naming_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        bp.run_lif(np.zeros((5, 4)), bp.LIFParams(**kwargs))


def test_bad_inputs_raise_naming_the_argument():
    with pytest.raises(ValueError, match="inputs"):
        bp.run_lif(np.full((5, 4), np.inf))
    with pytest.raises(ValueError, match="inputs"):
        bp.run_lif(np.zeros(5))
    with pytest.raises(TypeError, match="inputs"):
        bp.run_lif(np.zeros((5, 4), dtype=complex))
    with pytest.raises(ValueError, match="delay_ms"):
        bp.run_lif(np.zeros((5, 2)), weight=np.ones((2, 2)), delay_ms=0.15)
    with pytest.raises(ValueError, match="weight"):
        bp.run_lif(np.zeros((5, 2)), weight=np.ones((3, 3)))
    with pytest.raises(ValueError, match="record"):
        bp.run_lif(np.zeros((5, 2)), record=("u",))
    with pytest.raises(TypeError, match="params"):
        lif_prepare({"tau_m_ms": 1.0}, 3)


def test_record_units_subset_equals_full_record():
    inputs = small_network(8)
    params, drive, conn = unpack(inputs)
    full = run_lif_kernel(params, drive, conn, v0_mv=inputs["v0_mv"])
    part = run_lif_kernel(params, drive, conn, v0_mv=inputs["v0_mv"], record_idx=[3, 7])
    np.testing.assert_array_equal(full.state["v"][:, [3, 7]], part.state["v"])


def test_no_connectivity_equals_independent_neurons():
    drive = np.random.default_rng(9).uniform(10, 20, (100, 5))
    together = bp.run_lif(drive, weight=no_connectivity(5))
    for k in range(5):
        alone = bp.run_lif(drive[:, [k]])
        np.testing.assert_array_equal(together["v"][:, k], alone["v"][:, 0])


@pytest.mark.brian2
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_networks_equal_brian2_twin(seed):
    pytest.importorskip("brian2")
    from bioplastic.reference import TwinCase, compare
    from bioplastic.reference.lif import CASES, run_lif_twin

    inputs = small_network(seed, n=60, n_steps=300)
    if seed == 2:  # near-threshold: drive exactly at the mean threshold distance, little noise
        inputs["drive"] = 15.0 + np.random.default_rng(seed).normal(0, 0.05, inputs["drive"].shape)
    params, drive, conn = unpack(inputs)
    ours = run_lif_kernel(params, drive, conn, v0_mv=inputs["v0_mv"])
    twin = run_lif_twin(params, drive, conn, v0_mv=inputs["v0_mv"])
    case: TwinCase = CASES[0]
    comparison = compare(case, inputs, ours, twin)
    assert comparison.spikes_ours > 0
    assert comparison.spikes_equal and comparison.max_abs_diff == 0.0, comparison


def test_full_delivery_slots_fall_back_to_the_ring_with_the_same_bits():
    """A slot of the delivery queue holds the connectivity's blocks over its slots
    (``queue_capacity``: 3 here). Every neuron firing at every step (t_ref 0, strong drive)
    through synapses of 1-4 steps puts every block of the network (about 14) in each slot: it
    fills, and its step is delivered from the history ring instead. The result must still be
    the naive transcription's, bit for bit."""
    n, rng = 5, np.random.default_rng(11)
    pre, post = np.nonzero(~np.eye(n, dtype=bool))
    weight = rng.normal(0.0, 1.0, pre.size)
    delay_steps = rng.integers(1, 5, pre.size)
    # v_inf = v_rest + drive: one 0.1 ms step from v_reset lands 0.01 * drive - 65 mV high,
    # 25-35 mV above threshold, more than theta (0.2 mV per spike) grows in 40 steps
    drive = rng.uniform(3000.0, 4000.0, (40, n))
    params = bp.LIFParams(t_ref_ms=0.0, theta_plus_mv=0.2)
    conn = connectivity_from_arrays(pre, post, weight, n, n, delay_ms=delay_steps * 0.1)
    kp = lif_prepare(params, n, hoist=False)
    v0 = np.full(n, -60.0)
    trace = bp.simulate(lif_advance, drive, lif_init(n, params, conn, v0_mv=v0), kp, conn,
                        record=("v", "theta"))
    spikes, v, theta = naive_lif(drive, 10.0, kp.v_rest, kp.v_reset, kp.v_th, kp.ref_steps,
                                 100.0, kp.theta_plus, 0.1, pre, post, weight, delay_steps, v0)
    assert spikes.mean() > 0.9          # nearly every neuron at every step
    np.testing.assert_array_equal(trace.spikes, spikes)
    np.testing.assert_array_equal(trace["v"], v)
    np.testing.assert_array_equal(trace["theta"], theta)
    # the slots did fill (count -1), and a full slot keeps the state consistent
    half = bp.simulate(lif_advance, drive[:21], lif_init(n, params, conn, v0_mv=v0), kp, conn)
    assert (half.state.queue[:, 0] == -1).any()
    rest = bp.simulate(lif_advance, drive[21:], half.state, kp, conn)
    np.testing.assert_array_equal(np.concatenate([half.spikes, rest.spikes]), spikes)
