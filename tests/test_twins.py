"""Every twin case of bioplastic.reference: golden (no Brian2 needed) and live (Brian2)."""

import json

import numpy as np
import pytest

from bioplastic.reference import all_cases, compare
from bioplastic.reference.golden import (
    VARIANTS,
    check_golden,
    golden_file,
    golden_names,
    math_digest,
    math_probe,
    numpy_math_fingerprint,
    read_golden,
)

from .conftest import GOLDEN_DIR

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_golden_twin(case):
    comparison = check_golden(case, GOLDEN_DIR)
    assert comparison.spikes_equal, comparison
    assert comparison.ok, (comparison, f"NumPy math {numpy_math_fingerprint()}: without a "
                           "variant for it, run python -m bioplastic.reference.regenerate "
                           "--variant with Brian2 (docs/twins.md, Golden traces)")


@pytest.mark.brian2
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_equals_brian2_twin(case):
    pytest.importorskip("brian2")
    inputs = case.make(case.seed)
    twin = case.twin(inputs)
    comparison = compare(case, inputs, case.kernel(inputs), twin)
    assert comparison.ok, comparison
    # The golden file for this machine's NumPy math must still be what Brian2 produces, at the
    # case's tier (not bit for bit: a machine whose math is not among the variants reads the
    # main file, and cases insensitive to the math have no variant).
    _, stored = read_golden(golden_file(case.name, GOLDEN_DIR))
    again = compare(case, inputs, stored, twin)
    assert again.ok, (again, f"NumPy math {numpy_math_fingerprint()}")


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
