"""Twin cases: the machinery behind ``bioplastic validate``, the golden traces and their tests.

A :class:`TwinCase` names a model run that the Numba kernel and its Brian2 twin both perform on
the same pre-drawn inputs. Each module of :mod:`bioplastic.reference` lists its cases in a
module-level ``CASES`` tuple; :func:`all_cases` discovers them, so adding a model never means
editing a central list. Everything here runs without Brian2 except ``case.twin``.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = ["TwinCase", "TwinResult", "Comparison", "compare", "same_spikes", "same_bits",
           "all_cases", "inputs_digest", "TIERS"]

#: Acceptance per tier (docs/twins.md, "Tiers"). T0: identical spikes and state equal up
#: to a few ulp; "rtol" is a multiple of float64 eps, scaled by each field's magnitude.
TIERS = {
    "T0": {"rtol": 8 * np.finfo(np.float64).eps},
    "T1": {"rtol": 1e-12},
}


class TwinResult(NamedTuple):
    """What a run produced, in the comparison form.

    spike_steps, spike_index : int64 arrays sorted by (step, index)
    state : dict of float64 arrays (traces ``(T, n)`` or final values ``(n,)``)
    schedule : Brian2's ``scheduling_summary()`` (twins only; goes into PROVENANCE.md)
    """

    spike_steps: np.ndarray
    spike_index: np.ndarray
    state: dict
    schedule: str = ""


@dataclass(frozen=True)
class TwinCase:
    """One kernel-vs-twin comparison.

    make(seed) -> dict of inputs and parameters (deterministic in the seed; no Brian2);
    kernel(inputs) -> TwinResult; twin(inputs) -> TwinResult (imports Brian2).
    """

    name: str
    model: str
    tier: str
    description: str
    make: Callable[[int], dict]
    kernel: Callable[[dict], TwinResult]
    twin: Callable[[dict], TwinResult]
    seed: int = 0
    n_units: Callable[[dict], int] = field(default=lambda inputs: 0)
    n_steps: Callable[[dict], int] = field(default=lambda inputs: 0)


class Comparison(NamedTuple):
    case: str
    model: str
    tier: str
    n_units: int
    n_steps: int
    spikes_ours: int
    spikes_twin: int
    spikes_equal: bool
    max_abs_diff: float
    max_rel_diff: float
    ok: bool
    #: Checked at the looser tier allowed against a golden file recorded with other NumPy
    #: math (:func:`bioplastic.reference.golden.compare_golden`).
    other_math: bool = False

    def row(self) -> dict:
        return self._asdict()


def same_spikes(steps: np.ndarray, index: np.ndarray, twin: TwinResult) -> bool:
    """Identical sorted ``(step, index)`` spike pairs."""
    return bool(np.array_equal(steps, twin.spike_steps) and np.array_equal(index, twin.spike_index))


def same_bits(ours: TwinResult, twin: TwinResult) -> bool:
    """Identical spikes and every state array equal bit for bit (the same fields)."""
    return (same_spikes(ours.spike_steps, ours.spike_index, twin)
            and set(ours.state) == set(twin.state)
            and all(np.array_equal(ours.state[key], twin.state[key]) for key in ours.state))


def compare(case: TwinCase, inputs: dict, ours: TwinResult, twin: TwinResult, *,
            tier: str | None = None) -> Comparison:
    """Apply the case's tier (or ``tier``) to two results."""
    tier = case.tier if tier is None else tier
    spikes_equal = same_spikes(ours.spike_steps, ours.spike_index, twin)
    rtol = TIERS[tier]["rtol"]
    max_abs, max_rel, state_ok = 0.0, 0.0, set(ours.state) == set(twin.state)
    for key in sorted(set(ours.state) & set(twin.state)):
        a, b = np.asarray(ours.state[key]), np.asarray(twin.state[key])
        if a.shape != b.shape:
            state_ok = False
            continue
        diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / scale if scale else diff)
        state_ok &= diff <= rtol * max(scale, 1.0)
    return Comparison(case.name, case.model, tier, int(case.n_units(inputs)),
                      int(case.n_steps(inputs)), int(ours.spike_steps.size),
                      int(twin.spike_steps.size), spikes_equal, max_abs, max_rel,
                      bool(spikes_equal and state_ok))


def inputs_digest(inputs: dict) -> str:
    """SHA-256 over every array in ``inputs`` (sorted keys): golden files store it instead of
    large inputs, and the golden test checks that ``make(seed)`` still draws the same arrays."""
    digest = hashlib.sha256()
    for key in sorted(inputs):
        array = np.ascontiguousarray(np.asarray(inputs[key]))
        digest.update(key.encode())
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def all_cases() -> list[TwinCase]:
    """Every ``CASES`` entry of every public module in :mod:`bioplastic.reference`."""
    from .. import reference

    cases: list[TwinCase] = []
    for module in sorted(pkgutil.iter_modules(reference.__path__), key=lambda m: m.name):
        if module.name.startswith("_") or module.name == "golden":
            continue
        mod = importlib.import_module(f"{reference.__name__}.{module.name}")
        cases.extend(getattr(mod, "CASES", ()))
    names = [c.name for c in cases]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise RuntimeError(f"twin case names must be unique, repeated: {sorted(duplicated)}")
    return cases


def run_case(case: TwinCase, *, live: bool = True) -> tuple[dict, TwinResult, TwinResult | None]:
    inputs = case.make(case.seed)
    ours = case.kernel(inputs)
    twin = case.twin(inputs) if live else None
    return inputs, ours, twin
