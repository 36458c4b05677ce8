"""Hebbian rules in torch ops, written once: used by :mod:`bioplastic.nn.hebbian` and
:mod:`bioplastic.tta.nhl`.

Torch twins of the Numba rules (same ``*Params`` NamedTuples, same formulas; read
:mod:`bioplastic.rules.softhebb` and :mod:`bioplastic.rules.apply` for the equations and the
schedule), so they run on any device and, in float64, equal the kernels on the same batch to
round-off (the softmax and the matrix products sum in another order):

* :func:`soft_hebb_post` — soft WTA ``y = softmax(u/τ)``, with the anti-Hebbian sign
  (:func:`anti_hebbian`: the winner keeps ``+s``, the losers get ``−s``) when asked;
* :func:`soft_hebb_dw` — dense SoftHebb ``Δw_k = Σ_b y_bk (x_b − u_bk w_k)`` (batch summed);
* :func:`soft_hebb_conv_dw` — the conv rule: the dense rule on unfolded patches
  (:func:`conv_rows`), batch and positions summed;
* :func:`soft_hebb_bias_db`, :func:`krotov_hopfield_dw`;
* :func:`apply_update` — learning rate (optionally norm-dependent), max normalisation,
  bounds, row norm and the divergence check of :func:`bioplastic.rules.apply_update`, with its
  input checks (:func:`check_update_params`); :func:`max_normalise` with the same
  ``MAX_NORM_GUARD``.

Constants and the conv output size come from the core (``bioplastic.rules``): one definition.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ...rules.apply import MAX_NORM_GUARD, NORM_RATE_OFFSET, DivergenceError, UpdateParams
from ...rules.hebbian import KrotovParams
from ...rules.softhebb import SoftHebbParams
from ...rules.unfold import PADDING_MODES, conv_output_size

__all__ = ["anti_hebbian", "soft_hebb_post", "decay_dw", "soft_hebb_dw", "soft_hebb_bias_db",
           "krotov_hopfield_dw", "conv_rows", "conv_positions", "soft_hebb_conv_dw",
           "max_normalise", "check_update_params", "apply_update", "SOFTHEBB_RULE",
           "SOFTHEBB_UPDATE"]

#: The SoftHebb (ICLR 2023) rule and update — the defaults of :class:`bioplastic.sklearn.SoftHebb`
#: (``anti_hebbian=True``; ``learning_rate=0.05, max_normalise=True, power_lr=0.5``) and of
#: :class:`bioplastic.nn.HebbianLinear` / :class:`~bioplastic.nn.HebbianConv2d`.
SOFTHEBB_RULE = SoftHebbParams(temperature=1.0, anti_hebbian=True)
SOFTHEBB_UPDATE = UpdateParams(learning_rate=0.05, max_normalise=True, power_lr=0.5)


# ------------------------------------------------------------------------- post factors
def anti_hebbian(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """ICLR-2023 signs: ``+s`` at each row's first maximum of ``u`` (as the kernel), else ``−s``.

    ``u``, ``s``: (N, n_post).
    """
    winner = torch.argmax(u, dim=1, keepdim=True)
    return (-s).scatter(1, winner, s.gather(1, winner))


def soft_hebb_post(u: torch.Tensor, params: SoftHebbParams) -> torch.Tensor:
    """Post factor ``y`` (N, n_post) of pre-activations ``u`` (torch twin of
    :func:`bioplastic.rules.soft_hebb_post`)."""
    s = torch.softmax(u / params.temperature, dim=1)
    return anti_hebbian(u, s) if params.anti_hebbian else s


def decay_dw(x: torch.Tensor, y: torch.Tensor, u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``yᵀx − (Σ_b y u)[:, None] w``: x (N, n_pre), y and u (N, n_post), w (n_post, n_pre)."""
    return y.T @ x - (y * u).sum(dim=0)[:, None] * w


def soft_hebb_dw(x: torch.Tensor, u: torch.Tensor, w: torch.Tensor,
                 params: SoftHebbParams) -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.soft_hebb_dw` (batch summed), (n_post, n_pre)."""
    return decay_dw(x, soft_hebb_post(u, params), u, w)


def soft_hebb_bias_db(u: torch.Tensor, b: torch.Tensor, params: SoftHebbParams) -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.soft_hebb_bias_db`; ``u`` includes the bias."""
    s = torch.softmax(u / params.temperature, dim=1)
    prior = torch.exp(b / params.temperature)
    return (s.sum(dim=0) - u.shape[0] * prior) / prior


def krotov_hopfield_dw(x: torch.Tensor, w: torch.Tensor, params: KrotovParams) -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.krotov_hopfield_dw`."""
    p = float(params.p)
    current = x @ (w if p == 2.0 else torch.sign(w) * w.abs() ** (p - 1.0)).T
    order = torch.sort(current, dim=1, descending=True, stable=True).indices
    g = torch.zeros_like(current)
    g.scatter_(1, order[:, :1], 1.0)
    g.scatter_(1, order[:, params.k - 1:params.k], -float(params.delta))
    return decay_dw(x, g, current, w)


# --------------------------------------------------------------------------------- conv
def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, tuple | list) else (value, value)


def conv_rows(x: torch.Tensor, kernel_size, *, stride=1, padding=0, dilation=1,
              padding_mode: str = "zeros") -> torch.Tensor:
    """Patches of ``x`` (B, C, H, W) as rows ``(B·Ho·Wo, C·kh·kw)``: sample-major, then
    positions — the order of :func:`bioplastic.rules.unfold_patches` and ``w.reshape(O, -1)``."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {sorted(PADDING_MODES)}, got "
                         f"{padding_mode!r}")
    ph, pw = _pair(padding)
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph), mode=PADDING_MODES[padding_mode])
    cols = F.unfold(x, _pair(kernel_size), dilation=_pair(dilation), stride=_pair(stride))
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])     # (B, C·kh·kw, L) -> rows


def conv_positions(height: int, width: int, kernel_size, *, stride=1, padding=0,
                   dilation=1) -> int:
    """Output positions ``Ho·Wo`` of a conv (the core's :func:`conv_output_size`)."""
    sizes = [conv_output_size(size, k, s, p, d) for size, k, s, p, d in
             zip((height, width), _pair(kernel_size), _pair(stride), _pair(padding),
                 _pair(dilation), strict=True)]
    return sizes[0] * sizes[1]


def soft_hebb_conv_dw(x: torch.Tensor, w: torch.Tensor, params: SoftHebbParams, *, stride=1,
                      padding=0, dilation=1, padding_mode: str = "zeros",
                      bias: torch.Tensor | None = None) -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.soft_hebb_conv_dw`: soft WTA across the O
    channels at each position, batch and positions summed.

    ``x`` (B, C, H, W), ``w`` (O, C, kh, kw), optional ``bias`` (O,) added to ``u`` →
    ``dw`` (O, C, kh, kw) in ``w``'s dtype.
    """
    for name, t in (("x", x), ("w", w)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4 or not t.is_floating_point():
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a floating-point 4-D tensor, got {got}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but w expects {w.shape[1]}")
    rows = conv_rows(x.to(w.dtype), w.shape[2:], stride=stride, padding=padding,
                     dilation=dilation, padding_mode=padding_mode)
    w2d = w.reshape(w.shape[0], -1)
    u = rows @ w2d.T                                            # (B·L, O)
    if bias is not None:
        u = u + bias
    return soft_hebb_dw(rows, u, w2d, params).reshape(w.shape)


# ------------------------------------------------------------------------------- update
def max_normalise(dw: torch.Tensor) -> torch.Tensor:
    """``dw / (max|dw| + MAX_NORM_GUARD)`` (the core's guard)."""
    return dw / (dw.abs().max() + MAX_NORM_GUARD)


def check_update_params(params: UpdateParams, n_rows: int | None = None) -> UpdateParams:
    """The checks of :func:`bioplastic.rules.apply_update`: a clear ``ValueError`` naming the
    field for a negative or non-finite learning rate or ``power_lr``, ``w_min > w_max``, NaN
    bounds, a non-positive ``norm_p`` or a negative ``row_norm``."""
    if not isinstance(params, UpdateParams):
        raise TypeError(f"update must be bioplastic.rules.UpdateParams, got "
                        f"{type(params).__name__}")
    rate = np.asarray(params.learning_rate, dtype=np.float64)
    if not (np.all(np.isfinite(rate)) and np.all(rate >= 0)):
        raise ValueError(f"learning_rate must be finite and >= 0, got {params.learning_rate!r}")
    if rate.ndim > 1 or (rate.ndim == 1 and n_rows is not None and rate.shape != (n_rows,)):
        raise ValueError(f"learning_rate must be a scalar or have shape ({n_rows},), got "
                         f"{rate.shape}")
    if not (math.isfinite(params.power_lr) and params.power_lr >= 0):
        raise ValueError(f"power_lr must be finite and >= 0, got {params.power_lr!r}")
    if not (params.norm_p > 0 and math.isfinite(params.norm_p)):
        raise ValueError(f"norm_p must be finite and > 0, got {params.norm_p!r}")
    if math.isnan(params.w_min) or math.isnan(params.w_max):
        raise ValueError(f"w_min and w_max must not be NaN, got {params.w_min!r}, "
                         f"{params.w_max!r}")
    if params.w_min > params.w_max:
        raise ValueError(f"w_min ({params.w_min}) must be <= w_max ({params.w_max})")
    if not (params.row_norm >= 0 and math.isfinite(params.row_norm)):
        raise ValueError(f"row_norm must be finite and >= 0 (0: off), got {params.row_norm!r}")
    return params


def _row_shape(w: torch.Tensor) -> tuple[int, ...]:
    return (-1,) + (1,) * (w.ndim - 1)


def apply_update(w: torch.Tensor, dw: torch.Tensor, params: UpdateParams) -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.apply_update`; returns the new weights (``w`` is
    not modified). Raises :class:`~bioplastic.rules.DivergenceError` on a non-finite ``dw`` or
    result, ``ValueError`` on bad ``params`` (:func:`check_update_params`)."""
    check_update_params(params, w.shape[0] if w.ndim else None)
    if not torch.isfinite(dw).all():
        raise DivergenceError("dw contains non-finite values: the update diverged")
    if params.max_normalise:
        dw = max_normalise(dw)
    rate = torch.as_tensor(params.learning_rate, dtype=w.dtype, device=w.device)
    if params.power_lr > 0:
        norms = torch.linalg.vector_norm(w.reshape(w.shape[0], -1), ord=params.norm_p, dim=1)
        rate = rate * ((norms - 1.0).abs() + NORM_RATE_OFFSET) ** params.power_lr
    if rate.ndim:
        rate = rate.reshape(_row_shape(w))
    new = (w + rate * dw).clamp(params.w_min, params.w_max)
    if not torch.isfinite(new).all():
        raise DivergenceError("the update produced non-finite weights: the run diverged "
                              "(lower the learning rate or normalise the update)")
    if params.row_norm:
        norms = torch.linalg.vector_norm(new.reshape(new.shape[0], -1), ord=params.norm_p,
                                         dim=1)
        norms = torch.where(norms > 0, norms, torch.ones_like(norms))
        new = new * (params.row_norm / norms).reshape(_row_shape(w))
    return new
