"""PyTorch front ends (imports torch): spiking modules trained with surrogate gradients."""

from .lif import LIF, LIFTensorState
from .surrogate import SURROGATES, spike

__all__ = ["LIF", "LIFTensorState", "SURROGATES", "spike"]
