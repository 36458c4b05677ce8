"""Golden traces: twin results shipped as package data, ``bioplastic/reference/golden_traces/``.

A golden file holds the case's seed, the SHA-256 of its inputs (see :func:`inputs_digest`), its
tier, the twin's spikes and the twin's state arrays. :func:`check_golden` re-runs the kernel on
``case.make(seed)`` and compares it with the stored twin result, so agreement with Brian2 is
checked even where Brian2 is not installed (an installed wheel included: the files are read
through :mod:`importlib.resources`). Files are (re)written by ``python -m
bioplastic.reference.regenerate`` from a source checkout, which also writes ``PROVENANCE.md``.

**Variants by NumPy math.** The twins run on Brian2's numpy target, so their last bits depend
on NumPy's float64 ``exp``, ``tanh``, ``log`` and ``power``, which depend on the CPU: NumPy runs
them through Intel's SVML on AVX-512 machines, ``tanh`` through its own code on AVX2 machines
(29 % of the fingerprint's arguments differ from the C library there) and the rest through
the C library. The kernels call the same NumPy functions, so kernel and twin agree on each
machine; but over 1,000 steps of a recurrent network a one-ulp difference in a decay factor
grows to about 2e-14 relative, beyond tier T0 (the spikes stay identical), so a golden file
recorded with one NumPy math does not check another machine's kernel at T0. The main files
were recorded on an AVX-512 machine; ``golden_traces/variants/<fingerprint>/<case>.npz`` holds
a case's twin result recorded with other math where it differs in any bit, and
:func:`golden_file` picks the file of this machine's :func:`numpy_math_fingerprint`.

**A machine whose math has no variant** (another CPU family or C library: ARM, macOS, an x86
CPU without AVX2) reads the main file, recorded with other math. There a case that fails its
tier is checked at :data:`OTHER_MATH_TIER` instead, and the comparison says so
(``other_math``): that much a change of math can move the state of a case whose spikes stay
the same (the largest difference measured between two maths is 36 times below it), while a
schedule error moves it by orders of magnitude more or changes spikes. A chaotic case whose
spikes diverge under the other math cannot be checked by that file at all
(:func:`not_checkable`). The proof at T0 on such a machine is the live twin (``bioplastic
validate`` with Brian2); ``regenerate --variant`` records the machine's variants, after which
its golden check is at T0 again.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from ._cases import TIERS, Comparison, TwinCase, TwinResult, compare, inputs_digest

__all__ = ["write_golden", "read_golden", "check_golden", "compare_golden", "golden_file",
           "golden_names", "golden_label", "numpy_math_fingerprint", "math_probe",
           "math_digest", "recorded_math", "recorded_with_this_math", "not_checkable",
           "golden_note", "variant_folder",
           "GoldenMismatch", "GOLDEN_PACKAGE_DIR", "VARIANTS", "OTHER_MATH_TIER",
           "UNRECORDED_MATH"]

#: The shipped golden folder (a ``Traversable``; a plain directory for normal installs).
GOLDEN_PACKAGE_DIR = resources.files("bioplastic.reference") / "golden_traces"


#: Sub-folder of the golden folder that holds one folder of variants per NumPy math.
VARIANTS = "variants"

#: The tier of a golden check against a file recorded with other NumPy math, where the case's
#: own tier fails. The largest difference between two maths' results of a case with the same
#: spikes (2026-12-04, every case: AVX-512 SVML against AVX2, and against the C library's
#: functions, NumPy's SIMD loops disabled) was 2.8e-14 relative (``stc_lmh_random`` under
#: AVX2, 1,000 steps), 36 times below T1's 1e-12.
OTHER_MATH_TIER = "T1"

#: The NumPy math of the golden files that do not record it (the main files written before
#: 2026-12-04): every one was recorded on an AVX-512 machine, where NumPy computes ``exp``,
#: ``log``, ``power`` and ``tanh`` through SVML.
UNRECORDED_MATH = "AVX-512 (SVML; fingerprint not recorded)"


def math_probe() -> list[np.ndarray]:
    """NumPy's float64 ``exp``, ``tanh``, ``log`` and ``power`` on fixed arguments."""
    x = np.linspace(-4.0, 4.0, 4099)
    positive = np.abs(x) + 0.5
    return [np.exp(x), np.tanh(x), np.log(positive), np.power(positive, 1.7)]


def math_digest(results: list[np.ndarray]) -> str:
    """16 hex digits of SHA-256 over ``results``' bytes."""
    digest = hashlib.sha256()
    for values in results:
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


@cache
def numpy_math_fingerprint() -> str:
    """The name of this process's NumPy float64 math: :func:`math_digest` of
    :func:`math_probe`, so machines whose NumPy computes them to other last bits get other
    fingerprints."""
    return math_digest(math_probe())


def _numpy_dispatches_avx512_skx() -> bool:
    """Whether this NumPy runs its AVX-512 (Skylake-X) loops, the ones that call SVML."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:      # a NumPy that moved it: treat unrecorded files as other math
        return False
    return bool(__cpu_features__.get("AVX512_SKX", False))


def recorded_math(meta: dict) -> str:
    """The NumPy math a golden file was recorded with (its fingerprint, or
    :data:`UNRECORDED_MATH`)."""
    return meta["numpy_math"] or UNRECORDED_MATH


def recorded_with_this_math(meta: dict) -> bool:
    """Whether the golden file of ``meta`` was recorded with this process's NumPy math."""
    if meta["numpy_math"] is None:
        return _numpy_dispatches_avx512_skx()
    return meta["numpy_math"] == numpy_math_fingerprint()


def _folder(directory):
    return GOLDEN_PACKAGE_DIR if directory is None else Path(directory)


def variant_folder(directory=None, fingerprint: str | None = None):
    """The folder of golden variants recorded with NumPy math ``fingerprint`` (default this
    machine's)."""
    return _folder(directory) / VARIANTS / (fingerprint or numpy_math_fingerprint())


def _variant_file(name: str, directory, fingerprint: str | None):
    variant = variant_folder(directory, fingerprint) / f"{name}.npz"
    return variant if variant.is_file() else None


def golden_file(name: str, directory=None, fingerprint: str | None = None):
    """The golden file of case ``name`` (in ``directory``, default the shipped folder): the
    variant recorded with NumPy math ``fingerprint`` (default this machine's) where there is
    one, else the main file."""
    return _variant_file(name, directory, fingerprint) or _folder(directory) / f"{name}.npz"


def golden_label(name: str, directory=None) -> str:
    """Which file :func:`check_golden` reads for case ``name`` on this machine: ``"main"`` or
    ``"variants/<fingerprint>"``."""
    if _variant_file(name, directory, None) is None:
        return "main"
    return f"{VARIANTS}/{numpy_math_fingerprint()}"


def golden_names(directory=None) -> list[str]:
    """Case names that have a golden file."""
    return sorted(p.name[:-4] for p in _folder(directory).iterdir() if p.name.endswith(".npz"))


class GoldenMismatch(AssertionError):
    """The golden file does not belong to the inputs ``make(seed)`` draws now."""


def write_golden(path: Path, case: TwinCase, inputs: dict, twin: TwinResult) -> None:
    arrays = {f"state__{key}": np.asarray(value) for key, value in twin.state.items()}
    np.savez_compressed(
        path, name=case.name, model=case.model, tier=case.tier, seed=case.seed,
        inputs_sha256=inputs_digest(inputs), numpy_math=numpy_math_fingerprint(),
        spike_steps=twin.spike_steps,
        spike_index=twin.spike_index, **arrays,
    )


def read_golden(path) -> tuple[dict, TwinResult]:
    """Read one golden file (a path or an ``importlib.resources`` Traversable)."""
    with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        meta = {key: data[key].item() for key in ("name", "model", "tier", "seed",
                                                  "inputs_sha256")}
        # Files written before 2026-12-04 do not record it (all made with AVX-512 NumPy).
        meta["numpy_math"] = data["numpy_math"].item() if "numpy_math" in data.files else None
        state = {key[len("state__"):]: data[key] for key in data.files if key.startswith("state__")}
        result = TwinResult(data["spike_steps"], data["spike_index"], state)
    return meta, result


def check_golden(case: TwinCase, directory=None) -> Comparison:
    """Kernel vs stored twin result, at the tier recorded in the file (``directory``: default
    the shipped golden folder)."""
    meta, twin = read_golden(golden_file(case.name, directory))
    inputs = case.make(int(meta["seed"]))
    if inputs_digest(inputs) != meta["inputs_sha256"]:
        raise GoldenMismatch(f"{case.name}: make({meta['seed']}) no longer draws the inputs the "
                             "golden file was made from; regenerate it in a reviewed commit")
    if meta["tier"] != case.tier:
        raise GoldenMismatch(f"{case.name}: file tier {meta['tier']} != case tier {case.tier}")
    return compare_golden(case, inputs, case.kernel(inputs), meta, twin)


def compare_golden(case: TwinCase, inputs: dict, ours: TwinResult, meta: dict,
                   stored: TwinResult) -> Comparison:
    """``ours`` against the stored twin result of a golden file (``meta`` from
    :func:`read_golden`) at the case's tier. Where that fails and the file was recorded with
    other NumPy math than this process's, the comparison is redone at
    :data:`OTHER_MATH_TIER` (or the case's tier if looser) and marked ``other_math``: see
    :func:`golden_note`."""
    comparison = compare(case, inputs, ours, stored)
    if comparison.ok or recorded_with_this_math(meta):
        return comparison
    tier = max(case.tier, OTHER_MATH_TIER, key=lambda name: TIERS[name]["rtol"])
    return compare(case, inputs, ours, stored, tier=tier)._replace(other_math=True)


def not_checkable(comparison: Comparison) -> bool:
    """A golden check against another NumPy math's file whose spikes diverge: in a chaotic
    case (the random STC networks) a last-bit difference in ``tanh`` changes spikes within
    the run, so such a file cannot check this machine's kernel, neither pass nor fail."""
    return comparison.other_math and not comparison.spikes_equal


def golden_note(comparison: Comparison) -> str:
    """What a golden comparison's NumPy math means for its verdict ('' where the file was
    recorded with this machine's math or the case held at its own tier)."""
    if not comparison.other_math:
        return ""
    if not_checkable(comparison):
        return "other NumPy math: spikes diverge, not checkable here"
    return f"other NumPy math: checked at {comparison.tier}"
