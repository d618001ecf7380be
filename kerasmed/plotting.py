"""Figures with matplotlib (Agg-safe): functions take arrays, never models, and return the Figure."""

import matplotlib.figure
import matplotlib.lines
import numpy as np
import sklearn.metrics

from kerasmed.metrics.roc import operating_point, roc_auc_ci, roc_sensitivity_band
from kerasmed.metrics.segmentation import mean_pixel_accuracy

__all__ = [
    "plot_image_sequence",
    "plot_learning_curves",
    "plot_mpa",
    "plot_paper_comparison",
    "plot_roc",
    "plot_segmentation_sequence",
    "plot_segmentations",
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
    ax.set_title(title or "ROC curves (test set)")
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


_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")


def _curve_style(index):
    """Colour and marker of the `index`-th model: no two of the first 100 models look alike."""
    return f"C{index % 10}", _MARKERS[(index // 10 + index) % len(_MARKERS)]


def _outliers(histories, metric):
    """Models whose curves reach more than twice the median of every model's highest value."""
    if len(histories) < 3:
        return []
    peaks = {
        name: max(np.nanmax(h[metric]), np.nanmax(h.get(f"val_{metric}", h[metric])))
        for name, h in histories.items()
    }
    median = float(np.median(list(peaks.values())))
    return [name for name, peak in peaks.items() if median > 0 and peak > 2 * median]


def _draw_curves(ax, histories, metric, styles):
    for name, history in histories.items():
        color, marker = styles[name]
        epochs = np.arange(1, len(history[metric]) + 1)
        every = max(1, len(epochs) // 10)
        ax.plot(epochs, history[metric], color=color, marker=marker, markevery=every,
                markersize=4, label=name)  # fmt: skip
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], color=color, marker=marker,
                    markevery=every, markersize=4, linestyle="--", markerfacecolor="none")  # fmt: skip
    handles, _ = ax.get_legend_handles_labels()
    has_val = any(f"val_{metric}" in h for h in histories.values())
    handles += [matplotlib.lines.Line2D([], [], color="0.3", label="training (solid)")]
    if has_val:
        handles += [
            matplotlib.lines.Line2D(
                [], [], color="0.3", linestyle="--", label="validation (dashed)"
            )
        ]
    ax.legend(handles=handles, fontsize=7)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)


def plot_learning_curves(histories, metric="loss", ax=None, own_panel="auto", title=None):
    """Plots training (solid) and validation (dashed) curves of several models.

    Each model has its own colour and marker; the legend shows both line styles. A model whose
    curve dwarfs the others' (it reaches more than twice the median of every model's highest
    value, e.g. an image CNN's loss beside sequence models') would squash them into one band:
    with ``own_panel="auto"`` it is drawn in a panel of its own (a new figure) or, drawing into
    a given `ax`, the y axis becomes logarithmic.

    Args:
        histories: ``{model name: history dict}`` (``keras.callbacks.History.history``).
        metric: the key to plot; ``f"val_{metric}"`` is drawn dashed when present.
        ax: an existing axes, or ``None`` for a new figure.
        own_panel: ``"auto"`` (above), or the names of the models to draw in a second panel
            (``()``: one panel for all).
        title: the axes' title (default ``"<metric> per epoch"``).

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:

    >>> histories = {"a": {"loss": [0.3, 0.2]}, "b": {"loss": [0.4, 0.3]}, "cnn": {"loss": [9, 1]}}
    >>> [ax.get_title() for ax in plot_learning_curves(histories).axes]
    ['loss per epoch', 'loss per epoch: cnn']
    """
    for name, history in histories.items():
        if metric not in history:
            raise ValueError(
                f"History of {name!r} has no {metric!r}. Received keys: {sorted(history)}"
            )
    styles = {name: _curve_style(i) for i, name in enumerate(histories)}
    separate = _outliers(histories, metric) if own_panel == "auto" else list(own_panel)
    unknown = [name for name in separate if name not in histories]
    if unknown:
        raise ValueError(
            f"`own_panel` names models without a history: {unknown}. Valid: {list(histories)}. "
            f"Received: own_panel={own_panel!r}"
        )
    title = title or f"{metric} per epoch"
    main = {n: h for n, h in histories.items() if n not in separate}
    if ax is not None or not separate or not main:
        fig, ax = _new_axes(ax, (6, 4))
        _draw_curves(ax, histories, metric, styles)
        values = np.concatenate([np.ravel(v) for h in histories.values() for k, v in h.items()
                                 if k in (metric, f"val_{metric}")])  # fmt: skip
        if separate and np.all(values > 0):
            ax.set_yscale("log")
            title += " (log scale)"
        ax.set_title(title)
        return fig
    fig = matplotlib.figure.Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(2, 1))
    _draw_curves(left, main, metric, styles)
    _draw_curves(right, {n: histories[n] for n in separate}, metric, styles)
    left.set_title(title)
    right.set_title(f"{title}: {', '.join(separate)}")
    return fig


def plot_paper_comparison(models, paper, metric="f_measure", ax=None, title=None):
    """Bar chart of one metric: ours (solid) beside the paper's (hatched).

    A per-label metric (``{label: value, "avg": value}``) is shown by its ``"avg"``; a plain
    number (e.g. an AUC) as it is. A model the paper did not report is marked "no paper value"
    where its paper bar would be.

    Args:
        models: ``results["models"]``: ``{model: {metric: value or {label: value, "avg": value}}}``.
        paper: ``results["paper"]``, same shape (models it lacks get no paper bar).
        metric: the metric to show.
        ax: an existing axes, or ``None`` for a new figure.
        title: the axes' title (default ``"<metric>: ours vs the paper"``).

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
    _mark_missing(ax, x + 0.2, theirs)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("model")
    ax.set_ylabel(f"average {metric}" if per_label else metric)
    top = max([1.0, *[v for v in ours + theirs if np.isfinite(v)]])
    ax.set_ylim(0, top)
    ax.set_title(title or f"{metric}: ours vs the paper")
    ax.legend()
    return fig


def _mark_missing(ax, positions, values, y=None):
    """Writes "no paper value" (vertical) where a paper bar is missing."""
    low = ax.get_ylim()[0] if y is None else y
    for position, value in zip(positions, values):
        if not np.isfinite(value):
            ax.text(position, low, "no paper value", rotation=90, ha="center", va="bottom",
                    fontsize=7, color="0.4")  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Label maps (segmentation): one color per class, unlabelled pixels (< 0) blank.

_LABEL_COLORS = ("#000000", "#3b8fd9", "#9a9a9a", "#f2f2f2")


def _label_cmap(num_classes=4):
    import matplotlib.colors

    colors = list(_LABEL_COLORS[:num_classes])
    colors += [f"C{i}" for i in range(num_classes - len(colors))]
    return matplotlib.colors.ListedColormap(colors), matplotlib.colors.BoundaryNorm(
        np.arange(-0.5, num_classes), num_classes
    )


def _grid(rows, cols, size=1.8):
    fig = matplotlib.figure.Figure(figsize=(size * cols, size * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _show_labels(ax, labels, num_classes=4):
    cmap, norm = _label_cmap(num_classes)
    ax.imshow(np.ma.masked_less(labels, 0), cmap=cmap, norm=norm, interpolation="nearest")


def _clean(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def plot_segmentation_sequence(images, labels, ages=None, channel_names=("T1w", "T2w")):
    """One subject across time: each channel and the label map at every time point.

    Args:
        images: ``(T, H, W, C)``.
        labels: ``(T, H, W)`` integer labels (``-1`` unlabelled: shown blank).
        ages: optional ``(T,)`` ages (months) for the column titles (or ``(S, T)``: row 0).
        channel_names: row titles of the C channels.

    Returns:
        A ``matplotlib.figure.Figure``: C + 1 rows, T columns.

    Example:

    >>> labels = np.zeros((3, 8, 8), int)
    >>> fig = plot_segmentation_sequence(np.zeros((3, 8, 8, 2)), labels, ages=[0, 3, 6])
    >>> fig.axes[0].get_title()
    'time point 1\\n0.0 months'

    Reference:
        Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical image
        segmentation", ISBI 2018 (the infant scans of Figure 1).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if ages is not None:
        ages = np.asarray(ages)
        ages = ages[0] if ages.ndim == 2 else ages
    num_timepoints, channels = images.shape[0], images.shape[-1]
    fig, axes = _grid(channels + 1, num_timepoints)
    for t in range(num_timepoints):
        for c in range(channels):
            lo, hi = np.percentile(images[:, ..., c], (1, 99.5))
            axes[c, t].imshow(images[t, ..., c], cmap="gray", vmin=lo, vmax=hi)
            if t == 0:
                axes[c, t].set_ylabel(channel_names[c] if c < len(channel_names) else f"ch{c}")
        _show_labels(axes[channels, t], labels[t], max(4, int(labels.max()) + 1))
        title = f"time point {t + 1}"
        if ages is not None:
            title += f"\n{ages[t]:.1f} months"
        axes[0, t].set_title(title, fontsize=9)
    axes[channels, 0].set_ylabel("labels")
    for ax in axes.ravel():
        _clean(ax)
    return fig


def plot_segmentations(images, labels, predictions, heldout=None, num_examples=3):
    """Input, ground truth and each model's segmentation, one column per subject.

    Each segmentation's title is its mean pixel accuracy (`kerasmed.metrics.mean_pixel_accuracy`)
    against the ground truth.

    Args:
        images: ``(S, H, W, C)`` images; channel 0 is shown.
        labels: ``(S, H, W)`` ground truth.
        predictions: ``{model: (S, H, W) labels}``.
        heldout: ``(S,)`` bool; held-out subjects are marked in the column titles.
        num_examples: number of subjects (columns).

    Returns:
        A ``matplotlib.figure.Figure``.

    Example:

    >>> labels = np.array([[[0, 1], [2, 3]]])
    >>> fig = plot_segmentations(np.zeros((1, 2, 2, 1)), labels, {"fcn": labels})
    >>> fig.axes[2].get_title()
    'mPA 1.000'

    Reference:
        Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical image
        segmentation", ISBI 2018, Figure 4.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    count = min(num_examples, len(images))
    rows = ["input", "ground truth", *predictions]
    fig, axes = _grid(len(rows), count, size=2.0)
    num_classes = max(4, int(labels.max()) + 1)
    for j in range(count):
        axes[0, j].imshow(images[j, ..., 0], cmap="gray")
        _show_labels(axes[1, j], labels[j], num_classes)
        for r, prediction in enumerate(predictions.values(), start=2):
            _show_labels(axes[r, j], prediction[j], num_classes)
            accuracy = mean_pixel_accuracy(labels[j], prediction[j], num_classes).mean
            axes[r, j].set_title(f"mPA {accuracy:.3f}", fontsize=8)
        tag = " (held out)" if heldout is not None and heldout[j] else ""
        axes[0, j].set_title(f"subject {j + 1}{tag}", fontsize=9)
    for r, name in enumerate(rows):
        axes[r, 0].set_ylabel(name)
    for ax in axes.ravel():
        _clean(ax)
    return fig


def plot_mpa(models, paper):
    """Bar charts of the test and training mPA of each model, ours beside the paper's.

    Args:
        models: ``{model: {"mpa": value, "mpa_train": value, ...}}`` (``results["models"]``).
        paper: the paper's numbers in the same shape (models it lacks get no paper bar).

    Returns:
        A ``matplotlib.figure.Figure`` with two axes (test, training time points).

    Example:

    >>> fig = plot_mpa({"fcn": {"mpa": 0.8, "mpa_train": 0.9}}, {"fcn": {"mpa": 0.85}})
    >>> [float(bar.get_height()) for bar in fig.axes[0].patches]
    [0.8, 0.85]

    Reference:
        Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical image
        segmentation", ISBI 2018, Section 3.
    """
    fig, axes = _grid(1, 2, size=3.2)
    names = list(models)
    x = np.arange(len(names))
    for ax, metric, title in (
        (axes[0, 0], "mpa", "test time point"),
        (axes[0, 1], "mpa_train", "training time points"),
    ):
        ours = [models[n][metric] for n in names]
        theirs = [paper.get(n, {}).get(metric, np.nan) for n in names]
        ax.bar(x - 0.2, ours, width=0.4, label="ours")
        ax.bar(x + 0.2, theirs, width=0.4, label="paper", hatch="//", alpha=0.6)
        for xi, value in zip(x, ours):
            ax.text(xi - 0.2, value + 0.005, f"{value:.3f}", ha="center", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(names, fontsize=8)
        low = min([v for v in ours + theirs if not np.isnan(v)] + [0.7])
        ax.set_ylim(max(0.0, low - 0.05), 1.0)
        _mark_missing(ax, x + 0.2, theirs)
        ax.set_title(f"mPA, {title}", fontsize=9)
        ax.set_xlabel("model", fontsize=8)
        ax.set_ylabel("mean pixel accuracy", fontsize=8)
    axes[0, 0].legend(fontsize=8)
    return fig
