"""Classic Hebbian rules: Hebb, Instar, Oja (and its competitive form), Sanger/GHA, Krotov–Hopfield.

Every rule is a pure function ``rule_dw(x, y, w) -> dw``: ``x`` (batch, n_pre) presynaptic
activity, ``y`` (batch, n_post) the postsynaptic factor (the output of any competition of
:mod:`bioplastic.rules.inhibition`, or the linear output ``u = x @ w.T``), ``w`` (n_post, n_pre).
``dw`` has the shape of ``w``; ``w`` is never changed (use :func:`bioplastic.rules.apply_update`).
**The batch is summed**, not averaged: ``dw = Σ_b dw_b`` (the convention of the SoftHebb and
Krotov–Hopfield codes, whose max normalisation makes the scale irrelevant; divide the learning
rate by the batch size for a mean).

::

    =================  ==================================================  ========================
    rule               update summed over the batch                        fixed point / behaviour
    =================  ==================================================  ========================
    ``hebb_dw``        ``Δw_k = Σ y_k x``                                   unstable, norms grow
    ``instar_dw``      ``Δw_k = Σ y_k (x − w_k)``                           ``w_k → E[x | y_k]``
    ``oja_dw``         ``Δw_k = Σ y_k (x − u_k w_k)``, ``u = y`` by default  ``‖w_k‖ → 1`` (Oja)
    ``sanger_dw``      ``Δw_k = Σ y_k (x − Σ_{l≤k} y_l w_l)``               ordered principal comps.
    ``krotov_…_dw``    ``Δw_k = Σ g_k (x − I_k w_k)``, ``I = x·sign(w)|w|^{p−1}``,  ``‖w_k‖_p → 1``
                       ``g = ranked_wta(I, k, Δ)``
    =================  ==================================================  ========================

``oja_dw`` with a separate decay factor ``u`` is the common core: SoftHebb is
``oja_dw(x, soft_wta(u, τ), w, u=u)`` (Moraitis et al. 2022), competitive learning is
``oja_dw(x, hard_wta(u), w, u=u)``.

Implementation: the big product ``yᵀ x`` is NumPy's BLAS ``matmul``, called from the Numba
kernel (one BLAS thread pool for the library, see :func:`outer_sum_kernel`); the decay
coefficients ``d_k = Σ_b y_bk u_bk`` are summed over the batch in sample order.

References: Oja, J. Math. Biol. 15:267 (1982); Sanger, Neural Networks 2:459 (1989);
Grossberg (instar); Krotov & Hopfield, PNAS 116:7723 (2019). Spec:
``docs/softhebb.md``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import objmode

from .._jit import njit
from .._validate import as_float_array, finite_float, positive
from .apply import check_result_finite
from .inhibition import check_k, check_pre_activation, ranked_wta_kernel

__all__ = ["hebb_dw", "instar_dw", "oja_dw", "sanger_dw", "KrotovParams", "krotov_hopfield_dw",
           "krotov_current", "check_rule_inputs"]


# --------------------------------------------------------------------------------- kernels
def _numpy_transposed_product(y: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    np.matmul(y.T, x, out=out)


@njit(nogil=False)     # an object-mode block holds the GIL anyway
def outer_sum_kernel(x, y):
    """``Σ_b y_b ⊗ x_b = yᵀ x``: (B, n_pre), (B, n_post) -> (n_post, n_pre) via BLAS.

    The product is NumPy's ``matmul`` (NumPy's BLAS), not Numba's ``np.dot`` (SciPy's BLAS):
    one BLAS thread pool for the whole library, so a kernel never competes for the cores with
    a second, still-spinning pool (this halved the speed of the SoftHebb update when mixed
    with NumPy products), and ``threadpoolctl`` limits apply to it.
    """
    out = np.empty((y.shape[1], x.shape[1]))
    with objmode():
        _numpy_transposed_product(y, x, out)
    return out


@njit
def subtract_decay_kernel(hebb, d, w):
    """``hebb − d[:, None] * w`` as a new array; (n_post, n_pre), (n_post,), (n_post, n_pre)."""
    dw = np.empty_like(w)
    n_post, n_pre = w.shape
    for k in range(n_post):
        for i in range(n_pre):
            dw[k, i] = hebb[k, i] - d[k] * w[k, i]
    return dw


@njit
def decay_dw_checked_kernel(x, y, d, w):
    """:func:`decay_dw_kernel` that also reports whether every ``w`` is finite: (dw, bool).

    The decay pass reads ``w`` anyway; checking it there saves a separate pass over the
    largest array (a public function then raises the usual message via ``check_finite``).
    """
    dw = outer_sum_kernel(x, y)
    n_post, n_pre = w.shape
    finite = True
    for k in range(n_post):
        row_finite = True
        for i in range(n_pre):
            row_finite &= np.isfinite(w[k, i])
            dw[k, i] = dw[k, i] - d[k] * w[k, i]
        finite &= row_finite
    return dw, finite


@njit
def decay_dw_kernel(x, y, d, w):
    """``yᵀx − d[:, None] * w``: the Hebbian term minus a per-unit decay of the weights."""
    dw = outer_sum_kernel(x, y)
    n_post, n_pre = w.shape
    for k in range(n_post):
        for i in range(n_pre):
            dw[k, i] = dw[k, i] - d[k] * w[k, i]
    return dw


@njit
def column_products_kernel(y, u):
    """``d_k = Σ_b y_bk u_bk``, summed in sample order; (B, n) -> (n,)."""
    n_rows, n_units = y.shape
    d = np.zeros(n_units)
    for b in range(n_rows):
        for k in range(n_units):
            d[k] += y[b, k] * u[b, k]
    return d


@njit
def oja_dw_kernel(x, y, u, w):
    return decay_dw_kernel(x, y, column_products_kernel(y, u), w)


@njit
def instar_dw_kernel(x, y, w):
    return decay_dw_kernel(x, y, column_products_kernel(y, np.ones_like(y)), w)


@njit
def sanger_dw_kernel(x, y, w):
    # Σ_b y_bk x_b − Σ_{l<=k} (Σ_b y_bk y_bl) w_l : lower triangle of yᵀy times w.
    hebb = outer_sum_kernel(x, y)
    cross = np.tril(np.dot(y.T, y))
    return hebb - np.dot(cross, w)


@njit
def krotov_current_kernel(x, w, p):
    """``I = x · (sign(w)|w|^{p−1})ᵀ`` (equals ``x wᵀ`` for p = 2)."""
    if p == 2.0:
        return np.dot(x, w.T)
    return np.dot(x, (np.sign(w) * np.abs(w) ** (p - 1.0)).T)


@njit
def krotov_hopfield_dw_kernel(x, w, p, k, delta):
    current = krotov_current_kernel(x, w, p)
    g = ranked_wta_kernel(current, k, delta)
    return oja_dw_kernel(x, g, current, w)


# ------------------------------------------------------------------------------ validation
def check_rule_inputs(x, y, w, *, y_name: str = "y", w_finite: bool = True
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x`` (B, n_pre), ``y`` (B, n_post), ``w`` (n_post, n_pre) as finite float64 arrays.

    ``w_finite=False``: ``w``'s finiteness is left to the caller (see
    :func:`decay_dw_checked_kernel`).
    """
    x = check_pre_activation(x, "x")
    y = check_pre_activation(y, y_name)
    w = as_float_array("w", w, ndim=2, finite=w_finite)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{y_name} must have one row per sample of x ({x.shape[0]}), got "
                         f"{y.shape[0]}")
    if w.shape != (y.shape[1], x.shape[1]):
        raise ValueError(f"w must have shape (n_post, n_pre) = ({y.shape[1]}, {x.shape[1]}) "
                         f"from {y_name} and x, got {w.shape} (mismatched feature counts?)")
    return x, y, w


# ---------------------------------------------------------------------------------- public
def hebb_dw(x, y, w) -> np.ndarray:
    """Plain Hebb ``Δw = Σ_b y_b ⊗ x_b`` (unstable on its own: pair it with a norm constraint).

    Parameters
    ----------
    x : (batch, n_pre); y : (batch, n_post); w : (n_post, n_pre), used for its shape only.

    Returns
    -------
    dw : float64 (n_post, n_pre), summed over the batch.
    """
    x, y, _ = check_rule_inputs(x, y, w)
    return check_result_finite("hebb_dw", outer_sum_kernel(x, y))


def instar_dw(x, y, w) -> np.ndarray:
    """Grossberg's instar ``Δw_k = Σ_b y_bk (x_b − w_k)``; shapes as :func:`hebb_dw`."""
    x, y, w = check_rule_inputs(x, y, w)
    return check_result_finite("instar_dw", instar_dw_kernel(x, y, w))


def oja_dw(x, y, w, u=None) -> np.ndarray:
    """Oja's rule ``Δw_k = Σ_b y_bk (x_b − u_bk w_k)``; ``u = y`` (the classic rule) by default.

    With ``y = x @ w.T`` and ``u = None`` this is Oja (1982): a single unit converges to the unit
    first principal component. With ``y`` from a competition and ``u = x @ w.T`` it is the
    competitive form used by SoftHebb and hard-WTA learning. Shapes as :func:`hebb_dw`; ``u``
    has the shape of ``y``.
    """
    x, y, w = check_rule_inputs(x, y, w)
    if u is None:
        u = y
    else:
        u = check_pre_activation(u, "u")
        if u.shape != y.shape:
            raise ValueError(f"u must have the shape of y {y.shape}, got {u.shape}")
    return check_result_finite("oja_dw", oja_dw_kernel(x, y, u, w))


def sanger_dw(x, y, w) -> np.ndarray:
    """Sanger's generalised Hebbian algorithm ``Δw_k = Σ_b y_bk (x_b − Σ_{l≤k} y_bl w_l)``.

    With ``y = x @ w.T`` the rows converge to the ordered principal components. Shapes as
    :func:`hebb_dw`.
    """
    x, y, w = check_rule_inputs(x, y, w)
    return check_result_finite("sanger_dw", sanger_dw_kernel(x, y, w))


class KrotovParams(NamedTuple):
    """Krotov & Hopfield (2019) defaults for MNIST."""

    p: float = 2.0        # Lebedev norm exponent (>= 1); the fixed point is ‖w_k‖_p = 1
    k: int = 2            # rank of the unit that gets the anti-Hebbian push
    delta: float = 0.4    # strength of that push (Δ)



DEFAULT_KROTOV = KrotovParams()


def _check_p(p) -> float:
    """``p >= 1``: below 1, ``|w|^{p-1}`` of a zero weight is infinite (and ‖·‖_p no norm)."""
    p = positive("p", finite_float("p", p))
    if p < 1.0:
        raise ValueError(f"p must be >= 1 (|w|**(p-1) is infinite at w = 0 for p < 1), got {p}")
    return p

def krotov_current(x, w, p: float = 2.0) -> np.ndarray:
    """Input currents ``I = x · (sign(w)|w|^{p−1})ᵀ``: (batch, n_pre), (n_post, n_pre) ->
    (batch, n_post)."""
    x = check_pre_activation(x, "x")
    w = as_float_array("w", w, ndim=2)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have {x.shape[1]} columns (features of x), got {w.shape}")
    return check_result_finite("krotov_current", krotov_current_kernel(x, w, _check_p(p)))


def krotov_hopfield_dw(x, w, params: KrotovParams = DEFAULT_KROTOV) -> np.ndarray:
    """Krotov–Hopfield ``Δw_k = Σ_b g_bk (x_b − I_bk w_k)`` with ``g = ranked_wta(I, k, Δ)``.

    The paper's ``W += ε ds / max|ds|`` is ``apply_update`` with ``max_normalise=True``.
    ``x`` (batch, n_pre), ``w`` (n_post, n_pre) -> dw (n_post, n_pre), summed over the batch.
    """
    if not isinstance(params, KrotovParams):
        raise TypeError(f"params must be KrotovParams, got {type(params).__name__}")
    x = check_pre_activation(x, "x")
    w = as_float_array("w", w, ndim=2)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have {x.shape[1]} columns (features of x), got {w.shape}")
    k = check_k(params.k, w.shape[0], low=2, units="the rows of w")
    dw = krotov_hopfield_dw_kernel(x, w, _check_p(params.p), k, finite_float("delta", params.delta))
    return check_result_finite("krotov_hopfield_dw", dw)
