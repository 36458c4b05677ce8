"""Data sets and stimulus generators (NumPy only)."""

from . import events
from .corruptions import (
    CORRUPTIONS,
    DIGITS_CORRUPTIONS,
    GEOMETRIC_CORRUPTIONS,
    VALIDATION_CORRUPTIONS,
    corrupt,
    corrupt_digits,
    digits_c,
    load_cifar10c,
)
from .digits import DigitsSplit, digits_split, load_digits_images

__all__ = ["DigitsSplit", "digits_split", "load_digits_images",
           "CORRUPTIONS", "VALIDATION_CORRUPTIONS", "DIGITS_CORRUPTIONS", "GEOMETRIC_CORRUPTIONS",
           "corrupt", "corrupt_digits", "digits_c", "load_cifar10c", "events"]
