"""kerasmed: Keras 3 building blocks for deep learning on sequences of medical images.

Subpackages are imported on first use, so ``import kerasmed`` is cheap and does not
fix the Keras backend before you choose one (``KERAS_BACKEND=jax|torch|tensorflow``)::

    import kerasmed
    layer = kerasmed.layers.TimeModulatedLSTM(16, num_labels=5)

`kerasmed.environment.start_backend()` checks that the backend's package is installed (else
it names the ``pip install`` line) and starts Keras without TensorFlow's start-up log lines.
"""

import importlib

__version__ = "0.1.0"

_SUBPACKAGES = (
    "layers",
    "models",
    "io",
    "preprocessing",
    "data",
    "metrics",
    "losses",
    "schedules",
    "optimizers",
    "callbacks",
    "training",
    "plotting",
    "experiments",
    "environment",
)

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'kerasmed' has no attribute {name!r}")
