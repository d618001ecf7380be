"""Shared pytest setup: an isolated HOME/KERAS_HOME, seeded runs, Keras-style layer checks.

The environment is set at import time, before Keras is imported, because Keras reads
``KERAS_HOME`` and ``KERAS_BACKEND`` once, when it is first imported.
"""

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="kerasmed-test-home-")
os.environ["HOME"] = _HOME
os.environ["KERAS_HOME"] = os.path.join(_HOME, ".keras")
os.environ["MPLBACKEND"] = "Agg"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}, HOME={_HOME}"


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same seeds and a fresh Keras session."""
    # free_memory=False: the gc.collect() it would run costs ~1 s per test with TF and torch loaded
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
