"""PCNN kernel: golden values (Zhan 1-D), closed forms, reductions, naive transcription,
invariants, bad input. Constants cite shared/spec/pcnn.md sections."""

import math

import numpy as np
import pytest

from bioplastic import simulate
from bioplastic.neurons.pcnn import (
    SCM_KERNEL,
    PCNNParams,
    PCNNState,
    convention_b_to_a,
    otsu_threshold,
    pcnn_advance,
    pcnn_init,
    pcnn_prepare,
    pcnn_step,
    run_pcnn,
)

from .naive import naive_pcnn, naive_scm_signature, naive_zhan_convention_b

ZHAN_S = np.array([0.5, 0.35, 0.5, 0.8, 0.63, 0.5, 0.99])   # spec §2, Zhan 1-D demo
# Spike table of spec §2.1 (Zhan's indexing: t = 1..40 are the iterations).
ZHAN_TABLE = [
    [2, 9, 16, 23, 29, 35],
    [3, 10, 18, 26, 34],
    [2, 8, 14, 20, 27, 33, 40],
    [2, 7, 12, 17, 21, 26, 31, 36],
    [2, 8, 13, 19, 25, 31, 37],
    [2, 8, 14, 20, 26, 32, 38],
    [1, 5, 9, 14, 18, 22, 27, 31, 35, 39],
]


def _random_params(rng, n_maps, coupling, k=3, **extra):
    """Random parameters in the ranges of the twin cases (bioplastic.reference.pcnn)."""
    shape_of = {"intra": (n_maps, k, k), "inter": (n_maps, n_maps, k, k)}
    kernels = {}
    if coupling != "none":
        kernels = {"feeding_kernel": rng.uniform(0, 0.5, shape_of[coupling]),
                   "linking_kernel": rng.uniform(-0.2, 0.8, shape_of[coupling])}
    values = dict(decay_f=rng.uniform(0.5, 0.95, n_maps), decay_l=rng.uniform(0.2, 0.9, n_maps),
                  decay_e=rng.uniform(0.5, 0.9, n_maps), decay_u=rng.uniform(0, 0.3, n_maps),
                  v_f=rng.uniform(0.02, 0.2, n_maps), v_l=rng.uniform(0.1, 0.5, n_maps),
                  v_e=rng.uniform(2, 10, n_maps), beta=rng.uniform(0, 1, n_maps))
    values.update(extra)
    return PCNNParams(**values, coupling=coupling, **kernels)


def _naive(params, drive, fast_linking=False):
    kp = pcnn_prepare(params, drive.shape[1:])
    feed, link = kp.feeding_weights, kp.linking_weights
    e0 = pcnn_init(drive.shape[1:], params).e
    return naive_pcnn(drive, kp.decay_f, kp.decay_l, kp.decay_u, kp.decay_e, kp.v_f, kp.v_l,
                      kp.v_e, kp.beta, e0, feed, link, fast_linking=fast_linking)


# ------------------------------------------------------------------------- golden: Zhan 1-D


def test_zhan_1d_spike_table_and_final_state():
    trace = run_pcnn(ZHAN_S[None], PCNNParams.zhan_1d(), n_steps=40, record=("f", "l", "u", "e"))
    times = [(np.nonzero(trace.spikes[:, 0, k])[0] + 1).tolist() for k in range(7)]
    assert times == ZHAN_TABLE
    assert trace.spikes.sum() == 50                      # spec §2.1: 50 spikes in total
    # Centre neuron (3) at t = 40, spec §2.1; E_B[40] = E_A[39] (Convention A index shift).
    np.testing.assert_allclose(trace["f"][-1, 0, 3], 4.596770654459609, rtol=1e-12)
    np.testing.assert_allclose(trace["l"][-1, 0, 3], 0.11076338518975051, rtol=1e-12)
    np.testing.assert_allclose(trace["u"][-1, 0, 3], 4.851347593774036, rtol=1e-12)
    np.testing.assert_allclose(trace["e"][-2, 0, 3], 5.228568576409659, rtol=1e-12)


def test_zhan_convention_a_threshold_is_shifted_convention_b():
    """E_A[t-1] equals Zhan's E[t] for every t, and the spike times agree (spec §2.1)."""
    params = PCNNParams.zhan_1d()
    assert params.e0 == params.decay_e * 1.0 + 6.0 * 0.0     # E_A[0] = e^-0.2 E_B[0] + V_E Y_B[0]
    trace = run_pcnn(ZHAN_S[None], params, n_steps=40, record=("e",))
    e_a = np.concatenate([[np.full(7, params.e0)], trace["e"][:, 0]])   # E_A[0..40]
    for t in range(1, 41):
        times, *_, e_b = naive_zhan_convention_b(ZHAN_S, n_steps=t)
        np.testing.assert_allclose(e_a[t - 1], e_b, rtol=1e-13)
    assert times == ZHAN_TABLE


# -------------------------------------------------------------- kernel ≡ naive transcription


@pytest.mark.parametrize("coupling,n_maps", [("none", 2), ("intra", 1), ("intra", 3),
                                             ("inter", 3)])
def test_kernel_equals_naive(coupling, n_maps):
    rng = np.random.default_rng(7)
    params = _random_params(rng, n_maps, coupling, e0=rng.uniform(0, 1, (n_maps, 9, 11)))
    drive = rng.uniform(0, 1, (60, n_maps, 9, 11))       # time-varying stimulus
    trace = run_pcnn(drive, params, record=("f", "l", "u", "e"))
    spikes, states = _naive(params, drive)
    np.testing.assert_array_equal(trace.spikes, spikes)
    assert spikes.sum() > 100                            # the comparison sees real activity
    for field in "flue":
        np.testing.assert_allclose(trace[field], states[field], rtol=1e-12, atol=1e-12)


def test_non_square_and_5x3_kernels_equal_naive():
    rng = np.random.default_rng(8)
    params = PCNNParams(feeding_kernel=rng.uniform(0, 1, (5, 3)),
                        linking_kernel=rng.uniform(0, 1, (3, 5)), coupling="intra")
    drive = rng.uniform(0, 1, (40, 1, 6, 13))
    trace = run_pcnn(drive, params, record=("u",))
    spikes, states = _naive(params, drive)
    np.testing.assert_array_equal(trace.spikes, spikes)
    np.testing.assert_allclose(trace["u"], states["u"], rtol=1e-12)


@pytest.mark.parametrize("mode", [True, "leaky"])
def test_fast_linking_equals_naive(mode):
    rng = np.random.default_rng(9)
    params = _random_params(rng, 2, "intra", fast_linking=mode, beta=np.array([2.0, 3.0]))
    drive = rng.uniform(0, 1, (50, 2, 10, 10))
    trace = run_pcnn(drive, params, record=("l", "u", "e"))
    spikes, states = _naive(params, drive, fast_linking=mode)
    np.testing.assert_array_equal(trace.spikes, spikes)
    for field in "lue":
        np.testing.assert_allclose(trace[field], states[field], rtol=1e-12, atol=1e-12)
    # Fast linking must change something here, or the comparison proves little.
    plain = run_pcnn(drive, params._replace(fast_linking=False))
    assert not np.array_equal(plain.spikes, trace.spikes)


@pytest.mark.parametrize("mode", [True, "leaky"])
def test_fast_linking_without_linking_changes_nothing(mode):
    """Spec §4.9: with beta = 0 either fast-linking variant leaves the pulses unchanged."""
    rng = np.random.default_rng(10)
    params = _random_params(rng, 1, "intra", beta=0.0)
    image = rng.uniform(0, 1, (12, 12))
    plain = run_pcnn(image, params, n_steps=80)
    fast = run_pcnn(image, params._replace(fast_linking=mode), n_steps=80)
    np.testing.assert_array_equal(plain.spikes, fast.spikes)


def test_fast_linking_synchronises_a_region_in_one_iteration():
    """A uniform region touched by one early pulse fires as a whole within that iteration."""
    image = np.full((1, 15), 0.5)
    image[0, 0] = 0.9     # the brightest pixel fires first and recruits its neighbours
    params = PCNNParams(decay_f=0.0, decay_l=0.0, v_f=0.0, v_l=1.0, beta=10.0, v_e=50.0,
                        decay_e=0.7, e0=0.8, linking_kernel=np.array([[1.0, 0.0, 1.0]]),
                        coupling="intra", fast_linking=True)
    # Iteration 1: only pixel 0 has U = 0.9 > E = 0.8; U = 0.5 (1 + 10 L) > 0.8 needs one
    # pulsing neighbour (L = 1), so fast linking carries a wave along the whole row at once.
    trace = run_pcnn(image, params, n_steps=2)
    assert trace.spikes[0].all()
    slow = run_pcnn(image, params._replace(fast_linking=False), n_steps=2)
    assert slow.spikes[0].sum() == 1 and slow.spikes[1].sum() == 1 and slow.spikes[1, 0, 1]


# ----------------------------------------------------------------- closed forms, reductions


def _isolated(s, a, g, e0, v_e=0.0, n_steps=60):
    params = PCNNParams(decay_f=a, decay_e=g, v_e=v_e, e0=e0, beta=0.0)
    return run_pcnn(np.array([[s]]), params, n_steps=n_steps).spikes[:, 0, 0]


def test_first_spike_closed_form():
    """Spec §4.1: n* = min{n >= 1 : S(1 - a^n)/(1 - a) > E0 g^(n-1)} (beta = 0, no coupling)."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(300):
        s, a, g, e0 = rng.uniform(0.05, 1), rng.uniform(0, 0.99), rng.uniform(0.3, 0.99), \
            rng.uniform(0.1, 20)
        n = np.arange(1, 201)
        margin = s * (1 - a**n) / (1 - a) - e0 * g ** (n - 1)
        n_star = int(n[np.argmax(margin > 0)])
        if np.min(np.abs(margin[:n_star])) < 1e-9:      # too close to a tie to decide
            continue
        spikes = _isolated(s, a, g, e0, v_e=5.0, n_steps=200)
        assert np.argmax(spikes) + 1 == n_star
        checked += 1
    assert checked > 250


def test_asymptotic_period():
    """Spec §4.2: period P when V_E g^(P-1)/(1 - g^P) < F_inf <= V_E g^(P-2)/(1 - g^P),
    otherwise intervals alternating between two neighbouring integers."""
    rng = np.random.default_rng(12)
    for _ in range(40):
        s, a, g, v_e = rng.uniform(0.1, 1), rng.uniform(0, 0.9), rng.uniform(0.5, 0.95), \
            rng.uniform(1, 20)
        f_inf = s / (1 - a)
        isi = np.diff(np.nonzero(_isolated(s, a, g, 1.0, v_e=v_e, n_steps=3000))[0])[-40:]
        periods = [p for p in range(2, 500) if
                   v_e * g ** (p - 1) / (1 - g**p) < f_inf <= v_e * g ** (p - 2) / (1 - g**p)]
        if f_inf > v_e * g / (1 - g) and not periods:      # P = 1 (upper bound infinite)
            periods = [1]
        if periods:
            assert set(isi) == {periods[0]}
        else:
            assert isi.max() - isi.min() <= 1


def test_no_threshold_dynamics_fires_every_step_after_crossing():
    """Spec §4.3: V_E = 0, g = 1: fires on every step from the first n with F[n] > E0."""
    s, a, e0 = 0.3, 0.8, 1.2
    spikes = _isolated(s, a, 1.0, e0, v_e=0.0, n_steps=50)
    f = s * (1 - a ** np.arange(1, 51)) / (1 - a)
    np.testing.assert_array_equal(spikes, f > e0)
    assert spikes.any() and not spikes[0]


def test_beta_zero_makes_linking_irrelevant():
    """Spec §4.4: beta = 0 gives U = F whatever L is."""
    rng = np.random.default_rng(13)
    params = _random_params(rng, 2, "intra", beta=0.0, decay_u=0.0)
    image = rng.uniform(0, 1, (2, 10, 10))
    trace = run_pcnn(image, params, n_steps=60, record=("f", "u", "l"))
    np.testing.assert_array_equal(trace["u"], trace["f"])
    assert np.abs(trace["l"]).max() > 0
    other = run_pcnn(image, params._replace(linking_kernel=rng.uniform(0, 5, (2, 3, 3))),
                     n_steps=60)
    np.testing.assert_array_equal(other.spikes, trace.spikes)


def test_silence():
    """Spec §4.5: zero stimulus and no prior pulses: nothing fires, L stays 0."""
    rng = np.random.default_rng(14)
    params = _random_params(rng, 2, "inter")
    trace = run_pcnn(np.zeros((2, 8, 8)), params, n_steps=50, record=("l",))
    assert not trace.spikes.any() and not trace["l"].any()


def test_mirror_symmetry_and_synchronisation():
    """Spec §4.6: symmetric kernels, mirrored stimulus -> mirrored pulses; identical pixels
    with identical neighbourhoods pulse together."""
    rng = np.random.default_rng(15)
    kernel = rng.uniform(0, 1, (3, 3))
    kernel = kernel + kernel[:, ::-1]                    # mirror-symmetric left-right
    params = PCNNParams(feeding_kernel=kernel, linking_kernel=kernel, coupling="intra")
    image = rng.uniform(0, 1, (9, 12))
    left = run_pcnn(image, params, n_steps=100).spikes
    right = run_pcnn(image[:, ::-1], params, n_steps=100).spikes
    np.testing.assert_array_equal(left[:, :, ::-1], right)
    flat = run_pcnn(np.full((6, 6), 0.4), params._replace(e0=0.3), n_steps=60).spikes
    interior = flat[:, 1:-1, 1:-1].reshape(60, -1)
    assert (interior == interior[:, :1]).all()           # all interior pixels in lock-step


def test_monotone_first_spike():
    """Spec §4.7: for an isolated neuron a larger S never gives a later first spike."""
    rng = np.random.default_rng(16)
    for _ in range(50):
        a, g, e0 = rng.uniform(0, 0.95), rng.uniform(0.3, 0.95), rng.uniform(0.5, 10)
        firsts = [int(np.argmax(_isolated(s, a, g, e0, v_e=3.0, n_steps=300)))
                  for s in np.linspace(0.2, 2.0, 12)]
        assert all(x >= y for x, y in zip(firsts, firsts[1:], strict=False))


def test_conventions_agree_on_a_grid():
    """Spec §4.8: a Convention-B map from (E_B[0], Y_B[0]) pulses like Convention A from
    convention_b_to_a(E_B[0], Y_B[0])."""
    from .naive import naive_correlate

    rng = np.random.default_rng(17)
    params = _random_params(rng, 1, "intra", decay_u=0.0)
    kp = pcnn_prepare(params, (1, 10, 10))
    feed, link = kp.feeding_weights, kp.linking_weights
    image = rng.uniform(0, 1, (1, 10, 10))
    e_b0 = rng.uniform(0, 2, (1, 10, 10))
    e_b, y_b = e_b0.copy(), np.zeros((1, 10, 10))
    f = l = np.zeros((1, 10, 10))
    pulses_b = []
    for _ in range(80):                                  # Convention B, spec §1.2 table
        f = kp.decay_f[0] * f + kp.v_f[0] * naive_correlate(y_b, feed) + image
        l = kp.decay_l[0] * l + kp.v_l[0] * naive_correlate(y_b, link)
        e_b = kp.decay_e[0] * e_b + kp.v_e[0] * y_b
        y_b = (f * (1 + kp.beta[0] * l) > e_b).astype(float)
        pulses_b.append(y_b.astype(bool))
    e0_a = convention_b_to_a(e_b0, 0.0, params)
    trace = run_pcnn(image, params._replace(e0=e0_a), n_steps=80)
    np.testing.assert_array_equal(trace.spikes, np.array(pulses_b))
    assert trace.spikes.sum() > 100


# ------------------------------------------------------------------------- variants


def test_scm_time_signature_equals_zhan_form():
    """Spec §4.10: SCM time signature on a 16×16 gradient plus square, against SCM.m's own
    form (U = 0.2 U + S (W ⋆ Y) + S), which the preset writes as U = 0.2 U + S (1 + W ⋆ Y)."""
    image = np.tile(np.linspace(0.05, 0.6, 16), (16, 1))
    image[5:11, 5:11] = 0.9
    trace = run_pcnn(image, PCNNParams.scm(), n_steps=40)
    signature = trace.spikes.reshape(40, -1).sum(axis=1)
    np.testing.assert_array_equal(signature, naive_scm_signature(image, SCM_KERNEL))
    assert signature.sum() > 0


def test_icm_is_the_pcnn_with_beta_zero():
    rng = np.random.default_rng(18)
    image = rng.uniform(0, 1, (10, 10))
    params = PCNNParams.icm()
    trace = run_pcnn(image, params, n_steps=50, record=("f", "u"))
    np.testing.assert_array_equal(trace["u"], trace["f"])
    spikes, _ = _naive(params, np.broadcast_to(image, (50, 1, 10, 10)))
    np.testing.assert_array_equal(trace.spikes, spikes[:, 0])


def test_spcnn_parameters_follow_the_formulas():
    rng = np.random.default_rng(19)
    image = np.clip(rng.normal(0.4, 0.15, (20, 20)), 0, 1)
    params = PCNNParams.spcnn(image)
    s_otsu = otsu_threshold(image)
    alpha_f = math.log(1 / image.std())
    beta_vl = (image.max() / s_otsu - 1) / 6
    assert params.decay_u == pytest.approx(math.exp(-alpha_f), rel=1e-14)
    assert params.beta == pytest.approx(beta_vl, rel=1e-14)
    assert params.v_e == pytest.approx(math.exp(-alpha_f) + 1 + 6 * beta_vl, rel=1e-14)
    assert 0 < params.decay_e < 1
    assert run_pcnn(image, params, n_steps=30).spikes.any()


def test_otsu_separates_two_modes():
    values = np.concatenate([np.full(100, 0.2), np.full(50, 0.7)])
    assert 0.2 < otsu_threshold(values) <= 0.7


def test_presets_record_their_source():
    for preset in (PCNNParams.zhan_1d(), PCNNParams.pyclustering(), PCNNParams.scm(),
                   PCNNParams.icm(), PCNNParams.image_fusion()):
        assert preset.source
        pcnn_prepare(preset, (1, 4, 4))                  # valid as given


# --------------------------------------------------------------------------- invariants


def _setup(seed=20, n_maps=2, coupling="inter"):
    rng = np.random.default_rng(seed)
    params = _random_params(rng, n_maps, coupling, e0=rng.uniform(0, 1, (n_maps, 7, 8)))
    drive = rng.uniform(0, 1, (30, n_maps, 7, 8))
    kp = pcnn_prepare(params, drive.shape[1:])
    return params, drive, kp


def test_simulate_equals_python_loop_over_step():
    """simulate over the in-place advance ≡ a Python loop over the pure step (JIT off: see
    tests/test_jit_off.py)."""
    params, drive, kp = _setup()
    state0 = pcnn_init(drive.shape[1:], params)
    trace = simulate(pcnn_advance, drive, state0, kp, record=("e",))
    state, spikes = state0, []
    for x in drive:
        y, state = pcnn_step(x, state, kp)
        spikes.append(y)
    np.testing.assert_array_equal(np.array(spikes), trace.spikes)
    for field in PCNNState._fields:
        np.testing.assert_array_equal(getattr(state, field), getattr(trace.state, field))


def test_step_does_not_mutate_its_arguments():
    params, drive, kp = _setup()
    state = pcnn_init(drive.shape[1:], params)
    for x in drive[:5]:
        _, state = pcnn_step(x, state, kp)
    arrays = [v for v in kp if isinstance(v, np.ndarray)]     # every field but fast_linking
    copies = [a.copy() for a in (drive[5], *state, *arrays)]
    pcnn_step(drive[5], state, kp)
    for before, after in zip(copies, (drive[5], *state, *arrays), strict=True):
        np.testing.assert_array_equal(before, after)


def test_intra_stack_equals_separate_maps():
    """Intra-map coupling: a stack of C maps is C independent single-map runs."""
    params, drive, *_ = _setup(seed=21, n_maps=3, coupling="intra")
    stacked = run_pcnn(drive, params, record=("e",))
    for c in range(3):
        one = params._replace(**{f: getattr(params, f)[c] for f in (
            "decay_f", "decay_l", "decay_e", "decay_u", "v_f", "v_l", "v_e", "beta")},
            e0=params.e0[c], feeding_kernel=params.feeding_kernel[c],
            linking_kernel=params.linking_kernel[c])
        single = run_pcnn(drive[:, c], one, record=("e",))
        np.testing.assert_array_equal(single.spikes, stacked.spikes[:, c])
        np.testing.assert_array_equal(single["e"], stacked["e"][:, c])


def test_inter_with_diagonal_kernel_equals_intra():
    params, drive, *_ = _setup(seed=22, n_maps=3, coupling="intra")
    eye = np.eye(3)[:, :, None, None]
    inter = params._replace(coupling="inter",
                            feeding_kernel=eye * params.feeding_kernel[:, None],
                            linking_kernel=eye * params.linking_kernel[:, None])
    np.testing.assert_array_equal(run_pcnn(drive, params).spikes, run_pcnn(drive, inter).spikes)


def test_pyclustering_equality_if_installed():
    pcnn_mod = pytest.importorskip("pyclustering.nnet.pcnn")
    from pyclustering.nnet import conn_type

    side, n_steps = 5, 30
    rng = np.random.default_rng(23)
    image, e0 = rng.uniform(0, 1, (side, side)), rng.uniform(0, 1, (side, side))
    net = pcnn_mod.pcnn_network(side * side, None, conn_type.GRID_EIGHT, ccore=False)
    net._threshold = list(e0.ravel())                    # pyclustering draws it; set it
    # pyclustering's simulate(steps) returns Y[0] (zeros) followed by steps - 1 iterations.
    theirs = np.array(net.simulate(n_steps + 1, list(image.ravel())).output)[1:]
    ours = run_pcnn(image, PCNNParams.pyclustering(e0=e0), n_steps=n_steps).spikes
    np.testing.assert_array_equal(ours.reshape(n_steps, -1), theirs.astype(bool))


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("stimulus,match", [
    (np.array([[0.5, -0.1]]), "non-negative"),
    (np.array([[0.5, np.nan]]), "finite"),
    (np.array([[0.5, np.inf]]), "finite"),
    (np.zeros(5), "static stimulus"),
])
def test_bad_stimulus(stimulus, match):
    with pytest.raises(ValueError, match=match):
        run_pcnn(stimulus, PCNNParams(), n_steps=3)


def test_negative_stimulus_allowed_on_request():
    assert run_pcnn(np.array([[-0.5, 1.0]]), n_steps=3, allow_negative=True).spikes.shape == \
        (3, 1, 2)


@pytest.mark.parametrize("field,value", [("decay_f", 1.5), ("decay_l", -0.1), ("decay_e", 2.0),
                                         ("decay_u", -1.0), ("decay_f", np.nan)])
def test_decays_out_of_range(field, value):
    with pytest.raises(ValueError, match=field):
        run_pcnn(np.ones((2, 2)), PCNNParams()._replace(**{field: value}), n_steps=2)


@pytest.mark.parametrize("coupling,kernel,match", [
    ("intra", np.ones((2, 3)), "odd"),
    ("intra", np.ones((3, 4)), "odd"),
    ("intra", np.ones(3), "odd"),
    ("intra", np.ones((5, 1, 1, 3, 3)), "shape"),
    ("intra", np.ones((4, 3, 3)), "shape"),
    ("inter", np.ones((2, 3, 3)), "shape"),
    ("none", np.ones((3, 3)), "None"),
])
def test_bad_kernels(coupling, kernel, match):
    params = PCNNParams(linking_kernel=kernel, coupling=coupling)
    with pytest.raises(ValueError, match=match):
        run_pcnn(np.ones((2, 5, 5)), params, n_steps=2)


def test_bad_options():
    with pytest.raises(ValueError, match="coupling"):
        run_pcnn(np.ones((3, 3)), PCNNParams(coupling="all"), n_steps=2)
    with pytest.raises(ValueError, match="fast_linking"):
        run_pcnn(np.ones((3, 3)), PCNNParams(fast_linking="yes"), n_steps=2)
    with pytest.raises(ValueError, match="v_e"):
        run_pcnn(np.ones((3, 3)), PCNNParams(v_e=-1.0), n_steps=2)
    with pytest.raises(ValueError, match="decay_f"):
        run_pcnn(np.ones((2, 3, 3)), PCNNParams(decay_f=np.ones(3) * 0.5), n_steps=2)
    with pytest.raises(ValueError, match="e0"):
        run_pcnn(np.ones((3, 3)), PCNNParams(e0=np.ones(4)), n_steps=2)
    with pytest.raises(TypeError, match="params"):
        run_pcnn(np.ones((3, 3)), {"beta": 1.0}, n_steps=2)
    with pytest.raises(ValueError, match="n_steps"):
        run_pcnn(np.ones((3, 3)), n_steps=0)


def test_inputs_are_not_mutated_by_run_pcnn():
    rng = np.random.default_rng(24)
    image = rng.uniform(0, 1, (6, 6))
    kernel = rng.uniform(0, 1, (3, 3))
    copies = image.copy(), kernel.copy()
    run_pcnn(image, PCNNParams(linking_kernel=kernel, coupling="intra"), n_steps=10)
    np.testing.assert_array_equal(copies[0], image)
    np.testing.assert_array_equal(copies[1], kernel)


# ------------------------------------------------------------------------ twin (live Brian2)


@pytest.mark.brian2
def test_twin_time_varying_stimulus_equals_kernel():
    """The TimedArray path of the twin (stimulus changing every iteration), 2 intra maps."""
    pytest.importorskip("brian2")
    from bioplastic.reference.pcnn import run_pcnn_kernel, run_pcnn_twin

    rng = np.random.default_rng(25)
    params = _random_params(rng, 2, "intra", e0=rng.uniform(0, 1, (2, 6, 7)))
    drive = rng.uniform(0, 1, (40, 2, 6, 7))
    ours, twin = run_pcnn_kernel(params, drive), run_pcnn_twin(params, drive)
    np.testing.assert_array_equal(ours.spike_steps, twin.spike_steps)
    np.testing.assert_array_equal(ours.spike_index, twin.spike_index)
    assert ours.spike_steps.size > 50
    for key, value in twin.state.items():
        np.testing.assert_array_equal(ours.state[key], value, err_msg=key)


def test_twin_refuses_fast_linking():
    from bioplastic.reference.pcnn import run_pcnn_twin

    with pytest.raises(ValueError, match="fast linking"):
        run_pcnn_twin(PCNNParams(fast_linking=True), np.ones((2, 1, 3, 3)))


def test_coupling_synapses_match_the_kernel_sum():
    """Summing the synapse list reproduces the naive correlation (borders, self-terms, inter)."""
    from bioplastic.reference.pcnn import coupling_synapses

    from .naive import naive_correlate

    rng = np.random.default_rng(26)
    kernel = rng.uniform(-1, 1, (2, 2, 3, 5))
    kernel[0, 1, 1, 1] = 0.0                               # a zero weight gets no synapse
    y = rng.random((2, 4, 6)) < 0.5
    pre, post, w = coupling_synapses(kernel, y.shape)
    assert np.all(np.diff(pre) >= 0) and np.all(w != 0)
    summed = np.bincount(post, weights=w * y.ravel()[pre], minlength=y.size)
    np.testing.assert_allclose(summed.reshape(y.shape), naive_correlate(y, kernel), atol=1e-12)


@pytest.mark.parametrize("shape,n_steps,expected", [
    ((4, 5), 3, (3, 4, 5)),                 # static single map
    ((2, 4, 5), 3, (3, 2, 4, 5)),           # static stack
    ((3, 4, 5), None, (3, 4, 5)),           # time-varying single map
    ((3, 2, 4, 5), None, (3, 2, 4, 5)),     # time-varying stack
])
def test_stimulus_forms(shape, n_steps, expected):
    trace = run_pcnn(np.full(shape, 0.5), n_steps=n_steps, record=("e",))
    assert trace.spikes.shape == expected and trace["e"].shape == expected


def test_spcnn_rejects_unusable_images():
    with pytest.raises(ValueError, match="image"):
        PCNNParams.spcnn(np.full((4, 4), 0.5))          # std = 0: alpha_f undefined
    with pytest.raises(ValueError, match="image"):
        PCNNParams.spcnn(np.array([[0.2, 1.5]]))        # outside [0, 1]


def test_convention_b_to_a_with_shapes_that_do_not_broadcast_names_them():
    from bioplastic.neurons.pcnn import convention_b_to_a

    params = PCNNParams.spcnn(np.random.default_rng(0).random((8, 8)))
    with pytest.raises(ValueError, match=r"e0_b \(8, 8\), y0_b \(4, 4\).*must broadcast"):
        convention_b_to_a(np.ones((8, 8)), np.zeros((4, 4), bool), params)


def test_spcnn_of_an_empty_image_says_it_needs_two_values():
    with pytest.raises(ValueError, match=r"at least 2 values.*got shape \(0, 0\)"):
        PCNNParams.spcnn(np.zeros((0, 0)))
