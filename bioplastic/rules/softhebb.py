"""SoftHebb: Hebbian learning in a soft winner-take-all layer (2022) and its ICLR-2023 variant.

Equations (unit ``k``, input ``x``, weights ``w_k`` = row k of ``w`` (n_post, n_pre))::

    u_k  = w_k · x (+ b_k)                       pre-activation, computed by the caller
    s_k  = exp(u_k/τ) / Σ_l exp(u_l/τ)           soft WTA (divisive inhibition)
    y_k  = s_k                                   2022 rule (``anti_hebbian=False``)
    y_k  = +s_k if k = argmax u else −s_k        ICLR 2023 mode 0 (``anti_hebbian=True``)
    Δw_k = Σ_batch y_k (x − u_k w_k)             dw, batch (and conv positions) SUMMED
    Δb_k = (Σ_batch s_k − N e^{b_k/τ}) / e^{b_k/τ}    bias rule, N = batch (× positions)

The fixed point of the weight rule has ``‖w_k‖ = 1``; that of the bias rule has
``e^{b_k/τ}`` = the mean of ``s_k`` (the prior firing probability). ``dw`` is **summed** over
the batch (as in the reference code; with max normalisation the scale is irrelevant — divide
the learning rate by the batch size for a mean). The rest of the ICLR recipe — max-normalised
``dw``, the weight-norm-dependent rate ``η_k = η₀(|‖w_k‖ − 1| + 1e-10)^power_lr`` — is
:func:`bioplastic.rules.apply_update` with ``max_normalise=True, power_lr=0.5``.

**Schedule** of one plasticity step: forward ``u = x wᵀ + b`` → soft WTA → (signs) → ``dw``
→ ``apply_update`` (rate from the norms *before* this update).

Conv layers: :func:`soft_hebb_conv_dw` unfolds the patches (:func:`unfold_patches`) and runs
the same dense computation on them — the soft WTA runs across the O channels at each position,
and the batch and the positions are summed. It works through blocks of whole samples so that
a block's patches, ``u`` and ``y`` stay in the cache; the decay sums ``Σ y u`` continue over the
blocks in row order (the same sums as one block), the Hebbian sums ``yᵀx`` are added block by
block (BLAS sums in its own order anyway: float64 round-off).

Speed: the softmax's exponentials are NumPy's vectorised ``exp`` (called from the kernel), the
softmax, the signs and the decay sums are one sweep (:func:`soft_hebb_factors_into_kernel`), and
``yᵀx`` is NumPy's BLAS.

Choices where the papers are silent: ties of the argmax go to the lowest index; the softmax
subtracts the row maximum first (overflow guard); the bias rule's own max normalisation (in
the reference code) is again ``apply_update(max_normalise=True)``, not built in.

References: Moraitis, Toichkin, Journé, Chua & Guo, Neuromorph. Comput. Eng. 2:044017 (2022),
arXiv 2107.05747; Journé, Garcia Rodriguez, Guo & Moraitis, ICLR 2023, arXiv 2209.11883.
Guide: ``docs/softhebb.md``. Twin: :mod:`bioplastic.reference.rate_rules`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._jit import njit
from .._validate import as_float_array, check_finite, finite_float, positive
from .apply import check_result_finite
from .hebbian import (
    check_rule_inputs,
    decay_dw_checked_kernel,
    decay_dw_kernel,
    subtract_decay_kernel,
)
from .inhibition import (
    check_pre_activation,
    row_sums,
    soft_wta_exponentials_kernel,
    soft_wta_kernel,
)
from .unfold import gather_patches, pad_for_unfold

__all__ = ["SoftHebbParams", "soft_hebb_dw", "soft_hebb_conv_dw", "soft_hebb_post",
           "soft_hebb_bias_db", "soft_hebb_bias_init"]


class SoftHebbParams(NamedTuple):
    """The SoftHebb rule; the defaults are the ICLR 2023 rule, as in ``sklearn.SoftHebb``.

    ``anti_hebbian=False`` gives the 2022 rule (every unit Hebbian with its softmax share).
    """

    temperature: float = 1.0     # τ of the soft WTA (t_inv = 1/τ in the reference code), > 0
    anti_hebbian: bool = True    # ICLR 2023 mode 0: losers get −softmax (False: the 2022 rule)



DEFAULT_SOFT_HEBB = SoftHebbParams()

# --------------------------------------------------------------------------------- kernels
@njit
def soft_hebb_post_kernel(u, temperature, anti_hebbian):
    """Post factor ``y`` (B, n_post) from pre-activations ``u``."""
    return soft_hebb_factors_kernel(u, temperature, anti_hebbian)[0]


@njit
def soft_hebb_factors_kernel(u, temperature, anti_hebbian):
    """Post factor ``y`` (B, n_post) and decay coefficients ``d_k = Σ_b y_bk u_bk`` (n_post,)."""
    d = np.zeros(u.shape[1])
    return soft_hebb_factors_into_kernel(u, temperature, anti_hebbian, d), d


@njit
def soft_hebb_factors_into_kernel(u, temperature, anti_hebbian, d):
    """Post factor ``y`` of ``u`` (B, n_post); adds ``Σ_b y_bk u_bk`` to ``d`` (n_post,) in place.

    One sweep after the exponentials: normalise, sign, accumulate ``d`` in sample order (as
    :func:`bioplastic.rules.hebbian.column_products_kernel`; continuing ``d`` over consecutive
    blocks of rows gives the same sums as one call on all rows).
    """
    y, winner = soft_wta_exponentials_kernel(u, temperature)
    totals = row_sums(y)
    n_rows, n_units = y.shape
    for b in range(n_rows):
        total = totals[b]
        if anti_hebbian:
            for k in range(n_units):
                y[b, k] = -(y[b, k] / total)
            y[b, winner[b]] = -y[b, winner[b]]
        else:
            for k in range(n_units):
                y[b, k] = y[b, k] / total
        for k in range(n_units):
            d[k] += y[b, k] * u[b, k]
    return y


@njit
def soft_hebb_dw_kernel(x, u, w, temperature, anti_hebbian):
    """Dense SoftHebb ``dw`` (n_post, n_pre): ``yᵀx`` by BLAS, decay ``Σ_b y u`` in order."""
    y, d = soft_hebb_factors_kernel(u, temperature, anti_hebbian)
    return decay_dw_kernel(x, y, d, w)


@njit
def soft_hebb_bias_db_kernel(u, b, temperature):
    s = soft_wta_kernel(u, temperature)
    n_rows, n_units = s.shape
    db = np.empty(n_units)
    for k in range(n_units):
        total = 0.0
        for r in range(n_rows):
            total += s[r, k]
        prior = np.exp(b[k] / temperature)
        db[k] = (total - n_rows * prior) / prior
    return db


# ------------------------------------------------------------------------------ validation
def _check_params(params: SoftHebbParams) -> tuple[float, bool]:
    if not isinstance(params, SoftHebbParams):
        raise TypeError(f"params must be SoftHebbParams, got {type(params).__name__}")
    if not isinstance(params.anti_hebbian, bool | np.bool_):
        raise TypeError(f"anti_hebbian must be a bool, got {params.anti_hebbian!r}")
    temperature = positive("temperature", finite_float("temperature", params.temperature))
    return temperature, bool(params.anti_hebbian)


# ---------------------------------------------------------------------------------- public
def soft_hebb_post(u, params: SoftHebbParams = DEFAULT_SOFT_HEBB) -> np.ndarray:
    """The post factor ``y`` SoftHebb uses: soft WTA (with anti-Hebbian signs if asked).

    ``u`` (batch, n_post) -> ``y`` (batch, n_post).
    """
    temperature, anti = _check_params(params)
    return soft_hebb_post_kernel(check_pre_activation(u), temperature, anti)


def soft_hebb_dw(x, u, w, params: SoftHebbParams = DEFAULT_SOFT_HEBB) -> np.ndarray:
    """SoftHebb weight change ``Δw_k = Σ_b y_bk (x_b − u_bk w_k)``, summed over the batch.

    Parameters
    ----------
    x : array (batch, n_pre) — presynaptic input
    u : array (batch, n_post) — pre-activations ``x @ w.T (+ bias)``
    w : array (n_post, n_pre) — current weights (not modified)
    params : SoftHebbParams

    Returns
    -------
    dw : float64 (n_post, n_pre). Apply it with :func:`bioplastic.rules.apply_update`.
    """
    temperature, anti = _check_params(params)
    x, u, w = check_rule_inputs(x, u, w, y_name="u", w_finite=False)
    y, d = soft_hebb_factors_kernel(u, temperature, anti)
    dw, w_finite = decay_dw_checked_kernel(x, y, d, w)      # = soft_hebb_dw_kernel
    if not w_finite:
        check_finite("w", w)                                # raises the usual message
    return check_result_finite("soft_hebb_dw", dw)


def soft_hebb_conv_dw(x, w, params: SoftHebbParams = DEFAULT_SOFT_HEBB, *, stride=1, padding=0,
                      dilation=1, padding_mode: str = "zeros", bias=None) -> np.ndarray:
    """SoftHebb for a conv layer: soft WTA across the O channels at each position.

    Parameters
    ----------
    x : array (B, C, H, W)
    w : array (O, C, kh, kw)
    params : SoftHebbParams
    stride, padding, dilation : int or (int, int); padding_mode : 'zeros' or 'reflect'
    bias : optional array (O,), added to the pre-activations

    Returns
    -------
    dw : float64 (O, C, kh, kw), summed over the batch and all positions.
    """
    temperature, anti = _check_params(params)
    w = as_float_array("w", w, ndim=4)
    if 0 in w.shape:
        raise ValueError(f"w must have shape (O, C, kh, kw) with every size >= 1, got {w.shape}")
    x = as_float_array("x", x, ndim=4)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but w expects {w.shape[1]} (w is "
                         f"(O, C, kh, kw) = {w.shape})")
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample (empty batch), got shape {x.shape}")
    if bias is not None:
        bias = as_float_array("bias", bias, ndim=1)
        if bias.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},), got {bias.shape}")
    padded, geometry = pad_for_unfold(x, w.shape[2:], stride=stride, padding=padding,
                                      dilation=dilation, padding_mode=padding_mode)
    w2d = w.reshape(w.shape[0], -1)                     # (O, C·kh·kw)
    hebb = np.zeros_like(w2d)
    decay = np.zeros(w.shape[0])
    # Blocks of whole samples, so the patches, u and y of a block stay in the cache (as one
    # block, the memory traffic of the full (B·Ho·Wo, C·kh·kw) patches, u and y cost more than
    # the arithmetic). ``decay`` continues over the blocks in row order: the same sums as one
    # block.
    per_block = max(1, CONV_BLOCK_ROWS // (geometry.ho * geometry.wo))
    for start in range(0, x.shape[0], per_block):
        patches = gather_patches(padded[start:start + per_block], geometry)  # (rows, C·kh·kw)
        u = patches @ w2d.T                             # (rows, O)
        if bias is not None:
            u += bias
        y = soft_hebb_factors_into_kernel(u, temperature, anti, decay)
        hebb += y.T @ patches
    dw = subtract_decay_kernel(hebb, decay, w2d).reshape(w.shape)
    return check_result_finite("soft_hebb_conv_dw", dw)


#: Rows of unfolded patches per block of :func:`soft_hebb_conv_dw` (rounded to whole samples;
#: 2048 rows × 27 columns of a 3×3 RGB conv are 0.44 MB: measured fastest of 1024–16384,
#: 2.8x faster than one block on 128 × 3 × 32 × 32 inputs).
CONV_BLOCK_ROWS = 2048


def soft_hebb_bias_db(u, b, params: SoftHebbParams = DEFAULT_SOFT_HEBB) -> np.ndarray:
    """Bias change ``Δb_k = (Σ_n s_nk − N e^{b_k/τ}) / e^{b_k/τ}`` with ``s = softmax(u/τ)``.

    ``u`` (N, n_post) — pre-activations *including* the bias; ``b`` (n_post,). Returns ``db``
    (n_post,); zero when ``e^{b_k/τ}`` equals the mean of ``s_k``.

    Finite range: ``e^{b_k/τ}`` must be a positive finite float64, so ``b/τ`` must lie in
    ``[-745, 709]`` (``ValueError`` otherwise); near those ends ``db`` itself can overflow,
    which raises :class:`~bioplastic.rules.DivergenceError`.
    """
    temperature, _ = _check_params(params)
    u = check_pre_activation(u)
    b = as_float_array("b", b, ndim=1)
    if b.shape != (u.shape[1],):
        raise ValueError(f"b must have shape ({u.shape[1]},) (one per unit of u), got {b.shape}")
    ratio = b / temperature
    if np.any(ratio < BIAS_RATIO_RANGE[0]) or np.any(ratio > BIAS_RATIO_RANGE[1]):
        raise ValueError(f"b / temperature must lie in {list(BIAS_RATIO_RANGE)} so that "
                         f"exp(b/τ) is positive and finite, got values in "
                         f"[{ratio.min():.4g}, {ratio.max():.4g}]")
    return check_result_finite("soft_hebb_bias_db", soft_hebb_bias_db_kernel(u, b, temperature))


#: ``b/τ`` for which ``exp(b/τ)`` is a positive finite float64 (exp underflows to 0 below
#: ≈ -745.13 and overflows above ≈ 709.78; the ends are rounded inwards).
BIAS_RATIO_RANGE = (-745.0, 709.0)


def soft_hebb_bias_init(n_units: int, params: SoftHebbParams = DEFAULT_SOFT_HEBB) -> np.ndarray:
    """Uniform priors: ``b_k = τ ln(1/K)``, so ``e^{b_k/τ} = 1/K``; shape (n_units,)."""
    if isinstance(n_units, bool) or not isinstance(n_units, int | np.integer) or n_units < 1:
        raise ValueError(f"n_units must be a positive integer, got {n_units!r}")
    temperature, _ = _check_params(params)
    return np.full(int(n_units), temperature * np.log(1.0 / n_units))
