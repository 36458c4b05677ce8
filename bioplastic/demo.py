"""``bioplastic demo``: the main job.

1. A recurrent network of heterogeneous LIF neurons (2 % connectivity, 0–3 step delays, adaptive
   thresholds) runs on the Numba kernel and on its Brian2 twin with the same pre-drawn drive.
2. The two are compared (identical spikes? max |Δv|?) and timed.
3. Every twin case of the library is checked against its golden trace.

Writes ``raster.png`` (ours vs twin), ``trace_vs_twin.png`` (one neuron's v and |Δv|) and
``summary.json`` into the output folder, which it creates and names.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ._optional import import_problem
from .reference import compare
from .reference.lif import CASES, random_network, run_lif_kernel, run_lif_twin, unpack
from .results import prepare_results_dir, write_json

__all__ = ["run_demo"]


def _default_out() -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"demo-{stamp}"


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def _plots(out: Path, ours, twin, inputs, dt_ms: float) -> None:
    from .plot import figure, raster_vs_twin, trace_vs_twin

    fig, ax = figure(figsize=(9, 5))
    raster_vs_twin(ax, (ours.spike_steps, ours.spike_index), (twin.spike_steps, twin.spike_index),
                   dt_ms=dt_ms)
    ax.set_title("Recurrent LIF network: bioplastic (dots) vs Brian2 twin (rings)")
    fig.savefig(out / "raster.png", dpi=120)
    busiest = int(np.argmax(np.bincount(ours.spike_index, minlength=inputs["drive"].shape[1])
                            [inputs["record_idx"]]))
    fig, axes = figure(2, 1, figsize=(9, 5), sharex=True)
    trace_vs_twin(axes, ours.state["v"][:, busiest], twin.state["v"][:, busiest], dt_ms=dt_ms)
    axes[0].set_title(f"neuron {int(inputs['record_idx'][busiest])}: membrane potential")
    fig.savefig(out / "trace_vs_twin.png", dpi=120)


def _golden_rows() -> list[dict]:
    from .reference import all_cases
    from .reference.golden import check_golden, golden_file

    rows = []
    for case in tqdm(all_cases(), desc="golden twin traces", unit="case"):
        if golden_file(case.name).is_file():
            rows.append(check_golden(case).row())
    return rows


def run_demo(out: Path | None = None, *, quick: bool = False, seed: int = 2026) -> Path:
    """Run the demo and return the folder it wrote."""
    n, n_steps = (300, 300) if quick else (2000, 2000)
    config = {"seed": seed, "n_neurons": n, "n_steps": n_steps, "p_connect": 0.02,
              "max_delay_steps": 3, "dt_ms": 0.1, "quick": quick}
    out = prepare_results_dir(out or _default_out(), config)
    steps = tqdm(total=4, desc="demo", unit="phase")
    inputs = random_network(seed, n=n, n_steps=n_steps, p=0.02, max_delay_steps=3)
    params, drive, conn = unpack(inputs)
    kwargs = {"v0_mv": inputs["v0_mv"], "record_idx": inputs["record_idx"]}
    run_lif_kernel(params, drive[:2], conn, **kwargs)  # compile outside the timing
    ours, t_ours = _timed(run_lif_kernel, params, drive, conn, **kwargs)
    steps.update()
    summary = {"kernel_seconds": t_ours, "spikes_ours": int(ours.spike_steps.size),
               "mean_rate_hz": ours.spike_steps.size / n / (n_steps * 0.1e-3)}
    brian2_problem = import_problem("brian2")
    if brian2_problem is None:
        twin, t_twin = _timed(run_lif_twin, params, drive, conn, **kwargs)
        steps.update()
        comparison = compare(CASES[0], inputs, ours, twin)
        summary.update(twin_seconds=t_twin, speedup_vs_brian2_numpy=t_twin / t_ours,
                       comparison=comparison.row())
        _plots(out, ours, twin, inputs, 0.1)
    else:
        summary["twin"] = f"skipped: {brian2_problem}"
        steps.update()
    steps.update()
    summary["golden_cases"] = _golden_rows()
    steps.update()
    steps.close()
    write_json(out / "summary.json", summary)
    return out
