"""Hebbian layers as torch modules: :class:`HebbianLinear` and :class:`HebbianConv2d`.

``forward`` is a plain linear / conv map returning the pre-activations ``u`` (no plasticity,
no hidden state). Learning is an explicit call, ``layer.plasticity_step(x)``, which computes the
local rule on the batch ``x`` under ``torch.no_grad`` and applies it in place to the module's
parameters; ``layer.delta(x)`` returns the same ``dw`` without applying it. The maths is
:mod:`bioplastic.nn.functional.hebbian` (the torch twins of :mod:`bioplastic.rules`, shared with
:mod:`bioplastic.tta.nhl`); in float64 it equals the Numba kernels on the same batch (to
round-off: the softmax and the matrix products sum in a different order):

* ``rule=SoftHebbParams(...)``: SoftHebb (:func:`bioplastic.rules.soft_hebb_dw`; with
  ``bias=True`` also the bias rule :func:`bioplastic.rules.soft_hebb_bias_db`);
* ``rule=KrotovParams(...)``: Krotov–Hopfield (:func:`bioplastic.rules.krotov_hopfield_dw`);

and ``update=UpdateParams(...)`` is :func:`bioplastic.rules.apply_update` (rate, max
normalisation, norm-dependent rate, bounds, row norm), with the same input checks (a negative
learning rate or ``power_lr``, or ``w_min > w_max``, is a ``ValueError`` at construction).
Conv layers use unfolded patches with the batch and positions summed, exactly like
:func:`bioplastic.rules.soft_hebb_conv_dw`.

Defaults are SoftHebb's ICLR-2023 recipe, the same as :class:`bioplastic.sklearn.SoftHebb`:
``rule = SOFTHEBB_RULE = SoftHebbParams(temperature=1.0, anti_hebbian=True)`` and
``update = SOFTHEBB_UPDATE = UpdateParams(0.05, max_normalise=True, power_lr=0.5)`` (estimator
arguments ``temperature, anti_hebbian`` → ``rule``; ``learning_rate, max_normalise,
power_lr`` → ``update``; ``radius`` → ``radius``). The bare ``SoftHebbParams()`` and
``UpdateParams()`` are the rules' neutral defaults (the 2022 rule, constant rate 0.01).

``state_dict`` holds the weights and, as extra state, the rule, the update settings and the
bias rate factor (plain numbers, so ``torch.load(weights_only=True)`` reads them):
``load_state_dict`` restores a layer completely, whatever settings it was built with.

Choices: weights start Gaussian with std ``radius/√fan_in`` (E‖w_k‖ ≈ radius; SoftHebb uses 10
for MLPs, 25 for CNNs); the bias starts at ``τ ln(1/K)`` (uniform priors) and learns with rate
``η·bias_lr_factor`` (SoftHebb: τ for dense, 0.1τ for conv layers), max-normalised like ``dw``
when ``update.max_normalise``. A non-finite update raises
:class:`bioplastic.rules.DivergenceError`, leaving the parameters unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .._validate import count, positive_int
from ..rules.apply import UpdateParams
from ..rules.hebbian import KrotovParams
from ..rules.softhebb import SoftHebbParams
from ..rules.unfold import PADDING_MODES
from .base import check_float_tensor, check_like_weight
from .functional.hebbian import (
    SOFTHEBB_RULE,
    SOFTHEBB_UPDATE,
    apply_update,
    check_update_params,
    conv_rows,
    krotov_hopfield_dw,
    soft_hebb_bias_db,
    soft_hebb_dw,
)

__all__ = ["HebbianLinear", "HebbianConv2d"]


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


def _int_pair(name: str, value, *, low: int) -> tuple[int, int]:
    """An int or a pair of ints ``>= low`` (as ``torch.nn.Conv2d`` takes them) as a pair;
    ``True`` is refused (:func:`bioplastic._validate.count`), where torch takes it as 1."""
    pair = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(count(name, v, low=low) for v in pair)


class _HebbianMixin:
    """Shared plasticity of the dense and conv layers (they differ only in how rows are made)."""

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _dense_rule(self, rows: torch.Tensor):
        """(dw2d, db or None) for input rows (N, fan_in)."""
        if not bool(torch.isfinite(rows).all()):
            # named here: the rule would only report its non-finite dw as a divergence
            raise ValueError("x must contain only finite values (the plasticity rule reads it)")
        w2d = self.weight.reshape(self.weight.shape[0], -1)
        if isinstance(self.rule, KrotovParams):
            return krotov_hopfield_dw(rows, w2d, self.rule), None
        u = rows @ w2d.T
        if self.bias is not None:
            u = u + self.bias
        db = soft_hebb_bias_db(u, self.bias, self.rule) if self.bias is not None else None
        return soft_hebb_dw(rows, u, w2d, self.rule), db

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
        new_w = apply_update(self.weight, dw, self.update)
        new_b = None
        if db is not None:
            bias_update = UpdateParams(self.update.learning_rate * self.bias_lr_factor,
                                       self.update.max_normalise)
            new_b = apply_update(self.bias, db, bias_update)
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

    # ------------------------------------------------------------ state_dict extra state
    def get_extra_state(self) -> dict:
        """Rule, update settings and bias rate factor as plain numbers (weights_only-safe)."""
        update = self.update._asdict()
        rate = np.asarray(update["learning_rate"], dtype=np.float64)
        update["learning_rate"] = rate.tolist()                # a float or a list per unit
        update = {k: v if isinstance(v, bool | list) else float(v) for k, v in update.items()}
        return {"rule_type": type(self.rule).__name__, "rule": dict(self.rule._asdict()),
                "update": update, "bias_lr_factor": float(self.bias_lr_factor)}

    def set_extra_state(self, state: dict) -> None:
        kinds = {"SoftHebbParams": SoftHebbParams, "KrotovParams": KrotovParams}
        if not isinstance(state, dict) or state.get("rule_type") not in kinds:
            raise ValueError(f"extra state of a Hebbian layer must name its rule "
                             f"({sorted(kinds)}), got {state!r}")
        update = dict(state["update"])
        if isinstance(update["learning_rate"], list):
            update["learning_rate"] = np.asarray(update["learning_rate"], dtype=np.float64)
        self.rule = _check_rule(kinds[state["rule_type"]](**state["rule"]), self.weight.shape[0])
        self.update = check_update_params(UpdateParams(**update), self.weight.shape[0])
        self.bias_lr_factor = float(state["bias_lr_factor"])

    def _settings_repr(self) -> str:
        return f"rule={self.rule}, update={self.update}, bias_lr_factor={self.bias_lr_factor:g}"

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
    """Dense Hebbian layer; ``forward(x) = x @ weight.T (+ bias)``, weight (out, in); ``x``
    is ``(batch >= 1, in)`` in ``forward`` as in ``plasticity_step`` (checked the same way).

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
                 rule: SoftHebbParams | KrotovParams = SOFTHEBB_RULE,
                 update: UpdateParams = SOFTHEBB_UPDATE, bias: bool = False,
                 radius: float = 10.0, bias_lr_factor: float | None = None, device=None,
                 dtype=None):
        super().__init__()
        in_features = positive_int("in_features", in_features)
        out_features = positive_int("out_features", out_features)
        self.rule = _check_rule(rule, out_features)
        self.update = check_update_params(update, out_features)
        self.weight = torch.nn.Parameter(torch.empty(out_features, in_features, device=device,
                                                     dtype=dtype))
        self._init_parameters(in_features, radius, bias)
        self.bias_lr_factor = (getattr(rule, "temperature", 1.0) if bias_lr_factor is None
                               else float(bias_lr_factor))

    def _check_input(self, x: torch.Tensor) -> None:
        check_float_tensor("x", x)
        check_like_weight("x", x, self.weight, type(self).__name__)
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"x must have shape (batch >= 1, {self.weight.shape[1]}), got "
                             f"{tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return F.linear(x, self.weight, self.bias)

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return x

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, " \
               f"bias={self.bias is not None}, {self._settings_repr()}"


class HebbianConv2d(_HebbianMixin, torch.nn.Module):
    """Conv Hebbian layer; ``forward`` is ``conv2d`` (with reflect padding if asked).

    Weight (out_channels, in_channels, kh, kw). Plasticity unfolds the patches of ``x``
    (B, C, H, W) and applies the dense rule with the soft WTA across channels at each position,
    the batch and the positions summed. ``bias_lr_factor`` None means 0.1τ (SoftHebb conv).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, *, stride=1,
                 padding=0, dilation=1, padding_mode: str = "zeros",
                 rule: SoftHebbParams | KrotovParams = SOFTHEBB_RULE,
                 update: UpdateParams = SOFTHEBB_UPDATE, bias: bool = False,
                 radius: float = 25.0, bias_lr_factor: float | None = None, device=None,
                 dtype=None):
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {sorted(PADDING_MODES)}, got "
                             f"{padding_mode!r}")
        in_channels = positive_int("in_channels", in_channels)
        out_channels = positive_int("out_channels", out_channels)
        self.kernel_size = _int_pair("kernel_size", kernel_size, low=1)
        self.stride = _int_pair("stride", stride, low=1)
        self.padding = _int_pair("padding", padding, low=0)
        self.dilation = _int_pair("dilation", dilation, low=1)
        self.padding_mode = padding_mode
        self.rule = _check_rule(rule, out_channels)
        self.update = check_update_params(update, out_channels)
        self.weight = torch.nn.Parameter(torch.empty(out_channels, in_channels,
                                                     *self.kernel_size, device=device,
                                                     dtype=dtype))
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self._init_parameters(fan_in, radius, bias)
        self.bias_lr_factor = (0.1 * getattr(rule, "temperature", 1.0) if bias_lr_factor is None
                               else float(bias_lr_factor))

    def _check_input(self, x: torch.Tensor) -> None:
        check_float_tensor("x", x)
        if x.ndim != 4 or x.shape[0] == 0 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"x must have shape (batch >= 1, {self.weight.shape[1]}, H, W), "
                             f"got {tuple(x.shape)}")
        check_like_weight("x", x, self.weight, type(self).__name__)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        ph, pw = self.padding
        mode = "constant" if self.padding_mode == "zeros" else "reflect"
        return F.pad(x, (pw, pw, ph, ph), mode=mode) if (ph or pw) else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self._pad(x), self.weight, self.bias, self.stride, 0, self.dilation)

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return conv_rows(x, self.kernel_size, stride=self.stride, padding=self.padding,
                         dilation=self.dilation, padding_mode=self.padding_mode)

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1]}, {self.weight.shape[0]}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"padding_mode={self.padding_mode!r}, bias={self.bias is not None}, "
                f"{self._settings_repr()}")
