"""Mean pixel accuracy and Dice per class: hand-worked examples, scikit-learn equality,
ignored pixels, probabilities in, absent classes, the report."""

import numpy as np
import pytest
import sklearn.metrics

from kerasmed.metrics import (
    dice_per_class,
    mean_pixel_accuracy,
    pixel_confusion_matrix,
    segmentation_report,
)

# 2 rows of 4 pixels, 3 classes, one unlabelled pixel (-1) predicted as class 1.
Y_TRUE = np.array([[0, 0, 1, 1], [2, 2, 2, -1]])
Y_PRED = np.array([[0, 1, 1, 1], [2, 0, 2, 1]])
# By hand (the -1 pixel is left out):
#   class 0: 2 true pixels, 1 found; 1 false positive (true 2 -> 0)  PA 1/2, Dice 2/(2+1+1)
#   class 1: 2 true pixels, 2 found; 1 false positive (true 0 -> 1)  PA 1,   Dice 4/(4+1+0)
#   class 2: 3 true pixels, 2 found; 0 false positives               PA 2/3, Dice 4/(4+0+1)
PA = [0.5, 1.0, 2 / 3]
DICE = [0.5, 0.8, 0.8]


def test_confusion_matrix_hand_worked():
    expected = [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    np.testing.assert_array_equal(pixel_confusion_matrix(Y_TRUE, Y_PRED, 3), expected)
    # ignore_label=None would count the -1 pixel, which is not a class
    with pytest.raises(ValueError, match="labels must be in \\[0, 3\\)"):
        pixel_confusion_matrix(Y_TRUE, Y_PRED, 3, ignore_label=None)


def test_mean_pixel_accuracy_hand_worked():
    result = mean_pixel_accuracy(Y_TRUE, Y_PRED, num_classes=3)
    np.testing.assert_allclose(result.per_class, PA)
    assert result.mean == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)  # 0.7222
    mean, per_class = result  # a named tuple
    assert mean == result.mean


def test_dice_hand_worked():
    np.testing.assert_allclose(dice_per_class(Y_TRUE, Y_PRED, num_classes=3), DICE)


def test_probabilities_are_argmaxed(rng):
    scores = np.eye(3)[Y_PRED] + rng.uniform(0, 0.4, size=Y_PRED.shape + (3,))
    scores /= scores.sum(-1, keepdims=True)
    np.testing.assert_allclose(mean_pixel_accuracy(Y_TRUE, scores, 3).per_class, PA)
    np.testing.assert_allclose(dice_per_class(Y_TRUE, scores, 3), DICE)
    with pytest.raises(ValueError, match="num_classes=4"):
        mean_pixel_accuracy(Y_TRUE, scores, 4)


def test_absent_classes():
    # class 3 is neither true nor predicted: NaN in both, left out of the means
    result = mean_pixel_accuracy(Y_TRUE, Y_PRED, num_classes=4)
    np.testing.assert_allclose(result.per_class, PA + [np.nan])
    assert result.mean == pytest.approx(np.mean(PA))
    np.testing.assert_allclose(dice_per_class(Y_TRUE, Y_PRED, 4), DICE + [np.nan])
    # class 3 predicted but absent from the truth: PA undefined, Dice 0
    y_pred = Y_PRED.copy()
    y_pred[0, 0] = 3
    assert np.isnan(mean_pixel_accuracy(Y_TRUE, y_pred, 4).per_class[3])
    assert dice_per_class(Y_TRUE, y_pred, 4)[3] == 0.0
    # nothing labelled
    assert np.isnan(mean_pixel_accuracy(-np.ones((2, 2)), np.zeros((2, 2)), 2).mean)


def test_equal_sklearn_on_volumes(rng):
    y_true = rng.integers(0, 4, size=(3, 5, 8, 8))  # (N, T, H, W)
    y_pred = np.where(
        rng.uniform(size=y_true.shape) < 0.6, y_true, rng.integers(0, 4, y_true.shape)
    )
    y_true[:, 2] = -1
    keep = y_true >= 0
    recall = sklearn.metrics.recall_score(y_true[keep], y_pred[keep], average=None)
    f1 = sklearn.metrics.f1_score(y_true[keep], y_pred[keep], average=None)
    result = mean_pixel_accuracy(y_true, y_pred, 4)
    np.testing.assert_allclose(result.per_class, recall)
    assert result.mean == pytest.approx(
        sklearn.metrics.balanced_accuracy_score(y_true[keep], y_pred[keep])
    )
    np.testing.assert_allclose(dice_per_class(y_true, y_pred, 4), f1)
    # a perfect prediction
    assert mean_pixel_accuracy(y_true, np.maximum(y_true, 0), 4).mean == 1.0


def test_segmentation_report():
    report = segmentation_report(Y_TRUE, Y_PRED, 3, class_names=["bg", "csf", "gm"])
    assert report["pixel_accuracy"] == pytest.approx(
        {"bg": 0.5, "csf": 1.0, "gm": 2 / 3, "avg": (0.5 + 1.0 + 2 / 3) / 3}
    )
    assert report["dice"] == pytest.approx({"bg": 0.5, "csf": 0.8, "gm": 0.8, "avg": 0.7})
    assert report["accuracy"] == pytest.approx(5 / 7)
    assert report["support"] == {"bg": 2, "csf": 2, "gm": 3}
    assert all(type(v) is float for v in report["dice"].values())
    default = segmentation_report(Y_TRUE, Y_PRED, 3)
    assert list(default["dice"]) == ["0", "1", "2", "avg"]
    with pytest.raises(ValueError, match="class_names"):
        segmentation_report(Y_TRUE, Y_PRED, 3, class_names=["a", "b"])


def test_invalid_inputs():
    with pytest.raises(ValueError, match="y_pred.shape"):
        mean_pixel_accuracy(Y_TRUE, Y_PRED[:1], 3)
    with pytest.raises(ValueError, match="y_pred values \\[3\\]"):
        dice_per_class(Y_TRUE, np.full_like(Y_PRED, 3), 3)
    with pytest.raises(ValueError, match="integer labels"):
        mean_pixel_accuracy(Y_TRUE + 0.5, Y_PRED, 3)
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        mean_pixel_accuracy(Y_TRUE, Y_PRED, 0)
