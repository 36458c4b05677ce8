"""Synthetic DVS gestures: moving blobs that emit ON/OFF edge events, plus isolated noise.

Each class is a motion pattern of one or two bright discs on a dark background, on a
``(W, H, P)`` sensor (default the DVS128's ``(128, 128, 2)``). The class indices follow
DVS128 Gesture's (0-based, tonic order) so a model can be tried on synthetic data first:

====  =====================  ==========================================================
 0    hand clapping          two discs approaching and receding horizontally
 1    right hand wave        one disc oscillating horizontally on the right half
 2    left hand wave         one disc oscillating horizontally on the left half
 3    right arm clockwise    one disc circling clockwise on the right half
 4    right arm ccw          one disc circling counter-clockwise on the right half
 5    left arm clockwise     one disc circling clockwise on the left half
 6    left arm ccw           one disc circling counter-clockwise on the left half
 7    arm roll               two discs orbiting each other fast at the centre
 8    air drums              two discs beating vertically in antiphase, lower half
 9    air guitar             a fast vertical strum on the right, a slow sway on the left
10    other                  one disc on a smooth random path
====  =====================  ==========================================================

"Clockwise" is as seen on the image (x to the right, y downwards).

Event model: at every 1 ms step each disc emits a Poisson number of events proportional to its
speed (the total over the stream has mean ``rate_hz · duration``). An event lies on the disc's
rim (radius jittered by 0.7 px) at an angle drawn with density ∝ ``|cos|`` of the angle to the
motion direction, so most events sit where the edge moves fastest; events on the leading half
are ON (``p = 1``: the bright disc arrives), on the trailing half OFF. ``noise_frac · n``
isolated events, uniform in space, time and polarity, are added for denoising to remove.
Timestamps are multiples of 1000 µs (tonic's DVSGesture time grid) in ``[0, duration_ms)``.
"""

from __future__ import annotations

import numpy as np

from ..._validate import in_range, positive
from ._core import DVS128_SENSOR_SIZE, EVENT_DTYPE, check_sensor_size

__all__ = ["SYNTHETIC_CLASSES", "synthetic_gesture", "synthetic_gesture_dataset"]

SYNTHETIC_CLASSES = (
    "hand clapping", "right hand wave", "left hand wave", "right arm clockwise",
    "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise",
    "arm roll", "air drums", "air guitar", "other",
)

_TWO_PI = 2.0 * np.pi


def _wave(rng, tau, *, centre, axis, amplitude, freq_hz):
    """(1, T, 2) disc centres oscillating along ``axis`` (0 = x, 1 = y) around ``centre``."""
    phase = rng.uniform(0, _TWO_PI)
    pos = np.tile(np.asarray(centre, float), (tau.size, 1))
    pos[:, axis] += amplitude * np.sin(_TWO_PI * freq_hz * tau + phase)
    return pos[None]


def _circle(rng, tau, *, centre, radius, freq_hz, sign, phase=None):
    """(1, T, 2) centres on a circle; sign +1 = clockwise on the image (y points down)."""
    phase = rng.uniform(0, _TWO_PI) if phase is None else phase
    angle = phase + sign * _TWO_PI * freq_hz * tau
    return np.stack([centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle)],
                    axis=-1)[None]


def _trajectories(label: int, rng: np.random.Generator, tau: np.ndarray) -> np.ndarray:
    """Disc centres ``(n_discs, T, 2)`` in 128×128 pixel coordinates for one class."""
    # per-sample variability: position, size of the motion, tempo
    off = rng.uniform(-5, 5, 2)
    amp = rng.uniform(0.85, 1.15)
    f = rng.uniform(0.8, 1.25)
    if label == 0:
        sep = 34 + 18 * amp * np.cos(_TWO_PI * 1.5 * f * tau + rng.uniform(0, _TWO_PI))
        cx, cy = 64 + off[0], 60 + off[1]
        return np.stack([np.stack([cx - sep / 2, np.full_like(tau, cy)], -1),
                         np.stack([cx + sep / 2, np.full_like(tau, cy)], -1)])
    if label in (1, 2):
        cx = (94 if label == 1 else 34) + off[0]
        return _wave(rng, tau, centre=(cx, 56 + off[1]), axis=0, amplitude=18 * amp,
                     freq_hz=1.5 * f)
    if label in (3, 4, 5, 6):
        cx = (88 if label in (3, 4) else 40) + off[0]
        sign = 1.0 if label in (3, 5) else -1.0
        return _circle(rng, tau, centre=(cx, 64 + off[1]), radius=22 * amp, freq_hz=f,
                       sign=sign)
    if label == 7:
        phase = rng.uniform(0, _TWO_PI)
        centre = (64 + off[0], 64 + off[1])
        return np.concatenate([
            _circle(rng, tau, centre=centre, radius=11 * amp, freq_hz=2 * f, sign=1.0,
                    phase=phase + shift) for shift in (0.0, np.pi)])
    if label == 8:
        phase = rng.uniform(0, _TWO_PI)
        ys = [84 + off[1] + 14 * amp * np.sin(_TWO_PI * 2 * f * tau + phase + s)
              for s in (0.0, np.pi)]
        return np.stack([np.stack([np.full_like(tau, x + off[0]), y], -1)
                         for x, y in zip((44, 84), ys, strict=True)])
    if label == 9:
        strum = _wave(rng, tau, centre=(82 + off[0], 72 + off[1]), axis=1, amplitude=16 * amp,
                      freq_hz=3 * f)
        sway = _wave(rng, tau, centre=(38 + off[0], 58 + off[1]), axis=0, amplitude=5,
                     freq_hz=0.5 * f)
        return np.concatenate([strum, sway])
    # label 10: a smooth random path, the sum of three random sinusoids per axis
    freqs = rng.uniform(0.3, 2.0, (2, 3))
    amps = rng.uniform(4, 12, (2, 3))
    phases = rng.uniform(0, _TWO_PI, (2, 3))
    waves = amps[..., None] * np.sin(_TWO_PI * freqs[..., None] * tau + phases[..., None])
    return (np.array([64 + off[0], 64 + off[1]])[:, None] + waves.sum(axis=1)).T[None]


def _edge_events(rng, centres, radius, rate_hz, duration_ms):
    """Rim events of every disc: returns float x, y, int step and bool polarity arrays."""
    velocity = np.gradient(centres, axis=1)                        # (n_discs, T, 2), px/ms
    speed = np.hypot(velocity[..., 0], velocity[..., 1])           # (n_discs, T)
    total = speed.sum()
    if total <= 0:
        return (np.zeros(0),) * 2 + (np.zeros(0, np.int64), np.zeros(0, bool))
    counts = rng.poisson(rate_hz * duration_ms / 1000.0 * speed / total)
    disc, step = np.nonzero(counts)
    reps = counts[disc, step]
    disc, step = np.repeat(disc, reps), np.repeat(step, reps)
    n = disc.size
    # angle to the motion direction with density ∝ |cos|: arcsin(2u - 1) covers the leading
    # half with density ∝ cos; half of the events are moved to the trailing half (OFF)
    along = np.arcsin(2.0 * rng.random(n) - 1.0)
    trailing = rng.random(n) < 0.5
    heading = np.arctan2(velocity[disc, step, 1], velocity[disc, step, 0])
    angle = heading + along + np.pi * trailing
    rim = radius + rng.normal(0.0, 0.7, n)
    x = centres[disc, step, 0] + rim * np.cos(angle)
    y = centres[disc, step, 1] + rim * np.sin(angle)
    return x, y, step.astype(np.int64), ~trailing


def synthetic_gesture(label: int, seed: int, *, duration_ms: int = 1500,
                      rate_hz: float = 20_000.0, noise_frac: float = 0.02,
                      sensor_size=DVS128_SENSOR_SIZE) -> np.ndarray:
    """One synthetic gesture event stream, deterministic per ``(label, seed)``.

    Parameters
    ----------
    label : int in [0, 10]
        Class (see :data:`SYNTHETIC_CLASSES` and the module docstring).
    seed : int >= 0
        Sample index; the stream depends only on ``(label, seed)`` and the other arguments.
    duration_ms : int
        Length; timestamps lie on the 1 ms grid in ``[0, duration_ms)``.
    rate_hz : float
        Mean number of edge (signal) events per second, all discs together.
    noise_frac : float in [0, 1]
        Number of isolated noise events as a fraction of the edge events.
    sensor_size : (W, H, P)
        The geometry is laid out for 128×128 and scaled to ``(W, H)``; ``P`` must be 2.

    Returns
    -------
    ndarray, shape (n,), dtype :data:`EVENT_DTYPE`, sorted by ``t``
    """
    if not isinstance(label, int | np.integer) or not 0 <= label < len(SYNTHETIC_CLASSES):
        raise ValueError(f"label must be an int in [0, {len(SYNTHETIC_CLASSES) - 1}], "
                         f"got {label!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(duration_ms, int | np.integer) or duration_ms < 1:
        raise ValueError(f"duration_ms must be a positive int, got {duration_ms!r}")
    rate_hz = positive("rate_hz", rate_hz)
    noise_frac = in_range("noise_frac", noise_frac, 0.0, 1.0)
    width, height, n_pol = check_sensor_size(sensor_size)
    if n_pol != 2:
        raise ValueError(f"sensor_size must have P = 2 polarities (ON/OFF), got {sensor_size}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(label), 0xD5]))
    tau = np.arange(int(duration_ms)) / 1000.0                       # s, one value per ms
    scale = np.array([width / 128.0, height / 128.0])
    centres = _trajectories(int(label), rng, tau) * scale
    radius = rng.uniform(6.0, 9.0) * min(scale)
    x, y, step, on = _edge_events(rng, centres, radius, rate_hz, int(duration_ms))
    x, y = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    x, y, step, on = x[inside], y[inside], step[inside], on[inside]
    n_noise = int(round(noise_frac * x.size))
    x = np.concatenate([x, rng.integers(0, width, n_noise)])
    y = np.concatenate([y, rng.integers(0, height, n_noise)])
    step = np.concatenate([step, rng.integers(0, int(duration_ms), n_noise)])
    on = np.concatenate([on, rng.random(n_noise) < 0.5])
    order = np.argsort(step, kind="stable")
    events = np.empty(order.size, dtype=EVENT_DTYPE)
    events["x"], events["y"], events["p"] = x[order], y[order], on[order]
    events["t"] = step[order] * 1000
    return events


def synthetic_gesture_dataset(n_per_class: int, *, labels=None, seed: int = 0,
                              **kwargs) -> tuple[list[np.ndarray], np.ndarray]:
    """A balanced synthetic data set: ``n_per_class`` streams of every class in ``labels``.

    Sample ``i`` of class ``c`` is ``synthetic_gesture(c, seed + i, **kwargs)``. The order
    interleaves the classes (``c0, c1, ..., c0, c1, ...``), so every prefix of
    ``k · len(labels)`` samples is balanced too (a train/test split by position stays
    balanced).

    Parameters
    ----------
    n_per_class : int >= 1
    labels : sequence of int, optional
        Classes to include (default all 11).
    seed : int >= 0
        Offset of the per-sample seeds (use different offsets for train and test sets).
    **kwargs
        Passed to :func:`synthetic_gesture` (``duration_ms``, ``rate_hz``, ``noise_frac``,
        ``sensor_size``).

    Returns
    -------
    events : list of ndarray
        One stream per sample.
    targets : ndarray of int64, shape (n_per_class · len(labels),)
    """
    if not isinstance(n_per_class, int | np.integer) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive int, got {n_per_class!r}")
    labels = tuple(range(len(SYNTHETIC_CLASSES))) if labels is None else tuple(labels)
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be a non-empty sequence of distinct classes, got {labels}")
    events, targets = [], []
    for i in range(int(n_per_class)):
        for label in labels:
            events.append(synthetic_gesture(label, seed + i, **kwargs))
            targets.append(label)
    return events, np.asarray(targets, dtype=np.int64)
