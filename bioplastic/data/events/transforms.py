"""Event transforms with tonic's semantics: ``to_frame``, ``denoise``, ``downsample``,
``crop``, ``time_jitter``.

Each function reproduces the output of the tonic transform of the same name (tonic 1.7,
``tonic.transforms``) on valid input; the tests compare them on the same events. The
frame accumulation and the denoising filter are Numba loops (the slicing arithmetic is tonic's,
in NumPy, so window edges round the same way). Where tonic has a quirk it is kept, and
written down here; where tonic crashes or silently misbehaves, these raise a clear error.
Inputs are never modified (tonic's ``ToFrame`` zeroes ``p`` in place on a 1-polarity sensor).

Deviations from tonic, all on input tonic mishandles:

* an empty stream gives int16 frames of shape ``(T, P, H, W)`` (tonic: float64 ``(T, P, W,
  H)``, with W and H swapped);
* ``sensor_size`` is required (tonic infers it from the events, which breaks batching);
* ``start_time``/``end_time`` with anything but ``time_window``, ``include_incomplete`` with
  a bin count, zero or negative slicing values raise ``ValueError`` (tonic ignores them or
  fails later);
* ``denoise`` of an empty stream returns it (tonic raises on ``max()`` of nothing).
"""

from __future__ import annotations

import numpy as np

from ..._jit import njit
from ..._validate import as_generator, finite_float, non_negative, positive
from ._core import check_events, check_sensor_size

__all__ = ["to_frame", "frame_slices", "denoise", "downsample", "crop", "time_jitter"]

_SLICERS = ("time_window", "event_count", "n_time_bins", "n_event_bins")


# --------------------------------------------------------------------------------- to_frame
def _positive_int(name: str, value) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _slices_by_time(t, time_window, overlap, include_incomplete, start_time, end_time):
    # tonic.slicers.SliceByTime.get_slice_metadata, same arithmetic
    stride = time_window - overlap
    if not stride > 0:
        raise ValueError(f"overlap must be smaller than time_window, got overlap={overlap} "
                         f">= time_window={time_window}")
    start = t[0] if start_time is None else start_time
    end = t[-1] if end_time is None else end_time
    duration = end - start
    rounding = np.ceil if include_incomplete else np.floor
    n_slices = max(int(rounding((duration - time_window) / stride) + 1), 1)
    starts = np.arange(n_slices) * stride + start
    return np.searchsorted(t, starts), np.searchsorted(t, starts + time_window)


def _slices_by_count(n_events, event_count, overlap, include_incomplete):
    # tonic.slicers.SliceByEventCount.get_slice_metadata
    count = min(event_count, n_events)
    stride = event_count - overlap
    if stride <= 0:
        raise ValueError(f"overlap must be smaller than event_count, got overlap={overlap} "
                         f">= event_count={event_count}")
    rounding = np.ceil if include_incomplete else np.floor
    n_slices = int(rounding((n_events - count) / stride) + 1)
    starts = (np.arange(n_slices) * stride).astype(int)
    return starts, starts + count


def _slices_by_time_bins(t, n_bins, overlap):
    # tonic.slicers.SliceByTimeBins.get_slice_metadata: events at t >= t0 + n_bins·window fall
    # outside every bin; without overlap that includes the last event
    window = (t[-1] - t[0]) // n_bins * (1 + overlap)
    stride = window * (1 - overlap)
    starts = np.arange(n_bins) * stride + t[0]
    return np.searchsorted(t, starts), np.searchsorted(t, starts + window)


def _slices_by_event_bins(n_events, n_bins, overlap):
    # tonic.slicers.SliceByEventBins.get_slice_metadata
    count = int(n_events // n_bins * (1 + overlap))
    stride = int(count * (1 - overlap))
    starts = np.arange(n_bins) * stride
    return starts, starts + count


def _check_slicing(time_window, event_count, n_time_bins, n_event_bins, overlap,
                   include_incomplete, start_time, end_time) -> str:
    given = [name for name, value in zip(
        _SLICERS, (time_window, event_count, n_time_bins, n_event_bins), strict=True)
        if value is not None]
    if len(given) != 1:
        raise ValueError("set exactly one of time_window, event_count, n_time_bins, "
                         f"n_event_bins; got {given or 'none'}")
    method = given[0]
    if method != "time_window" and (start_time is not None or end_time is not None):
        raise ValueError(f"start_time and end_time apply to time_window only, not {method}")
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if value is not None:
            finite_float(name, value)
    if method in ("n_time_bins", "n_event_bins"):
        if include_incomplete:
            raise ValueError(f"include_incomplete applies to time_window and event_count, "
                             f"not {method}")
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be a fraction of a bin in [0, 1) for {method}, "
                             f"got {overlap!r}")
    return method


def frame_slices(events: np.ndarray, *, time_window=None, event_count=None, n_time_bins=None,
                 n_event_bins=None, overlap=0, include_incomplete: bool = False,
                 start_time=None, end_time=None) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) event index of every frame, as :func:`to_frame` slices them.

    Same arguments as :func:`to_frame` (``events`` sorted by ``t``). Returns two int64 arrays
    of shape ``(T,)``. The ends may exceed ``len(events)`` (``event_count`` with
    ``include_incomplete``); slicing clamps. An empty stream gives as many empty slices as
    :func:`to_frame` gives frames.
    """
    method = _check_slicing(time_window, event_count, n_time_bins, n_event_bins, overlap,
                            include_incomplete, start_time, end_time)
    check_events(events)
    if events.shape[0] == 0:
        empty = np.zeros(_n_frames_when_empty(method, time_window, event_count, n_time_bins,
                                              n_event_bins), dtype=np.int64)
        return empty, empty.copy()
    return _slices(method, events, time_window, event_count, n_time_bins, n_event_bins,
                   overlap, include_incomplete, start_time, end_time)


def _slices(method, events, time_window, event_count, n_time_bins, n_event_bins, overlap,
            include_incomplete, start_time, end_time):
    """:func:`frame_slices` of a checked, non-empty stream."""
    n = events.shape[0]
    if method == "time_window":
        window = positive("time_window", time_window)
        window = time_window if isinstance(time_window, int | np.integer) else window
        starts, ends = _slices_by_time(events["t"], window, overlap, include_incomplete,
                                       start_time, end_time)
    elif method == "event_count":
        starts, ends = _slices_by_count(n, _positive_int("event_count", event_count), overlap,
                                        include_incomplete)
    elif method == "n_time_bins":
        starts, ends = _slices_by_time_bins(events["t"], _positive_int("n_time_bins",
                                                                         n_time_bins), overlap)
    else:
        starts, ends = _slices_by_event_bins(n, _positive_int("n_event_bins", n_event_bins),
                                             overlap)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


@njit
def _accumulate_frames(x, y, p, starts, ends, frames):
    # frames: (T, P, H, W) int16; event k of slice i adds 1 at (i, p, y, x). int16 wraps on
    # overflow exactly like tonic's np.add.at on an int16 array.
    n = x.shape[0]
    for i in range(starts.shape[0]):
        stop = min(ends[i], n)
        for k in range(max(starts[i], 0), stop):
            frames[i, p[k], y[k], x[k]] += 1


def _n_frames_when_empty(method, time_window, event_count, n_time_bins, n_event_bins) -> int:
    if method == "n_time_bins":
        return _positive_int("n_time_bins", n_time_bins)
    if method == "n_event_bins":
        return _positive_int("n_event_bins", n_event_bins)
    if method == "time_window":
        positive("time_window", time_window)
    else:
        _positive_int("event_count", event_count)
    return 1


def to_frame(events: np.ndarray, sensor_size, *, time_window=None, event_count=None,
             n_time_bins=None, n_event_bins=None, overlap=0, include_incomplete: bool = False,
             start_time=None, end_time=None) -> np.ndarray:
    """Accumulate events into frames of event counts, as ``tonic.transforms.ToFrame``.

    Set exactly one slicing argument:

    * ``time_window=w`` (µs): windows ``[s, s + w)`` with ``s = start + i·(w − overlap)``,
      ``start`` the first event's time (or ``start_time``); the number of frames is
      ``floor((duration − w) / stride) + 1`` (``ceil`` with ``include_incomplete``), at
      least 1, with ``duration = end − start`` and ``end`` the last event's time (or
      ``end_time``). ``overlap`` is in µs.
    * ``event_count=c``: frames of ``c`` consecutive events, stride ``c − overlap`` events;
      ``include_incomplete`` keeps a shorter last frame.
    * ``n_time_bins=T``: ``T`` bins of ``window = (t_last − t_first) // T · (1 + overlap)``,
      stride ``window · (1 − overlap)`` (``overlap`` a fraction in [0, 1)). Bins are half-open,
      so **events with t >= t_first + T·window are dropped** (tonic's behaviour). Without
      overlap that end is at most ``t_last``, so the last event is always dropped (only it,
      and any at the same time, when ``t_last − t_first`` is divisible by T; also the
      events of the remainder when it is not; every event but those at ``t_first`` when the
      span is shorter than T µs).
    * ``n_event_bins=T``: ``T`` frames of ``n // T · (1 + overlap)`` events.

    Parameters
    ----------
    events : structured ndarray, shape (n,)
        Sorted by ``t``, inside ``sensor_size``. Not modified.
    sensor_size : (W, H, P)
        With ``P = 1`` all events go to polarity 0 (they must then all have the same ``p``,
        as tonic requires).

    Returns
    -------
    ndarray of int16, shape (T, P, H, W)
        Event counts (clip to 1 for binary frames). An empty stream gives zeros with
        ``T = 1`` (``time_window``, ``event_count``) or the number of bins.
    """
    width, height, n_pol = check_sensor_size(sensor_size)
    method = _check_slicing(time_window, event_count, n_time_bins, n_event_bins, overlap,
                            include_incomplete, start_time, end_time)
    check_events(events, (width, height, 2 if n_pol == 1 else n_pol))
    if events.shape[0] == 0:
        n_frames = _n_frames_when_empty(method, time_window, event_count, n_time_bins,
                                        n_event_bins)
        return np.zeros((n_frames, n_pol, height, width), dtype=np.int16)
    p = events["p"].astype(np.int64)
    if n_pol == 1:
        if np.unique(p).size > 1:
            raise ValueError("sensor_size has one polarity (P = 1) but events contain both")
        p = np.zeros_like(p)
    starts, ends = _slices(method, events, time_window, event_count, n_time_bins,
                           n_event_bins, overlap, include_incomplete, start_time, end_time)
    frames = np.zeros((starts.shape[0], n_pol, height, width), dtype=np.int16)
    _accumulate_frames(np.ascontiguousarray(events["x"]), np.ascontiguousarray(events["y"]),
                       p, starts, ends, frames)
    return frames


# ---------------------------------------------------------------------------------- denoise
#: Largest grid :func:`denoise` allocates (float64 cells): 8,192² pixels, 512 MB, far above any
#: event camera (DVS128: 128², Prophesee Gen4: 1,280 × 720) but small enough that coordinates
#: gone wrong (int16's 32,767² would be 8.6 GB) raise instead of exhausting the memory.
MAX_DENOISE_CELLS = 8192 * 8192


@njit
def _denoise_keep(x, y, t, width, height, filter_time, initial):
    # memory[x, y]: time until which pixel (x, y) counts as recently active. An event first
    # refreshes its own pixel, then survives if a 4-neighbour (not itself) is still active.
    memory = np.full((width, height), initial)
    keep = np.zeros(x.shape[0], dtype=np.bool_)
    for k in range(x.shape[0]):
        xi, yi, tk = x[k], y[k], float(t[k])
        memory[xi, yi] = tk + filter_time
        if ((xi > 0 and memory[xi - 1, yi] > tk)
                or (xi < width - 1 and memory[xi + 1, yi] > tk)
                or (yi > 0 and memory[xi, yi - 1] > tk)
                or (yi < height - 1 and memory[xi, yi + 1] > tk)):
            keep[k] = True
    return keep


def denoise(events: np.ndarray, filter_time: float = 10000.0, *,
            keep_early: bool = True) -> np.ndarray:
    """Drop events with no event at a 4-neighbour pixel within ``filter_time``, as
    ``tonic.transforms.Denoise``.

    Events are processed in time order. Each event sets its pixel's memory to
    ``t + filter_time`` and is kept if a 4-neighbour's memory is ``> t``. The grid is
    ``(max x + 1) × (max y + 1)`` of these events (as in tonic), not the sensor.

    Parameters
    ----------
    events : structured ndarray, shape (n,)
        Sorted by ``t`` (µs). Not modified.
    filter_time : float
        µs.
    keep_early : bool
        ``True`` (tonic): memory starts at ``filter_time``, so **every event with
        ``t < filter_time`` is kept** if it has a neighbour inside the grid. ``False``: memory
        starts at ``-inf``, so only real neighbouring events count.

    Returns
    -------
    ndarray, same dtype, shape (m,), m <= n
        The kept events, in order (a new array).
    """
    check_events(events)
    filter_time = non_negative("filter_time", filter_time)
    if events.shape[0] == 0:
        return events.copy()
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    width, height = int(x.max()) + 1, int(y.max()) + 1
    if width * height > MAX_DENOISE_CELLS:
        raise ValueError(f"denoise sizes its grid from the events' largest x and y (as tonic), "
                         f"here {width} x {height} pixels, over the {MAX_DENOISE_CELLS} cells "
                         "(512 MB) it allows; events['x'] and events['y'] should be pixel "
                         "coordinates of a sensor")
    initial = filter_time if keep_early else -np.inf
    keep = _denoise_keep(x, y, np.ascontiguousarray(events["t"]), width, height, filter_time,
                         initial)
    return events[keep]


# ----------------------------------------------------------------------- other transforms
def _pair(name: str, value) -> tuple[float, float]:
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or an (x, y) pair, got {value!r}")
        return positive(f"{name}[0]", value[0]), positive(f"{name}[1]", value[1])
    factor = positive(name, value)
    return factor, factor


def downsample(events: np.ndarray, sensor_size, *, time_factor: float = 1.0,
               spatial_factor=1.0, target_size=None) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Scale timestamps and pixel coordinates, as ``tonic.transforms.Downsample``.

    ``t' = t · time_factor`` and ``x' = x · fx``, ``y' = y · fy``, each cast back to the field's
    type (truncation, as tonic's assignment does). No event is dropped; events that land on
    the same pixel stay separate events.

    Parameters
    ----------
    events : structured ndarray, shape (n,)
        Inside ``sensor_size``. Not modified.
    sensor_size : (W, H, P)
    time_factor : float
        E.g. 0.001 turns µs into ms.
    spatial_factor : float or (fx, fy)
        E.g. 0.25 maps 128×128 to 32×32.
    target_size : (W', H'), optional
        Overrides ``spatial_factor`` with ``(W'/W, H'/H)``.

    Returns
    -------
    events : ndarray, same dtype
    sensor_size : (W', H', P)
        The sensor the new events live on: ``floor((W − 1)·fx) + 1`` columns (``W'`` with
        ``target_size``); pass it to later transforms.
    """
    width, height, n_pol = check_sensor_size(sensor_size)
    check_events(events, (width, height, n_pol), sorted_required=False)
    time_factor = positive("time_factor", time_factor)
    if target_size is not None:
        if len(tuple(target_size)) != 2:
            raise ValueError(f"target_size must be (W', H'), got {target_size!r}")
        fx, fy = np.asarray(target_size) / np.asarray((width, height))
        positive("target_size", np.asarray(target_size))
    else:
        fx, fy = _pair("spatial_factor", spatial_factor)
    out = events.copy()
    out["t"] = events["t"] * time_factor
    out["x"] = events["x"] * fx
    out["y"] = events["y"] * fy
    new_size = (int(np.floor((width - 1) * fx)) + 1, int(np.floor((height - 1) * fy)) + 1,
                n_pol)
    if target_size is not None:
        new_size = (int(target_size[0]), int(target_size[1]), n_pol)
    return out, new_size


def crop(events: np.ndarray, sensor_size, target_size, *, origin=None,
         seed=None) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Keep the events inside a ``target_size`` box and shift them to its corner.

    * ``origin=None, seed=None``: centre crop, as ``tonic.transforms.CenterCrop``: the box
      starts at ``((W − w) // 2, (H − h) // 2)``.
    * ``seed`` given: random crop, as ``tonic.transforms.RandomCrop``: the box starts at
      ``(int(u1·(W − w)), int(u2·(H − h)))`` with ``u1, u2`` two uniform draws (x first).
    * ``origin=(x0, y0)``: the box starts there.

    Parameters
    ----------
    events : structured ndarray, shape (n,)
        Inside ``sensor_size``. Not modified.
    sensor_size : (W, H, P)
    target_size : (w, h)
        At most ``(W, H)``.
    origin : (x0, y0), optional
    seed : int, Generator, RandomState or None
        Source of the random origin (a ``numpy.random.RandomState`` seeded like
        ``np.random.seed`` reproduces tonic's draw).

    Returns
    -------
    events : ndarray, same dtype
    sensor_size : (w, h, P)
    """
    width, height, n_pol = check_sensor_size(sensor_size)
    check_events(events, (width, height, n_pol), sorted_required=False)
    box = tuple(target_size)
    if len(box) != 2 or not all(isinstance(v, int | np.integer) and 0 < v for v in box):
        raise ValueError(f"target_size must be two positive ints (w, h), got {target_size!r}")
    if box[0] > width or box[1] > height:
        raise ValueError(f"target_size {box} must fit in sensor_size {sensor_size}")
    if origin is not None and seed is not None:
        raise ValueError("give origin or seed, not both")
    if origin is not None:
        x0, y0 = (int(v) for v in origin)
        if not (0 <= x0 <= width - box[0] and 0 <= y0 <= height - box[1]):
            raise ValueError(f"origin {origin} puts the {box} box outside sensor_size "
                             f"{sensor_size}")
    elif seed is not None:
        rng = _generator(seed)
        x0 = int(rng.random() * (width - box[0]))
        y0 = int(rng.random() * (height - box[1]))
    else:
        x0, y0 = (width - box[0]) // 2, (height - box[1]) // 2
    x, y = events["x"], events["y"]
    out = events[(x >= x0) & (x < x0 + box[0]) & (y >= y0) & (y < y0 + box[1])]
    out["x"] -= x0
    out["y"] -= y0
    return out, (int(box[0]), int(box[1]), n_pol)


def _generator(seed):
    """A Generator from a seed, or a RandomState as given (to reproduce tonic's draws)."""
    return seed if isinstance(seed, np.random.RandomState) else as_generator(seed)


def time_jitter(events: np.ndarray, std: float, *, seed=None, clip_negative: bool = True,
                sort_timestamps: bool = False) -> np.ndarray:
    """Add Gaussian noise to every timestamp, as ``tonic.transforms.TimeJitter``.

    ``t' = t + N(0, std)``, cast back to the field's type (truncation towards zero for integer
    µs). ``clip_negative`` drops events whose new time is negative; ``sort_timestamps`` sorts
    the result by time (NumPy's default ``argsort``, as tonic). Without sorting the result can
    be out of order, which the other transforms here reject.

    Parameters
    ----------
    events : structured ndarray, shape (n,)
        Not modified.
    std : float
        Standard deviation in µs.
    seed : int, Generator, RandomState or None
        Source of the normal draws (a ``numpy.random.RandomState`` seeded like
        ``np.random.seed`` reproduces tonic's draws).

    Returns
    -------
    ndarray, same dtype
    """
    check_events(events, sorted_required=False)
    std = non_negative("std", std)
    rng = _generator(seed)
    shifts = rng.normal(0, std, len(events))
    t = events["t"] + shifts
    if events.dtype["t"].kind in "iu":
        t = np.trunc(t)      # the cast's truncation, before an unsigned field could wrap
    negative = t < 0
    if clip_negative:
        out, t = events[~negative], t[~negative]
    elif events.dtype["t"].kind == "u" and negative.any():
        raise ValueError(f"events['t'] is unsigned ({events.dtype['t']}) and the jitter made "
                         f"{int(negative.sum())} times negative; use clip_negative=True or a "
                         "signed time field")
    else:
        out = events.copy()
    out["t"] = t
    if sort_timestamps:
        out = out[np.argsort(out["t"])]
    return out
