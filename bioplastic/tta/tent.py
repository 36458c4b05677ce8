"""Tent: test-time entropy minimisation of the BatchNorm affine parameters.

Wang, Shelhamer, Liu, Olshausen & Darrell, "Tent: Fully Test-Time Adaptation by Entropy
Minimization", ICLR 2021 (DequanWang/tent). Semantics (read in the authors' ``tent.py``):
BatchNorm normalises with the test batch's statistics, only BN weight and bias are trained, by
Adam (lr 1e-3, betas 0.9/0.999, no weight decay) on the mean softmax entropy, one step per batch,
not episodic; the returned logits are those of the forward *before* the step's update.

Loss: ``H(p) = −Σ_c p_c log p_c`` with ``p = softmax(f(x))``, averaged over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .base import Adapter, bn_affine_params, default_optimizer, refuse_fixed

__all__ = ["Tent"]


def lr_optimizer(lr: float, optimizer_factory: Callable | None) -> Callable:
    """``optimizer_factory`` if given, else Adam at ``lr`` (:func:`default_optimizer`)."""
    if optimizer_factory is not None:
        return optimizer_factory

    def factory(params):
        return default_optimizer(params, lr=lr)
    return factory


class Tent(Adapter):
    """Wrap ``model`` with Tent (copied; the caller's model is untouched).

    Parameters
    ----------
    model : classifier with affine BatchNorm layers (ValueError otherwise).
    lr : Adam learning rate, used when ``optimizer_factory`` is not given.
    optimizer_factory : callable ``params -> Optimizer`` (overrides ``lr``).
    steps, episodic, predict_after_update, **options : see :class:`~bioplastic.tta.Adapter`
        (``reset_every``, ``bn_stats``, ``single_sample_window``, ``copy``, ``loss``).
    """

    _adapts = "the affine parameters of its BatchNorm layers"

    def __init__(self, model: nn.Module, *, lr: float = 1e-3,
                 optimizer_factory: Callable | None = None, steps: int = 1,
                 episodic: bool = False, predict_after_update: bool = False,
                 **options) -> None:
        refuse_fixed("Tent", options, {
            "params_selector": "Tent adapts the BatchNorm affine parameters"})
        options.setdefault("method", "Tent")
        super().__init__(model, bn_affine_params,
                         optimizer_factory=lr_optimizer(lr, optimizer_factory), steps=steps,
                         episodic=episodic, predict_after_update=predict_after_update, **options)
        self.lr = lr if optimizer_factory is None else None

    def _repr_fields(self) -> dict:
        return {"lr": self.lr, **super()._repr_fields()}
