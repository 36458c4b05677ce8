"""Command line: ``bioplastic demo | validate | bench | warmup``.

* ``validate [--json] [--case NAME] [--golden]``: runs every Brian2 twin and prints one row per
  case (neurons, steps, spikes ours/twin, ``max |Δstate|``, verdict); exit status 1 on any
  mismatch. With ``--golden``, or without Brian2 or with a broken install (then it says so), it
  checks the golden traces shipped with the package instead, naming for each case the file it
  read (the main one, or the variant recorded with this machine's NumPy math) and what another
  machine's math means for the check (``bioplastic.reference.golden.golden_note``); a case
  that file cannot check (spikes diverging under the other math) is named on stderr and does
  not set the exit status.
* ``bench [--json] [--quick] [--only NAME] [--strict] [--peers]``: every benchmark of
  ``bioplastic._bench``; ``--strict`` exits with status 1 when a target is not met;
  ``--peers`` runs the same workloads against the installed peer simulators instead.
* ``demo [--out DIR]``: the main job (see :mod:`bioplastic.demo`); ``DIR`` must be new or empty.
* ``warmup [--only NAME]``: compile and cache the kernels users meet first
  (see :mod:`bioplastic.warmup`); ``make setup`` runs it.

Mistakes (an unknown case or benchmark name, an unusable ``--out``) end with a one-line message
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from ._optional import import_problem

__all__ = ["main"]


def _validate_rows(names: list[str], *, live: bool) -> list[dict]:
    from tqdm import tqdm

    from .reference import all_cases, compare
    from .reference.golden import check_golden, golden_label, golden_note, not_checkable

    known = all_cases()
    cases = [c for c in known if not names or c.name in names]
    unknown = set(names) - {c.name for c in cases}
    if unknown:
        _usage_error(f"unknown case(s) {sorted(unknown)}; valid names: "
                     f"{', '.join(c.name for c in known)}")
    rows = []
    for case in tqdm(cases, desc="twins", unit="case", file=sys.stderr):
        if live:
            inputs = case.make(case.seed)
            comparison = compare(case, inputs, case.kernel(inputs), case.twin(inputs))
            rows.append({**comparison.row(), "source": "brian2"})
        else:
            comparison = check_golden(case)
            rows.append({**comparison.row(), "source": "golden",
                         "golden_file": golden_label(case.name),
                         "note": golden_note(comparison),
                         "not_checkable": not_checkable(comparison)})
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


def _usage_error(message: str):
    """A user's mistake: one line on stderr, exit status 2 (argparse's convention)."""
    print(f"bioplastic: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def cmd_validate(args) -> int:
    problem = None if args.golden else import_problem("brian2")
    live = not args.golden and problem is None
    if not live and not args.golden:
        print(f"{problem}: checking the golden twin traces instead "
              "(pip install 'bioplastic[reference]' for live twins)", file=sys.stderr)
    rows = _validate_rows(args.case or [], live=live)
    for row in rows:
        row["verdict"] = "not checkable" if row.get("not_checkable") else _fmt(row["ok"])
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows, [("case", "case"), ("model", "model"), ("n_units", "neurons"),
                            ("n_steps", "steps"), ("spikes_ours", "spikes ours"),
                            ("spikes_twin", "spikes twin"), ("max_abs_diff", "max|Δstate|"),
                            ("tier", "tier"), ("verdict", "verdict"), ("source", "source")]
                     + ([] if live else [("golden_file", "golden file"), ("note", "note")]))
    unchecked = [r["case"] for r in rows if r.get("not_checkable")]
    if unchecked:
        print(f"not checkable against golden files recorded with other NumPy math: "
              f"{', '.join(unchecked)} (their spikes diverge under another math's last bits); "
              "check them live with Brian2 (bioplastic validate), or record this machine's "
              "golden variants (python -m bioplastic.reference.regenerate --variant)",
              file=sys.stderr)
    return 0 if all(r["ok"] or r.get("not_checkable") for r in rows) else 1


def cmd_bench(args) -> int:
    from ._bench import all_benchmarks

    if args.peers:
        return _bench_peers(args)
    benchmarks = all_benchmarks()
    unmatched = [o for o in args.only or () if not any(o in b.name for b in benchmarks)]
    if unmatched:
        _usage_error(f"--only {unmatched} matches no benchmark; names: "
                     f"{', '.join(b.name for b in benchmarks)}")
    rows = []
    for bench in benchmarks:
        if args.only and not any(o in bench.name for o in args.only):
            continue
        problems = [p for p in map(import_problem, bench.needs) if p is not None]
        if problems:
            rows.append({"name": bench.name, "skipped": "; ".join(problems)})
            continue
        print(f"running {bench.name}: {bench.description}", file=sys.stderr)
        rows.extend(bench.run(args.quick))
    if args.json:
        print(json.dumps(rows, indent=2, default=float))
    else:
        for row in rows:
            print(" | ".join(f"{k}={_fmt(v)}" for k, v in row.items()))
    unmet = [row.get("target", row.get("name")) for row in rows if row.get("met") is False]
    if args.strict and unmet:
        print(f"bioplastic bench --strict: {len(unmet)} target(s) not met: {unmet}",
              file=sys.stderr)
        return 1
    return 0


def _bench_peers(args) -> int:
    from ._bench.peers import ratio_table, run_peers, scaling_table

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
        scaling = scaling_table(rows)
        if scaling:
            print("\nbioplastic alone, 1k to 100k neurons (medians, same run):\n" + scaling)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    out = _check_out(Path(args.out)) if args.out else None
    try:
        out = run_demo(out, quick=args.quick)
    except PermissionError as err:   # e.g. the default results/ under a read-only directory
        _usage_error(f"cannot write the results folder: {err}")
    print(f"plots and summary.json written to {out}")
    return 0


def _check_out(out: Path) -> Path:
    """``--out`` must be a new or empty folder that can be written (results never overwrite)."""
    if out.exists() and not out.is_dir():
        _usage_error(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        _usage_error(f"--out {out} already holds files; choose a new folder (results are never "
                     "overwritten)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".bioplastic-write-test"
        probe.touch()
        probe.unlink()
    except OSError as err:
        _usage_error(f"--out {out} cannot be written: {err.strerror or err}")
    return out


def cmd_warmup(args) -> int:
    from .warmup import warmup

    try:
        warmup(args.only)
    except ValueError as exc:
        _usage_error(str(exc))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bioplastic", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    bench.add_argument("--strict", action="store_true",
                       help="exit with status 1 if any target is not met")
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
