"""Argument checks shared by every public function.

Each helper raises ``ValueError``/``TypeError`` whose message names the argument and states
what was expected. They return a checked (and, where documented, converted) value and never
modify what they are given.

**Brian2 quantities.** Every helper first passes its value through :func:`unitless`: a Brian2
quantity given for a name with a unit suffix (``tau_m_ms``, ``v_th_mv``, ``rates_hz``,
``tau_s``) becomes a plain number in that unit (``0.1*ms`` → ``0.1``), a quantity of another
dimension is a ``TypeError`` naming the argument, and a quantity with units for a name
without one is a ``TypeError`` too. Quantities are recognised by duck typing (their class
lives in a ``brian2`` module and has a ``dim``), so the core never imports Brian2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "unitless",
    "unitless_params",
    "as_float_array",
    "refuse_grad_tensor",
    "per_unit",
    "check_finite",
    "check_shape",
    "positive",
    "non_negative",
    "in_range",
    "whole_steps",
    "as_generator",
    "count",
    "finite_float",
    "MAX_STEPS",
]


#: Unit suffixes of argument and field names: suffix -> (quantity, Brian2 dimension exponents
#: (m, kg, s, A, K, mol, cd), factor from the named unit to SI, what to write in Brian2).
_UNIT_SUFFIXES = {
    "_ms": ("a time", (0, 0, 1, 0, 0, 0, 0), 1e-3, "ms"),
    "_s": ("a time", (0, 0, 1, 0, 0, 0, 0), 1.0, "second"),
    "_mv": ("a voltage", (2, 1, -3, -1, 0, 0, 0), 1e-3, "mV"),
    "_hz": ("a frequency", (0, 0, -1, 0, 0, 0, 0), 1.0, "Hz"),
}
_DIMENSION_NAMES = {spec[1]: spec[0] for spec in _UNIT_SUFFIXES.values()}
_DIMENSION_NAMES[(0,) * 7] = "dimensionless"


def _is_quantity(value) -> bool:
    return type(value).__module__.startswith("brian2") and hasattr(value, "dim")


def _exponents(quantity) -> tuple:
    dims = getattr(quantity.dim, "_dims", None)
    return tuple(int(d) if float(d).is_integer() else float(d) for d in dims) if dims is not \
        None else ()


def _unit_of(name: str):
    lower = name.lower()
    return next((spec for suffix, spec in _UNIT_SUFFIXES.items() if lower.endswith(suffix)),
                None)


def _decimal(si: np.ndarray, factor: float) -> np.ndarray:
    """SI values in the named unit, rounded to 15 significant digits: Brian2 stores ``0.1*ms``
    as ``1e-4`` s and ``1e-4 / 1e-3`` is ``0.09999999999999999``; the written value is 0.1."""
    values = np.asarray(si, dtype=np.float64) / factor
    rounded = np.array([float(f"{v:.15g}") for v in values.ravel()]).reshape(values.shape)
    return rounded


def unitless(name: str, value, *, unit: str | None = None):
    """``value`` as a plain number in the unit that ``name`` ends with (``_ms``, ``_s``,
    ``_mv``, ``_hz``; or ``unit``, one of those suffixes, for an argument whose name has
    none, such as a drive in mV), if it is a Brian2 quantity; anything else is returned
    unchanged.

    Raises ``TypeError`` naming ``name`` for a quantity of the wrong dimension, and for a
    quantity with units given for a name without a unit suffix.
    """
    if isinstance(value, list | tuple) and any(_is_quantity(v) for v in value):
        return np.array([unitless(name, v, unit=unit) for v in value], dtype=np.float64)
    if not _is_quantity(value):
        return value
    dims, spec = _exponents(value), _unit_of(name if unit is None else unit)
    got = _DIMENSION_NAMES.get(dims, f"dimension {value.dim}")
    if spec is None:
        if dims == (0,) * 7:
            return _plain(np.asarray(value, dtype=np.float64))
        raise TypeError(f"{name} is dimensionless (its name has no unit suffix), got "
                        f"{_short(value)} ({got}); pass a plain number")
    kind, expected, factor, brian_unit = spec
    if dims != expected:
        raise TypeError(f"{name} must be {kind} (a number in {brian_unit} or a Brian2 quantity "
                        f"such as 1*{brian_unit}), got {_short(value)} ({got})")
    return _plain(_decimal(np.asarray(value), factor))


def _plain(array: np.ndarray):
    return float(array) if array.ndim == 0 else array


def unitless_params(params):
    """A ``NamedTuple`` of parameters with every Brian2 quantity converted by :func:`unitless`
    (field names give the units); ``params`` itself when it holds none."""
    fields = getattr(params, "_fields", None)
    if fields is None:
        raise TypeError(f"params must be a NamedTuple of parameters, got {type(params).__name__}")
    changed = {f: unitless(f, v) for f, v in zip(fields, params, strict=True)
               if _is_quantity(v) or (isinstance(v, list | tuple)
                                      and any(_is_quantity(x) for x in v))}
    return params._replace(**changed) if changed else params


def _short(value) -> str:
    """A value for an error message: never a whole array (a scalar broadcast to ``n`` units
    would otherwise print ``n`` copies)."""
    if _is_quantity(value):
        return _short_quantity(value)
    array = np.asarray(value) if _is_array_like(value) else None
    if array is None or array.ndim == 0:
        return repr(value)
    if array.size and np.all(array == array.flat[0]):
        return f"{array.flat[0]!r} (every element of an array of shape {array.shape})"
    return f"an array of shape {array.shape}"


def _short_quantity(value) -> str:
    text = repr(value)
    return text if np.ndim(value) == 0 else f"a quantity array of shape {np.shape(value)}"


def _is_array_like(value) -> bool:
    return isinstance(value, np.ndarray | np.generic | list | tuple | int | float)


def _offenders(array: np.ndarray, ok: np.ndarray) -> str:
    """Where and what the failing values of ``array`` are, in a few words."""
    if array.ndim == 0:
        return repr(float(array))
    bad = np.argwhere(~np.broadcast_to(ok, array.shape))
    if np.all(array == array.flat[0]):
        return f"{float(array.flat[0])!r} for every one of the {array.size} elements"
    first = tuple(int(i) for i in bad[0])
    where = first[0] if len(first) == 1 else first
    return (f"{len(bad)} of {array.size} elements out of range, first at index {where}: "
            f"{float(array[first])!r}")


def as_float_array(name: str, value, *, ndim: int | None = None, dtype=np.float64,
                   finite: bool = True) -> np.ndarray:
    """Convert ``value`` to a float array (a copy if conversion is needed), checking finiteness.

    Integer and boolean input is converted; complex or object input raises ``TypeError``.
    ``finite=False`` leaves the finiteness check to the caller (a kernel that reads the array
    anyway can check it in the same pass, then call :func:`check_finite` for the message).
    """
    refuse_grad_tensor(name, value)
    array = np.asarray(unitless(name, value))
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    array = np.asarray(array, dtype=dtype, order="C")
    if finite:
        check_finite(name, array)
    return array


def scalar_or_shaped(name: str, value, shape: tuple, what: str) -> np.ndarray:
    """A float scalar or array of exactly ``shape`` (``what`` says what one value is for),
    broadcast to ``shape`` (read-only view): a near-miss shape that NumPy would broadcast,
    or one it would refuse with a message naming nothing, raises naming ``name``."""
    array = as_float_array(name, value)
    if array.ndim and array.shape != tuple(shape):
        raise ValueError(f"{name} must be a scalar or have shape {tuple(shape)} ({what}), "
                         f"got {array.shape}")
    return np.broadcast_to(array, shape)


def refuse_grad_tensor(name: str, value) -> None:
    """``TypeError`` for a torch tensor that requires grad (NumPy cannot read it; duck-typed,
    so the core never imports torch)."""
    if getattr(value, "requires_grad", False) is True and hasattr(value, "detach"):
        raise TypeError(f"{name} is a torch tensor that requires grad; pass {name}.detach() "
                        "(NumPy code takes no part in autograd)")


def per_unit(name: str, value, n: int) -> np.ndarray:
    """A scalar or an ``(n,)`` array as a fresh float64 ``(n,)`` array (one value per unit);
    booleans are refused (see :func:`_is_real`)."""
    refuse_boolean(name, value)
    array = as_float_array(name, value)
    if array.ndim == 0:
        return np.full(n, float(array))
    check_shape(name, array, (n,))
    return array.copy()


def refuse_boolean(name: str, value) -> None:
    """``TypeError`` for a boolean (scalar or array) given as a numeric parameter (see
    :func:`_is_real`)."""
    if np.asarray(unitless(name, value)).dtype.kind == "b":
        raise TypeError(f"{name} must be a real number or an array of them, got {_short(value)}")


def check_finite(name: str, array: np.ndarray) -> None:
    if _float_sum_is_finite(array):
        return
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must contain only finite values, found {bad} non-finite")


def _float_sum_is_finite(array) -> bool:
    """Fast sufficient test: a finite ``Σ a`` proves every element of a float array finite.

    NaN propagates through the sum, one ±inf makes it ±inf and both signs make it NaN, so a
    finite sum leaves no non-finite element. NumPy's pairwise sum is one single-threaded pass
    with no temporary: faster than ``isfinite`` + ``all`` (which allocates a boolean array) and
    than a BLAS ``dot``, which waits for a second thread on a loaded machine. ``False`` (also
    when huge finite values overflow the sum) only means "check element by element".
    """
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f" or array.size == 0:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(array.ravel())))


def check_shape(name: str, array: np.ndarray, expected: Sequence[int | None]) -> None:
    """``expected`` may hold ``None`` for a free axis."""
    shape = np.shape(array)
    ok = len(shape) == len(expected) and all(
        e is None or s == e for s, e in zip(shape, expected, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected)
        want += ",)" if len(expected) == 1 else ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(shape)}")


def _scalar_or_array(name: str, value) -> np.ndarray:
    value = unitless(name, value)
    array = np.asarray(value, dtype=np.float64) if _is_real(value) else None
    if array is None:
        raise TypeError(f"{name} must be a real number or array of real numbers, got "
                        f"{_short(value)}")
    if np.isnan(array).any():
        raise ValueError(f"{name} must not be NaN")
    return array


def _is_real(value) -> bool:
    """An integer or float number or array: a parameter given as ``True`` is a mistake (a flag
    passed in a number's place), not the number 1."""
    return np.asarray(value).dtype.kind in "iuf"


def positive(name: str, value, *, allow_inf: bool = False):
    """Check ``value > 0`` (scalar or array) and return it as float / float64 array."""
    array = _scalar_or_array(name, value)
    ok = (array > 0) & (allow_inf | ~np.isinf(array))
    if not np.all(ok):
        inf = " (infinity allowed)" if allow_inf else " and finite"
        raise ValueError(f"{name} must be > 0{inf}, got {_offenders(array, ok)}")
    return float(array) if array.ndim == 0 else array


def non_negative(name: str, value):
    array = _scalar_or_array(name, value)
    ok = (array >= 0) & ~np.isinf(array)
    if not np.all(ok):
        raise ValueError(f"{name} must be finite and >= 0, got {_offenders(array, ok)}")
    return float(array) if array.ndim == 0 else array


def in_range(name: str, value, low: float, high: float, *, closed: str = "both"):
    """Check ``low <= value <= high``; ``closed`` is 'both', 'left', 'right' or 'neither'."""
    array = _scalar_or_array(name, value)
    lo_ok = array >= low if closed in ("both", "left") else array > low
    hi_ok = array <= high if closed in ("both", "right") else array < high
    if not (np.all(lo_ok) and np.all(hi_ok)):
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got "
                         f"{_offenders(array, lo_ok & hi_ok)}")
    return float(array) if array.ndim == 0 else array


#: Longest duration in steps that :func:`whole_steps` accepts: 2**40 steps (3.5 years at
#: dt = 0.1 ms). Far below int64's range, so the conversion cannot wrap around, and within the
#: reach of the neuron models' "never spiked" marker (``-2**40``): a refractory period of at
#: most this many steps still lets a neuron that never spiked integrate from step 0.
MAX_STEPS = 2**40


def whole_steps(name: str, duration_ms, dt_ms: float) -> np.ndarray:
    """Convert durations in ms to integer steps, rejecting anything that is not a whole step.

    A relative tolerance of 1e-9 absorbs the round-off of e.g. ``0.3 / 0.1``. Durations of more
    than :data:`MAX_STEPS` steps are refused (they would overflow the int64 step counts).
    """
    duration = np.asarray(non_negative(name, duration_ms), dtype=np.float64)
    dt_ms = positive("dt_ms", dt_ms)
    steps = duration / dt_ms
    if np.any(steps > MAX_STEPS):
        raise ValueError(f"{name} must be at most {MAX_STEPS} steps of dt_ms={dt_ms} "
                         f"({MAX_STEPS * dt_ms:.4g} ms), got {np.max(duration):.4g} ms")
    rounded = np.floor(steps + 0.5)
    whole = np.isclose(steps, rounded, rtol=1e-9, atol=1e-9)
    if not np.all(whole):
        raise ValueError(
            f"{name} must be whole multiples of dt_ms={dt_ms} (got "
            f"{_offenders(duration, whole)}); Brian2 and bioplastic would round them differently"
        )
    return rounded.astype(np.int64)


#: Integer arguments stay below this: sizes and step counts go into int64 kernel arguments, and
#: a larger Python int would fail there with an OverflowError that names nothing.
MAX_INT = 2**62


def _integer(name: str, value, low: int, what: str) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be {what} integer, got {value!r}")
    if value < low or value >= MAX_INT:
        raise ValueError(f"{name} must be {what} integer below 2**62, got {value!r}")
    return int(value)


def positive_int(name: str, value) -> int:
    """``value`` as an ``int`` >= 1; ``TypeError`` for non-integers (bool included)."""
    return _integer(name, value, 1, "a positive")


def non_negative_int(name: str, value) -> int:
    """``value`` as an ``int`` >= 0; ``TypeError`` for non-integers (bool included)."""
    return _integer(name, value, 0, "a non-negative")


def as_generator(seed) -> np.random.Generator:
    """Accept a seed (int), ``None`` or a ``numpy.random.Generator``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.default_rng(seed)
    raise TypeError("seed must be an int, None or numpy.random.Generator, "
                    f"got {type(seed).__name__}")


def count(name: str, value, *, low: int = 0) -> int:
    """An integer ``>= low`` (a Python or NumPy integer; ``bool`` and floats are refused)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low or value >= MAX_INT:
        raise ValueError(f"{name} must be an integer >= {low} and below 2**62, got {value!r}")
    return int(value)


def finite_float(name: str, value) -> float:
    value = unitless(name, value)
    if not _is_real(value) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a real scalar, got {_short(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value
