"""BN adaptation and the unadapted source baseline.

**BN adapt** (Schneider et al., "Improving robustness against common corruptions by covariate
shift adaptation", NeurIPS 2020; Tent's ``norm.py``): every BatchNorm normalises with the
statistics of the current test batch instead of the source running statistics; nothing is
trained. Choice: like Tent's ``norm.py`` with ``no_stats``, the running buffers are dropped, so
the statistics are those of each batch alone (no running average across batches).

**Source**: the model as trained, BN with its source statistics, eval mode; the outputs equal
``model.eval()(x)`` exactly.
"""

from __future__ import annotations

from torch import nn

from .base import Adapter, batchnorm_layers, no_params, refuse_fixed

__all__ = ["BNAdapt", "Source"]


class BNAdapt(Adapter):
    """Batch-statistics BatchNorm, nothing trained. ``model`` must contain BatchNorm layers.

    ``**options``: ``single_sample_window``, ``copy``, ``episodic`` … (see
    :class:`~bioplastic.tta.Adapter`).
    """

    def __init__(self, model: nn.Module, **options) -> None:
        if isinstance(model, nn.Module) and not batchnorm_layers(model):
            raise ValueError(f"BNAdapt: {type(model).__name__} has no BatchNorm layers to adapt")
        refuse_fixed("BNAdapt", options, {
            "bn_stats": "BNAdapt always normalises with the statistics of each test batch "
                        "(bn_stats='batch'; Source is the model with its source statistics)",
            "params_selector": "BNAdapt trains nothing", "loss": "BNAdapt trains nothing"})
        options.setdefault("method", "BNAdapt")
        super().__init__(model, no_params, loss=None, bn_stats="batch", **options)


class Source(Adapter):
    """The unadapted baseline (``Adapter.disabled``): outputs equal ``model.eval()(x)``."""

    def __init__(self, model: nn.Module, **options) -> None:
        refuse_fixed("Source", options, {
            "bn_stats": "Source always normalises with the source statistics "
                        "(bn_stats='source'; BNAdapt uses those of each test batch)",
            "params_selector": "Source trains nothing", "loss": "Source trains nothing"})
        options.setdefault("method", "Source")
        super().__init__(model, no_params, loss=None, bn_stats="source", **options)
