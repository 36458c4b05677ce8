"""Benchmarks behind ``bioplastic bench``.

Each module here defines ``BENCHMARKS``: a tuple of :class:`Benchmark`. A benchmark's
``run(quick)`` returns a list of result rows (dicts). Every row names its ``target`` (what the
issue asks for), the measured ``ratio`` and whether it is ``met``; speed is measured here, in one
run, never asserted in a timed test. Modules are discovered, so adding one needs no central edit.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Benchmark", "all_benchmarks", "best_time"]


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[bool], list]
    needs: tuple[str, ...] = ()   # optional modules it imports (brian2, torch); skipped if absent


def best_time(fn, *, repeat: int = 3, warmup: int = 1) -> float:
    """Best wall-clock time of ``fn()`` over ``repeat`` runs after ``warmup`` runs (seconds)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def all_benchmarks() -> list[Benchmark]:
    from .. import _bench

    found: list[Benchmark] = []
    for module in sorted(pkgutil.iter_modules(_bench.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            found.extend(importlib.import_module(f"{_bench.__name__}.{module.name}").BENCHMARKS)
    return found
