"""Sparse synaptic connectivity shared by every spiking model with synapses.

Weights are given the library way, ``(n_post, n_pre)`` (dense array or ``scipy.sparse``), and
stored *pre-major* (CSR over the presynaptic index) because spikes are delivered row by row.
Within a row synapses are sorted by delay, then by postsynaptic index, so the synapses of one
source with one delay form a contiguous range (``delay_ptr``) and delivery costs O(events).
That order is also the order in which the Brian2 twin creates its synapses
(``connect(i=pre, j=post)`` with the same arrays). Brian2's spike queue delivers the events due
at one step by push time (oldest first), then source, then synapse index; within one source and
one delay that is our postsynaptic order, so both sides accumulate repeated targets in the same
sequence — a condition for bit-identity (``docs/twinning.md``, point 4).

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
           "due_blocks"]


class SparseConnectivity(NamedTuple):
    """Pre-major CSR synapses.

    indptr : int64 (n_pre + 1,)   row ``i`` owns synapses ``indptr[i]:indptr[i+1]``
    post : int64 (n_syn,)         postsynaptic index of each synapse
    weight : float64 (n_syn,)     weight of each synapse (model units, e.g. mV)
    delay_steps : int64 (n_syn,)  transmission delay in whole steps (0 = same step)
    max_delay : int               largest delay in steps (sizes the spike history ring)
    delay_ptr : int64 (n_pre, max_delay + 2)  row ``i``'s synapses of delay ``d`` are
                                  ``delay_ptr[i, d]:delay_ptr[i, d+1]``
    """

    indptr: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay_steps: np.ndarray
    max_delay: int
    delay_ptr: np.ndarray

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
            raise ValueError(f"{name} must hold integer indices in [0, {bound}), got {idx!r}")
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
    )


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
                              np.zeros((n_pre, 2), np.int64))


@njit
def due_blocks(history, step, conn):
    """Synapse ranges whose events are due at ``step``, in Brian2's spike-queue order.

    ``history`` is a ring ``(n_slots, n_pre)`` of past spikes (row ``t % n_slots`` holds step
    ``t``). Events are due from every source that spiked ``d`` steps ago through its synapses of
    delay ``d``: oldest spikes first, then source index; within a block, synapse order (the
    postsynaptic order). Returns ``(starts, stops)``, one entry per block; iterate
    ``for k in range(starts[b], stops[b])``.
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
        for i in range(n_pre):
            if row[i]:
                starts[n_blocks] = conn.delay_ptr[i, age]
                stops[n_blocks] = conn.delay_ptr[i, age + 1]
                n_blocks += 1
    return starts[:n_blocks], stops[:n_blocks]
