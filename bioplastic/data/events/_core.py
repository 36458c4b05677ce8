"""Event arrays: dtype, construction, validation, sensor sizes.

An event stream is a 1-D NumPy structured array with the fields ``x``, ``y`` (pixel column and
row, integers), ``p`` (polarity: ``False``/``0`` = OFF, ``True``/``1`` = ON) and ``t`` (time in
µs), sorted by ``t``. The field names and units are tonic's; the default dtype is the one
tonic's ``DVSGesture`` returns, ``[('x', '<i2'), ('y', '<i2'), ('p', '?'), ('t', '<i8')]``.
tonic's generic dtype orders the fields ``(x, y, t, p)`` instead, so code here always indexes
by field name and accepts either order.

A sensor size is ``(W, H, P)``: width (number of x values), height (number of y values) and
number of polarities, as in tonic (DVS128: ``(128, 128, 2)``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "EVENT_DTYPE",
    "TONIC_DTYPE",
    "DVS128_SENSOR_SIZE",
    "make_events",
    "empty_events",
    "check_events",
    "check_sensor_size",
    "sort_events",
]

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "?"), ("t", "<i8")])
"""tonic's ``DVSGesture.dtype``: field order (x, y, p, t), t in µs."""

TONIC_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])
"""tonic's generic ``tonic.io.events_struct``: field order (x, y, t, p)."""

DVS128_SENSOR_SIZE = (128, 128, 2)
"""(W, H, P) of the DVS128 sensor (DVS128 Gesture)."""

_FIELDS = ("x", "y", "p", "t")


def check_sensor_size(sensor_size, *, name: str = "sensor_size") -> tuple[int, int, int]:
    """Return ``sensor_size`` as a tuple of three positive ints ``(W, H, P)``."""
    try:
        values = tuple(sensor_size)
    except TypeError:
        raise TypeError(f"{name} must be a (W, H, P) tuple of ints, got {sensor_size!r}") from None
    if len(values) != 3 or not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must be a (W, H, P) tuple of three ints, got {sensor_size!r}")
    if min(values) < 1:
        raise ValueError(f"{name} must hold positive sizes (W, H, P), got {sensor_size!r}")
    return tuple(int(v) for v in values)


def make_events(x, y, p, t, *, dtype: np.dtype = EVENT_DTYPE) -> np.ndarray:
    """Build an event array from four equal-length 1-D sequences.

    Parameters
    ----------
    x, y : array_like of int, shape (n,)
        Pixel column and row.
    p : array_like of bool or {0, 1}, shape (n,)
        Polarity (1 = ON).
    t : array_like of int, shape (n,)
        Timestamps in µs.
    dtype : numpy dtype
        A structured dtype with fields x, y, p, t (default :data:`EVENT_DTYPE`).

    Returns
    -------
    ndarray, shape (n,), structured with ``dtype``

    Raises
    ------
    ValueError
        Unequal lengths, or a value its field cannot hold as given: outside the field type's
        range, a fraction for an integer field, NaN or infinite, a polarity other than 0/1
        for a bool field.
    """
    columns = [np.asarray(v) for v in (x, y, p, t)]
    for field, column in zip(_FIELDS, columns, strict=True):
        if column.ndim != 1:
            raise ValueError(f"{field} must be 1-D, got shape {column.shape}")
        if column.dtype.kind not in "biuf":
            raise TypeError(f"{field} must be numeric, got dtype {column.dtype}")
    if len({c.shape[0] for c in columns}) != 1:
        raise ValueError(f"x, y, p, t must have equal lengths, got {[c.size for c in columns]}")
    dtype = np.dtype(dtype)
    _check_dtype_fields(dtype, "dtype")
    events = np.empty(columns[0].shape[0], dtype=dtype)
    for field, column in zip(_FIELDS, columns, strict=True):
        _check_fits(field, column, dtype[field])
        events[field] = column
    return events


def _check_fits(field: str, column: np.ndarray, target: np.dtype) -> None:
    """Refuse values the field's type would change on assignment: NumPy wraps integers that
    overflow, truncates fractions and turns NaN into an arbitrary integer, silently."""
    if column.size == 0 or column.dtype.kind == "b":
        return
    if column.dtype.kind == "f" and not np.all(np.isfinite(column)):
        raise ValueError(f"{field} must be finite")
    if target.kind == "f":
        return
    if column.dtype.kind == "f" and not np.all(column == np.trunc(column)):
        raise ValueError(f"{field} must hold whole numbers for the {target} field, got "
                         f"{column[column != np.trunc(column)][0]!r}")
    low, high = (0, 1) if target.kind == "b" else (np.iinfo(target).min, np.iinfo(target).max)
    if column.min() < low or column.max() > high:
        raise ValueError(f"{field} must lie in [{low}, {high}] for the {target} field, got "
                         f"values in [{column.min()}, {column.max()}]")


def empty_events(dtype: np.dtype = EVENT_DTYPE) -> np.ndarray:
    """An event array with no events."""
    return np.zeros(0, dtype=dtype)


def _check_dtype_fields(dtype: np.dtype, name: str) -> None:
    names = dtype.names or ()
    missing = [f for f in _FIELDS if f not in names]
    if missing:
        raise TypeError(f"{name} must be a structured dtype with fields x, y, p, t; "
                        f"missing {missing} in {dtype}")
    for field in ("x", "y"):
        if dtype[field].kind not in "iu":
            raise TypeError(f"{name}['{field}'] must be an integer type, got {dtype[field]}")
    if dtype["p"].kind not in "biu":
        raise TypeError(f"{name}['p'] must be bool or integer, got {dtype['p']}")
    if dtype["t"].kind not in "iuf":
        raise TypeError(f"{name}['t'] must be an integer (µs) or float type, got {dtype['t']}")


def check_events(events, sensor_size=None, *, name: str = "events",
                 sorted_required: bool = True) -> np.ndarray:
    """Check an event array and return it unchanged (never a copy, never modified).

    Parameters
    ----------
    events : ndarray, shape (n,)
        Structured array with integer fields x, y, a bool/int field p and a time field t (µs).
    sensor_size : (W, H, P), optional
        If given, every event must lie inside: ``0 <= x < W``, ``0 <= y < H``, ``0 <= p < P``.
    name : str
        How error messages call the argument.
    sorted_required : bool
        Require ``t`` to be non-decreasing (every transform here does; use
        :func:`sort_events` first for unsorted data).

    Raises
    ------
    TypeError
        Not a structured array with the fields above.
    ValueError
        Not 1-D, negative or non-finite or unsorted times, negative ``x``, ``y`` or ``p``,
        events outside the sensor.
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise TypeError(f"{name} must be a structured numpy array with fields x, y, p, t, "
                        f"got {type(events).__name__}")
    _check_dtype_fields(events.dtype, f"{name}.dtype")
    if events.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {events.shape}")
    if events.size == 0:
        if sensor_size is not None:
            check_sensor_size(sensor_size)
        return events
    t = events["t"]
    if t.dtype.kind == "f" and not np.all(np.isfinite(t)):
        raise ValueError(f"{name}['t'] must be finite")
    if t.min() < 0:
        raise ValueError(f"{name}['t'] must be >= 0 µs, got a minimum of {t.min()}")
    if sorted_required and events.size > 1 and np.any(t[1:] < t[:-1]):
        first = int(np.flatnonzero(t[1:] < t[:-1])[0])
        raise ValueError(f"{name}['t'] must be non-decreasing (sorted by time); "
                         f"t[{first + 1}] = {t[first + 1]} < t[{first}] = {t[first]}; "
                         "sort with bioplastic.data.events.sort_events")
    if sensor_size is not None:
        _check_inside(events, check_sensor_size(sensor_size), name)
    else:
        _check_non_negative(events, name)
    return events


def _check_non_negative(events: np.ndarray, name: str) -> None:
    """Pixel coordinates and polarities index arrays: a negative one is never valid (the
    transforms without a sensor size size their grids from the events' maxima)."""
    for field in _FIELDS[:3]:
        low = int(events[field].min())
        if low < 0:
            raise ValueError(f"{name}['{field}'] must be >= 0, got a minimum of {low}")


def _check_inside(events: np.ndarray, sensor_size: tuple[int, int, int], name: str) -> None:
    for field, size, axis in zip(_FIELDS[:3], sensor_size, ("W", "H", "P"), strict=True):
        column = events[field]
        low, high = int(column.min()), int(column.max())
        if low < 0 or high >= size:
            raise ValueError(f"{name}['{field}'] must lie in [0, {size}) for sensor_size "
                             f"{sensor_size} ({axis} = {size}), got values in [{low}, {high}]")


def sort_events(events: np.ndarray) -> np.ndarray:
    """A copy of ``events`` sorted by ``t`` (stable: equal times keep their order)."""
    check_events(events, sorted_required=False)
    return events[np.argsort(events["t"], kind="stable")]
