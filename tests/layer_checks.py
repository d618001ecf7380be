"""Check a custom layer the way Keras checks its own layers.

``check_layer`` wraps ``keras.src.testing.TestCase.run_layer_test`` (build, symbolic call,
``get_config``/``from_config``, serialization, a training step, masking support) and adds a
``.keras`` file save/load equality check. ``keras.src.testing`` is private API: the Keras
minor version is pinned in ``requirements.txt`` to the range these tests were run with.
"""

import os
import tempfile

import keras
import numpy as np
from keras.src import testing


class _Case(testing.TestCase):
    def runTest(self):  # unittest needs a test method to instantiate the case
        pass


def check_layer(layer_cls, init_kwargs, input_data=None, input_shape=None, **kwargs):
    """Runs Keras's own layer test suite on `layer_cls` (see ``TestCase.run_layer_test``).

    Any keyword of ``run_layer_test`` is accepted (``expected_output_shape``,
    ``expected_num_trainable_weights``, ``supports_masking``, ``run_training_check`` ...).
    """
    case = _Case()
    case.setUp()
    try:
        case.run_layer_test(
            layer_cls, init_kwargs, input_data=input_data, input_shape=input_shape, **kwargs
        )
    finally:
        case.tearDown()


def assert_keras_file_roundtrip(model, inputs, atol=1e-6):
    """Saves `model` to a ``.keras`` file, loads it back and compares predictions."""
    expected = model.predict(inputs, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    got = loaded.predict(inputs, verbose=0)
    for e, g in zip(keras.tree.flatten(expected), keras.tree.flatten(got)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), atol=atol, rtol=1e-5)
    return loaded
