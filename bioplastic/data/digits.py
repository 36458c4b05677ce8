"""scikit-learn's bundled digits (1,797 images, 8×8, 10 classes): the real data set available
offline, used by the experiments and benchmarks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validate import as_generator, in_range

__all__ = ["DigitsSplit", "load_digits_images", "digits_split"]


class DigitsSplit(NamedTuple):
    """Images ``(n, 1, H, W)`` float64 in [0, 1] and int64 labels ``(n,)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _upsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of ``(n, H, W)`` by an integer factor."""
    return images.repeat(factor, axis=1).repeat(factor, axis=2)


def load_digits_images(*, upsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """All digits as ``(1797, 1, 8*upsample, 8*upsample)`` float64 in [0, 1] and labels.

    The raw pixel values are integers 0..16, so they are divided by 16.
    """
    from sklearn.datasets import load_digits

    if not isinstance(upsample, int) or upsample < 1:
        raise ValueError(f"upsample must be a positive integer, got {upsample!r}")
    data = load_digits()
    images = _upsample(data.images.astype(np.float64) / 16.0, upsample)
    return images[:, None], data.target.astype(np.int64)


def digits_split(seed=0, *, test_fraction: float = 0.25, upsample: int = 1) -> DigitsSplit:
    """A stratified, seeded train/test split of the digits images."""
    from sklearn.model_selection import train_test_split

    in_range("test_fraction", test_fraction, 0.0, 1.0, closed="neither")
    images, labels = load_digits_images(upsample=upsample)
    rng = as_generator(seed)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels,
        random_state=int(rng.integers(2**31 - 1)))
    return DigitsSplit(x_tr, y_tr, x_te, y_te)
