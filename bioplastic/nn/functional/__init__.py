"""Pure torch step functions: the maths of the :mod:`bioplastic.nn` modules, written once.

* :mod:`~bioplastic.nn.functional.stc`: the STC neurons (STC-LIF, STC-PLIF, STC-LMH) and their
  baselines (LIF, PLIF in two forms, TC-LIF, LM-H, GLIF).
"""

from .stc import (
    GLIFTensorState,
    STCTensorParams,
    STCTensorState,
    TCLIFTensorState,
    fire,
    glif_step,
    numpy_tanh,
    plif_fang_step,
    stc_dense_step,
    stc_prepare,
    stc_step,
    tclif_step,
)

__all__ = ["GLIFTensorState", "STCTensorParams", "STCTensorState", "TCLIFTensorState", "fire",
           "glif_step", "numpy_tanh", "plif_fang_step", "stc_dense_step", "stc_prepare",
           "stc_step", "tclif_step"]
