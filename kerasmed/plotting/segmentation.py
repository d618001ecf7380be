"""Label maps of segmentation sequences, predictions beside the ground truth, and mPA bars."""

import numpy as np

from kerasmed.metrics.segmentation import mean_pixel_accuracy
from kerasmed.plotting._figures import _clean, _grid, _mark_missing

__all__ = ["plot_mpa", "plot_segmentation_sequence", "plot_segmentations"]

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


def _show_labels(ax, labels, num_classes=4):
    cmap, norm = _label_cmap(num_classes)
    ax.imshow(np.ma.masked_less(labels, 0), cmap=cmap, norm=norm, interpolation="nearest")


_CLASS_NAMES = ("background", "CSF", "GM", "WM")


def _class_key(fig, num_classes=4):
    """A legend on `fig` naming each label colour (``"unlabelled"``: the blank pixels)."""
    import matplotlib.patches

    cmap, _ = _label_cmap(num_classes)
    names = list(_CLASS_NAMES[:num_classes]) + [f"class {c}" for c in range(4, num_classes)]
    handles = [
        matplotlib.patches.Patch(facecolor=cmap(c), edgecolor="#555555", label=name)
        for c, name in enumerate(names)
    ]
    handles.append(
        matplotlib.patches.Patch(facecolor="white", edgecolor="#555555", label="unlabelled")
    )
    fig.legend(
        handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False
    )
    return fig


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
    return _class_key(fig, max(4, int(labels.max()) + 1))


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
    return _class_key(fig, num_classes)


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
