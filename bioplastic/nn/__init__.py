"""PyTorch front ends (imports torch): spiking modules trained with surrogate gradients.

The maths lives once in :mod:`bioplastic.nn.functional`; every spiking module is a
:class:`~bioplastic.nn.base.SpikingModule` (``spikes, state = layer(x)`` on ``(T, B, ...)``,
``layer.step(x_t, state)``, ``layer.run(x, record=...)``).
"""

from . import functional
from .base import SpikeTrace, SpikingModule
from .events import EventFrames, PadTimeMajor, collate_time_major
from .hebbian import HebbianConv2d, HebbianLinear
from .lif import LIF, LIFTensorState
from .pcnn import PCNN, PCNNConv2d, PCNNTensorState, RFTDBatchNorm, TimeBatchNorm
from .surrogate import SURROGATES, spike

__all__ = ["functional", "SpikingModule", "SpikeTrace", "HebbianLinear", "HebbianConv2d",
           "LIF", "LIFTensorState", "PCNN", "PCNNConv2d", "PCNNTensorState", "RFTDBatchNorm",
           "TimeBatchNorm", "SURROGATES", "spike"]
__all__ += ["EventFrames", "PadTimeMajor", "collate_time_major"]
