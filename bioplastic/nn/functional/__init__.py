"""Pure torch step functions: the maths of every :mod:`bioplastic.nn` module, written once.

One module per model, each taking the Numba kernel's own ``*Params`` NamedTuples (same fields,
same defaults) and returning new tensors (arguments are never modified):

* :mod:`~bioplastic.nn.functional.lif`: ``lif_prepare``, ``lif_initial_state``, ``lif_step``;
* :mod:`~bioplastic.nn.functional.pcnn`: ``pcnn_prepare``, ``pcnn_initial_state``, ``pcnn_step``,
  ``pcnn_sequence``;
* :mod:`~bioplastic.nn.functional.hebbian`: the SoftHebb and Krotov–Hopfield ``dw`` (dense and
  conv), the anti-Hebbian sign, the bias rule and ``apply_update`` — used by both
  :mod:`bioplastic.nn.hebbian` and :mod:`bioplastic.tta.nhl`;
* :mod:`~bioplastic.nn.functional.stc`: the STC neurons (STC-LIF, STC-PLIF, STC-LMH) and their
  baselines (LIF, PLIF in two forms, TC-LIF, LM-H, GLIF).

The modules of :mod:`bioplastic.nn` hold parameters and call these; the one time loop is
:meth:`bioplastic.nn.base.SpikingModule.run`.
"""

from . import hebbian, lif, pcnn, stc
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
    lif_sequence,
    lif_sequence_applies,
    lif_step,
)
from .pcnn import (
    DPCNN_INIT,
    PCNNTensorParams,
    PCNNTensorState,
    pcnn_initial_state,
    pcnn_prepare,
    pcnn_sequence,
    pcnn_sequence_applies,
    pcnn_step,
)

__all__ = ["hebbian", "lif", "pcnn", "stc",
           "LIF_UNITLESS", "LIFTensorParams", "LIFTensorState", "lif_initial_state",
           "lif_prepare", "lif_sequence", "lif_sequence_applies", "lif_step",
           "DPCNN_INIT", "PCNNTensorParams", "PCNNTensorState", "pcnn_initial_state",
           "pcnn_prepare", "pcnn_sequence", "pcnn_sequence_applies", "pcnn_step",
           "SOFTHEBB_RULE", "SOFTHEBB_UPDATE", "anti_hebbian", "apply_update",
           "check_update_params", "conv_positions", "conv_rows", "krotov_hopfield_dw",
           "max_normalise", "soft_hebb_bias_db", "soft_hebb_conv_dw", "soft_hebb_dw",
           "soft_hebb_post"]
from .stc import (  # noqa: E402
    GLIFTensorState,
    STCTensorParams,
    STCTensorState,
    TCLIFTensorState,
    fire,
    glif_step,
    group_conv2d,
    numpy_tanh,
    plif_fang_sequence,
    plif_fang_step,
    stc_dense_step,
    stc_sequence,
    stc_step,
    tclif_step,
)

__all__ += ["GLIFTensorState", "STCTensorParams", "STCTensorState", "TCLIFTensorState", "fire",
            "glif_step", "group_conv2d", "numpy_tanh", "plif_fang_sequence", "plif_fang_step",
            "stc_dense_step", "stc_sequence", "stc_step", "tclif_step"]
