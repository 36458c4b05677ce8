"""Event transforms vs tonic on the same 1 M events (issue 11 targets).

Targets: ``to_frame(n_time_bins=T)`` and ``denoise`` at least as fast as tonic's ``ToFrame`` and
``Denoise`` on the same events, with identical output. The stream is a synthetic gesture of
about 1 M events (6 s at ~164 k events/s, 2 % noise) on the DVS128 sensor. Both sides are
timed in interleaved rounds (best of each), compile time excluded; tonic gets a fresh copy of
the events each call because its ``ToFrame`` may write into them.
"""

from __future__ import annotations

import numpy as np

from . import Benchmark, best_time

__all__ = ["BENCHMARKS"]

SENSOR = (128, 128, 2)


def _stream(quick: bool) -> np.ndarray:
    from ..data.events import synthetic_gesture

    if quick:
        return synthetic_gesture(3, 0, duration_ms=500, rate_hz=40_000.0)
    return synthetic_gesture(3, 0, duration_ms=6000, rate_hz=164_000.0)


def _interleaved(candidates: dict, rounds: int) -> dict:
    best = {name: best_time(fn, repeat=1, warmup=1) for name, fn in candidates.items()}
    for _ in range(rounds - 1):
        for name, fn in candidates.items():
            best[name] = min(best[name], best_time(fn, repeat=1, warmup=0))
    return best


def _row(name, target, events, t_ours, t_tonic, same, quick) -> dict:
    ratio = t_tonic / t_ours
    return {"name": name, "target": target, "n_events": int(events.size),
            "time_ours_s": t_ours, "time_tonic_s": t_tonic, "ratio": ratio,
            "identical": bool(same), "met": bool(ratio >= 1.0 and same), "quick": quick}


def run(quick: bool) -> list[dict]:
    import tonic

    from ..data.events import denoise, to_frame

    events = _stream(quick)
    n_bins = 100
    frame = tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=n_bins)
    best = _interleaved({"ours": lambda: to_frame(events, SENSOR, n_time_bins=n_bins),
                         "tonic": lambda: frame(events.copy())}, 2 if quick else 5)
    same = np.array_equal(to_frame(events, SENSOR, n_time_bins=n_bins), frame(events.copy()))
    rows = [_row("events_to_frame_n_time_bins",
                 f"to_frame(n_time_bins={n_bins}) on 1 M events >= tonic ToFrame speed, "
                 "identical frames", events, best["ours"], best["tonic"], same, quick)]

    noise = tonic.transforms.Denoise(filter_time=10_000)
    best = _interleaved({"ours": lambda: denoise(events, 10_000),
                         "tonic": lambda: noise(events)}, 2 if quick else 3)
    same = np.array_equal(denoise(events, 10_000), noise(events))
    rows.append(_row("events_denoise", "denoise(filter_time=10 ms) on 1 M events >= tonic "
                     "Denoise speed, identical events", events, best["ours"], best["tonic"],
                     same, quick))
    return rows


BENCHMARKS = (
    Benchmark("events", "to_frame(n_time_bins) and denoise vs tonic on 1 M events", run,
              needs=("tonic",)),
)
