"""PyTorch front ends (imports torch): spiking modules trained with surrogate gradients."""

from .events import EventFrames, PadTimeMajor, collate_time_major
from .hebbian import HebbianConv2d, HebbianLinear
from .lif import LIF, LIFTensorState
from .pcnn import PCNN, PCNNConv2d, PCNNTensorState, RFTDBatchNorm, TimeBatchNorm
from .surrogate import SURROGATES, spike

__all__ = ["HebbianLinear", "HebbianConv2d", "LIF", "LIFTensorState", "PCNN",
           "PCNNConv2d", "PCNNTensorState", "RFTDBatchNorm", "TimeBatchNorm", "SURROGATES", "spike"]
__all__ += ["EventFrames", "PadTimeMajor", "collate_time_major"]
