"""Figures with matplotlib (Agg-safe): functions take arrays, never models, and return the Figure."""

import matplotlib.figure
import numpy as np
import sklearn.metrics

from kerasmed.metrics.roc import operating_point, roc_auc_ci, roc_sensitivity_band

__all__ = [
    "plot_image_sequence",
    "plot_learning_curves",
    "plot_paper_comparison",
    "plot_roc",
]


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    # A bare Figure (no pyplot) works with any backend, including headless Agg.
    figure = matplotlib.figure.Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


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
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return figure


def plot_image_sequence(
    images, labels=None, deltas=None, label_names=None, max_images=8, title=None
):
    """Shows a sequence of exams side by side, with each exam's labels and time lapse.

    Args:
        images: ``(T, H, W)`` or ``(T, H, W, C)`` array.
        labels: optional ``(T, L)`` multi-hot labels.
        deltas: optional ``(T,)`` time lapses since the previous exam.
        label_names: names of the L labels.
        max_images: show at most this many exams (evenly spaced).
        title: figure title.

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:

    >>> import numpy as np
    >>> fig = plot_image_sequence(np.zeros((3, 8, 8)), deltas=np.array([0, 2, 5]))
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(
            f"`images` must be (T, H, W) or (T, H, W, C). Received: shape={images.shape}"
        )
    steps = np.unique(np.linspace(0, len(images) - 1, min(max_images, len(images))).astype(int))
    fig = matplotlib.figure.Figure(figsize=(2.0 * len(steps), 2.6), layout="constrained")
    axes = fig.subplots(1, len(steps), squeeze=False)
    for ax, t in zip(axes[0], steps):
        image = images[t]
        ax.imshow(image if image.ndim == 2 or image.shape[-1] != 1 else image[..., 0], cmap="gray")
        ax.set_xticks([])
        ax.set_yticks([])
        caption = f"t={t}"
        if deltas is not None:
            caption += f", δ={np.asarray(deltas)[t]:g}"
        if labels is not None:
            present = np.flatnonzero(np.asarray(labels)[t] > 0.5)
            names = label_names or [str(i) for i in range(np.asarray(labels).shape[-1])]
            caption += "\n" + (", ".join(names[i] for i in present) or "none")
        ax.set_title(caption, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def plot_learning_curves(histories, metric="loss", ax=None):
    """Plots training (solid) and validation (dashed) curves of several models.

    Args:
        histories: ``{model name: history dict}`` (``keras.callbacks.History.history``).
        metric: the key to plot; ``f"val_{metric}"`` is drawn dashed when present.
        ax: an existing axes, or ``None`` for a new figure.

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    fig, ax = _new_axes(ax, (6, 4))
    for i, (name, history) in enumerate(histories.items()):
        if metric not in history:
            raise ValueError(
                f"History of {name!r} has no {metric!r}. Received keys: {sorted(history)}"
            )
        color = f"C{i % 10}"
        epochs = np.arange(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], color=color, label=name)
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], color=color, linestyle="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric + " (dashed: validation)")
    ax.legend(fontsize=8)
    return fig


def plot_paper_comparison(models, paper, metric="f_measure", ax=None):
    """Bar chart of one metric: ours (solid) beside the paper's (hatched).

    A per-label metric (``{label: value, "avg": value}``) is shown by its ``"avg"``; a plain
    number (e.g. an AUC) as it is.

    Args:
        models: ``results["models"]``: ``{model: {metric: value or {label: value, "avg": value}}}``.
        paper: ``results["paper"]``, same shape (models it lacks get no paper bar).
        metric: the metric to show.
        ax: an existing axes, or ``None`` for a new figure.

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:

    >>> fig = plot_paper_comparison({"svm": {"auc": 0.8}}, {"svm": {"auc": 0.9}}, metric="auc")
    """

    def value(entry):
        if entry is None:
            return np.nan
        return entry["avg"] if isinstance(entry, dict) else entry

    fig, ax = _new_axes(ax, (max(6, 1.1 * len(models)), 4))
    names = list(models)
    x = np.arange(len(names))
    ours = [value(models[n].get(metric)) for n in names]
    theirs = [value(paper.get(n, {}).get(metric)) for n in names]
    per_label = any(isinstance(models[n].get(metric), dict) for n in names)
    ax.bar(x - 0.2, ours, width=0.4, label="ours")
    ax.bar(x + 0.2, theirs, width=0.4, label="paper", hatch="//", alpha=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"average {metric}" if per_label else metric)
    ax.set_ylim(0, 1)
    ax.legend()
    return fig
