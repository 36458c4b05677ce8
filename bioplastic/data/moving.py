"""Moving-digit videos: a Moving-MNIST-like generator from scikit-learn's digits, and a loader
for the real Moving MNIST file.

:func:`moving_digits` places ``n_digits`` digits (8×8 scikit-learn digits, enlarged by an
integer factor) on a black square frame and moves each along a straight line at constant
speed, bouncing off the borders; overlapping digits combine by the pixel-wise maximum (as in
Srivastava et al.'s Moving MNIST). Everything is drawn from one seeded generator, so a seed
always gives the same videos.

:func:`load_moving_mnist` reads ``mnist_test_seq.npy`` (Srivastava et al., 2015; 10,000
sequences of 20 frames of 64×64 uint8, stored time-major ``(20, N, 64, 64)``).

Both return time-major float64 videos ``(T, N, 1, H, W)`` in [0, 1]; split them into
``T_in`` input and ``T_out`` target frames along axis 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validate import as_generator, finite_float, in_range
from .digits import load_digits_images

__all__ = ["moving_digits", "load_moving_mnist"]


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _bounce(start: float, velocity: float, limit: float, n_frames: int) -> np.ndarray:
    """Positions in [0, limit] of a point moving at constant speed, reflected at the ends."""
    positions = np.empty(n_frames)
    pos, vel = start, velocity
    for t in range(n_frames):
        positions[t] = pos
        pos += vel
        if pos < 0.0 or pos > limit:
            vel = -vel
            pos = -pos if pos < 0.0 else 2.0 * limit - pos
    return positions


def moving_digits(n_sequences: int, *, size: int = 32, n_frames: int = 20, n_digits: int = 2,
                  digit_scale: int | None = None, speed: float | None = None,
                  seed=0) -> np.ndarray:
    """Videos of bouncing digits.

    Parameters
    ----------
    n_sequences : int
    size : int
        Frame side in pixels (32 or 64 are the usual choices).
    n_frames : int
        Frames per video (10 → 10 prediction uses 20).
    n_digits : int
    digit_scale : int, optional
        Integer enlargement of the 8×8 digits (default ``size // 16``: 16-pixel digits in
        32×32 frames, 32-pixel digits in 64×64).
    speed : float, optional
        Pixels per frame, in ``[0, size − digit side]`` (a digit bounces off a border at most
        once per frame); default ``0.1 · (size − digit side)``, Moving MNIST's step length.
    seed : int or numpy.random.Generator

    Returns
    -------
    ndarray, float64, shape (n_frames, n_sequences, 1, size, size), values in [0, 1]
    """
    n_sequences = _positive_int("n_sequences", n_sequences)
    size, n_frames = _positive_int("size", size), _positive_int("n_frames", n_frames)
    n_digits = _positive_int("n_digits", n_digits)
    scale = _positive_int("digit_scale", max(1, size // 16) if digit_scale is None
                          else digit_scale)
    side = 8 * scale
    if side > size:
        raise ValueError(f"digit_scale={scale} makes {side}-pixel digits, larger than size={size}")
    limit = float(size - side)
    speed = 0.1 * limit if speed is None else in_range(
        f"speed (pixels per frame, at most size - digit side = {size} - {side})",
        finite_float("speed", speed), 0.0, limit)
    rng = as_generator(seed)
    images, _ = load_digits_images(upsample=scale)   # (1797, 1, side, side)
    videos = np.zeros((n_frames, n_sequences, 1, size, size))
    for k in range(n_sequences):
        for _ in range(n_digits):
            digit = images[rng.integers(len(images)), 0]
            angle = rng.uniform(0.0, 2.0 * np.pi)
            rows = _bounce(rng.uniform(0, limit), speed * np.sin(angle), limit, n_frames)
            cols = _bounce(rng.uniform(0, limit), speed * np.cos(angle), limit, n_frames)
            for t in range(n_frames):
                r, c = int(round(rows[t])), int(round(cols[t]))
                window = videos[t, k, 0, r:r + side, c:c + side]
                np.maximum(window, digit, out=window)
    return videos


def load_moving_mnist(path, *, n_sequences: int | None = None) -> np.ndarray:
    """Moving MNIST from ``mnist_test_seq.npy`` as float64 ``(20, N, 1, 64, 64)`` in [0, 1].

    ``path``: the ``.npy`` file (uint8, time-major ``(T, N, H, W)``); ``n_sequences``: read only
    the first ``n`` sequences (the file is memory-mapped, so this reads only those); asking for
    more than the file holds is a ``ValueError`` (not a silently shorter set).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must be the Moving MNIST .npy file, got the directory {path}")
    if not path.is_file():
        raise FileNotFoundError(f"path must be the Moving MNIST .npy file, {path} does not exist")
    try:
        raw = np.load(path, mmap_mode="r")
    except ValueError as error:     # truncated, not .npy, or an object array
        raise ValueError(f"{path} is not a readable .npy array file ({error})") from error
    if not isinstance(raw, np.ndarray):        # an .npz archive (np.lib.npyio.NpzFile)
        raw.close()
        raise ValueError(f"path must be a .npy array file, {path} is an .npz archive; save "
                         "the array itself with np.save")
    if raw.ndim != 4 or raw.dtype != np.uint8:
        raise ValueError(f"{path} must hold a uint8 array (T, N, H, W), got {raw.dtype} with "
                         f"shape {raw.shape}")
    if n_sequences is not None:
        n = _positive_int("n_sequences", n_sequences)
        if n > raw.shape[1]:
            raise ValueError(f"n_sequences must be at most the {raw.shape[1]} sequences of "
                             f"{path}, got {n}")
        raw = raw[:, :n]
    return (np.asarray(raw, dtype=np.float64) / 255.0)[:, :, None]
