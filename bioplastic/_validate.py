"""Argument checks shared by every public function.

Each helper raises ``ValueError``/``TypeError`` whose message names the argument and states
what was expected. They return a checked (and, where documented, converted) value and never
modify what they are given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "as_float_array",
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


def as_float_array(name: str, value, *, ndim: int | None = None, dtype=np.float64,
                   finite: bool = True) -> np.ndarray:
    """Convert ``value`` to a float array (a copy if conversion is needed), checking finiteness.

    Integer and boolean input is converted; complex or object input raises ``TypeError``.
    ``finite=False`` leaves the finiteness check to the caller (a kernel that reads the array
    anyway can check it in the same pass, then call :func:`check_finite` for the message).
    """
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    array = np.asarray(array, dtype=dtype, order="C")
    if finite:
        check_finite(name, array)
    return array


def per_unit(name: str, value, n: int) -> np.ndarray:
    """A scalar or an ``(n,)`` array as a fresh float64 ``(n,)`` array (one value per unit)."""
    array = as_float_array(name, value)
    if array.ndim == 0:
        return np.full(n, float(array))
    check_shape(name, array, (n,))
    return array.copy()


def check_finite(name: str, array: np.ndarray) -> None:
    if _float_sum_of_squares_is_finite(array):
        return
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must contain only finite values, found {bad} non-finite")


def _float_sum_of_squares_is_finite(array) -> bool:
    """Fast sufficient test: a finite ``Σ a²`` proves every element of a float array finite.

    NaN and ±inf propagate through the squares and the sum (all terms are >= 0, so no
    ``inf − inf``); one BLAS ``dot`` pass is ~2x faster than ``isfinite`` + ``all``, which
    allocates a boolean array. ``False`` (also when huge finite values overflow the sum) only
    means "check element by element".
    """
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f" or array.size == 0:
        return False
    flat = array.ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.dot(flat, flat)))


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
    array = np.asarray(value, dtype=np.float64) if _is_real(value) else None
    if array is None:
        raise TypeError(f"{name} must be a real number or array of real numbers, got {value!r}")
    if np.isnan(array).any():
        raise ValueError(f"{name} must not be NaN")
    return array


def _is_real(value) -> bool:
    return np.asarray(value).dtype.kind in "biuf"


def positive(name: str, value, *, allow_inf: bool = False):
    """Check ``value > 0`` (scalar or array) and return it as float / float64 array."""
    array = _scalar_or_array(name, value)
    if not np.all(array > 0) or (not allow_inf and np.isinf(array).any()):
        inf = " (infinity allowed)" if allow_inf else " and finite"
        raise ValueError(f"{name} must be > 0{inf}, got {value!r}")
    return float(array) if array.ndim == 0 else array


def non_negative(name: str, value):
    array = _scalar_or_array(name, value)
    if not np.all(array >= 0) or np.isinf(array).any():
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return float(array) if array.ndim == 0 else array


def in_range(name: str, value, low: float, high: float, *, closed: str = "both"):
    """Check ``low <= value <= high``; ``closed`` is 'both', 'left', 'right' or 'neither'."""
    array = _scalar_or_array(name, value)
    lo_ok = array >= low if closed in ("both", "left") else array > low
    hi_ok = array <= high if closed in ("both", "right") else array < high
    if not (np.all(lo_ok) and np.all(hi_ok)):
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got {value!r}")
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
    steps = duration / dt_ms
    if np.any(steps > MAX_STEPS):
        raise ValueError(f"{name} must be at most {MAX_STEPS} steps of dt_ms={dt_ms} "
                         f"({MAX_STEPS * dt_ms:.4g} ms), got {np.max(duration):.4g} ms")
    rounded = np.floor(steps + 0.5)
    if not np.allclose(steps, rounded, rtol=1e-9, atol=1e-9):
        raise ValueError(
            f"{name} must be whole multiples of dt_ms={dt_ms} (got {duration_ms!r}); "
            "Brian2 and bioplastic would round them differently"
        )
    return rounded.astype(np.int64)


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
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def finite_float(name: str, value) -> float:
    if not _is_real(value) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a real scalar, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value
