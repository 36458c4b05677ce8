"""Property-based bad-input suite: every public function and kernel front end, fed generated
malformed input, raises a clear error or returns a documented (finite) result; it never
crashes, never returns NaN/inf without a word, never modifies its inputs.

The contract and the bad values are in ``tests/properties.py``. This module runs inside a
``NUMBA_BOUNDSCHECK=1`` subprocess started by ``tests/test_boundscheck.py`` (so an out-of-
bounds access inside a kernel is an ``IndexError`` — an unclear error, a failure — instead of a
silent read or a segfault); run directly, it is skipped unless ``NUMBA_BOUNDSCHECK=1`` is set.
``HYPOTHESIS_PROFILE`` (``dev``, ``ci``, ``thorough``; see ``tests/conftest.py``) sets the number
of examples.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import bioplastic as bp  # noqa: E402
from bioplastic import neurons as nr  # noqa: E402
from bioplastic import rules as r  # noqa: E402
from bioplastic.data import corrupt_digits  # noqa: E402
from bioplastic.neurons.stc import BASES  # noqa: E402
from bioplastic.neurons.wta import dense_weights  # noqa: E402

from .properties import Target, check_call, target_tests  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.environ.get("NUMBA_BOUNDSCHECK") != "1",
    reason="runs in the NUMBA_BOUNDSCHECK=1 subprocess of tests/test_boundscheck.py")

if os.environ.get("NUMBA_BOUNDSCHECK") == "1":
    # Sizes such as n = 2**40 must fail with MemoryError, not let the kernel's OOM killer end a
    # process (or a neighbour) on a shared machine: cap this process's address space.
    import resource

    _LIMIT = 8 * 2**30
    _soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if _hard == resource.RLIM_INFINITY or _hard > _LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (_LIMIT, _hard))

_RNG = np.random.default_rng(0)
X = _RNG.random((3, 5))                 # (batch, n_pre)
W = _RNG.normal(0, 0.3, (4, 5))         # (n_post, n_pre)
U = X @ W.T                             # (batch, n_post)
IMG = _RNG.random((2, 1, 5, 5))         # (B, C, H, W)
KW = _RNG.normal(0, 0.3, (3, 1, 3, 3))  # (O, C, kh, kw)
N_LIF = 4
W_LIF = np.where(_RNG.random((N_LIF, N_LIF)) < 0.5, _RNG.normal(0, 2, (N_LIF, N_LIF)), 0.0)
SPIKES_IN = _RNG.random((6, 5)) < 0.3   # (T, n_in)
W_WTA = _RNG.random((3, 5)) * 0.3       # (n, n_in)


def _pcnn_params():
    return bp.PCNNParams(coupling="intra", feeding_kernel=np.full((3, 3), 0.1),
                         linking_kernel=np.full((3, 3), 0.2))


def _conn():
    return bp.connectivity(W_LIF, delay_ms=0.2, dt_ms=0.1)


_INDEX_FIELDS = ("indptr", "post", "delay_steps", "delay_ptr", "delay_order", "synapses",
                 "last_spike", "last_spike_inh", "last_update", "ref_steps", "memo_step",
                 "pending_syn", "pending_due", "pending_next", "queue")


def _lif_pieces():
    conn = _conn()
    params = bp.LIFParams(theta_plus_mv=0.5)
    return {"inputs": _RNG.uniform(10, 20, (6, N_LIF)), "state": bp.lif_init(N_LIF, params, conn),
            "params": bp.lif_prepare(params, N_LIF), "conn": conn}


def _simulate_lif(inputs, state, params, conn):
    return bp.simulate(nr.lif_advance, inputs, state, params, conn, record=("v", "theta"))


def _pcnn_pieces():
    params = _pcnn_params()
    return {"inputs": np.broadcast_to(IMG[0], (4, 1, 5, 5)).copy(),
            "state": bp.pcnn_init((1, 5, 5), params),
            "params": bp.pcnn_prepare(params, (1, 5, 5))}


def _simulate_pcnn(inputs, state, params):
    return bp.simulate(nr.pcnn_advance, inputs, state, params, record=("e",))


def _wta_pieces():
    conn = nr.input_connectivity(W_WTA, delay_ms=0.5)
    return {"inputs": SPIKES_IN, "state": bp.wta_init(3, None, conn), "params": bp.wta_prepare(),
            "conn": conn, "by_post": r.post_index(conn.post, 3)}


def _simulate_wta(inputs, state, params, conn, by_post):
    return bp.simulate(nr.wta_advance, inputs, state, params, conn, by_post, record=("v",))


N_STC = 4
W_STC = np.where(_RNG.random((N_STC, N_STC)) < 0.5, _RNG.normal(0, 1, (N_STC, N_STC)), 0.0)


def _stc_pieces():
    params = nr.STCParams(base="lmh", bias_h=-0.2, lmh_d_u=0.3)
    return {"inputs": _RNG.uniform(0, 1, (6, N_STC)), "state": nr.stc_init(N_STC, params),
            "params": nr.stc_prepare(params, N_STC),
            "mods": nr.stc_modulators(W_STC, -W_STC.T, N_STC)}


def _simulate_stc(inputs, state, params, mods):
    return bp.simulate(nr.stc_advance, inputs, state, params, mods, record=("h", "alpha"))


def _one_step(pieces):
    """The pieces of a simulate target as the arguments of the model's public step."""
    def build():
        kwargs = pieces()
        return {"x": kwargs.pop("inputs")[0], **kwargs}
    return build


TARGETS = [
    # --- rate rules and competition
    Target("hebb_dw", r.hebb_dw, lambda: {"x": X, "y": U, "w": W}),
    Target("instar_dw", r.instar_dw, lambda: {"x": X, "y": U, "w": W}),
    Target("oja_dw", r.oja_dw, lambda: {"x": X, "y": U, "w": W, "u": U}),
    Target("sanger_dw", r.sanger_dw, lambda: {"x": X, "y": U, "w": W}),
    Target("krotov_hopfield_dw", r.krotov_hopfield_dw,
           lambda: {"x": X, "w": W, "params": r.KrotovParams()}),
    Target("krotov_current", r.krotov_current, lambda: {"x": X, "w": W, "p": 3.0}),
    Target("soft_wta", r.soft_wta, lambda: {"u": U, "temperature": 0.5}),
    Target("hard_wta", r.hard_wta, lambda: {"u": U}),
    Target("k_wta", r.k_wta, lambda: {"u": U, "k": 2}),
    Target("ranked_wta", r.ranked_wta, lambda: {"u": U, "k": 2, "delta": 0.4}),
    Target("anti_hebbian_signs", r.anti_hebbian_signs, lambda: {"u": U, "s": r.soft_wta(U)}),
    Target("triangle", r.triangle, lambda: {"u": U, "power": 1.0}),
    Target("soft_hebb_dw", r.soft_hebb_dw,
           lambda: {"x": X, "u": U, "w": W, "params": r.SoftHebbParams(anti_hebbian=True)}),
    Target("soft_hebb_post", r.soft_hebb_post, lambda: {"u": U, "params": r.SoftHebbParams()}),
    Target("soft_hebb_conv_dw", r.soft_hebb_conv_dw,
           lambda: {"x": IMG, "w": KW, "params": r.SoftHebbParams(), "stride": 1, "padding": 1,
                    "dilation": 1, "padding_mode": "zeros", "bias": np.zeros(3)}),
    Target("soft_hebb_bias_db", r.soft_hebb_bias_db,
           lambda: {"u": U, "b": np.zeros(4), "params": r.SoftHebbParams()}),
    Target("soft_hebb_bias_init", r.soft_hebb_bias_init,
           lambda: {"n_units": 4, "params": r.SoftHebbParams()}),
    Target("unfold_patches", r.unfold_patches,
           lambda: {"x": IMG, "kernel_size": 3, "stride": 1, "padding": 1, "dilation": 1}),
    Target("apply_update", r.apply_update,
           lambda: {"w": W, "dw": W * 0.1,
                    "params": r.UpdateParams(learning_rate=0.1, max_normalise=True, power_lr=0.5,
                                             w_min=-1.0, w_max=1.0, row_norm=1.0)}),
    Target("row_norms", r.row_norms, lambda: {"w": W, "p": 2.0}),
    Target("norm_dependent_rate", r.norm_dependent_rate,
           lambda: {"w": W, "learning_rate": 0.1, "power_lr": 0.5, "p": 2.0}),
    # --- STDP
    Target("stdp_prepare", r.stdp_prepare, lambda: {"params": r.STDPParams()}),
    Target("run_synapse", r.run_synapse,
           lambda: {"pre_spikes": SPIKES_IN[:, 0], "post_spikes": SPIKES_IN[:, 1],
                    "params": r.STDPParams(), "w0": 0.5, "dt_ms": 0.5}),
    Target("pair_window", r.pair_window,
           lambda: {"lags_steps": np.array([-3, 0, 2]), "params": r.STDPParams(), "w0": 0.5,
                    "dt_ms": 0.5}, index=("lags_steps",)),
    Target("post_index", r.post_index, lambda: {"post": np.array([0, 2, 1, 2]), "n_post": 3},
           index=("post",)),
    # --- LIF
    Target("lif_prepare", bp.lif_prepare,
           lambda: {"params": bp.LIFParams(tau_m_ms=np.array([5.0, 10, 15, 20]),
                                           theta_plus_mv=0.5), "n": N_LIF},
           # n against the (4,) per-neuron tau_m_ms: the message names the mismatched field
           aliases={"n": ("tau_m_ms must have shape",)}),
    Target("lif_init", bp.lif_init,
           lambda: {"n": N_LIF, "params": bp.LIFParams(), "conn": _conn(), "v0_mv": -60.0,
                    "theta0_mv": 0.0}, fixed=("conn",)),
    Target("connectivity", bp.connectivity,
           lambda: {"weight": W_LIF, "delay_ms": 0.2, "dt_ms": 0.1}),
    Target("connectivity_from_arrays", nr.connectivity_from_arrays,
           lambda: {"pre": np.array([0, 1, 1]), "post": np.array([2, 0, 1]),
                    "weight": np.array([1.0, -2.0, 0.5]), "n_pre": 2, "n_post": 3,
                    "delay_ms": np.array([0.0, 0.1, 0.2]), "dt_ms": 0.1},
           index=("pre", "post")),
    Target("run_lif", bp.run_lif,
           lambda: {"inputs": _RNG.uniform(10, 20, (8, N_LIF)),
                    "params": bp.LIFParams(t_ref_ms=0.5, theta_plus_mv=0.2), "weight": W_LIF,
                    "delay_ms": 0.1, "v0_mv": -60.0, "record": ("v", "theta")}),
    # --- PCNN
    Target("pcnn_prepare", bp.pcnn_prepare,
           lambda: {"params": _pcnn_params(), "shape": (1, 5, 5)}),
    Target("pcnn_init", bp.pcnn_init, lambda: {"shape": (1, 5, 5), "params": bp.PCNNParams()}),
    Target("run_pcnn", bp.run_pcnn,
           lambda: {"stimulus": IMG[0, 0], "params": _pcnn_params(), "n_steps": 4,
                    "record": ("e", "u")}),
    # --- WTA
    Target("wta_prepare", bp.wta_prepare,
           lambda: {"params": bp.WTAParams(), "stdp": r.STDPParams()}),
    Target("input_connectivity", nr.input_connectivity,
           lambda: {"w": W_WTA, "delay_ms": 0.5, "dt_ms": 0.5}),
    Target("poisson_spikes", nr.poisson_spikes,
           lambda: {"rates_hz": np.full(5, 50.0), "n_steps": 6, "dt_ms": 0.5, "seed": 1}),
    Target("normalise_input_weights", nr.normalise_input_weights,
           lambda: {"w": W_WTA.ravel(), "conn": nr.input_connectivity(W_WTA), "n": 3,
                    "total": 1.0}, fixed=("conn",)),
    Target("run_wta", bp.run_wta,
           lambda: {"input_spikes": SPIKES_IN, "w0": W_WTA, "params": bp.WTAParams(),
                    "stdp": r.STDPParams(), "delay_ms": 0.5, "theta0_mv": 20.0,
                    "record": ("v",)}),
    Target("present_blocks", nr.present_blocks,
           lambda: {"blocks": SPIKES_IN.reshape(2, 3, 5), "w0": W_WTA,
                    "params": bp.WTAParams(w_sum=1.0), "stdp": r.STDPParams(),
                    "record": ("w",)}),
    Target("train_wta", bp.train_wta,
           lambda: {"images": np.full((1, 5), 200.0), "w0": W_WTA, "params": bp.WTAParams(),
                    "seed": 0, "present_ms": 2.0, "rest_ms": 1.0, "intensity": 2.0,
                    "min_spikes": 0, "max_repeats": 1}),
    # --- simulate with hand-made or mismatched pieces (every field of state, params and the
    #     connectivity is perturbed in turn): the model's check_consistency hook
    Target("simulate_lif", _simulate_lif, _lif_pieces, index=_INDEX_FIELDS),
    Target("simulate_pcnn", _simulate_pcnn, _pcnn_pieces),
    Target("simulate_wta", _simulate_wta, _wta_pieces, index=_INDEX_FIELDS),
    Target("dense_weights", dense_weights,
           lambda: {"w": W_WTA.ravel(), "conn": nr.input_connectivity(W_WTA), "n": 3},
           index=_INDEX_FIELDS),
    # --- STC
    Target("stc_prepare", nr.stc_prepare,
           lambda: {"params": nr.STCParams(base="plif", plif_w=np.array([0.1, -0.3, 0, 2])),
                    "n": N_STC},
           # n against the (4,) per-neuron plif_w: the message names the mismatched field
           aliases={"n": ("plif_w must have shape",)}),
    Target("stc_init", nr.stc_init, lambda: {"n": N_STC, "params": nr.STCParams()}),
    Target("stc_modulators", nr.stc_modulators,
           lambda: {"w_h": W_STC, "w_v": W_STC.T, "n": N_STC}),
    Target("run_stc", nr.run_stc,
           lambda: {"inputs": _RNG.uniform(0, 1, (6, N_STC)),
                    "params": nr.STCParams(base="lmh"), "w_h": W_STC, "w_v": -W_STC,
                    "record": ("h", "d")}),
    Target("simulate_stc", _simulate_stc, _stc_pieces, index=("indptr", "post")),
    # --- the public pure steps, called directly with the same perturbed pieces
    Target("lif_step", bp.lif_step, _one_step(_lif_pieces), index=_INDEX_FIELDS),
    Target("pcnn_step", bp.pcnn_step, _one_step(_pcnn_pieces)),
    Target("wta_step", bp.wta_step, _one_step(_wta_pieces), index=_INDEX_FIELDS),
    Target("stc_step", nr.stc_step, _one_step(_stc_pieces), index=("indptr", "post")),
    # --- data
    Target("corrupt_digits", corrupt_digits,
           lambda: {"images": _RNG.random((2, 8, 8)), "name": "gaussian_noise", "severity": 2,
                    "seed": 0}),
]


# one perturbed call per example, and the valid call itself (tests/properties.py)
test_bad_input_gives_a_clear_error_or_a_finite_result, test_valid_input_runs = \
    target_tests(TARGETS)


@given(n_state=st.integers(1, 5), n_params=st.integers(1, 5), n_conn=st.integers(1, 5),
       width=st.integers(1, 6), delay_state=st.integers(0, 3), delay_conn=st.integers(0, 3))
def test_mismatched_lif_pieces(n_state, n_params, n_conn, width, delay_state, delay_conn):
    """Pieces built for different sizes or delays: a clear error, unless they all agree."""
    def ring(n, max_delay):     # n neurons in a ring, every synapse delayed by max_delay steps
        return bp.connectivity(np.roll(np.eye(n), 1, axis=1), delay_ms=0.1 * max_delay,
                               dt_ms=0.1)

    params = bp.LIFParams()
    kwargs = {"inputs": np.full((4, width), 20.0),
              "state": bp.lif_init(n_state, params, ring(n_state, delay_state)),
              "params": bp.lif_prepare(params, n_params), "conn": ring(n_conn, delay_conn)}
    agree = len({n_state, n_params, n_conn, width}) == 1 and delay_state == delay_conn
    target = Target("mismatched_lif", _simulate_lif, lambda: kwargs)
    outcome = check_call(target, kwargs, {"inputs", "state", "params", "conn"}, "pieces")
    assert outcome == ("accepted" if agree else "clear")


@given(c_state=st.integers(1, 3), c_kernels=st.integers(1, 3), c_params=st.integers(1, 3),
       size=st.integers(3, 6), size_inputs=st.integers(3, 6))
def test_mismatched_pcnn_pieces(c_state, c_kernels, c_params, size, size_inputs):
    params = _pcnn_params()
    kernels = bp.pcnn_prepare(params, (c_kernels, size, size))
    kwargs = {"inputs": np.ones((3, c_state, size_inputs, size_inputs)),
              "state": bp.pcnn_init((c_state, size, size), params),
              "params": bp.pcnn_prepare(params, (c_params, size, size))._replace(
                  feeding_weights=kernels.feeding_weights,
                  linking_weights=kernels.linking_weights)}
    agree = len({c_state, c_kernels, c_params}) == 1 and size == size_inputs
    target = Target("mismatched_pcnn", _simulate_pcnn, lambda: kwargs)
    outcome = check_call(target, kwargs, set(kwargs), "pieces")
    assert outcome == ("accepted" if agree else "clear")


@given(n_in_state=st.integers(1, 6), n_in_conn=st.integers(1, 6), n_state=st.integers(1, 4),
       n_conn=st.integers(1, 4), delay_state=st.integers(0, 2), delay_conn=st.integers(0, 2))
def test_mismatched_wta_pieces(n_in_state, n_in_conn, n_state, n_conn, delay_state,
                               delay_conn):
    w_state = np.full((n_state, n_in_state), 0.1)
    w_conn = np.full((n_conn, n_in_conn), 0.1)
    conn = nr.input_connectivity(w_conn, delay_ms=0.5 * delay_conn)
    kwargs = {"inputs": np.zeros((3, n_in_conn), bool),
              "state": bp.wta_init(n_state, None, nr.input_connectivity(w_state,
                                                                   delay_ms=0.5 * delay_state)),
              "params": bp.wta_prepare(), "conn": conn,
              "by_post": r.post_index(conn.post, n_conn)}
    agree = n_in_state == n_in_conn and n_state == n_conn and delay_state == delay_conn
    target = Target("mismatched_wta", _simulate_wta, lambda: kwargs)
    outcome = check_call(target, kwargs, set(kwargs), "pieces")
    assert outcome == ("accepted" if agree else "clear")


@given(n_state=st.integers(1, 5), n_params=st.integers(1, 5), n_mods=st.integers(1, 5),
       width=st.integers(1, 6), base=st.sampled_from(sorted(BASES)))
def test_mismatched_stc_pieces(n_state, n_params, n_mods, width, base):
    params = nr.STCParams(base=base)
    kwargs = {"inputs": np.full((3, width), 0.7), "state": nr.stc_init(n_state, params),
              "params": nr.stc_prepare(params, n_params),
              "mods": nr.stc_modulators(np.full((n_mods, n_mods), 0.5), None, n_mods)}
    agree = len({n_state, n_params, n_mods, width}) == 1
    target = Target("mismatched_stc", _simulate_stc, lambda: kwargs)
    outcome = check_call(target, kwargs, set(kwargs), "pieces")
    assert outcome == ("accepted" if agree else "clear")
