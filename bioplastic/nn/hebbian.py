"""Hebbian layers as torch modules: :class:`HebbianLinear` and :class:`HebbianConv2d`.

``forward`` is a plain linear / conv map returning the pre-activations ``u`` (no plasticity,
no hidden state). Learning is an explicit call, ``layer.plasticity_step(x)``, which computes the
local rule on the batch ``x`` under ``torch.no_grad`` and applies it in place to the module's
parameters; ``layer.delta(x)`` returns the same ``dw`` without applying it. The rules are the
ones of :mod:`bioplastic.rules` re-written in torch ops (so they run on any device), and the
tests check that in float64 they equal the Numba kernels on the same batch (to round-off: the
softmax and the matrix products sum in a different order):

* ``rule=SoftHebbParams(...)``: SoftHebb (:func:`bioplastic.rules.soft_hebb_dw`; with
  ``bias=True`` also the bias rule :func:`bioplastic.rules.soft_hebb_bias_db`);
* ``rule=KrotovParams(...)``: Krotov–Hopfield (:func:`bioplastic.rules.krotov_hopfield_dw`);

and ``update=UpdateParams(...)`` is :func:`bioplastic.rules.apply_update` (rate, max
normalisation, norm-dependent rate, bounds, row norm). Conv layers use unfolded patches with the
batch and positions summed, exactly like :func:`bioplastic.rules.soft_hebb_conv_dw`.

Choices: weights start Gaussian with std ``radius/√fan_in`` (E‖w_k‖ ≈ radius; SoftHebb uses 10
for MLPs, 25 for CNNs); the bias starts at ``τ ln(1/K)`` (uniform priors) and learns with rate
``η·bias_lr_factor`` (SoftHebb: τ for dense, 0.1τ for conv layers), max-normalised like ``dw``
when ``update.max_normalise``. A non-finite update raises
:class:`bioplastic.rules.DivergenceError`, leaving the parameters unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..rules.apply import (
    MAX_NORM_GUARD,
    NORM_RATE_OFFSET,
    DivergenceError,
    UpdateParams,
)
from ..rules.hebbian import KrotovParams
from ..rules.softhebb import SoftHebbParams
from ..rules.unfold import PADDING_MODES

__all__ = ["HebbianLinear", "HebbianConv2d", "soft_hebb_dw_torch", "krotov_hopfield_dw_torch",
           "apply_update_torch"]


# ------------------------------------------------------------------------- functional torch
def _anti_hebbian(u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    winner = torch.argmax(u, dim=1, keepdim=True)       # first maximum, as the kernel
    return (-s).scatter(1, winner, s.gather(1, winner))


def _decay_dw(x, y, u, w):
    """``yᵀx − (Σ_b y u)[:, None] w``: (B, n_pre), (B, n_post) x2, (n_post, n_pre)."""
    return y.T @ x - (y * u).sum(dim=0)[:, None] * w


def soft_hebb_dw_torch(x, u, w, params: SoftHebbParams) -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.soft_hebb_dw` (batch summed)."""
    s = torch.softmax(u / params.temperature, dim=1)
    y = _anti_hebbian(u, s) if params.anti_hebbian else s
    return _decay_dw(x, y, u, w)


def soft_hebb_bias_db_torch(u, b, params: SoftHebbParams) -> torch.Tensor:
    s = torch.softmax(u / params.temperature, dim=1)
    prior = torch.exp(b / params.temperature)
    return (s.sum(dim=0) - u.shape[0] * prior) / prior


def krotov_hopfield_dw_torch(x, w, params: KrotovParams) -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.krotov_hopfield_dw`."""
    p = float(params.p)
    current = x @ (w if p == 2.0 else torch.sign(w) * w.abs() ** (p - 1.0)).T
    order = torch.sort(current, dim=1, descending=True, stable=True).indices
    g = torch.zeros_like(current)
    g.scatter_(1, order[:, :1], 1.0)
    g.scatter_(1, order[:, params.k - 1:params.k], -float(params.delta))
    return _decay_dw(x, g, current, w)


def apply_update_torch(w: torch.Tensor, dw: torch.Tensor, params: UpdateParams) -> torch.Tensor:
    """Torch twin of :func:`bioplastic.rules.apply_update`; returns the new weights."""
    if not torch.isfinite(dw).all():
        raise DivergenceError("dw contains non-finite values: the update diverged")
    if params.max_normalise:
        dw = dw / (dw.abs().max() + MAX_NORM_GUARD)
    rate = torch.as_tensor(params.learning_rate, dtype=w.dtype, device=w.device)
    if params.power_lr > 0:
        norms = torch.linalg.vector_norm(w.reshape(w.shape[0], -1), ord=params.norm_p, dim=1)
        rate = rate * ((norms - 1.0).abs() + NORM_RATE_OFFSET) ** params.power_lr
    if rate.ndim:
        rate = rate.reshape((-1,) + (1,) * (w.ndim - 1))
    new = (w + rate * dw).clamp(params.w_min, params.w_max)
    if not torch.isfinite(new).all():
        raise DivergenceError("the update produced non-finite weights: the run diverged "
                              "(lower the learning rate or normalise the update)")
    if params.row_norm:
        norms = torch.linalg.vector_norm(new.reshape(new.shape[0], -1), ord=params.norm_p,
                                         dim=1)
        norms = torch.where(norms > 0, norms, torch.ones_like(norms))
        new = new * (params.row_norm / norms).reshape((-1,) + (1,) * (w.ndim - 1))
    return new


# ------------------------------------------------------------------------------- modules
def _check_rule(rule, n_units: int):
    if isinstance(rule, SoftHebbParams):
        if not rule.temperature > 0 or not math.isfinite(rule.temperature):
            raise ValueError(f"temperature must be finite and > 0, got {rule.temperature!r}")
    elif isinstance(rule, KrotovParams):
        if not 2 <= int(rule.k) <= n_units:
            raise ValueError(f"k must lie in 2..n_units={n_units}, got {rule.k}")
    else:
        raise TypeError(f"rule must be SoftHebbParams or KrotovParams, got {type(rule).__name__}")
    return rule


class _HebbianMixin:
    """Shared plasticity of the dense and conv layers (they differ only in how rows are made)."""

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _dense_rule(self, rows: torch.Tensor):
        """(dw2d, db or None) for input rows (N, fan_in)."""
        w2d = self.weight.reshape(self.weight.shape[0], -1)
        if isinstance(self.rule, KrotovParams):
            return krotov_hopfield_dw_torch(rows, w2d, self.rule), None
        u = rows @ w2d.T
        if self.bias is not None:
            u = u + self.bias
        db = soft_hebb_bias_db_torch(u, self.bias, self.rule) if self.bias is not None else None
        return soft_hebb_dw_torch(rows, u, w2d, self.rule), db

    @torch.no_grad()
    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The rule's ``dw`` for batch ``x`` (shape of ``weight``); nothing is changed."""
        return self._dense_rule(self._rows(x))[0].reshape(self.weight.shape)

    @torch.no_grad()
    def plasticity_step(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the rule on batch ``x`` and apply it to ``weight`` (and ``bias``).

        Returns the raw ``dw`` (before learning rate and normalisation).
        """
        dw2d, db = self._dense_rule(self._rows(x))
        dw = dw2d.reshape(self.weight.shape)
        new_w = apply_update_torch(self.weight, dw, self.update)
        new_b = None
        if db is not None:
            bias_update = UpdateParams(self.update.learning_rate * self.bias_lr_factor,
                                       self.update.max_normalise)
            new_b = apply_update_torch(self.bias, db, bias_update)
        self.weight.copy_(new_w)            # only after every check passed
        if new_b is not None:
            self.bias.copy_(new_b)
        return dw

    @torch.no_grad()
    def local_grad_(self, x: torch.Tensor) -> None:
        """Store ``-dw`` (and ``-db``) in ``.grad``, so any torch optimiser can apply the rule:
        one ``SGD(lr=η)`` step then equals ``weight += η·dw``."""
        dw2d, db = self._dense_rule(self._rows(x))
        self.weight.grad = -dw2d.reshape(self.weight.shape)
        if db is not None:
            self.bias.grad = -db

    def _init_parameters(self, fan_in: int, radius: float, bias: bool):
        with torch.no_grad():
            self.weight.normal_(0.0, radius / math.sqrt(fan_in))
        if bias:
            if not isinstance(self.rule, SoftHebbParams):
                raise ValueError("bias=True needs the SoftHebb rule (its bias rule)")
            n = self.weight.shape[0]
            value = self.rule.temperature * math.log(1.0 / n)
            self.bias = torch.nn.Parameter(torch.full((n,), value, dtype=self.weight.dtype,
                                                      device=self.weight.device))
        else:
            self.register_parameter("bias", None)


class HebbianLinear(_HebbianMixin, torch.nn.Module):
    """Dense Hebbian layer; ``forward(x) = x @ weight.T (+ bias)``, weight (out, in).

    Parameters
    ----------
    in_features, out_features : int
    rule : SoftHebbParams or KrotovParams
    update : UpdateParams (learning rate etc., see :func:`bioplastic.rules.apply_update`)
    bias : bool, SoftHebb bias with its rule
    radius : float, expected initial row norm
    bias_lr_factor : float or None (None: τ, SoftHebb's dense value)
    """

    def __init__(self, in_features: int, out_features: int, *,
                 rule: SoftHebbParams | KrotovParams = SoftHebbParams(),  # noqa: B008
                 update: UpdateParams = UpdateParams(), bias: bool = False,  # noqa: B008
                 radius: float = 10.0, bias_lr_factor: float | None = None, device=None,
                 dtype=None):
        super().__init__()
        self.rule = _check_rule(rule, out_features)
        self.update = update
        self.weight = torch.nn.Parameter(torch.empty(out_features, in_features, device=device,
                                                     dtype=dtype))
        self._init_parameters(in_features, radius, bias)
        self.bias_lr_factor = (getattr(rule, "temperature", 1.0) if bias_lr_factor is None
                               else float(bias_lr_factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"x must have shape (batch >= 1, {self.weight.shape[1]}), got "
                             f"{tuple(x.shape)}")
        return x

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, " \
               f"rule={self.rule}"


class HebbianConv2d(_HebbianMixin, torch.nn.Module):
    """Conv Hebbian layer; ``forward`` is ``conv2d`` (with reflect padding if asked).

    Weight (out_channels, in_channels, kh, kw). Plasticity unfolds the patches of ``x``
    (B, C, H, W) and applies the dense rule with the soft WTA across channels at each position,
    the batch and the positions summed. ``bias_lr_factor`` None means 0.1τ (SoftHebb conv).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1,
                 padding=0, dilation=1, padding_mode: str = "zeros",
                 rule: SoftHebbParams | KrotovParams = SoftHebbParams(),  # noqa: B008
                 update: UpdateParams = UpdateParams(), bias: bool = False,  # noqa: B008
                 radius: float = 25.0, bias_lr_factor: float | None = None, device=None,
                 dtype=None):
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {sorted(PADDING_MODES)}, got "
                             f"{padding_mode!r}")
        pair = torch.nn.modules.utils._pair
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.padding, self.dilation, self.padding_mode = pair(padding), pair(dilation), padding_mode
        self.rule = _check_rule(rule, out_channels)
        self.update = update
        self.weight = torch.nn.Parameter(torch.empty(out_channels, in_channels,
                                                     *self.kernel_size, device=device,
                                                     dtype=dtype))
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self._init_parameters(fan_in, radius, bias)
        self.bias_lr_factor = (0.1 * getattr(rule, "temperature", 1.0) if bias_lr_factor is None
                               else float(bias_lr_factor))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[0] == 0 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"x must have shape (batch >= 1, {self.weight.shape[1]}, H, W), "
                             f"got {tuple(x.shape)}")
        ph, pw = self.padding
        mode = "constant" if self.padding_mode == "zeros" else "reflect"
        return F.pad(x, (pw, pw, ph, ph), mode=mode) if (ph or pw) else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self._pad(x), self.weight, self.bias, self.stride, 0, self.dilation)

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        patches = F.unfold(self._pad(x), self.kernel_size, dilation=self.dilation,
                           stride=self.stride)               # (B, C·kh·kw, L)
        return patches.transpose(1, 2).reshape(-1, patches.shape[1])   # (B·L, C·kh·kw)
