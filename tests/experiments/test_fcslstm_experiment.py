"""Experiment `fcslstm` end to end on a tiny preset (every backend), and its time-point split."""

import json

import numpy as np
import pytest

from kerasmed.data.segmentation_streaming import (
    SegmentationFrameDataset,
    SegmentationSequenceDataset,
)
from kerasmed.experiments import fcslstm as exp
from kerasmed.experiments import get_config, run_experiment
from kerasmed.losses import class_weights_from_labels
from kerasmed.metrics import mean_pixel_accuracy

# Overrides of the quick preset (`run_experiment(..., **TINY)`).
TINY = {
    "num_subjects": 2,
    "num_heldout": 1,
    "image_size": 32,
    "width_divisor": 16,
    "epochs": 1,
    "batch_size": 1,
    # A few steps of tiny models: tracing (TensorFlow) or compiling (JAX) a graph per model
    # costs more than it saves.
    "run_eagerly": True,
    # One structured LSTM layer whose operator is conv1 ... conv5 (Section 2.2's grouping):
    # few weights to initialize, which is what dominates the run time of tiny models on JAX.
    "sequence_models.fcslstm.operator_groups": (5,),
    "sequence_models": {"bi_fcslstm": {"operator_groups": [5]}},
}


@pytest.fixture
def fit_calls(monkeypatch):
    """Records the arrays every model is trained and validated on."""
    calls = {}
    original = exp._fit

    def recording_fit(model, x, y, validation, cfg, name, *args, **kwargs):
        calls[name] = {"x": np.array(x), "y": np.array(y), "validation": validation}
        return original(model, x, y, validation, cfg, name, *args, **kwargs)

    monkeypatch.setattr(exp, "_fit", recording_fit)
    return calls


def test_tiny_run_writes_results_and_figures(fit_calls, tmp_path):
    results = run_experiment("fcslstm", "quick", out=str(tmp_path), seed=1, verbose=False, **TINY)
    saved = json.loads((tmp_path / "results.json").read_text())
    # the overrides and the config they resolve to are recorded; the preset is unchanged
    assert saved["overrides"] == {
        **{k: v for k, v in TINY.items() if k != "sequence_models"},
        "sequence_models.fcslstm.operator_groups": [5],
        "sequence_models.bi_fcslstm.operator_groups": [5],
    }
    assert saved["config"]["sequence_models"]["bi_fcslstm"] == {
        "bidirectional": True,
        "remat": False,
        "operator_groups": [5],
    }
    assert saved["config"]["epochs"] == 1 and saved["config"]["test_timepoint"] == 2
    assert get_config("fcslstm", "quick").epochs == 60
    assert saved["models"] == json.loads(json.dumps(results["models"]))
    assert list(saved["models"]) == ["fcn", "fcslstm", "bi_fcslstm"]
    assert saved["paper"]["bi_fcslstm"] == {"mpa": 0.863, "mpa_train": 0.948}
    assert saved["protocol"]["train_timepoints"] == [1, 2, 4, 5]
    assert saved["protocol"]["test_timepoint"] == 3
    for name, model in saved["models"].items():
        assert set(model) == {"mpa", "mpa_train", "dice", "mpa_heldout"}
        assert set(model["dice"]) == {"csf", "gm", "wm", "avg"}
        assert model["dice"]["avg"] == pytest.approx(
            np.mean([model["dice"][k] for k in ("csf", "gm", "wm")])
        )
        assert saved["pixel_accuracy"][name]["avg"] == pytest.approx(model["mpa"])
        assert len(saved["mpa_per_timepoint"][name]) == 5
        assert all(0.0 <= model[k] <= 1.0 for k in ("mpa", "mpa_train", "mpa_heldout"))
    for filename in ("phantom.png", "segmentations.png", "learning_curves.png", "mpa.png"):
        assert (tmp_path / filename).stat().st_size > 1000

    # mpa is the test time point's (3rd) mean pixel accuracy over the training subjects.
    data = exp.load_data(get_config("fcslstm", "quick", **TINY), None, seed=1)
    seen = ~data["heldout"]
    saved_predictions = np.load(tmp_path / "predictions.npz")
    np.testing.assert_array_equal(saved_predictions["labels"], data["labels"][:, 2])
    for name in saved["models"]:
        expected = mean_pixel_accuracy(
            data["labels"][seen, 2], saved_predictions[name][seen], num_classes=4
        ).mean
        assert saved["models"][name]["mpa"] == pytest.approx(expected)
        assert saved["mpa_per_timepoint"][name][2] == pytest.approx(expected)

    # Class weights come from the training time points of the training subjects only.
    train_labels, _ = exp.split_timepoints(data["labels"][seen], 2)
    weights = class_weights_from_labels(train_labels, 4)
    assert list(saved["class_weights"].values()) == pytest.approx(weights.tolist())

    # The labels that reach the loss: never the test time point's, never a held-out subject's.
    labels = data["labels"][seen]
    for name in ("fcslstm", "bi_fcslstm"):
        call = fit_calls[name]
        np.testing.assert_array_equal(call["x"], data["images"][seen])
        assert (call["y"][:, 2] == -1).all()
        np.testing.assert_array_equal(call["y"][:, [0, 1, 3, 4]], labels[:, [0, 1, 3, 4]])
        val_x, val_y = call["validation"]
        np.testing.assert_array_equal(val_x, data["images"][~seen])
        assert (val_y[:, 2] == -1).all()
    fcn = fit_calls["fcn"]
    train_tps = [0, 1, 3, 4]
    np.testing.assert_array_equal(
        fcn["x"], data["images"][seen][:, train_tps].reshape(-1, 32, 32, 2)
    )
    np.testing.assert_array_equal(fcn["y"], labels[:, train_tps].reshape(-1, 32, 32))


def test_test_timepoint_labels_do_not_change_training(monkeypatch):
    """Scrambling the 3rd time point's labels leaves the training losses and mpa_train unchanged."""
    overrides = {**TINY, "num_heldout": 0, "models": ("fcn", "fcslstm")}
    original = exp.load_data

    def scrambled(*args, **kwargs):
        data = original(*args, **kwargs)
        rng = np.random.default_rng(0)
        data["labels"][:, 2] = rng.integers(0, 4, size=data["labels"][:, 2].shape)
        return data

    first = exp.run("quick", seed=2, verbose=False, **overrides)
    monkeypatch.setattr(exp, "load_data", scrambled)
    second = exp.run("quick", seed=2, verbose=False, **overrides)
    assert list(first["models"]) == ["fcn", "fcslstm"]
    for name in ("fcn", "fcslstm"):
        assert first["histories"][name]["loss"] == second["histories"][name]["loss"]
        assert first["models"][name]["mpa_train"] == second["models"][name]["mpa_train"]
        assert first["models"][name]["mpa"] != second["models"][name]["mpa"]
    assert first["class_weights"] == second["class_weights"]


def test_split_timepoints():
    labels = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2) % 4
    labels[0, 0, 0, 0] = -1
    train, test = exp.split_timepoints(labels, 1)
    np.testing.assert_array_equal(train[:, [0, 2]], labels[:, [0, 2]])
    assert (train[:, 1] == -1).all() and (test[:, [0, 2]] == -1).all()
    np.testing.assert_array_equal(test[:, 1], labels[:, 1])
    frames, frame_labels = exp.training_frames(np.zeros((2, 3, 2, 2, 1)), train)
    assert frames.shape == (4, 2, 2, 1)
    np.testing.assert_array_equal(frame_labels, labels[:, [0, 2]].reshape(4, 2, 2))
    with pytest.raises(ValueError, match="test_timepoint=3"):
        exp.split_timepoints(labels, 3)


def _write_phantom(path, compress, num_sequences=2):
    """The tiny phantom's first sequences as a segmentation.npz (every time point labelled)."""
    from kerasmed.io import SegmentationSequences, save_segmentation_npz

    data = exp.load_data(get_config("fcslstm", "quick", **TINY), None, seed=1)
    rows = slice(0, num_sequences)
    seqs = SegmentationSequences(
        data["images"][rows], data["labels"][rows], [f"s{i}" for i in range(num_sequences)],
        [0] * num_sequences, data["ages"][rows], data["channel_names"],
    )  # fmt: skip
    path.mkdir()
    save_segmentation_npz(path / "segmentation.npz", seqs, compress=compress)


def test_a_mapped_file_streams_and_trains_as_in_memory(tmp_path, monkeypatch):
    """An uncompressed segmentation.npz trains from its map, a compressed one in memory; with one
    batch per epoch (the same pixels, in another order) both give the same losses and mPA."""
    _write_phantom(tmp_path / "mapped", compress=False)
    _write_phantom(tmp_path / "compressed", compress=True)
    config = get_config("fcslstm", "quick", **TINY)
    assert exp.streamed(exp.load_data(config, tmp_path / "mapped")["images"])
    assert not exp.streamed(exp.load_data(config, tmp_path / "compressed")["images"])
    assert not exp.streamed(exp.load_data(config, tmp_path / "mapped", stream=False)["images"])

    fed = {}
    original = exp._fit

    def recording_fit(model, x, y, validation, cfg, name, *args, **kwargs):
        fed[name] = x
        return original(model, x, y, validation, cfg, name, *args, **kwargs)

    monkeypatch.setattr(exp, "_fit", recording_fit)
    # batch_size 2: the FCN's 2 x 4 training frames and the 2 sequences are one batch
    overrides = {**TINY, "batch_size": 2, "models": ("fcn", "fcslstm")}
    overrides.pop("image_size")
    runs = {}
    for kind in ("mapped", "compressed"):
        runs[kind] = exp.run("quick", data_dir=tmp_path / kind, seed=0, verbose=False, **overrides)
        if kind == "mapped":
            frames, sequences = fed["fcn"], fed["fcslstm"]
            assert isinstance(frames, SegmentationFrameDataset) and len(frames) == 1
            assert isinstance(sequences, SegmentationSequenceDataset) and len(sequences) == 1
            assert isinstance(frames.images, np.memmap) and frames.images is sequences.images
            assert frames[0][0].shape == (8, 32, 32, 2) and (frames[0][1] >= 0).all()
    mapped, compressed = runs["mapped"], runs["compressed"]
    assert mapped["class_weights"] == compressed["class_weights"]
    for name in ("fcn", "fcslstm"):
        np.testing.assert_allclose(
            mapped["histories"][name]["loss"], compressed["histories"][name]["loss"], rtol=1e-4
        )
        for key in ("mpa", "mpa_train"):
            assert mapped["models"][name][key] == pytest.approx(
                compressed["models"][name][key], abs=1e-3
            )
