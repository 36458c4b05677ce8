"""Regenerate the golden twin traces and PROVENANCE.md.

    python -m bioplastic.reference.regenerate            # every case
    python -m bioplastic.reference.regenerate lif_recurrent pcnn_image   # some cases

Run it from a source checkout: it writes into ``bioplastic/reference/golden_traces/`` (package
data, shipped in the wheel and read through ``importlib.resources``).

Runs each case's Brian2 twin (numpy target) through :mod:`bioplastic.reference`, checks that
the kernel agrees at the case's tier (refusing to write a golden file the kernel disagrees
with), writes ``<case>.npz`` and rewrites this case's section of PROVENANCE.md. Golden files
change only in a reviewed commit that says why.
"""

from __future__ import annotations

import datetime
import platform
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "golden_traces"


def _versions() -> str:
    import brian2
    import numba

    try:
        import importlib.metadata as md

        svml = "present" if any(d.metadata["Name"] == "intel-cmplr-lib-rt"
                                for d in md.distributions()) else "absent"
    except Exception:  # noqa: BLE001 - metadata is informative only
        svml = "unknown"
    return (f"brian2 {brian2.__version__}, numpy {np.__version__}, numba {numba.__version__}, "
            f"python {platform.python_version()}, Intel SVML {svml}")


def _section(case, inputs, comparison, schedule: str) -> str:
    today = datetime.date.today().isoformat()
    return (
        f"## {case.name}\n\n"
        f"- model: `{case.model}` — {case.description}\n"
        f"- tier: **{case.tier}** (read from the file by the golden test)\n"
        f"- seed: {case.seed}; inputs SHA-256 stored in the file\n"
        f"- versions: {_versions()}\n"
        "- Brian2 preferences: codegen.target=numpy, loop_invariant_optimisations=False, "
        "core.default_float_dtype=float64; monitors `when='end'` unless the twin module says "
        "otherwise (see its docstring for dt, method and order)\n"
        f"- regenerated {today} with `python -m bioplastic.reference.regenerate {case.name}`\n"
        f"- kernel vs twin at regeneration: spikes {comparison.spikes_ours}/"
        f"{comparison.spikes_twin}, identical={comparison.spikes_equal}, "
        f"max|Δstate|={comparison.max_abs_diff:.3g}\n\n"
        "```\n" + schedule.strip() + "\n```\n"
    )


def _update_provenance(sections: dict[str, str]) -> None:
    path = HERE / "PROVENANCE.md"
    text = path.read_text() if path.exists() else (
        "# Golden twin traces: provenance\n\n"
        "Each `<case>.npz` holds the Brian2 twin's output for one case of "
        "`bioplastic.reference` (seed, inputs SHA-256, tier, spikes, state). "
        "Regenerate with `python -m bioplastic.reference.regenerate`.\n\n")
    for name, section in sections.items():
        pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
        text = pattern.sub(lambda _m, s=section: s, text) if pattern.search(text) else (
            text.rstrip("\n") + "\n\n" + section)
    path.write_text(text)


def main(names: list[str]) -> int:
    from bioplastic.reference import all_cases, compare
    from bioplastic.reference.golden import write_golden

    cases = [c for c in all_cases() if not names or c.name in names]
    sections = {}
    for case in cases:
        inputs = case.make(case.seed)
        twin = case.twin(inputs)
        comparison = compare(case, inputs, case.kernel(inputs), twin)
        print(comparison)
        if not comparison.ok:
            print(f"refusing to write {case.name}: kernel and twin disagree", file=sys.stderr)
            return 1
        write_golden(HERE / f"{case.name}.npz", case, inputs, twin)
        sections[case.name] = _section(case, inputs, comparison, twin.schedule)
    _update_provenance(sections)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
