"""SAR: sharpness-aware and reliable entropy minimisation, with model recovery.

Niu, Wu, Zhang, Wen, Chen, Zhao & Tan, "Towards Stable Test-Time Adaptation in Dynamic Wild
World", ICLR 2023 (code: mr-eggplant/SAR, ``sar.py``, ``sam.py`` and ``main.py``, read for the
defaults below; a re-implementation on :class:`~bioplastic.tta.Adapter`).

Per test batch (batch-statistics BN; the affine parameters of the norm layers adapted)::

    H_b      = entropy of softmax(f(x_b));  keep = H_b < E0          (reliable entropy, Eqn. 2)
    g        = ∇ mean_keep H_b
    ε̂        = ρ · g / ‖g‖₂                                           (SAM ascent, Eqn. 4)
    H'_b     = entropy at θ + ε̂ (second forward);  keep' = keep and H'_b < E0
    θ        ← optimizer step with ∇ mean_keep' H'_b evaluated at θ + ε̂, from θ
    e        ← 0.9·e + 0.1·mean_keep' H'_b      (e starts at the first value)
    e < e_m  → reset() (model recovery: the model collapsed to trivial confident outputs)

A batch with no reliable sample (first or second filter) takes no step (the authors' code
would back-propagate the NaN mean of an empty selection). Defaults from the authors' code:
``E0 = 0.4·ln C`` (``0.4*math.log(1000)`` for ImageNet; C read from the logits), ``e_m = 0.2``
(``reset_constant_em``), SAM ``ρ = 0.05`` non-adaptive, base optimiser SGD momentum 0.9 and lr
2.5e-4 (batch 64). The authors skip the norm layers of the top block (``layer4`` of a ResNet,
ViT blocks 9-11); this wrapper adapts every BatchNorm/GroupNorm/LayerNorm affine by default
(a generic model has no named top block) and takes any ``params_selector``. The prediction is
the first forward (before the step), as in the authors' code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .base import (
    Adapter,
    check_module,
    check_number,
    own_params,
    reliable,
    softmax_entropy,
    unique_params,
)
from .eata import sgd_optimizer

__all__ = ["SAR", "norm_affine_params", "sam_ascent"]

NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def norm_affine_params(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Weight and bias of every BatchNorm, GroupNorm and LayerNorm (SAR's parameters), each
    once."""
    check_module("model", model)
    return unique_params(p for name, m in model.named_modules() if isinstance(m, NORMS)
                         for p in own_params(name, m))


def sam_ascent(params: list[nn.Parameter], rho: float) -> list[torch.Tensor]:
    """Move ``params`` in place by ``ρ·g/‖g‖₂`` (their gradients ``g``; SAM's ``first_step``).

    Returns copies of the original values: ``p.copy_(old)`` undoes the move exactly.
    """
    params = list(params) if isinstance(params, list | tuple) else params
    if not isinstance(params, list) or not all(isinstance(p, torch.Tensor) for p in params):
        raise TypeError("params must be a list of tensors (the adapted parameters)")
    rho = check_number("rho", rho, 0.0)
    if not params:
        return []
    with torch.no_grad():
        old = [p.detach().clone() for p in params]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        norm = torch.stack([g.norm(2) for g in grads]).norm(2)
        scale = rho / (norm + 1e-12)
        for p, g in zip(params, grads, strict=True):
            p.add_(g * scale)
    return old


class SAR(Adapter):
    """SAR (see the module docstring).

    Parameters
    ----------
    model : classifier with affine norm layers.
    margin : entropy margin E0; ``None``: 0.4·ln C.
    reset_constant : e_m, the recovery threshold of the loss moving average.
    rho : SAM neighbourhood radius.
    lr, momentum : the SGD base optimiser (used when ``optimizer_factory`` is not given).
    params_selector : what is adapted (default :func:`norm_affine_params`).
    **options : see :class:`~bioplastic.tta.Adapter`.
    """

    _adapts = ("the affine parameters of its BatchNorm, GroupNorm and LayerNorm layers, "
               "unless params_selector= chooses others")

    def __init__(self, model: nn.Module, *, margin: float | None = None,
                 reset_constant: float = 0.2, rho: float = 0.05, lr: float = 2.5e-4,
                 momentum: float = 0.9, optimizer_factory: Callable | None = None,
                 params_selector: Callable = norm_affine_params, **options) -> None:
        options.setdefault("method", "SAR")
        margin = None if margin is None else check_number("margin", margin)
        reset_constant = check_number("reset_constant", reset_constant)
        rho = check_number("rho", rho, 0.0)
        super().__init__(model, params_selector,
                         optimizer_factory=optimizer_factory or sgd_optimizer(lr, momentum),
                         **options)
        self.margin, self.reset_constant, self.rho, self.lr = margin, reset_constant, rho, lr
        self.ema: float | None = None
        self.recoveries = 0          # model recoveries (diagnostic; not reset)

    def _params(self) -> list[nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _gradient_step(self, logits: torch.Tensor, x: torch.Tensor) -> None:
        margin = 0.4 * math.log(logits.shape[1]) if self.margin is None else self.margin
        keep = reliable(softmax_entropy(logits), margin)
        if not bool(keep.any()):
            return None
        self._backward(softmax_entropy(logits)[keep].mean())
        original = sam_ascent(self._params(), self.rho)
        try:
            entropy2 = softmax_entropy(self._forward_checked(x))[keep]
            keep2 = reliable(entropy2, margin)
            if not bool(keep2.any()):
                self.optimizer.zero_grad(set_to_none=True)
                return None
            loss2 = entropy2[keep2].mean()
            self._backward(loss2)
        finally:   # back to θ: the step starts from the unperturbed weights
            with torch.no_grad():
                for p, old in zip(self._params(), original, strict=True):
                    p.copy_(old)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss2.detach())
        self.ema = value if self.ema is None else 0.9 * self.ema + 0.1 * value
        if self.ema < self.reset_constant:
            self.reset()
            self.recoveries += 1
        return None

    def _method_state(self) -> dict:
        return {"ema": getattr(self, "ema", None)}

    def _load_method_state(self, state: dict) -> None:
        self.ema = state.get("ema")

    def _repr_fields(self) -> dict:
        margin = "0.4 ln C" if self.margin is None else self.margin
        return {"lr": self.lr, "rho": self.rho, "margin": margin,
                "reset_constant": self.reset_constant, **super()._repr_fields()}
