"""bioplastic: biologically plausible learning and adaptation.

Numba kernels for local learning rules and neuron models, each cross-validated against a Brian2
twin (:mod:`bioplastic.reference`), with PyTorch front ends (:mod:`bioplastic.nn`,
:mod:`bioplastic.tta`). Importing this package imports neither torch nor brian2.
"""

from .io import load, save
from .neurons import (
    LIFParams,
    LIFState,
    PCNNParams,
    PCNNState,
    SparseConnectivity,
    WTAParams,
    WTAState,
    connectivity,
    lif_advance,
    lif_init,
    lif_prepare,
    lif_step,
    pcnn_advance,
    pcnn_init,
    pcnn_prepare,
    pcnn_step,
    run_lif,
    run_pcnn,
    run_wta,
    train_wta,
    wta_advance,
    wta_init,
    wta_prepare,
    wta_step,
)
from .rules import (
    SoftHebbParams,
    STDPParams,
    UpdateParams,
    apply_update,
    soft_hebb_conv_dw,
    soft_hebb_dw,
)
from .simulate import Trace, simulate, simulate_blocks, step_once

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Trace",
    "simulate",
    "simulate_blocks",
    "step_once",
    "save",
    "load",
    "LIFParams",
    "LIFState",
    "SparseConnectivity",
    "connectivity",
    "lif_advance",
    "lif_init",
    "lif_prepare",
    "lif_step",
    "run_lif",
    "PCNNParams",
    "PCNNState",
    "pcnn_advance",
    "pcnn_init",
    "pcnn_prepare",
    "pcnn_step",
    "run_pcnn",
    "SoftHebbParams",
    "soft_hebb_dw",
    "soft_hebb_conv_dw",
    "UpdateParams",
    "apply_update",
    "WTAParams",
    "WTAState",
    "wta_advance",
    "wta_init",
    "wta_prepare",
    "wta_step",
    "run_wta",
    "train_wta",
    "STDPParams",
]
