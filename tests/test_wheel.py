"""The package works installed from a wheel, outside the checkout (golden traces included)."""

import json
import os
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import run_tracked, starts_early

ROOT = Path(__file__).resolve().parents[1]


def _install_wheel_and_validate(workdir):
    """Build a wheel, install it into a fresh venv, run ``validate --golden`` from elsewhere.

    Returns (where ``import bioplastic`` resolved to, the validate process, the venv path).
    """
    wheels = workdir / "wheels"
    run_tracked([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "-q", "-w", str(wheels), str(ROOT)], check=True, cwd=workdir)
    (wheel,) = wheels.glob("bioplastic-*.whl")
    venv = workdir / "venv"
    run_tracked([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    run_tracked([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                 "--no-deps", str(wheel)], check=True)
    # Dependencies (numpy, numba, scipy, ...) come from this interpreter's site-packages, added
    # after the fresh venv's own: a .pth line adds the directory but runs none of its .pth
    # files, so the editable install of the checkout stays invisible.
    site = run_tracked([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                        "['purelib'])"], check=True)
    Path(site.stdout.strip(), "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = workdir / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = run_tracked([str(python), "-c", "import bioplastic; print(bioplastic.__file__)"],
                        check=True, cwd=outside, env=env)
    result = run_tracked([str(venv / "bin" / "bioplastic"), "validate", "--golden", "--json"],
                         cwd=outside, env=env)
    return where.stdout, result, venv


@pytest.mark.slow
@starts_early(_install_wheel_and_validate)     # ~3 min: runs beside the rest of the suite
def test_wheel_installs_and_validates_golden_traces_outside_the_checkout(early):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    where, result, venv = early
    assert str(venv) in where and str(ROOT) not in where
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    from bioplastic.reference import all_cases

    assert sorted(r["case"] for r in rows) == sorted(c.name for c in all_cases())
    # a machine whose NumPy math has no golden variant may find a chaotic case not checkable
    assert all((r["ok"] or r["not_checkable"]) and r["source"] == "golden" for r in rows)
