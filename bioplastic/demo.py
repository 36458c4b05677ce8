"""``bioplastic demo``: the library in two minutes, each model beside its Brian2 twin.

1. Three models run on their Numba kernel and on their Brian2 twin with the same pre-drawn
   inputs: a recurrent network of heterogeneous LIF neurons (2 % connectivity, 0–3 step
   delays, adaptive thresholds), a pulse-coupled neural network (PCNN) segmenting an image of
   regions, and the SoftHebb learning rule (ICLR 2023 form) learning from presentations.
2. Each pair is compared (identical spikes? ``max |Δstate|``?) and timed; a table with the
   verdict and the speed ratio against Brian2 is printed.
3. Every twin case of the library is checked against its golden trace.

Writes one ``<case>.png`` per model (kernel beside twin), ``summary.json`` and ``summary.txt``
(the printed table) into the output folder, by default a fresh ``results/demo-<timestamp>``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ._optional import import_problem
from .reference import TwinCase, compare
from .results import default_out, prepare_results_dir, save_figure, write_json

__all__ = ["run_demo", "demo_table"]


@dataclass(frozen=True)
class _DemoCase:
    case: TwinCase
    make: Callable[[], dict]        # inputs sized for the demo
    plot: Callable                  # plot(fig_axes_factory, inputs, ours, twin, title) -> fig
    title: str


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def _demo_cases(quick: bool, seed: int) -> list[_DemoCase]:
    from .reference import lif, pcnn, rate_rules

    n, n_steps = (300, 300) if quick else (2000, 2000)
    size = 24 if quick else 48
    return [
        _DemoCase(lif.CASES[0], lambda: lif.random_network(seed, n=n, n_steps=n_steps, p=0.02,
                                                          max_delay_steps=3),
                  _plot_spiking, f"recurrent LIF network, {n} neurons"),
        _DemoCase(pcnn.CASES[0], lambda: pcnn.image_case(seed, size=size, n_steps=100),
                  _plot_spiking, f"PCNN on a {size}×{size} image of regions"),
        _DemoCase(next(c for c in rate_rules.CASES if c.name == "rate_softhebb_iclr"),
                  lambda: rate_rules.make_presentations(seed, n_steps=600),
                  _plot_weights, "SoftHebb (ICLR 2023), 10 inputs → 6 units"),
    ]


def _plot_spiking(inputs, ours, twin, title):
    from .plot import figure, raster_vs_twin, trace_vs_twin

    fig, axes = figure(3, 1, figsize=(9, 7), gridspec_kw={"height_ratios": [2, 1, 1]})
    raster_vs_twin(axes[0], (ours.spike_steps, ours.spike_index),
                   (twin.spike_steps, twin.spike_index))
    axes[0].set_title(f"{title}: bioplastic (dots) vs Brian2 twin (rings)")
    key = "v" if "v" in ours.state else "E"      # LIF: membrane potential; PCNN: threshold
    column = int(np.argmax(np.abs(ours.state[key]).std(axis=0)))   # the liveliest trace
    unit = int(np.asarray(inputs["record_idx"]).ravel()[column]) if "record_idx" in inputs \
        else column
    trace_vs_twin(axes[1:], ours.state[key][:, column], twin.state[key][:, column],
                  label=f"{key} (unit {unit})")
    axes[2].set_xlabel("step")
    fig.tight_layout()
    return fig


def _plot_weights(inputs, ours, twin, title):
    from .plot import figure, trace_vs_twin

    fig, axes = figure(2, 1, figsize=(9, 5), sharex=True)
    norms_ours = np.linalg.norm(ours.state["w"], axis=2)        # (T, n_post): ‖w_k‖ → 1
    norms_twin = np.linalg.norm(twin.state["w"], axis=2)
    trace_vs_twin(axes, norms_ours, norms_twin, label="‖w_k‖ (all units)")
    axes[0].get_legend().remove()
    axes[0].axhline(1.0, color="0.6", lw=0.8, ls=":")
    axes[0].set_title(f"{title}\nweight norms, kernel (solid) vs twin (dashed); fixed point 1")
    axes[1].set_xlabel("presentation")
    fig.tight_layout()
    return fig


def _twin_row(demo: _DemoCase, out: Path, live: bool) -> dict:
    inputs = demo.make()
    demo.case.kernel({k: v[:2] if k == "drive" else v for k, v in inputs.items()}
                     if "drive" in inputs else inputs)            # compile outside the timing
    ours, t_ours = _timed(demo.case.kernel, inputs)
    row = {"case": demo.case.name, "model": demo.case.model,
           "n_units": int(demo.case.n_units(inputs)), "n_steps": int(demo.case.n_steps(inputs)),
           "kernel_s": t_ours}
    if not live:
        return {**row, "verdict": "twin skipped (brian2 not installed)"}
    twin, t_twin = _timed(demo.case.twin, inputs)
    comparison = compare(demo.case, inputs, ours, twin)
    save_figure(demo.plot(inputs, ours, twin, demo.title), out / f"{demo.case.name}.png")
    if demo.case.model == "rate_rules":          # a rate rule: weights, no spikes to count
        row.update(spikes_ours="–", spikes_twin="–")
    else:
        row.update(spikes_ours=comparison.spikes_ours, spikes_twin=comparison.spikes_twin)
    return {**row,
            "max_abs_diff": comparison.max_abs_diff, "twin_s": t_twin,
            "speed_ratio_vs_brian2": t_twin / t_ours if t_ours > 0 else float("inf"),
            "identical": comparison.ok,
            "verdict": "identical" if comparison.ok else "MISMATCH"}


def _golden_rows() -> list[dict]:
    from .reference import all_cases
    from .reference.golden import check_golden, golden_file, not_checkable

    rows = []
    for case in all_cases():
        if golden_file(case.name).is_file():
            comparison = check_golden(case)
            rows.append({**comparison.row(), "not_checkable": not_checkable(comparison)})
    return rows


def _golden_line(golden: list[dict]) -> str:
    """'golden twin traces: 18/18 identical', with the cases checked or not checkable against
    files recorded with other NumPy math, and the mismatches, named."""
    from .reference.golden import OTHER_MATH_TIER

    exact = [g for g in golden if g["ok"] and not g["other_math"]]
    loose = [g["case"] for g in golden if g["ok"] and g["other_math"]]
    unchecked = [g["case"] for g in golden if g["not_checkable"]]
    bad = [g["case"] for g in golden if not g["ok"] and not g["not_checkable"]]
    parts = [f"golden twin traces: {len(exact)}/{len(golden)} identical"]
    if loose:
        parts.append(f"within {OTHER_MATH_TIER} against other NumPy math: {', '.join(loose)}")
    if unchecked:
        parts.append(f"not checkable against other NumPy math: {', '.join(unchecked)}")
    if bad:
        parts.append(f"MISMATCH: {', '.join(bad)}")
    return "; ".join(parts)


def demo_table(summary: dict) -> str:
    """The demo's summary as aligned text: one row per model, then the golden check."""
    columns = [("case", "case", "{}"), ("n_units", "units", "{}"), ("n_steps", "steps", "{}"),
               ("spikes_ours", "spikes ours", "{}"), ("spikes_twin", "spikes twin", "{}"),
               ("max_abs_diff", "max|Δstate|", "{:.3g}"), ("kernel_s", "kernel s", "{:.3f}"),
               ("twin_s", "Brian2 s", "{:.2f}"),
               ("speed_ratio_vs_brian2", "× faster", "{:.0f}"), ("verdict", "verdict", "{}")]
    cells = [[fmt.format(r[key]) if key in r else "–" for key, _, fmt in columns]
             for r in summary["twins"]]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (_, title, _) in
              enumerate(columns)]
    lines = ["  ".join(t.ljust(w) for (_, t, _), w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    lines += ["", "Brian2 time includes its code generation and set-up (numpy target).",
              _golden_line(summary["golden_cases"])]
    return "\n".join(lines) + "\n"


def run_demo(out: Path | None = None, *, quick: bool = False, seed: int = 2026,
             verbose: bool = True) -> Path:
    """Run the demo, print its table (``verbose``) and return the folder it wrote."""
    config = {"seed": seed, "quick": quick, "cases": ["lif_recurrent", "pcnn_image",
                                                      "rate_softhebb_iclr"]}
    out = prepare_results_dir(out or default_out("demo", quick=quick), config)
    problem = import_problem("brian2")      # None, "not installed" or a broken install
    live = problem is None
    if problem is not None:
        print(f"{problem}: the twins are skipped", file=sys.stderr)
    demos = _demo_cases(quick, seed)
    rows = [_twin_row(demo, out, live) for demo in tqdm(demos, desc="demo: kernel vs twin",
                                                        unit="model")]
    summary = {"twins": rows, "golden_cases": _golden_rows()}
    write_json(out / "summary.json", summary)
    text = demo_table(summary)
    (out / "summary.txt").write_text(text)
    if verbose:
        print(text)
    return out
