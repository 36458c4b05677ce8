"""Spike encoders: events → per-step spike trains, and images/frames → Poisson or latency spikes.

Every encoder returns a time-major array ``(T, ...)`` that :func:`bioplastic.simulate` (or a
model's front end) takes as ``inputs``. Randomness is drawn here, from a seed or a
``numpy.random.Generator``, never inside a kernel.
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from ..._validate import (
    as_generator,
    finite_float,
    in_range,
    non_negative_int,
    positive,
    positive_int,
)
from ._core import check_events, check_sensor_size

__all__ = ["events_to_spikes", "time_grid_steps", "poisson_encode", "latency_encode"]


def time_grid_steps(events: np.ndarray, dt_us: float, t_start_us: float | None = None
                    ) -> np.ndarray:
    """Step index ``floor((t - t_start) / dt)`` of each event (int64, shape (n,)).

    ``t_start_us`` defaults to the first event's time (0 for an empty stream).
    """
    dt_us = positive("dt_us", dt_us)
    t = events["t"].astype(np.float64)
    if t_start_us is not None:
        start = finite_float("t_start_us", t_start_us)
    else:
        start = float(t[0]) if t.size else 0.0
    return np.floor((t - start) / dt_us).astype(np.int64)


@njit
def _scatter_spikes(steps, flat, out, binary):
    # out: (T, P*H*W); events with a step outside [0, T) are ignored (checked by the caller)
    n_steps = out.shape[0]
    for k in range(steps.shape[0]):
        s = steps[k]
        if 0 <= s < n_steps:
            if binary:
                out[s, flat[k]] = 1
            else:
                out[s, flat[k]] += 1


def events_to_spikes(events: np.ndarray, sensor_size, *, dt_us: float = 1000.0,
                     n_steps: int | None = None, t_start_us: float | None = None,
                     binary: bool = True) -> np.ndarray:
    """Events → per-step spike trains on a time grid, shape ``(T, P·H·W)``.

    Step ``k`` holds the events with ``t_start + k·dt <= t < t_start + (k+1)·dt``. Input unit
    ``p·H·W + y·W + x`` is pixel ``(x, y)`` of polarity ``p``, i.e. the C-order flattening of a
    ``(P, H, W)`` frame (the layout :func:`to_frame` uses), so
    ``spikes.reshape(T, P, H, W)`` gives frames back.

    Parameters
    ----------
    events : structured ndarray, shape (n,)
        Sorted by ``t`` (µs), inside ``sensor_size``.
    sensor_size : (W, H, P)
    dt_us : float
        Grid step in µs (default 1000 = 1 ms, the time step of most spiking models here).
    n_steps : int, optional
        Number of steps T. Default: just enough to hold the last event,
        ``floor((t_last - t_start) / dt) + 1`` (0 for an empty stream, or when ``t_start_us`` is
        after the last event). Events past the end are dropped.
    t_start_us : float, optional
        Start of step 0 (default: the first event's time; 0 for an empty stream). Events before
        it are dropped.
    binary : bool
        ``True``: bool spikes (several events of one unit in one step count once). ``False``:
        int32 event counts.

    Returns
    -------
    ndarray, shape (T, P·H·W), bool (``binary``) or int32
    """
    width, height, n_pol = check_sensor_size(sensor_size)
    check_events(events, (width, height, n_pol))
    steps = time_grid_steps(events, dt_us, t_start_us)
    if n_steps is None:
        # a t_start_us after the last event leaves no step to hold: an empty raster
        n_steps = max(int(steps.max()) + 1, 0) if steps.size else 0
    else:
        n_steps = non_negative_int("n_steps", n_steps)
    out = np.zeros((n_steps, n_pol * height * width), dtype=np.bool_ if binary else np.int32)
    flat = (events["p"].astype(np.int64) * height + events["y"]) * width + events["x"]
    if binary:
        # uint8 view: numba writes 1 into bool arrays through it without a per-element cast
        _scatter_spikes(steps, flat, out.view(np.uint8), True)
    else:
        _scatter_spikes(steps, flat, out, False)
    return out


def poisson_encode(x, n_steps: int | None = None, *, max_rate_hz: float = 100.0,
                   dt_ms: float = 1.0, seed=None) -> np.ndarray:
    """Poisson (Bernoulli-per-step) rate coding of intensities in [0, 1].

    A unit of intensity ``x`` spikes in each step independently with probability
    ``x · max_rate_hz · dt_ms / 1000``.

    Parameters
    ----------
    x : array_like, values in [0, 1]
        A static image (any shape) with ``n_steps`` given, or time-major rates ``(T, ...)``
        (e.g. normalised frames) with ``n_steps=None``.
    n_steps : int, optional
        Number of steps for a static ``x``; ``None`` means ``x`` is already time-major.
    max_rate_hz : float
        Rate of a unit at intensity 1.
    dt_ms : float
        Step length.
    seed : int, Generator or None
        Source of the uniform draws.

    Returns
    -------
    ndarray of bool, shape (n_steps, *x.shape) or x.shape
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size:
        in_range("x", x, 0.0, 1.0)
    prob_scale = positive("max_rate_hz", max_rate_hz) * positive("dt_ms", dt_ms) / 1000.0
    if prob_scale > 1.0:
        raise ValueError(f"max_rate_hz * dt_ms / 1000 must be <= 1 (a probability per step), "
                         f"got {prob_scale}")
    rng = as_generator(seed)
    if n_steps is None:
        prob = x * prob_scale
    else:
        prob = np.broadcast_to(x * prob_scale, (positive_int("n_steps", n_steps),) + x.shape)
    return rng.random(prob.shape) < prob


def latency_encode(x, n_steps: int, *, method: str = "linear", tau_steps: float = 5.0,
                   threshold: float = 0.01) -> np.ndarray:
    """Time-to-first-spike coding: each unit spikes at most once, brighter units earlier.

    * ``method="linear"``: spike step ``round((1 - x) · (n_steps - 1))``, so ``x = 1`` fires at
      step 0 and ``x = threshold`` near the end.
    * ``method="log"``: the first threshold crossing of an RC neuron driven by ``x``,
      ``t = tau · ln(x / (x - threshold))`` steps (rounded), clipped to ``n_steps - 1``.

    Units with ``x < threshold`` (``x <= threshold`` for ``"log"``) never spike.

    Parameters
    ----------
    x : array_like, values in [0, 1]
        Image or frame of any shape.
    n_steps : int
    method : {"linear", "log"}
    tau_steps : float
        Time constant of the ``"log"`` code, in steps.
    threshold : float
        Intensity below which a unit stays silent.

    Returns
    -------
    ndarray of bool, shape (n_steps, *x.shape)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size:
        in_range("x", x, 0.0, 1.0)
    n_steps = positive_int("n_steps", n_steps)
    threshold = in_range("threshold", threshold, 0.0, 1.0)
    if method == "linear":
        fires = x >= threshold
        step = np.rint((1.0 - x) * (n_steps - 1))
    elif method == "log":
        tau = positive("tau_steps", tau_steps)
        fires = x > threshold
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.rint(tau * np.log(x / (x - threshold)))
        step = np.minimum(np.where(fires, step, 0.0), n_steps - 1)
    else:
        raise ValueError(f"method must be 'linear' or 'log', got {method!r}")
    out = np.zeros((int(n_steps),) + x.shape, dtype=bool)
    index = np.nonzero(fires)
    out[(step[index].astype(np.int64),) + index] = True
    return out
