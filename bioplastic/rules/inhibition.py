"""Lateral inhibition as activations: competition maps pre-activations ``u`` to post factors ``y``.

Every function here takes ``u`` of shape ``(batch, n_units)`` (one row per sample; for a conv
layer one row per (sample, position), see :func:`bioplastic.rules.unfold_patches`) and returns
an array of the same shape. They compose with any rule of :mod:`bioplastic.rules.hebbian`:
``oja_dw(x, soft_wta(u, 0.5), w, u=u)`` is SoftHebb, ``oja_dw(x, hard_wta(u), w, u=u)`` is
competitive (hard-WTA) learning, ``oja_dw(x, ranked_wta(u, 2, 0.4), w, u=u)`` is
Krotov–Hopfield with p = 2. There is no subclass per combination.

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
  The sum over units is sequential in unit order, which the Brian2 twin reproduces.
* ``ranked_wta`` needs ``2 <= k <= n_units`` (k = 1 would give the top unit both +1 and -Δ).

References: Moraitis et al. 2022 (soft WTA), Journé et al. ICLR 2023 (anti-Hebbian losers,
Triangle), Krotov & Hopfield PNAS 2019 (ranking), Coates, Lee & Ng AISTATS 2011 (Triangle).
Specification: shared/spec/soft_hebb_and_inhibition.md §6.
"""

from __future__ import annotations

import numpy as np

from .._jit import njit
from .._validate import as_float_array, positive

__all__ = ["soft_wta", "hard_wta", "k_wta", "ranked_wta", "anti_hebbian_signs", "triangle",
           "check_pre_activation", "check_k"]


# --------------------------------------------------------------------------------- kernels
@njit
def soft_wta_kernel(u, temperature):
    """Row-wise softmax of ``u / temperature``; ``u`` (B, n) float64 -> (B, n)."""
    n_rows, n_units = u.shape
    y = np.empty_like(u)
    for b in range(n_rows):
        top = u[b, 0]
        for k in range(1, n_units):
            if u[b, k] > top:
                top = u[b, k]
        total = 0.0
        for k in range(n_units):
            e = np.exp((u[b, k] - top) / temperature)
            y[b, k] = e
            total += e
        for k in range(n_units):
            y[b, k] = y[b, k] / total
    return y


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


def check_k(k, n_units: int, *, low: int = 1, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {k!r}")
    if not low <= int(k) <= n_units:
        raise ValueError(f"{name} must lie in {low}..n_units={n_units}, got {k}")
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
    return soft_wta_kernel(u, positive("temperature", temperature))


def hard_wta(u) -> np.ndarray:
    """One-hot of the row-wise argmax of ``u`` (ties: lowest index); (batch, n) -> (batch, n)."""
    return hard_wta_kernel(check_pre_activation(u))


def k_wta(u, k: int, *, binary: bool = False) -> np.ndarray:
    """The ``k`` largest units of each row keep ``u`` (or 1 if ``binary``), the rest get 0."""
    u = check_pre_activation(u)
    return k_wta_kernel(u, check_k(k, u.shape[1]), bool(binary))


def ranked_wta(u, k: int = 2, delta: float = 0.4) -> np.ndarray:
    """Krotov–Hopfield ranking: +1 for the top unit, ``-delta`` for the k-th, 0 otherwise.

    Defaults are Krotov & Hopfield's MNIST values (k = 2, Δ = 0.4; spec §5.1).
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
    power = positive("power", power)
    centred = u - u.mean(axis=axis, keepdims=True)
    return np.maximum(centred, 0.0) ** power
