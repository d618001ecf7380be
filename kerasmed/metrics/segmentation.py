"""Per-pixel segmentation metrics: mean pixel accuracy (mPA) and Dice, per class (paper 002).

Paper 002 evaluates with the mean pixel accuracy: "a ratio between the amount of properly
classified pixels and the total number of them in a per-class basis and then averaged over the
total number of classes", i.e. for each class ``c`` the pixel accuracy (recall)
``PA_c = TP_c / #pixels of class c in the ground truth``, and ``mPA = mean_c PA_c``. A class
absent from the ground truth has no ``PA_c`` (NaN) and is left out of the mean. The background
class is a class like the others (as in Long et al.'s FCN "mean accuracy"); for a tissue-only
mean, average ``per_class[1:]``.

Dice of class ``c`` is ``2 TP_c / (2 TP_c + FP_c + FN_c)``; it is NaN when ``c`` is in neither
the ground truth nor the prediction, and left out of the mean.

All functions take NumPy arrays of any shape (``(H, W)``, ``(N, T, H, W)`` ...), pool all their
pixels, skip pixels whose true label is `ignore_label`, and return Python numbers / NumPy arrays.
``y_pred`` may be integer labels (same shape as ``y_true``) or class scores/probabilities with
one more, last, axis of size ``num_classes`` (then its argmax is the predicted label).
NaN/inf labels or scores are refused with the index and value of the first; when no pixel is
labelled (an empty input, or all `ignore_label`) the NaN results come with a
`kerasmed.metrics.DegenerateStatisticWarning`.
"""

from __future__ import annotations

import collections

import numpy as np

from kerasmed.metrics._checks import check_names, finite_scores, warn_degenerate
from kerasmed.validation import check_finite_array, check_whole_number

__all__ = [
    "PixelAccuracy",
    "pixel_confusion_matrix",
    "mean_pixel_accuracy",
    "dice_per_class",
    "segmentation_report",
]

PixelAccuracy = collections.namedtuple("PixelAccuracy", ["mean", "per_class"])


def _labels(name, values, num_classes, ignore_label=None):
    values = check_finite_array(values, name)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        if values.dtype == bool or not np.array_equal(values, np.round(values)):
            raise ValueError(
                f"`{name}` must hold integer labels. Received: {name}.dtype={values.dtype}"
            )
    values = values.astype("int64")
    bad = (values < 0) | (values >= num_classes)
    if ignore_label is not None:
        bad &= values != ignore_label
    if bad.any():
        raise ValueError(
            f"`{name}` labels must be in [0, {num_classes})"
            + ("" if ignore_label is None else f" or equal to ignore_label={ignore_label}")
            + f". Received: {name} values {np.unique(values[bad])[:10].tolist()}"
        )
    return values


def pixel_confusion_matrix(y_true, y_pred, num_classes, ignore_label=-1):
    """Confusion matrix of per-pixel labels, ``[true class, predicted class]`` pixel counts.

    Args:
        y_true: integer labels of any shape, in ``[0, num_classes)`` or `ignore_label`.
        y_pred: integer labels of the same shape, or scores with an extra last axis of size
            `num_classes` (argmax is taken).
        num_classes: number of classes ``K``.
        ignore_label: true label of pixels left out; `None` keeps every pixel.

    Returns:
        A ``(K, K)`` int64 array.

    Example:

    >>> pixel_confusion_matrix([0, 0, 1, 1, -1], [0, 1, 1, 1, 0], num_classes=2).tolist()
    [[1, 1], [0, 2]]
    """
    num_classes = check_whole_number(num_classes, "num_classes")
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == y_true.ndim + 1:
        y_pred = finite_scores(y_pred, "y_pred")
        if y_pred.shape[-1] != num_classes:
            raise ValueError(
                f"Scores in `y_pred` must have a last axis of size num_classes={num_classes}. "
                f"Received: y_pred.shape={y_pred.shape}"
            )
        y_pred = np.argmax(y_pred, axis=-1)
    if y_pred.shape != y_true.shape:
        raise ValueError(
            "`y_pred` must have the shape of `y_true` (labels) or one more axis (scores). "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    y_true = _labels("y_true", y_true, num_classes, ignore_label).ravel()
    y_pred = _labels("y_pred", y_pred, num_classes).ravel()
    if ignore_label is not None:
        keep = y_true != ignore_label
        y_true, y_pred = y_true[keep], y_pred[keep]
    if not y_true.size:
        warn_degenerate(
            "No pixel of `y_true` is labelled (an empty input, or every pixel equal to "
            f"ignore_label={ignore_label}): every pixel accuracy and Dice is NaN."
        )
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype("int64")


def _pixel_accuracy(confusion):
    support = confusion.sum(axis=1).astype("float64")
    tp = np.diag(confusion).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, tp / np.where(support > 0, support, 1.0), np.nan)


def _dice(confusion):
    tp = np.diag(confusion).astype("float64")
    denominator = confusion.sum(axis=1) + confusion.sum(axis=0)  # 2 TP + FN + FP
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), np.nan)


def _nanmean(values):
    return float(np.nanmean(values)) if not np.isnan(values).all() else float("nan")


def mean_pixel_accuracy(y_true, y_pred, num_classes, ignore_label=-1):
    """Mean pixel accuracy (mPA) over the classes present in `y_true`, and the per-class values.

    ``PA_c = TP_c / #pixels of class c`` (the recall of class ``c``), pooled over all pixels of
    the arrays; ``mPA`` is the mean of ``PA_c`` over the classes with at least one (labelled)
    pixel in `y_true`. Classes absent from `y_true` have ``PA_c = NaN``.

    Args:
        y_true: integer labels of any shape, in ``[0, num_classes)`` or `ignore_label`.
        y_pred: integer labels of the same shape, or scores/probabilities with an extra last
            axis of size `num_classes` (argmax is taken).
        num_classes: number of classes ``K`` (background included).
        ignore_label: true label of unannotated pixels, left out; `None` keeps every pixel.

    Returns:
        A `PixelAccuracy` named tuple ``(mean, per_class)``: ``mean`` a Python float (NaN if no
        pixel is labelled), ``per_class`` a ``(K,)`` float64 array.

    Example:

    >>> y_true = [[0, 0, 1], [1, 2, -1]]
    >>> y_pred = [[0, 1, 1], [1, 2, 2]]
    >>> mpa = mean_pixel_accuracy(y_true, y_pred, num_classes=4)
    >>> mpa.mean, mpa.per_class.tolist()
    (0.8333333333333334, [0.5, 1.0, 1.0, nan])

    Reference: Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical
    image segmentation", ISBI 2018, Section 3.
    """
    per_class = _pixel_accuracy(pixel_confusion_matrix(y_true, y_pred, num_classes, ignore_label))
    return PixelAccuracy(_nanmean(per_class), per_class)


def dice_per_class(y_true, y_pred, num_classes, ignore_label=-1):
    """Dice coefficient ``2 TP_c / (2 TP_c + FP_c + FN_c)`` of every class, over all pixels.

    Args:
        y_true: integer labels of any shape, in ``[0, num_classes)`` or `ignore_label`.
        y_pred: integer labels of the same shape, or scores with an extra last axis.
        num_classes: number of classes ``K``.
        ignore_label: true label of unannotated pixels, left out (also from the prediction's
            false positives); `None` keeps every pixel.

    Returns:
        A ``(K,)`` float64 array; NaN for a class in neither `y_true` nor `y_pred`, 0 for a class
        predicted but absent from the truth (or present but never predicted).

    Example:

    >>> dice_per_class([0, 0, 1, 1], [0, 1, 1, 1], num_classes=3).tolist()
    [0.6666666666666666, 0.8, nan]
    """
    return _dice(pixel_confusion_matrix(y_true, y_pred, num_classes, ignore_label))


def segmentation_report(y_true, y_pred, num_classes, class_names=None, ignore_label=-1):
    """Pixel accuracy and Dice per class and on average, in the ``results.json`` shape.

    Args:
        y_true: integer labels of any shape, in ``[0, num_classes)`` or `ignore_label`.
        y_pred: integer labels of the same shape, or scores with an extra last axis.
        num_classes: number of classes ``K``.
        class_names: the ``K`` names used as keys; defaults to ``"0", "1", ...``.
        ignore_label: true label of unannotated pixels, left out; `None` keeps every pixel.

    Returns:
        ``{"pixel_accuracy": {name: PA_c, ..., "avg": mPA}, "dice": {name: Dice_c, ...,
        "avg": mean Dice}, "accuracy": overall pixel accuracy, "support": {name: #true pixels}}``
        with Python numbers. ``"avg"`` is the mean over the classes whose value is not NaN
        (see `mean_pixel_accuracy` and `dice_per_class`), like ``multilabel_report``'s ``"avg"``.

    Example:

    >>> report = segmentation_report([0, 0, 1, 1], [0, 1, 1, 1], 2, class_names=["bg", "wm"])
    >>> report["pixel_accuracy"], report["dice"]["wm"]
    ({'bg': 0.5, 'wm': 1.0, 'avg': 0.75}, 0.8)

    Reference: Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical
    image segmentation", ISBI 2018, Section 3 (mPA).
    """
    num_classes = check_whole_number(num_classes, "num_classes")
    class_names = check_names(class_names, num_classes, "class_names")
    confusion = pixel_confusion_matrix(y_true, y_pred, num_classes, ignore_label)
    report = {}
    for metric, per_class in (
        ("pixel_accuracy", _pixel_accuracy(confusion)),
        ("dice", _dice(confusion)),
    ):
        row = {name: float(v) for name, v in zip(class_names, per_class)}
        row["avg"] = _nanmean(per_class)
        report[metric] = row
    total = confusion.sum()
    report["accuracy"] = float(np.trace(confusion) / total) if total else float("nan")
    report["support"] = {name: int(n) for name, n in zip(class_names, confusion.sum(axis=1))}
    return report
