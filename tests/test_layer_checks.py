"""The shared layer-checking harness must pass a correct layer and catch a broken one."""

import keras
import numpy as np
import pytest
from layer_checks import assert_keras_file_roundtrip, check_layer


@keras.saving.register_keras_serializable(package="kerasmed_tests")
class _Scale(keras.layers.Layer):
    def __init__(self, factor=1.0, forget_factor_in_config=False, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.forget = forget_factor_in_config
        self.supports_masking = True

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w * self.factor

    def get_config(self):
        config = super().get_config()
        if not self.forget:
            config["factor"] = self.factor
        return config


def test_check_layer_passes_a_correct_layer():
    check_layer(
        _Scale,
        {"factor": 2.0},
        input_shape=(2, 3),
        expected_output_shape=(2, 3),
        expected_num_trainable_weights=1,
        supports_masking=True,
        run_mixed_precision_check=False,
    )


def test_check_layer_catches_an_incomplete_config():
    with pytest.raises(AssertionError):
        check_layer(
            _Scale,
            {"factor": 2.0, "forget_factor_in_config": True},
            input_shape=(2, 3),
            expected_output_shape=(2, 3),
            run_mixed_precision_check=False,
        )


def test_keras_file_roundtrip_compares_predictions():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, _Scale(3.0)(inputs))
    x = np.arange(6, dtype="float32").reshape(2, 3)
    loaded = assert_keras_file_roundtrip(model, x)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), 3.0 * x)
