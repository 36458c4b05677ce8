"""Golden traces: twin results shipped as package data, ``bioplastic/reference/golden_traces/``.

A golden file holds the case's seed, the SHA-256 of its inputs (see :func:`inputs_digest`), its
tier, the twin's spikes and the twin's state arrays. :func:`check_golden` re-runs the kernel on
``case.make(seed)`` and compares it with the stored twin result, so agreement with Brian2 is
checked even where Brian2 is not installed (an installed wheel included: the files are read
through :mod:`importlib.resources`). Files are (re)written by ``python -m
bioplastic.reference.regenerate`` from a source checkout, which also writes ``PROVENANCE.md``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ._cases import Comparison, TwinCase, TwinResult, compare, inputs_digest

__all__ = ["write_golden", "read_golden", "check_golden", "golden_file", "golden_names",
           "GoldenMismatch", "GOLDEN_PACKAGE_DIR"]

#: The shipped golden folder (a ``Traversable``; a plain directory for normal installs).
GOLDEN_PACKAGE_DIR = resources.files("bioplastic.reference") / "golden_traces"


def golden_file(name: str, directory=None):
    """The golden file of case ``name`` (in ``directory``, default the shipped folder)."""
    return (GOLDEN_PACKAGE_DIR if directory is None else Path(directory)) / f"{name}.npz"


def golden_names(directory=None) -> list[str]:
    """Case names that have a golden file."""
    folder = GOLDEN_PACKAGE_DIR if directory is None else Path(directory)
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".npz"))

class GoldenMismatch(AssertionError):
    """The golden file does not belong to the inputs ``make(seed)`` draws now."""


def write_golden(path: Path, case: TwinCase, inputs: dict, twin: TwinResult) -> None:
    arrays = {f"state__{key}": np.asarray(value) for key, value in twin.state.items()}
    np.savez_compressed(
        path, name=case.name, model=case.model, tier=case.tier, seed=case.seed,
        inputs_sha256=inputs_digest(inputs), spike_steps=twin.spike_steps,
        spike_index=twin.spike_index, **arrays,
    )


def read_golden(path) -> tuple[dict, TwinResult]:
    """Read one golden file (a path or an ``importlib.resources`` Traversable)."""
    with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        meta = {key: data[key].item() for key in ("name", "model", "tier", "seed",
                                                  "inputs_sha256")}
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
    return compare(case, inputs, case.kernel(inputs), twin)
