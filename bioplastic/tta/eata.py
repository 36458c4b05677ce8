"""EATA: efficient anti-forgetting test-time adaptation.

Niu, Wu, Zhang, Chen, Zheng, Zhao & Tan, "Efficient Test-Time Model Adaptation without
Forgetting", ICML 2022 (code: mr-eggplant/EATA, ``eata.py`` and ``main.py``, read for the
defaults below; this is a re-implementation on :class:`~bioplastic.tta.Adapter`).

Per test batch, after Tent's forward (batch-statistics BN, BN affine parameters adapted)::

    H_b   = entropy of softmax(f(x_b))
    keep  = H_b < E0                                   (reliable samples, Eqn. 3)
            and |cos(m, p_b)| < ε  once m exists        (non-redundant samples, Eqn. 5)
    m     ← 0.9·m + 0.1·mean_keep p_b  (m starts as the first batch's mean over reliable rows)
    loss  = mean_keep[ H_b · exp(−(H_b − E0)) ]  +  α · Σ_i F_i (θ_i − θ_i⁰)²     (Eqn. 8-9)

No step is taken when no sample is kept (as in the authors' code). ``F`` is the diagonal
Fisher information of the adapted parameters, estimated once at construction from source-like
samples ``fisher_x`` that the user passes (squared gradients of the cross-entropy against the
model's own argmax labels, averaged over batches, model configured as for adaptation);
without ``fisher_x`` the regulariser is off (the paper's "ETA").

Defaults taken from the authors' code: ``E0 = 0.4·ln C`` (``math.log(1000)*0.40`` for
ImageNet's C = 1000; here C is read from the logits), ``ε = 0.05`` (``d_margin``),
``α = 2000`` (``fisher_alpha``), SGD with momentum 0.9 and lr 2.5e-4 (ImageNet, batch 64),
``fisher_size`` 2000 samples (the user chooses how many to pass). The prediction is the
forward before the step (as Tent). ε was chosen for 1000 classes: the cosine between a
confident 10-class prediction and the mean prediction is typically ≈ 0.3, so with the default
almost every sample after the first batch counts as redundant; docs/tta.md gives the value the
digits experiment uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import positive_int
from .base import (
    Adapter,
    bn_affine_params,
    check_logits,
    check_module,
    check_number,
    check_samples,
    checked_forward,
    refuse_fixed,
    reliable,
    softmax_entropy,
)

__all__ = ["EATA", "fisher_diagonal", "sgd_optimizer"]


def sgd_optimizer(lr: float, momentum: float = 0.9) -> Callable:
    """A factory ``params -> SGD(lr, momentum)`` (the EATA and SAR authors' optimiser)."""
    def factory(params):
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    return factory


def fisher_diagonal(model: nn.Module, params: list[nn.Parameter], x: torch.Tensor,
                    batch_size: int = 64) -> list[torch.Tensor]:
    """Diagonal Fisher of ``params``: mean over batches of the squared gradient of the
    cross-entropy against the model's own argmax labels (EATA's estimate).

    ``x`` (N, ...) source-like samples; returns one tensor per parameter, same shapes.
    """
    check_module("model", model)
    check_samples("x", x)
    batch_size = positive_int("batch_size", batch_size)
    if not isinstance(params, list | tuple) or not all(
            isinstance(p, torch.Tensor) and p.requires_grad for p in params):
        raise ValueError("params must be a list of tensors that require grad (the model's "
                         "adapted parameters)")
    fisher = [torch.zeros_like(p) for p in params]
    chunks = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
    chunks = [c for c in chunks if len(c) >= 2] or chunks   # BN batch statistics need 2
    with torch.enable_grad():
        for chunk in chunks:
            logits = checked_forward("fisher_diagonal", model, chunk)
            check_logits("fisher_diagonal", logits, chunk.shape[0])
            loss = F.cross_entropy(logits, logits.argmax(1))
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for f, g in zip(fisher, grads, strict=True):
                if g is not None:
                    f.add_(g.detach() ** 2)
    return [f / len(chunks) for f in fisher]


class _FisherAnchor(nn.Module):
    """Buffers ``fisher_i`` and ``anchor_i`` (source value) per adapted parameter."""

    def __init__(self, fisher: list[torch.Tensor], anchors: list[torch.Tensor]) -> None:
        super().__init__()
        for i, (f, a) in enumerate(zip(fisher, anchors, strict=True)):
            self.register_buffer(f"fisher_{i}", f.detach().clone())
            self.register_buffer(f"anchor_{i}", a.detach().clone())
        self.n = len(fisher)

    def penalty(self, params: list[nn.Parameter]) -> torch.Tensor:
        terms = [(getattr(self, f"fisher_{i}") * (p - getattr(self, f"anchor_{i}")) ** 2).sum()
                 for i, p in enumerate(params)]
        return torch.stack(terms).sum()


class EATA(Adapter):
    """EATA on BN affine parameters (see the module docstring).

    Parameters
    ----------
    model : classifier with affine BatchNorm layers.
    fisher_x : source-like samples ``(N, ...)`` for the Fisher regulariser, or ``None`` (off).
    fisher_alpha : weight α of the regulariser.
    e_margin : entropy margin E0; ``None``: 0.4·ln C with C the number of classes.
    d_margin : cosine threshold ε of the redundancy filter.
    lr, momentum : SGD (used when ``optimizer_factory`` is not given).
    fisher_batch : batch size of the Fisher estimate.
    **options : see :class:`~bioplastic.tta.Adapter`.
    """

    _adapts = "the affine parameters of its BatchNorm layers"

    def __init__(self, model: nn.Module, *, fisher_x: torch.Tensor | None = None,
                 fisher_alpha: float = 2000.0, e_margin: float | None = None,
                 d_margin: float = 0.05, lr: float = 2.5e-4, momentum: float = 0.9,
                 optimizer_factory: Callable | None = None, fisher_batch: int = 64,
                 **options) -> None:
        refuse_fixed("EATA", options, {
            "params_selector": "EATA adapts the BatchNorm affine parameters"})
        options.setdefault("method", "EATA")
        fisher_alpha = check_number("fisher_alpha", fisher_alpha, 0.0)
        e_margin = None if e_margin is None else check_number("e_margin", e_margin)
        d_margin = check_number("d_margin", d_margin, 0.0)
        fisher_batch = positive_int("fisher_batch", fisher_batch)
        super().__init__(model, bn_affine_params,
                         optimizer_factory=optimizer_factory or sgd_optimizer(lr, momentum),
                         **options)
        self.fisher_alpha, self.e_margin, self.d_margin, self.lr = (fisher_alpha, e_margin,
                                                                    d_margin, lr)
        self.model_probs: torch.Tensor | None = None
        self.n_reliable = self.n_selected = 0
        if fisher_x is not None:
            if not isinstance(fisher_x, torch.Tensor) or not fisher_x.is_floating_point():
                raise TypeError("fisher_x must be a floating-point tensor (N, ...)")
            params = self._params()
            fisher = fisher_diagonal(self.model, params, fisher_x.detach(), fisher_batch)
            self.aux["fisher"] = _FisherAnchor(fisher, params)
        self._initial = self._snapshot()

    def _params(self) -> list[nn.Parameter]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _margin(self, n_classes: int) -> float:
        return 0.4 * math.log(n_classes) if self.e_margin is None else self.e_margin

    def _gradient_step(self, logits: torch.Tensor, x: torch.Tensor) -> None:
        entropy = softmax_entropy(logits)
        margin = self._margin(logits.shape[1])
        keep = reliable(entropy, margin)
        probs = logits[keep].softmax(1)
        if self.model_probs is not None:   # redundancy filter against the running mean
            cos = F.cosine_similarity(self.model_probs[None], probs, dim=1)
            diverse = cos.abs() < self.d_margin
            probs, entropy = probs[diverse], entropy[keep][diverse]
        else:
            entropy = entropy[keep]
        # kept only once the step cannot be skipped any more (a skipped step changes nothing)
        update = (_update_probs(self.model_probs, probs.detach()), int(keep.sum()), len(entropy))
        if len(entropy) == 0:
            self._count(*update)
            return None
        weight = torch.exp(-(entropy.detach() - margin))
        loss = (entropy * weight).mean()
        if "fisher" in self.aux:
            loss = loss + self.fisher_alpha * self.aux["fisher"].penalty(self._params())
        self._backward(loss)
        self._count(*update)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return None

    def _count(self, model_probs: torch.Tensor | None, n_reliable: int, n_selected: int) -> None:
        self.model_probs = model_probs
        self.n_reliable += n_reliable
        self.n_selected += n_selected

    def _method_state(self) -> dict:
        # getattr: Adapter.__init__ snapshots before this class sets its attributes
        return {"model_probs": getattr(self, "model_probs", None),
                "n_reliable": getattr(self, "n_reliable", 0),
                "n_selected": getattr(self, "n_selected", 0)}

    def _load_method_state(self, state: dict) -> None:
        self.model_probs = state.get("model_probs")
        self.n_reliable = int(state.get("n_reliable", 0))
        self.n_selected = int(state.get("n_selected", 0))

    def _repr_fields(self) -> dict:
        e_margin = "0.4 ln C" if self.e_margin is None else self.e_margin
        return {"lr": self.lr, "e_margin": e_margin,
                "d_margin": self.d_margin, "fisher": "fisher" in self.aux,
                "fisher_alpha": self.fisher_alpha, **super()._repr_fields()}


def _update_probs(current: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor | None:
    """EATA's moving average of the mean prediction (momentum 0.9)."""
    if len(new) == 0:
        return current
    mean = new.mean(0)
    return mean if current is None else 0.9 * current + 0.1 * mean
