"""PyTorch front ends (imports torch): spiking modules trained with surrogate gradients."""

from .surrogate import SURROGATES, spike

__all__ = ["SURROGATES", "spike"]
