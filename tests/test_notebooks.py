"""Execute every notebook in experiments/notebooks (jupytext percent-format .py files).

The .py file is the source of truth; its paired .ipynb must exist and hold the same cells.
"""

from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "experiments" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_paired(path):
    jupytext = pytest.importorskip("jupytext")
    paired = path.with_suffix(".ipynb")
    assert paired.exists(), f"run: jupytext --to ipynb {path}"
    source = [c.source for c in jupytext.read(path).cells]
    assert source == [c.source for c in jupytext.read(paired).cells], "run: jupytext --sync"
