"""Golden traces: twin results stored in ``tests/data/twins/<case>.npz``.

A golden file holds the case's seed, the SHA-256 of its inputs (see :func:`inputs_digest`), its
tier, the twin's spikes and the twin's state arrays. :func:`check_golden` re-runs the kernel on
``case.make(seed)`` and compares it with the stored twin result, so agreement with Brian2 is
checked even where Brian2 is not installed. Files are (re)written by
``tests/data/twins/regenerate.py``, which also writes ``PROVENANCE.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._cases import Comparison, TwinCase, TwinResult, compare, inputs_digest

__all__ = ["write_golden", "read_golden", "check_golden", "GoldenMismatch"]

class GoldenMismatch(AssertionError):
    """The golden file does not belong to the inputs ``make(seed)`` draws now."""


def write_golden(path: Path, case: TwinCase, inputs: dict, twin: TwinResult) -> None:
    arrays = {f"state__{key}": np.asarray(value) for key, value in twin.state.items()}
    np.savez_compressed(
        path, name=case.name, model=case.model, tier=case.tier, seed=case.seed,
        inputs_sha256=inputs_digest(inputs), spike_steps=twin.spike_steps,
        spike_index=twin.spike_index, **arrays,
    )


def read_golden(path: Path) -> tuple[dict, TwinResult]:
    with np.load(path, allow_pickle=False) as data:
        meta = {key: data[key].item() for key in ("name", "model", "tier", "seed",
                                                  "inputs_sha256")}
        state = {key[len("state__"):]: data[key] for key in data.files if key.startswith("state__")}
        result = TwinResult(data["spike_steps"], data["spike_index"], state)
    return meta, result


def check_golden(case: TwinCase, directory: Path) -> Comparison:
    """Kernel vs stored twin result, at the tier recorded in the file."""
    meta, twin = read_golden(Path(directory) / f"{case.name}.npz")
    inputs = case.make(int(meta["seed"]))
    if inputs_digest(inputs) != meta["inputs_sha256"]:
        raise GoldenMismatch(f"{case.name}: make({meta['seed']}) no longer draws the inputs the "
                             "golden file was made from; regenerate it in a reviewed commit")
    if meta["tier"] != case.tier:
        raise GoldenMismatch(f"{case.name}: file tier {meta['tier']} != case tier {case.tier}")
    return compare(case, inputs, case.kernel(inputs), twin)
