"""Runs the examples (``>>>``) in kerasmed's docstrings, on the current backend.

Every public function or layer's docstring carries a runnable example; this keeps them
runnable. The examples see ``np`` (NumPy) and ``keras`` besides their module's own names.
"""

import doctest
import importlib
import pkgutil
from pathlib import Path

import keras
import numpy as np
import pytest

import kerasmed


def _modules_with_examples():
    names = []
    for info in pkgutil.walk_packages(kerasmed.__path__, prefix="kerasmed."):
        module = importlib.import_module(info.name)
        source = getattr(module, "__file__", None)
        if source and ">>>" in Path(source).read_text(encoding="utf-8"):
            names.append(info.name)
    return names


MODULES = _modules_with_examples()


def test_the_examples_are_found():
    # A broken discovery would make every other test here vanish, not fail.
    assert {"kerasmed.layers.structured_conv_lstm", "kerasmed.models.fcslstm"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(module, name, globs={**vars(module), "np": np, "keras": keras})
    assert tests, f"{name} has '>>>' but no example was collected"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
