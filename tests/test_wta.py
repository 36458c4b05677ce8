"""Spiking lateral inhibition with STDP (bioplastic.neurons.wta) and its Brian2 twin."""

import numpy as np
import pytest

from bioplastic import simulate, simulate_blocks
from bioplastic.neurons import (
    WTAParams,
    input_connectivity,
    normalise_input_weights,
    poisson_spikes,
    present_blocks,
    run_wta,
    train_wta,
    wta_advance,
    wta_init,
    wta_normalise,
    wta_prepare,
    wta_step,
)
from bioplastic.neurons.wta import dense_weights
from bioplastic.reference._cases import TIERS
from bioplastic.rules import STDPParams, post_index

from .naive import naive_wta

DT = 0.5
SOFT = STDPParams(all_to_all=True, triplet=False, mu_dep=0.5, mu_pot=0.5, eta_pre=0.01,
                  eta_post=0.05)


def _network(seed, n=6, n_in=40, n_steps=200, max_delay=3, w_high=1.0, rate_hz=150.0):
    """A small strongly driven network: few inputs, so weights up to 1 make neurons spike."""
    rng = np.random.default_rng(seed)
    return {
        "spikes": poisson_spikes(np.full(n_in, rate_hz) * (rng.random(n_in) < 0.5), n_steps, DT,
                                 rng),
        "w0": rng.uniform(0.0, w_high, (n, n_in)),
        "delay_steps": rng.integers(0, max_delay + 1, (n, n_in)),
        "v0": rng.uniform(-70.0, -55.0, n),
    }


def _args(net, params=None, stdp=None):
    params = WTAParams() if params is None else params
    stdp = STDPParams() if stdp is None else stdp
    n = net["w0"].shape[0]
    conn = input_connectivity(net["w0"], delay_ms=net["delay_steps"] * DT, dt_ms=DT)
    state = wta_init(n, params, conn, v0_mv=net["v0"])
    return state, (wta_prepare(params, stdp), conn, post_index(conn.post, n)), conn


# ---------------------------------------------------------------- kernel = naive transcription


def _assert_equals_naive_wta(trace, net, params, stdp, conn):
    """The trace (recording ``v`` and ``theta``) equals the naive transcription bit for bit:
    spikes, voltages, thresholds and learned weights; returns the weights (dense)."""
    exc, inh, v, theta, w = naive_wta(net["spikes"], net["w0"], net["delay_steps"], params, stdp,
                                      net["v0"], 20.0)
    n = exc.shape[1]
    assert exc.sum() >= 3 and inh.sum() > 0         # the comparison exercises spikes
    np.testing.assert_array_equal(trace.spikes[:, :n], exc)
    np.testing.assert_array_equal(trace.spikes[:, n:], inh)
    np.testing.assert_array_equal(trace["v"], v)
    np.testing.assert_array_equal(trace["theta"], theta)
    # Both sides call libm exp, in the same order: equal bit for bit.
    np.testing.assert_array_equal(dense_weights(trace.state.w, conn, n), w)
    return w


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("variant", ["code", "soft-current"])
def test_kernel_equals_naive_transcription(seed, variant):
    net = _network(seed)
    params, stdp = WTAParams(), STDPParams()
    if variant == "soft-current":
        params = WTAParams(conductance=False, w_ei=600.0, w_ie=700.0)
        net["w0"] = net["w0"] * 60.0       # current synapses carry mV (see reference.wta)
        stdp = SOFT._replace(w_max=60.0)
    state, args, conn = _args(net, params, stdp)
    trace = simulate(wta_advance, net["spikes"], state, *args, record=("v", "theta"))
    w = _assert_equals_naive_wta(trace, net, params, stdp, conn)
    assert np.any(w != net["w0"])


# ---------------------------------------------------------------- invariants


def test_simulate_equals_python_loop_and_inputs_untouched():
    net = _network(3)
    state, args, _ = _args(net)
    snapshot = [np.copy(a) for a in state[:-1]]
    spikes_in = net["spikes"].copy()
    trace = simulate(wta_advance, net["spikes"], state, *args, record=("v", "w"))
    loop_state, loop_spikes = state, []
    for x in net["spikes"]:
        s, loop_state = wta_step(x, loop_state, *args)
        loop_spikes.append(s)
    np.testing.assert_array_equal(trace.spikes, np.array(loop_spikes))
    for field in loop_state._fields:
        np.testing.assert_array_equal(getattr(trace.state, field), getattr(loop_state, field))
    for before, after in zip(snapshot, state[:-1], strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(spikes_in, net["spikes"])


_JIT_OFF_SCRIPT = """
import sys, numpy as np
from bioplastic.neurons import WTAParams, input_connectivity, wta_init, wta_prepare, wta_step
from bioplastic.rules import STDPParams, post_index
data = np.load(sys.argv[1])
conn = input_connectivity(data["w0"], delay_ms=data["delay_steps"] * 0.5, dt_ms=0.5)
state = wta_init(6, WTAParams(), conn, v0_mv=data["v0"])
args = (wta_prepare(WTAParams(), STDPParams()), conn, post_index(conn.post, 6))
spikes = []
for x in data["spikes"]:
    s, state = wta_step(x, state, *args)
    spikes.append(s)
np.savez(sys.argv[2], spikes=np.array(spikes), w=state.w, v=state.v)
"""


def test_jit_on_equals_jit_off(tmp_path):
    """The whole step run as plain Python (BIOPLASTIC_DISABLE_JIT=1, every helper too) gives
    the jitted results bit for bit."""
    import os
    import subprocess
    import sys

    net = _network(10, n_steps=80)
    np.savez(tmp_path / "in.npz", w0=net["w0"], delay_steps=net["delay_steps"], v0=net["v0"],
             spikes=net["spikes"])
    env = {**os.environ, "BIOPLASTIC_DISABLE_JIT": "1"}
    subprocess.run([sys.executable, "-c", _JIT_OFF_SCRIPT, str(tmp_path / "in.npz"),
                    str(tmp_path / "out.npz")], env=env, check=True)
    state, args, _ = _args(net)
    trace = simulate(wta_advance, net["spikes"], state, *args)
    plain = np.load(tmp_path / "out.npz")
    assert trace.spikes.any()
    np.testing.assert_array_equal(plain["spikes"], trace.spikes)
    np.testing.assert_array_equal(plain["w"], trace.state.w)
    np.testing.assert_array_equal(plain["v"], trace.state.v)


def test_block_step_equals_single_steps():
    net = _network(4, n_steps=240)
    state, args, _ = _args(net)
    per_step = simulate(wta_advance, net["spikes"], state, *args)
    blocks = net["spikes"].reshape(4, 60, -1)     # (n_blocks, T_block, n_in)
    per_block = simulate_blocks(wta_advance, blocks, state, *args, record=("w",))
    np.testing.assert_array_equal(per_block.spikes.reshape(240, -1), per_step.spikes)
    for field in state._fields:
        np.testing.assert_array_equal(getattr(per_block.state, field),
                                      getattr(per_step.state, field))
    np.testing.assert_array_equal(per_block["w"][-1], per_step.state.w)


def test_block_normalisation_and_present_blocks():
    net = _network(5, n_steps=120)
    params = WTAParams(w_sum=7.8)
    state, args, conn = _args(net, params)
    blocks = net["spikes"].reshape(2, 60, -1)
    one = simulate_blocks(wta_advance, blocks[:1], state, *args, on_block=wta_normalise)
    spikes, after_one = one.spikes[0], one.state
    first = normalise_input_weights(state.w, conn, 6, 7.8)
    np.testing.assert_allclose(dense_weights(first, conn, 6).sum(axis=1), 7.8, rtol=1e-12)
    # The block ran from the normalised weights: same as a plain block from them.
    plain = simulate_blocks(wta_advance, blocks[:1], state._replace(w=first),
                            wta_prepare(WTAParams()), *args[1:])
    np.testing.assert_array_equal(spikes, plain.spikes[0])
    np.testing.assert_array_equal(after_one.w, plain.state.w)
    trace = present_blocks(blocks, params, w0=net["w0"], delay_ms=net["delay_steps"] * DT,
                           theta0_mv=20.0, record=("w",))
    assert trace.spikes.shape == (2, 60, 12) and trace["w"].shape == (2, conn.n_synapses)


# ---------------------------------------------------------------- analytic results


def _quiet(n=3, n_in=4):
    conn = input_connectivity(np.zeros((n, n_in)), dt_ms=DT)
    return conn, post_index(conn.post, n)


def test_subthreshold_relaxation_and_threshold_decay_are_euler():
    """No input: v - v_rest and theta shrink by (1 - dt/tau) per step (forward Euler)."""
    params = WTAParams(tau_theta_ms=10.0, theta_offset_mv=0.0)   # threshold -52 + theta
    conn, by_post = _quiet()
    state = wta_init(3, params, conn, v0_mv=np.array([-60.0, -64.0, -70.0]), theta0_mv=5.0)
    trace = simulate(wta_advance, np.zeros((50, 4), bool), state, wta_prepare(params), conn,
                     by_post, record=("v", "theta"))
    steps = np.arange(1, 51)[:, None]
    np.testing.assert_allclose(trace["v"] + 65.0,
                               (state.v + 65.0) * (1 - DT / params.tau_exc_ms) ** steps,
                               rtol=1e-12)
    np.testing.assert_allclose(trace["theta"], np.repeat(5.0 * (1 - DT / 10.0) ** steps, 3, 1),
                               rtol=1e-12)
    assert not trace.spikes.any()


def test_input_spike_delay_and_conductance_decay():
    """An input spike at step 5 with a delay of 3 steps reaches ge at step 8, then decays by
    (1 - dt/tau_ge) per step; the membrane first moves at step 9 (Brian2's schedule)."""
    w0 = np.zeros((1, 2))
    w0[0, 1] = 0.25
    conn = input_connectivity(w0, delay_ms=3 * DT, dt_ms=DT)
    spikes = np.zeros((14, 2), bool)
    spikes[5, 1] = True
    params = WTAParams()
    trace = simulate(wta_advance, spikes, wta_init(1, params, conn), wta_prepare(params), conn,
                     post_index(conn.post, 1), record=("ge", "v"))
    ge = trace["ge"][:, 0]
    assert np.all(ge[:8] == 0.0) and ge[8] == 0.25
    np.testing.assert_allclose(ge[9:], 0.25 * (1 - DT / params.tau_ge_ms) ** np.arange(1, 6))
    assert np.all(trace["v"][:9, 0] == -65.0) and trace["v"][9, 0] > -65.0


def test_threshold_adaptation_counts_spikes():
    """theta after the run = Euler decay of theta0 plus theta_plus per spike, decayed from the
    step of each spike (here tau_theta = 1e7 ms, so decay over 400 steps is ~2e-5)."""
    net = _network(6, n_steps=400)
    params = WTAParams(theta_plus_mv=0.5)
    state, args, _ = _args(net, params)
    trace = simulate(wta_advance, net["spikes"], state, *args)
    n = 6
    q = 1 - DT / params.tau_theta_ms
    expected = 20.0 * q ** 400 + np.array([
        sum(0.5 * q ** (399 - t) for t in np.nonzero(trace.spikes[:, k])[0]) for k in range(n)])
    assert trace.spikes[:, :n].sum() > 5
    np.testing.assert_allclose(trace.state.theta, expected, rtol=1e-12)


def test_partner_spikes_after_its_excitatory_neuron():
    """Exc k spikes at step s -> inh k receives w_ei and (with w_ei = 10.4) fires at s + 1 or
    later; inh k then inhibits every excitatory neuron but k."""
    net = _network(7)
    state, args, _ = _args(net)
    trace = simulate(wta_advance, net["spikes"], state, *args, record=("gi",))
    n = 6
    exc, inh = trace.spikes[:, :n], trace.spikes[:, n:]
    first_inh = np.argmax(inh.any(axis=1))
    assert inh[first_inh].any()
    ks = np.nonzero(inh[first_inh])[0]
    assert all(exc[:first_inh, k].any() for k in ks)          # each partner fired before
    # gi was exactly 0 before; now every exc neuron got w_ie from each spiking inh neuron
    # except its own partner.
    expected = WTAParams().w_ie * (len(ks) - np.isin(np.arange(n), ks))
    np.testing.assert_array_equal(trace["gi"][first_inh], expected)


def _winner_share(w_ie, seed=0):
    rng = np.random.default_rng(seed)
    n, n_in = 20, 784
    image = rng.uniform(0, 255, n_in) * (rng.random(n_in) < 0.25)
    spikes = poisson_spikes(image / 8.0 * 2.0, 700, DT, rng)     # one 350 ms presentation
    w0 = rng.uniform(0.0, 0.3, (n, n_in))
    trace = run_wta(spikes, WTAParams(w_ie=w_ie), w0=w0,
                    stdp=STDPParams(eta_pre=0.0, eta_post=0.0), record=())
    counts = trace.spikes[:, :n].sum(axis=0)
    return counts.max() / max(counts.sum(), 1), np.count_nonzero(counts)


def test_inhibition_makes_one_winner_dominate():
    """Same input, weights and thresholds: with lateral inhibition a few neurons take the spikes
    and the top one a large share; without it every neuron fires about equally. Measured over
    seeds 0-2: top share 0.38/0.45/0.27 with inhibition vs 0.054/0.056/0.051 without; active
    neurons 8/3/6 vs 20/20/20. The margins below sit well inside those gaps."""
    on = np.array([_winner_share(17.0, seed) for seed in range(3)])
    off = np.array([_winner_share(0.0, seed) for seed in range(3)])
    assert on[:, 0].mean() > 0.25 and off[:, 0].mean() < 0.1
    assert np.all(on[:, 1] <= 10) and np.all(off[:, 1] >= 18)


def test_poisson_spikes_rate():
    spikes = poisson_spikes(np.array([0.0, 20.0, 200.0]), 200_000, DT, seed=1)
    rates = spikes.mean(axis=0) / (DT * 0.001)
    # Binomial standard error at 200 Hz: sqrt(p(1-p)/T)/dt ~ 0.9 Hz; 5 sigma.
    np.testing.assert_allclose(rates, [0.0, 20.0, 200.0], atol=5.0)


@pytest.mark.parametrize("shape", [(5, 4), (1, 4), (11, 4), (2, 10, 4)])
def test_poisson_spikes_refuses_undocumented_rate_shapes(shape):
    # (5, 4) rates for 10 steps used to fail inside np.broadcast_to, naming neither argument
    with pytest.raises(ValueError, match=r"^rates_hz must have shape \(n_in,\) or \(n_steps, "
                                         r"n_in\) = \(10, \*\)"):
        poisson_spikes(np.full(shape, 10.0), 10, seed=0)


def test_poisson_spikes_documented_shapes():
    steps = np.array([[0.0, 2000.0]] * 3 + [[2000.0, 0.0]] * 3)   # p = 1 or 0 at dt = 0.5 ms
    np.testing.assert_array_equal(poisson_spikes(steps, 6, DT, seed=0), steps > 0)
    assert poisson_spikes(np.full(4, 10.0), 10, seed=0).shape == (10, 4)
    assert poisson_spikes(10.0, 10, seed=0).shape == (10, 1)            # a scalar: one input


def test_train_wta_protocol():
    """Seeded and reproducible; silent presentations are repeated at intensity + 1."""
    rng = np.random.default_rng(8)
    images = rng.uniform(0, 255, (3, 40)) * (rng.random((3, 40)) < 0.5)
    w0 = rng.uniform(0.0, 1.0, (6, 40))
    kwargs = {"seed": 3, "present_ms": 50.0, "rest_ms": 10.0, "intensity": 8.0}
    a = train_wta(images, w0=w0, **kwargs)
    b = train_wta(images, w0=w0, **kwargs)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.state.w, b.state.w)
    assert a.counts.shape == (3, 6) and np.all(a.counts.sum(axis=1) >= 5)
    assert a.state.step == 120 * (3 + int(a.repeats.sum()))     # 100 + 20 steps per block
    # Zero weights never spike: every image is repeated max_repeats times.
    silent = train_wta(images, w0=np.zeros((6, 40)), max_repeats=2, **kwargs)
    np.testing.assert_array_equal(silent.repeats, [2, 2, 2])
    np.testing.assert_array_equal(silent.intensities, [10.0, 10.0, 10.0])
    with pytest.raises(ValueError, match="images"):
        train_wta(images * 2.0, w0=w0)
    with pytest.raises(ValueError, match="min_spikes"):
        train_wta(images, w0=w0, min_spikes=-1)
    with pytest.raises(ValueError, match="present_ms"):
        train_wta(images, w0=w0, present_ms=0.0)


def test_diverging_run_raises():
    """Non-finite state after a block raises instead of returning garbage. With validated,
    finite parameters the resets keep v bounded, so the NaN is planted in a continued state."""
    rng = np.random.default_rng(9)
    images = rng.uniform(0, 255, (2, 40))
    w0 = np.full((6, 40), 0.5)
    first = train_wta(images[:1], w0=w0, seed=0, present_ms=10.0, rest_ms=0.0)
    broken = first.state._replace(ge=np.full(6, np.nan))
    with pytest.raises(FloatingPointError, match="diverged"):
        train_wta(images[1:], w0=w0, seed=0, present_ms=10.0, rest_ms=0.0, state=broken)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("params, match", [
    (WTAParams(dt_ms=0.0), "dt_ms"),
    (WTAParams(tau_exc_ms=-1.0), "tau_exc_ms"),
    (WTAParams(tau_ge_ms=0.0), "tau_ge_ms"),
    (WTAParams(tau_theta_ms=float("inf")), "tau_theta_ms"),
    (WTAParams(t_ref_exc_ms=0.3), "t_ref_exc_ms"),
    (WTAParams(v_th_inh_mv=float("nan")), "v_th_inh_mv"),
    (WTAParams(w_sum=-1.0), "w_sum"),
])
def test_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        wta_prepare(params)


def test_bad_inputs():
    w0 = np.full((2, 3), 0.1)
    with pytest.raises(TypeError, match="input_spikes"):
        run_wta(np.zeros((5, 3)), w0=w0)
    with pytest.raises(ValueError, match="3 inputs"):
        run_wta(np.zeros((5, 4), bool), w0=w0)
    with pytest.raises(ValueError, match="w0"):
        run_wta(np.zeros((5, 3), bool), w0=np.array([[np.nan, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="w0"):
        run_wta(np.zeros((5, 3), bool), w0=np.zeros(3))
    with pytest.raises(ValueError, match="delay_ms"):
        run_wta(np.zeros((5, 3), bool), w0=w0, delay_ms=0.3)
    with pytest.raises(TypeError, match="WTAParams"):
        wta_prepare({"dt_ms": 0.5})
    with pytest.raises(TypeError, match="conductance"):
        wta_prepare(WTAParams(conductance=1))
    with pytest.raises(ValueError, match="blocks"):
        present_blocks(np.zeros((5, 3), bool), w0=w0)
    with pytest.raises(ValueError, match="rates_hz"):
        poisson_spikes(np.array([-1.0]), 10)
    with pytest.raises(ValueError, match="<= 1"):
        poisson_spikes(np.array([5000.0]), 10)
    conn = input_connectivity(w0, dt_ms=DT)
    with pytest.raises(ValueError, match="w0"):
        wta_init(2, WTAParams(), conn, w0=np.zeros(5))
    with pytest.raises(ValueError, match="target"):
        wta_init(1, WTAParams(), conn)
    with pytest.raises(ValueError, match="total"):
        normalise_input_weights(conn.weight, conn, 2, 0.0)


# ---------------------------------------------------------------- Brian2 twin (live)


@pytest.mark.brian2
@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("variant", ["code", "soft"])
def test_equals_brian2_twin_small(seed, variant):
    """Kernel vs twin on fresh inputs: 20 exc + 20 inh neurons, 784 inputs, delays 0-2 ms."""
    pytest.importorskip("brian2")
    from bioplastic.reference import wta as ref

    inputs = ref.random_case(seed, n=20, n_steps=300, max_delay_ms=2.0, variant=variant)
    ours, twin = ref._kernel_case(inputs), ref._twin_case(inputs)
    assert ours.spike_steps.size > 10
    np.testing.assert_array_equal(ours.spike_steps, twin.spike_steps)
    np.testing.assert_array_equal(ours.spike_index, twin.spike_index)
    rtol = TIERS["T0"]["rtol"]
    for key, value in twin.state.items():
        scale = max(float(np.max(np.abs(value))), 1.0)
        np.testing.assert_allclose(ours.state[key], value, rtol=0, atol=rtol * scale,
                                   err_msg=key)


@pytest.mark.brian2
def test_twin_delivers_a_delay_of_k_steps_at_step_n_plus_k():
    """One input spike at step 4 through synapses of 0, 1 and 3 steps: ge of the three target
    neurons jumps at steps 4, 5 and 7 on both sides (Brian's spike queue vs our ring)."""
    pytest.importorskip("brian2")
    from bioplastic.reference import wta as ref

    w0 = np.zeros((3, 2))
    w0[:, 0] = [0.1, 0.2, 0.3]
    delays = np.array([[0, 0], [1, 0], [3, 0]])
    conn = input_connectivity(w0, delay_ms=delays * DT, dt_ms=DT)
    spikes = np.zeros((12, 2), bool)
    spikes[4, 0] = True
    ours = ref.run_wta_kernel(spikes, conn, 3)
    twin = ref.run_wta_twin(spikes, conn, 3)
    first = np.argmax(twin.state["ge"] > 0, axis=0)
    np.testing.assert_array_equal(first, [4, 5, 7])
    np.testing.assert_array_equal(ours.state["ge"], twin.state["ge"])
    np.testing.assert_array_equal(ours.state["w_final"], twin.state["w_final"])


@pytest.mark.brian2
def test_equals_brian2_twin_near_threshold():
    """Every excitatory neuron starts 0.01-0.5 mV under its threshold: which ones cross first
    decides the winner, so any schedule difference would show in the spikes."""
    pytest.importorskip("brian2")
    from bioplastic.reference import wta as ref

    inputs = ref.random_case(21, n=20, n_steps=200)
    rng = np.random.default_rng(21)
    inputs["v0_mv"] = -52.0 - rng.uniform(0.01, 0.5, 20)
    ours, twin = ref._kernel_case(inputs), ref._twin_case(inputs)
    np.testing.assert_array_equal(ours.spike_index, twin.spike_index)
    np.testing.assert_array_equal(ours.spike_steps, twin.spike_steps)
    np.testing.assert_allclose(ours.state["w_final"], twin.state["w_final"], rtol=0,
                               atol=TIERS["T0"]["rtol"])


def test_full_delivery_slots_fall_back_to_the_ring_with_the_same_bits():
    """Few inputs firing at most steps through synapses of 0-6 steps put more blocks in a slot
    of the delivery queue than it holds (``queue_capacity``): such steps are delivered from
    the history ring. Spikes, voltages, thresholds and learned weights must still be the
    naive transcription's, bit for bit."""
    net = _network(4, n=6, n_in=4, n_steps=200, max_delay=6, w_high=3.0, rate_hz=1500.0)
    net["spikes"][:, :] = np.random.default_rng(4).random(net["spikes"].shape) < 0.7
    params, stdp = WTAParams(), STDPParams()
    state, args, conn = _args(net, params, stdp)
    half = simulate(wta_advance, net["spikes"][:30], state, *args)
    assert (half.state.queue[:, 0] == -1).any()    # a slot was full at step 30
    trace = simulate(wta_advance, net["spikes"], state, *args, record=("v", "theta"))
    _assert_equals_naive_wta(trace, net, params, stdp, conn)
    rest = simulate(wta_advance, net["spikes"][30:], half.state, *args)
    np.testing.assert_array_equal(np.concatenate([half.spikes, rest.spikes]), trace.spikes)
