"""ROC analysis: AUC with confidence intervals, DeLong's test, operating points, CI bands.

All functions take NumPy arrays (labels and scores), never models. A higher score means "more
likely positive" (no automatic direction detection, unlike pROC). NaN/inf scores, labels other
than 0/1 and mismatched lengths are refused (naming the argument, the index of the first bad
value and the value); constant scores, and an AUC interval of width zero (constant or perfectly
separating scores), come with a `kerasmed.metrics.DegenerateStatisticWarning`.
"""

import collections
import warnings

import numpy as np
import scipy.stats
import sklearn.metrics

from kerasmed.metrics._checks import finite_scores, same_shape, warn_degenerate
from kerasmed.validation import (
    check_binary_array,
    check_finite_array,
    check_finite_number,
    check_whole_number,
)

__all__ = [
    "AUCInterval",
    "DeLongTestResult",
    "OperatingPoint",
    "SensitivityBand",
    "roc_auc_ci",
    "delong_test",
    "operating_point",
    "roc_sensitivity_band",
]

AUCInterval = collections.namedtuple("AUCInterval", ["auc", "low", "high"])
DeLongTestResult = collections.namedtuple(
    "DeLongTestResult", ["auc_a", "auc_b", "z", "p_value", "covariance"]
)
OperatingPoint = collections.namedtuple(
    "OperatingPoint", ["threshold", "sensitivity", "specificity", "accuracy"]
)
SensitivityBand = collections.namedtuple(
    "SensitivityBand", ["specificity", "sensitivity", "low", "high"]
)


def _check_confidence(confidence):
    confidence = check_finite_number(confidence, "confidence")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1). Received: confidence={confidence}")


def _column(values):
    values = np.asarray(values)
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values


def _check_inputs(y_true, *scores, names=("y_score",), min_per_class=1, warn_constant=True):
    """Returns (bool labels, float64 scores...) after validating them."""
    y = _column(y_true)
    if y.ndim != 1:
        raise ValueError(f"`y_true` must be 1D. Received: y_true.shape={y.shape}")
    y = check_binary_array(y, "y_true").astype(bool)
    checked = []
    for name, score in zip(names, scores):
        s = _column(score)
        same_shape(("y_true", name), (y, s), "length")
        same_shape(("y_true", name), (y, s))
        s = finite_scores(s, name)
        if warn_constant and s.size and np.all(s == s[0]):
            warn_degenerate(
                f"`{name}` holds one value ({s[0].item()!r}) for all {s.size} samples: it does not rank "
                "them (AUC 0.5), so what is computed from it is degenerate."
            )
        checked.append(s)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if min(n_pos, n_neg) < min_per_class:
        raise ValueError(
            f"ROC analysis needs at least {min_per_class} positive and {min_per_class} negative "
            f"sample(s). Received: y_true with {n_pos} positive(s) and {n_neg} negative(s)"
        )
    return (y, *checked)


def _warn_zero_width(interval, s, y):
    if interval.high - interval.low > 0:
        return
    if np.all(s == s[0]):
        reason = f"every score is {s[0].item()!r}"
    elif s[y].min() > s[~y].max() or s[y].max() < s[~y].min():
        reason = "the scores separate the classes perfectly"
    else:
        reason = "its standard error (or every resampled AUC) is the same value"
    warn_degenerate(
        f"The AUC interval [{interval.low}, {interval.high}] has width zero because {reason}: "
        f"it is not a confidence statement (a sample of {int(y.sum())} positive(s) and "
        f"{int((~y).sum())} negative(s) cannot rule out other AUCs)."
    )


def _delong_components(y, scores):
    """Fast DeLong (Sun & Xu 2014): AUCs (k,), V10 (k, m) and V01 (k, n) via midranks."""
    scores = np.atleast_2d(scores)
    positives, negatives = scores[:, y], scores[:, ~y]
    m, n = positives.shape[1], negatives.shape[1]
    tx = scipy.stats.rankdata(positives, axis=1)
    ty = scipy.stats.rankdata(negatives, axis=1)
    tz = scipy.stats.rankdata(np.concatenate([positives, negatives], axis=1), axis=1)
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def _delong_covariance(y, scores):
    aucs, v10, v01 = _delong_components(y, scores)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return aucs, s10 / m + s01 / n


def _auc_resampled(y, s, axis=-1):
    """Mann-Whitney AUC along `axis` for batches of resamples; NaN when a class is missing."""
    y = np.moveaxis(np.asarray(y, dtype=bool), axis, -1)
    s = np.moveaxis(np.asarray(s, dtype=np.float64), axis, -1)
    ranks = scipy.stats.rankdata(s, axis=-1)
    m = y.sum(axis=-1).astype(np.float64)
    n = y.shape[-1] - m
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = ((ranks * y).sum(axis=-1) - m * (m + 1) / 2.0) / (m * n)
    return np.where((m > 0) & (n > 0), auc, np.nan)


def roc_auc_ci(y_true, y_score, confidence=0.95, method="delong", n_resamples=2000, seed=0):
    """Area under the ROC curve with a confidence interval.

    With `method="delong"` the interval is `auc ± z * SE` clipped to [0, 1], where SE is DeLong's
    nonparametric standard error computed with the fast midrank algorithm of Sun & Xu (2014) and z
    the normal quantile (this is how pROC's `ci.auc(method="delong")` computes it). It needs at
    least two samples of each class.

    With `method="bootstrap"` the interval is the percentile interval of `scipy.stats.bootstrap`
    over paired (label, score) resamples. scipy cannot stratify by class, so a resample may hold
    a single class; its AUC is undefined and it is discarded (with a warning naming how many),
    the percentiles being taken over the other resamples. (pROC stratifies by default; on samples
    of a few dozen or more the two agree closely, and single-class resamples practically never
    occur.)

    Args:
        y_true: (N,) binary labels (0/1 or bool), both classes present.
        y_score: (N,) scores, higher = more likely positive; finite.
        confidence: confidence level in (0, 1). Default 0.95.
        method: `"delong"` (default) or `"bootstrap"`.
        n_resamples: number of bootstrap resamples (bootstrap only).
        seed: seed of the bootstrap's `numpy.random.Generator` (bootstrap only).

    Returns:
        `AUCInterval(auc, low, high)` (a namedtuple of floats).

    Example:

    >>> y = [0, 0, 1, 1, 0, 1]
    >>> score = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9]
    >>> result = roc_auc_ci(y, score)
    >>> round(result.auc, 4), round(result.low, 4), round(result.high, 4)
    (0.8889, 0.5809, 1.0)

    Reference:
        DeLong, DeLong & Clarke-Pearson, "Comparing the areas under two or more correlated
        receiver operating characteristic curves: a nonparametric approach", Biometrics 1988.
        Sun & Xu, "Fast implementation of DeLong's algorithm...", IEEE Signal Processing Letters
        2014. Patel et al., IEEE Access 2019 (AUCs with 95% CI, Section IV).
    """
    _check_confidence(confidence)
    if method not in ("delong", "bootstrap"):
        raise ValueError(f"`method` must be 'delong' or 'bootstrap'. Received: method={method!r}")
    if method == "delong":
        y, s = _check_inputs(y_true, y_score, min_per_class=2, warn_constant=False)
        aucs, cov = _delong_covariance(y, s)
        auc, se = float(aucs[0]), float(np.sqrt(max(cov[0, 0], 0.0)))
        z = scipy.stats.norm.ppf(1.0 - (1.0 - confidence) / 2.0)
        result = AUCInterval(auc, float(max(0.0, auc - z * se)), float(min(1.0, auc + z * se)))
        _warn_zero_width(result, s, y)
        return result

    y, s = _check_inputs(y_true, y_score, warn_constant=False)
    n_resamples = check_whole_number(n_resamples, "n_resamples")
    auc = float(_auc_resampled(y, s))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.stats.DegenerateDataWarning)
        result = scipy.stats.bootstrap(
            (y, s),
            _auc_resampled,
            paired=True,
            vectorized=True,
            n_resamples=int(n_resamples),
            batch=256,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    distribution = result.bootstrap_distribution
    undefined = int(np.isnan(distribution).sum())
    if undefined == 0:
        low, high = result.confidence_interval
    else:
        warnings.warn(
            f"{undefined} of {distribution.size} bootstrap resamples held a single class "
            "(AUC undefined) and were discarded.",
            stacklevel=2,
        )
        if undefined == distribution.size:
            raise ValueError(
                "Every bootstrap resample held a single class; the sample is too small for a "
                f"bootstrap interval. Received: {int(y.sum())} positive(s), {int((~y).sum())} "
                "negative(s)"
            )
        alpha = (1.0 - confidence) / 2.0
        low, high = np.nanquantile(distribution, [alpha, 1.0 - alpha])
    result = AUCInterval(auc, float(low), float(high))
    _warn_zero_width(result, s, y)
    return result


def delong_test(y_true, score_a, score_b):
    """DeLong's test of the difference between two correlated ROC AUCs (same samples).

    `z = (auc_a - auc_b) / sqrt(var_a + var_b - 2 cov_ab)`, with the DeLong covariance of the two
    AUCs, and a two-sided normal p-value. When the variance of the difference is 0 (e.g. identical
    rankings) `z` is 0 and `p_value` 1 if the AUCs are equal (±inf and 0 otherwise).

    Args:
        y_true: (N,) binary labels, at least two of each class.
        score_a: (N,) scores of the first classifier.
        score_b: (N,) scores of the second classifier.

    Returns:
        `DeLongTestResult(auc_a, auc_b, z, p_value, covariance)`, `covariance` being the 2x2
        DeLong covariance matrix of (auc_a, auc_b).

    Example:

    >>> y = [0, 0, 0, 1, 1, 1]
    >>> result = delong_test(y, [0.1, 0.2, 0.6, 0.4, 0.8, 0.9], [0.3, 0.1, 0.2, 0.5, 0.4, 0.7])
    >>> round(result.auc_a, 4), round(result.auc_b, 4), round(result.p_value, 4)
    (0.8889, 1.0, 0.4795)

    Reference:
        DeLong, DeLong & Clarke-Pearson, Biometrics 1988; Sun & Xu, IEEE SPL 2014. Patel et al.,
        IEEE Access 2019 (significance of AUC differences, Section IV-B).
    """
    y, a, b = _check_inputs(y_true, score_a, score_b, names=("score_a", "score_b"), min_per_class=2)
    aucs, cov = _delong_covariance(y, np.stack([a, b]))
    difference = aucs[0] - aucs[1]
    variance = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    if variance <= 1e-15:
        warn_degenerate(
            "The DeLong variance of the AUC difference is 0 (identical rankings, constant or "
            f"perfectly separating scores): z={'0' if abs(difference) <= 1e-12 else 'inf'} is "
            "not a test statistic."
        )
        z = 0.0 if abs(difference) <= 1e-12 else float(np.sign(difference) * np.inf)
    else:
        z = float(difference / np.sqrt(variance))
    p_value = float(2.0 * scipy.stats.norm.sf(abs(z)))
    return DeLongTestResult(float(aucs[0]), float(aucs[1]), z, p_value, cov)


def operating_point(y_true, y_score, target_sensitivity=0.98):
    """The highest threshold whose sensitivity reaches `target_sensitivity`, with its metrics.

    Samples with `y_score >= threshold` are called positive. Choosing the highest such threshold
    gives the best specificity among the thresholds that meet the sensitivity target (the paper
    picks its operating point "to maximize sensitivity": 0.98, with specificity 0.78).

    Args:
        y_true: (N,) binary labels, both classes present.
        y_score: (N,) scores.
        target_sensitivity: in (0, 1]. Default 0.98.

    Returns:
        `OperatingPoint(threshold, sensitivity, specificity, accuracy)`.

    Example:

    >>> point = operating_point([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9], 0.9)
    >>> point.threshold, point.sensitivity, round(point.specificity, 4), round(point.accuracy, 4)
    (0.35, 1.0, 0.6667, 0.8333)

    Reference:
        Patel et al., IEEE Access 2019, Section IV-B.
    """
    if not 0.0 < target_sensitivity <= 1.0:
        raise ValueError(
            f"`target_sensitivity` must be in (0, 1]. Received: target_sensitivity={target_sensitivity}"
        )
    y, s = _check_inputs(y_true, y_score)
    fpr, tpr, thresholds = sklearn.metrics.roc_curve(y, s, drop_intermediate=False)
    index = int(np.argmax(tpr >= target_sensitivity - 1e-12))
    threshold = float(thresholds[index])
    accuracy = float(((s >= threshold) == y).mean())
    return OperatingPoint(threshold, float(tpr[index]), float(1.0 - fpr[index]), accuracy)


def _roc_points(labels, scores):
    """(fpr, tpr) at every distinct threshold, like `sklearn.metrics.roc_curve(...,
    drop_intermediate=False)` but without its input checks (it runs once per resample)."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_labels.size - 1]
    tps = np.cumsum(sorted_labels)[last]
    fps = last + 1 - tps
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def _sensitivity_at(fpr, tpr, fpr_grid):
    """Sensitivity on the empirical ROC polyline at each false positive rate of `fpr_grid`.

    At a vertical segment (several points with the same FPR) the upper point is used; FPRs within
    1e-9 of a ROC point count as that point (`1 - specificity` is rarely exactly `k / n`).
    """
    j = np.searchsorted(fpr, fpr_grid + 1e-9, side="right") - 1
    j = np.clip(j, 0, len(fpr) - 2)
    left, right = fpr[j], fpr[j + 1]
    weight = np.where(right > left, (fpr_grid - left) / np.where(right > left, right - left, 1), 0)
    values = tpr[j] + np.clip(weight, 0.0, 1.0) * (tpr[j + 1] - tpr[j])
    return np.where(fpr_grid >= fpr[-1], tpr[-1], values)


def roc_sensitivity_band(
    y_true, y_score, specificities=None, confidence=0.95, n_resamples=2000, seed=0
):
    """Bootstrap confidence band of the sensitivity at fixed specificities (pROC's `ci.se`).

    Positives and negatives are resampled separately (stratified bootstrap, as pROC does by
    default) with `numpy.random.default_rng(seed)`; for each resample the ROC curve is computed
    and its sensitivity read at each specificity (linear interpolation along the empirical ROC
    polyline); the band is the percentile interval over resamples.

    Args:
        y_true: (N,) binary labels, both classes present.
        y_score: (N,) scores.
        specificities: specificities at which to evaluate; default 101 points from 0 to 1.
        confidence: confidence level in (0, 1).
        n_resamples: number of bootstrap resamples.
        seed: random seed.

    Returns:
        `SensitivityBand(specificity, sensitivity, low, high)`: arrays, `sensitivity` being the
        observed curve's value at each specificity.

    Example:

    >>> band = roc_sensitivity_band([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9],
    ...                             specificities=[1.0, 0.5], n_resamples=100)
    >>> band.sensitivity
    array([0.66666667, 1.        ])

    Reference:
        Robin et al., "pROC: an open-source package for R and S+ to analyze and compare ROC
        curves", BMC Bioinformatics 2011; Patel et al., IEEE Access 2019 (Figures 3-4).
    """
    _check_confidence(confidence)
    n_resamples = check_whole_number(n_resamples, "n_resamples")
    y, s = _check_inputs(y_true, y_score)
    if specificities is None:
        specificities = np.linspace(0.0, 1.0, 101)
    specificities = check_finite_array(specificities, "specificities").astype(np.float64)
    if specificities.ndim != 1 or ((specificities < 0) | (specificities > 1)).any():
        raise ValueError(
            f"`specificities` must be a 1D array of values in [0, 1]. Received: specificities={specificities}"
        )
    fpr_grid = 1.0 - specificities

    def curve(labels, scores):
        fpr, tpr = _roc_points(labels, scores)
        return _sensitivity_at(fpr, tpr, fpr_grid)

    observed = curve(y, s)
    positives, negatives = s[y], s[~y]
    labels = np.concatenate([np.ones(positives.size, bool), np.zeros(negatives.size, bool)])
    rng = np.random.default_rng(seed)
    samples = np.empty((int(n_resamples), fpr_grid.size))
    for i in range(int(n_resamples)):
        resampled = np.concatenate(
            [
                positives[rng.integers(positives.size, size=positives.size)],
                negatives[rng.integers(negatives.size, size=negatives.size)],
            ]
        )
        samples[i] = curve(labels, resampled)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [alpha, 1.0 - alpha], axis=0)
    return SensitivityBand(specificities, observed, low, high)
