"""Hostile inputs to every public metric of `kerasmed.metrics` (issue 13, groups 3 and 6).

Each case asserts the exception type and that the message names the argument, the index of the
first bad value and the value (``Received: y_score[1]=nan``), or, for a degenerate statistic,
the `DegenerateStatisticWarning` and the value that comes out. Where scikit-learn defines the
behaviour (it refuses NaN, empty and mismatched inputs; its ``zero_division=0`` values for a
single class), the test checks that we agree with it.

| group                                     | cases |
| ----------------------------------------- | ----- |
| non-finite scores and labels (NaN, inf)   | 15    |
| labels not 0/1, non-numeric inputs        | 6     |
| mismatched lengths                        | 6     |
| empty inputs                              | 5     |
| non-finite or fractional scalar arguments | 7     |
| degenerate statistics (warning + value)   | 8     |
| ordinary inputs stay silent               | 3     |
| total                                     | 50    |
"""

import warnings

import numpy as np
import pytest
import sklearn.metrics

from kerasmed.metrics import (
    DegenerateStatisticWarning,
    binary_confusion,
    binary_report,
    delong_test,
    dice_per_class,
    macro_f1,
    mean_pixel_accuracy,
    multilabel_report,
    operating_point,
    pixel_confusion_matrix,
    roc_auc_ci,
    roc_sensitivity_band,
    segmentation_report,
    sensitivity,
    specificity,
)

NAN, INF = float("nan"), float("inf")
Y4 = [0, 1, 0, 1]
S4 = [0.1, 0.7, 0.3, 0.4]


def _boot(y, s, **kwargs):
    return roc_auc_ci(y, s, **{"method": "bootstrap", "n_resamples": 50, **kwargs})


def _band(y, s, **kwargs):
    return roc_sensitivity_band(y, s, n_resamples=20, **{"specificities": [0.5], **kwargs})


NON_FINITE = [
    ("binary_confusion nan score", binary_confusion, ([0, 1, 1], [0.2, NAN, 0.7]), "y_pred[1]=nan"),
    ("sensitivity inf score", sensitivity, ([0, 1, 1], [0.2, 0.3, INF]), "y_pred[2]=inf"),
    ("specificity -inf score", specificity, ([0, 1], [-INF, 0.3]), "y_pred[0]=-inf"),
    ("macro_f1 nan label", macro_f1, ([0, NAN, 1], [0, 1, 1]), "y_true[1]=nan"),
    ("binary_report nan score", binary_report, ([1, 0], [0.4, NAN]), "y_pred[1]=nan"),
    (
        "multilabel nan score",
        multilabel_report,
        ([[0, 1], [1, 0]], [[0.1, 0.2], [NAN, 0.4]]),
        "y_pred[1, 0]=nan",
    ),
    (
        "multilabel nan label",
        multilabel_report,
        ([[0, NAN], [1, 0]], [[0, 1], [1, 0]]),
        "y_true[0, 1]=nan",
    ),
    ("roc_auc_ci nan score", roc_auc_ci, (Y4, [0.1, NAN, 0.3, 0.4]), "y_score[1]=nan"),
    ("roc_auc_ci bootstrap inf", _boot, (Y4, [0.1, 0.2, INF, 0.4]), "y_score[2]=inf"),
    ("roc_auc_ci nan label", roc_auc_ci, ([0, 1, NAN, 1], S4), "y_true[2]=nan"),
    ("delong_test inf in score_b", delong_test, (Y4, S4, [0.1, INF, 0.3, 0.4]), "score_b[1]=inf"),
    ("operating_point nan", operating_point, (Y4, [NAN, 0.2, 0.3, 0.4]), "y_score[0]=nan"),
    ("sensitivity band nan", _band, (Y4, [0.1, 0.2, 0.3, NAN]), "y_score[3]=nan"),
    (
        "dice nan class scores",
        dice_per_class,
        ([0, 1], [[0.2, NAN], [0.3, 0.7]], 2),
        "y_pred[0, 1]=nan",
    ),
]


@pytest.mark.parametrize("case, fn, args, received", NON_FINITE, ids=[c[0] for c in NON_FINITE])
def test_non_finite_values_are_refused_with_index_and_value(case, fn, args, received):
    with pytest.raises(ValueError, match="finite") as info:
        fn(*args)
    assert f"Received: {received}" in str(info.value)
    assert f"`{received.split('[')[0]}`" in str(info.value)  # the argument is named


def test_scikit_learn_also_refuses_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        sklearn.metrics.roc_auc_score(Y4, [0.1, NAN, 0.3, 0.4])
    with pytest.raises(ValueError, match="NaN"):
        sklearn.metrics.confusion_matrix([0, 1], [0, NAN])


NOT_BINARY = [
    ("binary label 2", binary_confusion, ([0, 2, 1], [0.2, 0.3, 0.7]), "y_true[1]=2"),
    (
        "multilabel label -1",
        multilabel_report,
        ([[0, 1], [-1, 0]], [[0, 1], [1, 0]]),
        "y_true[1, 0]=-1",
    ),
    ("roc label 2", roc_auc_ci, ([0, 1, 2, 1], S4), "y_true[2]=2"),
    ("delong label 0.5", delong_test, ([0, 0.5, 0, 1], S4, S4), "y_true[1]=0.5"),
    ("string labels", binary_report, (["a", "b"], [0.1, 0.2]), "dtype <U1"),
    ("string scores", roc_auc_ci, ([0, 1, 0, 1], ["a", "b", "c", "d"]), "dtype <U1"),
]


@pytest.mark.parametrize("case, fn, args, received", NOT_BINARY, ids=[c[0] for c in NOT_BINARY])
def test_labels_that_are_not_binary_or_not_numbers(case, fn, args, received):
    with pytest.raises(ValueError) as info:
        fn(*args)
    assert received in str(info.value)
    assert "0/1" in str(info.value) or "must hold numbers" in str(info.value)


MISMATCHED = [
    ("binary", binary_confusion, ([0, 1], [0.2, 0.3, 0.7]), "y_pred.shape=(3,)"),
    ("multilabel", multilabel_report, (np.zeros((3, 2)), np.zeros((2, 2))), "y_pred.shape=(2, 2)"),
    ("roc", roc_auc_ci, (Y4, [0.1, 0.2, 0.3]), "y_score.shape=(3,)"),
    ("delong", delong_test, (Y4, S4, [0.1, 0.2]), "score_b.shape=(2,)"),
    ("segmentation", pixel_confusion_matrix, ([0, 1], [0, 1, 1], 2), "y_pred.shape=(3,)"),
]


@pytest.mark.parametrize("case, fn, args, received", MISMATCHED, ids=[c[0] for c in MISMATCHED])
def test_mismatched_lengths_name_both_shapes(case, fn, args, received):
    with pytest.raises(ValueError) as info:
        fn(*args)
    assert received in str(info.value) and "y_true.shape" in str(info.value)


def test_scikit_learn_also_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="inconsistent"):
        sklearn.metrics.roc_auc_score([1, 0], [0.1, 0.2, 0.3])


EMPTY = [
    ("binary_confusion", binary_confusion, ([], [])),
    ("macro_f1", macro_f1, ([], [])),
    ("multilabel_report", multilabel_report, (np.zeros((0, 2)), np.zeros((0, 2)))),
]


@pytest.mark.parametrize("case, fn, args", EMPTY, ids=[c[0] for c in EMPTY])
def test_empty_inputs_are_refused_like_scikit_learn(case, fn, args):
    with pytest.raises(ValueError, match=r"`y_true` must not be empty. Received: y_true.shape"):
        fn(*args)
    with pytest.raises(ValueError, match="empty"):
        sklearn.metrics.recall_score([], [], zero_division=0)


def test_empty_roc_input_names_the_class_counts():
    with pytest.raises(ValueError, match="0 positive.*0 negative"):
        roc_auc_ci([], [])


def test_empty_segmentation_warns_and_returns_nan():
    with pytest.warns(DegenerateStatisticWarning, match="No pixel of `y_true` is labelled"):
        report = segmentation_report(np.zeros((0, 4), int), np.zeros((0, 4), int), 2)
    assert np.isnan(report["pixel_accuracy"]["avg"]) and np.isnan(report["accuracy"])


BAD_SCALARS = [
    ("threshold nan", binary_report, ([0, 1], [0.1, 0.9]), {"threshold": NAN}, "threshold=nan"),
    (
        "multilabel threshold nan",
        multilabel_report,
        ([[0], [1]], [[0.1], [0.9]]),
        {"threshold": NAN},
        "threshold=nan",
    ),
    ("confidence nan", roc_auc_ci, (Y4, S4), {"confidence": NAN}, "confidence=nan"),
    ("n_resamples fraction", _boot, (Y4, S4), {"n_resamples": 0.5}, "n_resamples=0.5"),
    ("specificities nan", _band, (Y4, S4), {"specificities": [0.5, NAN]}, "specificities[1]=nan"),
    ("num_classes nan", mean_pixel_accuracy, ([0, 1], [0, 1], NAN), {}, "num_classes=nan"),
    ("num_classes string", dice_per_class, ([0, 1], [0, 1], "2"), {}, "num_classes='2'"),
]


@pytest.mark.parametrize(
    "case, fn, args, kwargs, received", BAD_SCALARS, ids=[c[0] for c in BAD_SCALARS]
)
def test_bad_scalar_arguments_are_named(case, fn, args, kwargs, received):
    with pytest.raises(ValueError, match=f"Received: {received}".replace("[", r"\[")):
        fn(*args, **kwargs)


SINGLE_CLASS = [
    (
        "sensitivity, no positive",
        sensitivity,
        [0, 0, 0],
        [1, 0, 1],
        lambda t, p: sklearn.metrics.recall_score(t, p, labels=[0, 1], zero_division=0),
    ),
    (
        "specificity, no negative",
        specificity,
        [1, 1, 1],
        [1, 0, 1],
        lambda t, p: sklearn.metrics.recall_score(
            t, p, pos_label=0, labels=[0, 1], zero_division=0
        ),
    ),
    (
        "macro_f1, no negative",
        macro_f1,
        [1, 1],
        [1, 1],
        lambda t, p: sklearn.metrics.f1_score(
            t, p, average="macro", labels=[0, 1], zero_division=0
        ),
    ),
]


@pytest.mark.parametrize(
    "case, fn, y_true, y_pred, reference", SINGLE_CLASS, ids=[c[0] for c in SINGLE_CLASS]
)
def test_single_class_warns_and_matches_scikit_learn(case, fn, y_true, y_pred, reference):
    with pytest.warns(DegenerateStatisticWarning, match="single class"):
        value = fn(y_true, y_pred)
    assert value == pytest.approx(reference(y_true, y_pred))


def test_multilabel_single_class_names_the_labels():
    y_true = [[0, 1], [0, 0], [0, 1]]
    with pytest.warns(DegenerateStatisticWarning, match=r"labels \['a'\]"):
        report = multilabel_report(y_true, [[0, 1], [1, 0], [0, 1]], ["a", "b"])
    assert report["ppv"]["a"] == 0.0 and report["ppv"]["b"] == 1.0


ZERO_WIDTH = [
    ("delong, constant scores", roc_auc_ci, [0, 1, 0, 1], [0.5] * 4, 0.5, "every score is 0.5"),
    ("delong, separated", roc_auc_ci, [0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0, "perfectly"),
    ("bootstrap, constant", _boot, [0, 1, 0, 1, 0, 1], [0.3] * 6, 0.5, "every score is 0.3"),
]


@pytest.mark.parametrize("case, fn, y, s, auc, reason", ZERO_WIDTH, ids=[c[0] for c in ZERO_WIDTH])
def test_zero_width_auc_interval_is_never_silent(case, fn, y, s, auc, reason):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(y, s)
    messages = [str(w.message) for w in caught if w.category is DegenerateStatisticWarning]
    assert any("width zero" in m and reason in m for m in messages), messages
    assert result.auc == pytest.approx(sklearn.metrics.roc_auc_score(y, s)) == auc
    assert result.low == result.high


def test_constant_scores_warn_in_operating_point_band_and_delong_test():
    with pytest.warns(DegenerateStatisticWarning, match=r"`y_score` holds one value \(0.5\)"):
        point = operating_point(Y4, [0.5] * 4)
    assert (point.sensitivity, point.specificity) == (1.0, 0.0)
    with pytest.warns(DegenerateStatisticWarning, match="holds one value"):
        _band(Y4, [0.5] * 4)
    with pytest.warns(DegenerateStatisticWarning, match="DeLong variance of the AUC difference"):
        result = delong_test(Y4, [0.5] * 4, [0.5] * 4)
    assert (result.z, result.p_value) == (0.0, 1.0)


ORDINARY = [
    ("roc_auc_ci", lambda: roc_auc_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9])),
    ("binary_report", lambda: binary_report([1, 1, 0, 0, 1], [0.9, 0.2, 0.6, 0.1, 0.7])),
    ("segmentation_report", lambda: segmentation_report([0, 0, 1, 1], [0, 1, 1, 1], 2)),
]


@pytest.mark.parametrize("case, call", ORDINARY, ids=[c[0] for c in ORDINARY])
def test_ordinary_inputs_raise_no_degenerate_warning(case, call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateStatisticWarning)
        call()
