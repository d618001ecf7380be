"""Experiment `xray` end to end on a tiny preset (every backend), and its building blocks."""

import dataclasses
import json

import numpy as np
import pytest

from kerasmed.data import load_imageclef_arrays, simulate_radiographs, write_imageclef_folder
from kerasmed.data.imageclef import ImageCLEFCache, ImageCLEFDataset
from kerasmed.data.streaming import STREAM_ABOVE_BYTES
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


def test_load_input_gives_each_input_its_preprocessing(tmp_path):
    config = get_config("xray", "quick", num_images=10, min_size=30, max_size=50, image_size=16)
    phantom = simulate_radiographs(10, 30, 50, seed=3)
    write_imageclef_folder(phantom, tmp_path, test_fraction=config.test_fraction)
    for name, (padding, enhanced) in exp.MODELS.items():
        with exp.load_input(config, tmp_path, name, verbose=False) as (data, label_map, report):
            assert report.ok and label_map.num_classes == len(set(phantom.codes))
            x_train, y_train, x_test, y_test = data
            assert x_train.shape == (8, 16, 16, 3) and x_test.shape == (2, 16, 16, 3)
            expected = prepare_radiograph(phantom.images[8], padding, (16, 16), enhanced=enhanced)
            np.testing.assert_array_equal(x_test[0], expected)
            np.testing.assert_array_equal(label_map.decode(y_train), phantom.codes[:8])


def test_input_that_fits_is_read_without_a_cache(tmp_path, monkeypatch):
    # No cache_dir and arrays that fit: read straight into memory, no cache entry written;
    # stream=True (or a cache_dir) still goes through the cache.
    config = get_config("xray", "quick", num_images=6, min_size=30, max_size=40, image_size=16)
    write_imageclef_folder(simulate_radiographs(6, 30, 40, seed=4), tmp_path / "data")
    written = []
    real = exp.prepare_imageclef_cache
    monkeypatch.setattr(
        exp, "prepare_imageclef_cache", lambda *a, **k: written.append(a) or real(*a, **k)
    )
    with exp.load_input(config, tmp_path / "data", "constant", verbose=False) as (data, _, report):
        assert isinstance(data, tuple) and report.ok and not written
        in_memory = data[0].copy()
    streamed = dataclasses.replace(config, stream=True)
    with exp.load_input(streamed, tmp_path / "data", "constant", verbose=False) as (data, _, _):
        assert isinstance(data, ImageCLEFCache) and len(written) == 1
        np.testing.assert_array_equal(data.train.read(), in_memory)


def _batches(data, epochs=1):
    """Every batch of every epoch of a PyDataset (as ``fit`` would draw them)."""
    seen = []
    for _ in range(epochs):
        seen.extend(data[i] for i in range(len(data)))
        data.on_epoch_end()
    return seen


def test_streamed_input_gives_the_batches_of_the_in_memory_one(tmp_path):
    config = get_config("xray", "quick", num_images=14, min_size=30, max_size=50, image_size=16,
                        cache_dir=str(tmp_path / "cache"), batch_size=4)  # fmt: skip
    write_imageclef_folder(simulate_radiographs(14, 30, 50, seed=5), tmp_path / "data", 0.25)
    name = "repetitive_enhanced"
    with exp.load_input(config, tmp_path / "data", name, verbose=False) as (arrays, labels, _):
        pass
    streamed = dataclasses.replace(config, stream=True)
    with exp.load_input(streamed, tmp_path / "data", name, verbose=False) as (cache, _, report):
        assert isinstance(cache, ImageCLEFCache) and report.cached == 14
        # the dataset holds the index only: entry paths and labels, no pixel
        data = ImageCLEFDataset(cache.train, labels.num_classes, batch_size=4, shuffle=False)
        assert all(isinstance(p, str) and p.endswith(".npz") for p in data.entries.paths)
        assert not [v for v in vars(data.entries).values() if getattr(v, "ndim", 0) > 1]
        x_train, y_train, x_test, y_test = arrays
        batches = _batches(data)
        np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), x_train)
        one_hot = np.concatenate([y for _, y in batches])
        np.testing.assert_array_equal(one_hot.argmax(1), y_train)
        assert [len(x) for x, _ in batches] == [4, 4, 2] and one_hot.dtype == np.float32
        # shuffled: every epoch visits each image once, in an order of its own, pairs kept
        data = ImageCLEFDataset(cache.train, labels.num_classes, batch_size=4, seed=1)
        epochs = [_batches(data)[:3], _batches(data)[:3]]
        orders = []
        for epoch in epochs:
            x = np.concatenate([b[0] for b in epoch])
            y = np.concatenate([b[1] for b in epoch]).argmax(1)
            order = [int(np.flatnonzero((x_train == image).all(axis=(1, 2, 3)))[0]) for image in x]
            assert sorted(order) == list(range(10))
            np.testing.assert_array_equal(y, y_train[order])
            orders.append(order)
        assert orders[0] != orders[1] and orders[0] != list(range(10))
        np.testing.assert_array_equal(cache.test.read(), x_test)
        np.testing.assert_array_equal(cache.test.labels, y_test)


def test_streams_by_size_unless_told(tmp_path):
    config = get_config("xray", "quick")
    small, large = STREAM_ABOVE_BYTES, STREAM_ABOVE_BYTES + 1
    assert not exp.streams(config, small) and exp.streams(config, large)
    assert exp.streams(dataclasses.replace(config, stream=True), small)
    assert not exp.streams(dataclasses.replace(config, stream=False), large)
    # ImageCLEF 2009 at the paper's size streams; the quick phantom does not
    paper = 14410 * 512 * 512 * 3
    assert paper > STREAM_ABOVE_BYTES > 600 * 64 * 64 * 3


def test_streamed_training_matches_the_in_memory_training(tmp_path):
    # One batch per epoch (batch_size >= the training set): the shuffled orders of Keras's
    # array adapter and of ImageCLEFDataset then hold the same images, and both runs see the
    # same gradients up to the order of a sum.
    tiny = {k: v for k, v in TINY.items() if k not in ("num_images", "min_size", "max_size")}
    config = get_config("xray", "quick", **{**tiny, "batch_size": 32, "epochs": 2,
                                            "cache_dir": str(tmp_path / "cache")})  # fmt: skip
    phantom = simulate_radiographs(24, 24, 40, seed=4)
    write_imageclef_folder(phantom, tmp_path / "data", 0.25)
    results = {}
    for stream in (False, True):
        run_config = dataclasses.replace(config, stream=stream, read_workers=2)
        with exp.load_input(run_config, tmp_path / "data", "constant", False) as (data, labels, _):
            assert isinstance(data, ImageCLEFCache) == stream
            y_train = exp._labels(data)[0]
            assert y_train.tolist() == labels.encode(phantom.codes[:18]).tolist()
            results[stream] = exp.train_and_evaluate(
                run_config, data, labels.num_classes, seed=3, verbose=False
            )
    (memory, memory_history), (streamed, streamed_history) = results[False], results[True]
    assert streamed["accuracy"] == memory["accuracy"]
    for key in ("loss", "train_loss"):
        assert streamed[key] == pytest.approx(memory[key], rel=1e-4), key
    np.testing.assert_allclose(streamed_history["val_loss"], memory_history["val_loss"], rtol=1e-4)


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
