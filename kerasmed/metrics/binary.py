"""Sensitivity, specificity and macro-F1 of a binary classifier (Table 1 of paper 003).

From the confusion counts (TP, FP, TN, FN) of the positive class 1:

- sensitivity (recall of class 1, SE) ``= TP / (TP + FN)``;
- specificity (recall of class 0, SP) ``= TN / (TN + FP)``;
- macro-F1 ``= (F1_1 + F1_0) / 2`` with ``F1_1 = 2 TP / (2 TP + FP + FN)`` and
  ``F1_0 = 2 TN / (2 TN + FN + FP)``, the COV19-CT-DB challenge's ranking metric
  (scikit-learn's ``f1_score(average="macro", labels=[0, 1])``: both classes always count,
  also when one of them is absent from a small set).

Predictions are 0/1 (ints or bools, used as they are) or float scores, positive when
``score > threshold`` (the convention of `kerasmed.metrics.multilabel_report` and
``keras.metrics.Precision``). A ratio whose denominator is 0 takes `zero_division` (0.0, as
scikit-learn's ``zero_division=0``); when that is because `y_true` holds a single class, a
`kerasmed.metrics.DegenerateStatisticWarning` says so. Empty inputs, NaN/inf scores and labels
other than 0/1 are refused with the index and value of the first bad entry.
"""

from __future__ import annotations

import numpy as np

from kerasmed.metrics._checks import binary_labels, same_shape, warn_single_class
from kerasmed.metrics.classification import _binarize

__all__ = ["binary_confusion", "sensitivity", "specificity", "macro_f1", "binary_report"]


def _labels(y_true, y_pred, threshold):
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    if truth.ndim != 1:
        raise ValueError(f"`y_true` must be a 1D array. Received: y_true.shape={truth.shape}")
    same_shape(("y_true", "y_pred"), (truth, pred), "length")
    same_shape(("y_true", "y_pred"), (truth, pred))
    if np.ndim(threshold) != 0:
        raise ValueError(f"`threshold` must be one number. Received: threshold={threshold!r}")
    return binary_labels(truth), _binarize(pred, threshold, 1).astype(bool)


def _ratio(numerator, denominator, zero_division):
    return float(numerator / denominator) if denominator > 0 else float(zero_division)


def binary_confusion(y_true, y_pred, threshold=0.5):
    """The confusion counts of a binary classifier.

    Args:
        y_true: ``(N,)`` 0/1 labels.
        y_pred: ``(N,)`` 0/1 predictions, or float scores (positive when ``> threshold``).
        threshold: decision threshold for float scores.

    Returns:
        ``{"tp": int, "fp": int, "tn": int, "fn": int}``.

    Example:

    >>> binary_confusion([1, 1, 0, 0, 1], [0.9, 0.2, 0.6, 0.1, 0.7])
    {'tp': 2, 'fp': 1, 'tn': 1, 'fn': 1}
    """
    truth, pred = _labels(y_true, y_pred, threshold)
    return {
        "tp": int(np.count_nonzero(truth & pred)),
        "fp": int(np.count_nonzero(~truth & pred)),
        "tn": int(np.count_nonzero(~truth & ~pred)),
        "fn": int(np.count_nonzero(truth & ~pred)),
    }


def sensitivity(y_true, y_pred, threshold=0.5, zero_division=0.0):
    """``TP / (TP + FN)``: the fraction of positives found (recall of class 1).

    Example:

    >>> sensitivity([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    0.6666666666666666
    """
    return binary_report(y_true, y_pred, threshold, zero_division)["sensitivity"]


def specificity(y_true, y_pred, threshold=0.5, zero_division=0.0):
    """``TN / (TN + FP)``: the fraction of negatives recognized (recall of class 0).

    Example:

    >>> specificity([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    0.5
    """
    return binary_report(y_true, y_pred, threshold, zero_division)["specificity"]


def macro_f1(y_true, y_pred, threshold=0.5, zero_division=0.0):
    """The mean of the F1 scores of class 1 and class 0 (the challenge's macro-F1).

    Example:

    >>> round(macro_f1([1, 1, 0, 0, 1], [1, 0, 1, 0, 1]), 4)
    0.5833
    """
    return binary_report(y_true, y_pred, threshold, zero_division)["macro_f1"]


def binary_report(y_true, y_pred, threshold=0.5, zero_division=0.0):
    """Sensitivity, specificity, macro-F1 and the counts, as one ``results.json`` entry.

    Args:
        y_true: ``(N,)`` 0/1 labels.
        y_pred: ``(N,)`` 0/1 predictions, or float scores (positive when ``> threshold``).
        threshold: decision threshold for float scores (the paper's 0.5).
        zero_division: value of a ratio whose denominator is 0.

    Returns:
        ``{"sensitivity", "specificity", "macro_f1"}`` as Python floats, plus ``"tp", "fp",
        "tn", "fn"`` and ``"n"`` as ints.

    Example:

    >>> report = binary_report([1, 1, 0, 0, 1], [0.9, 0.2, 0.6, 0.1, 0.7])
    >>> report["sensitivity"], report["specificity"], report["n"]
    (0.6666666666666666, 0.5, 5)

    Reference: Hsu et al., *Spatiotemporal feature learning based on two-step LSTM and
    Transformer for CT scans*, Table 1 (SE, SP, macro-F1).
    """
    c = binary_confusion(y_true, y_pred, threshold)
    if c["tp"] + c["fn"] == 0 or c["tn"] + c["fp"] == 0:
        warn_single_class(np.asarray(y_true, dtype=bool))
    f1_positive = _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"], zero_division)
    f1_negative = _ratio(2 * c["tn"], 2 * c["tn"] + c["fn"] + c["fp"], zero_division)
    return {
        "sensitivity": _ratio(c["tp"], c["tp"] + c["fn"], zero_division),
        "specificity": _ratio(c["tn"], c["tn"] + c["fp"], zero_division),
        "macro_f1": (f1_positive + f1_negative) / 2.0,
        **c,
        "n": sum(c.values()),
    }
