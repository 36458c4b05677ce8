"""Sparse synaptic connectivity shared by every spiking model with synapses.

Weights are given the library way, ``(n_post, n_pre)`` (dense array or ``scipy.sparse``), and
stored *pre-major* (CSR over the presynaptic index) because spikes are delivered row by row.

**Static topology, plastic synapse arrays.** A :class:`SparseConnectivity` holds

* the *topology* — ``indptr`` and ``post`` (with ``pre()`` derived): which synapses exist and
  their **CSR order**, fixed when the connectivity is built (within a row: by the initial
  delay, then by postsynaptic index). Every per-synapse array of every model (weights, STDP
  traces, delays) is indexed in this order, and it never changes;
* the *per-synapse values* — ``weight`` and ``delay_steps`` (``(n_syn,)`` each), which a rule
  may change between runs: :func:`with_weights` and :func:`with_delays` return a connectivity
  with the same topology arrays (shared, not copied) and new values;
* the delivery index derived from the delays — ``delay_order`` (synapse ids sorted by
  source, then delay, then CSR position) and ``delay_ptr``, so that the synapses of one source
  with one delay are the contiguous range ``delay_order[delay_ptr[i, d]:delay_ptr[i, d+1]]``
  and delivery costs O(events). It is rebuilt by :func:`with_delays`.

The Brian2 twins create their synapses in CSR order (``connect(i=pre, j=post)`` with these
arrays). Brian2's spike queue delivers the events due at one step by push time (oldest first),
then source, then synapse index; within one source and one delay that is our ``delay_order``,
so both sides accumulate repeated targets in the same sequence — a condition for bit-identity.

**Changing delays between runs** (:func:`change_delays`) follows Brian2 2.9's ``SpikeQueue``:
when a network is run again after ``S.delay`` changed, ``SpikeQueue.prepare`` takes the spikes
already in the queue out and stores them back at the same time offsets, so *a spike already
queued keeps the delay it was queued with*; only spikes emitted after the change use the new
delays. Models keep spikes in a history ring and look back by the current delays; at a change,
:func:`change_delays` turns every event still in flight into an explicit *pending* event
(``pending_syn``, ``pending_due`` in the model state, delivered first at their step, oldest
first, as Brian's queue does) and clears the ring.

**The delivery queue** (the state field ``queue``, from :func:`spike_queue`) does what Brian2's
C++ ``SpikeQueue`` does: when a source spikes at step ``e``, each of its non-empty (source,
delay ``d``) blocks is pushed, as its range ``(start, stop)`` of ``delay_order`` positions, onto
the slot of step ``e + d`` (:func:`queue_push`); at step ``t`` the models deliver slot ``t``'s
blocks in push order and empty it. Pushes happen in time order and, within a step, in source
order, so a slot lists its blocks exactly in the order above (oldest spike first, then source,
then the block's synapse order) — the same blocks, in the same order, as scanning the history
ring (:func:`due_blocks`), without the scan: the work per step is proportional to the spikes and
the events, and the delivery loop reads ranges written a few steps earlier instead of looking
``delay_ptr`` up for every (source, delay) pair. A block whose ``delay_order`` range is the
plain CSR range (:func:`block_is_csr`; every block until delays change) is marked so at push
time, when its source's row is read anyway, and delivered without touching ``delay_order``.

Without delays (``max_delay == 0``, one slot) every block is due in the step of its spike, and
the models read that step's spikes straight from the ring (a push and a pop of the same blocks
cost more than they save there); the queue then stays empty.

``queue`` is int64 ``(max_delay + 1, 1 + 2 * cap)``: row ``t % (max_delay + 1)`` is the slot
of step ``t``; column 0 its block count, then ``(start, stop)`` pairs, ``stop`` stored as
``~stop`` (negative) for a block delivered through ``delay_order``. The capacity ``cap``
(:func:`queue_capacity`) is the number of non-empty (source, delay) blocks of the connectivity
over the number of slots, rounded up: the queue's memory is fixed at ``*_init``, 16 bytes per
block of the connectivity (at most 16 bytes per synapse). A slot fills only when, averaged
over the last ``max_delay + 1`` steps, more than about one source in ``max_delay + 1`` spikes
per step (e.g. above 476 Hz at 0.1 ms steps with 1-20-step delays). A slot that would
overflow is marked full (count ``-1``), later pushes to it are dropped, and its step is
delivered by the history scan instead: the same blocks in the same order, so results never
depend on the capacity; only the speed does.

The queue is a function of ``history``, ``step`` and the connectivity: ``check_queue`` (run by
:func:`bioplastic.simulate`) rebuilds it from them (:func:`queue_expected`) and refuses a state
whose queue differs, so its ranges are safe to index with. :func:`change_delays` empties it
with the ring.

Delays are whole numbers of steps. Brian's C++ spike queue rounds ``delay/dt`` half up, its
Python queue half to even; :func:`connectivity` refuses anything that is not a whole step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .._jit import njit
from .._validate import as_float_array, count, finite_float, positive, unitless, whole_steps

__all__ = ["SparseConnectivity", "connectivity", "connectivity_from_arrays", "no_connectivity",
           "due_blocks", "blocks_are_rows", "block_is_csr", "spike_words", "next_spike",
           "pending_now", "with_delays", "with_weights",
           "change_delays", "spike_queue", "queue_capacity", "queue_push", "queue_expected",
           "delay_steps_from_ms"]


class SparseConnectivity(NamedTuple):
    """Pre-major CSR synapses: static topology, per-synapse values, derived delivery index.

    indptr : int64 (n_pre + 1,)   topology: row ``i`` owns synapses ``indptr[i]:indptr[i+1]``
    post : int64 (n_syn,)         topology: postsynaptic index of each synapse
    weight : float64 (n_syn,)     weight of each synapse (model units, e.g. mV), CSR order
    delay_steps : int64 (n_syn,)  transmission delay in whole steps (0 = same step), CSR order
    max_delay : int               largest delay in steps (sizes the spike history ring)
    delay_ptr : int64 (n_pre, max_delay + 2)  row ``i``'s synapses of delay ``d`` are
                                  ``delay_order[delay_ptr[i, d]:delay_ptr[i, d+1]]``
    delay_order : int64 (n_syn,)  synapse ids sorted by (source, delay, CSR position); the
                                  identity for a freshly built connectivity
    """

    indptr: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay_steps: np.ndarray
    max_delay: int
    delay_ptr: np.ndarray
    delay_order: np.ndarray

    @property
    def n_pre(self) -> int:
        return self.indptr.size - 1

    @property
    def n_synapses(self) -> int:
        return self.post.size

    def pre(self) -> np.ndarray:
        """Presynaptic index of each synapse, int64 (n_syn,)."""
        return np.repeat(np.arange(self.n_pre, dtype=np.int64), np.diff(self.indptr))

    def to_dense(self, n_post: int) -> np.ndarray:
        """Dense ``(n_post, n_pre)`` weights (repeated pairs summed)."""
        dense = np.zeros((n_post, self.n_pre))
        np.add.at(dense, (self.post, self.pre()), self.weight)
        return dense


def connectivity_from_arrays(pre, post, weight, n_pre: int, n_post: int, *, delay_ms=0.0,
                             dt_ms: float = 0.1) -> SparseConnectivity:
    """Build from synapse lists; the result is sorted by ``(pre, delay, post)`` (stable)."""
    n_pre, n_post = count("n_pre", n_pre), count("n_post", n_post)
    pre = np.asarray(pre)
    post = np.asarray(post)
    if pre.shape != post.shape or pre.ndim != 1:
        raise ValueError(f"pre and post must be 1-D of equal length, got {pre.shape}, {post.shape}")
    for name, idx, bound in (("pre", pre, n_pre), ("post", post, n_post)):
        if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= bound):
            raise ValueError(f"{name} must hold integer indices in [0, n_{name}) = [0, {bound}), "
                             f"got {idx!r}")
    weight = _per_synapse("weight", as_float_array("weight", weight), pre.shape)
    dt_ms = positive("dt_ms", finite_float("dt_ms", dt_ms))
    delays = _per_synapse("delay_ms", whole_steps("delay_ms", delay_ms, dt_ms), pre.shape)
    order = np.lexsort((post, delays, pre))
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    np.cumsum(np.bincount(pre, minlength=n_pre), out=indptr[1:])
    delay_steps = np.ascontiguousarray(delays[order], dtype=np.int64)
    max_delay = int(delay_steps.max()) if delay_steps.size else 0
    return SparseConnectivity(
        indptr,
        np.ascontiguousarray(post[order], dtype=np.int64),
        np.ascontiguousarray(weight[order], dtype=np.float64),
        delay_steps,
        max_delay,
        _delay_pointers(pre, delays, n_pre, max_delay),
        np.arange(pre.size, dtype=np.int64),   # sorted by delay within each row already
    )


def with_weights(conn: SparseConnectivity, weight) -> SparseConnectivity:
    """``conn`` with new per-synapse weights ``(n_syn,)`` in CSR order (topology shared)."""
    weight = as_float_array("weight", weight, ndim=1)
    if weight.shape != (conn.n_synapses,):
        raise ValueError(f"weight must have shape ({conn.n_synapses},), got {weight.shape}")
    return conn._replace(weight=np.array(weight, dtype=np.float64))


def delay_steps_from_ms(delay_ms, dt_ms: float, n_syn: int) -> np.ndarray:
    """Per-synapse delays in whole steps from ms (scalar or ``(n_syn,)``), refusing fractions."""
    steps = whole_steps("delay_ms", delay_ms, positive("dt_ms", dt_ms))
    return np.ascontiguousarray(np.broadcast_to(steps, (n_syn,)), dtype=np.int64)


def with_delays(conn: SparseConnectivity, delay_steps) -> SparseConnectivity:
    """``conn`` with new per-synapse delays (whole steps, ``(n_syn,)`` in CSR order).

    The topology arrays and the weights are shared with ``conn``; the delivery index is
    rebuilt. For a network that has already run, use :func:`change_delays`, which also keeps
    the spikes in flight on their old delays (Brian2's semantics).
    """
    delays = np.asarray(delay_steps)
    if delays.shape != (conn.n_synapses,) or (delays.size and delays.dtype.kind not in "iu"):
        raise ValueError(f"delay_steps must be an integer array of shape ({conn.n_synapses},), "
                         f"got dtype {delays.dtype} shape {delays.shape}")
    if delays.size and delays.min() < 0:
        raise ValueError(f"delay_steps must be >= 0, got a minimum of {delays.min()}")
    delays = np.ascontiguousarray(delays, dtype=np.int64)
    pre = conn.pre()
    order = np.lexsort((np.arange(delays.size), delays, pre)).astype(np.int64)
    max_delay = int(delays.max()) if delays.size else 0
    return conn._replace(delay_steps=delays, max_delay=max_delay,
                         delay_ptr=_delay_pointers(pre, delays, conn.n_pre, max_delay),
                         delay_order=order)


def spike_queue(conn: SparseConnectivity) -> dict:
    """The spike-queue fields of a model state for ``conn``: an empty history ring
    ``(max_delay + 1, n_pre)``, no pending events and an empty delivery queue
    ``(max_delay + 1, 1 + 2 * queue_capacity(conn))`` (``**spike_queue(conn)`` in
    ``*_init``)."""
    return {"history": np.zeros((conn.max_delay + 1, conn.n_pre), dtype=np.bool_),
            "pending_syn": np.zeros(0, dtype=np.int64),
            "pending_due": np.zeros(0, dtype=np.int64),
            "pending_next": np.zeros(1, dtype=np.int64),
            "queue": np.zeros((conn.max_delay + 1, 1 + 2 * queue_capacity(conn)),
                              dtype=np.int64)}


def queue_capacity(conn: SparseConnectivity) -> int:
    """Blocks one slot of the delivery queue holds: the number of non-empty (source, delay)
    blocks over the number of slots, rounded up (so the whole queue holds as many blocks as
    ``conn`` has, 16 bytes each; at most ``n_pre`` per slot). A slot overflows only when more
    than about one source in ``max_delay + 1`` spikes per step, averaged over the last
    ``max_delay + 1`` steps. (Without delays the one slot is never used.)"""
    ptr = np.asarray(conn.delay_ptr)
    blocks = int(np.count_nonzero(ptr[:, 1:] > ptr[:, :-1]))
    return -(-blocks // (conn.max_delay + 1))


def change_delays(state, conn: SparseConnectivity, delay_steps):
    """Change the delays of a network between runs, with Brian2's semantics for spikes already
    queued: they keep the delay they were queued with.

    Parameters
    ----------
    state : NamedTuple
        A model state with the spike-queue fields ``history``, ``pending_syn``,
        ``pending_due``, ``pending_next``, ``queue`` and ``step`` (LIF, WTA); not modified.
    conn : SparseConnectivity
        The connectivity the state was run with.
    delay_steps : int array (n_syn,)
        The new delays in whole steps, CSR order.

    Returns
    -------
    (state, conn)
        A new state whose in-flight events are pending events (delivered at the steps their
        old delays gave, before any event of a later spike), with an empty history ring and
        delivery queue sized for the new delays; and ``with_delays(conn, delay_steps)``.
    """
    new_conn = with_delays(conn, delay_steps)
    step = int(state.step)
    history = np.asarray(state.history)
    n_slots = history.shape[0]
    if history.shape[1] != conn.n_pre:
        raise ValueError(f"state.history has {history.shape[1]} sources, conn has {conn.n_pre}")
    first = int(state.pending_next[0])
    due = [np.asarray(state.pending_due[first:], dtype=np.int64)]
    syn = [np.asarray(state.pending_syn[first:], dtype=np.int64)]
    # Spikes of steps step-n_slots+1 .. step-1, oldest first, then source; per source and old
    # delay, the delivery order. Keep the events whose old due step is still ahead.
    for emitted in range(max(0, step - n_slots + 1), step):
        for i in np.flatnonzero(history[emitted % n_slots]):
            for d in range(max(0, step - emitted), min(n_slots - 1, conn.max_delay) + 1):
                block = conn.delay_order[conn.delay_ptr[i, d]:conn.delay_ptr[i, d + 1]]
                due.append(np.full(block.size, emitted + d, dtype=np.int64))
                syn.append(block)
    due_all, syn_all = np.concatenate(due), np.concatenate(syn)
    order = np.argsort(due_all, kind="stable")   # per due step: existing, then oldest first
    queue = spike_queue(new_conn)   # empty ring and delivery queue for the new delays
    queue.update(pending_syn=np.ascontiguousarray(syn_all[order]),
                 pending_due=np.ascontiguousarray(due_all[order]))
    return state._replace(**queue), new_conn


def _per_synapse(name: str, values: np.ndarray, shape: tuple[int]) -> np.ndarray:
    """A scalar or one value per synapse, broadcast to ``shape`` = (n_syn,)."""
    if values.ndim != 0 and values.shape != shape:
        raise ValueError(f"{name} must be a scalar or have one value per synapse {shape}, got "
                         f"shape {values.shape}")
    return np.broadcast_to(values, shape)


def _delay_pointers(pre, delays, n_pre: int, max_delay: int) -> np.ndarray:
    """Start of each (source, delay) block in the sorted order, shape (n_pre, max_delay + 2)."""
    n_delays = max_delay + 1
    counts = np.bincount(pre.astype(np.int64) * n_delays + delays, minlength=n_pre * n_delays)
    starts = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    pointers = np.empty((n_pre, n_delays + 1), dtype=np.int64)
    pointers[:, :n_delays] = starts[:-1].reshape(n_pre, n_delays)
    pointers[:, n_delays] = starts[n_delays::n_delays]
    return pointers


def connectivity(weight, *, delay_ms=0.0, dt_ms: float = 0.1) -> SparseConnectivity:
    """Synapses from a weight matrix of shape ``(n_post, n_pre)``.

    A dense array's non-zero entries are synapses; a ``scipy.sparse`` matrix's stored entries
    are synapses (explicit zeros included). ``delay_ms`` is a scalar or an array shaped like the
    dense weight matrix (entries read at the synapses' positions).
    """
    if sp.issparse(weight):
        coo = sp.coo_array(weight)
        n_post, n_pre = coo.shape
        rows, cols, values = coo.row, coo.col, coo.data
    else:
        dense = as_float_array("weight", weight, ndim=2)
        n_post, n_pre = dense.shape
        rows, cols = np.nonzero(dense)
        values = dense[rows, cols]
    # a string such as '0.1': TypeError
    delay = as_float_array("delay_ms", unitless("delay_ms", delay_ms))
    if delay.ndim not in (0, 2) or (delay.ndim == 2 and delay.shape != (n_post, n_pre)):
        raise ValueError(f"delay_ms must be scalar or shape {(n_post, n_pre)}, "
                         f"got {delay.shape}")
    if delay.ndim == 2:
        delay = delay[rows, cols]
    return connectivity_from_arrays(cols, rows, values, n_pre, n_post, delay_ms=delay, dt_ms=dt_ms)


def no_connectivity(n_pre: int) -> SparseConnectivity:
    """No synapses (a population driven only by its external input)."""
    empty_i = np.zeros(0, dtype=np.int64)
    return SparseConnectivity(np.zeros(n_pre + 1, np.int64), empty_i, np.zeros(0), empty_i, 0,
                              np.zeros((n_pre, 2), np.int64), empty_i.copy())


@njit
def pending_now(pending_due, pending_next, step):
    """The range ``[start, stop)`` of pending events (see :func:`change_delays`) due at
    ``step``; advances the cursor ``pending_next[0]`` past them (in place)."""
    start = pending_next[0]
    stop = start
    while stop < pending_due.size and pending_due[stop] <= step:
        stop += 1
    pending_next[0] = stop
    return start, stop


@njit
def blocks_are_rows(conn):
    """True when every delivery block of ``conn`` is a source's whole CSR row, read in place
    (``delay_order`` need not be read). So it is without delays: each source then has one
    block, its row, and ``check_connectivity`` makes a block's ``delay_order`` a strictly
    increasing permutation of the row's own synapse ids, which is the identity."""
    return conn.max_delay == 0


@njit
def block_is_csr(order, start, stop):
    """True when the delivery block ``order[start:stop]`` is the synapses ``start .. stop-1``
    themselves (always so until delays change), read off its two ends: within a block
    ``delay_order`` increases strictly (CSR position order, checked by ``check_connectivity``),
    and a strictly increasing run of integers from ``start`` to ``stop - 1`` is all of them."""
    return stop <= start or (order[start] == start and order[stop - 1] == stop - 1)


@njit
def spike_words(row):
    """The flags of a spike row ``(n,)`` read eight at a time: a ``uint64`` view of its first
    ``8 * (n // 8)`` entries (empty when the row is not contiguous), for :func:`next_spike`."""
    if not row.flags.c_contiguous:   # a strided row cannot be viewed as words
        return np.empty(0, dtype=np.uint64)
    return row[:row.size // 8 * 8].view(np.uint64)


@njit
def next_spike(row, words, i):
    """The first index ``>= i`` where ``row`` is True, or ``row.size``. Whole zero words of
    ``words = spike_words(row)`` are skipped in one test each (most words of a spike row are
    zero); the same indices, in the same order, as testing every entry."""
    n = row.size
    while i < n:
        if (i & 7) == 0 and (i >> 3) < words.size:
            w = i >> 3
            while w < words.size and words[w] == 0:
                w += 1
            i = w * 8
            if i >= n:
                break
        if row[i]:
            return i
        i += 1
    return n


@njit(inline="always")   # every step of every network calls it (see lif._deliver)
def due_blocks(history, step, conn):
    """Synapse ranges whose events are due at ``step``, in Brian2's spike-queue order.

    ``history`` is a ring ``(n_slots, n_pre)`` of past spikes (row ``t % n_slots`` holds step
    ``t``). Events are due from every source that spiked ``d`` steps ago through its synapses of
    delay ``d``: oldest spikes first, then source index; within a block, synapse order (the
    postsynaptic order). Returns ``(starts, stops)``, one entry per block; iterate
    ``for q in range(starts[b], stops[b])`` over synapses ``conn.delay_order[q]``.
    """
    n_slots, n_pre = history.shape
    last_age = min(n_slots - 1, conn.max_delay)
    starts = np.empty(n_pre * (last_age + 1), dtype=np.int64)
    stops = np.empty_like(starts)
    n_blocks = 0
    for age in range(last_age, -1, -1):
        if step - age < 0:
            continue
        row = history[(step - age) % n_slots]
        words = spike_words(row)
        i = next_spike(row, words, 0)
        while i < n_pre:
            starts[n_blocks] = conn.delay_ptr[i, age]
            stops[n_blocks] = conn.delay_ptr[i, age + 1]
            n_blocks += 1
            i = next_spike(row, words, i + 1)
    return starts[:n_blocks], stops[:n_blocks]


@njit
def queue_push(queue, spikes, step, conn):
    """Push the delivery blocks of every source spiking at ``step`` (``spikes`` ``(n_pre,)``
    bool) onto the slots of their due steps, in source order then delay order (in place).

    Block (i, d) goes to slot ``(step + d) % n_slots`` as ``(start, stop)`` positions of
    ``conn.delay_order``; ``stop`` is stored as ``~stop`` when the block is not the plain CSR
    range (:func:`block_is_csr`). Empty blocks are not pushed. A slot already holding its
    capacity ``(queue.shape[1] - 1) // 2`` of blocks is marked full (count ``-1``) instead, and
    a full slot takes no more pushes (its step is delivered by :func:`due_blocks`). The
    models call it only with delays (``max_delay > 0``).
    """
    n_slots = queue.shape[0]
    cap = (queue.shape[1] - 1) // 2
    last_age = min(n_slots - 1, conn.max_delay)
    ptr, order = conn.delay_ptr, conn.delay_order
    n = spikes.size
    words = spike_words(spikes)
    i = next_spike(spikes, words, 0)
    while i < n:
        _push_source(queue, i, 0, last_age, step, cap, ptr, order)
        i = next_spike(spikes, words, i + 1)


@njit
def _push_source(queue, i, first_age, last_age, step, cap, ptr, order):
    """Push source ``i``'s non-empty blocks of delays ``first_age..last_age``, emitted at
    ``step`` (see :func:`queue_push`)."""
    n_slots = queue.shape[0]
    for d in range(first_age, last_age + 1):
        start, stop = ptr[i, d], ptr[i, d + 1]
        if stop <= start:
            continue
        slot = (step + d) % n_slots
        c = queue[slot, 0]
        if c < 0:          # full: this step is delivered from the history ring
            continue
        if c >= cap:
            queue[slot, 0] = -1
            continue
        queue[slot, 1 + 2 * c] = start
        queue[slot, 2 + 2 * c] = stop if block_is_csr(order, start, stop) else ~stop
        queue[slot, 0] = c + 1


@njit
def queue_expected(history, step, conn, cap):
    """The delivery queue a state at ``step`` with this ``history`` ring must hold: every
    block of the spikes in the ring still due at ``step`` or later, pushed in the order the
    kernels push them (:func:`queue_push`); shape ``(n_slots, 1 + 2 * cap)``. Used by the
    checks; unused entries are zero."""
    n_slots, n_pre = history.shape
    queue = np.zeros((n_slots, 1 + 2 * cap), dtype=np.int64)
    if conn.post.size == 0 or n_slots == 1:    # the kernels push nothing then
        return queue
    last_age = min(n_slots - 1, conn.max_delay)
    ptr, order = conn.delay_ptr, conn.delay_order
    for emitted in range(max(0, step - last_age), step):
        row = history[emitted % n_slots]
        for i in range(n_pre):
            if row[i]:
                _push_source(queue, i, step - emitted, last_age, emitted, cap, ptr, order)
    return queue
