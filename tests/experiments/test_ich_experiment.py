"""Experiment `ich` end to end on a tiny preset (every backend), and its building blocks."""

import json

import numpy as np
import pytest

from kerasmed.data import simulate_head_ct
from kerasmed.experiments import get_config, run_experiment
from kerasmed.experiments import ich as exp
from kerasmed.io import VolumeSet, save_volume_set
from kerasmed.metrics import delong_test, roc_auc_ci

# Overrides of the quick preset (`run_experiment(..., **TINY)`).
TINY = {
    "num_train": 12,
    "num_val": 4,
    "num_test": 8,
    "slice_size": 32,
    "min_slices": 8,
    "max_slices": 10,
    "base_filters": 2,
    "feature_dim": 8,
    "lstm_units": 4,
    "pretrain_epochs": 1,
    "pretrain_steps": 2,
    "pretrain_batch": 8,
    "lstm_epochs": 1,
    "finetune_epochs": 1,
    "scratch_epochs": 1,
    "volumes_per_epoch": 8,
    "volume_batch": 4,
}

TINY_CONFIG = get_config("ich", "quick", **TINY)


def test_tiny_run_writes_results_and_figures(tmp_path):
    results = run_experiment("ich", "quick", out=str(tmp_path), seed=1, verbose=False, **TINY)
    saved = json.loads((tmp_path / "results.json").read_text())
    expected = {"max_prob", "p95_prob", "svm", "cnn_bilstm_lstm_only", "cnn_bilstm_staged",
                "cnn_bilstm_scratch"}  # fmt: skip
    assert set(saved["models"]) == expected
    labels = np.array(saved["test_labels"])
    assert len(labels) == 8 and labels.sum() == 4
    for name, metrics in saved["models"].items():
        score = np.array(saved["test_scores"][name])
        auc, low, high = roc_auc_ci(labels, score)  # recomputed from the saved scores
        assert metrics["auc"] == pytest.approx(auc) and metrics["auc_ci"] == pytest.approx(
            [low, high]
        )
        assert 0 <= metrics["specificity"] <= 1 and metrics["sensitivity"] >= 0.98
    staged = np.array(saved["test_scores"]["cnn_bilstm_staged"])
    p_values = saved["delong_p_values"]
    assert p_values["reference"] == "cnn_bilstm_staged" and "cnn_bilstm_staged" not in p_values
    for name in expected - {"cnn_bilstm_staged"}:
        other = np.array(saved["test_scores"][name])
        if np.all(other == other[0]) and np.all(staged == staged[0]):
            continue  # two constant scores: DeLong's variance is 0
        assert p_values[name] == pytest.approx(delong_test(labels, staged, other).p_value)
    assert saved["seconds_per_volume"] > 0
    assert saved["models"]["cnn_bilstm_staged"]["seconds_per_volume"] == saved["seconds_per_volume"]
    assert saved["paper"]["cnn_bilstm_staged"]["auc"] == 0.96
    assert set(saved["histories"]) == {"pretrain_cnn", "train_lstm", "finetune", "scratch"}
    assert (tmp_path / "roc.png").stat().st_size > 0 and (tmp_path / "volume.png").exists()
    assert results["num_volumes"] == {"train": 12, "val": 4, "test": 8}


def test_run_reads_a_volume_set_folder(tmp_path):
    phantom = simulate_head_ct(24, slice_size=64, min_slices=8, max_slices=10, seed=5)
    data = VolumeSet(phantom.volumes, phantom.labels, phantom.slice_labels, phantom.spacing)
    save_volume_set(tmp_path / "set", data)
    volumes, labels, slice_labels = exp.load_volumes(TINY_CONFIG, str(tmp_path / "set"))
    np.testing.assert_array_equal(labels, phantom.labels)
    for ours, theirs in zip(volumes, phantom.volumes, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    for ours, theirs in zip(slice_labels, phantom.slice_labels, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_stage_one_needs_slice_labels():
    data = exp.load_data(TINY_CONFIG, verbose=False)
    for part in data.values():
        part["slice_labels"] = [np.full(len(v), -1) for v in part["volumes"]]
    cnn, model = exp.build_models(TINY_CONFIG, exp.input_slice_shape(data))
    with pytest.raises(ValueError, match="slice labels"):
        exp.pretrain_slice_cnn(exp.StagedTrainer(cnn, model), data, TINY_CONFIG, verbose=False)


def test_preprocess_windows_and_max_filters():
    rng = np.random.default_rng(0)
    hu = rng.uniform(-100, 200, size=(4, 6, 6)).astype("float32")
    out, labels = exp.preprocess(hu, np.array([0, 1, 0, 0]), z_factor=2)
    windowed = np.clip(hu / 80.0, 0, 1)  # brain window: 0 HU -> 0, 80 HU -> 1
    reference = windowed.reshape(2, 2, 3, 2, 3, 2).max(axis=(1, 3, 5))
    np.testing.assert_allclose(out, reference, atol=1e-6)
    np.testing.assert_array_equal(labels, [1, 0])
    out, labels = exp.preprocess(hu, np.array([0, 1, 0, 0]), z_factor=1)
    assert out.shape == (4, 3, 3) and labels.tolist() == [0, 1, 0, 0]


def test_split_is_stratified_and_disjoint():
    labels = np.array([0, 1] * 50)
    parts = exp.split(labels, get_config("ich", "quick"), seed=0)
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(100))
    for index in parts.values():
        assert abs(labels[index].mean() - 0.5) <= 0.5 / len(index) + 1e-9


def test_pad_both_ends_centres_the_features():
    features = np.arange(6.0).reshape(3, 2) + 1
    padded = exp.pad_both_ends(features, 6)
    np.testing.assert_array_equal(padded[1:4], features)
    assert not padded[[0, 4, 5]].any()


def test_evaluate_perfect_and_reversed_scores():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = {"cnn_bilstm_staged": np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]),
              "max_prob": np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])}  # fmt: skip
    models, p_values = exp.evaluate(labels, scores)
    assert models["cnn_bilstm_staged"]["auc"] == 1.0
    assert models["cnn_bilstm_staged"]["specificity"] == 1.0
    assert models["max_prob"]["auc"] == 0.0
    assert models["max_prob"]["sensitivity"] == 1.0 and models["max_prob"]["specificity"] == 0.0
    assert set(p_values) == {"max_prob"}


@pytest.mark.parametrize("layers", [1, 2])
def test_num_lstm_layers_override_builds_that_many_bilstms(layers):
    # notebook 02's exercise 2, the paper's one-layer ablation, is this one override
    import keras

    config = get_config("ich", "quick", **{**TINY, "num_lstm_layers": layers})
    _, model = exp.build_models(config, seed=0)
    found = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    assert len(found) == layers


@pytest.mark.parametrize("stream", [True, False, None])
def test_stream_is_a_setting_that_reaches_the_loader(monkeypatch, stream):
    # `--set stream=...` on the command line is this override; the run hands it to load_data.
    seen = []

    def load_data(config, data_dir, seed, verbose, stream):
        seen.append(stream)
        raise RuntimeError("stop after loading")

    monkeypatch.setattr(exp, "load_data", load_data)
    with pytest.raises(RuntimeError, match="stop after loading"):
        exp.run("quick", data_dir="volumes", verbose=False, stream=stream)
    assert seen == [stream]
    with pytest.raises(ValueError, match="stream"):
        exp.run("quick", verbose=False, stream="yes")
