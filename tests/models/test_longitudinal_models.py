"""kerasmed.models.longitudinal: the paper-000 builders (features and end-to-end inputs)."""

import keras
import numpy as np
import pytest
from layer_checks import assert_keras_file_roundtrip

from kerasmed.data import pad_to_batch
from kerasmed.models.longitudinal import (
    build_lstm_model,
    build_single_image_model,
    build_tlstm_model,
)


def _batch(rng, lengths, feature_dim=6, labels=3, time_features=1):
    feats = [rng.normal(size=(n, feature_dim)).astype("float32") for n in lengths]
    prev = [rng.integers(0, 2, size=(n, labels)).astype("float32") for n in lengths]
    time = [rng.integers(0, 5, size=(n, time_features)).astype("float32") for n in lengths]
    x = {}
    for key, seqs in (("features", feats), ("previous_labels", prev), ("time", time)):
        x[key], x["mask"] = pad_to_batch(seqs)
    return x


@pytest.mark.parametrize(
    "build",
    [
        lambda: build_tlstm_model(3, 4, version=1, feature_dim=6),
        lambda: build_tlstm_model(3, 4, version=2, feature_dim=6),
        lambda: build_lstm_model(3, 4, feature_dim=6),
        lambda: build_lstm_model(3, 4, feature_dim=6, use_time=True),
    ],
    ids=["tlstm_v1", "tlstm_v2", "lstm", "lstm_with_time"],
)
def test_padding_does_not_change_the_last_exam_prediction(build, rng):
    model = build()
    lengths = [5, 2, 3]
    x = _batch(rng, lengths)
    padded = model.predict(x, verbose=0)
    for i, n in enumerate(lengths):
        alone = {k: v[i : i + 1, :n] for k, v in x.items()}
        np.testing.assert_allclose(padded[i], model.predict(alone, verbose=0)[0], atol=1e-5)
    assert padded.shape == (3, 3) and np.all((padded > 0) & (padded < 1))


def test_lstm_ignores_time_unless_asked(rng):
    x = _batch(rng, [4, 4])
    shifted = {**x, "time": x["time"] + 3.0}
    plain = build_lstm_model(3, 4, feature_dim=6)
    np.testing.assert_allclose(plain.predict(x, verbose=0), plain.predict(shifted, verbose=0))
    with_time = build_lstm_model(3, 4, feature_dim=6, use_time=True)
    assert not np.allclose(with_time.predict(x, verbose=0), with_time.predict(shifted, verbose=0))


def test_return_sequences_predicts_every_exam(rng):
    model = build_tlstm_model(3, 4, feature_dim=6, return_sequences=True)
    x = _batch(rng, [4, 2])
    assert model.predict(x, verbose=0).shape == (2, 4, 3)


def test_end_to_end_images_and_keras_file_roundtrip(rng):
    model = build_tlstm_model(
        2,
        4,
        image_shape=(16, 16, 1),
        time_features=3,
        backbone_kwargs={"filters": (4,), "feature_dim": 5},
    )
    images = rng.normal(size=(2, 3, 16, 16, 1)).astype("float32")
    x = {
        "images": images,
        "previous_labels": np.zeros((2, 3, 2), "float32"),
        "time": np.ones((2, 3, 3), "float32"),
        "mask": np.ones((2, 3), bool),
    }
    assert model.get_layer("tlstm_backbone") is not None
    model.compile("adam", "binary_crossentropy")
    model.fit(x, np.ones((2, 2), "float32"), epochs=1, verbose=0)
    assert_keras_file_roundtrip(model, x, atol=1e-5)


def test_single_image_model_shares_its_backbone():
    cnn = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    model = build_single_image_model(3, (8, 8, 1), backbone=cnn)
    assert model.layers[1] is cnn and model.output_shape == (None, 3)


def test_exactly_one_input_kind():
    with pytest.raises(ValueError, match="exactly one of"):
        build_tlstm_model(3, feature_dim=4, image_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="exactly one of"):
        build_lstm_model(3)
    with pytest.raises(ValueError, match="num_labels=0"):
        build_tlstm_model(0, feature_dim=4)
