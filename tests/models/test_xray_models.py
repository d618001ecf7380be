"""kerasmed.models.xray and the legacy decay schedule: the paper-004 classifier and its SGD."""

import keras
import numpy as np
import pytest

from kerasmed.models.xray import (
    PAPER_BATCH_SIZE,
    PAPER_EPOCHS,
    build_inception_classifier,
    compile_xray_classifier,
    xray_optimizer,
)
from kerasmed.schedules import legacy_decay_schedule

INCEPTION_V3_NO_TOP = 21_802_784  # keras.applications.InceptionV3(include_top=False)


def _head_parameters(features, units, classes):
    return features * units + units + units * classes + classes


def _small(num_classes=4, size=32, **kwargs):
    return build_inception_classifier(
        num_classes, (size, size, 3), weights=None, backbone="small_cnn",
        filters=(4, 8), feature_dim=16, **kwargs,
    )  # fmt: skip


def test_inception_v3_classifier_parameters_at_512_and_75():
    model = build_inception_classifier(193, weights=None)
    assert model.input_shape == (None, 512, 512, 3) and model.output_shape == (None, 193)
    backbone = model.get_layer("inception_v3")
    assert backbone.count_params() == INCEPTION_V3_NO_TOP and backbone.output_shape == (None, 2048)
    assert model.count_params() == INCEPTION_V3_NO_TOP + _head_parameters(2048, 1024, 193)
    assert model.get_layer("xray_classifier_dense").units == 1024
    keras.backend.clear_session(free_memory=False)
    small_input = build_inception_classifier(6, (75, 75, 3), weights=None)
    assert small_input.count_params() == INCEPTION_V3_NO_TOP + _head_parameters(2048, 1024, 6)
    with pytest.raises(ValueError):  # InceptionV3 needs at least 75 x 75
        build_inception_classifier(6, (64, 64, 3), weights=None)


def test_head_computes_rescale_backbone_dense_softmax():
    model = _small(num_classes=5, dense_units=7, input_max=65535.0)
    x = np.random.default_rng(0).uniform(0, 65535, (3, 32, 32, 3)).astype("float32")
    backbone = model.get_layer("small_cnn")
    features = np.asarray(backbone.predict((x / 65535.0 * 2.0 - 1.0), verbose=0))
    w1, b1 = (np.asarray(v) for v in model.get_layer("xray_classifier_dense").get_weights())
    w2, b2 = (np.asarray(v) for v in model.get_layer("xray_classifier_predictions").get_weights())
    hidden = np.maximum(features @ w1 + b1, 0.0)
    logits = hidden @ w2 + b2
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    rescale = keras.Model(model.inputs, model.get_layer("xray_classifier_rescale").output)
    edges = np.zeros((1, 32, 32, 3), "float32")
    edges[0, 0, 0] = 65535.0
    out = np.asarray(rescale.predict(edges, verbose=0))
    assert out[0, 0, 0, 0] == pytest.approx(1.0) and out[0, 1, 1, 0] == pytest.approx(-1.0)
    assert model.count_params() == backbone.count_params() + _head_parameters(16, 7, 5)


def test_small_variant_keras_round_trip_with_the_optimizer(tmp_path):
    model = compile_xray_classifier(_small())
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 4, 8), 4)
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    path = str(tmp_path / "xray.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    # the schedule and the update count travel with the optimizer: the next rate is lr / (1 + 2 d)
    assert int(again.optimizer.iterations) == 2
    assert float(again.optimizer.learning_rate) == pytest.approx(0.01 / (1 + 2e-6), rel=1e-7)
    config = keras.optimizers.serialize(again.optimizer)["config"]["learning_rate"]
    assert config["class_name"] == "InverseTimeDecay" and config["config"]["decay_rate"] == 1e-6


def test_offline_imagenet_names_the_way_out(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(RuntimeError, match="weights=None"):
        build_inception_classifier(6, (75, 75, 3))  # weights="imagenet" by default


def test_argument_checks():
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        build_inception_classifier(0, weights=None)
    with pytest.raises(ValueError, match=r"Received: input_shape=\(75, 75\)"):
        build_inception_classifier(3, (75, 75), weights=None)
    with pytest.raises(ValueError, match="Received: input_max=0"):
        _small(input_max=0)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        build_inception_classifier(3, (75, 75, 3), weights="nope.h5")


# ---------------------------------------------------------------- optimizer and schedule


def test_legacy_decay_is_keras_2s_curve_over_100k_steps():
    steps = np.arange(100_000)
    legacy = 0.01 / (1.0 + 1e-6 * steps.astype(np.float64))  # Keras 2: lr / (1 + decay * t)
    schedule = legacy_decay_schedule(0.01, 1e-6)
    ours = np.asarray(keras.ops.convert_to_numpy(schedule(steps)), np.float64)
    np.testing.assert_allclose(ours, legacy, rtol=2e-7)
    assert ours[-1] == pytest.approx(0.01 / 1.099999, rel=1e-6)
    config = schedule.get_config()
    assert (config["decay_steps"], config["decay_rate"], config["staircase"]) == (1, 1e-6, False)


@pytest.mark.parametrize("decay", [1e-6, 0.25])
def test_sgd_steps_use_the_legacy_rate_of_each_update(decay):
    # a linear model y = x w with mean squared error; NumPy runs Keras 2's SGD beside it
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    w = w0 = np.asarray(model.get_weights()[0], np.float64)
    model.compile(optimizer=xray_optimizer(0.1, decay), loss="mse")
    for t in range(4):
        model.train_on_batch(x, y)
        gradient = 2.0 * x.T.astype(np.float64) @ (x @ w - y) / len(x)
        w = w - 0.1 / (1.0 + decay * t) * gradient
        np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.iterations) == 4
    # with a large decay the run is far from SGD at the constant initial rate
    constant = w0.copy()
    for _ in range(4):
        constant = constant - 0.1 * 2.0 * x.T.astype(np.float64) @ (x @ constant - y) / len(x)
    assert np.allclose(constant, w, atol=1e-4) == (decay < 0.01)


def test_paper_training_settings():
    optimizer = xray_optimizer()
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.momentum == 0.0
    assert float(optimizer.learning_rate) == pytest.approx(0.01)
    assert (PAPER_BATCH_SIZE, PAPER_EPOCHS) == (16, 25)
    model = compile_xray_classifier(_small())
    assert model.loss == "categorical_crossentropy"
    with pytest.raises(ValueError, match="Received: decay=-1"):
        legacy_decay_schedule(0.01, -1)
    with pytest.raises(ValueError, match="Received: learning_rate=0"):
        legacy_decay_schedule(0, 1e-6)
