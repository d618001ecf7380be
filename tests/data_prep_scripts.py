"""Loads a ``data_prep/`` script as a module, for the tests of the data-preparation scripts."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_data_prep_script(filename, module_name=None):
    """Imports ``data_prep/<filename>`` (not a package) and returns the module."""
    path = REPO / "data_prep" / filename
    spec = importlib.util.spec_from_file_location(module_name or path.stem + "_prep", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
