"""ROC curves with DeLong confidence intervals and sensitivity bands."""

import numpy as np
import sklearn.metrics

from kerasmed.metrics.roc import operating_point, roc_auc_ci, roc_sensitivity_band
from kerasmed.plotting._figures import _new_axes

__all__ = ["plot_roc"]


def plot_roc(
    curves,
    confidence=0.95,
    ax=None,
    ci_bands=True,
    n_bootstraps=2000,
    seed=0,
    auc_method="delong",
    target_sensitivity=None,
    figsize=(5.5, 5.0),
    title=None,
):
    """ROC curves with confidence bands and the AUC with its CI in the legend.

    Reproduces the style of Patel et al.'s Figures 3-4: sensitivity against 1 - specificity,
    one line per model, a shaded band per curve, and the legend entry
    `"<name>: AUC 0.96 (95% CI 0.93-0.97)"`. The band is the bootstrap confidence band of the
    sensitivity at 101 fixed specificities (pROC's `ci.se`, see
    `kerasmed.metrics.roc.roc_sensitivity_band`); the AUC interval is `roc_auc_ci`'s.

    Args:
        curves: dict mapping a curve name to `(y_true, y_score)` arrays.
        confidence: confidence level of the bands and AUC intervals. Default 0.95.
        ax: matplotlib Axes to draw into; a new Figure is created if None.
        ci_bands: whether to draw the bootstrap bands.
        n_bootstraps: bootstrap resamples per band.
        seed: seed of the band bootstrap (and of the AUC bootstrap if `auc_method="bootstrap"`).
        auc_method: `"delong"` (default) or `"bootstrap"`, passed to `roc_auc_ci`.
        target_sensitivity: if given (e.g. 0.98), mark each curve's `operating_point` with a
            circle, as in the paper's Figure 4.
        figsize: size of a new figure, in inches.
        title: optional Axes title.

    Returns:
        The matplotlib `Figure`.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 100)
    >>> figure = plot_roc({"model": (y, y + rng.normal(size=100))}, n_bootstraps=50)
    >>> figure.axes[0].get_legend().get_texts()[0].get_text()
    'model: AUC 0.77 (95% CI 0.67-0.86)'

    Reference:
        Patel et al., "Intracerebral Haemorrhage Segmentation in Non-Contrast CT", IEEE Access
        2019, Figures 3 and 4.
    """
    if not curves:
        raise ValueError(
            f"`curves` must map at least one name to (y_true, y_score). Received: curves={curves!r}"
        )
    figure, ax = _new_axes(ax, figsize)
    percent = f"{100 * confidence:g}%"
    for index, (name, (y_true, y_score)) in enumerate(curves.items()):
        color = f"C{index}"
        interval = roc_auc_ci(
            y_true,
            y_score,
            confidence=confidence,
            method=auc_method,
            n_resamples=n_bootstraps,
            seed=seed,
        )
        fpr, tpr, _ = sklearn.metrics.roc_curve(
            np.asarray(y_true).ravel(), np.asarray(y_score).ravel()
        )
        label = (
            f"{name}: AUC {interval.auc:.2f} ({percent} CI {interval.low:.2f}-{interval.high:.2f})"
        )
        ax.plot(fpr, tpr, color=color, linewidth=1.8, label=label)
        if ci_bands:
            band = roc_sensitivity_band(
                y_true, y_score, confidence=confidence, n_resamples=n_bootstraps, seed=seed
            )
            ax.fill_between(
                1.0 - band.specificity, band.low, band.high, color=color, alpha=0.2, linewidth=0
            )
        if target_sensitivity is not None:
            point = operating_point(y_true, y_score, target_sensitivity)
            ax.plot(
                1.0 - point.specificity,
                point.sensitivity,
                "o",
                markersize=9,
                markerfacecolor="none",
                markeredgecolor=color,
                markeredgewidth=1.8,
            )
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1)
    ax.set(
        xlim=(-0.01, 1.01),
        ylim=(-0.01, 1.01),
        xlabel="1 - specificity (false positive rate)",
        ylabel="Sensitivity",
        aspect="equal",
    )
    ax.set_title(title or "ROC curves (test set)")
    ax.legend(loc="lower right", fontsize="small")
    return figure
