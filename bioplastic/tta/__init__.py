"""Test-time adaptation of trained torch classifiers (imports torch).

``bioplastic.tta.NHL(model)``, ``Tent``, ``EATA``, ``SAR``, ``CoTTA``, ``BNAdapt`` and ``Source``
wrap a copy of ``model`` (each a subclass of :class:`Adapter`); ``adapter(x)`` adapts on the
unlabelled batch and returns logits. See docs/tta.md.
"""

from .base import (
    Adapter,
    GeneratorState,
    all_weights_and_biases,
    batchnorm_layers,
    bn_affine_params,
    channels_last_forward,
    check_model,
    configure_model,
    default_optimizer,
    ema_update,
    max_pool_channels_last,
    no_params,
    per_copy_batch_norm,
    reliable,
    restore,
    snapshot,
    softmax_entropy,
    stochastic_restore,
    stochastic_restore_all,
)
from .bn import BNAdapt, Source
from .cotta import CoTTA, CoTTAAugment, cotta_augment, cotta_threshold, soft_cross_entropy
from .eata import EATA, fisher_diagonal
from .nhl import (
    NHL,
    ChannelAffine,
    HebbianConv1,
    bound_angle,
    hebbian_conv_dw,
    interpolate_toward,
    soft_hebb_conv_dw_torch,
)
from .sar import SAR, norm_affine_params, sam_ascent
from .tent import Tent

__all__ = [
    "Adapter", "NHL", "Tent", "EATA", "SAR", "CoTTA", "BNAdapt", "Source", "HebbianConv1",
    "ChannelAffine", "fisher_diagonal", "norm_affine_params", "sam_ascent", "cotta_augment",
    "CoTTAAugment", "cotta_threshold",
    "soft_cross_entropy", "all_weights_and_biases", "reliable", "ema_update",
    "stochastic_restore", "stochastic_restore_all", "GeneratorState", "per_copy_batch_norm",
    "channels_last_forward", "max_pool_channels_last",
    "interpolate_toward",
    "bound_angle",
    "softmax_entropy", "bn_affine_params", "no_params", "batchnorm_layers", "configure_model",
    "check_model", "snapshot", "restore", "default_optimizer", "hebbian_conv_dw",
    "soft_hebb_conv_dw_torch",
]
