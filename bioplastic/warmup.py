"""Compile, once, the kernels that the README quick start, the guides and the experiments use.

``bioplastic warmup`` (run by ``make setup``) calls each public entry point on a tiny input of
the same types as a real run, so the compiled code lands in the on-disk cache and a user's
first call loads it instead of waiting for the compiler. Numba compiles per argument *types*,
not sizes, which is why tiny inputs suffice. It prints, per workload, what was compiled and
what was already in the cache.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

__all__ = ["WORKLOADS", "warmup"]


def _lif() -> None:
    """README quick start: heterogeneous LIF network, delays, both recording forms; and a
    homogeneous one."""
    import bioplastic as bp

    rng = np.random.default_rng(0)
    n, steps = 20, 5
    params = bp.LIFParams(tau_m_ms=rng.uniform(5, 20, n), t_ref_ms=2.0, theta_plus_mv=0.5)
    weight = (rng.random((n, n)) < 0.2) * rng.normal(0, 1, (n, n))
    drive = rng.uniform(12, 18, n) + rng.normal(0, 2, (steps, n))
    bp.run_lif(drive, params, weight=weight, delay_ms=0.1, record=("v", "theta"))
    conn = bp.connectivity(weight, delay_ms=0.1, dt_ms=params.dt_ms)
    state = bp.lif_init(n, params, conn)
    bp.simulate(bp.lif_advance, drive, state, bp.lif_prepare(params, n), conn, record=("v",))
    # A homogeneous population runs the scalar-parameter specialisation (another compile).
    bp.run_lif(drive, bp.LIFParams(t_ref_ms=2.0), weight=weight, delay_ms=0.1, record=("v",))


def _pcnn() -> None:
    """The PCNN guide's quick start (intra-channel linking, threshold recorded)."""
    from bioplastic.neurons import PCNNParams, run_pcnn

    image = np.random.default_rng(0).uniform(0, 1, (8, 8))
    kernel = np.array([[.707, 1, .707], [1, 0, 1], [.707, 1, .707]])
    run_pcnn(image, PCNNParams(linking_kernel=kernel, coupling="intra"), n_steps=3,
             record=("e",))


def _rules() -> None:
    """The SoftHebb experiment's rules and the shared update."""
    from bioplastic import rules

    rng = np.random.default_rng(0)
    x, w = rng.random((4, 6)), rng.normal(0, 0.1, (3, 6))
    u = x @ w.T
    update = rules.UpdateParams()
    for anti in (False, True):
        rules.apply_update(w, rules.soft_hebb_dw(x, u, w, rules.SoftHebbParams(
            anti_hebbian=anti)), update)
    rules.apply_update(w, rules.oja_dw(x, u, w), update)
    rules.apply_update(w, rules.sanger_dw(x, u, w), update)
    rules.hard_wta(u)
    rules.ranked_wta(u, 2)


def _wta() -> None:
    """The Diehl & Cook experiment: training protocol with STDP and homeostasis."""
    from bioplastic.neurons import WTAParams, train_wta

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1, 16)).astype(float)
    train_wta(images, WTAParams(), w0=rng.uniform(0, 0.3, (3, 16)), seed=0, present_ms=2.0,
              rest_ms=1.0, max_repeats=1)


def _stc() -> None:
    """The STC guide and twin: a dense STC-LIF layer with modulators, gates recorded."""
    from bioplastic.neurons import STCParams, run_stc

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.5, (4, 4))
    run_stc(rng.uniform(0, 1, (3, 4)), STCParams(), w_h=w, w_v=w, record=("h", "alpha", "beta"))
    run_stc(rng.uniform(0, 1, (3, 4)), STCParams(), w_h=w, w_v=w, record=("h", "d", "alpha",
                                                                         "beta"),
            record_units=np.arange(2))


WORKLOADS: dict[str, Callable[[], None]] = {"lif": _lif, "pcnn": _pcnn, "rules": _rules,
                                             "wta": _wta, "stc": _stc}


def _events() -> None:
    """The events guide: synthetic gesture, denoise, to_frame, downsample, events_to_spikes."""
    from bioplastic.data import events as ev

    stream = ev.synthetic_gesture(3, 0, duration_ms=5, rate_hz=20_000.0)
    clean = ev.denoise(stream, 10_000)
    ev.to_frame(clean, ev.DVS128_SENSOR_SIZE, n_time_bins=2)
    small, size = ev.downsample(clean, ev.DVS128_SENSOR_SIZE, spatial_factor=0.25)
    ev.events_to_spikes(small, size)
    ev.events_to_spikes(small, size, binary=False)


WORKLOADS["events"] = _events


def _torch_training_step(module: str, *args, **kwargs) -> None:
    """One short training step and one inference call of ``bioplastic.nn.<module>(*args,
    **kwargs)`` in float32 and float64 when torch is installed: they compile the compiled
    loops of the module's whole-sequence path (the no-grad call takes its own)."""
    try:
        import torch
    except ImportError:
        return
    from . import nn

    for dtype in (torch.float32, torch.float64):
        layer = getattr(nn, module)(*args, dtype=dtype, **kwargs)
        x = torch.ones(2, 1, 1, 3, 3, dtype=dtype)
        layer(x)[0].sum().backward()
        with torch.no_grad():
            layer(x)


def _stc_torch() -> None:
    """The torch STC conv cells' kernels."""
    _torch_training_step("STCLIF", 1, 4, 3, groups=2)


def _pcnn_torch() -> None:
    """The torch PCNN conv layer's kernels."""
    _torch_training_step("PCNNConv2d", 1, 2, 3, coupling="inter")


def _soft_reset_torch() -> None:
    """The LIF and PLIF conv cells (the STC cells' baselines): their gate-free soft-reset
    neuron's whole-sequence loops."""
    _torch_training_step("PLIFConvCell", 1, 4, 3, groups=2, form="fang2021")


WORKLOADS["stc_torch"] = _stc_torch
WORKLOADS["pcnn_torch"] = _pcnn_torch
WORKLOADS["soft_reset_torch"] = _soft_reset_torch


def _dispatchers() -> dict[str, object]:
    """Every jitted function of the package loaded so far, by qualified name."""
    from numba.core.dispatcher import Dispatcher

    from . import simulate as _  # noqa: F401  (the loops live in its memo)

    found = {}
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("bioplastic") and module is not None:
            for value in vars(module).values():
                if isinstance(value, Dispatcher):  # once, under its defining module's name
                    function = value.py_func
                    found[f"{function.__module__}.{function.__qualname__}"] = value
    for (template, *bound), loop in sys.modules["bioplastic.simulate"]._loop_for.memo.items():
        kind = template.__name__.removesuffix("_template").strip("_").replace("_", " ")
        found[f"{kind} for {bound[0][1].__name__}"] = loop  # e.g. "time loop for lif_advance"
    return found


def _counts() -> dict[str, tuple[int, int]]:
    return {name: (sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values()))
            for name, d in _dispatchers().items()}


def warmup(names: list[str] | None = None, *, out=sys.stdout) -> list[dict]:
    """Run the named workloads (all by default); return one row per workload.

    Each row: ``workload``, ``seconds``, ``compiled`` (functions compiled now, hence saved to
    the cache) and ``loaded`` (functions found in the cache).
    """
    from ._jit import JIT_DISABLED

    unknown = sorted(set(names or ()) - set(WORKLOADS))
    if unknown:
        raise ValueError(f"unknown warmup workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    rows = []
    chosen = names or list(WORKLOADS)
    width = max(map(len, chosen))
    for name in chosen:
        before, start = _counts(), time.perf_counter()
        WORKLOADS[name]()
        seconds, after = time.perf_counter() - start, _counts()
        delta = {k: (h - before.get(k, (0, 0))[0], m - before.get(k, (0, 0))[1])
                 for k, (h, m) in after.items()}
        rows.append({"workload": name, "seconds": round(seconds, 2),
                     "compiled": sorted(k for k, (_, m) in delta.items() if m),
                     "loaded": sorted(k for k, (h, _) in delta.items() if h)})
        if out is not None:
            row = rows[-1]
            print(f"{name:{width}s} {seconds:6.1f} s  compiled {len(row['compiled'])}: "
                  f"{', '.join(row['compiled']) or '-'}; loaded from cache "
                  f"{len(row['loaded'])}", file=out)
    if JIT_DISABLED and out is not None:
        print("BIOPLASTIC_DISABLE_JIT=1: nothing was compiled", file=out)
    return rows
