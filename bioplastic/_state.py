"""State plumbing derived from a state NamedTuple's fields, never listed by hand.

A model state is a ``typing.NamedTuple`` of NumPy arrays (scalars only where unavoidable, such
as the step counter; nested state NamedTuples are allowed). From its fields this module
derives

* :func:`copy_state` — a deep copy (arrays copied, scalars kept), callable from Python and from
  jitted code (there through a numba ``@overload`` whose implementation is generated once per
  state *type*, at typing time; nothing generated is ever passed as a function argument, so
  the caller's on-disk cache stays valid);
* :func:`non_finite_fields` / :func:`check_finite` — which floating-point fields hold NaN or
  infinity;
* :func:`check_record` — validation of the field names a run records;
* :func:`copy_into` — one array's values into another of the same shape, in a plain loop in
  jitted code (the per-step copies of the time loops).
"""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.extending import overload

from ._jit import njit

__all__ = ["copy_state", "copy_into", "with_step", "non_finite_fields", "check_finite",
           "check_record", "is_state"]


def is_state(value) -> bool:
    """True for a NamedTuple instance (the form of every state and parameter tuple)."""
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _copy_value(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if is_state(value):
        return copy_state(value)
    return value


def copy_state(state):
    """A deep copy of ``state``: every array copied, nested NamedTuples copied, scalars kept.

    Works in Python and inside jitted functions (``copy_state(state)`` in a kernel compiles to
    one ``.copy()`` per array field).
    """
    return type(state)(*(_copy_value(v) for v in state))


@overload(_copy_value)
def _copy_value_jit(value):
    if isinstance(value, types.Array):
        return lambda value: value.copy()
    if isinstance(value, types.BaseNamedTuple):
        return lambda value: copy_state(value)
    return lambda value: value


@overload(copy_state)
def _copy_state_jit(state):
    if not isinstance(state, types.BaseNamedTuple):
        return None
    # Numba cannot build a heterogeneous tuple in a loop, so the constructor call is written
    # out for this state type: ``cls(_copy_value(state[0]), ..., _copy_value(state[k-1]))``.
    # The generated source is compiled into the caller (no function value crosses a call).
    args = ", ".join(f"_copy_value(state[{i}])" for i in range(len(state)))
    namespace = {"cls": state.instance_class, "_copy_value": _copy_value}
    exec(compile(f"def impl(state):\n    return cls({args})\n",
                 f"<bioplastic copy_state {state.instance_class.__name__}>", "exec"), namespace)
    return namespace["impl"]


def copy_into(target, values):
    """``target[...] = values`` for two arrays of the same shape (``ValueError`` otherwise).

    In jitted code a C-contiguous ``target`` is filled element by element in flat order.
    Numba's slice assignment takes its general broadcasting path instead, which costs 20x more
    for a bool row (4.0 against 0.19 ms for 1,000 rows of 10,000 flags, measured on this
    project's CPUs), and the time loops copy the spikes of every step.
    """
    if np.shape(target) != np.shape(values):
        raise ValueError(f"copy_into: target has shape {np.shape(target)}, values "
                         f"{np.shape(values)}")
    target[...] = values


@njit
def _check_same_shape(target, values):
    # no broadcasting: a model whose spikes change shape must fail, not be copied into every row
    if target.shape != values.shape:
        raise ValueError("copy_into: target and values differ in shape")


@overload(copy_into, jit_options={"fastmath": False})
def _copy_into_jit(target, values):
    if not (isinstance(target, types.Array) and isinstance(values, types.Array)):
        return None
    if target.layout != "C" or target.ndim != values.ndim:
        # ravel() of a non-C target type would be a copy: the values would be lost
        def general(target, values):
            _check_same_shape(target, values)
            target[...] = values
        return general

    def flat(target, values):
        _check_same_shape(target, values)
        destination, source = target.ravel(), values.ravel()
        for i in range(source.size):
            destination[i] = source[i]
    return flat


def with_step(state, step):
    """``state`` with its ``step`` field set to ``step`` (the other fields are the same objects).

    In-place advances return ``with_step(state, state.step + 1)``: the arrays were updated in
    place, only the scalar counter needs a new tuple. Works in Python and in jitted code.
    """
    return state._replace(step=step)


@overload(with_step)
def _with_step_jit(state, step):
    if not isinstance(state, types.BaseNamedTuple) or "step" not in state.fields:
        return None
    args = ", ".join("step" if name == "step" else f"state[{i}]"
                     for i, name in enumerate(state.fields))
    namespace = {"cls": state.instance_class}
    exec(compile(f"def impl(state, step):\n    return cls({args})\n",
                 f"<bioplastic with_step {state.instance_class.__name__}>", "exec"), namespace)
    return namespace["impl"]


def non_finite_fields(state, prefix: str = "") -> list[str]:
    """Names of the floating-point fields of ``state`` (recursively) holding NaN or inf."""
    bad = []
    for name, value in zip(state._fields, state, strict=True):
        if is_state(value):
            bad.extend(non_finite_fields(value, f"{prefix}{name}."))
        elif np.asarray(value).dtype.kind in "fc" and not np.all(np.isfinite(value)):
            bad.append(prefix + name)
    return bad


def check_finite(state, what: str = "the run"):
    """Return ``state``; raise :class:`bioplastic.rules.DivergenceError` naming every
    non-finite field if there is one."""
    bad = non_finite_fields(state)
    if bad:
        from .rules.apply import DivergenceError

        raise DivergenceError(f"{what} diverged: non-finite values in "
                              + ", ".join(f"state.{b}" for b in bad))
    return state


def check_record(state, record) -> tuple[str, ...]:
    """The field names to record, as a tuple; ``ValueError`` for names ``state`` lacks."""
    if isinstance(record, str):
        record = (record,)
    if not isinstance(record, list | tuple):
        raise TypeError(f"record must be a field name or a sequence of field names, got "
                        f"{record!r}")
    fields = tuple(record)
    unknown = [f for f in fields if not isinstance(f, str) or f not in state._fields]
    if unknown:
        raise ValueError(f"record names unknown state fields {unknown}; state has {state._fields}")
    return fields
