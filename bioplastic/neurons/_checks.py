"""Validation of every structure a neuron kernel indexes, once, at the Python boundary.

Numba does no bounds checking: a post index of -1, a delay table one column short, a state
built for 8 neurons run with a connectivity for 4 — each reads or writes memory it does not
own (a segfault, or silently wrong numbers). The kernels trust their inputs; these checks are
what makes that safe:

* :func:`check_connectivity` and :func:`check_post_index` — a :class:`SparseConnectivity` or
  :class:`~bioplastic.rules.PostIndex`, whether built by the library or by hand: dtypes,
  lengths, index ranges, monotone pointers, delays consistent with the delay table, finite
  weights;
* :func:`check_queue` — a state's spike-history ring (and pending events, where the state has
  them) against the connectivity it is run with;
* one ``check_<model>(inputs, state, params, *weights)`` per model, which
  :func:`bioplastic.simulate` calls through the model module's ``check_consistency`` hook
  before the loop starts: one cheap pass over the pieces' shapes and index arrays (O(neurons +
  synapses), no pass over time). ``simulate(..., check=False)`` skips it for callers that
  validated already.

Every failure is a ``TypeError`` (wrong type or dtype) or ``ValueError`` (shape, range,
mismatch) naming the piece and what was expected.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit
from ..rules.stdp import PostIndex
from .connectivity import SparseConnectivity

__all__ = ["check_connectivity", "check_post_index", "check_queue", "check_lif", "check_pcnn",
           "check_wta"]


# ------------------------------------------------------------------------------- helpers


def _array(name: str, value, kind: str, ndim: int) -> np.ndarray:
    """``value`` must be an ndarray of dtype kind ``kind`` ('i' int64, 'f' float, 'b' bool)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    ok = {"i": value.dtype == np.int64, "f": value.dtype.kind == "f",
          "b": value.dtype == np.bool_}[kind]
    if not ok:
        want = {"i": "int64", "f": "a float dtype", "b": "bool"}[kind]
        raise TypeError(f"{name} must have dtype {want}, got {value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {value.shape}")
    return value


def _shape(name: str, value: np.ndarray, shape: tuple) -> None:
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {value.shape}")


def _index_range(name: str, idx: np.ndarray, high: int) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= high):
        raise ValueError(f"{name} must hold indices in [0, {high}), got values in "
                         f"[{idx.min()}, {idx.max()}]")


def _pointers(name: str, ptr: np.ndarray, total: int) -> None:
    """A CSR pointer array: starts at 0, never decreases, ends at ``total``."""
    if ptr.size == 0 or ptr[0] != 0 or ptr[-1] != total:
        raise ValueError(f"{name} must start at 0 and end at {total} (the number of synapses), "
                         f"got {ptr[:1].tolist()} ... {ptr[-1:].tolist()}")
    if np.any(np.diff(ptr) < 0):
        raise ValueError(f"{name} must be non-decreasing (CSR pointers)")


def _step(name: str, step) -> None:
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"{name}.step must be a non-negative integer, got {step!r}")


def _same_shape(prefix: str, container, fields, shape: tuple) -> None:
    for field in fields:
        value = getattr(container, field)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise TypeError(f"{prefix}.{field} must be a real numeric numpy array, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
        if value.shape != shape:
            raise ValueError(f"{prefix}.{field} must have shape {shape}, got {value.shape} "
                             "(were the pieces built for different sizes?)")


def _inputs(inputs: np.ndarray, per_step: tuple, what: str) -> None:
    if inputs.shape[1:] != per_step:
        raise ValueError(f"inputs must have shape (T, {', '.join(map(str, per_step))}) for "
                         f"{what}, got {inputs.shape}")


# --------------------------------------------------------------------- synapse structures


def check_connectivity(conn, *, n_post: int | None = None, name: str = "conn"
                       ) -> SparseConnectivity:
    """Validate a :class:`SparseConnectivity` (from the library or built by hand).

    Checks dtypes (int64 indices, float weights), equal lengths, ``indptr`` and every row of
    ``delay_ptr`` monotone and consistent with each other, post indices in ``[0, n_post)``,
    each synapse inside the delay block of its own delay (so delays lie in ``[0, max_delay]``),
    ``delay_ptr`` of shape ``(n_pre, max_delay + 2)``, finite weights. One pass over the
    synapses (:func:`_connectivity_kernel`). Returns ``conn``.
    """
    if not isinstance(conn, SparseConnectivity):
        raise TypeError(f"{name} must be a SparseConnectivity, got {type(conn).__name__}")
    indptr = _array(f"{name}.indptr", conn.indptr, "i", 1)
    post = _array(f"{name}.post", conn.post, "i", 1)
    if indptr.size == 0:
        raise ValueError(f"{name}.indptr must have n_pre + 1 >= 1 entries, got none")
    n_pre, n_syn = indptr.size - 1, post.size
    for field, kind in (("weight", "f"), ("delay_steps", "i")):
        _shape(f"{name}.{field}", _array(f"{name}.{field}", getattr(conn, field), kind, 1),
               (n_syn,))
    max_delay = conn.max_delay
    if isinstance(max_delay, bool) or not isinstance(max_delay, int | np.integer) or max_delay < 0:
        raise ValueError(f"{name}.max_delay must be a non-negative integer, got {max_delay!r}")
    ptr = _array(f"{name}.delay_ptr", conn.delay_ptr, "i", 2)
    if ptr.shape != (n_pre, max_delay + 2):
        raise ValueError(f"{name}.delay_ptr must have shape (n_pre, max_delay + 2) = "
                         f"{(n_pre, max_delay + 2)} for max_delay={max_delay}, got {ptr.shape}")
    order = getattr(conn, "delay_order", None)       # delivery order, where the type has one
    if order is not None:
        _shape(f"{name}.delay_order", _array(f"{name}.delay_order", order, "i", 1), (n_syn,))
    args = (indptr, post, conn.weight, conn.delay_steps, ptr,
            np.zeros(0, np.int64) if order is None else order, order is not None,
            -1 if n_post is None else int(n_post))
    if _connectivity_sound(*args):     # the fast pass; it decides only "sound" for sure
        return conn
    code, row = _connectivity_kernel(*args)
    if code:
        target = ">= 0" if n_post is None else f"of the {n_post} target neurons, in [0, {n_post})"
        raise ValueError(name + "." + _CONNECTIVITY_ERRORS[code].format(
            row=row, n_syn=n_syn, target=target, max_delay=max_delay))
    return conn


_CONNECTIVITY_ERRORS = {
    1: "indptr must start at 0 and end at {n_syn} (the number of synapses)",
    2: "indptr must be non-decreasing (CSR pointers); it decreases after row {row}",
    3: "delay_ptr must span each row's synapses: delay_ptr[i, 0] = indptr[i] and "
       "delay_ptr[i, -1] = indptr[i + 1] fail for row {row}",
    4: "delay_ptr rows must be non-decreasing; row {row} is not",
    5: "delay_order must permute each row's own synapse ids; row {row} does not",
    6: "delay_ptr does not match delay_steps (or max_delay={max_delay}): row {row} holds a "
       "synapse in the block of another delay",
    7: "post must hold indices {target}; row {row} does not",
    8: "weight must be finite; row {row} holds NaN or inf",
    9: "delay_order must list the synapses of each (source, delay) block in increasing CSR "
       "position; row {row} does not",
}


@njit
def _connectivity_sound(indptr, post, weight, delay_steps, ptr, order, has_order, n_post):
    """True if the structure is sound (what :func:`_connectivity_kernel` checks), decided by
    branch-free passes over the synapse arrays that the compiler vectorises (about 3x faster
    than the kernel on 2 M synapses); False means "not known": the caller then runs the
    kernel, which finds the error and its row. Decides only the usual case, ``delay_order``
    the identity (delays never changed); any other order is left to the kernel."""
    n_syn, n_pre, n_cols = post.size, indptr.size - 1, ptr.shape[1]
    if indptr[0] != 0 or indptr[n_pre] != n_syn:
        return False
    for i in range(n_pre):
        if indptr[i + 1] < indptr[i]:
            return False
        if ptr[i, 0] != indptr[i] or ptr[i, n_cols - 1] != indptr[i + 1]:
            return False
        for d in range(n_cols - 1):
            if ptr[i, d + 1] < ptr[i, d]:
                return False
    # every pointer now lies in [0, n_syn]; each pass below is an OR/AND/max reduction
    if has_order:
        moved = 0
        for k in range(n_syn):
            moved |= order[k] ^ k
        if moved != 0:
            return False
    sign, top = 0, -1
    for k in range(n_syn):
        sign |= post[k]
        top = max(top, post[k])
    if sign < 0 or (n_post >= 0 and top >= n_post):
        return False
    finite = True
    for k in range(n_syn):
        finite &= weight[k] - weight[k] == 0.0             # false for NaN and +-inf
    if not finite:
        return False
    off = 0
    if n_cols == 2:                 # max_delay 0: every delay must be 0, one flat pass
        for k in range(n_syn):
            off |= delay_steps[k]
        return off == 0
    for i in range(n_pre):
        for d in range(n_cols - 1):
            for k in range(ptr[i, d], ptr[i, d + 1]):
                off |= delay_steps[k] ^ d
    return off == 0


@njit
def _connectivity_kernel(indptr, post, weight, delay_steps, ptr, order, has_order, n_post):
    """One pass over the synapses in delivery order; ``(0, -1)`` if the structure is sound,
    else ``(code, row)`` (codes: ``_CONNECTIVITY_ERRORS``). Every index is range-checked
    before it is used: this kernel is what makes the others' unchecked reads safe."""
    n_syn, n_pre, n_cols = post.size, indptr.size - 1, ptr.shape[1]
    high = n_post if n_post >= 0 else np.iinfo(np.int64).max
    if indptr[0] != 0 or indptr[n_pre] != n_syn:
        return 1, -1
    seen = np.zeros(n_syn if has_order else 0, dtype=np.bool_)
    for i in range(n_pre):
        if indptr[i + 1] < indptr[i]:
            return 2, i
        if ptr[i, 0] != indptr[i] or ptr[i, n_cols - 1] != indptr[i + 1]:
            return 3, i
        for d in range(n_cols - 1):
            if ptr[i, d + 1] < ptr[i, d]:
                return 4, i
        # the row's pointers now lie in [indptr[i], indptr[i + 1]], a part of [0, n_syn]
        for d in range(n_cols - 1):
            for k in range(ptr[i, d], ptr[i, d + 1]):
                syn = k
                if has_order:
                    syn = order[k]
                    if syn < indptr[i] or syn >= indptr[i + 1] or seen[syn]:
                        return 5, i
                    seen[syn] = True
                    # Brian2's order within a block, and what lets delivery read a block
                    # whose two ends are in place as the plain range (block_is_csr)
                    if k > ptr[i, d] and syn <= order[k - 1]:
                        return 9, i
                if delay_steps[syn] != d:
                    return 6, i
                if post[syn] < 0 or post[syn] >= high:
                    return 7, i
                if not weight[syn] - weight[syn] == 0.0:      # false for NaN and ±inf
                    return 8, i
    return 0, -1


def check_post_index(by_post, conn: SparseConnectivity, n_post: int, *, name: str = "by_post"
                     ) -> PostIndex:
    """Validate a :class:`~bioplastic.rules.PostIndex` against ``conn`` and ``n_post``:
    ``indptr`` (n_post + 1,) monotone from 0 to n_syn, synapse ids in range, each listed under
    its own postsynaptic neuron."""
    if not isinstance(by_post, PostIndex):
        raise TypeError(f"{name} must be a PostIndex (bioplastic.rules.post_index), got "
                        f"{type(by_post).__name__}")
    indptr = _array(f"{name}.indptr", by_post.indptr, "i", 1)
    synapses = _array(f"{name}.synapses", by_post.synapses, "i", 1)
    n_syn = conn.post.size
    _shape(f"{name}.indptr", indptr, (n_post + 1,))
    _shape(f"{name}.synapses", synapses, (n_syn,))
    _pointers(f"{name}.indptr", indptr, n_syn)
    _index_range(f"{name}.synapses", synapses, n_syn)
    owner = np.repeat(np.arange(n_post), np.diff(indptr))
    if not np.array_equal(conn.post[synapses], owner):
        raise ValueError(f"{name} does not match conn: a synapse is listed under another "
                         "postsynaptic neuron (build it with post_index(conn.post, n))")
    return by_post


def check_queue(state, conn: SparseConnectivity, *, name: str = "state") -> None:
    """The state's spike-history ring ``(max_delay + 1, n_pre)`` must fit ``conn`` (a state
    made for a connectivity with other delays would deliver on the wrong steps), and pending
    events (states that have them) must name existing synapses."""
    history = _array(f"{name}.history", state.history, "b", 2)
    want = (conn.max_delay + 1, conn.n_pre)
    if history.shape != want:
        raise ValueError(f"{name}.history must have shape (max_delay + 1, n_pre) = {want} for "
                         f"this connectivity, got {history.shape} (was the state made with "
                         "another connectivity? build it with *_init(..., conn))")
    if "pending_syn" in state._fields:
        syn = _array(f"{name}.pending_syn", state.pending_syn, "i", 1)
        due = _array(f"{name}.pending_due", state.pending_due, "i", 1)
        nxt = _array(f"{name}.pending_next", state.pending_next, "i", 1)
        _shape(f"{name}.pending_due", due, syn.shape)
        _shape(f"{name}.pending_next", nxt, (1,))
        _index_range(f"{name}.pending_syn", syn, conn.post.size)
        if not 0 <= nxt[0] <= syn.size:
            raise ValueError(f"{name}.pending_next must lie in [0, {syn.size}], got {nxt[0]}")


# ------------------------------------------------------------------------- model hooks


def check_lif(inputs, state, params, conn) -> None:
    """``simulate``'s check for LIF: ``state``, ``params``, ``conn`` and ``inputs`` all for
    the same ``n`` neurons, and the state's ring for this connectivity."""
    from .lif import LIFKernelParams, LIFState

    if not isinstance(state, LIFState):
        raise TypeError(f"state must be an LIFState (lif_init), got {type(state).__name__}")
    if not isinstance(params, LIFKernelParams):
        raise TypeError(f"params must be LIFKernelParams (lif_prepare), got "
                        f"{type(params).__name__}")
    n = _array("state.v", state.v, "f", 1).size
    _same_shape("state", state, ("theta", "last_spike"), (n,))
    _array("state.last_spike", state.last_spike, "i", 1)
    _step("state", state.step)
    _same_shape("params", params, params._fields, (n,))
    _array("params.ref_steps", params.ref_steps, "i", 1)
    check_connectivity(conn, n_post=n)
    if conn.n_pre != n:
        raise ValueError(f"conn must connect the {n} neurons of the state to themselves, got "
                         f"n_pre={conn.n_pre}")
    check_queue(state, conn)
    _inputs(inputs, (n,), f"{n} neurons")


def check_pcnn(inputs, state, params, feeding_weights, linking_weights) -> None:
    """``simulate``'s check for PCNN: maps, parameters, kernels and inputs for one ``(C, H,
    W)``; kernels ``(C, G, kh, kw)`` with ``G`` 1 (intra) or ``C`` (inter) and odd sizes."""
    from .pcnn import PCNNKernelParams, PCNNState

    if not isinstance(state, PCNNState):
        raise TypeError(f"state must be a PCNNState (pcnn_init), got {type(state).__name__}")
    if not isinstance(params, PCNNKernelParams):
        raise TypeError(f"params must be PCNNKernelParams (pcnn_prepare), got "
                        f"{type(params).__name__}")
    shape = _array("state.f", state.f, "f", 3).shape
    _same_shape("state", state, ("l", "u", "e", "y"), shape)
    _array("state.y", state.y, "b", 3)
    n_maps = shape[0]
    _same_shape("params", params, [f for f in params._fields if f != "fast_linking"],
                (n_maps,))
    if params.fast_linking not in (0, 1, 2):
        raise ValueError(f"params.fast_linking must be 0, 1 or 2, got {params.fast_linking!r}")
    for name, w in (("feeding_weights", feeding_weights), ("linking_weights", linking_weights)):
        w = _array(name, w, "f", 4)
        if w.shape[0] != n_maps or w.shape[1] not in (1, n_maps) or w.shape[2] % 2 == 0 \
                or w.shape[3] % 2 == 0:
            raise ValueError(f"{name} must have shape (C, 1 or C, odd kh, odd kw) with C = "
                             f"{n_maps} maps of the state, got {w.shape} (from pcnn_prepare "
                             "for another shape?)")
    _inputs(inputs, shape, f"maps of shape {shape}")


_WTA_PER_NEURON = ("v", "ge", "gi", "theta", "last_spike", "v_inh", "ge_inh", "gi_inh",
                   "last_spike_inh")
_WTA_PER_SYNAPSE = ("w", "x_pre", "x_post1", "x_post2", "last_update")


def check_wta(inputs, state, params, conn, by_post) -> None:
    """``simulate``'s check for the WTA network: neuron arrays ``(n,)``, synapse arrays
    ``(n_syn,)`` of ``conn``, ``by_post`` for ``conn`` and ``n``, the ring for ``conn``'s
    inputs and delays, and inputs ``(T, n_in)`` of spikes."""
    from .wta import WTAKernelParams, WTAState

    if not isinstance(state, WTAState):
        raise TypeError(f"state must be a WTAState (wta_init), got {type(state).__name__}")
    if not isinstance(params, WTAKernelParams):
        raise TypeError(f"params must be WTAKernelParams (wta_prepare), got "
                        f"{type(params).__name__}")
    n = _array("state.v", state.v, "f", 1).size
    _same_shape("state", state, [f for f in _WTA_PER_NEURON if f in state._fields], (n,))
    check_connectivity(conn, n_post=n)
    n_syn = conn.post.size
    _same_shape("state", state, [f for f in _WTA_PER_SYNAPSE if f in state._fields], (n_syn,))
    for field in ("last_spike", "last_spike_inh", "last_update"):
        if field in state._fields:
            _array(f"state.{field}", getattr(state, field), "i", 1)
    if "memo_step" in state._fields:
        memo_step = _array("state.memo_step", state.memo_step, "i", 1)
        _shape("state.memo", _array("state.memo", state.memo, "f", 2), (memo_step.size, 3))
    _step("state", state.step)
    check_post_index(by_post, conn, n)
    check_queue(state, conn)
    if inputs.dtype != np.bool_:
        raise TypeError(f"inputs must be boolean spikes, got dtype {inputs.dtype}")
    _inputs(inputs, (conn.n_pre,), f"{conn.n_pre} inputs")
