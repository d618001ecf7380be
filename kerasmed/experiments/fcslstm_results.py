"""Experiment ``fcslstm`` (paper 002): the paper's numbers, the time-point split, the metrics of
one model and the figures of a run. `kerasmed.experiments.fcslstm` runs the experiment and
re-exports every name here.
"""

from __future__ import annotations

import numpy as np

from kerasmed.experiments.common import write_figures
from kerasmed.metrics import mean_pixel_accuracy, segmentation_report
from kerasmed.plotting import (
    plot_learning_curves,
    plot_mpa,
    plot_segmentation_sequence,
    plot_segmentations,
)

__all__ = [
    "CLASS_KEYS",
    "IGNORE_LABEL",
    "PAPER",
    "class_keys",
    "evaluate",
    "save_figures",
    "split_timepoints",
]

# Section 3 of the paper: mPA on the BRIC data, test set (time point 3) and training sets.
PAPER = {
    "fcn": {"mpa": 0.85, "mpa_train": 0.92},
    "fcslstm": {"mpa": 0.853, "mpa_train": 0.935},
    "bi_fcslstm": {"mpa": 0.863, "mpa_train": 0.948},
}

CLASS_KEYS = ("background", "csf", "gm", "wm")
IGNORE_LABEL = -1


def class_keys(num_classes):
    """Result keys of the classes: background, csf, gm, wm for 4 classes, else class0 ..."""
    if num_classes == len(CLASS_KEYS):
        return CLASS_KEYS
    return tuple(f"class{i}" for i in range(num_classes))


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


def evaluate(scores, labels, test_timepoint, heldout, num_classes):
    """The results of one model: mPA (test / train / held-out subjects), Dice and per-class PA.

    Args:
        scores: ``(S, T, H, W, K)`` predictions (`predict`), or the ``(S, T, H, W)``
            classes (`predict_classes`).
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


def save_figures(out, data, predictions, models, histories, test_timepoint):
    """Writes ``phantom.png``, ``segmentations.png``, ``learning_curves.png`` and ``mpa.png``."""
    fig = plot_learning_curves(histories, metric="loss")
    fig.axes[0].set_yscale("log")
    fig.axes[0].set_title("weighted cross-entropy (dashed: held-out subjects)")
    write_figures(
        out,
        {
            "phantom.png": plot_segmentation_sequence(
                data["images"][0], data["labels"][0], data.get("ages"), data["channel_names"]
            ),
            "segmentations.png": plot_segmentations(
                data["images"][:, test_timepoint],
                data["labels"][:, test_timepoint],
                predictions,
                heldout=data["heldout"],
            ),
            "learning_curves.png": fig,
            "mpa.png": plot_mpa(models, PAPER),
        },
    )
