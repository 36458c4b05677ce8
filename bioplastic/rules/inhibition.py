"""Lateral inhibition as activations: competition maps pre-activations ``u`` to post factors ``y``.

Every function here takes ``u`` of shape ``(batch, n_units)`` (one row per sample; for a conv
layer one row per (sample, position), see :func:`bioplastic.rules.unfold_patches`) and returns
an array of the same shape. They compose with any rule of :mod:`bioplastic.rules.hebbian`:
``oja_dw(x, soft_wta(u, 0.5), w, u=u)`` is SoftHebb, ``oja_dw(x, hard_wta(u), w, u=u)`` is
competitive (hard-WTA) learning, ``oja_dw(x, ranked_wta(u, 2, 0.4), w, u=u)`` is
Krotov–Hopfield with p = 2. There is no subclass per combination.

::

    =====================  ==========================================================  ===========
    function               operation (per row)                                          inhibition
    =====================  ==========================================================  ===========
    ``soft_wta``           ``y = exp((u - max u)/τ) / Σ exp((u - max u)/τ)``             divisive
    ``hard_wta``           ``y = onehot(argmax u)``                                      selection
    ``k_wta``              top-k units keep ``u`` (or 1 with ``binary=True``), others 0  selection
    ``ranked_wta``         +1 for the top unit, ``-delta`` for the k-th ranked unit      Krotov
    ``anti_hebbian_signs`` winner keeps ``+s``, every other unit gets ``-s``             repulsion
    ``triangle``           ``ReLU(u - mean_units u) ** power``                           subtractive
    =====================  ==========================================================  ===========

Choices where the papers are silent (all deterministic):

* **Ties** go to the lowest unit index, as ``numpy.argmax`` does (hard WTA, the anti-Hebbian
  winner, the ranking of k-WTA and of Krotov's rule: a stable sort on ``-u``).
* The softmax subtracts the row maximum before exponentiating (the usual overflow guard; it is
  mathematically a no-op) and divides by ``temperature`` rather than multiplying by ``1/τ``.
  The sum over units is sequential in unit order, which the Brian2 twin reproduces. The
  exponentials are NumPy's vectorised ``exp`` (called from the kernel), the one Brian2's numpy
  target uses too.
* ``ranked_wta`` needs ``2 <= k <= n_units`` (k = 1 would give the top unit both +1 and -Δ).

References: Moraitis et al. 2022 (soft WTA), Journé et al. ICLR 2023 (anti-Hebbian losers,
Triangle), Krotov & Hopfield PNAS 2019 (ranking), Coates, Lee & Ng AISTATS 2011 (Triangle).
Guide: ``docs/softhebb.md``.
"""

from __future__ import annotations

import numpy as np
from numba import objmode

from .._jit import njit
from .._validate import as_float_array, finite_float, positive
from .apply import check_result_finite

__all__ = ["soft_wta", "hard_wta", "k_wta", "ranked_wta", "anti_hebbian_signs", "triangle",
           "check_pre_activation", "check_k"]


# --------------------------------------------------------------------------------- kernels
def _numpy_exp_in_place(a: np.ndarray) -> None:
    with np.errstate(under="ignore"):
        np.exp(a, out=a)


@njit(nogil=False)     # an object-mode block holds the GIL anyway
def exp_in_place(a):
    """``a ← exp(a)`` by NumPy's ``exp`` (float64 array, any shape).

    NumPy's vectorised ``exp`` is ~7x faster than the scalar libm ``exp`` Numba compiles to,
    and it is the ``exp`` Brian2's numpy target uses, so the rate-rule twins see the very same
    values. Underflow to 0 is expected (the softmax of far-below-max units) and never raised.
    """
    with objmode():
        _numpy_exp_in_place(a)


# The two row-wise scans below take four rows at a time: each row's scan is still sequential
# in unit order, but four independent dependency chains keep the CPU's pipelines busy (a single
# chain waits ~4 cycles per element for the previous comparison or addition).
@njit
def row_max_winner(u):
    """Each row's maximum and first argmax (lowest index on ties); (B, n) -> (B,), (B,) int64."""
    n_rows, n_units = u.shape
    top = np.empty(n_rows)
    winner = np.zeros(n_rows, dtype=np.int64)
    b = 0
    while b + 4 <= n_rows:
        t0, t1, t2, t3 = u[b, 0], u[b + 1, 0], u[b + 2, 0], u[b + 3, 0]
        w0 = w1 = w2 = w3 = 0
        for k in range(1, n_units):
            if u[b, k] > t0:
                t0, w0 = u[b, k], k
            if u[b + 1, k] > t1:
                t1, w1 = u[b + 1, k], k
            if u[b + 2, k] > t2:
                t2, w2 = u[b + 2, k], k
            if u[b + 3, k] > t3:
                t3, w3 = u[b + 3, k], k
        top[b], top[b + 1], top[b + 2], top[b + 3] = t0, t1, t2, t3
        winner[b], winner[b + 1], winner[b + 2], winner[b + 3] = w0, w1, w2, w3
        b += 4
    for r in range(b, n_rows):
        top[r] = u[r, 0]
        for k in range(1, n_units):
            if u[r, k] > top[r]:
                top[r] = u[r, k]
                winner[r] = k
    return top, winner


@njit
def row_sums(a):
    """``Σ_k a[b, k]`` of every row, each summed in unit order (the order of the twins'
    ``(summed)`` variables); (B, n) -> (B,)."""
    n_rows, n_units = a.shape
    totals = np.zeros(n_rows)
    b = 0
    while b + 4 <= n_rows:
        t0 = t1 = t2 = t3 = 0.0
        for k in range(n_units):
            t0 += a[b, k]
            t1 += a[b + 1, k]
            t2 += a[b + 2, k]
            t3 += a[b + 3, k]
        totals[b], totals[b + 1], totals[b + 2], totals[b + 3] = t0, t1, t2, t3
        b += 4
    for r in range(b, n_rows):
        for k in range(n_units):
            totals[r] += a[r, k]
    return totals


@njit
def soft_wta_exponentials_kernel(u, temperature):
    """The softmax's numerators ``exp((u − max u)/τ)`` row by row, and each row's winner.

    ``u`` (B, n) float64 -> ``e`` (B, n), ``winner`` (B,) int64 (the first argmax: the maximum
    with the lowest index on ties). The exponentials are taken in one vectorised call.
    """
    top, winner = row_max_winner(u)
    e = np.empty_like(u)
    for b in range(u.shape[0]):
        for k in range(u.shape[1]):
            e[b, k] = (u[b, k] - top[b]) / temperature
    exp_in_place(e)
    return e, winner


@njit
def soft_wta_winner_kernel(u, temperature):
    """Row-wise softmax of ``u / temperature`` and each row's winner (first argmax).

    ``u`` (B, n) float64 -> ``y`` (B, n), ``winner`` (B,) int64. Per row: the maximum (lowest
    index on ties), ``(u − max)/τ``, ``exp`` (vectorised, :func:`exp_in_place`), the sum over
    units in unit order, the division.
    """
    y, winner = soft_wta_exponentials_kernel(u, temperature)
    totals = row_sums(y)
    for b in range(y.shape[0]):
        for k in range(y.shape[1]):
            y[b, k] = y[b, k] / totals[b]
    return y, winner


@njit
def soft_wta_kernel(u, temperature):
    """Row-wise softmax of ``u / temperature``; ``u`` (B, n) float64 -> (B, n)."""
    return soft_wta_winner_kernel(u, temperature)[0]


@njit
def argmax_rows(u):
    """Index of the largest entry of each row, lowest index on ties; (B, n) -> (B,) int64."""
    n_rows, n_units = u.shape
    winner = np.zeros(n_rows, dtype=np.int64)
    for b in range(n_rows):
        best = 0
        for k in range(1, n_units):
            if u[b, k] > u[b, best]:
                best = k
        winner[b] = best
    return winner


@njit
def hard_wta_kernel(u):
    y = np.zeros_like(u)
    winner = argmax_rows(u)
    for b in range(u.shape[0]):
        y[b, winner[b]] = 1.0
    return y


@njit
def anti_hebbian_signs_kernel(u, s):
    """``+s`` at the argmax of ``u`` in each row, ``-s`` elsewhere."""
    y = -s
    winner = argmax_rows(u)
    for b in range(u.shape[0]):
        y[b, winner[b]] = s[b, winner[b]]
    return y


@njit
def _descending_order(row):
    # A stable sort on -u ranks equal values by unit index (the documented tie rule).
    return np.argsort(-row, kind="mergesort")


@njit
def k_wta_kernel(u, k, binary):
    y = np.zeros_like(u)
    for b in range(u.shape[0]):
        order = _descending_order(u[b])
        for r in range(k):
            y[b, order[r]] = 1.0 if binary else u[b, order[r]]
    return y


@njit
def ranked_wta_kernel(u, k, delta):
    y = np.zeros_like(u)
    for b in range(u.shape[0]):
        order = _descending_order(u[b])
        y[b, order[0]] = 1.0
        y[b, order[k - 1]] = -delta
    return y


# ------------------------------------------------------------------------------ validation
def check_pre_activation(u, name: str = "u") -> np.ndarray:
    """``u`` as a finite, non-empty float64 array of shape (batch, n_units)."""
    u = as_float_array(name, u, ndim=2)
    if u.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample (empty batch), got shape "
                         f"{u.shape}")
    if u.shape[1] == 0:
        raise ValueError(f"{name} must have at least one unit, got shape {u.shape}")
    return u


def check_k(k, n_units: int, *, low: int = 1, name: str = "k", units: str = "the columns of u"
            ) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {k!r}")
    if not low <= int(k) <= n_units:
        raise ValueError(f"{name} must lie in {low}..n_units={n_units} ({units}), got {k}")
    return int(k)


# ---------------------------------------------------------------------------------- public
def soft_wta(u, temperature: float = 1.0) -> np.ndarray:
    """Soft winner-take-all: row-wise ``softmax(u / temperature)``.

    Parameters
    ----------
    u : array (batch, n_units)
    temperature : float > 0 (τ; ``t_inv = 1/τ`` in the SoftHebb code). τ → 0 gives
        :func:`hard_wta`; scaling ``u`` by c equals using τ / c.

    Returns
    -------
    y : float64 array (batch, n_units), rows sum to 1.
    """
    u = check_pre_activation(u)
    return soft_wta_kernel(u, positive("temperature", finite_float("temperature", temperature)))


def hard_wta(u) -> np.ndarray:
    """One-hot of the row-wise argmax of ``u`` (ties: lowest index); (batch, n) -> (batch, n)."""
    return hard_wta_kernel(check_pre_activation(u))


def k_wta(u, k: int, *, binary: bool = False) -> np.ndarray:
    """The ``k`` largest units of each row keep ``u`` (or 1 if ``binary``), the rest get 0."""
    u = check_pre_activation(u)
    return k_wta_kernel(u, check_k(k, u.shape[1]), bool(binary))


def ranked_wta(u, k: int = 2, delta: float = 0.4) -> np.ndarray:
    """Krotov–Hopfield ranking: +1 for the top unit, ``-delta`` for the k-th, 0 otherwise.

    Defaults are Krotov & Hopfield's MNIST values (k = 2, Δ = 0.4).
    """
    u = check_pre_activation(u)
    k = check_k(k, u.shape[1], low=2)
    delta = float(as_float_array("delta", delta, ndim=0))
    return ranked_wta_kernel(u, k, delta)


def anti_hebbian_signs(u, s) -> np.ndarray:
    """ICLR-2023 anti-Hebbian losers: the winner (argmax of ``u``) keeps ``+s``, all others ``-s``.

    ``s`` is usually ``soft_wta(u, τ)``; shapes (batch, n_units).
    """
    u = check_pre_activation(u)
    s = check_pre_activation(s, "s")
    if s.shape != u.shape:
        raise ValueError(f"s must have the shape of u {u.shape}, got {s.shape}")
    return anti_hebbian_signs_kernel(u, s)


def triangle(u, power: float = 1.0, *, axis: int = -1) -> np.ndarray:
    """Triangle activation ``ReLU(u - mean(u, axis)) ** power`` (Coates et al. 2011).

    ``axis`` is the unit axis: -1 for dense ``(batch, n)``, 1 for conv ``(B, C, H, W)``.
    The SoftHebb network uses it in the forward path only, never for plasticity.
    """
    u = as_float_array("u", u)
    if u.ndim == 0 or u.size == 0:
        raise ValueError(f"u must be a non-empty array, got shape {u.shape}")
    power = positive("power", finite_float("power", power))
    if isinstance(axis, bool | np.bool_) or not isinstance(axis, int | np.integer) \
            or not -u.ndim <= axis < u.ndim:
        raise ValueError(f"axis must be an int in [-{u.ndim}, {u.ndim}) for u of shape "
                         f"{u.shape}, got {axis!r}")
    with np.errstate(over="ignore", invalid="ignore"):   # reported just below
        centred = u - u.mean(axis=axis, keepdims=True)
        out = np.maximum(centred, 0.0) ** power
    return check_result_finite("triangle", out)
