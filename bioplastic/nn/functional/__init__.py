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

from .lif import (
    LIF_UNITLESS,
    LIFTensorParams,
    LIFTensorState,
    lif_initial_state,
    lif_prepare,
    lif_step,
)

__all__ = ["LIF_UNITLESS", "LIFTensorParams", "LIFTensorState", "lif_initial_state",
           "lif_prepare", "lif_step"]
from .pcnn import (  # noqa: E402
    DPCNN_INIT,
    PCNNTensorParams,
    PCNNTensorState,
    pcnn_initial_state,
    pcnn_prepare,
    pcnn_step,
)

__all__ += ["DPCNN_INIT", "PCNNTensorParams", "PCNNTensorState", "pcnn_initial_state",
            "pcnn_prepare", "pcnn_step"]
