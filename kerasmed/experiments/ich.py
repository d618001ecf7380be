"""Experiment ``ich`` (paper 001): hemorrhage in whole head CTs, slice CNN + bidirectional LSTMs.

The path, as in Patel et al. (2019): (1) pre-train the slice CNN on slice labels (balanced
slices, Adam 1e-4, batches of 25); (2) baselines from that CNN alone: the maximum and the 95th
percentile of a volume's slice probabilities, and a linear SVM on its N x 512 slice features
zero-padded at both ends; (3) freeze the CNN and train the two bidirectional LSTMs on volume
labels (RMSprop 1e-3); (4) unfreeze and train end to end (RMSprop 1e-4); (5) the same model
trained end to end from scratch; (6) ROC AUC with DeLong 95% CIs on the test set, DeLong tests
of the staged model against every other, an operating point at sensitivity 0.98, and the
inference time per volume. At every stage the model kept is the one with the best validation
AUC (slice accuracy for stage 1), as in the paper.

The same functions, configured by an `IchConfig` (see `kerasmed.experiments.presets.ich`), drive
``kerasmed reproduce ich`` and ``notebooks/02_ich_cnn_bilstm.ipynb``.
"""

from __future__ import annotations

import functools
import time

import keras
import numpy as np
import sklearn.model_selection
import sklearn.pipeline
import sklearn.preprocessing
import sklearn.svm

from kerasmed.callbacks import KeepBestWeights
from kerasmed.data import BalancedSliceDataset, simulate_head_ct
from kerasmed.data.streaming import (
    STREAM_ABOVE_BYTES,
    VolumeFiles,
    read_volume_index,
    volume_dataset,
    volume_lengths,
)
from kerasmed.experiments.common import logger, progress, start_run, write_figures
from kerasmed.experiments.presets.ich import PRESETS, IchConfig
from kerasmed.metrics import delong_test, operating_point, roc_auc_ci
from kerasmed.models.ich import build_cnn_bilstm, build_slice_cnn, slice_feature_model
from kerasmed.plotting import plot_image_sequence, plot_roc
from kerasmed.preprocessing import max_filter_downsample, window_hu
from kerasmed.training import StagedTrainer, train_end_to_end

__all__ = [
    "PAPER",
    "PRESETS",
    "TARGET_SENSITIVITY",
    "IchConfig",
    "build_models",
    "evaluate",
    "load_data",
    "load_volumes",
    "pad_both_ends",
    "predict_volumes",
    "pretrain_slice_cnn",
    "preprocess",
    "run",
    "save_figures",
    "seconds_per_volume",
    "slice_baselines",
    "slice_outputs",
    "split",
    "stream_volumes",
    "train_scratch",
    "train_volume_stages",
]

# Section IV of the paper (test set of 386 volumes). The paper gives no AUC for the model
# trained end to end from scratch (Figure 4's gray curve), so that model has no paper row.
PAPER = {
    "max_prob": {"auc": 0.60, "auc_ci": [0.54, 0.65]},
    "p95_prob": {"auc": 0.65, "auc_ci": [0.59, 0.70]},
    "svm": {"auc": 0.90, "auc_ci": [0.87, 0.93]},
    "cnn_bilstm_lstm_only": {"auc": 0.87, "auc_ci": [0.84, 0.91]},
    "cnn_bilstm_staged": {
        "auc": 0.96,
        "auc_ci": [0.93, 0.97],
        "sensitivity": 0.98,
        "specificity": 0.78,
        "accuracy": 0.87,
        "seconds_per_volume": 0.5,  # NVIDIA Titan X, Keras with Theano
    },
}

TARGET_SENSITIVITY = 0.98
BASELINES = ("max_prob", "p95_prob", "svm")

_VOLUME_KEYS = ("loss", "val_auc")


def load_volumes(config, data_dir=None, seed=0):
    """The volumes in HU with their labels: the phantom, or ``data_dir`` (a `VolumeSet` folder).

    Returns:
        ``(volumes, labels, slice_labels)``: lists of ``(N_i, H, W)`` float32 HU arrays, an
        int array, and lists of ``(N_i,)`` int arrays (``-1`` where a slice is not labelled).
    """
    if data_dir is None:
        total = config.num_train + config.num_val + config.num_test
        z = config.z_factor
        data = simulate_head_ct(
            total,
            slice_size=2 * config.slice_size,
            min_slices=z * config.min_slices,
            max_slices=z * config.max_slices,
            mimic_rate=config.mimic_rate,
            seed=seed,
        )
        return data.volumes, np.asarray(data.labels), data.slice_labels
    from kerasmed.io import load_volume_set

    data = load_volume_set(data_dir)
    slice_labels = data.slice_labels
    if slice_labels is None:
        slice_labels = [np.full(len(v), -1, dtype=int) for v in data.volumes]
    return data.volumes, np.asarray(data.labels), slice_labels


def preprocess(volume, slice_labels=None, z_factor=1, window=(40.0, 80.0)):
    """Brain window to [0, 1], then the paper's maximum filter: 2x2 in-plane (and 2 along z).

    Slice labels follow the z filter: a merged slice is positive when one of its slices is.
    Returns ``(volume, slice_labels)``.
    """
    windowed = window_hu(volume, center=window[0], width=window[1])
    filtered = max_filter_downsample(windowed, factor=(z_factor, 2, 2))
    if slice_labels is not None and z_factor > 1:
        slice_labels = max_filter_downsample(np.asarray(slice_labels), factor=z_factor)
    return filtered, slice_labels


def split(labels, config, seed=0):
    """Stratified train / validation / test indices in the proportions of `config`'s sizes."""
    n = len(labels)
    sizes = np.array([config.num_train, config.num_val, config.num_test], float)
    num_val, num_test = np.maximum(2, np.round(sizes[1:] / sizes.sum() * n).astype(int))
    index = np.arange(n)
    rest, test = sklearn.model_selection.train_test_split(
        index, test_size=num_test, stratify=labels, random_state=seed
    )
    train, val = sklearn.model_selection.train_test_split(
        rest, test_size=num_val, stratify=labels[rest], random_state=seed
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _window_and_filter(volume, z_factor):
    return preprocess(volume, None, z_factor)[0]


def stream_volumes(config, data_dir, stream=None, log=None):
    """The volumes of `data_dir` left on disk, or None to load them (see `load_data`).

    Returns ``(VolumeFiles, labels, slice_labels)``: the files are windowed and max-filtered
    (`preprocess`) as each is read.
    """
    if stream is False:
        return None
    index = read_volume_index(data_dir)
    if not stream and index.float32_bytes() <= STREAM_ABOVE_BYTES:
        return None
    z = config.z_factor
    slice_labels = [max_filter_downsample(s, factor=z) if z > 1 else s for s in index.slice_labels]
    transform = functools.partial(_window_and_filter, z_factor=z)
    files = index.files.with_transform(transform, [len(s) for s in slice_labels])
    if log is not None:
        log(f"streaming {len(files)} volumes from {data_dir} (read as batches need them)")
    return files, index.labels, slice_labels


def load_data(config, data_dir=None, seed=0, verbose=True, stream=None):
    """Loads, preprocesses and splits the volumes.

    With `data_dir`, the volumes stay on disk (`kerasmed.data.VolumeFiles`, read when a batch
    needs them) if `stream` is True, or if `stream` is None (default) and they would take more
    than `kerasmed.data.streaming.STREAM_ABOVE_BYTES` as float32; ``stream=False`` loads them.

    Returns:
        ``{"train" | "val" | "test": {"volumes": [...], "labels": array, "slice_labels": [...]}}``
        with volumes windowed to [0, 1] and max-filtered.
    """
    log = logger("ich", verbose)
    streamed = None if data_dir is None else stream_volumes(config, data_dir, stream, log)
    if streamed is None:
        volumes, labels, slice_labels = load_volumes(config, data_dir, seed)
        processed = [
            preprocess(v, s, config.z_factor) for v, s in zip(volumes, slice_labels, strict=True)
        ]
        volumes, slice_labels = [p[0] for p in processed], [np.asarray(p[1]) for p in processed]
    else:
        volumes, labels, slice_labels = streamed
    parts = split(labels, config, seed)
    data = {}
    for part, index in parts.items():
        data[part] = {
            "volumes": volumes.subset(index)
            if isinstance(volumes, VolumeFiles)
            else [volumes[i] for i in index],
            "labels": labels[index],
            "slice_labels": [slice_labels[i] for i in index],
        }
        counts = np.bincount(labels[index], minlength=2)
        log(f"{part}: {len(index)} volumes ({counts[1]} with ICH, {counts[0]} without)")
    return data


def build_models(config, slice_shape=None, seed=0, name="ich"):
    """The slice CNN with its softmax head and the CNN + BiLSTM sharing its layers."""
    keras.utils.set_random_seed(seed)
    slice_shape = slice_shape or (config.slice_size, config.slice_size, 1)
    cnn = build_slice_cnn(
        slice_shape, config.base_filters, config.feature_dim, config.dropout, num_classes=2,
        kernel_initializer=config.cnn_initializer, name=f"{name}_cnn",
    )  # fmt: skip
    model = build_cnn_bilstm(
        slice_shape, slice_cnn=slice_feature_model(cnn), lstm_units=config.lstm_units,
        num_lstm_layers=config.num_lstm_layers, slice_chunk=config.slice_chunk, remat=config.remat, use_mask=True, name=name,
    )  # fmt: skip
    return cnn, model


def input_slice_shape(data):
    """The model's slice input ``(H, W, 1)`` for the volumes of `data` (from `load_data`)."""
    return (*data["train"]["volumes"][0].shape[1:], 1)


def _volume_data(part, config, seed, shuffle):
    if not shuffle:
        # One shape for a whole evaluation set: Keras's TensorFlow adapter fixes every dimension
        # (batch size included) that its first batches share, so pad to the longest volume and
        # fall back to single volumes when the batch size does not divide the set.
        longest = int(volume_lengths(part["volumes"]).max())
        batch = config.volume_batch if len(part["volumes"]) % config.volume_batch == 0 else 1
        return volume_dataset(
            part["volumes"], part["labels"], batch_size=batch, shuffle=False, pad_multiple=longest
        )
    return volume_dataset(
        part["volumes"], part["labels"], batch_size=config.volume_batch,
        samples_per_epoch=config.volumes_per_epoch, augment=config.augment,
        pad_multiple=config.pad_multiple, seed=seed,
    )  # fmt: skip


def pretrain_slice_cnn(trainer, data, config, seed=0, verbose=True):
    """Stage 1 on balanced slices; keeps the weights with the best validation slice accuracy."""
    train, val = data["train"], data["val"]
    if all((np.asarray(s) < 0).all() for s in train["slice_labels"]):
        raise ValueError(
            "Stage 1 (slice pre-training) needs slice labels, and no training volume has any "
            "(e.g. CQ500). Use a set with slice labels (RSNA 2019) for the staged model."
        )
    slices = BalancedSliceDataset(
        train["volumes"], [np.maximum(s, 0) for s in train["slice_labels"]], train["labels"],
        batch_size=config.pretrain_batch, steps_per_epoch=config.pretrain_steps,
        augment=config.augment, seed=seed,
    )  # fmt: skip
    val_slices = BalancedSliceDataset(
        val["volumes"], [np.maximum(s, 0) for s in val["slice_labels"]], val["labels"],
        batch_size=config.pretrain_batch, steps_per_epoch=max(2, 500 // config.pretrain_batch),
        seed=seed + 1,
    )  # fmt: skip
    best = KeepBestWeights("val_accuracy", mode="max")
    return trainer.pretrain_cnn(
        slices, validation_data=val_slices, epochs=config.pretrain_epochs,
        learning_rate=config.pretrain_learning_rate,
        callbacks=[best, *progress("stage 1: slice CNN", verbose, ("loss", "val_accuracy"))],
    ).history  # fmt: skip


def _all_slices(volumes):
    return np.concatenate(volumes)[..., None]


def slice_outputs(model, volumes, batch_size=256, max_slices=65536):
    """Runs a slice model on every slice: a list with one ``(N_i, ...)`` array per volume.

    The volumes go through the model in groups of about `max_slices` slices, so volumes
    read from disk (`kerasmed.data.VolumeFiles`) are never all in memory.
    """
    lengths = volume_lengths(volumes)
    groups = np.split(
        np.arange(len(lengths)), np.flatnonzero(np.diff(np.cumsum(lengths) // max_slices)) + 1
    )
    outputs = np.concatenate([
        model.predict(_all_slices([volumes[i] for i in g]), batch_size=batch_size, verbose=0)
        for g in groups
    ])  # fmt: skip
    return np.split(outputs, np.cumsum(lengths)[:-1])


def pad_both_ends(features, length):
    """Zero-pads ``(N, D)`` features at both ends to ``(length, D)`` (the paper's SVM input)."""
    before = (length - len(features)) // 2
    return np.pad(features, ((before, length - len(features) - before), (0, 0)))


def slice_baselines(cnn, data, seed=0):
    """The paper's Section IV-A baselines from the pre-trained slice CNN, on the test volumes.

    Returns ``{"max_prob" | "p95_prob" | "svm": (num_test,) scores}``.
    """
    probabilities = [p[:, 1] for p in slice_outputs(cnn, data["test"]["volumes"])]
    scores = {
        "max_prob": np.array([p.max() for p in probabilities]),
        "p95_prob": np.array([np.percentile(p, 95) for p in probabilities]),
    }
    encoder = slice_feature_model(cnn)
    train_features = slice_outputs(encoder, data["train"]["volumes"])
    test_features = slice_outputs(encoder, data["test"]["volumes"])
    length = max(len(f) for f in train_features + test_features)
    x_train = np.stack([pad_both_ends(f, length).ravel() for f in train_features])
    x_test = np.stack([pad_both_ends(f, length).ravel() for f in test_features])
    svm = sklearn.pipeline.make_pipeline(
        sklearn.preprocessing.StandardScaler(),
        sklearn.svm.LinearSVC(C=1e-3, max_iter=20000, random_state=seed),
    )
    svm.fit(x_train, data["train"]["labels"])
    scores["svm"] = svm.decision_function(x_test)
    return scores


def predict_volumes(model, part, config):
    """ICH probabilities of every volume of a part (one padded shape, masked)."""
    dataset = _volume_data(part, config, 0, shuffle=False)
    return model.predict(dataset, verbose=0)[:, 1]


def train_volume_stages(trainer, data, config, seed=0, verbose=True):
    """Stages 2 and 3; returns ``(histories, {"cnn_bilstm_lstm_only" | "..._staged": scores})``."""
    val = _volume_data(data["val"], config, seed, shuffle=False)
    histories, scores = {}, {}
    best = KeepBestWeights("val_auc", mode="max")
    histories["train_lstm"] = trainer.train_lstm(
        _volume_data(data["train"], config, seed, shuffle=True), validation_data=val,
        epochs=config.lstm_epochs,
        callbacks=[best, *progress("stage 2: LSTMs", verbose, _VOLUME_KEYS)],
    ).history  # fmt: skip
    scores["cnn_bilstm_lstm_only"] = predict_volumes(trainer.model, data["test"], config)
    best = KeepBestWeights("val_auc", mode="max")
    histories["finetune"] = trainer.finetune(
        _volume_data(data["train"], config, seed + 1, shuffle=True), validation_data=val,
        epochs=config.finetune_epochs,
        callbacks=[best, *progress("stage 3: end to end", verbose, _VOLUME_KEYS)],
    ).history  # fmt: skip
    scores["cnn_bilstm_staged"] = predict_volumes(trainer.model, data["test"], config)
    return histories, scores


def train_scratch(data, config, seed=0, verbose=True):
    """The full model trained end to end from random weights, with the volume stages' budget."""
    _, model = build_models(config, input_slice_shape(data), seed=seed + 100, name="scratch")
    best = KeepBestWeights("val_auc", mode="max")
    history = train_end_to_end(
        model, _volume_data(data["train"], config, seed + 2, shuffle=True),
        validation_data=_volume_data(data["val"], config, seed, shuffle=False),
        epochs=config.scratch_epochs, jit_compile=config.jit_compile,
        callbacks=[best, *progress("end to end from scratch", verbose, _VOLUME_KEYS)],
    )  # fmt: skip
    return model, history.history, predict_volumes(model, data["test"], config)


def seconds_per_volume(model, volumes, repeats=1):
    """Median seconds of one ``predict_on_batch`` per whole volume (after a warm-up pass)."""
    inputs = [(v[None, ..., None], np.ones((1, len(v)), bool)) for v in volumes]
    for x in inputs:  # compiles every slice count once
        model.predict_on_batch(x)
    times = []
    for _ in range(repeats):
        for x in inputs:
            start = time.perf_counter()
            model.predict_on_batch(x)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def evaluate(labels, scores, reference="cnn_bilstm_staged"):
    """AUC with DeLong CI, operating point at sensitivity 0.98, DeLong p-values vs `reference`.

    The operating point is chosen on the test ROC curve itself, as the paper marks it on its
    Figure 4, so its sensitivity and specificity describe the curve rather than a threshold
    fixed in advance.
    """
    models = {}
    for name, score in scores.items():
        auc, low, high = roc_auc_ci(labels, score)
        point = operating_point(labels, score, TARGET_SENSITIVITY)
        models[name] = {
            "auc": auc,
            "auc_ci": [low, high],
            "sensitivity": point.sensitivity,
            "specificity": point.specificity,
            "accuracy": point.accuracy,
        }
    p_values = {
        name: delong_test(labels, scores[reference], score).p_value
        for name, score in scores.items()
        if name != reference
    }
    return models, p_values


def run(preset="quick", data_dir=None, out=None, seed=0, verbose=True, **overrides):
    """Runs the whole experiment; returns ``{"models": ..., "delong_p_values": ..., ...}``.

    Args:
        preset: ``"quick"`` (2-core CPU, minutes) or ``"paper"`` (GPU).
        data_dir: a volume-set folder (``labels.csv`` + ``volumes/``) written by
            ``data_prep/head_ct_ich.py``; ``None`` simulates head CTs with the phantom.
        out: folder for the PNG figures, or ``None``.
        seed: seed of the data, the splits and every model.
        verbose: progress bars and stage messages.
        **overrides: `IchConfig` fields to change for this run, e.g. ``lstm_epochs=2`` or
            ``stream=True`` (keep `data_dir`'s volumes on disk).

    Example:

    >>> from kerasmed.experiments import run_experiment
    >>> results = run_experiment("ich", "quick", out="results/ich")  # doctest: +SKIP
    """
    config, log = start_run(PRESETS, preset, overrides, "ich", verbose)
    data = load_data(config, data_dir, seed, verbose, config.stream)
    cnn, model = build_models(config, input_slice_shape(data), seed=seed)
    trainer = StagedTrainer(cnn, model, jit_compile=config.jit_compile)

    timings, histories = {}, {}
    start = time.perf_counter()
    histories["pretrain_cnn"] = pretrain_slice_cnn(trainer, data, config, seed, verbose)
    scores = slice_baselines(cnn, data, seed)
    timings["stage 1 + baselines"] = time.perf_counter() - start
    log(f"stage 1 and baselines: {timings['stage 1 + baselines']:.0f} s")

    start = time.perf_counter()
    stage_histories, stage_scores = train_volume_stages(trainer, data, config, seed, verbose)
    histories.update(stage_histories)
    scores.update(stage_scores)
    timings["stages 2-3"] = time.perf_counter() - start
    log(f"stages 2 and 3: {timings['stages 2-3']:.0f} s")

    start = time.perf_counter()
    _, histories["scratch"], scores["cnn_bilstm_scratch"] = train_scratch(
        data, config, seed, verbose
    )
    timings["scratch"] = time.perf_counter() - start
    log(f"end to end from scratch: {timings['scratch']:.0f} s")

    labels = data["test"]["labels"]
    models, p_values = evaluate(labels, scores)
    speed = seconds_per_volume(model, data["test"]["volumes"][:16])
    models["cnn_bilstm_staged"]["seconds_per_volume"] = speed
    if out is not None:
        save_figures(out, data, labels, scores)
    return {
        "models": models,
        "delong_p_values": {"reference": "cnn_bilstm_staged", **p_values},
        "seconds_per_volume": speed,
        "num_volumes": {part: len(data[part]["labels"]) for part in data},
        "stage_seconds": {k: round(v, 1) for k, v in timings.items()},
        "histories": histories,
        "test_scores": {name: s.tolist() for name, s in scores.items()},
        "test_labels": labels.tolist(),
    }


def save_figures(out, data, labels, scores):
    """Writes ``roc.png`` (Figures 3-4 with 95% CI bands) and ``volume.png`` to `out`."""
    curves = {name: (labels, score) for name, score in scores.items()}
    positive = int(np.flatnonzero(data["test"]["labels"] == 1)[0])
    slice_labels = data["test"]["slice_labels"][positive]
    write_figures(
        out,
        {
            "roc.png": plot_roc(curves, target_sensitivity=TARGET_SENSITIVITY, n_bootstraps=500),
            "volume.png": plot_image_sequence(
                data["test"]["volumes"][positive], labels=np.asarray(slice_labels)[:, None],
                label_names=["ICH"], max_images=10, title="A test volume (slice labels)",
            ),
        },
    )  # fmt: skip
