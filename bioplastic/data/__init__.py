"""Data sets and stimulus generators (NumPy only)."""

from .digits import DigitsSplit, digits_split, load_digits_images

__all__ = ["DigitsSplit", "digits_split", "load_digits_images"]
