"""Figures of experiment ``two-step`` (paper 003): the lung window, the embedding matrix, Mean-N.

Re-exported by `kerasmed.experiments.two_step`.
"""

from __future__ import annotations

import matplotlib.figure
import numpy as np

from kerasmed.data import sample_sequence_slices
from kerasmed.experiments.common import write_figures

__all__ = ["plot_draw_spread", "plot_embedding_matrix", "plot_lung_window", "save_figures"]


def plot_lung_window(selection, title="Lung area per slice and the chosen window"):
    """The per-slice lung area (Eq. 3) with the selected window shaded (Eq. 4)."""
    figure = matplotlib.figure.Figure(figsize=(6, 3), layout="constrained")
    ax = figure.subplots()
    ax.plot(selection.areas, color="C0", label="lung area")
    ax.axvspan(selection.start - 0.5, selection.stop - 0.5, color="C1", alpha=0.3,
               label=f"window {selection.start}-{selection.stop - 1} ({selection.rule})")  # fmt: skip
    ax.set(xlabel="slice", ylabel="lung pixels", title=title)
    ax.legend(loc="upper right", fontsize=8)
    return figure


def plot_embedding_matrix(embeddings, num_slices, seed=0, title=None):
    """One scan's sorted sampled embeddings as the image the Swin head reads."""
    idx = sample_sequence_slices(len(embeddings), num_slices, np.random.default_rng(seed))
    figure = matplotlib.figure.Figure(figsize=(4, 4), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(embeddings[idx], aspect="auto", cmap="viridis")
    figure.colorbar(image, ax=ax)
    ax.set(xlabel="embedding dimension", ylabel="sampled slice (sorted)",
           title=title or f"{num_slices} x {embeddings.shape[1]} embedding matrix")  # fmt: skip
    return figure


def plot_draw_spread(spread, models, mean_draws=(10, 50)):
    """Histogram of single-draw macro-F1 with the Mean-N scores marked."""
    figure = matplotlib.figure.Figure(figsize=(6, 3), layout="constrained")
    ax = figure.subplots()
    ax.hist(spread, bins=min(15, max(3, len(spread) // 3)), color="C0", alpha=0.7,
            label=f"{len(spread)} single draws")  # fmt: skip
    for i, n in enumerate(mean_draws):
        value = models[f"cnn_2d_mean{n}"]["macro_f1"]
        ax.axvline(value, color=f"C{i + 1}", label=f"Mean-{n}: {value:.3f}")
    ax.set(
        xlabel="macro-F1 (test)", ylabel="draws", title="2D CNN: one draw of 16 slices vs Mean-N"
    )
    ax.legend(fontsize=8)
    return figure


def save_figures(out, data, test_embeddings, labels, spread, models, config):
    """Writes ``lung_window.png``, ``embedding_matrix.png`` and ``draw_spread.png`` to `out`."""
    positive = int(np.flatnonzero(labels == 1)[0])
    write_figures(
        out,
        {
            "lung_window.png": plot_lung_window(data["test"]["windows"][positive]),
            "embedding_matrix.png": plot_embedding_matrix(
                test_embeddings[positive], config.swin_slices
            ),
            "draw_spread.png": plot_draw_spread(spread, models, config.mean_draws),
        },
    )
