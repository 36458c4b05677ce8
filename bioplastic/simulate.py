"""One time loop for every model.

The model contract: each model has a jitted **in-place** advance,

    ``<model>_advance(x_t, state, params, *weights) -> (spikes, state)``

which updates the arrays of ``state`` (a NamedTuple of arrays) in place and returns the spikes
of the step (a boolean array) and the state (the same arrays; scalar fields such as the step
counter in a new tuple). ``simulate(advance, inputs, state, params, *weights, record=("v",))``
runs it over time-major ``inputs`` in a single jitted loop on a **private copy** of ``state``,
so the caller's state, inputs, parameters and weights are never modified, and returns a
:class:`Trace`.

:func:`simulate_blocks` is the same loop over presentations ``(n_blocks, T_block, ...)`` (a
stimulus and its rest), with an optional in-place hook run at the start of every block and
records taken after each block.

The pure one-step form is derived, never written per model: :func:`step_once` runs ``advance``
on a copy of the state (:func:`bioplastic._state.copy_state`, generated from the state's
fields).

Caching: the loops' source exists once. Each is compiled once per (advance, argument types,
recorded fields) and cached on disk under a name and a signature that are the same in every
process, so a second process loads it instead of compiling. The advance is bound into the loop
as a global, never passed as an argument: numba cannot find a signature holding a function
value again in a new process, so such a cache would never hit and would grow without bound.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import sys
import types as pytypes
from typing import Any, NamedTuple

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from ._jit import check_threads, njit, py_func, using_threads
from ._state import check_finite, check_record, copy_into, copy_state, is_state

__all__ = ["Trace", "simulate", "simulate_blocks", "step_once", "check_consistency"]


class Trace(NamedTuple):
    """Result of a run, time-major.

    Attributes
    ----------
    spikes : ndarray of bool, shape (T, *unit_shape)
        ``spikes[t]`` is what the step returned at step ``t``.
    records : dict[str, ndarray]
        Each recorded state field after each step, shape ``(T, *field_shape)``.
    state : NamedTuple
        Final state (feed it back to continue the run).
    """

    spikes: np.ndarray
    records: dict
    state: Any

    def spike_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Spikes as sorted ``(step, flat unit index)`` int64 arrays, the twin comparison form."""
        flat = self.spikes.reshape(self.spikes.shape[0], -1)
        steps, units = np.nonzero(flat)
        return steps.astype(np.int64), units.astype(np.int64)

    def __repr__(self) -> str:
        # The default repr prints every array: tens of thousands of characters for a small run.
        records = ", ".join(f"{name!r}: {value.dtype}{list(value.shape)}"
                            for name, value in self.records.items())
        return (f"Trace(spikes=bool{list(self.spikes.shape)} ({int(self.spikes.sum())} spikes), "
                f"records={{{records}}}, state={type(self.state).__name__}(...))")

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.records[key]
        return tuple.__getitem__(self, key)


def step_once(advance, x, state, params, *weights, check: bool = True):
    """One pure step: ``advance`` on a copy of ``state``; no argument is modified.

    Returns ``(spikes, new_state)``. Each model's jitted ``<model>_step`` is this, written as
    ``advance(x, copy_state(state), ...)`` so that it stays cacheable. ``check`` as for
    :func:`simulate`.
    """
    if check:
        check_consistency(advance, np.asarray(x)[None], state, params, *weights)
    return advance(x, copy_state(state), params, *weights)


# The loop templates below name ``advance`` and ``on_block`` as globals that _loop_for binds.

def _time_loop_template(inputs, state, params, weights, buffers, units):
    # The first step runs outside the loop so the spike buffer can take its shape from it.
    spikes, state = advance(inputs[0], state, params, *weights)  # noqa: F821
    spikes_out = np.zeros((inputs.shape[0],) + spikes.shape, dtype=np.bool_)
    copy_into(spikes_out[0], spikes)
    _record(state, buffers, units, 0)
    for t in range(1, inputs.shape[0]):
        spikes, state = advance(inputs[t], state, params, *weights)  # noqa: F821
        copy_into(spikes_out[t], spikes)
        _record(state, buffers, units, t)
    return spikes_out, state


def _block_loop_template(blocks, state, params, weights, buffers, units):
    # The first step of the first block runs alone so the spike buffer can take its shape.
    on_block(state, params, *weights)  # noqa: F821
    spikes, state = advance(blocks[0, 0], state, params, *weights)  # noqa: F821
    spikes_out = np.zeros((blocks.shape[0], blocks.shape[1]) + spikes.shape, dtype=np.bool_)
    copy_into(spikes_out[0, 0], spikes)
    for b in range(blocks.shape[0]):
        if b > 0:
            on_block(state, params, *weights)  # noqa: F821
        for t in range(1 if b == 0 else 0, blocks.shape[1]):
            spikes, state = advance(blocks[b, t], state, params, *weights)  # noqa: F821
            copy_into(spikes_out[b, t], spikes)
        _record(state, buffers, units, b)
    return spikes_out, state


@njit
def no_block_hook(state, params, *weights):
    """The default ``on_block`` of :func:`simulate_blocks`: does nothing."""


def _record(state, buffers, units, t):
    """Copy each state field whose buffer is not None into ``buffers[i][t]`` (all units, or the
    flat ``units`` when ``units`` is not None). Plain Python when the JIT is off; jitted code
    uses the implementation that :func:`_record_overload` generates from the argument types."""
    for value, buffer in zip(state, buffers, strict=True):
        if buffer is not None:
            buffer[t] = value if units is None else np.ravel(value)[units]


@overload(_record, jit_options={"fastmath": False})
def _record_overload(state, buffers, units, t):
    # Numba cannot look a field up by a runtime index, so the copy is written out per field at
    # typing time. The generated code lives inside the caller's compiled library: nothing
    # generated here enters a signature, so the caller stays cacheable. Array fields are copied
    # in loops (copy_into, _gather_into): a slice assignment takes Numba's broadcasting path
    # and ``ravel()[units]`` allocates a new array every step.
    every_unit = isinstance(units, types.NoneType)
    lines = [f"    {_record_line(i, field, every_unit)}\n"
             for i, (field, buffer) in enumerate(zip(state, buffers, strict=True))
             if not isinstance(buffer, types.NoneType)]
    source = "def record(state, buffers, units, t):\n" + ("".join(lines) or "    pass\n")
    namespace: dict = {"copy_into": copy_into, "_gather_into": _gather_into}
    exec(compile(source, "<bioplastic record>", "exec"), namespace)
    return namespace["record"]


def _record_line(i: int, field, every_unit: bool) -> str:
    """The generated statement that records field ``i`` (of Numba type ``field``) at ``t``."""
    if not isinstance(field, types.Array):   # a scalar field, such as the step counter
        # with units, every one of them is 0 (_check_units): the scalar's only unit
        return f"buffers[{i}][t] = state[{i}]" if every_unit else f"buffers[{i}][t, :] = state[{i}]"
    if every_unit:
        return f"copy_into(buffers[{i}][t], state[{i}])"
    return f"_gather_into(buffers[{i}][t], state[{i}], units)"


@njit
def _gather_into(target, values, units):
    """``target[k] = values.ravel()[units[k]]`` (``units`` checked by :func:`_check_units`)."""
    flat = values.ravel()
    for k in range(units.size):
        target[k] = flat[units[k]]


def _stable_name(function) -> str:
    """A name for ``function`` that is the same in every process. Functions from outside the
    package also carry a digest of their source file: the package's cache directory is keyed on
    the package source only, so an edited user model must not find the old loop."""
    function = py_func(function)
    name = f"{function.__module__}.{function.__qualname__}"
    path = inspect.getsourcefile(function) or ""
    if not os.path.abspath(path).startswith(os.path.dirname(os.path.abspath(__file__))):
        with contextlib.suppress(OSError):
            name += "." + hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]
    return "".join(c if c.isalnum() else "_" for c in name)


def _loop_for(template, **bound):
    """``template``'s code compiled with the functions in ``bound`` as its globals: one loop
    source for every model, and a cache index key (signature + bytecode) and file name that
    are stable across processes."""
    key = (template, *bound.items())
    loop = _loop_for.memo.get(key)
    if loop is None:
        name = "__".join([template.__name__.removesuffix("_template"),
                          *(_stable_name(f) for f in bound.values())])
        function = pytypes.FunctionType(template.__code__, {**template.__globals__, **bound},
                                        name)
        function.__qualname__ = name
        loop = _loop_for.memo[key] = njit(function)
    return loop


_loop_for.memo = {}  # (template, bound functions) -> compiled loop; `bioplastic warmup` lists it


def _time_loop_for(advance):
    """The time loop of :func:`simulate`, compiled for ``advance``."""
    return _loop_for(_time_loop_template, advance=advance)


def _check_units(state, fields, record_units) -> np.ndarray | None:
    if record_units is None:
        return None
    if not fields:
        raise ValueError("record_units selects units of the recorded fields, but record names "
                         "none")
    units = np.asarray(record_units)
    if units.size == 0 and units.ndim == 1:
        units = units.astype(np.int64)      # [] is float64 to NumPy: no units, not a type error
    sizes = {np.size(getattr(state, f)) for f in fields}
    if units.ndim != 1 or units.dtype.kind not in "iu":
        raise ValueError(f"record_units must be a 1-D integer array, got {units!r}")
    if units.size and (units.min() < 0 or units.max() >= min(sizes)):
        raise ValueError(f"record_units must index units in [0, {min(sizes)})")
    return units.astype(np.int64)


def _check_inputs(inputs) -> np.ndarray:
    if not isinstance(inputs, np.ndarray):
        raise TypeError(f"inputs must be a numpy array, got {type(inputs).__name__}")
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError("inputs must be time-major with shape (T, ...), T >= 1, "
                         f"got shape {inputs.shape}")
    return inputs


def _slots(state, fields, units, n_records: int) -> tuple[tuple, tuple]:
    """The record buffers, and the same buffers laid out one slot per state field (None where
    the field is not recorded), which is the form the loop's recorder takes."""
    buffers = tuple(
        np.empty((n_records,) + (np.shape(getattr(state, f)) if units is None else units.shape),
                 dtype=np.asarray(getattr(state, f)).dtype)
        for f in fields
    )
    slots = tuple(buffers[fields.index(f)] if f in fields else None for f in state._fields)
    return buffers, slots


def _check_advance(advance) -> None:
    if not callable(advance):
        raise TypeError(f"advance must be a jitted model advance, got {type(advance).__name__}")


def check_consistency(advance, inputs: np.ndarray, state, params, *weights) -> None:
    """Check that ``inputs``, ``state``, ``params`` and ``weights`` fit together before a kernel
    indexes them (Numba does no bounds checking).

    The check is the model's own: the ``check_consistency(inputs, state, params, *weights)``
    function of the module that defines ``advance`` (every model module of the library has one;
    a new model adds its own). Advances without one get only the generic checks. Raises
    ``TypeError``/``ValueError`` naming the piece that does not fit.
    """
    if not is_state(state):
        raise TypeError(f"state must be a model state NamedTuple (from the model's *_init), "
                        f"got {type(state).__name__}")
    module = sys.modules.get(getattr(py_func(advance), "__module__", ""), None)
    hook = getattr(module, "check_consistency", None)
    if hook is not None:
        _check_weight_count(hook, getattr(py_func(advance), "__name__", "advance"), weights)
        hook(inputs, state, params, *weights)


def _check_weight_count(hook, advance_name: str, weights: tuple) -> None:
    """As many weight arguments as the model's hook names after ``params``; otherwise
    Python's own ``TypeError`` would name the hook (``check_lif() missing 1 required
    positional argument``), which the user never called."""
    signature = inspect.signature(hook)
    try:
        signature.bind(None, None, None, *weights)
    except TypeError:
        named = [p.name for p in list(signature.parameters.values())[3:]
                 if p.kind is p.POSITIONAL_OR_KEYWORD]
        call = ", ".join(["inputs", "state", "params", *named])
        raise TypeError(f"{advance_name} takes {len(named)} weight argument(s) after params "
                        f"({', '.join(named)}), got {len(weights)}: simulate({advance_name}, "
                        f"{call})") from None


def simulate(advance, inputs: np.ndarray, state, params, *weights, record=(),
             record_units=None, check: bool = True, threads: int | None = None) -> Trace:
    """Run a model's in-place ``advance`` over ``inputs`` (time-major, ``(T, ...)``).

    Parameters
    ----------
    advance : numba dispatcher
        A model's jitted in-place advance (e.g. :func:`bioplastic.neurons.lif_advance`),
        ``advance(x_t, state, params, *weights) -> (spikes, state)``; ``spikes`` must have
        the same shape at every step (``ValueError`` otherwise).
    inputs : ndarray, shape (T, ...)
        ``inputs[t]`` is passed to the advance at time ``t``. Not modified.
    state : NamedTuple
        Initial state from the model's ``*_init``. Not modified: the loop runs on a private
        copy.
    params : NamedTuple
        Kernel parameters from the model's ``*_prepare``.
    *weights
        Extra arguments passed through to every step (connectivity, kernels, ...). The advance
        must not modify them.
    record : sequence of str
        State fields to record after every step.
    record_units : int array, optional
        Record only these units (indices into each recorded field, flattened); the records then
        have shape ``(T, len(record_units))``. Recording everything costs memory bandwidth on
        large networks.
    check : bool
        Check that inputs, state, params and weights fit together (:func:`check_consistency`)
        before the loop — one pass over the index arrays, no pass over time — and that the
        final state is finite after it (a NaN or inf that entered through the inputs or the
        state raises :class:`~bioplastic.rules.DivergenceError` instead of being returned).
        ``False`` skips both, for callers that validated these very objects already; a
        mismatch then reads or writes memory out of bounds.
    threads : int, optional
        Numba's thread count during the run (restored after it), for a multi-core advance
        such as :func:`bioplastic.neurons.parallel.lif_advance_threads`; a single-core advance
        ignores it. ``None`` (default) leaves the count alone. At most
        ``numba.config.NUMBA_NUM_THREADS``.

    Returns
    -------
    Trace
        ``spikes`` ``(T, *spike_shape)``, ``records[f]`` ``(T, *field_shape)``, final state.
    """
    _check_advance(advance)
    if threads is not None:
        check_threads(threads)
    inputs = _check_inputs(inputs)
    if check:
        check_consistency(advance, inputs, state, params, *weights)
    fields = check_record(state, record)
    units = _check_units(state, fields, record_units)
    buffers, slots = _slots(state, fields, units, inputs.shape[0])
    loop = _time_loop_for(advance)
    with using_threads(threads):
        spikes, final = _run(loop, advance, inputs[0], (inputs, copy_state(state), params,
                                                         tuple(weights), slots, units))
    if check:
        check_finite(final, f"the run of {py_func(advance).__qualname__}")
    return Trace(spikes, dict(zip(fields, buffers, strict=True)), final)


def simulate_blocks(advance, blocks: np.ndarray, state, params, *weights, on_block=None,
                    record=(), record_units=None, check: bool = True,
                    threads: int | None = None) -> Trace:
    """Run presentations: ``blocks`` ``(n_blocks, T_block, ...)``, one stimulus and its rest
    per block, through the same in-place ``advance`` as :func:`simulate`.

    Parameters
    ----------
    advance : numba dispatcher
        As for :func:`simulate`.
    blocks : ndarray, shape (n_blocks, T_block, ...)
        ``blocks[b, t]`` is the input of step ``t`` of presentation ``b``. Not modified.
    state, params, *weights
        As for :func:`simulate` (``state`` is not modified).
    on_block : numba dispatcher, optional
        A jitted ``on_block(state, params, *weights)`` that updates the state in place at the
        start of every block (e.g. :func:`bioplastic.neurons.wta.wta_normalise`); default none.
    record : sequence of str
        State fields to record after every **block**.
    record_units : int array, optional
        As for :func:`simulate`.
    check : bool
        As for :func:`simulate` (the check sees the first block as the inputs).
    threads : int, optional
        As for :func:`simulate`.

    Returns
    -------
    Trace
        ``spikes`` ``(n_blocks, T_block, *spike_shape)``; ``records[f]``
        ``(n_blocks, *field_shape)``; final state.
    """
    _check_advance(advance)
    if threads is not None:
        check_threads(threads)
    if not isinstance(blocks, np.ndarray):
        raise TypeError(f"blocks must be a numpy array, got {type(blocks).__name__}")
    if blocks.ndim < 2 or blocks.shape[0] == 0 or blocks.shape[1] == 0:
        raise ValueError("blocks must have shape (n_blocks >= 1, T_block >= 1, ...), got "
                         f"shape {blocks.shape}")
    if check:
        check_consistency(advance, blocks[0], state, params, *weights)
    fields = check_record(state, record)
    units = _check_units(state, fields, record_units)
    buffers, slots = _slots(state, fields, units, blocks.shape[0])
    hook = no_block_hook if on_block is None else on_block
    loop = _loop_for(_block_loop_template, advance=advance, on_block=hook)
    with using_threads(threads):
        spikes, final = _run(loop, advance, blocks[0, 0], (blocks, copy_state(state), params,
                                                            tuple(weights), slots, units))
    if check:
        check_finite(final, f"the run of {py_func(advance).__qualname__}")
    return Trace(spikes, dict(zip(fields, buffers, strict=True)), final)


def _run(loop, advance, x0, args):
    try:
        return loop(*args)
    except numba.core.errors.TypingError as exc:
        raise TypeError(_typing_hint(advance, x0, *args[1:4])) from exc


def _typing_hint(advance, x0, state, params, weights) -> str:
    """A readable account of a numba typing failure: the arguments the advance expects and what
    each one got."""
    names = list(inspect.signature(py_func(advance)).parameters)
    got = [("inputs[t]", x0), ("state", state), ("params", params)]
    got += [(f"weights[{i}]", w) for i, w in enumerate(weights)]
    described = "; ".join(f"{label} is {_describe(value)}" for label, value in got)
    return (f"simulate could not run {py_func(advance).__qualname__}{tuple(names)} with these "
            f"arguments: {described}. Pass the state from the model's *_init, the kernel "
            "parameters from its *_prepare (not the *Params tuple itself) and every weight "
            "argument the advance takes (e.g. the connectivity).")


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array {value.dtype}{list(value.shape)}"
    return type(value).__name__
