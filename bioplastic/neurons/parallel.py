"""Opt-in multi-core kernels for the LIF and WTA networks, bit-identical to the single-core ones.

The front ends take ``threads=`` (:func:`~bioplastic.neurons.run_lif`,
:func:`~bioplastic.neurons.run_wta`, :func:`~bioplastic.neurons.present_blocks`,
:func:`~bioplastic.neurons.train_wta`); ``None`` or 1, the default, runs the single-core kernels
unchanged. With ``threads=k > 1`` they run the kernels here on ``k`` threads and return **the same
bits**: the same spikes, and the same value in every state field (the WTA's two scratch fields
``memo_step``/``memo``, a cache of decay factors, are not used here and keep their contents).

**Why it is exact.** The neurons are cut into ``k`` *parts*, contiguous ranges of postsynaptic
indices (:class:`ThreadSplit`, balanced by in-degree). Each step runs two parallel loops over the
parts, with the single-core code of each slot applied to the part's own range:

1. groups → thresholds, per neuron (no cross-neuron terms: order-free), and the part's slice of
   the spike-history row;
2. (serial between the loops: the pending-event cursor, the list of due delivery blocks in
   Brian2's queue order from a scan of the history ring (the same blocks, in the same order, as
   the single-core kernel's delivery queue lists), and the delivery queue's bookkeeping, so the
   state's ``queue`` field stays the single-core bits) synapses → resets: each
   part walks **every** due event in queue order and applies those whose target it owns. So every
   target's sum ``v_post += w`` is accumulated by one thread, in the single-core (Brian2 queue)
   order: oldest spikes first, then source, then synapse position.

Every delivery block (one source, one delay) is pre-split by part (:func:`thread_split`): part
``p``'s synapses of block ``b`` are ``cut[b, p]:cut[b, p + 1]``, in the block's own order (a
stable partition), so a part reads only its own synapses. A freshly built connectivity's blocks
are sorted by target, so that partition is the identity and the synapse arrays are read in place;
after :func:`~bioplastic.neurons.change_delays` the split holds the reordered synapse ids.
Events in flight across a delay change (the pending events) are applied the same way, first.

The WTA network adds per-synapse STDP: an event updates its own synapse's weight and traces and
its target's conductance, so the synapse belongs to its target's part; the exc → inh partner
synapse, inhibition of every other excitatory neuron (each target sums the spiking inhibitory
neurons in index order, as the single-core loop does), the postsynaptic STDP events and the
resets are all per target. The decay factors are the same function of (step, last event) as
the single-core memo returns.

Not parallel (single-core, with the reason): the per-presentation weight normalisation
(:func:`wta_normalise_threads` runs the single-core one; it is once per presentation), the due-
block list and the pending-event cursor (a scan of the spike history, in order), and the
parameter checks. No kernel here has a reduction: ``tests/test_threads.py`` inspects the
compiled parallel loops for reduction variables.

Use them directly with :func:`bioplastic.simulate` / :func:`bioplastic.simulate_blocks`::

    split = thread_split(conn, n, parts=2)
    simulate(lif_advance_threads, inputs, state, params, conn, split, threads=2)

``parts`` need not equal ``threads``: results are the same bits for any number of parts and
threads. Speed-ups need free cores; on a loaded machine the parallel loops wait for a core
(see ``docs/performance.md``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange
from numba.core import types
from numba.extending import overload

from .._jit import njit, njit_parallel, py_func
from .._state import with_step
from .._validate import positive_int
from ..rules.stdp import stdp_decay_factors, stdp_on_pre
from ._checks import check_connectivity, check_lif, check_wta
from .connectivity import SparseConnectivity, block_is_csr, pending_now, queue_push
from .lif import (
    LIFKernelParams,
    LIFState,
    _homogeneous,
    _scalars,
    lif_groups_thresholds,
    lif_resets,
)
from .wta import (
    _DECAY_CACHE_STEPS,
    WTAKernelParams,
    WTAState,
    _post_events,
    _update_group,
    wta_normalise,
)

__all__ = ["ThreadSplit", "thread_split", "check_thread_split", "lif_advance_threads",
           "wta_advance_threads", "wta_normalise_threads", "check_consistency", "run_threads"]


class ThreadSplit(NamedTuple):
    """Targets and delivery blocks of a connectivity split into parts (one per thread).

    Fields, int64 arrays::

        bounds  (parts + 1,)
                part p owns targets bounds[p]:bounds[p + 1]
        cut     (n_pre * (max_delay + 1), parts + 1)
                part p's synapses of block b = i * (max_delay + 1) + d (source i, delay d)
                are the delivery positions cut[b, p]:cut[b, p + 1]
        syn     (n_syn,) or (0,)
                the synapse at each delivery position (the block's delay_order, stably
                partitioned by part); empty when that is the identity (position q is
                synapse q)
    """

    bounds: np.ndarray
    cut: np.ndarray
    syn: np.ndarray


def _balanced_bounds(post: np.ndarray, n_post: int, parts: int) -> np.ndarray:
    """Contiguous target ranges of about equal work: each neuron weighs 1 + its in-degree."""
    work = np.cumsum(np.bincount(post, minlength=n_post) + 1)
    targets = work[-1] * np.arange(1, parts) / parts
    inner = np.searchsorted(work, targets, side="left") + 1
    return np.concatenate(([0], np.minimum(inner, n_post), [n_post])).astype(np.int64)


@njit
def _part_of(bounds, j):
    """The part that owns target ``j`` (``bounds[0] <= j < bounds[-1]``)."""
    p = 0
    while bounds[p + 1] <= j:
        p += 1
    return p


@njit
def _split_blocks(delay_ptr, order, post, bounds):
    """:func:`thread_split`'s work: ``(cut, syn, identity)``; ``conn`` already checked.

    One pass per block counts its synapses per part; a block already in part order (every
    block of a fresh connectivity: sorted by target) is copied as it is, any other one is
    partitioned stably in a second pass.
    """
    n_pre, n_ages = delay_ptr.shape[0], delay_ptr.shape[1] - 1
    parts = bounds.size - 1
    cut = np.empty((n_pre * n_ages, parts + 1), dtype=np.int64)
    syn = np.empty(order.size, dtype=np.int64)
    fill = np.empty(parts, dtype=np.int64)
    identity = True
    for i in range(n_pre):
        for d in range(n_ages):
            b = i * n_ages + d
            start, stop = delay_ptr[i, d], delay_ptr[i, d + 1]
            fill[:] = 0
            previous, in_order = 0, True
            for q in range(start, stop):
                k = order[q]
                p = _part_of(bounds, post[k])
                fill[p] += 1
                in_order = in_order and p >= previous
                previous = p
                syn[q] = k
                identity = identity and k == q
            position = start
            for p in range(parts):
                cut[b, p] = position
                position += fill[p]
                fill[p] = cut[b, p]
            cut[b, parts] = stop
            if in_order:
                continue
            identity = False
            for q in range(start, stop):   # stable: each part keeps the block's order
                k = order[q]
                p = _part_of(bounds, post[k])
                syn[fill[p]] = k
                fill[p] += 1
    return cut, syn, identity


def thread_split(conn: SparseConnectivity, n_post: int, parts: int) -> ThreadSplit:
    """Split ``conn``'s targets ``0..n_post-1`` into ``parts`` contiguous ranges and its
    delivery blocks accordingly (see :class:`ThreadSplit`); ``conn`` is checked first.

    Build it again after the delays change (:func:`~bioplastic.neurons.change_delays` returns
    a new connectivity).
    """
    n_post = positive_int("n_post", n_post)
    parts = positive_int("parts", parts)
    check_connectivity(conn, n_post=n_post)
    return _split(conn, n_post, parts)


def _split(conn: SparseConnectivity, n_post: int, parts: int) -> ThreadSplit:
    """:func:`thread_split` for a connectivity already checked against ``n_post``."""
    bounds = _balanced_bounds(conn.post, n_post, parts)
    cut, syn, identity = _split_blocks(conn.delay_ptr, conn.delay_order, conn.post, bounds)
    return ThreadSplit(bounds, cut, np.zeros(0, np.int64) if identity else syn)


@njit
def _split_mismatch(delay_ptr, order, post, bounds, cut, syn):
    """0 when ``cut``/``syn`` are exactly what :func:`thread_split` builds for ``bounds``;
    otherwise the number (1 + index) of the first delivery block that differs."""
    n_pre, n_ages = delay_ptr.shape[0], delay_ptr.shape[1] - 1
    parts = bounds.size - 1
    direct = syn.size == 0
    fill = np.empty(parts, dtype=np.int64)
    for i in range(n_pre):
        for d in range(n_ages):
            b = i * n_ages + d
            start, stop = delay_ptr[i, d], delay_ptr[i, d + 1]
            if cut[b, 0] != start or cut[b, parts] != stop:
                return b + 1
            for p in range(parts):
                if cut[b, p + 1] < cut[b, p]:
                    return b + 1
                fill[p] = cut[b, p]
            if direct and not block_is_csr(order, start, stop):
                return b + 1
            for q in range(start, stop):   # the block's synapses, in order, part by part
                k = order[q]
                p = _part_of(bounds, post[k])
                if fill[p] >= cut[b, p + 1] or (fill[p] != k if direct else syn[fill[p]] != k):
                    return b + 1
                fill[p] += 1
    return 0


def check_thread_split(split, conn: SparseConnectivity, n_post: int, *,
                       name: str = "split") -> ThreadSplit:
    """Check that ``split`` is :func:`thread_split`'s for ``conn`` (already checked against
    ``n_post``) with its own ``bounds``: parts own disjoint targets, so no two threads ever
    write one neuron, and every block's order is kept. One pass over the synapses."""
    if not isinstance(split, ThreadSplit):
        raise TypeError(f"{name} must be a ThreadSplit (bioplastic.neurons.parallel."
                        f"thread_split), got {type(split).__name__}")
    arrays = {}
    for field in split._fields:
        value = getattr(split, field)
        if not isinstance(value, np.ndarray) or value.dtype != np.int64:
            raise TypeError(f"{name}.{field} must be an int64 array, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
        arrays[field] = value
    bounds, cut, syn = arrays["bounds"], arrays["cut"], arrays["syn"]
    if bounds.ndim != 1 or bounds.size < 2 or bounds[0] != 0 or bounds[-1] != n_post \
            or np.any(np.diff(bounds) < 0):
        raise ValueError(f"{name}.bounds must rise from 0 to n_post={n_post} (one range per "
                         f"part), got {bounds!r}")
    n_blocks = conn.delay_ptr.shape[0] * (conn.delay_ptr.shape[1] - 1)
    if cut.shape != (n_blocks, bounds.size):
        raise ValueError(f"{name}.cut must have shape (n_pre * (max_delay + 1), parts + 1) = "
                         f"{(n_blocks, bounds.size)}, got {cut.shape}")
    if syn.shape not in ((0,), (conn.post.size,)):
        raise ValueError(f"{name}.syn must be empty or one entry per synapse "
                         f"({conn.post.size},), got {syn.shape}")
    bad = _split_mismatch(conn.delay_ptr, conn.delay_order, conn.post, bounds,
                          np.ascontiguousarray(cut), syn)
    if bad:
        raise ValueError(f"{name} does not match conn at delivery block {bad - 1}: build it "
                         "with thread_split(conn, n, parts) for this connectivity (again after "
                         "a delay change)")
    return split


def check_consistency(inputs, state, params, *weights, name: str = "inputs") -> None:
    """``simulate``'s check for the kernels here: the model's own check (LIF or WTA, chosen by
    the state's type), then the split against the connectivity."""
    if isinstance(state, LIFState):
        if len(weights) != 2:
            raise TypeError(f"lif_advance_threads takes (x, state, params, conn, split), got "
                            f"{len(weights)} weight arguments instead of 2")
        conn, split = weights
        check_lif(inputs, state, params, conn, name=name)
    elif isinstance(state, WTAState):
        if len(weights) != 3:
            raise TypeError(f"wta_advance_threads takes (x, state, params, conn, by_post, "
                            f"split), got {len(weights)} weight arguments instead of 3")
        conn, by_post, split = weights
        check_wta(inputs, state, params, conn, by_post, name=name)
    else:
        raise TypeError(f"state must be a LIFState or a WTAState, got {type(state).__name__}")
    check_thread_split(split, conn, state.v.size)


# ---------------------------------------------------------------------------------- shared


@njit
def _due_block_ids(history, step, conn):
    """The delivery blocks due at ``step`` as block ids ``i * (max_delay + 1) + age``, in
    Brian2's spike-queue order: the blocks of ``connectivity.due_blocks``, in its order."""
    n_slots, n_pre = history.shape
    n_ages = conn.delay_ptr.shape[1] - 1
    last_age = min(n_slots - 1, conn.max_delay)
    ids = np.empty(n_pre * (last_age + 1), dtype=np.int64)
    n_due = 0
    for age in range(last_age, -1, -1):
        if step - age < 0:
            continue
        row = history[(step - age) % n_slots]
        for i in range(n_pre):
            if row[i]:
                ids[n_due] = i * n_ages + age
                n_due += 1
    return ids[:n_due]


@njit
def _keep_queue(queue, spikes, step, conn):
    """The single-core kernels' delivery-queue bookkeeping for this step (push the spikes,
    empty the slot delivered now), so that the state's ``queue`` stays the same bits; the
    parts find their blocks through the block ids instead."""
    if queue.shape[0] > 1:   # as the single-core kernels: no delays, no queue
        queue_push(queue, spikes, step, conn)
    queue[step % queue.shape[0], 0] = 0


# ------------------------------------------------------------------------------------- LIF


def _part_params(params, lo, hi):
    """``params`` for neurons ``lo..hi-1``: slices of per-neuron arrays, scalars unchanged."""
    if np.ndim(params.decay_m) == 0:
        return params
    return LIFKernelParams(*(value[lo:hi] for value in params))


@overload(_part_params, inline="always", jit_options={"fastmath": False})
def _part_params_jit(params, lo, hi):
    # Chosen by type at compile time, like lif._at: nothing generated enters a signature.
    if isinstance(params.types[0], types.Array):
        return lambda params, lo, hi: LIFKernelParams(
            params.decay_m[lo:hi], params.decay_theta[lo:hi], params.v_rest[lo:hi],
            params.v_reset[lo:hi], params.v_th[lo:hi], params.theta_plus[lo:hi],
            params.ref_steps[lo:hi])
    return lambda params, lo, hi: params


@njit
def _deliver_part(lo, hi, part, v, not_refractory, due, first, stop, pending_syn, conn, split):
    """The synapses slot for targets ``lo..hi-1``: ``lif._deliver``'s events in its order,
    those whose target is in the part (pending events first, then the due blocks)."""
    post, weight = conn.post, conn.weight
    for q in range(first, stop):
        k = pending_syn[q]
        j = post[k]
        if lo <= j < hi and not_refractory[j]:
            v[j] += weight[k]
    cut, syn = split.cut, split.syn
    if syn.size == 0:   # the part's synapses of each block are read in place
        for b in due:
            for k in range(cut[b, part], cut[b, part + 1]):
                j = post[k]
                if not_refractory[j]:
                    v[j] += weight[k]
    else:
        for b in due:
            for q in range(cut[b, part], cut[b, part + 1]):
                k = syn[q]
                j = post[k]
                if not_refractory[j]:
                    v[j] += weight[k]


@njit_parallel
def _lif_parts(x, state, params, conn, split):
    """One LIF step over the parts (``params`` per-neuron arrays or scalars)."""
    n = state.v.size
    step = state.step
    v, theta, last_spike, history = state.v, state.theta, state.last_spike, state.history
    not_refractory = np.empty(n, dtype=np.bool_)
    spikes = np.zeros(n, dtype=np.bool_)
    bounds = split.bounds
    n_parts = bounds.size - 1
    row = step % history.shape[0]
    for part in prange(n_parts):   # groups -> thresholds: per neuron
        lo, hi = bounds[part], bounds[part + 1]
        lif_groups_thresholds(x[lo:hi], v[lo:hi], theta[lo:hi], last_spike[lo:hi],
                              not_refractory[lo:hi], spikes[lo:hi], step,
                              _part_params(params, lo, hi))
        for k in range(lo, hi):
            history[row, k] = spikes[k]
    first, stop = 0, 0
    if state.pending_next[0] < state.pending_due.size:
        first, stop = pending_now(state.pending_due, state.pending_next, step)
    if conn.post.size == 0:
        due = np.zeros(0, dtype=np.int64)
    else:
        _keep_queue(state.queue, spikes, step, conn)
        due = _due_block_ids(history, step, conn)
    for part in prange(n_parts):   # synapses (own targets, queue order) -> resets
        lo, hi = bounds[part], bounds[part + 1]
        _deliver_part(lo, hi, part, v, not_refractory, due, first, stop, state.pending_syn,
                      conn, split)
        lif_resets(spikes[lo:hi], v[lo:hi], theta[lo:hi], _part_params(params, lo, hi))
    return spikes, with_step(state, step + 1)


@njit
def lif_advance_threads(x: np.ndarray, state: LIFState, params: LIFKernelParams,
                        conn: SparseConnectivity, split: ThreadSplit
                        ) -> tuple[np.ndarray, LIFState]:
    """:func:`~bioplastic.neurons.lif_advance` over the parts of ``split`` on Numba's threads:
    the same spikes and state, bit for bit.

    ``split`` is ``thread_split(conn, n, parts)``. Run it with
    ``simulate(lif_advance_threads, inputs, state, params, conn, split, threads=k)``.
    """
    if _homogeneous(params):   # the scalar specialisation, as lif_advance
        return _lif_parts(x, state, _scalars(params), conn, split)
    return _lif_parts(x, state, params, conn, split)


# ------------------------------------------------------------------------------------- WTA


@njit
def _input_events_part(lo, hi, part, ge, w, x_pre, x_post1, x_post2, last_update, due, first,
                       stop, pending_syn, step, t_s, p, conn, split):
    """input -> exc ``on_pre`` for targets ``lo..hi-1``: ``wta._input_events``'s events in
    its order, those whose target is in the part. Decay factors are computed as the memo of
    the single-core kernel computes them (``stdp_decay_factors`` of the same arguments)."""
    s = p.stdp
    post = conn.post
    for q in range(first, stop):   # events in flight across a delay change: the oldest
        syn = pending_syn[q]
        j = post[syn]
        if lo <= j < hi:
            f1, f2, fp = stdp_decay_factors(t_s, last_update[syn] * p.dt_s, s)
            w_old = w[syn]
            w[syn], x_pre[syn], x_post1[syn], x_post2[syn] = stdp_on_pre(
                w_old, x_pre[syn], x_post1[syn], x_post2[syn], f1, f2, fp, s)
            last_update[syn] = step
            ge[j] += w_old
    cut, ids = split.cut, split.syn
    direct = ids.size == 0
    for b in due:
        last, f1, f2, fp = -1, 1.0, 1.0, 1.0
        for q in range(cut[b, part], cut[b, part + 1]):
            syn = q if direct else ids[q]
            if last_update[syn] != last:
                last = last_update[syn]
                f1, f2, fp = stdp_decay_factors(t_s, last * p.dt_s, s)
            w_old = w[syn]
            w[syn], x_pre[syn], x_post1[syn], x_post2[syn] = stdp_on_pre(
                w_old, x_pre[syn], x_post1[syn], x_post2[syn], f1, f2, fp, s)
            last_update[syn] = step
            ge[post[syn]] += w_old


@njit
def _post_events_part(lo, hi, spikes, w, x_pre, x_post1, x_post2, last_update, step, t_s, p,
                      by_post):
    """input -> exc ``on_post`` for the part's excitatory neurons that spiked, with a private
    decay-factor memo (allocated only when one did)."""
    if not np.any(spikes[lo:hi]):
        return
    elapsed_ok = np.full(_DECAY_CACHE_STEPS, -1, dtype=np.int64)
    factors = np.zeros((_DECAY_CACHE_STEPS, 3))
    _post_events(lo, hi, spikes, w, x_pre, x_post1, x_post2, last_update, step, t_s, p, by_post,
                 elapsed_ok, factors)


@njit
def _lateral_part(lo, hi, exc_spikes, inh_spikes, ge_inh, gi, w_ei, w_ie):
    """exc -> inh partner and inh -> every other exc, ``on_pre``, for targets ``lo..hi-1``
    (each target adds the spiking inhibitory neurons in index order, as single-core)."""
    for k in range(lo, hi):
        if exc_spikes[k]:
            ge_inh[k] += w_ei
    for i in range(inh_spikes.size):
        if inh_spikes[i]:
            for j in range(lo, hi):
                if j != i:
                    gi[j] += w_ie


@njit
def _resets_part(lo, hi, exc_spikes, inh_spikes, v, theta, v_inh, p):
    for k in range(lo, hi):
        if exc_spikes[k]:
            v[k] = p.exc.v_reset
            theta[k] += p.theta_plus
        if inh_spikes[k]:
            v_inh[k] = p.inh.v_reset


# Numba passes the variables a prange loop reads to its worker function one by one, and it
# cannot pass a tuple nested in a tuple (WTAKernelParams holds three). So the loops get the
# parameters as flat pieces and each part's helper puts them back together.


@njit
def _flat(p):
    """``p`` (WTAKernelParams) as four flat tuples."""
    top = (p.dt_s, p.tau_ge_s, p.tau_gi_s, p.tau_theta_s, p.theta_plus, p.w_ei, p.w_ie,
           p.conductance, p.w_sum)
    return top, p.exc, p.inh, p.stdp


@njit
def _unflat(top, exc, inh, stdp):
    return WTAKernelParams(top[0], top[1], top[2], top[3], top[4], top[5], top[6], top[7],
                           top[8], exc, inh, stdp)


@njit
def _groups_part(lo, hi, v, ge, gi, theta, last_spike, v_inh, ge_inh, gi_inh, last_inh,
                 exc_spikes, inh_spikes, step, top, exc, inh, stdp):
    """Groups and thresholds of both populations for neurons ``lo..hi-1`` (the single-core
    ``wta._update_group`` on the part's slices)."""
    p = _unflat(top, exc, inh, stdp)
    _update_group(v[lo:hi], ge[lo:hi], gi[lo:hi], last_spike[lo:hi], step, p.exc, p,
                  theta[lo:hi], exc_spikes[lo:hi])
    _update_group(v_inh[lo:hi], ge_inh[lo:hi], gi_inh[lo:hi], last_inh[lo:hi], step, p.inh, p,
                  np.empty(0), inh_spikes[lo:hi])


@njit
def _synapses_part(lo, hi, part, exc_spikes, inh_spikes, st, due, first, stop, step, t_s,
                   top, exc, inh, stdp, conn, by_post, split):
    """Synapses then resets for targets ``lo..hi-1``: input -> exc ``on_pre``, exc -> inh,
    inh -> exc, input -> exc ``on_post``, resets (the single-core order)."""
    p = _unflat(top, exc, inh, stdp)
    _input_events_part(lo, hi, part, st.ge, st.w, st.x_pre, st.x_post1, st.x_post2,
                       st.last_update, due, first, stop, st.pending_syn, step, t_s, p, conn,
                       split)
    _lateral_part(lo, hi, exc_spikes, inh_spikes, st.ge_inh, st.gi, p.w_ei, p.w_ie)
    _post_events_part(lo, hi, exc_spikes, st.w, st.x_pre, st.x_post1, st.x_post2,
                      st.last_update, step, t_s, p, by_post)
    _resets_part(lo, hi, exc_spikes, inh_spikes, st.v, st.theta, st.v_inh, p)


@njit_parallel
def _wta_parts(x, st, top, exc, inh, stdp, conn, by_post, split):
    """One WTA step over the parts (parameters as the flat pieces of :func:`_flat`)."""
    step = st.step
    n = st.v.size
    t_s = step * top[0]
    spikes = np.zeros(2 * n, dtype=np.bool_)
    exc_spikes = spikes[:n]
    inh_spikes = spikes[n:]
    bounds = split.bounds
    n_parts = bounds.size - 1
    for part in prange(n_parts):   # groups -> thresholds, exc then inh, per neuron
        _groups_part(bounds[part], bounds[part + 1], st.v, st.ge, st.gi, st.theta,
                     st.last_spike, st.v_inh, st.ge_inh, st.gi_inh, st.last_spike_inh,
                     exc_spikes, inh_spikes, step, top, exc, inh, stdp)
    st.history[step % st.history.shape[0]] = x
    first, stop = pending_now(st.pending_due, st.pending_next, step)
    if conn.post.size:
        _keep_queue(st.queue, x, step, conn)
    due = _due_block_ids(st.history, step, conn)
    for part in prange(n_parts):   # synapses (own targets, queue order) -> resets
        _synapses_part(bounds[part], bounds[part + 1], part, exc_spikes, inh_spikes, st, due,
                       first, stop, step, t_s, top, exc, inh, stdp, conn, by_post, split)
    return spikes, with_step(st, step + 1)


@njit
def wta_advance_threads(x: np.ndarray, state: WTAState, params: WTAKernelParams,
                        conn: SparseConnectivity, by_post, split: ThreadSplit
                        ) -> tuple[np.ndarray, WTAState]:
    """:func:`~bioplastic.neurons.wta_advance` over the parts of ``split`` on Numba's threads:
    the same spikes and state, bit for bit (``memo_step``/``memo``, scratch, are not used).

    ``split`` is ``thread_split(conn, n, parts)`` for the input connectivity and the ``n``
    excitatory neurons (each inhibitory neuron goes with its excitatory partner). Run it with
    ``simulate_blocks(wta_advance_threads, blocks, state, params, conn, by_post, split,
    on_block=wta_normalise_threads, threads=k)``.
    """
    top, exc, inh, stdp = _flat(params)
    return _wta_parts(x, state, top, exc, inh, stdp, conn, by_post, split)


@njit
def wta_normalise_threads(state: WTAState, params, conn: SparseConnectivity, by_post,
                          split: ThreadSplit) -> None:
    """The start-of-presentation hook for :func:`wta_advance_threads`: the single-core
    :func:`~bioplastic.neurons.wta.wta_normalise` (``split`` unused; once per presentation)."""
    wta_normalise(state, params, conn, by_post)


# ------------------------------------------------------------------------------ front ends


def run_threads(inputs: np.ndarray, state, params, conn: SparseConnectivity, *weights,
                threads: int, record=(), record_units=None, split: ThreadSplit | None = None,
                blocks: bool = False):
    """The front ends' multi-core run (``threads > 1``): the model's check as
    :func:`bioplastic.simulate` makes it, the split of the checked ``conn`` (or ``split``,
    built by :func:`thread_split` for it), the run, and the final state checked finite.

    ``weights`` are the model's weights after ``conn`` (WTA: ``by_post``); ``blocks`` runs
    :func:`bioplastic.simulate_blocks` over presentations with :func:`wta_normalise_threads`.
    """
    from .._state import check_finite
    from ..simulate import simulate, simulate_blocks

    lif = isinstance(state, LIFState)
    advance = lif_advance_threads if lif else wta_advance_threads
    first = inputs[0] if blocks else inputs
    if lif:
        check_lif(first, state, params, conn, *weights)
    else:
        check_wta(first, state, params, conn, *weights)
    n = state.v.size
    split = _split(conn, n, threads) if split is None else check_thread_split(split, conn, n)
    if blocks:
        trace = simulate_blocks(advance, inputs, state, params, conn, *weights, split,
                                on_block=wta_normalise_threads, record=record,
                                record_units=record_units, check=False, threads=threads)
    else:
        trace = simulate(advance, inputs, state, params, conn, *weights, split, record=record,
                         record_units=record_units, check=False, threads=threads)
    check_finite(trace.state, f"the run of {py_func(advance).__qualname__}")
    return trace
