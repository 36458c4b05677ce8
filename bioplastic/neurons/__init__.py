"""Neuron models as Numba kernels on NumPy arrays (no torch, no brian2)."""

from ._checks import check_connectivity, check_post_index
from .connectivity import (
    SparseConnectivity,
    change_delays,
    connectivity,
    connectivity_from_arrays,
    no_connectivity,
    spike_queue,
    with_delays,
    with_weights,
)
from .lif import (
    LIFKernelParams,
    LIFParams,
    LIFState,
    lif_advance,
    lif_init,
    lif_prepare,
    lif_step,
    run_lif,
)
from .pcnn import (
    PCNNKernelParams,
    PCNNParams,
    PCNNState,
    convention_b_to_a,
    pcnn_advance,
    pcnn_init,
    pcnn_prepare,
    pcnn_step,
    run_pcnn,
)
from .stc import (
    STCKernelParams,
    STCModulators,
    STCParams,
    STCState,
    run_stc,
    stc_advance,
    stc_init,
    stc_modulators,
    stc_prepare,
    stc_step,
)
from .wta import (
    WTAKernelParams,
    WTAParams,
    WTAState,
    WTATraining,
    dense_weights,
    input_connectivity,
    normalise_input_weights,
    poisson_spikes,
    present_blocks,
    run_wta,
    train_wta,
    wta_advance,
    wta_init,
    wta_normalise,
    wta_prepare,
    wta_step,
)

__all__ = [
    "check_connectivity", "check_post_index",
    "SparseConnectivity", "connectivity", "connectivity_from_arrays", "no_connectivity",
    "with_delays", "with_weights", "change_delays", "spike_queue",
    "LIFParams", "LIFKernelParams", "LIFState", "lif_advance", "lif_init", "lif_prepare",
    "lif_step", "run_lif",
    "PCNNParams", "PCNNKernelParams", "PCNNState", "pcnn_prepare", "pcnn_init", "pcnn_step",
    "pcnn_advance",
    "run_pcnn", "convention_b_to_a",
    "STCParams", "STCKernelParams", "STCState", "STCModulators", "stc_prepare", "stc_init",
    "stc_modulators", "stc_advance", "stc_step", "run_stc",
    "WTAParams", "WTAKernelParams", "WTAState", "wta_prepare", "wta_init", "wta_step",
    "wta_advance", "wta_normalise", "run_wta", "present_blocks", "input_connectivity",
    "normalise_input_weights", "poisson_spikes", "dense_weights", "train_wta", "WTATraining",
]
