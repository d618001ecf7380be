"""Helpers every experiment module shares: stage messages, progress bars, figures on disk.

`resolve_config` (a preset's config with a run's overrides) is re-exported from
`kerasmed.experiments.config`.

Seeding needs no helper of its own: every experiment seeds with Keras's
``keras.utils.set_random_seed(seed)`` (Python, NumPy and the backend at once), once in
`kerasmed.experiments.run_experiment` and again before each model is built, with
``seed + i`` for the i-th model of a run so that a model's weights do not depend on which
other models the run trains; data and splits take the run's ``seed`` itself. The
paper-vs-ours table is `kerasmed.experiments.format_table`.
"""

from __future__ import annotations

from pathlib import Path

from kerasmed.callbacks import EpochProgressBar
from kerasmed.experiments.config import resolve_config

__all__ = ["logger", "progress", "resolve_config", "write_figures"]


def logger(tag, verbose):
    """A ``print`` that prefixes ``[tag]`` (stage messages), or a no-op when not `verbose`.

    Example:

    >>> log = logger("tlstm", verbose=True)
    >>> log("400 training sequences")
    [tlstm] 400 training sequences
    >>> logger("tlstm", verbose=False)("nothing")
    """
    if not verbose:
        return lambda *args, **kwargs: None

    def log(message):
        print(f"[{tag}] {message}")

    return log


def progress(description, verbose, keys=("loss", "val_loss")):
    """The callbacks list of a ``fit``: one `EpochProgressBar` showing `keys`, or none."""
    return [EpochProgressBar(description, keys=keys)] if verbose else []


def write_figures(out, figures, dpi=100):
    """Writes ``{filename: matplotlib Figure}`` as files in the folder `out`.

    Example:

    >>> import matplotlib.figure
    >>> write_figures(".", {"empty.png": matplotlib.figure.Figure(figsize=(1, 1))})
    >>> Path("empty.png").stat().st_size > 0
    True
    """
    out = Path(out)
    for filename, figure in figures.items():
        figure.savefig(out / filename, dpi=dpi)
