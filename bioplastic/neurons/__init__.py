"""Neuron models as Numba kernels on NumPy arrays (no torch, no brian2)."""

from .connectivity import (
    SparseConnectivity,
    connectivity,
    connectivity_from_arrays,
    no_connectivity,
)
from .lif import LIFKernelParams, LIFParams, LIFState, lif_init, lif_prepare, lif_step, run_lif
from .pcnn import (
    PCNNKernelParams,
    PCNNParams,
    PCNNState,
    convention_b_to_a,
    pcnn_init,
    pcnn_prepare,
    pcnn_step,
    run_pcnn,
)

__all__ = [
    "SparseConnectivity", "connectivity", "connectivity_from_arrays", "no_connectivity",
    "LIFParams", "LIFKernelParams", "LIFState", "lif_init", "lif_prepare", "lif_step", "run_lif",
    "PCNNParams", "PCNNKernelParams", "PCNNState", "pcnn_prepare", "pcnn_init", "pcnn_step",
    "run_pcnn", "convention_b_to_a",
]
