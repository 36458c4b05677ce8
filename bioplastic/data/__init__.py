"""Data sets and stimulus generators (NumPy only)."""

from . import events
from .corruptions import (
    CORRUPTIONS,
    DIGITS_CORRUPTIONS,
    DIGITS_HELD_OUT,
    GEOMETRIC_CORRUPTIONS,
    VALIDATION_CORRUPTIONS,
    corrupt,
    corrupt_digits,
    digits_c,
    load_cifar10c,
)
from .digits import DigitsSplit, digits_split, load_digits_images
from .moving import load_moving_mnist, moving_digits

__all__ = ["DigitsSplit", "digits_split", "load_digits_images",
           "moving_digits", "load_moving_mnist",
           "CORRUPTIONS", "VALIDATION_CORRUPTIONS", "DIGITS_CORRUPTIONS", "DIGITS_HELD_OUT",
           "GEOMETRIC_CORRUPTIONS",
           "corrupt", "corrupt_digits", "digits_c", "load_cifar10c", "events"]
