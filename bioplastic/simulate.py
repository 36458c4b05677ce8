"""One time loop for every model.

``simulate(step, inputs, state, params, *weights, record=("v",))`` runs a model's jitted step
function over time-major ``inputs`` in a single jitted loop and returns a :class:`Trace`. The
loop's source exists once; it is compiled once per (step function, argument types, recorded
fields) and cached on disk under a name and signature that are the same in every process, so a
second process loads it instead of compiling (no function object is ever an argument of the
cached loop: numba cannot find a dispatcher-typed signature again in a new process).

The step contract (DESIGN.md): ``step(x_t, state, params, *weights) -> (spikes, new_state)``
where ``x_t = inputs[t]``, ``spikes`` is a boolean array and ``new_state`` a NamedTuple of the
same type as ``state``. Steps never modify their arguments, so ``simulate`` leaves ``state``
and ``inputs`` untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import types as pytypes
from typing import Any, NamedTuple

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from ._jit import njit, py_func

__all__ = ["Trace", "simulate"]


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


def _time_loop_template(inputs, state, params, weights, buffers, units):
    # ``step`` is a global bound per step function by _time_loop_for (never an argument: a
    # dispatcher in a signature can never be found again in the on-disk cache).
    # The first step runs outside the loop so the spike buffer can take its shape from it.
    spikes, state = step(inputs[0], state, params, *weights)  # noqa: F821
    spikes_out = np.zeros((inputs.shape[0],) + spikes.shape, dtype=np.bool_)
    spikes_out[0] = spikes
    _record(state, buffers, units, 0)
    for t in range(1, inputs.shape[0]):
        spikes, state = step(inputs[t], state, params, *weights)  # noqa: F821
        spikes_out[t] = spikes
        _record(state, buffers, units, t)
    return spikes_out, state


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
    # generated here enters a signature, so the caller stays cacheable.
    value = "state[{0}]" if isinstance(units, types.NoneType) else "state[{0}].ravel()[units]"
    lines = [f"    buffers[{i}][t] = {value.format(i)}\n" for i, buffer in enumerate(buffers)
             if not isinstance(buffer, types.NoneType)]
    source = "def record(state, buffers, units, t):\n" + ("".join(lines) or "    pass\n")
    namespace: dict = {}
    exec(compile(source, "<bioplastic record>", "exec"), namespace)
    return namespace["record"]


def _cache_name(step) -> str:
    """A name for ``step``'s time loop that is the same in every process. Steps from outside
    the package also carry a digest of their source file: the package's cache directory is
    keyed on the package source only, so an edited user model must not find the old loop."""
    function = py_func(step)
    name = f"{function.__module__}.{function.__qualname__}".replace(".", "_").replace("<", "_")
    path = inspect.getsourcefile(function) or ""
    if not os.path.abspath(path).startswith(os.path.dirname(os.path.abspath(__file__))):
        with contextlib.suppress(OSError):
            name += "_" + hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]
    return f"_time_loop_{name.replace('>', '_')}"


def _time_loop_for(step):
    """The one time loop, compiled for ``step``: the template's code with ``step`` bound as a
    global, so the cache index key (signature + bytecode) is stable across processes."""
    loop = _time_loop_for.memo.get(step)
    if loop is None:
        loop = _time_loop_for.memo[step] = _compile_loop(step)
    return loop


_time_loop_for.memo = {}  # step dispatcher -> its loop (`bioplastic warmup` lists them)


def _compile_loop(step):
    template = _time_loop_template
    loop = pytypes.FunctionType(template.__code__, {**template.__globals__, "step": step},
                                _cache_name(step))
    loop.__qualname__ = loop.__name__
    return njit(loop)


def _check_record(state, record) -> tuple[str, ...]:
    if isinstance(record, str):
        record = (record,)
    fields = tuple(record)
    unknown = [f for f in fields if f not in state._fields]
    if unknown:
        raise ValueError(f"record names unknown state fields {unknown}; state has {state._fields}")
    return fields


def _check_units(state, fields, record_units) -> np.ndarray | None:
    if record_units is None:
        return None
    units = np.asarray(record_units)
    sizes = {np.size(getattr(state, f)) for f in fields}
    if units.ndim != 1 or units.dtype.kind not in "iu":
        raise ValueError(f"record_units must be a 1-D integer array, got {units!r}")
    if units.size and (units.min() < 0 or units.max() >= min(sizes, default=0)):
        raise ValueError(f"record_units must index units in [0, {min(sizes, default=0)})")
    return units.astype(np.int64)


def _private_copy(state):
    """A copy of a flat NamedTuple state whose arrays the loop may overwrite."""
    return type(state)(*(v.copy() if isinstance(v, np.ndarray) else v for v in state))


def _check_inputs(inputs) -> np.ndarray:
    if not isinstance(inputs, np.ndarray):
        raise TypeError(f"inputs must be a numpy array, got {type(inputs).__name__}")
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError("inputs must be time-major with shape (T, ...), T >= 1, "
                         f"got shape {inputs.shape}")
    return inputs


def simulate(step, inputs: np.ndarray, state, params, *weights, record=(),
             record_units=None, step_in_place=None) -> Trace:
    """Run ``step`` over ``inputs`` (time-major, shape ``(T, ...)``) from ``state``.

    Parameters
    ----------
    step : numba dispatcher
        A model's jitted step function (e.g. :func:`bioplastic.neurons.lif_step`).
    inputs : ndarray, shape (T, ...)
        ``inputs[t]`` is passed to the step at time ``t``. Not modified.
    state : NamedTuple
        Initial state from the model's ``*_init``. Not modified.
    params : NamedTuple
        Model parameters, already coerced (use the model's front end or ``*_prepare``).
    *weights
        Extra arguments passed through to every step (connectivity, kernels, ...).
    record : sequence of str
        State fields to record after every step.
    record_units : int array, optional
        Record only these units (indices into each recorded field, flattened); the records then
        have shape ``(T, len(record_units))``. Recording everything costs memory bandwidth on
        large networks.
    step_in_place : numba dispatcher, optional
        A variant of ``step`` that updates the arrays of the state it receives instead of
        copying them (e.g. :func:`bioplastic.neurons.lif_advance`); the model defines ``step`` as
        "copy, then ``step_in_place``", so results are identical. It runs on a private copy of
        ``state``: the caller's arrays are still never modified.

    Returns
    -------
    Trace
    """
    inputs = _check_inputs(inputs)
    fields = _check_record(state, record)
    n_steps = inputs.shape[0]
    units = _check_units(state, fields, record_units)
    buffers = tuple(
        np.empty((n_steps,) + (np.shape(getattr(state, f)) if units is None else units.shape),
                 dtype=np.asarray(getattr(state, f)).dtype)
        for f in fields
    )
    if step_in_place is not None:
        step, state = step_in_place, _private_copy(state)
    # One buffer slot per state field, None where the field is not recorded.
    slots = tuple(buffers[fields.index(f)] if f in fields else None for f in state._fields)
    spikes, final = _call_loop(step, inputs, state, params, tuple(weights), slots, units)
    return Trace(spikes, dict(zip(fields, buffers, strict=True)), final)


def _call_loop(step, inputs, state, params, weights, slots, units):
    try:
        return _time_loop_for(step)(inputs, state, params, weights, slots, units)
    except numba.core.errors.TypingError as exc:
        raise TypeError(_typing_hint(step, inputs, state, params, weights)) from exc


def _typing_hint(step, inputs, state, params, weights) -> str:
    """A readable account of a numba typing failure: the arguments the step expects and what
    each one got."""
    names = list(inspect.signature(py_func(step)).parameters)
    got = [("inputs[t]", inputs[0]), ("state", state), ("params", params)]
    got += [(f"weights[{i}]", w) for i, w in enumerate(weights)]
    described = "; ".join(f"{label} is {_describe(value)}" for label, value in got)
    return (f"simulate could not run {py_func(step).__qualname__}{tuple(names)} with these "
            f"arguments: {described}. Pass the state from the model's *_init, the kernel "
            "parameters from its *_prepare (not the *Params tuple itself) and every weight "
            "argument the step takes (e.g. the connectivity).")


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array {value.dtype}{list(value.shape)}"
    return type(value).__name__
