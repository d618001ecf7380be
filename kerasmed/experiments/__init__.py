"""One experiment per paper; the `kerasmed` command and the notebooks call the same `run`.

Presets are frozen data (`kerasmed.experiments.presets`); a run changes settings with
overrides, ``run_experiment("fcslstm", "quick", test_timepoint=0)`` or ``kerasmed reproduce
fcslstm --set test_timepoint=0``, checked by `kerasmed.experiments.config.apply_overrides`.
"""

from kerasmed.experiments.config import Preset, apply_overrides
from kerasmed.experiments.departures import Departure, PaperSetting, departures_markdown
from kerasmed.experiments.registry import (
    EXPERIMENTS,
    Experiment,
    format_table,
    get_config,
    get_departures,
    get_experiment,
    run_experiment,
    validate_results,
)

__all__ = [
    "EXPERIMENTS",
    "Departure",
    "Experiment",
    "PaperSetting",
    "Preset",
    "apply_overrides",
    "format_table",
    "departures_markdown",
    "get_config",
    "get_departures",
    "get_experiment",
    "run_experiment",
    "validate_results",
]
