"""Executes every tutorial notebook top to bottom in its quick preset (papermill).

Marked ``notebooks``: ``pytest -m "not notebooks"`` deselects it; ``tests/run_all.py`` runs
it once, under one backend, after the unit suites.
"""

import glob
import os

import papermill
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    out = tmp_path / os.path.basename(path)
    papermill.execute_notebook(
        path,
        str(out),
        parameters={"preset": "quick", "out_dir": str(tmp_path / "results")},
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
        request_save_on_cell_execute=False,
        execution_timeout=1800,
    )
    assert out.exists()
