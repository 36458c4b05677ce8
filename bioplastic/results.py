"""Results folders for experiments and the demo: resolved config, versions, metrics, plots.

Every experiment writes ``<out>/config.json`` (the resolved configuration), ``versions.json``
(package versions, python, platform) and ``metrics.json``; plots go beside them.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import json
import platform
from pathlib import Path

import numpy as np

__all__ = ["prepare_results_dir", "write_json", "package_versions"]

_PACKAGES = ("bioplastic", "numpy", "numba", "scipy", "scikit-learn", "torch", "brian2",
             "tonic", "matplotlib")


def package_versions() -> dict:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def _jsonable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, value) -> Path:
    path = Path(path)
    path.write_text(json.dumps(_jsonable(value), indent=2, sort_keys=True) + "\n")
    return path


def prepare_results_dir(out_dir, config) -> Path:
    """Create ``out_dir`` and write ``config.json`` and ``versions.json`` into it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config)
    write_json(out / "versions.json", package_versions())
    return out
