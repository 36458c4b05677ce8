"""Every twin case of bioplastic.reference: golden (no Brian2 needed) and live (Brian2)."""

import pytest

from bioplastic.reference import all_cases, compare
from bioplastic.reference.golden import check_golden, read_golden

from .conftest import GOLDEN_DIR

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_golden_twin(case):
    comparison = check_golden(case, GOLDEN_DIR)
    assert comparison.spikes_equal, comparison
    assert comparison.ok, comparison


@pytest.mark.brian2
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_equals_brian2_twin(case):
    pytest.importorskip("brian2")
    inputs = case.make(case.seed)
    twin = case.twin(inputs)
    comparison = compare(case, inputs, case.kernel(inputs), twin)
    assert comparison.ok, comparison
    # The golden file must still be what Brian2 produces, at the case's tier: NumPy's exp may
    # differ in the last bit between CPUs (SIMD paths), so exact equality would test the CPU.
    _, stored = read_golden(GOLDEN_DIR / f"{case.name}.npz")
    again = compare(case, inputs, stored, twin)
    assert again.ok, again


def test_every_case_has_a_golden_file():
    missing = [c.name for c in CASES if not (GOLDEN_DIR / f"{c.name}.npz").is_file()]
    assert not missing, f"run python -m bioplastic.reference.regenerate {' '.join(missing)}"
