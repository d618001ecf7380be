"""Experiment `tlstm` end to end on a tiny preset (every backend), and its building blocks."""

import json

import numpy as np
import pytest

from kerasmed.experiments import longitudinal as exp
from kerasmed.experiments import run_experiment

TINY = {
    "num_train": 24,
    "num_test": 10,
    "image_size": 24,
    "cnn_filters": (4, 8),
    "feature_dim": 8,
    "cnn_epochs": 1,
    "units": 4,
    "seq_epochs": 1,
    "batch_size": 8,
}


# Two sequence models keep this under a minute on every backend; the notebook test runs the
# whole quick preset (all models) and checks the paper's ordering.
TINY_MODELS = ("lstm", "tlstm_v1_encoded")


@pytest.fixture
def tiny_preset(monkeypatch):
    monkeypatch.setitem(exp.PRESETS, "quick", {**exp.PRESETS["quick"], **TINY})
    models = {name: exp.SEQUENCE_MODELS[name] for name in TINY_MODELS}
    monkeypatch.setattr(exp, "SEQUENCE_MODELS", models)


def test_tiny_run_writes_results_and_figures(tiny_preset, tmp_path):
    results = run_experiment("tlstm", "quick", out=str(tmp_path), seed=3, verbose=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["models"] == json.loads(json.dumps(results["models"]))
    assert set(saved["models"]) == {"single_image", *TINY_MODELS}
    assert set(saved["histories"]) == {"single_image", *TINY_MODELS}
    for model in saved["models"].values():
        for metric in ("ppv", "npv", "f_measure"):
            values = model[metric]
            assert set(values) == {"0", "6", "8", "3", "9", "avg"}
            assert all(0.0 <= v <= 1.0 for v in values.values())
            assert values["avg"] == pytest.approx(np.mean([values[k] for k in "06839"]))
    assert saved["paper"]["tlstm_v1"]["f_measure"]["avg"] == 0.9296
    assert saved["time_encoding"] == {"encoded": "one_hot", "max_delta": 10}
    for name in ("sequence.png", "learning_curves.png", "f_measure.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_shuffled_time_keeps_first_lapse_and_multiset():
    data = exp.simulate_longitudinal_digits(3, image_size=16, seed=1)
    features = [np.zeros((len(x), 2), "float32") for x in data.images]
    plain, _ = exp.sequence_inputs(data, features, "raw")
    shuffled, _ = exp.sequence_inputs(data, features, "raw", shuffle_time=True, seed=0)
    for a, b in zip(plain["time"], shuffled["time"]):
        assert a[0, 0] == b[0, 0] == 0.0
        np.testing.assert_array_equal(np.sort(a[:, 0]), np.sort(b[:, 0]))
    assert any(not np.array_equal(a, b) for a, b in zip(plain["time"], shuffled["time"]))


def test_time_encoding_fitted_on_training_lapses():
    data = exp.simulate_longitudinal_digits(4, image_size=16, seed=2)
    top = max(float(d.max()) for d in data.deltas)
    assert exp.time_encoding_kwargs(data, "one_hot") == {"max_delta": int(top)}
    assert exp.time_encoding_kwargs(data, "raw") == {}


def test_predict_last_picks_each_sequences_last_real_step():
    import keras

    inputs = keras.Input((None, 1), name="features")
    model = keras.Model({"features": inputs, "mask": keras.Input((None,), name="mask")}, inputs)
    lengths = [3, 1, 5]
    x = {
        "features": [np.arange(n, dtype="float32")[:, None] + 10 * i for i, n in enumerate(lengths)]
    }
    got = exp.predict_last(model, x, batch_size=2)
    np.testing.assert_array_equal(got[:, 0], [2.0, 10.0, 24.0])
