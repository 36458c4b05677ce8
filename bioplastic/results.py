"""Results folders for experiments and the demo: resolved config, versions, metrics, plots.

The convention (see ``docs/results.md``): every run writes a **new** folder,
``results/<experiment>-<YYYYmmdd-HHMMSS>[-quick]/`` by default (:func:`default_out`), or the
folder given explicitly (``--out``), which must not exist yet or be empty: a run never
overwrites another run's results silently. In it go ``config.json`` (the resolved
configuration), ``versions.json`` (package versions, python, platform) and ``metrics.json``;
plots go beside them (:func:`save_figure`). Metric keys say what they hold and in which unit:
``accuracy_frac`` (a fraction in [0, 1]), ``error_pct`` (a percentage), ``*_s`` (seconds).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata as md
import json
import platform
import sys
from pathlib import Path

import numpy as np

__all__ = ["default_out", "prepare_results_dir", "write_json", "package_versions",
           "cpu_description", "save_figure"]

_PACKAGES = ("bioplastic", "numpy", "numba", "scipy", "scikit-learn", "torch", "brian2",
             "tonic", "matplotlib")


def package_versions() -> dict:
    versions = {"python": platform.python_version(), "platform": platform.platform(),
                "cpu": cpu_description()}
    for name in _PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def cpu_description() -> dict:
    """The CPU and the instruction sets the compiled kernels dispatch to.

    Recorded because float32 results depend on them: oneDNN and ATen pick their kernels (and
    so their summation orders) by instruction set, and a 40-epoch training amplifies that
    round-off into different nets; the digits-C table moves by up to 0.3 points between an
    AVX-512 and an AVX2 dispatch with the same seeds (docs/results.md). ``torch`` is only
    asked when the run has imported it.
    """
    from llvmlite import binding as llvm

    cpu = {"model": _cpu_model(), "llvm_host_cpu": llvm.get_host_cpu_name()}
    torch = sys.modules.get("torch")
    if torch is not None:
        cpu["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return cpu


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


def default_out(experiment: str, *, quick: bool = False, root="results",
                now: datetime.datetime | None = None) -> Path:
    """A folder name no run has used: ``<root>/<experiment>-<YYYYmmdd-HHMMSS>[-quick]``.

    Two runs started within the same second get ``-2``, ``-3``, ... appended. The folder is
    not created here (:func:`prepare_results_dir` creates it).
    """
    if not isinstance(experiment, str) or not experiment or "/" in experiment:
        raise ValueError(f"experiment must be a non-empty name without '/', got {experiment!r}")
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{experiment}-{stamp}{'-quick' if quick else ''}"
    candidate, k = base, 1
    while candidate.exists():
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def prepare_results_dir(out_dir, config) -> Path:
    """Create ``out_dir`` and write ``config.json`` and ``versions.json`` into it.

    ``out_dir`` must not exist yet or be an empty folder; a folder that already holds files
    (another run's results) raises ``FileExistsError`` rather than being overwritten.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(
            f"results folder {str(out)!r} already holds files; pass a new --out (or omit it "
            "for a fresh results/<experiment>-<timestamp> folder) rather than overwrite a run"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config)
    write_json(out / "versions.json", package_versions())
    return out


def save_figure(fig, path, **kwargs) -> Path:
    """``fig.savefig(path, dpi=120, **kwargs)`` then close it (a long run keeps no figures)."""
    import matplotlib.pyplot as plt

    fig.savefig(path, **{"dpi": 120, **kwargs})
    plt.close(fig)
    return Path(path)
