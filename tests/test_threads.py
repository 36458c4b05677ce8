"""The opt-in multi-core path (``threads=``, bioplastic.neurons.parallel): the same bits as one
core for LIF and WTA, clear errors for bad ``threads`` and splits, no parallel reductions.

Bit-identity is checked on the raw bytes of every state field (so -0.0 against 0.0 or two NaN
payloads would count as different), the spikes and the records. The tests that need two of
Numba's threads skip where ``NUMBA_NUM_THREADS`` is 1; the split itself (``parts``) is
independent of the thread count, so the ``parts=3`` tests run everywhere.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from bioplastic import _jit, simulate, simulate_blocks
from bioplastic.neurons import (
    LIFParams,
    WTAParams,
    change_delays,
    connectivity,
    input_connectivity,
    lif_advance,
    lif_init,
    lif_prepare,
    poisson_spikes,
    present_blocks,
    run_lif,
    run_wta,
    train_wta,
    wta_advance,
    wta_init,
    wta_normalise,
    wta_prepare,
)
from bioplastic.neurons import parallel as par
from bioplastic.rules import STDPParams, post_index

TWO = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                         reason="needs NUMBA_NUM_THREADS >= 2")
DT_WTA = 0.5
SCRATCH = ("memo_step", "memo")   # the WTA's decay-factor cache: not used by the threaded path


def _same_bits(a, b, skip=()) -> None:
    """Every array field of two states (or two traces' arrays) equal byte for byte."""
    assert type(a) is type(b)
    for field in a._fields:
        x, y = getattr(a, field), getattr(b, field)
        if field in skip:
            continue
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, field
            assert x.tobytes() == y.tobytes(), f"state.{field} differs"
        else:
            assert x == y, field


def _same_trace(a, b, skip=()) -> None:
    assert a.spikes.tobytes() == b.spikes.tobytes()
    assert a.records.keys() == b.records.keys()
    for name in a.records:
        assert a.records[name].tobytes() == b.records[name].tobytes(), name
    _same_bits(a.state, b.state, skip)


def _lif_network(seed, n=60, steps=150, *, homogeneous=False, p=0.15, delays=True,
                 feed_forward=False):
    """Strongly driven recurrent LIF population (spikes in most steps); refractoriness and
    threshold adaptation on. ``feed_forward``: only neurons 0..n/2-1 project, to the others."""
    rng = np.random.default_rng(seed)
    if homogeneous:
        params = LIFParams(tau_m_ms=4.0, t_ref_ms=0.3, theta_plus_mv=0.4)
    else:
        params = LIFParams(tau_m_ms=rng.uniform(2, 6, n), t_ref_ms=rng.choice([0.0, 0.3], n),
                           theta_plus_mv=0.4, v_th_mv=rng.uniform(-52, -48, n))
    weight = (rng.random((n, n)) < p) * rng.normal(0.5, 2.0, (n, n))
    if feed_forward:
        weight[: n // 2] = 0.0
        weight[:, n // 2:] = 0.0
    delay = rng.integers(0, 4, (n, n)) * 0.1 if delays else 0.0
    drive = rng.uniform(14, 30, n) + rng.normal(0, 3, (steps, n))
    return params, weight, delay, drive


# ----------------------------------------------------------------------------------- LIF


@TWO
@pytest.mark.parametrize("homogeneous", [False, True], ids=["heterogeneous", "homogeneous"])
@pytest.mark.parametrize("delays", [True, False], ids=["delays", "no_delays"])
def test_lif_two_threads_same_bits(homogeneous, delays):
    params, weight, delay, drive = _lif_network(1, homogeneous=homogeneous, delays=delays)
    one = run_lif(drive, params, weight=weight, delay_ms=delay, record=("v", "theta"))
    before = numba.get_num_threads()
    two = run_lif(drive, params, weight=weight, delay_ms=delay, record=("v", "theta"),
                  threads=2)
    assert numba.get_num_threads() == before       # restored after the call
    assert one.spikes.sum() > 100     # active (about 180-200 spikes): every slot is exercised
    _same_trace(one, two)


@TWO
def test_lif_feed_forward_and_unconnected_same_bits():
    params, weight, delay, drive = _lif_network(2, feed_forward=True)
    for w in (weight, None):
        one = run_lif(drive, params, weight=w, delay_ms=delay if w is not None else 0.0,
                      record=("v",), record_units=np.arange(0, 60, 7))
        two = run_lif(drive, params, weight=w, delay_ms=delay if w is not None else 0.0,
                      record=("v",), record_units=np.arange(0, 60, 7), threads=2)
        _same_trace(one, two)


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_lif_any_number_of_parts_same_bits(parts):
    """Through simulate: parts need not equal threads (one thread here, so this runs on a
    1-core machine too); uneven and single-neuron parts included (7 parts of 20 neurons)."""
    params, weight, delay, drive = _lif_network(3, n=20, p=0.4)
    conn = connectivity(weight, delay_ms=delay, dt_ms=params.dt_ms)
    state, kp = lif_init(20, params, conn), lif_prepare(params, 20)
    one = simulate(lif_advance, drive, state, kp, conn, record=("v",))
    split = par.thread_split(conn, 20, parts)
    assert split.bounds.size == parts + 1 and split.syn.size == 0  # fresh: read in place
    many = simulate(par.lif_advance_threads, drive, state, kp, conn, split, record=("v",),
                    threads=1)
    _same_trace(one, many)


def test_lif_after_a_delay_change_same_bits():
    """Events in flight across change_delays (pending events) and reordered delivery blocks
    (the split then holds synapse ids): both paths continue with the same bits."""
    params, weight, delay, drive = _lif_network(4, n=40, p=0.3)
    conn = connectivity(weight, delay_ms=delay, dt_ms=params.dt_ms)
    kp = lif_prepare(params, 40)
    first = simulate(lif_advance, drive[:60], lif_init(40, params, conn), kp, conn)
    rng = np.random.default_rng(5)
    state, new_conn = change_delays(first.state, conn, rng.integers(0, 6, conn.n_synapses))
    assert state.pending_syn.size > 0
    split = par.thread_split(new_conn, 40, 3)
    assert split.syn.size == new_conn.n_synapses   # blocks no longer sorted by target
    one = simulate(lif_advance, drive[60:], state, kp, new_conn, record=("v", "theta"))
    many = simulate(par.lif_advance_threads, drive[60:], state, kp, new_conn, split,
                    record=("v", "theta"), threads=min(2, numba.config.NUMBA_NUM_THREADS))
    _same_trace(one, many)


# ----------------------------------------------------------------------------------- WTA


def _wta_network(seed, n=12, n_in=40, steps=160, rate_hz=150.0):
    rng = np.random.default_rng(seed)
    spikes = poisson_spikes(np.full(n_in, rate_hz) * (rng.random(n_in) < 0.6), steps, DT_WTA,
                            rng)
    return spikes, rng.uniform(0.0, 1.0, (n, n_in)), rng.integers(0, 4, (n, n_in)) * DT_WTA


@TWO
def test_wta_run_with_delays_same_bits():
    spikes, w0, delay = _wta_network(6)
    kwargs = {"w0": w0, "delay_ms": delay, "theta0_mv": 5.0, "record": ("v", "theta", "ge")}
    one = run_wta(spikes, WTAParams(), **kwargs)
    two = run_wta(spikes, WTAParams(), **kwargs, threads=2)
    n = w0.shape[0]
    # exc and inh both fire (40 and 40 spikes for this seed), so every pathway is exercised
    assert one.spikes[:, :n].sum() > 20 and one.spikes[:, n:].sum() > 20
    assert not np.array_equal(one.state.w, input_connectivity(w0).weight)  # STDP learned
    _same_trace(one, two, skip=SCRATCH)


@TWO
@pytest.mark.parametrize("stdp", [STDPParams(), STDPParams(all_to_all=True, triplet=False,
                                                           mu_dep=0.5, mu_pot=0.5)],
                         ids=["triplet", "all_to_all"])
def test_wta_present_blocks_with_normalisation_same_bits(stdp):
    spikes, w0, delay = _wta_network(7, steps=120)
    blocks = spikes.reshape(3, 40, -1)
    params = WTAParams(w_sum=8.0)
    kwargs = {"w0": w0, "stdp": stdp, "delay_ms": delay, "theta0_mv": 5.0}
    one = present_blocks(blocks, params, **kwargs)
    two = present_blocks(blocks, params, **kwargs, threads=2)
    assert one.spikes.sum() > 50      # about 100 (exc and inh) for this seed
    _same_trace(one, two, skip=SCRATCH)


@TWO
def test_train_wta_same_bits():
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (3, 30)).astype(float)
    w0 = rng.uniform(0, 0.6, (10, 30))
    kwargs = {"w0": w0, "seed": 3, "present_ms": 30.0, "rest_ms": 10.0, "intensity": 4.0,
              "min_spikes": 3, "max_repeats": 2, "theta0_mv": 10.0}
    one = train_wta(images, WTAParams(w_sum=6.0), **kwargs)
    two = train_wta(images, WTAParams(w_sum=6.0), **kwargs, threads=2)
    # a few spikes and the retries at a higher intensity (7 spikes, 2 retries per image here)
    assert one.counts.sum() > 0 and one.repeats.sum() > 0
    for field in ("counts", "intensities", "repeats"):
        assert getattr(one, field).tobytes() == getattr(two, field).tobytes(), field
    _same_bits(one.conn, two.conn)
    _same_bits(one.state, two.state, skip=SCRATCH)


@pytest.mark.parametrize("parts", [2, 5])
def test_wta_after_a_delay_change_any_parts_same_bits(parts):
    spikes, w0, delay = _wta_network(9, n=9)
    n = w0.shape[0]
    conn = input_connectivity(w0, delay_ms=delay, dt_ms=DT_WTA)
    params, by_post = wta_prepare(WTAParams(), STDPParams()), post_index(conn.post, n)
    first = simulate(wta_advance, spikes[:80], wta_init(n, None, conn), params, conn, by_post)
    state, new_conn = change_delays(first.state, conn,
                                    np.random.default_rng(1).integers(0, 5, conn.n_synapses))
    split = par.thread_split(new_conn, n, parts)
    blocks = spikes[80:].reshape(2, 40, -1)
    one = simulate_blocks(wta_advance, blocks, state, params, new_conn, by_post,
                          on_block=wta_normalise, record=("w",))
    many = simulate_blocks(par.wta_advance_threads, blocks, state, params, new_conn, by_post,
                           split, on_block=par.wta_normalise_threads, record=("w",),
                           threads=min(2, numba.config.NUMBA_NUM_THREADS))
    _same_trace(one, many, skip=SCRATCH)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad, error", [
    (0, ValueError), (-2, ValueError), (numba.config.NUMBA_NUM_THREADS + 1, ValueError),
    (2.0, TypeError), (True, TypeError), ("2", TypeError)])
def test_bad_threads_are_clear_errors(bad, error):
    params, weight, delay, drive = _lif_network(0, n=6, steps=3)
    spikes, w0, _ = _wta_network(0, n=3, n_in=5, steps=4)
    calls = [
        lambda: run_lif(drive, params, weight=weight, threads=bad),
        lambda: run_wta(spikes, w0=w0, threads=bad),
        lambda: present_blocks(spikes[None], w0=w0, threads=bad),
        lambda: train_wta(np.zeros((1, 5)), w0=w0, present_ms=1.0, rest_ms=0.0, threads=bad),
        lambda: simulate(lif_advance, drive, lif_init(6, params), lif_prepare(params, 6),
                         connectivity(np.zeros((6, 6))), threads=bad),
    ]
    for call in calls:
        with pytest.raises(error, match="threads"):
            call()


def test_numba_thread_count_is_restored():
    before = numba.get_num_threads()
    with _jit.using_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError), _jit.using_threads(1):
        raise RuntimeError("inside")
    assert numba.get_num_threads() == before


def _lif_pieces():
    params, weight, delay, drive = _lif_network(10, n=12, steps=5, p=0.5)
    conn = connectivity(weight, delay_ms=delay, dt_ms=params.dt_ms)
    return drive, lif_init(12, params, conn), lif_prepare(params, 12), conn


def test_a_split_that_does_not_fit_is_a_clear_error():
    drive, state, kp, conn = _lif_pieces()
    split = par.thread_split(conn, 12, 2)
    other = connectivity(np.roll(np.eye(12), 1, axis=1))

    def run(s, c=conn):
        start = state if c is conn else lif_init(12, None, c)
        return simulate(par.lif_advance_threads, drive, start, kp, c, s)

    with pytest.raises(TypeError, match="ThreadSplit"):
        run((split.bounds, split.cut, split.syn))
    with pytest.raises(ValueError, match="split.bounds"):
        run(split._replace(bounds=np.array([0, 5, 11])))
    with pytest.raises(ValueError, match="split.bounds"):
        run(split._replace(bounds=np.array([0, 7, 5, 12])))
    with pytest.raises(ValueError, match="split.cut must have shape"):
        run(split, other)          # built for another connectivity (other delays)
    cut = split.cut.copy()
    cut[3, 1] += 1                 # a synapse moved to the neighbouring part
    with pytest.raises(ValueError, match="does not match conn"):
        run(split._replace(cut=cut))
    swapped = split._replace(bounds=np.array([0, 3, 12]))   # other ranges, same cut
    with pytest.raises(ValueError, match="does not match conn"):
        run(swapped)
    with pytest.raises(TypeError, match="split.syn must be an int64"):
        run(split._replace(syn=np.zeros(0)))
    with pytest.raises(ValueError, match="split.syn"):
        run(split._replace(syn=np.arange(3, dtype=np.int64)))
    with pytest.raises(TypeError, match="weight arguments"):
        simulate(par.lif_advance_threads, drive, state, kp, conn)
    with pytest.raises(ValueError, match="parts"):
        par.thread_split(conn, 12, 0)


@pytest.mark.slow
def test_the_parallel_loops_have_no_reductions():
    """Exactness rests on every prange loop writing only its own part's elements with no
    reduction variable (a reduction would combine partial sums in a thread-dependent order).
    Compiled afresh (no cache) so that Numba's parfor diagnostics are at hand."""
    if _jit.JIT_DISABLED:
        pytest.skip("no compiled loops with the JIT disabled")
    drive, state, kp, conn = _lif_pieces()
    split = par.thread_split(conn, 12, 2)
    spikes, w0, delay = _wta_network(0, n=3, n_in=5, steps=4)
    wconn = input_connectivity(w0, dt_ms=DT_WTA)
    wta_args = (spikes[0], wta_init(3, None, wconn), *par._flat(wta_prepare()), wconn,
                post_index(wconn.post, 3), par.thread_split(wconn, 3, 2))
    # (the homogeneous LIF variant is the same source with scalar parameters: same loops)
    cases = [(par._lif_parts, (drive[0], state, kp, conn, split)), (par._wta_parts, wta_args)]
    for kernel, args in cases:
        fresh = numba.njit(fastmath=False, parallel=_jit.ParallelOptions(
            dict(_jit.PARALLEL_OPTIONS)))(_jit.py_func(kernel))
        fresh(*[a._replace(**{f: np.copy(getattr(a, f)) for f in a._fields
                              if isinstance(getattr(a, f), np.ndarray)})
                if hasattr(a, "_fields") else a for a in args])
        (compiled,) = fresh.overloads.values()
        parfors = compiled.metadata["parfor_diagnostics"].initial_parfors
        assert len(parfors) == 2          # the two prange loops, nothing else parallelised
        assert all(not parfor.redvars for parfor in parfors)


def test_njit_parallel_keeps_the_flags_and_refuses_others():
    with pytest.raises(ValueError, match="parallel"):
        _jit.njit_parallel(parallel=True)
    with pytest.raises(ValueError, match="fastmath"):
        _jit.njit_parallel(fastmath=True)
    if not _jit.JIT_DISABLED:
        options = par._lif_parts.targetoptions
        assert options["fastmath"] is False and options["nogil"] is True
        assert options["parallel"] == _jit.ParallelOptions(dict(_jit.PARALLEL_OPTIONS))
