"""Helpers every experiment module shares: stage messages, progress bars, figures on disk.

`resolve_config` (a preset's config with a run's overrides) is re-exported from
`kerasmed.experiments.config`; `start_run` is what every experiment's ``run`` begins with
(that config and a `logger`).

Seeding needs no helper of its own: every experiment seeds with Keras's
``keras.utils.set_random_seed(seed)`` (Python, NumPy and the backend at once), once in
`kerasmed.experiments.run_experiment` and again before each model is built, with
``seed + i`` for the i-th model of a run so that a model's weights do not depend on which
other models the run trains; data and splits take the run's ``seed`` itself. The
paper-vs-ours table is `kerasmed.experiments.format_table`.
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

from kerasmed.callbacks import EpochProgressBar
from kerasmed.experiments.config import resolve_config

__all__ = [
    "figure_caption",
    "logger",
    "progress",
    "resolve_config",
    "start_run",
    "write_figures",
]

_CAPTION = contextvars.ContextVar("figure_caption", default=None)


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


def start_run(presets, preset, overrides, experiment, verbose):
    """What every experiment's ``run`` begins with: ``(config, log)``.

    `config` is `preset`'s config with `overrides` applied (`resolve_config`, which raises a
    ``ValueError`` for an unknown preset or field); `log` is the `logger` of `experiment`.

    >>> from kerasmed.experiments.presets.xray import PRESETS
    >>> config, log = start_run(PRESETS, "quick", {"epochs": 2}, "xray", verbose=True)
    >>> config.epochs
    2
    >>> log("ready")
    [xray] ready
    """
    config = resolve_config(presets, preset, overrides, experiment=experiment)
    return config, logger(experiment, verbose)


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
    caption = _CAPTION.get()
    for filename, figure in figures.items():
        if caption:
            title = figure.get_suptitle()
            figure.suptitle(f"{title}\n{caption}" if title else caption, fontsize=9)
        figure.savefig(out / filename, dpi=dpi)


@contextlib.contextmanager
def figure_caption(text):
    """Within this block, `write_figures` titles every figure with `text` (below its own title).

    `kerasmed.experiments.run_experiment` captions a run's figures with the experiment, preset
    and backend, so a PNG found later says which run drew it.

    Example:

    >>> import matplotlib.figure
    >>> with figure_caption("tlstm, quick preset, jax backend"):
    ...     write_figures(".", {"empty.png": matplotlib.figure.Figure(figsize=(1, 1))})
    """
    token = _CAPTION.set(text)
    try:
        yield
    finally:
        _CAPTION.reset(token)
