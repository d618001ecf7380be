"""Learning curves and the paper-vs-ours bar chart."""

import matplotlib.lines
import numpy as np

from kerasmed.plotting._figures import _mark_missing, _new_axes

__all__ = ["plot_learning_curves", "plot_paper_comparison"]


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
