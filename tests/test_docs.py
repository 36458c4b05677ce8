"""The API reference builds from the docstrings and guides with warnings as errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_sphinx_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    env = {**os.environ, "BIOPLASTIC_DOCS_EXECUTE": "0"}   # notebooks: tests/test_notebooks.py
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-E", "-q",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    html = tmp_path / "html"
    for page in ("index.html", "reference/api.html", "twinning.html", "results.html",
                 "notebooks/lif_vs_brian2.html", "reference/generated/bioplastic.io.html",
                 "reference/generated/bioplastic.neurons.lif.html"):
        assert (html / page).exists(), page
    # every public module gets a page without anyone listing it
    import bioplastic.reference as reference

    assert (html / "reference" / "generated" / f"{reference.__name__}.lif.html").exists()
