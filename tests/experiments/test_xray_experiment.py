"""Experiment `xray` end to end on a tiny preset (every backend), and its building blocks."""

import json

import numpy as np
import pytest

from kerasmed.data import load_imageclef_arrays, simulate_radiographs, write_imageclef_folder
from kerasmed.experiments import get_config, run_experiment
from kerasmed.experiments import xray as exp
from kerasmed.io import class_imbalance_report
from kerasmed.preprocessing import prepare_radiograph

# Overrides of the quick preset (`run_experiment(..., **TINY)`).
TINY = {
    "num_images": 24,
    "min_size": 24,
    "max_size": 40,
    "image_size": 16,
    "small_cnn_filters": [4, 8],
    "dense_units": 8,
    "batch_size": 8,
    "epochs": 2,
}


def test_tiny_run_writes_results_and_figures(tmp_path):
    results = run_experiment("xray", "quick", out=str(tmp_path), seed=1, verbose=False, **TINY)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved["models"]) == list(exp.MODELS)
    assert saved["paper"] == exp.PAPER and saved["paper"]["constant_enhanced"]["accuracy"] == 0.7134
    for metrics in saved["models"].values():
        assert (
            0 <= metrics["accuracy"] <= 1 and np.isfinite(metrics["loss"]) and metrics["loss"] > 0
        )
        assert metrics["seconds"] > 0
    for name, history in saved["histories"].items():
        assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2, name
        # the last epoch's weights are the ones evaluated (the test set is the validation set)
        assert history["val_accuracy"][-1] == pytest.approx(saved["models"][name]["accuracy"])
    assert saved["overrides"]["small_cnn_filters"] == [4, 8] and saved["config"]["epochs"] == 2
    assert saved["load_report"] == {"train_rows": 18, "test_rows": 6, "problems": 0, "skipped": 0,
                                    "notes": 0, "computed": 6 * 24, "cached": 0}  # fmt: skip
    imbalance = saved["class_imbalance"]
    assert imbalance["num_train"] == 18 and imbalance["num_test"] == 6
    # the phantom's labels, recomputed: the last 6 images are the test split
    phantom = simulate_radiographs(24, 24, 40, seed=1)
    train_labels, test_labels = phantom.labels[:18], phantom.labels[18:]
    assert saved["majority_rate"] == pytest.approx(exp.majority_rate(train_labels, test_labels))
    assert saved["num_classes"] == len(set(phantom.labels.tolist()))
    for name in ("preprocessing.png", "learning_curves.png", "accuracy.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert results["models"] == saved["models"]


def test_load_data_gives_each_input_its_preprocessing(tmp_path):
    config = get_config("xray", "quick", num_images=10, min_size=30, max_size=50, image_size=16)
    phantom = simulate_radiographs(10, 30, 50, seed=3)
    write_imageclef_folder(phantom, tmp_path, test_fraction=config.test_fraction)
    data, label_map, report = exp.load_data(config, tmp_path, verbose=False)
    assert report.ok and label_map.num_classes == len(set(phantom.codes))
    for name, (padding, enhanced) in exp.MODELS.items():
        x_train, y_train, x_test, y_test = data[name]
        assert x_train.shape == (8, 16, 16, 3) and x_test.shape == (2, 16, 16, 3)
        expected = prepare_radiograph(phantom.images[8], padding, (16, 16), enhanced=enhanced)
        np.testing.assert_array_equal(x_test[0], expected)
        np.testing.assert_array_equal(label_map.decode(y_train), phantom.codes[:8])


def test_class_imbalance_matches_the_reader(tmp_path):
    phantom = simulate_radiographs(20, 24, 32, seed=0)
    write_imageclef_folder(phantom, tmp_path, test_fraction=0.25)
    _, y_train, _, y_test, label_map, _ = load_imageclef_arrays(
        tmp_path, size=8, workers=0, progress=False
    )
    report = class_imbalance_report(label_map.decode(y_train), label_map.decode(y_test))
    counts = np.bincount(phantom.labels[:15], minlength=6)
    for label, code in enumerate(phantom.class_codes):
        assert report.train_counts.get(code, 0) == counts[label]


def test_majority_rate_and_bad_override():
    assert exp.majority_rate(np.array([2, 2, 0]), np.array([2, 0, 1, 2])) == 0.5
    with pytest.raises(ValueError, match="small_cnn_filters"):
        get_config("xray", "quick", small_cnn_filter=[4])


def test_paper_preset_is_the_paper():
    config = get_config("xray", "paper")
    assert (config.backbone, config.weights, config.image_size) == ("inception_v3", "imagenet", 512)
    assert (config.batch_size, config.epochs, config.learning_rate, config.decay) == (
        16,
        25,
        0.01,
        1e-6,
    )
    assert config.momentum == 0.0 and config.batchnorm_momentum is None
