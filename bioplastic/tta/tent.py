"""Tent: test-time entropy minimisation of the BatchNorm affine parameters.

Wang, Shelhamer, Liu, Olshausen & Darrell, "Tent: Fully Test-Time Adaptation by Entropy
Minimization", ICLR 2021 (DequanWang/tent). Semantics [verified in spec nhl_tta.md §3]:
BatchNorm normalises with the test batch's statistics, only BN weight and bias are trained, by
Adam (lr 1e-3, betas 0.9/0.999, no weight decay) on the mean softmax entropy, one step per batch,
not episodic; the returned logits are those of the forward *before* the step's update.

Loss: ``H(p) = −Σ_c p_c log p_c`` with ``p = softmax(f(x))``, averaged over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .base import Adapter, bn_affine_params, default_optimizer

__all__ = ["Tent"]


def Tent(model: nn.Module, *, lr: float = 1e-3, optimizer_factory: Callable | None = None,
         steps: int = 1, episodic: bool = False, predict_after_update: bool = False,
         **options) -> Adapter:
    """Wrap ``model`` with Tent (copied; the caller's model is untouched).

    Parameters
    ----------
    model : classifier with affine BatchNorm layers (ValueError otherwise).
    lr : Adam learning rate, used when ``optimizer_factory`` is not given.
    optimizer_factory : callable ``params -> Optimizer`` (overrides ``lr``).
    steps, episodic, predict_after_update, **options : see :class:`~bioplastic.tta.Adapter`
        (``reset_every``, ``bn_stats``, ``single_sample_window``, ``copy``, ``loss``).
    """
    if optimizer_factory is None:
        def optimizer_factory(params):
            return default_optimizer(params, lr=lr)
    return Adapter(model, bn_affine_params, optimizer_factory=optimizer_factory, steps=steps,
                   episodic=episodic, predict_after_update=predict_after_update,
                   method="Tent", **options)
