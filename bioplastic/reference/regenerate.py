"""Regenerate the golden twin traces and PROVENANCE.md.

    python -m bioplastic.reference.regenerate            # every case
    python -m bioplastic.reference.regenerate lif_recurrent pcnn_image   # some cases
    python -m bioplastic.reference.regenerate --variant   # this machine's NumPy math

Run it from a source checkout: it writes into ``bioplastic/reference/golden_traces/`` (package
data, shipped in the wheel and read through ``importlib.resources``).

Runs each case's Brian2 twin (numpy target) through :mod:`bioplastic.reference`, checks that
the kernel agrees at the case's tier (refusing to write a golden file the kernel disagrees
with), writes ``<case>.npz`` and rewrites this case's section of PROVENANCE.md. Golden files
change only in a reviewed commit that says why.

With ``--variant`` it leaves the main files alone and writes
``golden_traces/variants/<fingerprint>/<case>.npz`` for the cases whose twin result, with this
machine's NumPy math (see :mod:`bioplastic.reference.golden`), differs in any bit from the
main file; the main files were recorded on an AVX-512 machine, so run it on a machine without
AVX-512 (or with ``NPY_DISABLE_CPU_FEATURES``) to cover the C library's math.
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


def _section(case, inputs, comparison, schedule: str, variant: bool) -> str:
    command = "--variant " * variant + case.name
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
        f"- regenerated {today} with `python -m bioplastic.reference.regenerate {command}`\n"
        f"- kernel vs twin at regeneration: spikes {comparison.spikes_ours}/"
        f"{comparison.spikes_twin}, identical={comparison.spikes_equal}, "
        f"max|Δstate|={comparison.max_abs_diff:.3g}\n\n"
        "```\n" + schedule.strip() + "\n```\n"
    )


MAIN_HEADER = (
    "# Golden twin traces: provenance\n\n"
    "Each `<case>.npz` holds the Brian2 twin's output for one case of "
    "`bioplastic.reference` (seed, inputs SHA-256, tier, spikes, state). "
    "Regenerate with `python -m bioplastic.reference.regenerate`.\n\n")


def _machine() -> str:
    """The CPU and the SIMD extensions NumPy found (what decides its float64 math)."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
        simd = ", ".join(name for name, found in features.items() if found)
    except ImportError:  # private NumPy module: informative only
        simd = "unknown"
    return f"{cpu}; NumPy SIMD extensions found: {simd}"


def _variant_header(fingerprint: str) -> str:
    return (f"# Golden variants for NumPy math `{fingerprint}`\n\n"
            "Each `<case>.npz` here is the Brian2 twin's output for a case whose result, with "
            "this NumPy float64 `exp`/`tanh`/`log`/`power`, differs in some bit from the main "
            "file one folder up (recorded on an AVX-512 machine, where NumPy uses SVML). "
            "Cases not here gave the main file's bits. Recorded on: "
            f"{_machine()}. Regenerate with `python -m bioplastic.reference.regenerate "
            "--variant` on such a machine.\n\n")


def _update_provenance(sections: dict[str, str], folder: Path = HERE,
                       header: str = MAIN_HEADER) -> None:
    path = folder / "PROVENANCE.md"
    text = path.read_text() if path.exists() else header
    for name, section in sections.items():
        pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
        text = pattern.sub(lambda _m, s=section: s, text) if pattern.search(text) else (
            text.rstrip("\n") + "\n\n" + section)
    path.write_text(text)


def _target(case, twin, variant: bool) -> Path | None:
    """Where ``case``'s golden file goes: the main folder, or (``variant``) this machine's
    variant folder, or nowhere when the main file already holds these bits (a stale variant
    file is then removed)."""
    from bioplastic.reference import same_bits
    from bioplastic.reference.golden import read_golden, variant_folder

    if not variant:
        return HERE
    folder, main = Path(variant_folder(HERE)), HERE / f"{case.name}.npz"
    if not main.is_file():
        raise SystemExit(f"{case.name} has no main golden file to vary: regenerate it first "
                         "without --variant")
    if same_bits(twin, read_golden(main)[1]):
        (folder / f"{case.name}.npz").unlink(missing_ok=True)
        print(f"{case.name}: the main file's bits; no variant")
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def main(argv: list[str]) -> int:
    from bioplastic.reference import all_cases, compare
    from bioplastic.reference.golden import numpy_math_fingerprint, write_golden

    variant = "--variant" in argv
    names = [name for name in argv if name != "--variant"]
    cases = [c for c in all_cases() if not names or c.name in names]
    sections: dict[Path, dict[str, str]] = {}
    for case in cases:
        inputs = case.make(case.seed)
        twin = case.twin(inputs)
        comparison = compare(case, inputs, case.kernel(inputs), twin)
        print(comparison)
        if not comparison.ok:
            print(f"refusing to write {case.name}: kernel and twin disagree", file=sys.stderr)
            return 1
        folder = _target(case, twin, variant)
        if folder is not None:
            write_golden(folder / f"{case.name}.npz", case, inputs, twin)
            sections.setdefault(folder, {})[case.name] = _section(case, inputs, comparison,
                                                                  twin.schedule, variant)
    for folder, folder_sections in sections.items():
        header = _variant_header(numpy_math_fingerprint()) if folder != HERE else MAIN_HEADER
        _update_provenance(folder_sections, folder, header)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
