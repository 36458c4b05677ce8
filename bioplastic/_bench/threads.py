"""The opt-in multi-core path (``threads=``): speed-up of 2 threads over 1, same bits.

Workloads (the kernels alone, through :func:`bioplastic.simulate` / ``simulate_blocks`` with
``check=False``, as the front ends run them after their checks):

* recurrent LIF, heterogeneous parameters, 10,000 neurons at 2 % connectivity (the ``lif``
  bench network, 1,000 steps) and 50,000 neurons at ~100 synapses per neuron (300 steps), both
  with delays of 0-3 steps;
* the Diehl & Cook WTA network with STDP, 400 excitatory neurons, 784 inputs, two
  presentations of 350 + 150 ms (the ``wta`` bench workload), and the same with 1,600.

Each round times one core, then two, back to back (interleaved), ``ROUNDS`` rounds after a
compiling call; the row reports the median of each and the median of the per-round speed-ups
``t(1 thread) / t(2 threads)``, whether the spikes and the final state are bit-identical, and
``os.getloadavg()`` (1-minute) taken before each timed run. The one-off cost of
:func:`~bioplastic.neurons.parallel.thread_split` is reported beside it. **A speed-up measured
while the load average is at or above the number of cores is not meaningful**: the second
thread then waits for a core (the row's ``note`` says so). With Numba's OpenMP threading
layer, a loaded machine is far worse with the default ``OMP_WAIT_POLICY`` (threads spin while
the thread they wait for has no core) than with ``OMP_WAIT_POLICY=passive``; the row records
both settings. There is no speed target: the issue asks for the figure; a row is ``met`` when
the results are bit-identical.
"""

from __future__ import annotations

import os
import time

import numba
import numpy as np

from ..neurons.lif import lif_advance, lif_init, lif_prepare
from ..neurons.parallel import (
    lif_advance_threads,
    thread_split,
    wta_advance_threads,
    wta_normalise_threads,
)
from ..neurons.wta import (
    WTAParams,
    input_connectivity,
    wta_advance,
    wta_init,
    wta_normalise,
    wta_prepare,
)
from ..reference.lif import random_network, unpack
from ..rules.stdp import STDPParams, post_index
from ..simulate import simulate, simulate_blocks
from . import Benchmark
from .wta import DT_MS, workload

ROUNDS = 5


def _load() -> float:
    return float(os.getloadavg()[0])


def _same(a, b, skip=("memo_step", "memo")) -> bool:
    """Spikes and every state field equal byte for byte (the WTA's scratch memo aside)."""
    if a.spikes.tobytes() != b.spikes.tobytes():
        return False
    for field in a.state._fields:
        x, y = getattr(a.state, field), getattr(b.state, field)
        if field in skip:
            continue
        if isinstance(x, np.ndarray) and x.tobytes() != y.tobytes():
            return False
    return True


def _interleaved(one, many, rounds: int) -> dict:
    """Time ``one()`` and ``many()`` alternately; medians, per-round speed-ups and loads."""
    ref, other = one(), many()    # compiling calls (and the results compared)
    t1, t2, loads = [], [], []
    for _ in range(rounds):
        for fn, times in ((one, t1), (many, t2)):
            loads.append(_load())
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    speedups = [a / b for a, b in zip(t1, t2, strict=True)]
    return {"identical": _same(ref, other), "t1_s": float(np.median(t1)),
            "t2_s": float(np.median(t2)), "speedup": float(np.median(speedups)),
            "speedups": [round(s, 3) for s in speedups],
            "load_1min": [round(x, 2) for x in loads]}


def _row(name: str, threads: int, timing: dict, split_s: float, **sizes) -> dict:
    cores = os.cpu_count() or 1
    loaded = max(timing["load_1min"]) >= cores
    note = (f"load average up to {max(timing['load_1min']):.1f} on {cores} cores: the second "
            "thread waits for a core, so this speed-up is not meaningful" if loaded else "")
    return {"name": name, **sizes, "threads": threads, "cores": cores,
            "threading_layer": _layer(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default: active)"),
            **timing, "split_s": split_s,
            "ratio": timing["speedup"], "identical_spikes": timing["identical"],
            "target": f"report the speed-up of {threads} threads over 1; bit-identical results",
            "met": bool(timing["identical"]), "note": note}


def _split_seconds(conn, n: int, threads: int):
    """The split and the time of a second build (the first call may compile the builder)."""
    thread_split(conn, n, threads)
    start = time.perf_counter()
    split = thread_split(conn, n, threads)
    return split, time.perf_counter() - start


def _layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:   # no parallel region has run yet
        return "?"


def _lif_row(n: int, steps: int, p: float, threads: int, rounds: int) -> dict:
    inputs = random_network(7, n=n, n_steps=steps, p=p, max_delay_steps=3)
    params, drive, conn = unpack(inputs)
    state, kp = lif_init(n, params, conn, v0_mv=inputs["v0_mv"]), lif_prepare(params, n)
    split, split_s = _split_seconds(conn, n, threads)
    units = inputs["record_idx"]

    def one():
        return simulate(lif_advance, drive, state, kp, conn, record=("v",), record_units=units,
                        check=False)

    def many():
        return simulate(lif_advance_threads, drive, state, kp, conn, split, record=("v",),
                        record_units=units, check=False, threads=threads)

    timing = _interleaved(one, many, rounds)
    return _row(f"threads_lif_{n}", threads, timing, split_s, neurons=n,
                synapses=conn.n_synapses, steps=steps)


def _wta_row(n: int, n_blocks: int, present: int, rest: int, threads: int,
             rounds: int) -> dict:
    data = workload(3, n, n_blocks, present, rest)
    params = WTAParams(dt_ms=DT_MS)
    conn = input_connectivity(data["w0"], dt_ms=DT_MS)
    args = (wta_prepare(params, STDPParams()), conn, post_index(conn.post, n))
    state = wta_init(n, params, conn)
    split, split_s = _split_seconds(conn, n, threads)
    blocks = data["blocks"]

    def one():
        return simulate_blocks(wta_advance, blocks, state, *args, on_block=wta_normalise,
                               check=False)

    def many():
        return simulate_blocks(wta_advance_threads, blocks, state, *args, split,
                               on_block=wta_normalise_threads, check=False, threads=threads)

    timing = _interleaved(one, many, rounds)
    return _row(f"threads_wta_{n}", threads, timing, split_s, excitatory=n, inputs=784,
                synapses=conn.n_synapses, steps=blocks.shape[0] * blocks.shape[1])


def run(quick: bool) -> list[dict]:
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    if quick:
        return [_lif_row(2000, 100, 0.01, threads, 2), _wta_row(100, 1, 100, 0, threads, 2)]
    return [_lif_row(10_000, 1000, 0.02, threads, ROUNDS),
            _lif_row(50_000, 300, 0.002, threads, ROUNDS),
            _wta_row(400, 2, 700, 300, threads, ROUNDS),
            _wta_row(1600, 1, 700, 300, threads, ROUNDS)]


BENCHMARKS = (
    Benchmark("threads", "multi-core path: 2 threads vs 1 (LIF 10k/50k, WTA), same bits", run),
)
