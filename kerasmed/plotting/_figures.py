"""Figure helpers shared by the plotting modules: a bare Figure, a grid of axes, tick-free axes."""

import matplotlib.figure
import numpy as np


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    # A bare Figure (no pyplot) works with any backend, including headless Agg.
    figure = matplotlib.figure.Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def _grid(rows, cols, size=1.8):
    fig = matplotlib.figure.Figure(figsize=(size * cols, size * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _clean(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def _mark_missing(ax, positions, values, y=None):
    """Writes "no paper value" (vertical) where a paper bar is missing."""
    low = ax.get_ylim()[0] if y is None else y
    for position, value in zip(positions, values):
        if not np.isfinite(value):
            ax.text(position, low, "no paper value", rotation=90, ha="center", va="bottom",
                    fontsize=7, color="0.4")  # fmt: skip
