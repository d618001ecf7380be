import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score

from kerasmed.metrics.classification import multilabel_report


def test_hand_computed_two_labels():
    y_true = np.array([[1, 0], [1, 1], [0, 0], [0, 1], [1, 0], [0, 0]])
    y_pred = np.array([[1, 0], [0, 1], [0, 1], [1, 1], [1, 0], [0, 0]])
    # label "a": TP=2 (rows 0, 4), FP=1 (row 3), FN=1 (row 1), TN=2 (rows 2, 5)
    # label "b": TP=2 (rows 1, 3), FP=1 (row 2), FN=0, TN=3 (rows 0, 4, 5)
    report = multilabel_report(y_true, y_pred, ["a", "b"])
    assert report["ppv"] == pytest.approx({"a": 2 / 3, "b": 2 / 3, "avg": 2 / 3})
    assert report["npv"] == pytest.approx({"a": 2 / 3, "b": 1.0, "avg": (2 / 3 + 1) / 2})
    f_a, f_b = 4 / (4 + 1 + 1), 4 / (4 + 1 + 0)
    assert report["f_measure"] == pytest.approx({"a": f_a, "b": f_b, "avg": (f_a + f_b) / 2})
    assert all(isinstance(v, float) for row in report.values() for v in row.values())


def test_scores_are_thresholded_strictly_and_per_label():
    y_true = np.array([[1, 1], [0, 1], [1, 0]])
    scores = np.array([[0.5, 0.3], [0.7, 0.35], [0.9, 0.1]])
    # threshold 0.5 (score > 0.5): a -> [0, 1, 1], b -> [0, 0, 0]
    report = multilabel_report(y_true, scores, ["a", "b"])
    assert report["ppv"]["a"] == pytest.approx(0.5)  # TP=1 (row 2), FP=1 (row 1)
    assert report["ppv"]["b"] == 0.0  # never predicted positive: zero_division
    assert report["npv"]["b"] == pytest.approx(1 / 3)  # TN=1 (row 2), FN=2
    # per-label thresholds: a > 0.8 -> [0, 0, 1]; b > 0.2 -> [1, 1, 0]
    report = multilabel_report(y_true, scores, ["a", "b"], threshold=[0.8, 0.2])
    assert report["ppv"] == pytest.approx({"a": 1.0, "b": 1.0, "avg": 1.0})
    assert report["npv"]["a"] == pytest.approx(0.5)  # TN=1 (row 1), FN=1 (row 0)
    assert report["f_measure"]["b"] == pytest.approx(1.0)


def test_zero_division_nan_is_left_out_of_the_average():
    y_true = np.array([[1, 0], [0, 0]])
    y_pred = np.array([[1, 0], [0, 0]])
    report = multilabel_report(y_true, y_pred, zero_division=np.nan)
    assert set(report["ppv"]) == {"0", "1", "avg"}
    assert np.isnan(report["ppv"]["1"]) and np.isnan(report["f_measure"]["1"])
    assert report["ppv"]["avg"] == 1.0 and report["npv"]["1"] == 1.0
    assert multilabel_report(y_true, y_pred)["ppv"] == {"0": 1.0, "1": 0.0, "avg": 0.5}


def test_matches_scikit_learn_on_random_data():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, size=(200, 4))
    scores = np.clip(y_true * 0.3 + rng.random((200, 4)) * 0.7, 0, 1)
    report = multilabel_report(y_true, scores, list("wxyz"))
    y_pred = (scores > 0.5).astype(int)
    ppv = precision_score(y_true, y_pred, average=None, zero_division=0)
    npv = precision_score(1 - y_true, 1 - y_pred, average=None, zero_division=0)
    f1 = f1_score(y_true, y_pred, average=None, zero_division=0)
    for metric, expected in (("ppv", ppv), ("npv", npv), ("f_measure", f1)):
        np.testing.assert_allclose([report[metric][k] for k in "wxyz"], expected)
        np.testing.assert_allclose(report[metric]["avg"], expected.mean())


def test_bool_and_one_dimensional_inputs():
    report = multilabel_report(np.array([1, 0, 1, 1]), np.array([True, False, False, True]))
    assert report["ppv"]["0"] == 1.0 and report["npv"]["0"] == 0.5
    assert report["f_measure"]["0"] == pytest.approx(0.8)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="same shape"):
        multilabel_report(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="label_names"):
        multilabel_report(np.zeros((3, 2)), np.zeros((3, 2)), ["a"])
    with pytest.raises(ValueError, match="0/1"):
        multilabel_report(np.full((3, 2), 2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="0/1 predictions"):
        multilabel_report(np.zeros((3, 2)), np.full((3, 2), 3))
    with pytest.raises(ValueError, match="threshold"):
        multilabel_report(np.zeros((3, 2)), np.zeros((3, 2)) + 0.5, threshold=[0.1, 0.2, 0.3])
