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

The same functions drive ``kerasmed reproduce fcslstm`` and
``notebooks/03_fcslstm_segmentation.ipynb``.

Reference: Y. Gao, J. M. Phillips, Y. Zheng, R. Min, P. T. Fletcher, G. Gerig, *Fully
convolutional structured LSTM networks for joint 4D medical image segmentation*, ISBI 2018.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from kerasmed.callbacks import EpochProgressBar
from kerasmed.data import simulate_infant_brain
from kerasmed.losses import WeightedCategoricalCrossentropy, class_weights_from_labels
from kerasmed.metrics import mean_pixel_accuracy, segmentation_report
from kerasmed.models.fcslstm import build_concise_fcn, build_fcslstm
from kerasmed.schedules import fcslstm_optimizer, paper_lr_callback

PRESETS = {
    "quick": {
        "num_subjects": 10,  # the paper's BRIC set: 10 subjects, one labelled slice each
        "num_heldout": 4,  # phantom only: subjects never trained on
        # 32 pixels: the GM ribbon is 1-2 pixels thick, so anatomy alone leaves the 6-month scan
        # ambiguous for the FCN (its mPA dips at time point 3), as in the paper's Figure 4.
        "image_size": 32,
        "noise_std": 0.03,
        "width_divisor": 4,
        "fuse_level": 4,
        "epochs": 60,
        "batch_size": 2,  # sequences per step; the FCN gets as many labelled frames
        "learning_rate": 1e-3,
        "decay_start": 20,
        "decay": 0.97,
        "test_timepoint": 2,  # 0-based: the 3rd of 5 time points
        "run_eagerly": False,  # True skips graph tracing: faster for a few tiny steps
        "sequence_models": {
            "fcslstm": {"bidirectional": False, "remat": False, "operator_groups": (1,) * 5},
            "bi_fcslstm": {"bidirectional": True, "remat": False, "operator_groups": (1,) * 5},
        },
    },
    "paper": {
        "num_subjects": 10,
        "num_heldout": 10,
        "image_size": 256,  # phantom only: a data_dir's slices keep the size they were saved at
        "noise_std": 0.03,
        "width_divisor": 2,
        "fuse_level": 4,
        "epochs": 100,  # the paper gives neither the number of epochs nor the batch size
        "batch_size": 1,
        "learning_rate": 1e-3,
        "decay_start": 20,
        "decay": 0.97,
        "test_timepoint": 2,
        "run_eagerly": False,
        # The paper's grouping (Section 2.2) is one operator per VGG block (conv1_1 + relu1_1 +
        # conv1_2 + relu1_2 = Ψ of layer 1, ...): groups of one block. The bidirectional model
        # did not fit the authors' 12 GB GPU; rematerialization trades compute for that memory.
        "sequence_models": {
            "fcslstm": {"bidirectional": False, "remat": False, "operator_groups": (1,) * 5},
            "bi_fcslstm": {"bidirectional": True, "remat": True, "operator_groups": (1,) * 5},
        },
    },
}

# Section 3 of the paper: mPA on the BRIC data, test set (time point 3) and training sets.
PAPER = {
    "fcn": {"mpa": 0.85, "mpa_train": 0.92},
    "fcslstm": {"mpa": 0.853, "mpa_train": 0.935},
    "bi_fcslstm": {"mpa": 0.863, "mpa_train": 0.948},
}

MODEL_NAMES = ("fcn", "fcslstm", "bi_fcslstm")
CLASS_KEYS = ("background", "csf", "gm", "wm")
IGNORE_LABEL = -1


def _log(verbose):
    return print if verbose else (lambda *a, **k: None)


def _progress(description, verbose):
    return [EpochProgressBar(description, keys=("loss", "val_loss"))] if verbose else []


def class_keys(num_classes):
    """Result keys of the classes: background, csf, gm, wm for 4 classes, else class0 ..."""
    if num_classes == len(CLASS_KEYS):
        return CLASS_KEYS
    return tuple(f"class{i}" for i in range(num_classes))


def load_data(preset="quick", data_dir=None, seed=0):
    """The sequences: the infant-brain phantom, or ``data_dir/segmentation.npz``.

    Returns:
        ``{"images": (S, T, H, W, C) float32, "labels": (S, T, H, W) int32 (-1 = unlabelled),
        "heldout": (S,) bool (subjects never trained on), "channel_names": tuple,
        "ages": (S, T) or None}``. Phantom images are on the phantom's 0-1 scale; a real
        data set comes z-scored by ``data_prep/longitudinal_segmentation.py``.
    """
    cfg = PRESETS[preset]
    if data_dir is None:
        total = cfg["num_subjects"] + cfg["num_heldout"]
        data = simulate_infant_brain(
            total, size=cfg["image_size"], noise_std=cfg["noise_std"], seed=seed
        )
        heldout = data.subjects >= cfg["num_subjects"]
        return {
            "images": data.images,
            "labels": data.labels.astype("int32"),
            "heldout": heldout,
            "channel_names": tuple(data.channel_names),
            "ages": data.ages,
        }
    from kerasmed.io import load_segmentation_npz

    seqs = load_segmentation_npz(data_dir)
    return {
        "images": seqs.images,
        "labels": seqs.labels.astype("int32"),
        "heldout": np.zeros(len(seqs), bool),
        "channel_names": seqs.channel_names,
        "ages": seqs.timepoints,
    }


def split_timepoints(labels, test_timepoint):
    """The paper's split: training targets with the test time point unlabelled, and test targets.

    Args:
        labels: ``(S, T, H, W)`` int labels (``-1`` = unlabelled).
        test_timepoint: 0-based index of the test time point.

    Returns:
        ``(train_labels, test_labels)``, both ``(S, T, H, W)``: `labels` with the test time
        point set to ``-1``, and `labels` with every *other* time point set to ``-1``.

    Example:

    >>> y = np.arange(3).reshape(1, 3, 1, 1)
    >>> train, test = split_timepoints(y, 1)
    >>> train.ravel().tolist(), test.ravel().tolist()
    ([0, -1, 2], [-1, 1, -1])
    """
    labels = np.asarray(labels)
    num_timepoints = labels.shape[1]
    if not 0 <= int(test_timepoint) < num_timepoints:
        raise ValueError(
            f"`test_timepoint` must be in [0, {num_timepoints}). "
            f"Received: test_timepoint={test_timepoint}"
        )
    is_test = np.arange(num_timepoints) == int(test_timepoint)
    is_test = is_test.reshape(1, -1, *([1] * (labels.ndim - 2)))
    train = np.where(is_test, IGNORE_LABEL, labels).astype(labels.dtype)
    test = np.where(is_test, labels, IGNORE_LABEL).astype(labels.dtype)
    return train, test


def training_frames(images, train_labels):
    """The FCN's training set: the frames of the training time points that have labels.

    Returns:
        ``(frames (N, H, W, C), labels (N, H, W))``: every (sequence, time point) with at
        least one labelled pixel in `train_labels` (so never the test time point).
    """
    keep = np.any(train_labels != IGNORE_LABEL, axis=(2, 3))
    return images[keep], train_labels[keep]


def _optimizer_and_callbacks(cfg, name, verbose):
    optimizer = fcslstm_optimizer(learning_rate=cfg["learning_rate"])
    schedule = paper_lr_callback(
        initial=cfg["learning_rate"], decay=cfg["decay"], start=cfg["decay_start"]
    )
    return optimizer, [schedule, *_progress(name, verbose)]


def _fit(model, x, y, validation, cfg, name, class_weights, batch_size, verbose):
    optimizer, callbacks = _optimizer_and_callbacks(cfg, name, verbose)
    loss = WeightedCategoricalCrossentropy(class_weights, ignore_label=IGNORE_LABEL)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        jit_compile=_jit_compile() and not cfg.get("run_eagerly", False),
        run_eagerly=cfg.get("run_eagerly", False),
    )
    history = model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=cfg["epochs"],
        validation_data=validation,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def _jit_compile():
    # On TensorFlow, XLA compiles the recurrent graph slowly on a CPU and runs it no faster;
    # on JAX, an un-jitted step would run op by op.
    return keras.backend.backend() == "jax"


def build_model(name, cfg, input_shape, num_classes):
    """Builds one of `MODEL_NAMES` for ``(T, H, W, C)`` sequences (the FCN for ``(H, W, C)``)."""
    if name == "fcn":
        return build_concise_fcn(
            input_shape[1:], num_classes, width_divisor=cfg["width_divisor"],
            fuse_level=cfg["fuse_level"], name="fcn",
        )  # fmt: skip
    spec = cfg["sequence_models"][name]
    return build_fcslstm(
        input_shape, num_classes, bidirectional=spec["bidirectional"],
        width_divisor=cfg["width_divisor"], fuse_level=cfg["fuse_level"],
        operator_groups=spec["operator_groups"], remat=spec["remat"],
        unroll=keras.backend.backend() == "jax", name=name,
    )  # fmt: skip


def train_fcn(images, train_labels, validation, cfg, class_weights, seed=0, verbose=True):
    """The concise FCN on the labelled frames of the training time points.

    Returns ``(model, history)``.
    """
    keras.utils.set_random_seed(seed)
    frames, labels = training_frames(images, train_labels)
    model = build_model("fcn", cfg, images.shape[1:], class_weights.size)
    val = None
    if validation is not None:
        val = training_frames(*validation)
    frames_per_step = cfg["batch_size"] * (images.shape[1] - 1)
    history = _fit(model, frames, labels, val, cfg, "fcn", class_weights, frames_per_step, verbose)
    return model, history


def train_sequence_model(
    name, images, train_labels, validation, cfg, class_weights, seed=0, verbose=True
):
    """An FCSLSTM on whole sequences; the loss sees only `train_labels` (``-1`` = weight 0).

    Returns ``(model, history)``.
    """
    keras.utils.set_random_seed(seed)
    model = build_model(name, cfg, images.shape[1:], class_weights.size)
    history = _fit(
        model, images, train_labels, validation, cfg, name, class_weights, cfg["batch_size"],
        verbose,
    )  # fmt: skip
    return model, history


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


def evaluate(scores, labels, test_timepoint, heldout, num_classes):
    """The results of one model: mPA (test / train / held-out subjects), Dice and per-class PA.

    Args:
        scores: ``(S, T, H, W, K)`` predictions.
        labels: ``(S, T, H, W)`` ground truth (``-1`` = unlabelled).
        test_timepoint: 0-based index of the test time point.
        heldout: ``(S,)`` bool, subjects never trained on.
        num_classes: K.

    Returns:
        ``{"mpa", "mpa_train", "dice": {tissue: ..., "avg"}, "pixel_accuracy": {class: ...,
        "avg"}, "mpa_per_timepoint": [...], "mpa_heldout"}``: ``mpa``, ``dice`` and
        ``pixel_accuracy`` on the test time point of the training subjects; ``mpa_train`` on
        their training time points (pixels pooled); ``mpa_per_timepoint`` on each time point
        of the training subjects; ``mpa_heldout`` (only when there are held-out subjects) on
        the held-out subjects' test time point. ``dice["avg"]`` averages the tissues (not the
        background).
    """
    keys = class_keys(num_classes)
    heldout = np.asarray(heldout, bool)
    seen = ~heldout
    train_labels, test_labels = split_timepoints(labels, test_timepoint)
    report = segmentation_report(
        test_labels[seen], scores[seen], num_classes, class_names=keys, ignore_label=IGNORE_LABEL
    )
    tissues = {k: v for k, v in report["dice"].items() if k not in ("background", "avg")}
    valid = [v for v in tissues.values() if not np.isnan(v)]
    result = {
        "mpa": report["pixel_accuracy"]["avg"],
        "mpa_train": mean_pixel_accuracy(train_labels[seen], scores[seen], num_classes).mean,
        "dice": {**tissues, "avg": float(np.mean(valid)) if valid else float("nan")},
        "pixel_accuracy": report["pixel_accuracy"],
        "mpa_per_timepoint": [
            mean_pixel_accuracy(labels[seen, t], scores[seen, t], num_classes).mean
            for t in range(labels.shape[1])
        ],
    }
    if heldout.any():
        result["mpa_heldout"] = mean_pixel_accuracy(
            test_labels[heldout], scores[heldout], num_classes
        ).mean
    return result


def run(preset="quick", data_dir=None, out=None, seed=0, verbose=True):
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
        seed: seed of the phantom and of every model.
        verbose: progress bars and stage messages.

    Example:

    >>> from kerasmed.experiments import run_experiment
    >>> results = run_experiment("fcslstm", "quick", out="results/fcslstm")  # doctest: +SKIP
    """
    cfg = PRESETS[preset]
    log = _log(verbose)
    data = load_data(preset, data_dir, seed)
    images, labels, heldout = data["images"], data["labels"], data["heldout"]
    test_tp = cfg["test_timepoint"]
    train_labels, _ = split_timepoints(labels, test_tp)
    seen = ~heldout
    num_classes = int(labels.max()) + 1
    class_weights = class_weights_from_labels(train_labels[seen], num_classes, IGNORE_LABEL)
    train_tps = [t for t in range(labels.shape[1]) if t != test_tp]
    log(
        f"[fcslstm] {int(seen.sum())} training subjects ({int(heldout.sum())} held out), "
        f"{labels.shape[1]} time points, {images.shape[2]}x{images.shape[3]} pixels; train on "
        f"time points {[t + 1 for t in train_tps]}, test on {test_tp + 1}"
    )
    validation = (images[heldout], train_labels[heldout]) if heldout.any() else None

    models, histories, params, seconds, predictions = {}, {}, {}, {}, {}
    pixel_accuracy, per_timepoint = {}, {}
    for i, name in enumerate(("fcn", *cfg["sequence_models"])):
        start = time.perf_counter()
        if name == "fcn":
            model, histories[name] = train_fcn(
                images[seen], train_labels[seen], validation, cfg, class_weights, seed, verbose
            )
        else:
            model, histories[name] = train_sequence_model(
                name, images[seen], train_labels[seen], validation, cfg, class_weights,
                seed + i, verbose,
            )  # fmt: skip
        scores = predict(name, model, images)
        seconds[name] = round(time.perf_counter() - start, 1)
        params[name] = int(model.count_params())
        models[name] = evaluate(scores, labels, test_tp, heldout, num_classes)
        # per-class and per-time-point results beside the table, not in it
        pixel_accuracy[name] = models[name].pop("pixel_accuracy")
        per_timepoint[name] = models[name].pop("mpa_per_timepoint")
        predictions[name] = np.argmax(scores[:, test_tp], axis=-1).astype("int8")
        log(
            f"[fcslstm] {name}: mPA test {models[name]['mpa']:.3f}, train "
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


def save_figures(out, data, predictions, models, histories, test_timepoint):
    """Writes ``phantom.png``, ``segmentations.png``, ``learning_curves.png`` and ``mpa.png``."""
    out = Path(out)
    figures = {
        "phantom.png": plot_sequence(
            data["images"][0], data["labels"][0], data.get("ages"), data["channel_names"]
        ),
        "segmentations.png": plot_segmentations(
            data["images"][:, test_timepoint],
            data["labels"][:, test_timepoint],
            predictions,
            heldout=data["heldout"],
        ),
        "learning_curves.png": _learning_curves(histories),
        "mpa.png": plot_mpa(models, PAPER),
    }
    for filename, figure in figures.items():
        figure.savefig(out / filename, dpi=100)


# ----------------------------------------------------------------------------------------------
# Figures (matplotlib Figures, no pyplot state: they show in a notebook with display()).

_LABEL_COLORS = ("#000000", "#3b8fd9", "#9a9a9a", "#f2f2f2")


def _label_cmap(num_classes=4):
    import matplotlib.colors

    colors = list(_LABEL_COLORS[:num_classes])
    colors += [f"C{i}" for i in range(num_classes - len(colors))]
    return matplotlib.colors.ListedColormap(colors), matplotlib.colors.BoundaryNorm(
        np.arange(-0.5, num_classes), num_classes
    )


def _figure(rows, cols, size=1.8):
    import matplotlib.figure

    fig = matplotlib.figure.Figure(figsize=(size * cols, size * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _show_labels(ax, labels, num_classes=4):
    cmap, norm = _label_cmap(num_classes)
    ax.imshow(np.ma.masked_less(labels, 0), cmap=cmap, norm=norm, interpolation="nearest")


def _clean(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def plot_sequence(images, labels, ages=None, channel_names=("T1w", "T2w")):
    """One subject across time: each channel and the labels at every time point.

    Args:
        images: ``(T, H, W, C)``.
        labels: ``(T, H, W)`` (``-1`` unlabelled: shown blank).
        ages: optional ``(T,)`` ages (months) for the column titles (or ``(S, T)``: row 0).

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if ages is not None:
        ages = np.asarray(ages)
        ages = ages[0] if ages.ndim == 2 else ages
    num_timepoints, channels = images.shape[0], images.shape[-1]
    fig, axes = _figure(channels + 1, num_timepoints)
    for t in range(num_timepoints):
        for c in range(channels):
            lo, hi = np.percentile(images[:, ..., c], (1, 99.5))
            axes[c, t].imshow(images[t, ..., c], cmap="gray", vmin=lo, vmax=hi)
            if t == 0:
                axes[c, t].set_ylabel(channel_names[c] if c < len(channel_names) else f"ch{c}")
        _show_labels(axes[channels, t], labels[t], max(4, int(labels.max()) + 1))
        title = f"time point {t + 1}"
        if ages is not None:
            title += f"\n{ages[t]:.1f} months"
        axes[0, t].set_title(title, fontsize=9)
    axes[channels, 0].set_ylabel("labels")
    for ax in axes.ravel():
        _clean(ax)
    return fig


def plot_segmentations(images, labels, predictions, heldout=None, num_examples=3):
    """The paper's Figure 4 for the test time point: input, ground truth, each model.

    Args:
        images: ``(S, H, W, C)`` test-time-point images; channel 0 is shown.
        labels: ``(S, H, W)`` ground truth.
        predictions: ``{model: (S, H, W) labels}``.
        heldout: ``(S,)`` bool; held-out subjects are marked in the column titles.
        num_examples: number of subjects (columns).

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    count = min(num_examples, len(images))
    rows = ["input", "ground truth", *predictions]
    fig, axes = _figure(len(rows), count, size=2.0)
    num_classes = max(4, int(labels.max()) + 1)
    for j in range(count):
        axes[0, j].imshow(images[j, ..., 0], cmap="gray")
        _show_labels(axes[1, j], labels[j], num_classes)
        for r, prediction in enumerate(predictions.values(), start=2):
            _show_labels(axes[r, j], prediction[j], num_classes)
            accuracy = mean_pixel_accuracy(labels[j], prediction[j], num_classes).mean
            axes[r, j].set_title(f"mPA {accuracy:.3f}", fontsize=8)
        tag = " (held out)" if heldout is not None and heldout[j] else ""
        axes[0, j].set_title(f"subject {j + 1}{tag}", fontsize=9)
    for r, name in enumerate(rows):
        axes[r, 0].set_ylabel(name)
    for ax in axes.ravel():
        _clean(ax)
    return fig


def _learning_curves(histories):
    from kerasmed.plotting import plot_learning_curves

    fig = plot_learning_curves(histories, metric="loss")
    fig.axes[0].set_yscale("log")
    fig.axes[0].set_title("weighted cross-entropy (dashed: held-out subjects)")
    return fig


def plot_mpa(models, paper=PAPER):
    """Bar chart of the test and training mPA of each model, ours beside the paper's.

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    fig, axes = _figure(1, 2, size=3.2)
    names = list(models)
    x = np.arange(len(names))
    for ax, metric, title in (
        (axes[0, 0], "mpa", "test time point"),
        (axes[0, 1], "mpa_train", "training time points"),
    ):
        ours = [models[n][metric] for n in names]
        theirs = [paper.get(n, {}).get(metric, np.nan) for n in names]
        ax.bar(x - 0.2, ours, width=0.4, label="ours")
        ax.bar(x + 0.2, theirs, width=0.4, label="paper", hatch="//", alpha=0.6)
        for xi, value in zip(x, ours):
            ax.text(xi - 0.2, value + 0.005, f"{value:.3f}", ha="center", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(names, fontsize=8)
        low = min([v for v in ours + theirs if not np.isnan(v)] + [0.7])
        ax.set_ylim(max(0.0, low - 0.05), 1.0)
        ax.set_title(f"mPA, {title}", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    return fig
