"""The notebooks' first code cell: it says how to install kerasmed, starts the backend quietly,
quotes the presets' measured runtimes and displays no stray value (fast: no training)."""

import glob
import json
import os
import subprocess
import sys

import nbformat
import pytest

from kerasmed.experiments import EXPERIMENTS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = {os.path.basename(spec.notebook): spec.name for spec in EXPERIMENTS.values()}


def _first_code_cell(path):
    notebook = nbformat.read(path, as_version=4)
    return next(cell.source for cell in notebook.cells if cell.cell_type == "code")


def test_every_notebook_is_registered():
    found = sorted(
        os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb"))
    )
    assert found == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_first_cell_without_kerasmed_prints_the_install_line(name):
    source = _first_code_cell(os.path.join(ROOT, "notebooks", name))
    code = (
        "import sys\nsys.modules['kerasmed'] = None  # as in a kernel without kerasmed\n" + source
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "pip install -r requirements.txt -e ." in proc.stdout
    assert proc.stderr.rstrip().splitlines()[-1].startswith("ModuleNotFoundError")


def test_first_cells_run_quietly_in_ipython():
    """All five first cells in one IPython shell (a fresh process, as a new kernel): each
    succeeds, displays no value (no stray ``'2'``), prints the runtimes `kerasmed list` shows,
    and TensorFlow's start-up lines do not reach stderr."""
    cells = {name: _first_code_cell(os.path.join(ROOT, "notebooks", name)) for name in NOTEBOOKS}
    script = (
        "import json, sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        f"cells = json.loads({json.dumps(json.dumps(cells))})\n"
        "for name, source in cells.items():\n"
        "    result = shell.run_cell(source)\n"
        "    result.raise_error()\n"
        "    print('RESULT', name, repr(result.result), flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    for noise in ("I0000", "E0000", "oneDNN", "absl::InitializeLog"):
        assert noise not in proc.stderr, proc.stderr
    for name, experiment in NOTEBOOKS.items():
        assert f"RESULT {name} None" in proc.stdout
        for preset, runtime in EXPERIMENTS[experiment].runtimes.items():
            assert f"{preset} {runtime}" in proc.stdout
