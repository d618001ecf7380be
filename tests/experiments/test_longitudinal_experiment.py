"""Experiment `tlstm` end to end on a tiny preset (every backend), and its building blocks."""

import json

import keras
import numpy as np
import pytest

from kerasmed.experiments import get_config, run_experiment
from kerasmed.experiments import longitudinal as exp

# Two sequence models keep this under a minute on every backend; the notebook test runs the
# whole quick preset (all models) and checks the paper's ordering.
TINY_MODELS = ("lstm", "tlstm_v1_encoded")

# Overrides of the quick preset (`run_experiment(..., **TINY)`).
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
    "models": TINY_MODELS,
}


def test_tiny_run_writes_results_and_figures(tmp_path):
    results = run_experiment("tlstm", "quick", out=str(tmp_path), seed=3, verbose=False, **TINY)
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
    assert saved["overrides"] == json.loads(json.dumps(TINY))
    # results.json carries the findings its notebook prints
    from kerasmed.experiments.findings import findings

    assert saved["findings"] == json.loads(json.dumps([f.to_dict() for f in findings(saved)]))
    assert len(saved["findings"]) >= 2
    assert saved["config"] == json.loads(json.dumps(vars(get_config("tlstm", "quick", **TINY))))
    # The trained image CNN's weights load into the CNN the same config builds.
    cnn = exp.build_image_cnn(get_config("tlstm", "quick", **TINY))
    cnn.load_weights(str(tmp_path / "single_image.weights.h5"))


def test_paper_table_transcription():
    # Table 3 of the paper, spot checks of the parsed transcription
    assert exp.PAPER["single_image"]["ppv"] == {
        "0": 0.5721, "6": 0.8303, "8": 0.7771, "3": 0.5157, "9": 0.8199, "avg": 0.7030
    }  # fmt: skip
    assert exp.PAPER["tlstm_v2"]["f_measure"]["3"] == 0.6836
    assert list(exp.PAPER) == ["single_image", "lstm", "tlstm_v1", "tlstm_v2"]
    for model in exp.PAPER.values():
        assert list(model) == ["ppv", "npv", "f_measure"]


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


def test_exam_rows_and_the_one_step_mlp():
    import keras

    from kerasmed.data import simulate_longitudinal_digits

    data = simulate_longitudinal_digits(
        8, image_size=16, min_length=2, max_length=4, mean_length=3, seed=1
    )
    train, test = data.split(test_size=3, seed=0)
    features = [np.arange(len(s) * 3, dtype="float32").reshape(len(s), 3) for s in train.images]
    kw = exp.time_encoding_kwargs(train, "one_hot")
    x, y = exp.exam_rows(train, features, encoding="one_hot", **kw)
    width = 3 + len(train.label_names) + kw["max_delta"] + 1  # features, previous labels, one-hot δ
    assert x.shape == (int(train.lengths.sum()), width) and y.shape == (len(x), 5)
    np.testing.assert_array_equal(x[:, :3], np.concatenate(features))  # features first
    firsts = np.r_[0, np.cumsum(train.lengths)[:-1]]
    assert not x[firsts, 3 : 3 + len(train.label_names)].any()  # no previous exam, no labels
    np.testing.assert_array_equal(y, np.concatenate(train.labels))
    last_x, last_y = exp.exam_rows(train, features, last_only=True, encoding="one_hot", **kw)
    np.testing.assert_array_equal(last_x, x[np.cumsum(train.lengths) - 1])
    assert len(last_y) == len(train)

    backbone = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten()])
    report = exp.one_step_mlp(backbone, train, test, units=4, epochs=1)
    assert set(report["f_measure"]) == {*train.label_names, "avg"}


@pytest.mark.parametrize("precise", [10_000, 0])
def test_image_cnn_batchnorm_statistics_are_those_of_the_training_exams(precise):
    # cnn_precise_bn above the number of exams: every training exam re-estimates them
    config = get_config("tlstm", "quick", **{**TINY, "cnn_precise_bn": precise})
    train, _ = exp.load_data(config, seed=0)
    model, _ = exp.train_image_cnn(train, config, seed=0, verbose=False)
    images, _ = train.all_exams()
    fit = images[: int(np.floor(len(images) * 0.9)), ..., None]  # validation_split's part
    backbone = model.layers[1]
    conv = backbone.get_layer("small_cnn_conv1")(fit)
    mean = np.mean(keras.ops.convert_to_numpy(conv), axis=(0, 1, 2))
    moving = keras.ops.convert_to_numpy(backbone.get_layer("small_cnn_bn1").moving_mean)
    assert np.allclose(moving, mean, rtol=1e-3, atol=1e-5) is bool(precise), (moving, mean)


def test_a_prepared_file_streams_through_the_image_cnn_stages(tmp_path, monkeypatch):
    """An uncompressed sequences.npz: stage 1 and 2 read batches of the map, and give what the
    same file read into memory gives."""
    from kerasmed.data.exam_batches import streams_images
    from kerasmed.io import LongitudinalSequences, save_longitudinal_npz

    config = get_config("tlstm", "quick", **{**TINY, "image_size": 16})
    data = exp.simulate_longitudinal_digits(10, image_size=16, seed=0)
    save_longitudinal_npz(tmp_path / "sequences.npz", data, "uint8", compress=False)
    (tmp_path / "old").mkdir()
    save_longitudinal_npz(tmp_path / "old" / "sequences.npz", data, "uint8")  # compressed
    train, test = exp.load_data(config, tmp_path, seed=0)
    old_train, old_test = exp.load_data(config, tmp_path / "old", seed=0)
    assert streams_images(train) and streams_images(test) and not streams_images(old_train)
    assert train.ids == old_train.ids

    def never(self):
        raise AssertionError("the streamed path read every exam into memory")

    monkeypatch.setattr(LongitudinalSequences, "all_exams", never)
    monkeypatch.setattr(LongitudinalSequences, "last_exam", never)
    cnn, history = exp.train_image_cnn(train, config, seed=0, verbose=False)
    assert set(history) >= {"loss", "val_loss"} and len(history["loss"]) == 1
    backbone = cnn.layers[1]
    streamed = exp.exam_features(backbone, train, batch_size=4)
    scores, labels = exp._last_exam_scores(cnn, test)
    monkeypatch.undo()
    in_memory = exp.exam_features(backbone, old_train, batch_size=4)
    assert [f.shape for f in streamed] == [(len(x), config.feature_dim) for x in train.images]
    for a, b in zip(streamed, in_memory):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    old_scores, old_labels = exp._last_exam_scores(cnn, old_test)
    np.testing.assert_allclose(scores, old_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(labels, old_labels)


def test_noise_override_reaches_the_simulated_exams():
    # notebook 01's exercise 4 is this one override
    quiet = get_config("tlstm", "quick", **{**TINY, "noise": 0.0})
    noisy = get_config("tlstm", "quick", **{**TINY, "noise": 0.6})
    (a, _), (b, _) = exp.load_data(quiet, seed=0), exp.load_data(noisy, seed=0)
    assert a.lengths.tolist() == b.lengths.tolist()
    residual = np.std(b.all_exams()[0] - a.all_exams()[0])
    assert residual > 0.1, residual
