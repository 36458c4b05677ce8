"""Pure torch step functions: the maths of every :mod:`bioplastic.nn` module, written once.

One module per model, each taking the Numba kernel's own ``*Params`` NamedTuples (same fields,
same defaults) and returning new tensors (arguments are never modified):

* :mod:`~bioplastic.nn.functional.lif`: ``lif_prepare``, ``lif_initial_state``, ``lif_step``;
* :mod:`~bioplastic.nn.functional.pcnn`: ``pcnn_prepare``, ``pcnn_initial_state``, ``pcnn_step``;
* :mod:`~bioplastic.nn.functional.hebbian`: the SoftHebb and Krotov–Hopfield ``dw`` (dense and
  conv), the anti-Hebbian sign, the bias rule and ``apply_update`` — used by both
  :mod:`bioplastic.nn.hebbian` and :mod:`bioplastic.tta.nhl`.

The modules of :mod:`bioplastic.nn` hold parameters and call these; the one time loop is
:meth:`bioplastic.nn.base.SpikingModule.run`.
"""

from . import hebbian, lif, pcnn
from .hebbian import (
    SOFTHEBB_RULE,
    SOFTHEBB_UPDATE,
    anti_hebbian,
    apply_update,
    check_update_params,
    conv_positions,
    conv_rows,
    krotov_hopfield_dw,
    max_normalise,
    soft_hebb_bias_db,
    soft_hebb_conv_dw,
    soft_hebb_dw,
    soft_hebb_post,
)
from .lif import (
    LIF_UNITLESS,
    LIFTensorParams,
    LIFTensorState,
    lif_initial_state,
    lif_prepare,
    lif_step,
)
from .pcnn import (
    DPCNN_INIT,
    PCNNTensorParams,
    PCNNTensorState,
    pcnn_initial_state,
    pcnn_prepare,
    pcnn_step,
)

__all__ = ["hebbian", "lif", "pcnn",
           "LIF_UNITLESS", "LIFTensorParams", "LIFTensorState", "lif_initial_state",
           "lif_prepare", "lif_step",
           "DPCNN_INIT", "PCNNTensorParams", "PCNNTensorState", "pcnn_initial_state",
           "pcnn_prepare", "pcnn_step",
           "SOFTHEBB_RULE", "SOFTHEBB_UPDATE", "anti_hebbian", "apply_update",
           "check_update_params", "conv_positions", "conv_rows", "krotov_hopfield_dw",
           "max_normalise", "soft_hebb_bias_db", "soft_hebb_conv_dw", "soft_hebb_dw",
           "soft_hebb_post"]
