"""Dense STC kernel (bioplastic.neurons.stc): naive transcription, reductions, bad input."""

import numpy as np
import pytest

from bioplastic.neurons.stc import (
    STCParams,
    run_stc,
    sigmoid,
    stc_advance,
    stc_init,
    stc_modulators,
    stc_prepare,
    stc_step,
)
from bioplastic.simulate import simulate

from .naive import naive_stc

LMH = dict(lmh_d_u=0.3, lmh_s_u=-0.4, lmh_d_p=0.2, lmh_s_p=-0.1)


def _random_case(rng, n=12, n_steps=60, density=0.5, high=1.6):
    w_h = rng.normal(0, 1.0, (n, n)) * (rng.random((n, n)) < density)
    w_v = rng.normal(0, 1.0, (n, n)) * (rng.random((n, n)) < density)
    current = rng.uniform(-0.2, high, (n_steps, n))
    return w_h, w_v, current


@pytest.mark.parametrize("base", ["lif", "plif", "lmh"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_equals_naive(base, seed):
    rng = np.random.default_rng(seed)
    w_h, w_v, current = _random_case(rng)
    extra = dict(plif_w=0.7) if base == "plif" else (LMH if base == "lmh" else {})
    params = STCParams(base=base, bias_h=-0.2, bias_v=0.1, **extra)
    trace = run_stc(current, params, w_h=w_h, w_v=w_v, record=("h", "alpha", "beta"))
    lmh = tuple(LMH.values()) if base == "lmh" else (0.0,) * 4
    spikes, h, alpha, beta = naive_stc(current, w_h, w_v, base=base, bias_h=-0.2, bias_v=0.1,
                                       plif_w=extra.get("plif_w", 0.0), lmh=lmh)
    assert trace.spikes.any() and not trace.spikes.all()
    np.testing.assert_array_equal(trace.spikes, spikes)
    np.testing.assert_array_equal(trace["h"], h)
    np.testing.assert_array_equal(trace["alpha"], alpha)
    np.testing.assert_array_equal(trace["beta"], beta)


@pytest.mark.parametrize("rate, first_spikes", [
    # hand-derived (docs/stc.md): floor(t*I) spikes after t steps (steps counted from 1)
    (3 / 8, [3, 6, 8, 11, 14, 16]),
    (1 / 4, [4, 8, 12, 16]),   # H reaches exactly 1.0: fires only because the test is >=
])
def test_zero_modulators_are_if_with_soft_reset(rate, first_spikes):
    n_steps = 64
    trace = run_stc(np.full((n_steps, 1), rate), record=("alpha", "beta"))
    steps = np.flatnonzero(trace.spikes[:, 0]) + 1
    np.testing.assert_array_equal(steps[:len(first_spikes)], first_spikes)
    t = np.arange(1, n_steps + 1)
    np.testing.assert_array_equal(np.cumsum(trace.spikes[:, 0]), np.floor(t * rate))
    assert np.all(trace["alpha"] == 1.0) and np.all(trace["beta"] == 1.0)


def test_quarter_rate_does_not_fire_with_strict_threshold():
    # Guard for the test above: just below 1.0 (one ulp) the neuron must not fire at step 4.
    trace = run_stc(np.full((4, 1), 0.25), STCParams(v_th=np.nextafter(1.0, 2.0)))
    assert not trace.spikes.any()


def test_zero_modulators_plif_is_corrected_plif(rng):
    current = rng.uniform(0, 1.5, (200, 5))
    w = 0.8
    trace = run_stc(current, STCParams(base="plif", plif_w=w))
    k = float(sigmoid(w))
    h, spikes = np.zeros(5), []
    for x in current:   # sigma(w) H + (1 - sigma(w)) I, soft reset, >= threshold
        h = k * h + (1.0 - k) * x
        s = h >= 1.0
        h = h - 1.0 * s
        spikes.append(s)
    np.testing.assert_array_equal(trace.spikes, np.array(spikes))
    np.testing.assert_array_equal(trace.state.h, h)


def test_zero_modulators_lmh_is_lmh(rng):
    current = rng.uniform(0, 1.0, (200, 4))
    trace = run_stc(current, STCParams(base="lmh", **LMH), record=("h", "d"))
    sig = lambda z: float(sigmoid(z))  # noqa: E731
    h, d = np.zeros(4), np.zeros(4)
    for t, x in enumerate(current):   # LM-H (docs/stc.md), reset by the (detached) spike
        d = ((sig(0.3) - 0.5) * d + (sig(-0.4) - 0.5) * h) + x
        h_s = (sig(0.2) + 0.5) * d + (sig(-0.1) + 0.5) * h
        s = h_s >= 1.0
        h = h_s - 1.0 * s
        np.testing.assert_array_equal(trace.spikes[t], s)
        np.testing.assert_array_equal(trace["h"][t], h)
        np.testing.assert_array_equal(trace["d"][t], d)


def test_autapse_gates_read_previous_spikes():
    # One neuron, autapse A_h = 2: after a spike alpha = 1 + tanh(2), otherwise 1.
    current = np.array([[1.0], [0.25], [0.0]])
    trace = run_stc(current, w_h=np.array([[2.0]]), record=("alpha", "h"))
    np.testing.assert_array_equal(trace.spikes[:, 0], [True, False, False])
    np.testing.assert_array_equal(trace["alpha"][:, 0], [1.0, 1.0 + np.tanh(np.array([2.0]))[0],
                                                         1.0])


def test_step_equals_advance_and_leaves_inputs_alone(rng):
    w_h, w_v, current = _random_case(rng, n=6, n_steps=30)
    params = STCParams(base="plif", plif_w=-0.3)
    kp, mods = stc_prepare(params, 6), stc_modulators(w_h, w_v, 6)
    state0 = stc_init(6, params)
    copies = [a.copy() for a in (w_h, w_v, current)]
    state, spikes = state0, []
    for x in current:
        s, state = stc_step(x, state, kp, mods)
        spikes.append(s)
    trace = simulate(stc_advance, current, state0, kp, mods, record=("h",))
    np.testing.assert_array_equal(trace.spikes, np.array(spikes))
    np.testing.assert_array_equal(trace.state.h, state.h)
    assert not np.any(state0.h) and not np.any(state0.s)
    for a, b in zip(copies, (w_h, w_v, current), strict=True):
        np.testing.assert_array_equal(a, b)


def _stacked_column_scan(w_h, w_v):
    """The expected lists: the non-zero entries of [A_h; A_v] column by column, rows
    ascending (NumPy's nonzero on the transpose, a different algorithm from the packing)."""
    stacked = np.vstack([w_h, w_v])
    pre, row = np.nonzero(stacked.T)
    indptr = np.r_[0, np.cumsum(np.count_nonzero(stacked, axis=0))]
    return indptr, row, stacked[row, pre]


def test_modulators_pre_major_order(rng):
    # both gates in one list of the stacked matrix, column by column, rows ascending (so A_h's
    # entries first); -0.0 and +0.0 are both left out (adding either to a sum that starts at
    # +0.0 changes nothing)
    w_h = rng.normal(size=(9, 9)) * (rng.random((9, 9)) < 0.5)
    w_v = rng.normal(size=(9, 9)) * (rng.random((9, 9)) < 0.3)
    w_h[0, 1], w_h[2, 3] = -0.0, 0.0
    mods = stc_modulators(w_h, w_v, 9)
    assert mods.post.dtype == np.uint16 and mods.indptr.dtype == np.int64
    pre = np.repeat(np.arange(9), np.diff(mods.indptr))
    np.testing.assert_array_equal(np.lexsort((mods.post, pre)), np.arange(pre.size))
    assert mods.post.size == np.count_nonzero(w_h) + np.count_nonzero(w_v)
    assert np.all(mods.w != 0.0)
    dense = np.zeros((18, 9))
    dense[mods.post, pre] = mods.w
    np.testing.assert_array_equal(dense, np.vstack([w_h, w_v]))
    empty = stc_modulators(None, None, 9)
    assert empty.post.size == 0 and not np.any(empty.indptr)
    only_v = stc_modulators(None, w_v, 9)
    assert only_v.post.min() >= 9                          # rows n + i: the spatial gate


@pytest.mark.parametrize("n, density", [(100, 0.02), (100, 1.0), (64, 0.3), (33, 0.0)])
def test_modulators_of_larger_layers_equal_a_column_scan(rng, n, density):
    # the packing counts blocks of 32 entries before it scans them and appends to a growing
    # list (1.0 dense: 10,000 entries, past the first capacity of 1,024); 100 = 3 blocks + 4
    w_h = rng.normal(size=(n, n)) * (rng.random((n, n)) < density)
    w_v = rng.normal(size=(n, n)) * (rng.random((n, n)) < density / 2)
    w_h[rng.integers(n), rng.integers(n)] = -0.0
    mods = stc_modulators(w_h, w_v, n)
    for got, expected in zip(mods, _stacked_column_scan(w_h, w_v), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_non_finite_modulator_weight_past_the_first_block_is_named(rng):
    w = rng.normal(size=(70, 70)) * (rng.random((70, 70)) < 0.05)
    w[50, 66] = np.inf                       # in the tail of a row after two blocks
    with pytest.raises(ValueError, match="w_v"):
        stc_modulators(None, w, 70)
    w[50, 66], w[3, 40] = 0.0, np.nan        # in a block
    with pytest.raises(ValueError, match="w_v"):
        stc_modulators(None, w, 70)


def test_post_index_dtype_is_the_narrowest_unsigned_that_fits():
    from bioplastic.neurons.stc import post_dtype

    # uint16 holds the indices 0 .. 65,535 of 65,536 rows (stc_modulators asks for 2n rows:
    # uint16 up to 32,768 neurons)
    assert [post_dtype(n) for n in (1, 65_536, 65_537, 2**32)] == \
        [np.uint16, np.uint16, np.uint32, np.uint32]


def test_twin_synapses_are_the_union_of_both_gates_in_pre_post_order(rng):
    from bioplastic.reference.stc import modulator_synapses

    w_h = rng.normal(size=(7, 7)) * (rng.random((7, 7)) < 0.4)
    w_v = rng.normal(size=(7, 7)) * (rng.random((7, 7)) < 0.4)
    pre, post, a, b = modulator_synapses(w_h, w_v, 7)
    np.testing.assert_array_equal(np.lexsort((post, pre)), np.arange(pre.size))
    assert pre.size == np.count_nonzero((w_h != 0) | (w_v != 0))
    np.testing.assert_array_equal(a, w_h[post, pre])
    np.testing.assert_array_equal(b, w_v[post, pre])


# ---------------------------------------------------------------------------- bad input
def test_bad_modulator_shape_names_argument():
    with pytest.raises(ValueError, match="w_v must have shape"):
        run_stc(np.zeros((3, 4)), w_v=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="w_h must be 2-dimensional"):
        run_stc(np.zeros((3, 4)), w_h=np.zeros(4))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_and_weights(bad):
    current = np.zeros((3, 2))
    current[1, 1] = bad
    with pytest.raises(ValueError, match="inputs must contain only finite"):
        run_stc(current)
    w = np.zeros((2, 2))
    w[0, 1] = bad
    with pytest.raises(ValueError, match="w_h must contain only finite"):
        run_stc(np.zeros((3, 2)), w_h=w)


def test_zero_length_sequence():
    with pytest.raises(ValueError, match="inputs must have shape"):
        run_stc(np.zeros((0, 3)))


def test_bad_params():
    with pytest.raises(ValueError, match="base must be one of"):
        stc_prepare(STCParams(base="glif"), 3)
    with pytest.raises(TypeError, match="params must be STCParams"):
        stc_prepare({"base": "lif"}, 3)
    with pytest.raises(ValueError, match="v_th must have shape"):
        stc_prepare(STCParams(v_th=np.ones(2)), 3)


@pytest.mark.parametrize("v_th", [0.0, -1.0, [1.0, 0.0, 1.0]])
def test_non_positive_threshold_is_refused(v_th):
    # v_th <= 0 fires every step, and the soft reset H - v_th*S then adds to the membrane
    with pytest.raises(ValueError, match="v_th must be > 0"):
        run_stc(np.full((5, 3), 0.5), STCParams(v_th=v_th))
    with pytest.raises(ValueError, match="v_th must be > 0"):
        stc_prepare(STCParams(v_th=v_th), 3)


def test_stc_step_takes_array_likes_as_run_stc_does():
    n, rng = 4, np.random.default_rng(4)
    w_h, w_v, current = _random_case(rng, n=n, n_steps=12)
    kp, mods = stc_prepare(STCParams(), n), stc_modulators(w_h, w_v, n)
    state, spikes = stc_init(n), []
    for x_t in current.tolist():                  # lists of Python floats
        s, state = stc_step(x_t, state, kp, mods)
        spikes.append(s)
    trace = run_stc(current.tolist(), w_h=w_h, w_v=w_v)
    np.testing.assert_array_equal(np.array(spikes), trace.spikes)
    np.testing.assert_array_equal(state.h, trace.state.h)
    with pytest.raises(ValueError, match="x must contain only finite"):
        stc_step([np.nan] * n, stc_init(n), kp, mods)


def test_tensors_that_require_grad_are_named():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"inputs is a torch tensor that requires grad; pass "
                                        r"inputs\.detach\(\)"):
        run_stc(torch.rand(5, 3, requires_grad=True))
    with pytest.raises(TypeError, match=r"w_h .*requires grad"):
        run_stc(np.ones((5, 3)), w_h=torch.zeros(3, 3, requires_grad=True))
