"""Helpers every Brian2 twin uses; they enforce the exactness checklist.

docs/twins.md, "Exactness conditions": numpy codegen target, loop-invariant optimisations off,
float64, a fresh ``Network`` per run, explicit ``dt`` on every object, preferences restored
afterwards, pre-drawn inputs, explicit ``connect(i=, j=)``. Brian2 is imported lazily, inside
functions, so the modules of :mod:`bioplastic.reference` import without it. The helpers are
public as ``bioplastic.reference.exact_prefs`` etc.
"""

from __future__ import annotations

import contextlib
import copy
import time

import numpy as np

__all__ = ["brian2", "exact_prefs", "network", "run_network", "spike_pairs", "recorded",
           "scheduling_summary", "require_brian2"]


def require_brian2():
    """Import brian2 or raise an ImportError saying how to install it."""
    try:
        import brian2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Brian2 twins need brian2: pip install 'bioplastic[reference]'"
        ) from err
    return brian2


def brian2():
    """The ``brian2`` module (alias of :func:`require_brian2`)."""
    return require_brian2()


@contextlib.contextmanager
def exact_prefs(target: str = "numpy"):
    """Set the preferences that make a twin bit-comparable, restore the old ones on exit.

    For compiled targets (benchmarks only) strict compiler flags are used (``-O3
    -ffp-contract=off``: no fused multiply-add), with a cache directory of their own so
    binaries built with other flags are never reused. Use it as a context manager::

        with exact_prefs() as b2:
            group = b2.NeuronGroup(...)

    """
    b2 = require_brian2()
    prefs = b2.prefs
    keys = ["codegen.target", "codegen.loop_invariant_optimisations", "core.default_float_dtype",
            "codegen.cpp.extra_compile_args_gcc", "codegen.runtime.cython.cache_dir"]
    saved = {key: copy.deepcopy(prefs[key]) for key in keys}
    try:
        prefs["codegen.target"] = target
        prefs["codegen.loop_invariant_optimisations"] = False
        prefs["core.default_float_dtype"] = np.float64
        if target != "numpy":
            prefs["codegen.cpp.extra_compile_args_gcc"] = ["-w", "-O3", "-ffp-contract=off",
                                                         "-std=c++11"]
            prefs["codegen.runtime.cython.cache_dir"] = _strict_cython_cache()
        yield b2
    finally:
        for key, value in saved.items():
            prefs[key] = value


def _strict_cython_cache() -> str:
    import os

    base = os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    path = os.path.join(base, "bioplastic", "brian2-cython-strict")
    os.makedirs(path, exist_ok=True)
    return path


def network(*objects):
    """A fresh, isolated ``Network`` (never the magic network)."""
    b2 = require_brian2()
    return b2.Network(*objects)


def run_network(net, n_steps: int, dt, *, namespace: dict | None = None,
                timing: dict | None = None) -> None:
    """Run ``net`` for ``n_steps`` steps of ``dt``.

    With a ``timing`` dict, the first step runs alone (code generation, compilation, spike-queue
    set-up) and ``timing["seconds"]`` receives the wall time of the remaining ``n_steps - 1``
    steps: Brian2's simulation time with compilation excluded, for the benchmarks; and
    ``timing["cpu_seconds"]`` the process CPU time of the same steps (the runtime targets run
    in this process: on a shared machine the CPU time does not count waiting for a core).
    """
    if timing is None or n_steps < 2:
        net.run(n_steps * dt, namespace=namespace)
        return
    net.run(dt, namespace=namespace)
    start, start_cpu = time.perf_counter(), time.process_time()
    net.run((n_steps - 1) * dt, namespace=namespace)
    timing["seconds"] = time.perf_counter() - start
    timing["cpu_seconds"] = time.process_time() - start_cpu


def spike_pairs(monitor, dt_s: float) -> tuple[np.ndarray, np.ndarray]:
    """A SpikeMonitor's spikes as sorted ``(step, index)`` int64 arrays."""
    steps = np.rint(np.asarray(monitor.t_) / dt_s).astype(np.int64)
    index = np.asarray(monitor.i, dtype=np.int64)
    order = np.lexsort((index, steps))
    return steps[order], index[order]


def recorded(monitor, variable: str) -> np.ndarray:
    """A StateMonitor variable as a time-major float64 array ``(T, n_recorded)``."""
    return np.asarray(getattr(monitor, variable + "_")).T.astype(np.float64, copy=True)


def scheduling_summary(net) -> str:
    """Brian2's ``scheduling_summary()`` as text (goes into golden-trace provenance)."""
    return str(net.scheduling_summary())
