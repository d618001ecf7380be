"""kerasmed.metrics.binary: sensitivity, specificity, macro-F1, against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, recall_score

from kerasmed.metrics import (
    binary_confusion,
    binary_report,
    macro_f1,
    sensitivity,
    specificity,
)


def _sklearn(y_true, y_pred):
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {
        "sensitivity": recall_score(y_true, y_pred, pos_label=1, zero_division=0),
        "specificity": recall_score(y_true, y_pred, pos_label=0, zero_division=0),
        "macro_f1": f1_score(y_true, y_pred, average="macro", labels=[0, 1], zero_division=0),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


@pytest.mark.parametrize("seed", range(5))
def test_random_predictions_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    y_true = rng.integers(0, 2, n)
    scores = np.clip(0.3 * y_true + rng.uniform(0, 0.7, n), 0, 1)
    threshold = float(rng.uniform(0.2, 0.8))
    y_pred = (scores > threshold).astype(int)
    expected = _sklearn(y_true, y_pred)
    report = binary_report(y_true, scores, threshold=threshold)
    assert report == pytest.approx({**expected, "n": n})
    assert binary_report(y_true, y_pred) == report  # 0/1 predictions are used as they are
    assert sensitivity(y_true, scores, threshold) == pytest.approx(expected["sensitivity"])
    assert specificity(y_true, scores, threshold) == pytest.approx(expected["specificity"])
    assert macro_f1(y_true, scores, threshold) == pytest.approx(expected["macro_f1"])
    assert all(type(report[k]) is float for k in ("sensitivity", "specificity", "macro_f1"))
    assert all(type(report[k]) is int for k in ("tp", "fp", "tn", "fn", "n"))


def test_hand_computed_counts_and_strict_threshold():
    y_true = [1, 1, 0, 0, 1, 0]
    scores = [0.9, 0.5, 0.6, 0.1, 0.7, 0.5]  # 0.5 is not > 0.5: negative
    assert binary_confusion(y_true, scores) == {"tp": 2, "fp": 1, "tn": 2, "fn": 1}
    assert binary_confusion(y_true, scores, threshold=0.45) == {"tp": 3, "fp": 2, "tn": 1, "fn": 0}
    bools = np.array([True, False, True, False, True, False])
    assert binary_confusion(y_true, bools) == {"tp": 2, "fp": 1, "tn": 2, "fn": 1}
    # F1_1 = 4 / 6, F1_0 = 4 / 6
    assert macro_f1(y_true, scores) == pytest.approx(2 / 3)


def test_one_class_only_uses_zero_division_for_both_classes():
    y_true, y_pred = [1, 1, 1], [1, 1, 1]
    report = binary_report(y_true, y_pred)
    assert report["sensitivity"] == 1.0 and report["specificity"] == 0.0
    assert report["macro_f1"] == pytest.approx(0.5)  # F1_1 = 1, F1_0 = 0 (no negatives at all)
    assert report == pytest.approx({**_sklearn(y_true, y_pred), "n": 3})
    assert np.isnan(specificity(y_true, y_pred, zero_division=np.nan))


@pytest.mark.parametrize(
    "y_true, y_pred, threshold, match",
    [
        ([1, 0], [1], 0.5, "same length"),
        ([[1, 0]], [[1, 0]], 0.5, "1D"),
        ([2, 0], [1, 0], 0.5, "0/1 labels"),
        ([1, 0], [2, 0], 0.5, "0/1 predictions"),
        ([1, 0], [0.4, np.nan], 0.5, "finite"),
        ([1, 0], [0.4, 0.6], [0.5, 0.5], "threshold"),
    ],
)
def test_bad_inputs_are_named(y_true, y_pred, threshold, match):
    with pytest.raises(ValueError, match=match):
        binary_report(y_true, y_pred, threshold=threshold)
