"""Mismatched pieces handed to ``simulate`` (class 1 of the bad-input issue) and malformed
synapse structures (class 2): each used to segfault, read the wrong memory (an input of width 3
for 8 neurons gave v = -55.1 mV instead of -65: the next rows' drive) or compute garbage; each
is now a clear error before any kernel runs. Run on the old code under ``NUMBA_BOUNDSCHECK=1``
every case here failed (an IndexError, or no error at all).
"""

from __future__ import annotations

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.neurons import (
    input_connectivity,
    lif_advance,
    no_connectivity,
    normalise_input_weights,
    pcnn_prepare,
    wta_init,
    wta_prepare,
)
from bioplastic.neurons._checks import check_connectivity, check_post_index
from bioplastic.neurons.pcnn import pcnn_advance
from bioplastic.neurons.wta import dense_weights, wta_advance
from bioplastic.rules import DivergenceError, post_index

N = 8
PARAMS = bp.LIFParams()
DRIVE = np.full((5, N), 20.0)                                   # mV, (T, n)


def _delayed():
    """8 neurons in a ring, delays 0.1-0.3 ms = 1-3 steps: max_delay 3, delay_ptr (8, 5)."""
    weight = np.roll(np.eye(N), 1, axis=1) + np.roll(np.eye(N), 2, axis=1)
    delay = np.where(np.roll(np.eye(N), 1, axis=1) > 0, 0.1, 0.3)
    return bp.connectivity(weight, delay_ms=delay, dt_ms=0.1)


def _run(conn, state=None, params=None, inputs=DRIVE, **kwargs):
    state = bp.lif_init(N, PARAMS, conn) if state is None else state
    params = bp.lif_prepare(PARAMS, N) if params is None else params
    return bp.simulate(lif_advance, inputs, state, params, conn, **kwargs)


# ------------------------------------------------------------ class 1: mismatched pieces


def test_state_for_8_with_connectivity_for_4():
    with pytest.raises(ValueError, match="conn"):
        _run(no_connectivity(4), state=bp.lif_init(N, PARAMS, no_connectivity(N)))


def test_params_for_4_with_state_for_8():
    with pytest.raises(ValueError, match=r"params\.\w+ must have shape \(8,\)"):
        _run(no_connectivity(N), params=bp.lif_prepare(PARAMS, 4))


@pytest.mark.parametrize("width", [3, 20])
def test_inputs_of_the_wrong_width(width):
    with pytest.raises(ValueError, match=r"inputs must have shape \(T, 8\)"):
        _run(no_connectivity(N), inputs=np.full((5, width), 20.0))


def test_state_from_another_max_delay():
    # A state made with max_delay = 0 run with a max_delay = 3 connectivity: its one-row ring
    # cannot hold the spikes of 3 steps ago, so delayed events were silently dropped.
    conn = _delayed()
    with pytest.raises(ValueError, match="history"):
        _run(conn, state=bp.lif_init(N, PARAMS, no_connectivity(N)))


def test_pcnn_state_for_3_maps_with_kernels_for_1():
    params = bp.PCNNParams(coupling="intra", feeding_kernel=np.full((3, 3), 0.1),
                           linking_kernel=np.full((3, 3), 0.1))
    kp1 = pcnn_prepare(params, (1, 6, 6))
    kp3 = pcnn_prepare(params, (3, 6, 6))._replace(feeding_weights=kp1.feeding_weights,
                                                  linking_weights=kp1.linking_weights)
    state3 = bp.pcnn_init((3, 6, 6), params)
    with pytest.raises(ValueError, match="feeding_weights"):
        bp.simulate(pcnn_advance, np.ones((4, 3, 6, 6)), state3, kp3)


def test_wta_connectivity_for_20_inputs_with_a_state_for_10():
    conn20 = input_connectivity(np.full((3, 20), 0.1))
    state10 = wta_init(3, None, input_connectivity(np.full((3, 10), 0.1)))
    with pytest.raises(ValueError, match="state"):
        bp.simulate(wta_advance, np.zeros((4, 20), bool), state10, wta_prepare(), conn20,
                    post_index(conn20.post, 3))


def test_kernel_params_in_place_of_state_and_the_user_params():
    with pytest.raises(TypeError, match="params must be LIFKernelParams"):
        _run(no_connectivity(N), params=PARAMS)
    with pytest.raises(TypeError, match="state"):
        bp.simulate(lif_advance, DRIVE, bp.lif_prepare(PARAMS, N), bp.lif_prepare(PARAMS, N),
                    no_connectivity(N))


def test_matching_pieces_still_run_and_check_false_skips_the_check():
    conn = _delayed()
    state = bp.lif_init(N, PARAMS, conn, v0_mv=-50.01)   # 0.01 mV below threshold: fires at once
    checked = _run(conn, state=state, record=("v",))
    unchecked = _run(conn, state=state, record=("v",), check=False)
    np.testing.assert_array_equal(checked.spikes, unchecked.spikes)
    np.testing.assert_array_equal(checked["v"], unchecked["v"])
    assert checked.spikes[0].all()       # every neuron fires at step 0: the ring is exercised


# ------------------------------------------------------- class 2: malformed structures

def _broken(**fields):
    return _delayed()._replace(**fields)


_C = _delayed()
MALFORMED = {
    "post -1": (_broken(post=_C.post - 1), "post"),
    "post >= n": (_broken(post=_C.post + N), "post"),
    "delay_ptr negative": (_broken(delay_ptr=_C.delay_ptr - 5), "delay_ptr"),
    "delay_ptr past the arrays": (_broken(delay_ptr=_C.delay_ptr + 100), "delay_ptr"),
    "delay_ptr too few columns": (_broken(delay_ptr=_C.delay_ptr[:, :2].copy()), "delay_ptr"),
    "delay_ptr too few rows": (_broken(delay_ptr=_C.delay_ptr[:2].copy()), "delay_ptr"),
    "indptr not monotone": (_broken(indptr=np.array([0, 4, 2, 6, 8, 10, 12, 14, 16])),
                            "indptr"),
    "indptr past the arrays": (_broken(indptr=_C.indptr * 2), "indptr"),
    "unequal lengths": (_broken(weight=_C.weight[:3].copy()), "weight"),
    "NaN weight": (_broken(weight=np.full_like(_C.weight, np.nan)), "weight"),
    "max_delay below the delays": (_broken(max_delay=1), "max_delay"),
    "max_delay above delay_ptr": (_broken(max_delay=5), "delay_ptr"),
    "float indices": (_broken(post=_C.post.astype(float)), "post"),
    "delays against delay_ptr": (_broken(delay_steps=_C.delay_steps[::-1].copy()),
                                 "delay_ptr"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_connectivity_is_refused(case):
    conn, name = MALFORMED[case]
    with pytest.raises((TypeError, ValueError), match=name):
        check_connectivity(conn, n_post=N)
    with pytest.raises((TypeError, ValueError), match=name):
        # the state is built from the good connectivity (lif_init reads only max_delay)
        _run(conn, state=bp.lif_init(N, PARAMS, _C))


def test_library_connectivities_pass_the_check():
    check_connectivity(_C, n_post=N)
    check_connectivity(no_connectivity(N), n_post=N)
    check_connectivity(bp.connectivity(np.zeros((3, 5))), n_post=3)     # no synapses
    conn = input_connectivity(np.full((3, 4), 0.1), delay_ms=np.arange(12).reshape(3, 4) * 0.5)
    check_connectivity(conn, n_post=3)
    check_post_index(post_index(conn.post, 3), conn, 3)


def test_malformed_post_index_is_refused():
    conn = input_connectivity(np.full((3, 4), 0.1))
    good = post_index(conn.post, 3)
    for bad, name in ((good._replace(synapses=good.synapses + 5), "synapses"),
                      (good._replace(synapses=good.synapses[::-1].copy()), "by_post"),
                      (good._replace(indptr=good.indptr[:-1].copy()), "indptr"),
                      (good._replace(indptr=good.indptr[::-1].copy()), "indptr")):
        with pytest.raises(ValueError, match=name):
            check_post_index(bad, conn, 3)
        with pytest.raises(ValueError, match=name):
            bp.simulate(wta_advance, np.zeros((2, 4), bool), wta_init(3, None, conn), wta_prepare(),
                        conn, bad)


def test_normalise_input_weights_with_n_below_the_post_indices():
    # n = 2 for synapses onto neurons 0-2 wrote past the per-neuron sums (heap corruption).
    conn = input_connectivity(np.full((3, 4), 0.1))
    with pytest.raises(ValueError, match="post"):
        normalise_input_weights(conn.weight, conn, 2, 1.0)
    with pytest.raises(ValueError, match="post"):
        dense_weights(conn.weight, conn, 2)
    w = normalise_input_weights(conn.weight, conn, 3, 1.0)
    np.testing.assert_allclose(dense_weights(w, conn, 3).sum(axis=1), 1.0)   # rows sum to 1


# --------------------------------------------- the public steps, called directly from Python
#
# lif_step, wta_step, pcnn_step and stc_step were jitted functions that trusted their
# arguments: mismatched pieces read past the arrays (under NUMBA_BOUNDSCHECK=1 an IndexError;
# otherwise garbage, e.g. the drive of neurons that do not exist). Each is now checked at the
# Python boundary, as simulate is, with check=False as the escape hatch.

def _lif_step_pieces():
    conn = _delayed()
    return bp.lif_init(N, PARAMS, conn), bp.lif_prepare(PARAMS, N), conn


@pytest.mark.parametrize("width", [3, 20])
def test_lif_step_with_x_of_the_wrong_width(width):
    state, kp, conn = _lif_step_pieces()
    with pytest.raises(ValueError, match=r"x must have shape \(8,\)"):
        bp.lif_step(np.full(width, 20.0), state, kp, conn)


def test_lif_step_with_params_or_conn_for_another_size():
    state, kp, conn = _lif_step_pieces()
    with pytest.raises(ValueError, match=r"params\.\w+ must have shape \(8,\)"):
        bp.lif_step(DRIVE[0], state, bp.lif_prepare(PARAMS, 4), conn)
    with pytest.raises(ValueError, match="conn"):
        bp.lif_step(DRIVE[0], state, kp, no_connectivity(4))
    with pytest.raises(TypeError, match="x must be a numpy array"):
        bp.lif_step(list(DRIVE[0]), state, kp, conn)


def test_lif_step_checked_equals_unchecked_and_simulate():
    state, kp, conn = _lif_step_pieces()
    state = state._replace(v=np.full(N, -50.01))        # fires at once: the ring is exercised
    trace = bp.simulate(lif_advance, DRIVE, state, kp, conn, record=("v",))
    checked = unchecked = state
    for t, x in enumerate(DRIVE):
        s1, checked = bp.lif_step(x, checked, kp, conn)
        s2, unchecked = bp.lif_step(x, unchecked, kp, conn, check=False)
        np.testing.assert_array_equal(s1, trace.spikes[t])
        np.testing.assert_array_equal(s2, trace.spikes[t])
        np.testing.assert_array_equal(checked.v, trace["v"][t])
        np.testing.assert_array_equal(unchecked.v, trace["v"][t])


def test_lif_step_reports_a_non_finite_state():
    state, kp, conn = _lif_step_pieces()
    with pytest.raises(DivergenceError, match="lif_step diverged"):
        bp.lif_step(np.full(N, np.inf), state, kp, conn)


def test_wta_step_with_mismatched_pieces():
    conn20 = input_connectivity(np.full((3, 20), 0.1))
    conn10 = input_connectivity(np.full((3, 10), 0.1))
    state10 = wta_init(3, None, conn10)
    by10 = post_index(conn10.post, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(10,\)"):
        bp.wta_step(np.zeros(20, bool), state10, wta_prepare(), conn10, by10)
    with pytest.raises(TypeError, match="x must be boolean spikes"):
        bp.wta_step(np.zeros(10), state10, wta_prepare(), conn10, by10)
    with pytest.raises(ValueError, match="state"):
        bp.wta_step(np.zeros(20, bool), state10, wta_prepare(), conn20,
                    post_index(conn20.post, 3))
    with pytest.raises(ValueError, match="by_post"):
        bp.wta_step(np.zeros(10, bool), state10, wta_prepare(), conn10,
                    post_index(conn10.post, 3)._replace(synapses=by10.synapses + 5))


def test_pcnn_step_with_mismatched_pieces():
    params = bp.PCNNParams(coupling="intra", feeding_kernel=np.full((3, 3), 0.1),
                           linking_kernel=np.full((3, 3), 0.1))
    kp1, kp3 = pcnn_prepare(params, (1, 6, 6)), pcnn_prepare(params, (3, 6, 6))
    state3 = bp.pcnn_init((3, 6, 6), params)
    with pytest.raises(ValueError, match=r"x must have shape \(3, 6, 6\)"):
        bp.pcnn_step(np.ones((3, 5, 6)), state3, kp3)
    with pytest.raises(ValueError, match=r"params\.\w+ must have shape \(3,\)"):
        bp.pcnn_step(np.ones((3, 6, 6)), state3, kp1)
    with pytest.raises(ValueError, match="params.linking_weights"):
        bp.pcnn_step(np.ones((3, 6, 6)), state3,
                     kp3._replace(linking_weights=np.ones((3, 1, 2, 3))))   # even kh


def test_stc_step_with_mismatched_pieces():
    from bioplastic.neurons import STCParams, stc_init, stc_modulators, stc_prepare

    state8, kp8 = stc_init(8), stc_prepare(STCParams(), 8)
    mods8 = stc_modulators(np.full((8, 8), 0.1), None, 8)
    with pytest.raises(ValueError, match=r"x must have shape \(8,\)"):
        bp.neurons.stc_step(np.ones(3), state8, kp8, mods8)
    with pytest.raises(ValueError, match=r"params\.\w+ must have shape \(8,\)"):
        bp.neurons.stc_step(np.ones(8), state8, stc_prepare(STCParams(), 4), mods8)
    with pytest.raises(ValueError, match="mods.indptr"):
        bp.neurons.stc_step(np.ones(8), state8, kp8, stc_modulators(None, None, 4))


# -------------------------------------------------- STC through simulate (its own hook now)

def test_simulate_stc_with_mismatched_pieces():
    # Modulators for 4 neurons with a state for 8 read mods.indptr past its end (garbage
    # gates); a row index of 16 would write past the flat (2, 8) gate arguments.
    from bioplastic.neurons import STCParams, stc_advance, stc_init, stc_modulators, stc_prepare

    state8, kp8 = stc_init(8), stc_prepare(STCParams(), 8)
    mods8 = stc_modulators(np.eye(8), np.full((8, 8), 0.1), 8)
    drive = np.full((5, 8), 0.6)
    for mods, name in ((stc_modulators(None, None, 4), "mods.indptr"),
                       (mods8._replace(post=mods8.post + 1), "mods.post"),   # 15 -> 16
                       (mods8._replace(w=mods8.w[:3].copy()), "mods.w"),
                       (mods8._replace(w=np.full_like(mods8.w, np.nan)), "mods.w"),
                       # signed or wider indices
                       (mods8._replace(post=mods8.post.astype(np.int64)), "mods.post"),
                       (mods8._replace(indptr=mods8.indptr[::-1].copy()), "mods.indptr"),
                       ((mods8.indptr, mods8.post), "mods")):
        with pytest.raises((TypeError, ValueError), match=name):
            bp.simulate(stc_advance, drive, state8, kp8, mods)
    with pytest.raises(ValueError, match=r"params\.\w+ must have shape \(8,\)"):
        bp.simulate(stc_advance, drive, state8, stc_prepare(STCParams(), 4), mods8)
    with pytest.raises(ValueError, match=r"state\.\w+ must have shape \(8,\)"):
        bp.simulate(stc_advance, drive, state8._replace(s=np.zeros(3)), kp8, mods8)
    with pytest.raises(ValueError, match=r"inputs must have shape \(T, 8\)"):
        bp.simulate(stc_advance, drive[:, :3], state8, kp8, mods8)
    with pytest.raises(ValueError, match="params.variant"):
        bp.simulate(stc_advance, drive, state8, kp8._replace(variant=7), mods8)


@pytest.mark.parametrize("extra", [0, 2])
def test_simulate_with_the_wrong_number_of_weights_names_the_advance_and_its_arguments(extra):
    # before: "check_lif() missing 1 required positional argument: 'conn'", a function the
    # user never called
    conn = no_connectivity(N)
    state, params = bp.lif_init(N, PARAMS, conn), bp.lif_prepare(PARAMS, N)
    with pytest.raises(TypeError, match=r"lif_advance takes 1 weight argument\(s\) after params "
                                        rf"\(conn\), got {extra}"):
        bp.simulate(lif_advance, DRIVE, state, params, *[conn] * extra)


def test_a_short_field_that_sizes_the_state_is_named_beside_the_field_it_disagrees_with():
    conn = no_connectivity(N)
    state = bp.lif_init(N, PARAMS, conn)
    short_v = state._replace(v=state.v[:-1])
    with pytest.raises(ValueError, match=r"state\.theta must have shape \(7,\) \(from state\.v\)"):
        bp.simulate(lif_advance, DRIVE, short_v, bp.lif_prepare(PARAMS, N), conn)
