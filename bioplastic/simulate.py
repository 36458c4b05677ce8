"""One time loop for every model.

The model contract: each model has a jitted **in-place** advance,

    ``<model>_advance(x_t, state, params, *weights) -> (spikes, state)``

which updates the arrays of ``state`` (a NamedTuple of arrays) in place and returns the spikes
of the step (a boolean array) and the state (the same arrays; scalar fields such as the step
counter in a new tuple). ``simulate(advance, inputs, state, params, *weights, record=("v",))``
runs it over time-major ``inputs`` in a single jitted loop on a **private copy** of ``state``,
so the caller's state, inputs, parameters and weights are never modified, and returns a
:class:`Trace`. The loop is compiled once per (advance, argument types, recorded fields); no
model has a copy of it.

:func:`simulate_blocks` is the same loop over presentations ``(n_blocks, T_block, ...)`` (a
stimulus and its rest), with an optional in-place hook run at the start of every block and
records taken after each block.

The pure one-step form is derived, never written per model: :func:`step_once` (jitted) runs
``advance`` on a copy of the state (:func:`bioplastic._state.copy_state`, generated from the
state's fields).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from ._jit import njit
from ._state import check_record, copy_state

__all__ = ["Trace", "simulate", "simulate_blocks", "step_once"]


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
def step_once(advance, x, state, params, *weights):
    """One pure step: ``advance`` on a copy of ``state``; no argument is modified.

    Returns ``(spikes, new_state)``. This is what every ``<model>_step`` is.
    """
    return advance(x, copy_state(state), params, *weights)


@njit
def _time_loop(advance, inputs, state, params, weights, recorder, buffers, units):
    # The first step runs outside the loop so the spike buffer can take its shape from it.
    spikes, state = advance(inputs[0], state, params, *weights)
    spikes_out = np.zeros((inputs.shape[0],) + spikes.shape, dtype=np.bool_)
    spikes_out[0] = spikes
    recorder(state, buffers, units, 0)
    for t in range(1, inputs.shape[0]):
        spikes, state = advance(inputs[t], state, params, *weights)
        spikes_out[t] = spikes
        recorder(state, buffers, units, t)
    return spikes_out, state


@njit
def _block_loop(advance, on_block, blocks, state, params, weights, recorder, buffers, units):
    # The first step of the first block runs alone so the spike buffer can take its shape.
    on_block(state, params, *weights)
    spikes, state = advance(blocks[0, 0], state, params, *weights)
    spikes_out = np.zeros((blocks.shape[0], blocks.shape[1]) + spikes.shape, dtype=np.bool_)
    spikes_out[0, 0] = spikes
    for b in range(blocks.shape[0]):
        if b > 0:
            on_block(state, params, *weights)
        for t in range(1 if b == 0 else 0, blocks.shape[1]):
            spikes, state = advance(blocks[b, t], state, params, *weights)
            spikes_out[b, t] = spikes
        recorder(state, buffers, units, b)
    return spikes_out, state


@njit
def no_block_hook(state, params, *weights):
    """The default ``on_block`` of :func:`simulate_blocks`: does nothing."""


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


def _check_inputs(inputs) -> np.ndarray:
    if not isinstance(inputs, np.ndarray):
        raise TypeError(f"inputs must be a numpy array, got {type(inputs).__name__}")
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError("inputs must be time-major with shape (T, ...), T >= 1, "
                         f"got shape {inputs.shape}")
    return inputs


def _buffers(state, fields, units, n_records: int) -> tuple:
    return tuple(
        np.empty((n_records,) + (np.shape(getattr(state, f)) if units is None else units.shape),
                 dtype=np.asarray(getattr(state, f)).dtype)
        for f in fields
    )


def _check_advance(advance) -> None:
    if not callable(advance):
        raise TypeError(f"advance must be a jitted model advance, got {type(advance).__name__}")


def simulate(advance, inputs: np.ndarray, state, params, *weights, record=(),
             record_units=None) -> Trace:
    """Run a model's in-place ``advance`` over ``inputs`` (time-major, ``(T, ...)``).

    Parameters
    ----------
    advance : numba dispatcher
        A model's jitted in-place advance (e.g. :func:`bioplastic.neurons.lif_advance`),
        ``advance(x_t, state, params, *weights) -> (spikes, state)``.
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

    Returns
    -------
    Trace
        ``spikes`` ``(T, *spike_shape)``, ``records[f]`` ``(T, *field_shape)``, final state.
    """
    _check_advance(advance)
    inputs = _check_inputs(inputs)
    fields = check_record(state, record)
    units = _check_units(state, fields, record_units)
    buffers = _buffers(state, fields, units, inputs.shape[0])
    spikes, final = _time_loop(advance, inputs, copy_state(state), params, tuple(weights),
                               _recorder(fields, units is not None), buffers,
                               np.zeros(0, np.int64) if units is None else units)
    return Trace(spikes, dict(zip(fields, buffers, strict=True)), final)


def simulate_blocks(advance, blocks: np.ndarray, state, params, *weights, on_block=None,
                    record=(), record_units=None) -> Trace:
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

    Returns
    -------
    Trace
        ``spikes`` ``(n_blocks, T_block, *spike_shape)``; ``records[f]``
        ``(n_blocks, *field_shape)``; final state.
    """
    _check_advance(advance)
    if not isinstance(blocks, np.ndarray):
        raise TypeError(f"blocks must be a numpy array, got {type(blocks).__name__}")
    if blocks.ndim < 2 or blocks.shape[0] == 0 or blocks.shape[1] == 0:
        raise ValueError("blocks must have shape (n_blocks >= 1, T_block >= 1, ...), got "
                         f"shape {blocks.shape}")
    fields = check_record(state, record)
    units = _check_units(state, fields, record_units)
    buffers = _buffers(state, fields, units, blocks.shape[0])
    hook = no_block_hook if on_block is None else on_block
    spikes, final = _block_loop(advance, hook, blocks, copy_state(state), params,
                                tuple(weights), _recorder(fields, units is not None), buffers,
                                np.zeros(0, np.int64) if units is None else units)
    return Trace(spikes, dict(zip(fields, buffers, strict=True)), final)
