"""Every twin case of bioplastic.reference: golden (no Brian2 needed) and live (Brian2)."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from bioplastic.reference import all_cases, compare
from bioplastic.reference.golden import (
    VARIANTS,
    check_golden,
    compare_golden,
    golden_file,
    golden_names,
    golden_note,
    math_digest,
    math_probe,
    not_checkable,
    numpy_math_fingerprint,
    read_golden,
)

from .conftest import GOLDEN_DIR

CASES = all_cases()


def _other_math_message(comparison) -> str:
    return (f"{comparison.case}: golden file recorded with other NumPy math than this "
            f"machine's ({numpy_math_fingerprint()}): {golden_note(comparison)}; python -m "
            "bioplastic.reference.regenerate --variant records this machine's (docs/twins.md, "
            "Golden traces)")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_golden_twin(case):
    comparison = check_golden(case, GOLDEN_DIR)
    if not_checkable(comparison):
        pytest.skip(_other_math_message(comparison))
    assert comparison.spikes_equal, comparison
    assert comparison.ok, (comparison, f"NumPy math {numpy_math_fingerprint()}")
    if comparison.other_math:
        warnings.warn(_other_math_message(comparison), stacklevel=1)


@pytest.mark.brian2
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_equals_brian2_twin(case):
    pytest.importorskip("brian2")
    inputs = case.make(case.seed)
    twin = case.twin(inputs)
    comparison = compare(case, inputs, case.kernel(inputs), twin)
    assert comparison.ok, comparison
    # The golden file for this machine's NumPy math must still be what Brian2 produces, at the
    # case's tier (not bit for bit: cases insensitive to the math have no variant), or, for a
    # file recorded with other math, as compare_golden allows.
    meta, stored = read_golden(golden_file(case.name, GOLDEN_DIR))
    again = compare_golden(case, inputs, stored, meta, twin)
    if again.other_math:
        warnings.warn(_other_math_message(again), stacklevel=1)
    assert again.ok or not_checkable(again), (again, f"NumPy math {numpy_math_fingerprint()}")


def test_every_case_has_a_golden_file():
    missing = [c.name for c in CASES if not (GOLDEN_DIR / f"{c.name}.npz").is_file()]
    assert not missing, f"run python -m bioplastic.reference.regenerate {' '.join(missing)}"


VARIANT_FILES = sorted((GOLDEN_DIR / VARIANTS).glob("*/*.npz"))


@pytest.mark.parametrize("path", VARIANT_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in
                                                     VARIANT_FILES])
def test_variant_files_belong_to_their_folder_and_case(path):
    meta, _ = read_golden(path)
    main_meta, _ = read_golden(GOLDEN_DIR / path.name)
    assert meta["numpy_math"] == path.parent.name
    for key in ("name", "model", "tier", "seed", "inputs_sha256"):
        assert meta[key] == main_meta[key], key
    assert (path.parent / "PROVENANCE.md").read_text().count(f"## {meta['name']}\n") == 1


def test_golden_file_picks_the_variant_of_this_machines_numpy_math(tmp_path):
    (tmp_path / "case_a.npz").write_bytes(b"main")
    assert golden_file("case_a", tmp_path) == tmp_path / "case_a.npz"
    mine = tmp_path / VARIANTS / numpy_math_fingerprint()
    other = tmp_path / VARIANTS / "0123456789abcdef"
    other.mkdir(parents=True)
    (other / "case_a.npz").write_bytes(b"another machine's")
    assert golden_file("case_a", tmp_path) == tmp_path / "case_a.npz"
    assert golden_file("case_a", tmp_path, "0123456789abcdef") == other / "case_a.npz"
    mine.mkdir()
    (mine / "case_a.npz").write_bytes(b"this machine's")
    assert golden_file("case_a", tmp_path) == mine / "case_a.npz"
    assert golden_names(tmp_path) == ["case_a"]


def test_numpy_math_fingerprint_changes_with_one_ulp_of_any_function():
    results = math_probe()
    fingerprint = math_digest(results)
    assert fingerprint == numpy_math_fingerprint() == math_digest([r.copy() for r in results])
    for which in range(len(results)):
        nudged = [r.copy() for r in results]
        nudged[which][1234] = np.nextafter(nudged[which][1234], np.inf)
        assert math_digest(nudged) != fingerprint, which


def test_validate_golden_names_the_file_it_read(capsys):
    from bioplastic.cli import main

    assert main(["validate", "--golden", "--json", "--case", "pcnn_image",
                 "--case", "lif_recurrent"]) == 0
    rows = {row["case"]: row for row in json.loads(capsys.readouterr().out)}
    for name, row in rows.items():
        variant = (GOLDEN_DIR / VARIANTS / numpy_math_fingerprint() / f"{name}.npz").is_file()
        assert row["golden_file"] == (f"{VARIANTS}/{numpy_math_fingerprint()}" if variant
                                      else "main")
    assert rows["pcnn_image"]["golden_file"] == "main"   # the same bits on every machine so far


def _synthetic(spikes=(3, 7), state=(1.0, -2.5, 1e3)):
    from bioplastic.reference import TwinCase, TwinResult

    case = TwinCase(name="synthetic", model="lif", tier="T0", description="", make=dict,
                    kernel=None, twin=None)
    result = TwinResult(np.array(spikes, dtype=np.int64), np.zeros(len(spikes), dtype=np.int64),
                        {"v": np.array(state)})
    return case, result


def _shifted(result, relative):
    return result._replace(state={"v": result.state["v"] * (1.0 + relative)})


def _meta(numpy_math):
    return {"numpy_math": numpy_math}


OTHER = "0123456789abcdef"      # a fingerprint no machine has


def test_golden_file_of_other_math_is_checked_at_t1_not_t0():
    case, ours = _synthetic()
    # 1e-13 relative: 450 eps, beyond T0 (8 eps), within T1 (1e-12)
    stored = _shifted(ours, 1e-13)
    same = compare_golden(case, {}, ours, _meta(numpy_math_fingerprint()), stored)
    assert not same.ok and not same.other_math and same.tier == "T0"
    other = compare_golden(case, {}, ours, _meta(OTHER), stored)
    assert other.ok and other.other_math and other.tier == "T1"
    assert golden_note(other) == "other NumPy math: checked at T1"
    exact = compare_golden(case, {}, ours, _meta(OTHER), ours)
    assert exact.ok and not exact.other_math and golden_note(exact) == ""


def test_other_math_does_not_excuse_a_larger_difference_or_other_spikes():
    case, ours = _synthetic()
    far = compare_golden(case, {}, ours, _meta(OTHER), _shifted(ours, 1e-10))
    assert not far.ok and far.other_math and far.spikes_equal and not not_checkable(far)
    _, diverged = _synthetic(spikes=(3, 8))
    apart = compare_golden(case, {}, ours, _meta(OTHER), diverged)
    assert not apart.ok and not_checkable(apart)
    assert golden_note(apart) == "other NumPy math: spikes diverge, not checkable here"
    mine = compare_golden(case, {}, ours, _meta(numpy_math_fingerprint()), diverged)
    assert not mine.ok and not not_checkable(mine)


@pytest.mark.parametrize("avx512", [True, False])
def test_unrecorded_math_counts_as_avx512_svml(monkeypatch, avx512):
    from bioplastic.reference import golden

    monkeypatch.setattr(golden, "_numpy_dispatches_avx512_skx", lambda: avx512)
    case, ours = _synthetic()
    checked = compare_golden(case, {}, ours, _meta(None), _shifted(ours, 1e-13))
    assert checked.other_math is (not avx512) and checked.ok is (not avx512)


def _simd_features_to_disable() -> str:
    """The enabled x86 SIMD features NumPy's float64 exp/log/power/tanh loops dispatch on."""
    from numpy._core._multiarray_umath import __cpu_features__

    wanted = ("AVX512_SPR", "AVX512_ICL", "AVX512_CNL", "AVX512_CLX", "AVX512_SKX", "AVX512CD",
              "AVX512F", "AVX2", "FMA3")
    return " ".join(name for name in wanted if __cpu_features__.get(name))


def test_validate_golden_passes_or_says_not_checkable_under_other_numpy_math():
    # A machine whose NumPy math has no golden variant (ARM, macOS, old x86), imitated by
    # switching off NumPy's SIMD loops (then exp, log, power and tanh come from the C
    # library): validate --golden must not report the kernel wrong where only the math differs.
    features = _simd_features_to_disable()
    if not features:
        pytest.skip("no NumPy SIMD feature to switch off on this CPU")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": features}
    script = ("import json, sys; from bioplastic.cli import main; "
              "from bioplastic.reference.golden import numpy_math_fingerprint as f; "
              "print(f(), file=sys.stderr); raise SystemExit(main(['validate', '--golden', "
              "'--json', '--case', 'lif_recurrent', '--case', 'stc_lif_random']))")
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600)
    fingerprint = run.stderr.splitlines()[0]
    if fingerprint == numpy_math_fingerprint() or (GOLDEN_DIR / VARIANTS / fingerprint).is_dir():
        pytest.skip(f"the C library's math here is a recorded one ({fingerprint})")
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    for row in rows:
        assert row["ok"] or row["not_checkable"], row
        assert row["not_checkable"] == (row["other_math"] and not row["spikes_equal"]), row
        assert bool(row["note"]) == row["other_math"], row
    unchecked = [row["case"] for row in rows if row["not_checkable"]]
    assert all(name in run.stderr for name in unchecked)
