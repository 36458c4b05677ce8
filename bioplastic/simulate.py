"""One time loop for every model.

``simulate(step, inputs, state, params, *weights, record=("v",))`` runs a model's jitted step
function over time-major ``inputs`` in a single jitted loop and returns a :class:`Trace`. The
loop is compiled once per (step function, argument types, recorded fields); no model has a copy
of it.

The step contract (DESIGN.md): ``step(x_t, state, params, *weights) -> (spikes, new_state)``
where ``x_t = inputs[t]``, ``spikes`` is a boolean array and ``new_state`` a NamedTuple of the
same type as ``state``. Steps never modify their arguments, so ``simulate`` leaves ``state``
and ``inputs`` untouched.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from ._jit import njit

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

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.records[key]
        return tuple.__getitem__(self, key)


@njit
def _time_loop(step, inputs, state, params, weights, recorder, buffers, units):
    # The first step runs outside the loop so the spike buffer can take its shape from it.
    spikes, state = step(inputs[0], state, params, *weights)
    spikes_out = np.zeros((inputs.shape[0],) + spikes.shape, dtype=np.bool_)
    spikes_out[0] = spikes
    recorder(state, buffers, units, 0)
    for t in range(1, inputs.shape[0]):
        spikes, state = step(inputs[t], state, params, *weights)
        spikes_out[t] = spikes
        recorder(state, buffers, units, t)
    return spikes_out, state


@njit
def _take(field, units):
    return field.ravel()[units]


@functools.cache
def _recorder(fields: tuple[str, ...], subset: bool):
    """A jitted ``recorder(state, buffers, units, t)`` copying the named fields (all units, or
    the flat ``units`` of each when ``subset``) into ``buffers[i][t]``.

    Numba cannot look fields up by a runtime string, so each field tuple gets its own small
    generated function (compiled once, then reused for every model with those field names).
    """
    value = "_take(state.{}, units)" if subset else "state.{}"
    lines = [f"    buffers[{i}][t] = {value.format(name)}\n" for i, name in enumerate(fields)]
    source = "def recorder(state, buffers, units, t):\n" + ("".join(lines) or "    pass\n")
    namespace: dict = {"_take": _take}
    exec(compile(source, f"<bioplastic recorder {fields}>", "exec"), namespace)
    return njit(cache=False)(namespace["recorder"])


def _check_record(state, record) -> tuple[str, ...]:
    if isinstance(record, str):
        record = (record,)
    if not isinstance(record, list | tuple) or not all(isinstance(f, str) for f in record):
        raise TypeError(f"record must be a field name or a sequence of field names, got "
                        f"{record!r}")
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
    recorder = _recorder(fields, units is not None)
    if step_in_place is not None:
        step, state = step_in_place, _private_copy(state)
    spikes, final = _time_loop(step, inputs, state, params, tuple(weights), recorder, buffers,
                               np.zeros(0, np.int64) if units is None else units)
    return Trace(spikes, dict(zip(fields, buffers, strict=True)), final)
