"""Execute every notebook in experiments/notebooks (jupytext percent-format .py files).

The .py file is the source of truth; its paired .ipynb must exist and hold the same cells.
Executed under Jupyter's own inline backend (as a user opens them), every notebook must show
at least one figure: the package never chooses a matplotlib backend.
"""

from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "experiments" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_shows_figures(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    notebook = jupytext.read(path)
    # The kernel inherits the environment: a backend forced there (MPLBACKEND=Agg, as CI or
    # the CLI may set) would hide the figures, so the notebook gets Jupyter's default.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} executed without showing a single figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_paired(path):
    jupytext = pytest.importorskip("jupytext")
    paired = path.with_suffix(".ipynb")
    assert paired.exists(), f"run: jupytext --to ipynb {path}"
    source = [c.source for c in jupytext.read(path).cells]
    assert source == [c.source for c in jupytext.read(paired).cells], "run: jupytext --sync"


def test_every_model_with_a_twin_has_a_notebook():
    """Each twinned model has ``<model>_vs_brian2`` (rate rules: the rules' own notebook)."""
    from bioplastic.reference import all_cases

    models = {case.model for case in all_cases()} - {"rate_rules"}
    missing = sorted(m for m in models if not (NOTEBOOK_DIR / f"{m}_vs_brian2.py").exists())
    assert not missing, f"models with a twin but no notebook: {missing}"
