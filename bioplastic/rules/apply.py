"""The one place where a rule's ``dw`` becomes new weights: learning rate, bounds, norms.

Rules return ``dw`` and never change ``w``; :func:`apply_update` returns the *new* weights
(``w`` is never modified). In order:

1. **max normalisation** (optional, ``max_normalise``): ``dw <- dw / (max|dw| + 1e-30)`` over the
   whole tensor, so the largest element is ±1 (Krotov & Hopfield 2019; SoftHebb ICLR 2023; the
   1e-30 guard is theirs);
2. **learning rate** ``η`` — a scalar or one value per unit (row) — optionally
   **norm-dependent** (``power_lr > 0``): ``η_k = η · (|r_k − 1| + 1e-10) ** power_lr`` with
   ``r_k = ‖w_k‖_p`` of the weights *before* this update (SoftHebb ICLR 2023; docs/softhebb.md);
3. ``w_new = w + η_k · dw``;
4. **bounds**: clip to ``[w_min, w_max]``;
5. **norm constraint** (optional, ``row_norm > 0``): rescale each row to p-norm ``row_norm``;
6. **divergence check**: non-finite new weights raise :class:`DivergenceError` (never garbage).

Rows are axis 0 (``(n_post, n_pre)`` dense, ``(O, C, kh, kw)`` conv: the rest is flattened).
Row norms are sums in element order (a plain loop, not BLAS ``nrm2``), which the Brian2 twins
reproduce bit for bit with ``(summed)`` variables.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._validate import (
    _float_sum_is_finite,
    as_float_array,
    finite_float,
    non_negative,
    positive,
)

__all__ = ["UpdateParams", "apply_update", "DivergenceError", "row_norms",
           "norm_dependent_rate", "max_normalise", "check_result_finite"]

#: Guard of the max normalisation (the value of the SoftHebb and Krotov–Hopfield codes).
MAX_NORM_GUARD = 1e-30
#: Offset of the norm-dependent rate, so a unit exactly on the sphere still learns a little
#: (SoftHebb ICLR 2023 code).
NORM_RATE_OFFSET = 1e-10


class DivergenceError(FloatingPointError, ValueError):
    """An update produced non-finite weights (a diverging run)."""


def check_result_finite(what: str, array: np.ndarray) -> np.ndarray:
    """Return ``array`` if every element is finite, else raise :class:`DivergenceError`.

    For rules and activations whose finite inputs can still overflow float64 (products of
    values beyond ~1e154, ``exp`` beyond 709): a non-finite result is reported, never returned.
    """
    if _float_sum_is_finite(array) or np.all(np.isfinite(array)):
        return array
    raise DivergenceError(
        f"{what} overflowed to non-finite values on finite inputs: the run diverged or the "
        "inputs are too large (float64 holds magnitudes up to 1.8e308); lower the learning "
        "rate or rescale the inputs or weights")


class UpdateParams(NamedTuple):
    learning_rate: float = 0.01      # η (scalar) or one per unit, shape (n_post,)
    max_normalise: bool = False      # dw / (max|dw| + 1e-30) before the rate
    power_lr: float = 0.0            # 0: constant rate; > 0: η_k = η (|r_k - 1| + 1e-10)^power_lr
    norm_p: float = 2.0              # p of the row norms (rate and norm constraint)
    w_min: float = -np.inf           # lower bound after the update
    w_max: float = np.inf            # upper bound after the update
    row_norm: float = 0.0            # 0: off; > 0: rescale rows to this p-norm after the update



DEFAULT_UPDATE = UpdateParams()

@njit
def _row_norms_kernel(w2d, p):
    n_rows, n_cols = w2d.shape
    out = np.empty(n_rows)
    for k in range(n_rows):
        total = 0.0
        if p == 2.0:
            for i in range(n_cols):
                total += w2d[k, i] * w2d[k, i]
            out[k] = np.sqrt(total)
        else:
            for i in range(n_cols):
                total += np.abs(w2d[k, i]) ** p
            out[k] = total ** (1.0 / p)
    return out


def row_norms(w, p: float = 2.0) -> np.ndarray:
    """p-norm of every row (axis 0; other axes flattened): shape (n_rows,)."""
    w = as_float_array("w", w)
    if w.ndim < 1:
        raise ValueError(f"w must have at least one axis, got shape {w.shape}")
    p = positive("norm_p", finite_float("norm_p", p))
    norms = _row_norms_kernel(w.reshape(w.shape[0], -1), p)
    return check_result_finite("row_norms", norms)


def norm_dependent_rate(w, learning_rate, power_lr: float, p: float = 2.0) -> np.ndarray:
    """``η_k = η · (|‖w_k‖_p − 1| + 1e-10) ** power_lr``, shape (n_rows,)."""
    norms = row_norms(w, p)
    rate = _per_row("learning_rate", learning_rate, norms.size)
    power = non_negative("power_lr", finite_float("power_lr", power_lr))
    with np.errstate(over="ignore"):     # reported by check_result_finite
        return check_result_finite("norm_dependent_rate",
                                   rate * (np.abs(norms - 1.0) + NORM_RATE_OFFSET) ** power)


def _per_row(name: str, value, n_rows: int) -> np.ndarray:
    """A non-negative scalar or ``(n_rows,)`` array (float64)."""
    rate = np.asarray(non_negative(name, value), dtype=np.float64)
    if rate.ndim not in (0, 1) or (rate.ndim == 1 and rate.shape != (n_rows,)):
        raise ValueError(f"{name} must be a scalar or have shape ({n_rows},), got {rate.shape}")
    return rate


def max_normalise(dw: np.ndarray) -> np.ndarray:
    """``dw / (max|dw| + 1e-30)``: the largest element becomes exactly ±1 (unless dw = 0)."""
    return dw / (np.max(np.abs(dw)) + MAX_NORM_GUARD)


def _rate(w: np.ndarray, params: UpdateParams) -> np.ndarray:
    """Per-row rate as a column broadcastable against ``w``."""
    rate = np.asarray(non_negative("learning_rate", params.learning_rate), dtype=np.float64)
    if rate.ndim not in (0, 1) or (rate.ndim == 1 and rate.shape != (w.shape[0],)):
        raise ValueError(f"learning_rate must be a scalar or have shape ({w.shape[0]},), got "
                         f"{rate.shape}")
    power = non_negative("power_lr", finite_float("power_lr", params.power_lr))
    if power > 0:
        if w.ndim < 2:
            raise ValueError("power_lr > 0 needs rows of weights (w.ndim >= 2), got a vector")
        rate = norm_dependent_rate(w, rate, power, params.norm_p)
    return rate.reshape((-1,) + (1,) * (w.ndim - 1)) if rate.ndim else rate


def _check_update_params(params) -> UpdateParams:
    if not isinstance(params, UpdateParams):
        raise TypeError(f"params must be UpdateParams, got {type(params).__name__}")
    return params


def _bounds(params: UpdateParams) -> tuple[float, float]:
    """``(w_min, w_max)`` as floats; NaN would silently switch clipping off, so it is refused
    (``±inf`` means no bound)."""
    bounds = []
    for name in ("w_min", "w_max"):
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise TypeError(f"{name} must be a real number (±inf for no bound), got {value!r}")
        value = float(value)        # (a huge Python int becomes a large float)
        if value != value:
            raise ValueError(f"{name} must not be NaN (use ±inf for no bound)")
        bounds.append(value)
    if bounds[0] > bounds[1]:
        raise ValueError(f"w_min ({bounds[0]}) must be <= w_max ({bounds[1]})")
    return bounds[0], bounds[1]


def apply_update(w, dw, params: UpdateParams = DEFAULT_UPDATE) -> np.ndarray:
    """New weights ``w + η·dw`` after normalisation, bounds and norm constraint (see module doc).

    Parameters
    ----------
    w, dw : arrays of the same shape (n_post, ...) — never modified.
    params : UpdateParams

    Returns
    -------
    w_new : float64 array, shape of ``w``.

    Raises
    ------
    DivergenceError
        if ``dw`` or the new weights are not finite.
    """
    params = _check_update_params(params)
    w = as_float_array("w", w)
    dw = as_float_array("dw", dw, finite=False)      # complex, object, str: TypeError
    if dw.shape != w.shape:
        raise ValueError(f"dw must have the shape of w {w.shape}, got {dw.shape}")
    if w.size == 0:
        raise ValueError(f"w must hold at least one weight, got shape {w.shape}")
    if not np.all(np.isfinite(dw)):
        raise DivergenceError("dw contains non-finite values: the update diverged")
    w_min, w_max = _bounds(params)
    if not isinstance(params.max_normalise, bool | np.bool_):
        raise TypeError(f"max_normalise must be a bool, got {params.max_normalise!r}")
    if params.max_normalise:
        dw = max_normalise(dw)
    with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported just below
        w_new = w + _rate(w, params) * dw
    if w_min > -np.inf or w_max < np.inf:
        w_new = np.clip(w_new, w_min, w_max)
    if not np.all(np.isfinite(w_new)):
        raise DivergenceError("the update produced non-finite weights: the run diverged "
                              "(lower the learning rate or normalise the update)")
    target = non_negative("row_norm", finite_float("row_norm", params.row_norm))
    if target > 0:
        norms = row_norms(w_new, params.norm_p).reshape((-1,) + (1,) * (w.ndim - 1))
        w_new = w_new * (target / np.where(norms > 0, norms, 1.0))
    return w_new
