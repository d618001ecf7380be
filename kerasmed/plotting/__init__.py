"""Figures with matplotlib (Agg-safe): functions take arrays, never models, and return the Figure.

One module per kind of figure: `roc` (ROC curves with DeLong CIs), `images` (a sequence of
exams), `curves` (learning curves, paper-vs-ours bars), `segmentation` (label maps and mPA);
shared helpers (a bare Figure, a grid of axes) are in `_figures`. Every public function is
exported here, so ``from kerasmed.plotting import plot_roc`` is the way to import them.
"""

from kerasmed.plotting.curves import plot_learning_curves, plot_paper_comparison
from kerasmed.plotting.images import plot_image_sequence
from kerasmed.plotting.roc import plot_roc
from kerasmed.plotting.segmentation import plot_mpa, plot_segmentation_sequence, plot_segmentations

__all__ = [
    "plot_image_sequence",
    "plot_learning_curves",
    "plot_mpa",
    "plot_paper_comparison",
    "plot_roc",
    "plot_segmentation_sequence",
    "plot_segmentations",
]
