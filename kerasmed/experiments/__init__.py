"""One experiment per paper; the `kerasmed` command and the notebooks call the same `run`."""

from kerasmed.experiments.registry import (
    EXPERIMENTS,
    Experiment,
    format_table,
    get_experiment,
    run_experiment,
    validate_results,
)

__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "format_table",
    "get_experiment",
    "run_experiment",
    "validate_results",
]
