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

import inspect

import numba
import numpy as np

from .._jit import njit, py_func
from .._state import check_finite
from .._validate import MAX_INT
from ..rules.stdp import PostIndex
from .connectivity import SparseConnectivity, queue_capacity, queue_expected

__all__ = ["check_connectivity", "check_post_index", "check_queue", "check_lif", "check_pcnn",
           "check_wta", "check_stc", "checked_step"]


# ------------------------------------------------------------------------------- helpers


def _array(name: str, value, kind: str, ndim: int) -> np.ndarray:
    """``value`` must be an ndarray of dtype kind ``kind`` ('i' int64, 'f' float, 'b' bool)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    dtype = value.dtype          # attribute tests only: this runs ~15 times per check
    if dtype.kind != kind or (kind == "i" and dtype.itemsize != 8):
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
    # below 2**62: the kernels add to it and subtract spike steps from it in int64
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or not 0 <= step < 2**62:
        raise ValueError(f"{name}.step must be an integer in [0, 2**62), got {step!r}")


def _same_shape(prefix: str, container, fields, shape: tuple, kind: str = "real", *,
                sized_by: str) -> None:
    """Every field is a numpy array of ``shape``, the shape of ``sized_by`` (named in the
    error: the mismatch may be that piece's); ``kind`` "real" (any real numeric dtype: a
    field the kernel only reads), or "f"/"i"/"b" as for :func:`_array`."""
    for field in fields:
        value = getattr(container, field)
        if kind != "real":
            _array(f"{prefix}.{field}", value, kind, len(shape))
        elif not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise TypeError(f"{prefix}.{field} must be a real numeric numpy array, got "
                            f"{getattr(value, 'dtype', type(value).__name__)}")
        if value.shape != shape:
            raise ValueError(f"{prefix}.{field} must have shape {shape} (from {sized_by}), got "
                             f"{value.shape} (were the pieces built for different sizes?)")


def _inputs(inputs, per_step: tuple, what: str, name: str = "inputs", kind: str = "real"
            ) -> None:
    """``inputs`` ``(T, *per_step)`` for a run, or, with ``name="x"``, one step's ``x``
    ``per_step`` (the public ``*_step`` functions); ``kind`` "real" or "b" (bool spikes)."""
    if not isinstance(inputs, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(inputs).__name__}")
    if kind == "b" and inputs.dtype != np.bool_:
        raise TypeError(f"{name} must be boolean spikes, got dtype {inputs.dtype}")
    if kind == "real" and inputs.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {inputs.dtype}")
    if name == "x":
        if inputs.shape != per_step:
            raise ValueError(f"x must have shape {per_step} for {what}, got {inputs.shape}")
    elif inputs.ndim < 1 or inputs.shape[1:] != per_step:
        raise ValueError(f"{name} must have shape (T, {', '.join(map(str, per_step))}) for "
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
    made for a connectivity with other delays would deliver on the wrong steps), pending
    events (states that have them) must name existing synapses, and the delivery queue
    (states that have one) must be the one the ring implies: it is rebuilt from ``history``,
    ``step`` and ``conn`` (:func:`~bioplastic.neurons.connectivity.queue_expected`, one pass
    over the ring) and compared, so its block ranges are safe to index with."""
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
    if "queue" in state._fields:
        queue = _array(f"{name}.queue", state.queue, "i", 2)
        _shape(f"{name}.queue", queue, (want[0], 1 + 2 * queue_capacity(conn)))
        slot = _queue_mismatch(queue, history, state.step, conn)
        if slot >= 0:
            raise ValueError(f"{name}.queue does not match {name}.history and conn: slot {slot} "
                             "does not list the blocks its step is due (the delivery queue is "
                             "kept by the kernels; build the state with *_init(..., conn) or "
                             "change_delays, and do not edit it)")


@njit
def _queue_mismatch(queue, history, step, conn):
    """The first slot of ``queue`` that differs from the queue ``history`` and ``step`` imply
    (its count, or one of its blocks), or -1."""
    cap = (queue.shape[1] - 1) // 2
    want = queue_expected(history, step, conn, cap)
    for slot in range(queue.shape[0]):
        count = want[slot, 0]
        if queue[slot, 0] != count:
            return slot
        for c in range(1, 1 + 2 * max(count, 0)):
            if queue[slot, c] != want[slot, c]:
                return slot
    return -1


# ------------------------------------------------------------------------- model hooks
#
# Each hook is ``check_<model>(inputs, state, params, *weights, name="inputs")``: ``inputs``
# time-major ``(T, ...)`` for simulate, or one step's ``x`` with ``name="x"`` for the public
# ``<model>_step`` (:func:`checked_step`). Fields an advance writes in place must have the
# dtype it writes (an int ``v`` would silently truncate every update).


def _model_pieces(model: str, state, params, state_type, params_type, lead: str,
                  ndim: int) -> tuple:
    """The preamble every hook shares: ``state`` from ``<model>_init`` and ``params`` from
    ``<model>_prepare``, a valid step counter, and the shape of the float field ``lead`` that
    sizes the rest."""
    if not isinstance(state, state_type):
        raise TypeError(f"state must be a {state_type.__name__} ({model}_init), got "
                        f"{type(state).__name__}")
    if not isinstance(params, params_type):
        raise TypeError(f"params must be {params_type.__name__} ({model}_prepare), got "
                        f"{type(params).__name__}")
    if "step" in state._fields:
        _step("state", state.step)
    _scalar_fields("params", params)
    return _array(f"state.{lead}", getattr(state, lead), "f", ndim).shape


def _scalar_fields(prefix: str, params) -> None:
    """The scalar fields of a kernel-parameter tuple, nested tuples too: real numbers that fit
    the kernel's int64/float64 arguments, finite, time constants (``tau*``) positive (the
    kernels divide by them). Arrays are checked by each hook; a value of another numeric type
    than the model's own only compiles another specialisation."""
    for field, value in zip(params._fields, params, strict=True):
        name = f"{prefix}.{field}"
        if isinstance(value, np.ndarray):
            continue
        real = isinstance(value, int | float | np.integer | np.floating) and \
            not isinstance(value, bool | np.bool_)
        if field.startswith("tau") and not (real and value > 0):
            raise ValueError(f"{name} must be positive (a time constant), got {value!r}")
        if isinstance(value, bool | np.bool_):
            continue
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            _scalar_fields(name, value)
            continue
        if not isinstance(value, int | float | np.integer | np.floating):
            raise TypeError(f"{name} must be a real number (as *_prepare makes it), got "
                            f"{type(value).__name__}")
        if not (-MAX_INT < value < MAX_INT):
            raise ValueError(f"{name} must be finite and within ±2**62, got {value!r}")


def checked_step(impl, hook, what: str, x, state, params, *weights, check: bool = True):
    """A public pure step: ``hook(x, state, params, *weights, name="x")``, then the jitted
    ``impl`` (the model's advance on a copy of ``state``), then the new state checked finite
    (:class:`~bioplastic.rules.DivergenceError` naming ``what``). ``check=False`` runs ``impl``
    alone."""
    if check:
        hook(x, state, params, *weights, name="x")
    try:
        spikes, new = impl(x, state, params, *weights)
    except numba.core.errors.TypingError as exc:
        # A field of another type than the model's own (a float where a nested parameter
        # tuple belongs): name every argument and what it is, as simulate does.
        raise TypeError(_typing_hint(impl, what, (x, state, params, *weights))) from exc
    if check:
        check_finite(new, what)
    return spikes, new


def _typing_hint(impl, what: str, args: tuple) -> str:
    names = list(inspect.signature(py_func(impl)).parameters)
    described = "; ".join(f"{name} is {_describe(value)}"
                          for name, value in zip(names, args, strict=False))
    return (f"{what} could not be compiled for these arguments: {described}. Pass the state "
            "from the model's *_init and the kernel parameters from its *_prepare (not the "
            "*Params tuple, and no field replaced by a value of another type).")


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array {value.dtype}{list(value.shape)}"
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return f"{type(value).__name__}(" + ", ".join(
            f"{f}={_describe(v)}" for f, v in zip(value._fields, value, strict=True)) + ")"
    return type(value).__name__


def check_lif(inputs, state, params, conn, *, name: str = "inputs") -> None:
    """``simulate``'s check for LIF: ``state``, ``params``, ``conn`` and ``inputs`` all for
    the same ``n`` neurons, and the state's ring for this connectivity."""
    from .lif import LIFKernelParams, LIFState

    (n,) = _model_pieces("lif", state, params, LIFState, LIFKernelParams, "v", 1)
    _same_shape("state", state, ("theta",), (n,), "f", sized_by="state.v")
    _same_shape("state", state, ("last_spike",), (n,), "i", sized_by="state.v")
    _same_shape("params", params, params._fields, (n,), sized_by="state.v")
    _array("params.ref_steps", params.ref_steps, "i", 1)
    check_connectivity(conn, n_post=n)
    if conn.n_pre != n:
        raise ValueError(f"conn must connect the {n} neurons of the state to themselves, got "
                         f"n_pre={conn.n_pre}")
    check_queue(state, conn)
    _inputs(inputs, (n,), f"{n} neurons", name)


_PCNN_WEIGHTS = ("feeding_weights", "linking_weights")


def check_pcnn(inputs, state, params, *weights, name: str = "inputs") -> None:
    """``simulate``'s check for PCNN: maps, parameters, kernels and inputs for one ``(C, H,
    W)``; kernels ``(C, G, kh, kw)`` with ``G`` 1 (intra) or ``C`` (inter) and odd sizes."""
    from .pcnn import PCNNKernelParams, PCNNState

    if weights:
        raise TypeError(f"pcnn_advance takes (x, state, params) and no weight arguments, got "
                        f"{len(weights)} more: the coupling kernels are the feeding_weights "
                        "and linking_weights fields of the PCNNKernelParams that pcnn_prepare "
                        "returns")
    shape = _model_pieces("pcnn", state, params, PCNNState, PCNNKernelParams, "f", 3)
    _same_shape("state", state, ("l", "u", "e"), shape, "f", sized_by="state.f")
    _same_shape("state", state, ("y",), shape, "b", sized_by="state.f")
    n_maps = shape[0]
    _same_shape("params", params, [f for f in params._fields
                                   if f not in ("fast_linking", *_PCNN_WEIGHTS)], (n_maps,),
                sized_by="state.f's first axis")
    if isinstance(params.fast_linking, bool) or params.fast_linking not in (0, 1, 2):
        raise ValueError(f"params.fast_linking must be 0, 1 or 2, got {params.fast_linking!r}")
    for field in _PCNN_WEIGHTS:
        w = _array(f"params.{field}", getattr(params, field), "f", 4)
        if w.shape[0] != n_maps or w.shape[1] not in (1, n_maps) or w.shape[2] % 2 == 0 \
                or w.shape[3] % 2 == 0:
            raise ValueError(f"params.{field} must have shape (C, 1 or C, odd kh, odd kw) with "
                             f"C = {n_maps} maps of the state, got {w.shape} (from "
                             "pcnn_prepare for another shape?)")
    _inputs(inputs, shape, f"maps of shape {shape}", name)


_WTA_PER_NEURON = ("v", "ge", "gi", "theta", "last_spike", "v_inh", "ge_inh", "gi_inh",
                   "last_spike_inh")
_WTA_PER_SYNAPSE = ("w", "x_pre", "x_post1", "x_post2", "last_update")


def _wta_fields(state, fields, shape, sized_by: str) -> None:
    """The WTA state's fields among ``fields``: step counts int64, the rest float."""
    present = [f for f in fields if f in state._fields]
    _same_shape("state", state, [f for f in present if f.startswith("last_")], shape, "i",
                sized_by=sized_by)
    _same_shape("state", state, [f for f in present if not f.startswith("last_")], shape, "f",
                sized_by=sized_by)


def check_wta(inputs, state, params, conn, by_post, *, name: str = "inputs") -> None:
    """``simulate``'s check for the WTA network: neuron arrays ``(n,)``, synapse arrays
    ``(n_syn,)`` of ``conn``, ``by_post`` for ``conn`` and ``n``, the ring for ``conn``'s
    inputs and delays, and inputs ``(T, n_in)`` of spikes."""
    from .wta import WTAKernelParams, WTAState

    (n,) = _model_pieces("wta", state, params, WTAState, WTAKernelParams, "v", 1)
    _wta_fields(state, _WTA_PER_NEURON, (n,), "state.v")
    check_connectivity(conn, n_post=n)
    _wta_fields(state, _WTA_PER_SYNAPSE, (conn.post.size,), "conn.post")
    if "memo_step" in state._fields:
        memo_step = _array("state.memo_step", state.memo_step, "i", 1)
        _shape("state.memo", _array("state.memo", state.memo, "f", 2), (memo_step.size, 3))
    check_post_index(by_post, conn, n)
    check_queue(state, conn)
    _inputs(inputs, (conn.n_pre,), f"{conn.n_pre} inputs", name, kind="b")


def _stc_lists(mods, n: int) -> None:
    """The modulators' pre-major lists of ``[A_h; A_v]``: ``indptr`` ``(n + 1,)`` monotone,
    ``post`` unsigned (uint16/uint32) in ``[0, 2n)`` (the flat gate arguments), finite
    weights, one per entry."""
    from .stc import POST_DTYPES

    indptr = _array("mods.indptr", mods.indptr, "i", 1)
    post = mods.post
    if not isinstance(post, np.ndarray) or post.dtype not in POST_DTYPES or post.ndim != 1:
        raise TypeError(f"mods.post must be a 1-dimensional uint16 or uint32 array "
                        f"(stc_modulators chooses), got {getattr(post, 'dtype', type(post))}")
    w = _array("mods.w", mods.w, "f", 1)
    _shape("mods.w", w, post.shape)
    if not np.all(np.isfinite(w)):
        raise ValueError("mods.w must be finite")
    _shape("mods.indptr", indptr, (n + 1,))
    _pointers("mods.indptr", indptr, post.size)
    _index_range("mods.post", post, 2 * n)


def check_stc(inputs, state, params, mods, *, name: str = "inputs") -> None:
    """``simulate``'s check for the STC layer: state and parameter arrays ``(n,)``, the
    modulators' pre-major lists over the same ``n`` neurons (:func:`_stc_lists`),
    and inputs ``(T, n)``."""
    from .stc import STCKernelParams, STCModulators, STCState

    (n,) = _model_pieces("stc", state, params, STCState, STCKernelParams, "h", 1)
    _same_shape("state", state, state._fields, (n,), "f", sized_by="state.h")
    variant = params.variant
    if isinstance(variant, bool) or not isinstance(variant, int | np.integer) \
            or variant not in (0, 1, 2):
        raise ValueError(f"params.variant must be 0, 1 or 2 (lif, plif, lmh), got {variant!r}")
    _same_shape("params", params, [f for f in params._fields if f != "variant"], (n,),
                sized_by="state.h")
    if not isinstance(mods, STCModulators):
        raise TypeError(f"mods must be STCModulators (stc_modulators), got "
                        f"{type(mods).__name__}")
    _stc_lists(mods, n)
    _inputs(inputs, (n,), f"{n} neurons", name)
