import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kerasmed.metrics.roc import (
    delong_test,
    operating_point,
    roc_auc_ci,
    roc_sensitivity_band,
)

Z95 = 1.959963984540054  # standard normal 97.5% quantile


def psi(x, y):
    """Mann-Whitney kernel."""
    return 1.0 if x > y else 0.5 if x == y else 0.0


def textbook_delong(y, scores):
    """DeLong et al. (1988) with plain O(mn) loops: AUCs and their covariance matrix."""
    pos = [i for i in range(len(y)) if y[i] == 1]
    neg = [j for j in range(len(y)) if y[j] == 0]
    m, n = len(pos), len(neg)
    v10 = [[sum(psi(s[i], s[j]) for j in neg) / n for i in pos] for s in scores]
    v01 = [[sum(psi(s[i], s[j]) for i in pos) / m for j in neg] for s in scores]
    aucs = [sum(v) / m for v in v10]
    k = len(scores)
    cov = np.zeros((k, k))
    for r in range(k):
        for q in range(k):
            s10 = sum((v10[r][i] - aucs[r]) * (v10[q][i] - aucs[q]) for i in range(m)) / (m - 1)
            s01 = sum((v01[r][j] - aucs[r]) * (v01[q][j] - aucs[q]) for j in range(n)) / (n - 1)
            cov[r, q] = s10 / m + s01 / n
    return aucs, cov


def noisy_scores(rng, size, noise=1.0, decimals=None):
    y = rng.integers(0, 2, size)
    s = y + rng.normal(0, noise, size)
    return y, (np.round(s, decimals) if decimals is not None else s)


def test_tiny_example_by_hand():
    # positives 0.35, 0.8, 0.9; negatives 0.1, 0.4, 0.2.
    # V10 = (2/3, 1, 1), V01 = (1, 2/3, 1), AUC = 8/9, S10 = S01 = 1/27, var = 2/81.
    y = [0, 0, 1, 1, 0, 1]
    score = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9]
    result = roc_auc_ci(y, score)
    se = math.sqrt(2.0) / 9.0
    assert result.auc == pytest.approx(8 / 9)
    assert result.low == pytest.approx(8 / 9 - Z95 * se)
    assert result.high == 1.0  # 8/9 + 0.308 clipped to 1
    auc, low, high = result  # a plain (auc, low, high) tuple
    assert low < auc <= high


def test_hanley_mcneil_1982_rating_example():
    # Hanley & McNeil (1982), Table 1: 5-point ratings of 58 normal and 51 abnormal CT images;
    # published area 0.893 (their approximate SE 0.032).
    normal, abnormal = [33, 6, 6, 11, 2], [3, 2, 2, 11, 33]
    y = np.r_[np.zeros(58), np.ones(51)]
    ratings = np.r_[np.repeat(np.arange(1, 6), normal), np.repeat(np.arange(1, 6), abnormal)]
    result = roc_auc_ci(y, ratings)
    assert round(result.auc, 3) == 0.893
    assert (result.high - result.low) / (2 * Z95) == pytest.approx(0.032, abs=0.003)


@pytest.mark.parametrize("decimals", [None, 1])  # continuous scores, and many ties
def test_auc_and_variance_equal_sklearn_and_textbook(decimals):
    rng = np.random.default_rng(3)
    y, s = noisy_scores(rng, 70, noise=1.5, decimals=decimals)
    (auc,), cov = textbook_delong(y, [s])
    result = roc_auc_ci(y, s, confidence=0.9)
    assert result.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert result.auc == pytest.approx(auc, abs=1e-12)
    z90 = 1.6448536269514722
    assert result.high - result.auc == pytest.approx(z90 * math.sqrt(cov[0, 0]), rel=1e-9)
    assert result.auc - result.low == pytest.approx(z90 * math.sqrt(cov[0, 0]), rel=1e-9)


def test_delong_test_equals_textbook_covariance():
    rng = np.random.default_rng(4)
    y, a = noisy_scores(rng, 60, noise=1.0, decimals=2)
    b = np.round(0.5 * a + rng.normal(0, 1.0, 60), 1)  # correlated with a, with ties
    aucs, cov = textbook_delong(y, [a, b])
    result = delong_test(y, a, b)
    np.testing.assert_allclose(result.covariance, cov, rtol=1e-9)
    assert result.auc_a == pytest.approx(aucs[0]) and result.auc_b == pytest.approx(aucs[1])
    z = (aucs[0] - aucs[1]) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert result.z == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-9)
    swapped = delong_test(y, b, a)
    assert swapped.z == pytest.approx(-result.z) and swapped.p_value == pytest.approx(
        result.p_value
    )


def test_delong_test_by_hand_and_identical_scores():
    # a: AUC 8/9 with var 2/81; b separates perfectly (AUC 1, var 0, cov 0): z = -1/sqrt(2).
    y = [0, 0, 0, 1, 1, 1]
    a = [0.1, 0.2, 0.6, 0.4, 0.8, 0.9]
    result = delong_test(y, a, [0.3, 0.1, 0.2, 0.5, 0.4, 0.7])
    assert result.z == pytest.approx(-1 / math.sqrt(2))
    assert result.p_value == pytest.approx(math.erfc(0.5))
    same = delong_test(y, a, np.asarray(a) * 3 + 1)  # same ranking
    assert same.z == 0.0 and same.p_value == 1.0


def test_bootstrap_interval():
    rng = np.random.default_rng(5)
    y, s = noisy_scores(rng, 1500, noise=1.2)
    delong = roc_auc_ci(y, s)
    boot = roc_auc_ci(y, s, method="bootstrap", n_resamples=1000, seed=1)
    assert boot.auc == delong.auc
    assert boot.low < boot.auc < boot.high
    assert boot.low == pytest.approx(delong.low, abs=0.006)
    assert boot.high == pytest.approx(delong.high, abs=0.006)
    small = roc_auc_ci(y, s, method="bootstrap", n_resamples=50, seed=1)
    assert roc_auc_ci(y, s, method="bootstrap", n_resamples=50, seed=1) == small
    assert roc_auc_ci(y, s, method="bootstrap", n_resamples=50, seed=2) != small


def test_bootstrap_discards_single_class_resamples():
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.5, 0.3, 0.2, 0.9, 0.4]
    with pytest.warns(UserWarning, match="held a single class"):
        result = roc_auc_ci(y, s, method="bootstrap", n_resamples=500, seed=0)
    assert result.auc == pytest.approx(7 / 9)
    assert 0.0 <= result.low < result.auc < result.high <= 1.0


def test_validation_messages():
    with pytest.raises(ValueError, match="3 positive.*0 negative"):
        roc_auc_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="1 positive.*2 negative"):
        roc_auc_ci([0, 1, 0], [0.1, 0.2, 0.3])  # DeLong needs two of each
    with pytest.raises(ValueError, match="binary"):
        roc_auc_ci([0, 1, 2, 1], [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="same length"):
        roc_auc_ci([0, 1, 0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc_ci([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.4])
    with pytest.raises(ValueError, match="Received: confidence=95"):
        roc_auc_ci([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], confidence=95)
    with pytest.raises(ValueError, match="Received: method='wald'"):
        roc_auc_ci([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], method="wald")
    with pytest.raises(ValueError, match="same length"):
        delong_test([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2])


def test_operating_point_against_brute_force():
    rng = np.random.default_rng(6)
    y, s = noisy_scores(rng, 200, noise=1.0, decimals=1)
    for target in (0.98, 0.9, 0.5, 1.0):
        best = None
        for t in sorted(set(s), reverse=True):
            predicted = s >= t
            sensitivity = predicted[y == 1].mean()
            if sensitivity >= target:
                best = (t, sensitivity, (~predicted[y == 0]).mean(), (predicted == y).mean())
                break
        point = operating_point(y, s, target)
        np.testing.assert_allclose(point, best, rtol=1e-12)
    with pytest.raises(ValueError, match="Received: target_sensitivity=0"):
        operating_point(y, s, 0)


def test_sensitivity_band():
    rng = np.random.default_rng(7)
    y, s = noisy_scores(rng, 120, noise=1.0)
    negatives = np.sort(s[y == 0])[::-1]
    positives = s[y == 1]
    n = negatives.size
    ks = np.arange(n)
    specificities = 1.0 - ks / n
    band = roc_sensitivity_band(y, s, specificities, n_resamples=300, seed=0)
    # At FPR k/n the best sensitivity keeps the k highest negatives above the threshold.
    expected = [(positives > negatives[k]).mean() for k in ks]
    np.testing.assert_allclose(band.sensitivity, expected)
    assert np.all(band.low <= band.sensitivity) and np.all(band.sensitivity <= band.high)
    assert np.all(band.high - band.low >= 0) and np.any(band.high - band.low > 0.05)
    full = roc_sensitivity_band(y, s, n_resamples=100, seed=0)
    assert full.specificity.shape == (101,) and full.sensitivity[0] == 1.0
    # Halfway between two FPR steps the polyline is flat (no ties): the same sensitivity.
    mid = roc_sensitivity_band(y, s, [1 - 2.5 / n], n_resamples=10)
    assert mid.sensitivity[0] == pytest.approx(expected[2])
    again = roc_sensitivity_band(y, s, n_resamples=100, seed=0)
    np.testing.assert_array_equal(again.low, full.low)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        roc_sensitivity_band(y, s, n_resamples=5)
