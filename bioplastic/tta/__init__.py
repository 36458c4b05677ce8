"""Test-time adaptation of trained torch classifiers (imports torch).

``bioplastic.tta.NHL(model)``, ``Tent(model)``, ``BNAdapt(model)`` and ``Source(model)`` wrap a
copy of ``model``; ``adapter(x)`` adapts on the unlabelled batch and returns logits. See
docs/tta.md and shared/spec/nhl_tta.md.
"""

from .base import (
    Adapter,
    batchnorm_layers,
    bn_affine_params,
    check_model,
    configure_model,
    default_optimizer,
    no_params,
    restore,
    snapshot,
    softmax_entropy,
)
from .bn import BNAdapt, Source
from .nhl import NHL, ChannelAffine, HebbianConv1, hebbian_conv_dw, soft_hebb_conv_dw_torch
from .tent import Tent

__all__ = [
    "Adapter", "NHL", "Tent", "BNAdapt", "Source", "HebbianConv1", "ChannelAffine",
    "softmax_entropy", "bn_affine_params", "no_params", "batchnorm_layers", "configure_model",
    "check_model", "snapshot", "restore", "default_optimizer", "hebbian_conv_dw",
    "soft_hebb_conv_dw_torch",
]
