"""Command line: ``bioplastic demo | validate | bench | warmup``.

* ``validate [--json] [--case NAME] [--golden]``: runs every Brian2 twin and prints one row per
  case (neurons, steps, spikes ours/twin, ``max |Δstate|``, verdict); exit status 1 on any
  mismatch. With ``--golden``, or without Brian2 (then it says so), it checks the golden traces
  shipped with the package instead.
* ``bench [--json] [--quick] [--only NAME] [--peers]``: every benchmark of ``bioplastic._bench``
  (``--peers``: the same workloads against the installed peer simulators instead).
* ``demo [--out DIR]``: the main job (see :mod:`bioplastic.demo`).
* ``warmup [--only NAME]``: compile and cache the kernels users meet first
  (see :mod:`bioplastic.warmup`); ``make setup`` runs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _validate_rows(names: list[str], *, live: bool) -> list[dict]:
    from tqdm import tqdm

    from .reference import all_cases, compare
    from .reference.golden import check_golden

    cases = [c for c in all_cases() if not names or c.name in names]
    unknown = set(names) - {c.name for c in cases}
    if unknown:
        raise SystemExit(f"unknown case(s): {sorted(unknown)}")
    rows = []
    for case in tqdm(cases, desc="twins", unit="case", file=sys.stderr):
        if live:
            inputs = case.make(case.seed)
            comparison = compare(case, inputs, case.kernel(inputs), case.twin(inputs))
        else:
            comparison = check_golden(case)
        rows.append({**comparison.row(), "source": "brian2" if live else "golden"})
    return rows


def _print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    cells = [[_fmt(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) if cells else len(title)
              for i, (_, title) in enumerate(columns)]
    print("  ".join(title.ljust(w) for (_, title), w in zip(columns, widths, strict=True)))
    for cell in cells:
        print("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)))


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def cmd_validate(args) -> int:
    live = not args.golden and importlib.util.find_spec("brian2") is not None
    if not live and not args.golden:
        print("brian2 is not installed: checking the golden twin traces instead "
              "(pip install 'bioplastic[reference]' for live twins)", file=sys.stderr)
    rows = _validate_rows(args.case or [], live=live)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows, [("case", "case"), ("model", "model"), ("n_units", "neurons"),
                            ("n_steps", "steps"), ("spikes_ours", "spikes ours"),
                            ("spikes_twin", "spikes twin"), ("max_abs_diff", "max|Δstate|"),
                            ("tier", "tier"), ("ok", "verdict"), ("source", "source")])
    return 0 if all(r["ok"] for r in rows) else 1


def cmd_bench(args) -> int:
    from ._bench import all_benchmarks

    if args.peers:
        return _bench_peers(args)
    rows = []
    for bench in all_benchmarks():
        if args.only and not any(o in bench.name for o in args.only):
            continue
        missing = [m for m in bench.needs if importlib.util.find_spec(m) is None]
        if missing:
            rows.append({"name": bench.name, "skipped": f"needs {', '.join(missing)}"})
            continue
        print(f"running {bench.name}: {bench.description}", file=sys.stderr)
        rows.extend(bench.run(args.quick))
    if args.json:
        print(json.dumps(rows, indent=2, default=float))
    else:
        for row in rows:
            print(" | ".join(f"{k}={_fmt(v)}" for k, v in row.items()))
    return 0


def _bench_peers(args) -> int:
    from ._bench.peers import ratio_table, run_peers

    print("running peers: the same workloads against every installed peer (interleaved, "
          "medians)", file=sys.stderr)
    rows = run_peers(args.quick)
    if args.json:
        print(json.dumps(rows, indent=2, default=float))
    else:
        for row in rows:
            if "gb_per_s" in row:
                print(f"memory bandwidth (NumPy copy, same run): {row['gb_per_s']:.2f} GB/s")
            elif "neuron_steps_per_s" in row and row["name"].endswith("cpp_standalone"):
                print(f"bioplastic {row['workload']}, {row['neurons']} neurons: "
                      f"{row['neuron_steps_per_s']:.3g} neuron-steps/s, "
                      f"{row['syn_events_per_s']:.3g} synaptic events/s")
        print(ratio_table(rows))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    out = run_demo(Path(args.out) if args.out else None, quick=args.quick)
    print(f"plots and summary.json written to {out}")
    return 0


def cmd_warmup(args) -> int:
    from .warmup import warmup

    try:
        warmup(args.only)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bioplastic", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    val = sub.add_parser("validate", help="run every Brian2 twin against its kernel")
    val.add_argument("--json", action="store_true")
    val.add_argument("--case", action="append", help="only this case (repeatable)")
    val.add_argument("--golden", action="store_true",
                     help="check the shipped golden twin traces only (no Brian2 needed)")
    val.set_defaults(func=cmd_validate)
    bench = sub.add_parser("bench", help="speed targets: kernels vs Brian2/torch, same run")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--quick", action="store_true", help="small sizes, seconds")
    bench.add_argument("--only", action="append", help="benchmarks whose name contains this")
    bench.add_argument("--peers", action="store_true",
                       help="the same workloads against Brian2, snnTorch, SpikingJelly, Norse "
                       "and BindsNET, whichever are installed (ratio table)")
    bench.set_defaults(func=cmd_bench)
    demo = sub.add_parser("demo", help="LIF, PCNN and SoftHebb beside their Brian2 twins: "
                                       "a table, plots and a JSON summary")
    demo.add_argument("--out",
                      help="new or empty output folder (default: results/demo-<timestamp>)")
    demo.add_argument("--quick", action="store_true", help="smaller network")
    demo.set_defaults(func=cmd_demo)
    warm = sub.add_parser("warmup", help="compile and cache the kernels the README, the "
                          "guides and the experiments use, and print what was compiled")
    warm.add_argument("--only", action="append", help="only this workload (repeatable)")
    warm.set_defaults(func=cmd_warmup)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    # The command line only writes image files: Agg unless the user chose a backend.
    os.environ.setdefault("MPLBACKEND", "Agg")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
