"""Experiment ``fcslstm`` (paper 002): joint 4D segmentation with the FCSLSTM.

The protocol of Gao et al. (2018) on the BRIC data: every subject has 5 time points (0, 3, 6,
9, 12 months); the labels of time points 1, 2, 4 and 5 are for training and time point 3 (the
6-month scan, where white and grey matter are nearly isointense) is the test set. Three models:

- ``fcn``: the concise FCN, one image at a time. It is trained on the training time points'
  images only and segments the test time point on its own.
- ``fcslstm``: five stacked structured convolutional LSTMs whose input operators are the FCN's
  blocks, over the whole sequence (forward in time).
- ``bi_fcslstm``: the same, bidirectional (past and future time points).

How the split is kept honest for the sequence models: they read the *images* of all 5 time
points (the paper's model segments a whole series jointly), but the labels of the test time
point are replaced by ``-1`` in the training targets, which `WeightedCategoricalCrossentropy`
gives weight 0 (as 3D U-Net does for unannotated voxels): no gradient ever comes from them.
``mpa`` is measured on the test time point's labels, ``mpa_train`` on the training time
points'. The same subjects are in both, as in the paper (10 subjects, 40 labelled training
images). With the phantom we also simulate *held-out subjects* never seen in training and
report their test-time-point mPA (``mpa_heldout``), a stricter check the paper could not make;
their training time points give the validation curves (nothing is selected on them).

Training follows Section 3: Kaiming (He normal) initialization, RMSprop with smoothing
constant 0.95 and learning rate 1e-3, multiplied by 0.97 per epoch after epoch 20; class-weighted
cross-entropy with weights inversely proportional to the class pixel counts of the training
labels; mean pixel accuracy (mPA, per-class pixel accuracy averaged over the 4 classes,
background included) and Dice of CSF, GM and WM.

Real data (``data_dir``) is read from disk on demand: ``segmentation.npz`` as
``data_prep/longitudinal_segmentation.py`` writes it stores its images uncompressed, `load_data`
returns them memory-mapped, and `train_streamed` and `predict_classes` read each batch from the
map through `kerasmed.data.segmentation_streaming` (frames for the FCN, whole sequences for the
FCSLSTMs): only the labels (int8), the split and the predicted classes (int8) are in memory.
The embedded phantom and a compressed file are trained in memory (`train_fcn`,
`train_sequence_model`, `predict`).

The paper's numbers, the time-point split, the metrics and the figures are in
`kerasmed.experiments.fcslstm_results` (re-exported here).

The same functions drive ``kerasmed reproduce fcslstm`` and
``notebooks/03_fcslstm_segmentation.ipynb``. `FcslstmConfig` holds the settings, one instance
per preset in `kerasmed.experiments.presets.fcslstm`; ``run(preset, **overrides)`` and
``--set key=value`` change them for one run.

Reference: Y. Gao, J. M. Phillips, Y. Zheng, R. Min, P. T. Fletcher, G. Gerig, *Fully
convolutional structured LSTM networks for joint 4D medical image segmentation*, ISBI 2018.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from kerasmed import backend_policy
from kerasmed.data import simulate_infant_brain
from kerasmed.data.segmentation_streaming import (
    SegmentationFrameDataset,
    SegmentationSequenceDataset,
    labelled_frames,
    sequence_frames,
)
from kerasmed.experiments.common import progress, start_run
from kerasmed.experiments.fcslstm_results import (
    CLASS_KEYS,
    IGNORE_LABEL,
    PAPER,
    class_keys,
    evaluate,
    save_figures,
    split_timepoints,
)
from kerasmed.experiments.presets.fcslstm import (
    MODEL_NAMES,
    PRESETS,
    FcslstmConfig,
    SequenceModelConfig,
    SequenceModels,
)
from kerasmed.losses import WeightedCategoricalCrossentropy, class_weights_from_labels
from kerasmed.models.fcslstm import build_concise_fcn, build_fcslstm
from kerasmed.schedules import fcslstm_optimizer, paper_lr_callback

__all__ = [
    "CLASS_KEYS",
    "IGNORE_LABEL",
    "MODEL_NAMES",
    "PAPER",
    "PRESETS",
    "FcslstmConfig",
    "SequenceModelConfig",
    "SequenceModels",
    "build_model",
    "class_keys",
    "evaluate",
    "load_data",
    "predict",
    "predict_classes",
    "run",
    "save_figures",
    "split_timepoints",
    "streamed",
    "train_fcn",
    "train_sequence_model",
    "train_streamed",
    "training_frames",
]


def load_data(config, data_dir=None, seed=0, stream=True):
    """The sequences: the infant-brain phantom of `config`, or ``data_dir/segmentation.npz``.

    Args:
        config: a `FcslstmConfig`.
        data_dir: folder of ``segmentation.npz``, or None for the phantom.
        seed: seed of the phantom.
        stream: with `data_dir`, True (default) leaves the images on disk when the file
            stores them uncompressed (a read-only ``np.memmap``, see `streamed`); a
            compressed file, or False, reads them into memory.

    Returns:
        ``{"images": (S, T, H, W, C) float32, "labels": (S, T, H, W) int (-1 = unlabelled),
        "heldout": (S,) bool (subjects never trained on), "channel_names": tuple,
        "ages": (S, T) or None}``. Labels are int8 beside mapped images (an eighth of the
        two float32 channels), else int32. Phantom images are on the phantom's 0-1 scale; a
        real data set comes z-scored by ``data_prep/longitudinal_segmentation.py``.
    """
    if data_dir is None:
        total = config.num_subjects + config.num_heldout
        data = simulate_infant_brain(
            total, size=config.image_size, noise_std=config.noise_std, seed=seed
        )
        heldout = data.subjects >= config.num_subjects
        return {
            "images": data.images,
            "labels": data.labels.astype("int32"),
            "heldout": heldout,
            "channel_names": tuple(data.channel_names),
            "ages": data.ages,
        }
    from kerasmed.io import load_segmentation_npz

    seqs = load_segmentation_npz(data_dir, mmap=stream)
    return {
        "images": seqs.images,
        "labels": seqs.labels if streamed(seqs.images) else seqs.labels.astype("int32"),
        "heldout": np.zeros(len(seqs), bool),
        "channel_names": seqs.channel_names,
        "ages": seqs.timepoints,
    }


def streamed(images):
    """Whether `images` stay on disk (a ``np.memmap`` from `load_data`): train and predict
    with `train_streamed` and `predict_classes` then."""
    return isinstance(images, np.memmap)


def training_frames(images, train_labels):
    """The FCN's training set: the frames of the training time points that have labels.

    Returns:
        ``(frames (N, H, W, C), labels (N, H, W))``: every (sequence, time point) with at
        least one labelled pixel in `train_labels` (so never the test time point).
    """
    keep = np.any(train_labels != IGNORE_LABEL, axis=(2, 3))
    return images[keep], train_labels[keep]


def _optimizer_and_callbacks(config, name, verbose):
    optimizer = fcslstm_optimizer(learning_rate=config.learning_rate)
    schedule = paper_lr_callback(
        initial=config.learning_rate, decay=config.decay, start=config.decay_start
    )
    return optimizer, [schedule, *progress(name, verbose)]


def _fit(model, x, y, validation, config, name, class_weights, batch_size, verbose):
    optimizer, callbacks = _optimizer_and_callbacks(config, name, verbose)
    loss = WeightedCategoricalCrossentropy(class_weights, ignore_label=IGNORE_LABEL)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        jit_compile=False if config.run_eagerly else backend_policy.fcslstm_jit_compile(),
        run_eagerly=config.run_eagerly,
    )
    # a PyDataset (y None) draws its own order per epoch and sizes its own batches
    arrays = y is not None
    history = model.fit(
        x,
        y,
        batch_size=batch_size if arrays else None,
        epochs=config.epochs,
        validation_data=validation,
        shuffle=arrays,
        verbose=0,
        callbacks=callbacks,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def build_model(name, config, input_shape, num_classes):
    """Builds one of `MODEL_NAMES` for ``(T, H, W, C)`` sequences (the FCN for ``(H, W, C)``)."""
    if name == "fcn":
        return build_concise_fcn(
            input_shape[1:], num_classes, width_divisor=config.width_divisor,
            fuse_level=config.fuse_level, name="fcn",
        )  # fmt: skip
    spec = getattr(config.sequence_models, name)
    return build_fcslstm(
        input_shape, num_classes, bidirectional=spec.bidirectional,
        width_divisor=config.width_divisor, fuse_level=config.fuse_level,
        operator_groups=spec.operator_groups, remat=spec.remat,
        unroll=backend_policy.fcslstm_unroll(), name=name,
    )  # fmt: skip


def train_fcn(images, train_labels, validation, config, class_weights, seed=0, verbose=True):
    """The concise FCN on the labelled frames of the training time points.

    Returns ``(model, history)``.
    """
    keras.utils.set_random_seed(seed)
    frames, labels = training_frames(images, train_labels)
    model = build_model("fcn", config, images.shape[1:], class_weights.size)
    val = None
    if validation is not None:
        val = training_frames(*validation)
    frames_per_step = config.batch_size * (images.shape[1] - 1)
    history = _fit(
        model, frames, labels, val, config, "fcn", class_weights, frames_per_step, verbose
    )
    return model, history


def train_sequence_model(
    name, images, train_labels, validation, config, class_weights, seed=0, verbose=True
):
    """An FCSLSTM on whole sequences; the loss sees only `train_labels` (``-1`` = weight 0).

    Returns ``(model, history)``.
    """
    keras.utils.set_random_seed(seed)
    model = build_model(name, config, images.shape[1:], class_weights.size)
    history = _fit(
        model, images, train_labels, validation, config, name, class_weights, config.batch_size,
        verbose,
    )  # fmt: skip
    return model, history


def train_streamed(
    name, images, train_labels, config, class_weights, seed=0, verbose=True, train=None,
    validation=None, **dataset_options,
):  # fmt: skip
    """`train_fcn` or `train_sequence_model` with every batch read from `images` (a map).

    The FCN's batches are ``config.batch_size * (T - 1)`` labelled frames of the `train`
    sequences (`SegmentationFrameDataset`), the FCSLSTMs' are ``config.batch_size`` sequences
    (`SegmentationSequenceDataset`, both of `kerasmed.data.segmentation_streaming`), in a
    new order every epoch (seeded by `seed`); the validation batches are the `validation`
    sequences' (their labelled frames for the FCN), in order.

    Args:
        name: one of `MODEL_NAMES`.
        images: ``(S, T, H, W, C)``, normally the ``np.memmap`` of `load_data` (an array
            gives the same batches).
        train_labels: ``(S, T, H, W)`` the training targets (`split_timepoints`).
        config, class_weights, seed, verbose: as `train_fcn`.
        train: indices or ``(S,)`` mask of the sequences to train on (None: all).
        validation: indices or mask of the validation sequences, or None.
        **dataset_options: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of the
            datasets (``keras.utils.PyDataset``).

    Returns ``(model, history)``.
    """
    keras.utils.set_random_seed(seed)
    model = build_model(name, config, images.shape[1:], class_weights.size)

    def dataset(sequences, shuffle):
        if name == "fcn":
            frames = labelled_frames(train_labels, sequences, IGNORE_LABEL)
            return SegmentationFrameDataset(
                images, train_labels, frames, config.batch_size * (images.shape[1] - 1),
                shuffle=shuffle, seed=seed, **dataset_options,
            )  # fmt: skip
        return SegmentationSequenceDataset(
            images, train_labels, sequences, config.batch_size, shuffle=shuffle, seed=seed,
            **dataset_options,
        )  # fmt: skip

    val = None if validation is None else dataset(validation, False)
    history = _fit(
        model, dataset(train, True), None, val, config, name, class_weights, None, verbose
    )
    return model, history


def predict_classes(name, model, images, chunk=64, **dataset_options):
    """The predicted class ``(S, T, H, W)`` int8 of every pixel, reading `images` per batch.

    One sequence (the FCN: its T frames) per batch, as `predict`; the probabilities of
    `chunk` sequences at a time are reduced to their argmax, so memory holds the classes and
    one chunk of probabilities, never the images. `evaluate` takes the result in place of
    `predict`'s.

    Args:
        name: one of `MODEL_NAMES`.
        model: the trained model.
        images: ``(S, T, H, W, C)``, normally the ``np.memmap`` of `load_data`.
        chunk: sequences per ``model.predict`` call.
        **dataset_options: as `train_streamed`.
    """
    num_sequences, num_timepoints = images.shape[:2]
    classes = np.empty(images.shape[:4], dtype="int8")
    for start in range(0, num_sequences, int(chunk)):
        rows = np.arange(start, min(start + int(chunk), num_sequences))
        if name == "fcn":
            data = SegmentationFrameDataset(
                images, None, sequence_frames(num_timepoints, rows), num_timepoints,
                **dataset_options,
            )  # fmt: skip
        else:
            data = SegmentationSequenceDataset(images, None, rows, 1, **dataset_options)
        scores = model.predict(data, verbose=0)
        classes[rows] = np.argmax(scores, axis=-1).reshape(len(rows), *images.shape[1:4])
    return classes


def predict(name, model, images):
    """Class probabilities ``(S, T, H, W, K)`` of every time point of every sequence.

    One sequence (the FCN: its T frames) per batch: a single batch shape, so the predict
    function is traced or compiled once.
    """
    if name == "fcn":
        frames = images.reshape(-1, *images.shape[2:])
        scores = model.predict(frames, batch_size=images.shape[1], verbose=0)
        return scores.reshape(*images.shape[:2], *scores.shape[1:])
    return model.predict(images, batch_size=1, verbose=0)


def run(preset="quick", data_dir=None, out=None, seed=0, verbose=True, **overrides):
    """Runs the whole experiment; returns ``{"models": ..., "histories": ..., ...}``.

    ``models`` holds, per model, ``mpa`` (test time point), ``mpa_train``, ``dice`` and
    ``mpa_heldout`` (see `evaluate`); ``pixel_accuracy`` (per class, test time point) and
    ``mpa_per_timepoint`` are top-level keys ``{model: ...}``, as are ``protocol``,
    ``class_weights``, ``num_params``, ``train_seconds`` (training + prediction) and
    ``histories``.

    Args:
        preset: ``"quick"`` (2-core CPU, minutes) or ``"paper"`` (GPU, 256 x 256).
        data_dir: folder with ``segmentation.npz`` from
            ``data_prep/longitudinal_segmentation.py``; ``None`` simulates the infant-brain
            phantom.
        out: folder for the PNG figures and ``predictions.npz`` (the test time point's images,
            labels and the three models' segmentations), or ``None``.
        seed: seed of the phantom and of every model (the i-th of `MODEL_NAMES` gets
            ``seed + i``).
        verbose: progress bars and stage messages.
        **overrides: `FcslstmConfig` fields to change for this run, e.g. ``test_timepoint=0``
            or ``**{"sequence_models.bi_fcslstm.operator_groups": (2, 3)}``.

    Example:

    >>> from kerasmed.experiments import run_experiment
    >>> results = run_experiment("fcslstm", "quick", out="results/fcslstm")  # doctest: +SKIP
    """
    config, log = start_run(PRESETS, preset, overrides, "fcslstm", verbose)
    data = load_data(config, data_dir, seed)
    images, labels, heldout = data["images"], data["labels"], data["heldout"]
    test_tp = config.test_timepoint
    train_labels, _ = split_timepoints(labels, test_tp)
    seen = ~heldout
    num_classes = int(labels.max()) + 1
    class_weights = class_weights_from_labels(train_labels[seen], num_classes, IGNORE_LABEL)
    train_tps = [t for t in range(labels.shape[1]) if t != test_tp]
    log(
        f"{int(seen.sum())} training subjects ({int(heldout.sum())} held out), "
        f"{labels.shape[1]} time points, {images.shape[2]}x{images.shape[3]} pixels; train on "
        f"time points {[t + 1 for t in train_tps]}, test on {test_tp + 1}"
    )
    on_disk = streamed(images)
    if on_disk:
        log(f"reading the images from {data_dir} batch by batch (memory-mapped)")
    validation = None
    if heldout.any():
        validation = heldout if on_disk else (images[heldout], train_labels[heldout])

    models, histories, params, seconds, predictions = {}, {}, {}, {}, {}
    pixel_accuracy, per_timepoint = {}, {}
    for name in config.models:
        start = time.perf_counter()
        if on_disk:
            model, histories[name] = train_streamed(
                name, images, train_labels, config, class_weights,
                seed + MODEL_NAMES.index(name), verbose,
                train=seen, validation=validation,
            )  # fmt: skip
        elif name == "fcn":
            model, histories[name] = train_fcn(
                images[seen], train_labels[seen], validation, config, class_weights, seed, verbose
            )
        else:
            model, histories[name] = train_sequence_model(
                name, images[seen], train_labels[seen], validation, config, class_weights,
                seed + MODEL_NAMES.index(name), verbose,
            )  # fmt: skip
        # class maps (S, T, H, W) from the map, probabilities (S, T, H, W, K) in memory
        scores = predict_classes(name, model, images) if on_disk else predict(name, model, images)
        seconds[name] = round(time.perf_counter() - start, 1)
        params[name] = int(model.count_params())
        models[name] = evaluate(scores, labels, test_tp, heldout, num_classes)
        # per-class and per-time-point results beside the table, not in it
        pixel_accuracy[name] = models[name].pop("pixel_accuracy")
        per_timepoint[name] = models[name].pop("mpa_per_timepoint")
        if scores.ndim == labels.ndim:  # already classes
            predictions[name] = scores[:, test_tp].astype("int8")
        else:
            predictions[name] = np.argmax(scores[:, test_tp], axis=-1).astype("int8")
        log(
            f"{name}: mPA test {models[name]['mpa']:.3f}, train "
            f"{models[name]['mpa_train']:.3f} ({seconds[name]:.0f} s)"
        )
        del model
        keras.backend.clear_session(free_memory=False)

    if out is not None:
        save_figures(out, data, predictions, models, histories, test_tp)
        np.savez_compressed(
            Path(out) / "predictions.npz",
            images=images[:, test_tp],
            labels=labels[:, test_tp],
            heldout=heldout,
            **predictions,
        )
    return {
        "models": models,
        "protocol": {
            "train_timepoints": [t + 1 for t in train_tps],
            "test_timepoint": test_tp + 1,
            "training_subjects": int(seen.sum()),
            "heldout_subjects": int(heldout.sum()),
            "mpa_classes": list(class_keys(num_classes)),
        },
        "pixel_accuracy": pixel_accuracy,
        "mpa_per_timepoint": per_timepoint,
        "class_weights": dict(zip(class_keys(num_classes), class_weights.tolist())),
        "num_params": params,
        "train_seconds": seconds,
        "histories": histories,
    }
