"""STC benchmarks (issue 10 targets).

* ``stc_vs_brian2``: a dense STC-LIF layer of 4,096 neurons for 1,000 steps (random sparse
  modulators with every autapse, ~1 % of pairs), the Numba kernel (through
  :func:`bioplastic.neurons.run_stc`) against its Brian2 twin on the numpy target, both end to
  end (set-up included, Numba compilation excluded by a warm-up run). Target: ≥ 20× faster,
  identical spikes.
* ``stc_torch_vs_plif``: one :class:`bioplastic.nn.STCLIF` conv cell forward + backward
  against a :class:`bioplastic.nn.PLIFConvCell` of the same shape (same conv and GroupNorm
  front end), interleaved rounds, medians; on one torch thread (wall time, and CPU time as
  ``ratio_cpu``) and on torch's default thread count. Target: ≤ 1.5× the PLIF time, by both
  ratios on one thread (:func:`target_met`).
* ``plif_vs_spikingjelly``: the PLIF cell's neuron (Fang et al.'s form, the whole-sequence
  path) against SpikingJelly's ``ParametricLIFNode`` in its multi-step and single-step modes on
  the 64-channel cell's shape, forward + backward, interleaved (only when spikingjelly is
  installed). Target: ratio ≤ 1.
"""

from __future__ import annotations

import time

import numpy as np

from ..reference._cases import same_spikes
from . import Benchmark, best_time

__all__ = ["BENCHMARKS"]


def _dense_case(n: int, n_steps: int):
    from ..neurons.stc import STCParams

    rng = np.random.default_rng(20261201)
    mask_h = (rng.random((n, n)) < 0.01) | np.eye(n, dtype=bool)
    w_h = np.where(mask_h, rng.normal(0.0, 0.5, (n, n)), 0.0)
    w_v = np.where(rng.random((n, n)) < 0.01, rng.normal(0.0, 0.5, (n, n)), 0.0)
    params = STCParams(bias_h=rng.uniform(-0.5, 0.1, n), bias_v=rng.uniform(-0.3, 0.3, n))
    current = rng.uniform(0.0, 0.8, (n_steps, n))
    return params, current, w_h, w_v


def run_vs_brian2(quick: bool) -> list[dict]:
    from ..neurons.stc import run_stc
    from ..reference.stc import run_stc_twin

    n, n_steps = (256, 100) if quick else (4096, 1000)
    params, current, w_h, w_v = _dense_case(n, n_steps)

    def kernel():
        return run_stc(current, params, w_h=w_h, w_v=w_v, record=())

    numba_s = best_time(kernel, repeat=3, warmup=1)
    run_only: dict = {}
    start = time.perf_counter()
    twin = run_stc_twin(params, current, w_h, w_v, record_idx=np.array([0]), timing=run_only)
    brian_s = time.perf_counter() - start
    steps, index = kernel().spike_pairs()
    identical = same_spikes(steps, index, twin)
    ratio = brian_s / numba_s
    return [{"name": "stc_vs_brian2", "target": "Numba >= 20x faster than Brian2 numpy, "
             "identical spikes", "size": f"{n} neurons, {n_steps} steps, "
             f"{int(np.count_nonzero(w_h) + np.count_nonzero(w_v))} modulator weights",
             "numba_s": numba_s, "brian2_numpy_s": brian_s, "ratio": ratio,
             "brian2_steps_2_to_T_s": run_only.get("seconds"), "spikes": int(steps.size),
             "identical_spikes": identical, "met": bool(ratio >= 20.0 and identical)}]


def _cell_inputs(quick: bool):
    """A stacked layer's shape (C_in = C, as layers 1, 2 of the paper's 3-layer model) and a
    first layer's (few input channels: the modulators then dominate)."""
    import torch

    t, b, c, side = (4, 2, 16, 8) if quick else (8, 8, 64, 16)
    for c_in in (c, max(1, c // 4)):
        x = torch.rand(t, b, c_in, side, side, generator=torch.Generator().manual_seed(0))
        yield x, c_in, c, f"T={t} B={b} {c_in}->{c} {side}x{side} k=5 groups=16"


def _one_thread(torch):
    """Context: torch on one thread (OpenMP spin-waiting on a shared CPU swamps a ratio)."""
    import contextlib

    @contextlib.contextmanager
    def pinned():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
    return pinned()


def _interleaved_wall_and_cpu(candidates: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median wall seconds and median process CPU seconds of each candidate over ``repeats``
    interleaved rounds (one warm-up round first). On a loaded shared machine the CPU time of
    a one-thread run is the steadier figure (it leaves out the time spent waiting for a
    core); both are reported."""
    import statistics

    wall: dict[str, list[float]] = {name: [] for name in candidates}
    cpu: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(repeats + 1):
        for name, fn in candidates.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if round_:
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]))
            for name in candidates}


def target_met(ratio_wall: float, ratio_cpu: float, limit: float = 1.5) -> bool:
    """The STC/PLIF target on one thread: **both** the wall and the CPU-time ratio within
    ``limit``. On a shared machine either can be off alone: a cell that waits for a core
    counts the wait in its wall time (a PLIF call descheduled for 60 ms once gave a wall ratio
    of 1.20 against a CPU ratio of 1.81), and CPU time misses nothing a one-thread call does."""
    return bool(ratio_wall <= limit and ratio_cpu <= limit)


def run_torch_vs_plif(quick: bool) -> list[dict]:
    """Rows per shape: one torch thread (wall and CPU medians; ``met`` by
    :func:`target_met`) and torch's default thread count (wall; for information, ``met`` is
    ``None``), with the load average at the start of each; and, on one thread, for
    information, the cell with ``gradient_detach=True`` (the authors' KTH and TaxiBJ
    configs; their Moving MNIST configs, the default here, keep the gradient)."""
    import os

    import torch

    from ..nn import STCLIF, PLIFConvCell

    rows = []
    for x, c_in, c, shape in _cell_inputs(quick):
        def train(cell, x=x):
            def run():
                cell.zero_grad()
                cell(x)[0].sum().backward()
            return run

        torch.manual_seed(0)
        plif, stc = PLIFConvCell(c_in, c, 5, groups=16), STCLIF(c_in, c, 5, groups=16)
        detached = STCLIF(c_in, c, 5, groups=16, gradient_detach=True)
        detached.load_state_dict(stc.state_dict())
        for threads in ("1", "default"):
            load = os.getloadavg()[0]
            candidates = {"plif": train(plif), "stc": train(stc)}
            if threads == "1":
                candidates["detached"] = train(detached)
            repeats = 3 if quick else 7
            if threads == "1":
                with _one_thread(torch):
                    med = _interleaved_wall_and_cpu(candidates, repeats)
            else:
                med = _interleaved_wall_and_cpu(candidates, repeats)
            ratio = med["stc"][0] / med["plif"][0]
            row = {"name": "stc_torch_vs_plif", "target": "STC-LIF conv cell "
                   "forward+backward <= 1.5x the PLIF conv cell", "shape": shape,
                   "threads": threads if threads == "1" else str(torch.get_num_threads()),
                   "stc_s": med["stc"][0], "plif_s": med["plif"][0], "ratio": ratio}
            if threads == "1":
                row["ratio_cpu"] = med["stc"][1] / med["plif"][1]
            # the target is judged on one thread; with OpenMP threads on a shared machine
            # the ratio mostly measures spin-waiting for descheduled threads
            met = target_met(ratio, row["ratio_cpu"]) if threads == "1" else None
            row.update({"loadavg_1min": round(load, 2), "met": met})
            rows.append(row)
            if threads == "1":
                rows.append({
                    "name": "stc_torch_vs_plif[gradient_detach=True]",
                    "target": "report: the same cell with gradient_detach=True (the authors' "
                              "KTH / TaxiBJ configs)", "shape": shape, "threads": "1",
                    "stc_s": med["detached"][0], "plif_s": med["plif"][0],
                    "ratio": med["detached"][0] / med["plif"][0],
                    "ratio_cpu": med["detached"][1] / med["plif"][1],
                    "loadavg_1min": round(load, 2), "met": None})
    return rows


def run_plif_vs_spikingjelly(quick: bool) -> list[dict]:
    """The PLIF neuron (Fang et al.'s form, :func:`bioplastic.nn.functional.plif_fang_sequence`,
    what :class:`bioplastic.nn.PLIFConvCell` runs) against SpikingJelly's
    ``ParametricLIFNode`` (soft reset, sigmoid surrogate α = 4) on the STC cell's shape,
    forward + backward (gradients to the input and to ``w``), in SpikingJelly's multi-step
    mode (its fastest on the CPU) and its single-step mode, with the load average at the start."""
    import os

    import torch
    from spikingjelly.activation_based import neuron, surrogate

    from ..nn.functional.stc import STCTensorState, plif_fang_sequence
    from .peers import interleaved_medians

    shape = (4, 2, 16, 8, 8) if quick else (8, 8, 64, 16, 16)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 2
    w = torch.nn.Parameter(torch.zeros(()))

    def ours():
        w.grad = None
        xi = x.detach().requires_grad_(True)
        zeros = torch.zeros_like(x[0])
        state = STCTensorState(zeros, zeros, zeros, zeros, zeros)
        plif_fang_sequence(xi, state, w)[0].sum().backward()

    def theirs(mode):
        node = neuron.ParametricLIFNode(init_tau=2.0, v_reset=None, step_mode=mode,
                                        surrogate_function=surrogate.Sigmoid(alpha=4.0))

        def run():
            node.reset()
            node.zero_grad()
            xi = x.detach().requires_grad_(True)
            out = node(xi) if mode == "m" else torch.stack([node(x_t) for x_t in xi])
            out.sum().backward()
        return run

    load = os.getloadavg()[0]
    with _one_thread(torch):
        med = interleaved_medians({"ours": ours, "m": theirs("m"), "s": theirs("s")},
                                  3 if quick else 7)
    rows = []
    for mode, label in (("m", "multi-step"), ("s", "single-step")):
        ratio = med["ours"] / med[mode]
        rows.append({"name": "plif_vs_spikingjelly", "target": "PLIF no slower than "
                     "SpikingJelly's ParametricLIFNode", "shape": "T={} B={} C={} {}x{}"
                     .format(*shape), "spikingjelly_mode": label, "ours_s": med["ours"],
                     "spikingjelly_s": med[mode], "ratio": ratio,
                     "loadavg_1min": round(load, 2), "met": bool(ratio <= 1.0)})
    return rows


BENCHMARKS = (
    Benchmark("stc_vs_brian2", "dense STC-LIF, 4,096 neurons, 1,000 steps: Numba vs Brian2 "
              "numpy target", run_vs_brian2, needs=("brian2",)),
    Benchmark("stc_torch_vs_plif", "torch STC-LIF conv cell vs PLIF conv cell, "
              "forward+backward", run_torch_vs_plif, needs=("torch",)),
    Benchmark("plif_vs_spikingjelly", "PLIF neuron vs SpikingJelly ParametricLIFNode",
              run_plif_vs_spikingjelly, needs=("torch", "spikingjelly")),
)
