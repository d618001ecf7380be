"""Experiment `two-step` end to end on a tiny override of the quick preset, and its pieces."""

import json

import cv2
import numpy as np
import pytest
import sklearn.metrics
from tiny_overrides import TWO_STEP as TINY  # tests/tiny_overrides.py

from kerasmed.data import simulate_chest_ct, to_8bit_slices
from kerasmed.experiments import get_config, run_experiment
from kerasmed.experiments import two_step as exp
from kerasmed.experiments.registry import check_data_dir
from kerasmed.metrics import roc_auc_ci
from kerasmed.preprocessing import select_lung_slices

MODELS = {"cnn_2d", "cnn_2d_mean3", "cnn_2d_mean5", "two_step_lstm", "two_step_swin", "ensemble"}


def test_tiny_run_writes_results_and_figures(tmp_path):
    results = run_experiment("two-step", "quick", out=str(tmp_path), seed=1, verbose=False, **TINY)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["models"]) == MODELS
    assert saved["overrides"]["cnn_epochs"] == 1 and saved["config"]["swin_slices"] == 16
    labels = np.array(saved["test_labels"])
    assert len(labels) == 8 and labels.sum() == 4
    probabilities = {k: np.array(v) for k, v in saved["test_probabilities"].items()}
    for name, metrics in saved["models"].items():
        p = probabilities[name]
        assert p.shape == (8,) and np.all((p >= 0) & (p <= 1))
        predicted = (p > 0.5).astype(int)  # recomputed with scikit-learn from the saved scores
        assert metrics["macro_f1"] == pytest.approx(
            sklearn.metrics.f1_score(labels, predicted, average="macro", zero_division=0)
        )
        assert metrics["sensitivity"] == pytest.approx(
            sklearn.metrics.recall_score(labels, predicted, zero_division=0)
        )
        assert metrics["specificity"] == pytest.approx(
            sklearn.metrics.recall_score(1 - labels, 1 - predicted, zero_division=0)
        )
        auc, low, high = roc_auc_ci(labels, p)
        assert metrics["auc"] == pytest.approx(auc) and metrics["auc_ci"] == pytest.approx(
            [low, high]
        )
        confusion = saved["confusion"][name]
        assert confusion["tp"] + confusion["fn"] == 4 and confusion["tn"] + confusion["fp"] == 4
    np.testing.assert_allclose(
        probabilities["ensemble"],
        np.mean([probabilities[k] for k in ("two_step_lstm", "two_step_swin", "cnn_2d_mean3")], 0),
    )
    spread = saved["single_draw_macro_f1"]
    assert len(spread["per_draw"]) == 5 and spread["per_draw"][0] == pytest.approx(
        saved["models"]["cnn_2d"]["macro_f1"]
    )
    assert spread["min"] <= spread["median"] <= spread["max"]
    assert saved["paper"]["two_step_swin"] == {
        "sensitivity": 0.879, "specificity": 0.981, "macro_f1": 0.934,
    }  # fmt: skip
    assert saved["paper"]["adleast"]["macro_f1"] == 0.911
    assert sum(saved["windows"]["rules"].values()) == 18
    assert saved["windows"]["rules"]["last_slice"] == 2  # the mixed-size scans, reported
    assert results["num_scans"] == {"train": 6, "val": 4, "test": 8}
    # the kept epoch of every model is the one of best validation macro-F1 (first on ties)
    for name, epoch in saved["best_epoch"].items():
        scores = saved["histories"][name]["val_macro_f1"]
        assert epoch == int(np.argmax(scores)), (name, scores)
    assert saved["embedding_slices_per_second"] > 0
    for name in ("lung_window.png", "embedding_matrix.png", "draw_spread.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_load_data_windows_and_slices():
    config = get_config("two-step", "quick", **TINY)
    data = exp.load_data(config, seed=2, verbose=False)
    for part in data.values():
        for volume, slices, window in zip(
            part["volumes"], part["slices"], part["windows"], strict=True
        ):
            assert slices.dtype == np.uint8 and slices.shape == (len(volume), 64, 64)
            assert 0 <= window.start < window.stop <= len(volume)
            if window.rule == "lung_area":  # the window of ceil(n / 2) slices with most lung
                k = int(np.ceil(len(volume) / 2))
                sums = np.convolve(window.areas, np.ones(k), "valid")
                assert window.num_slices == k and window.start == int(np.argmax(sums))


def test_hold_out_validation_is_stratified_and_disjoint():
    config = get_config("two-step", "quick", **TINY)
    train = exp.load_data(config, seed=3, verbose=False)["train"]
    fit, val = exp.hold_out_validation(train, 4, seed=3)
    assert len(val["labels"]) == 4 and val["labels"].sum() == 2  # one half each class
    assert len(fit["labels"]) == 6
    ids = {id(v) for v in fit["volumes"]} | {id(v) for v in val["volumes"]}
    assert ids == {id(v) for v in train["volumes"]} and len(ids) == 10
    for part in (fit, val):
        for volume, slices, label in zip(part["volumes"], part["slices"], part["labels"]):
            i = next(j for j, v in enumerate(train["volumes"]) if v is volume)
            assert train["slices"][i] is slices and train["labels"][i] == label
    with pytest.raises(ValueError, match="Received: num_val=9"):
        exp.hold_out_validation(train, 9)


def test_build_head_follows_the_config():
    config = get_config("two-step", "quick", **TINY)
    lstm, swin = exp.build_head("lstm", config), exp.build_head("swin", config)
    assert lstm.input_shape == (None, 8, 16) and swin.input_shape == (None, 16, 16)
    assert len([la for la in lstm.layers if "bilstm" in la.name]) == 1
    with pytest.raises(ValueError, match="Received: kind='gru'"):
        exp.build_head("gru", config)


def _cov19_folder(root):
    """A COV19-CT-DB tree of phantom scans as PNG slices (lossless, so values can be compared)."""
    data = simulate_chest_ct(
        6, slice_size=32, min_slices=20, max_slices=24, mixed_size_fraction=0.0, seed=3
    )
    written = {}
    for i, (volume, label) in enumerate(zip(data.volumes, data.labels)):
        split = "train" if i < 4 else "validation"
        folder = root / split / ("covid" if label else "non-covid") / f"ct_scan_{i}"
        folder.mkdir(parents=True)
        slices = to_8bit_slices(volume)
        for n, image in enumerate(slices):
            cv2.imwrite(str(folder / f"{n}.png"), image)
        written[(split, f"ct_scan_{i}")] = (slices, int(label))
    return written


def test_data_dir_reads_cov19_ct_train_and_validation(tmp_path):
    config = get_config("two-step", "quick", **TINY)
    written = _cov19_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="python data_prep/two_step_ct.py"):
        check_data_dir("two-step", tmp_path)  # the CLI takes a prepared folder only
    parts = exp.load_data(config, data_dir=tmp_path, verbose=False)
    for part, split in (("train", "train"), ("test", "validation")):
        # the reader's order: class folders (covid, non-covid), then scan id
        expected = sorted(
            ((key, value) for key, value in written.items() if key[0] == split),
            key=lambda item: (1 - item[1][1], item[0][1]),
        )
        assert parts[part]["labels"].tolist() == [label for _, (_, label) in expected]
        for got, window, (_, (slices, _)) in zip(
            parts[part]["slices"], parts[part]["windows"], expected
        ):
            assert got.dtype == np.uint8 and got.shape == (
                len(slices),
                config.slice_size,
                config.slice_size,
            )
            assert np.array_equal(got, exp.model_slices(slices, config.slice_size, kind="8bit"))
            reference = select_lung_slices(
                slices, fraction=config.window_fraction, filter_size=config.filter_size,
                crop_filter_size=config.crop_filter_size, kind="8bit",
            )  # fmt: skip
            assert (window.start, window.stop) == (reference.start, reference.stop)


def test_data_dir_problems_name_the_folder(tmp_path):
    config = get_config("two-step", "quick", **TINY)
    with pytest.raises(FileNotFoundError, match="some_folder"):
        exp.load_data(config, data_dir=tmp_path / "some_folder", verbose=False)
    (tmp_path / "train" / "covid").mkdir(parents=True)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="split 'train' has no usable"):
        exp.load_data(config, data_dir=tmp_path, verbose=False)


def test_unknown_override_names_the_setting():
    with pytest.raises(ValueError, match="cnn_epoch"):
        get_config("two-step", "quick", cnn_epoch=2)
