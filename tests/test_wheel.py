"""The package works installed from a wheel, outside the checkout (golden traces included)."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_validates_golden_traces_outside_the_checkout(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("bioplastic-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True)
    # Dependencies (numpy, numba, scipy, ...) come from this interpreter's site-packages, added
    # after the fresh venv's own: a .pth line adds the directory but runs none of its .pth
    # files, so the editable install of the checkout stays invisible.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(python), "-c", "import bioplastic; print(bioplastic.__file__)"],
                           check=True, capture_output=True, text=True, cwd=outside, env=env)
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout
    result = subprocess.run([str(venv / "bin" / "bioplastic"), "validate", "--golden", "--json"],
                            capture_output=True, text=True, cwd=outside, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    from bioplastic.reference import all_cases

    assert sorted(r["case"] for r in rows) == sorted(c.name for c in all_cases())
    assert all(r["ok"] and r["source"] == "golden" for r in rows)
