"""Per-label PPV, NPV and F-measure of a multi-label classifier (Tables 1 and 3 of paper 000).

For each label, from its confusion matrix (TP, FP, TN, FN):

- PPV (positive predictive value, precision) ``= TP / (TP + FP)``;
- NPV (negative predictive value) ``= TN / (TN + FN)``;
- F-measure (harmonic mean of precision and recall) ``= 2 TP / (2 TP + FP + FN)``;

and ``"avg"`` is their unweighted mean over the labels (the tables' "avg." column is the mean of
the row, e.g. Table 3's AlexNet PPV: mean(0.5721, 0.8303, 0.7771, 0.5157, 0.8199) = 0.7030).
"""

from __future__ import annotations

import numpy as np

from kerasmed.metrics._checks import (
    binary_labels,
    check_names,
    finite_scores,
    same_shape,
    warn_single_class,
)
from kerasmed.validation import check_finite_array


def _as_2d(name, value):
    value = np.asarray(value)
    if value.ndim == 1:
        value = value[:, None]
    if value.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (N, L) or (N,). Received: {name}.shape={value.shape}"
        )
    return value


def _binarize(y_pred, threshold, num_labels):
    if y_pred.dtype == bool:
        return y_pred.astype("int64")
    if np.issubdtype(y_pred.dtype, np.integer):
        if not np.isin(y_pred, (0, 1)).all():
            raise ValueError(
                "Integer `y_pred` must hold 0/1 predictions (pass float scores to threshold "
                f"them). Received: y_pred values {np.unique(y_pred)[:10].tolist()}"
            )
        return y_pred.astype("int64")
    y_pred = finite_scores(y_pred, "y_pred")
    threshold = check_finite_array(threshold, "threshold").astype("float64")
    if threshold.ndim > 1 or (threshold.ndim == 1 and threshold.shape[0] != num_labels):
        raise ValueError(
            f"`threshold` must be a number or one per label ({num_labels}). "
            f"Received: threshold={threshold.tolist()}"
        )
    return (y_pred > threshold).astype("int64")


def multilabel_report(y_true, y_pred, label_names=None, threshold=0.5, zero_division=0.0):
    """PPV, NPV and F-measure per label and on average, as in the paper's Tables 1 and 3.

    Args:
        y_true: ``(N, L)`` (or ``(N,)``) 0/1 ground truth.
        y_pred: ``(N, L)`` predictions: 0/1 integers or bools are used as they are; float
            scores (e.g. sigmoid outputs) are positive when ``score > threshold`` (the
            convention of ``keras.metrics.Precision``).
        label_names: the ``L`` label names used as keys; defaults to ``"0", "1", ...``.
        threshold: decision threshold for float scores, one number or one per label.
        zero_division: value of a ratio whose denominator is 0 -- PPV of a label never
            predicted positive, NPV of a label never predicted negative, F-measure of a label
            with no positive at all in truth or prediction. ``0.0`` by default (scikit-learn's
            ``zero_division=0``); ``numpy.nan`` leaves such a label out of ``"avg"``.

    Returns:
        ``{"ppv": {name: value, ..., "avg": value}, "npv": {...}, "f_measure": {...}}``
        with Python floats (the ``results.json`` per-label shape).

    Example:

    >>> y_true = [[1, 0], [1, 1], [0, 0], [0, 1]]
    >>> scores = [[0.9, 0.2], [0.4, 0.7], [0.1, 0.6], [0.3, 0.8]]
    >>> report = multilabel_report(y_true, scores, ["a", "b"])
    >>> report["ppv"], report["npv"]["a"]
    ({'a': 1.0, 'b': 0.6666666666666666, 'avg': 0.8333333333333333}, 0.6666666666666666)

    Reference: Santeramo et al., 2018, Tables 1 and 3.
    """
    y_true = _as_2d("y_true", y_true)
    y_pred = _as_2d("y_pred", y_pred)
    same_shape(("y_true", "y_pred"), (y_true, y_pred))
    truth = binary_labels(y_true)
    num_labels = y_true.shape[1]
    label_names = check_names(label_names, num_labels, "label_names")
    warn_single_class(truth, label_names)
    pred = _binarize(y_pred, threshold, num_labels).astype(bool)
    # Per-label confusion counts, as sklearn's multilabel_confusion_matrix (which would read an
    # (N, 1) input as a binary problem with two classes); the tests check against sklearn.
    tp = (truth & pred).sum(0).astype("float64")
    fp = (~truth & pred).sum(0).astype("float64")
    fn = (truth & ~pred).sum(0).astype("float64")
    tn = (~truth & ~pred).sum(0).astype("float64")

    def ratio(numerator, denominator):
        safe = np.where(denominator > 0, denominator, 1.0)
        return np.where(denominator > 0, numerator / safe, zero_division)

    values = {
        "ppv": ratio(tp, tp + fp),
        "npv": ratio(tn, tn + fn),
        "f_measure": ratio(2 * tp, 2 * tp + fp + fn),
    }
    report = {}
    for metric, per_label in values.items():
        row = {name: float(v) for name, v in zip(label_names, per_label)}
        row["avg"] = float(np.nanmean(per_label)) if not np.isnan(per_label).all() else float("nan")
        report[metric] = row
    return report
