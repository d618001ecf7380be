"""Where a run departs from its paper: the "differs from the paper" table, computed from the config.

Each experiment's presets module lists the paper's settings once, as a tuple
``PAPER_SETTINGS`` of `PaperSetting` records: the config field (a dotted path, as the
overrides use), the paper's value and why kerasmed may depart from it. `departures` compares
a run's config with that list and returns one `Departure` per setting where the two differ
(the paper preset should give few or none, the quick preset several); a record with
``field=None`` is a difference of method that no setting expresses (e.g. a different
backbone family) and is always listed. Because the table is computed from the config a run
used, overrides included, it cannot drift from the code: the notebooks show it near the top
and the tests check it.

This module imports no Keras.

Example:

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Config:
...     epochs: int = 5
...     batch_size: int = 1
>>> SETTINGS = (
...     PaperSetting("epochs", 100, "epochs", "a CPU run of minutes"),
...     PaperSetting("batch_size", 1, "batch size", "-"),
...     PaperSetting(None, "AlexNet features", "image model", "no download", ours="small CNN"),
... )
>>> [d.setting for d in departures(Config(), SETTINGS)]
['epochs', 'image model']
>>> print(departures_markdown(departures(Config(), SETTINGS)))  # doctest: +NORMALIZE_WHITESPACE
| setting | paper | this run | why |
| --- | --- | --- | --- |
| epochs | 100 | 5 | a CPU run of minutes |
| image model | AlexNet features | small CNN | no download |
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "CPU_MINUTES",
    "Departure",
    "PaperSetting",
    "data_setting",
    "departures",
    "departures_markdown",
]

# The `why` of a setting that a quick preset scales down so that it runs on this project's
# reference machine (the README's "quick" column).
CPU_MINUTES = "minutes on a 2-core CPU"


@dataclasses.dataclass(frozen=True)
class PaperSetting:
    """The paper's value of one setting, and why a preset may depart from it.

    Args:
        field: the config field as a dotted path (``"sequence_models.lstm.units"``), or
            ``None`` for a difference of method that no config field expresses (then it
            is always a departure and `ours` says what kerasmed does).
        paper: the paper's value, compared with the config's value by ``==`` (floats to a
            relative 1e-9) unless `matches` is given; shown as it is.
        label: what a reader calls the setting (``"learning rate"``); the field if empty.
        why: why kerasmed departs from the paper where it does.
        ours: for ``field=None``, what kerasmed does instead (text); for a field, a
            function ``config -> shown value`` when the raw field needs translating
            (e.g. a pair of fields shown as one ``"64 x 64"``); by default the field's value.
        matches: optional ``(config_value, paper) -> bool`` for settings that agree in
            more than one way (e.g. the paper's "512" against a tuple of layer widths).
        embedded_only: a departure of the embedded data only (its size, the phantom itself):
            not listed for a run on a real dataset (``departures(..., embedded=False)``).
    """

    field: str | None
    paper: Any
    label: str = ""
    why: str = ""
    ours: Any = None
    matches: Callable[[Any, Any], bool] | None = None
    embedded_only: bool = False

    def __post_init__(self):
        if self.field is None and not isinstance(self.ours, str):
            raise ValueError(
                "A PaperSetting without a field is a difference of method and needs `ours` "
                f"(what kerasmed does, as text). Received: label={self.label!r}, ours={self.ours!r}"
            )


def data_setting(paper, ours, why):
    """The ``"data"`` row every presets module starts with: the paper's dataset against the
    embedded one (a departure of the embedded data only, `why` saying how to read the real one).

    >>> data_setting("COV19-CT-DB", "a chest CT phantom", "not public").label
    'data'
    """
    return PaperSetting(None, paper, "data", why, ours=ours, embedded_only=True)


@dataclasses.dataclass(frozen=True)
class Departure:
    """One row of the "differs from the paper" table."""

    setting: str
    paper: Any
    ours: Any
    why: str

    def to_dict(self) -> dict:
        return {k: _shown(v) for k, v in dataclasses.asdict(self).items()}


def _get(config, path):
    value = config
    for part in path.split("."):
        if isinstance(value, dict):
            if part not in value:
                raise ValueError(f"Config has no setting {path!r} (at {part!r}).")
            value = value[part]
        elif dataclasses.is_dataclass(value) and part in {
            f.name for f in dataclasses.fields(value)
        }:
            value = getattr(value, part)
        else:
            raise ValueError(
                f"Config {type(config).__name__} has no setting {path!r} (at {part!r})."
            )
    return value


def _same(ours, paper):
    if isinstance(ours, float | int) and isinstance(paper, float | int):
        return math.isclose(ours, paper, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(ours, list | tuple) and isinstance(paper, list | tuple):
        return len(ours) == len(paper) and all(_same(a, b) for a, b in zip(ours, paper))
    return ours == paper


def _shown(value):
    if isinstance(value, tuple):
        return list(value)
    return value


def departures(config, settings: Iterable[PaperSetting], embedded=True) -> list[Departure]:
    """The settings of `config` that differ from the paper's, in the order of `settings`.

    Args:
        config: an experiment's config (a frozen dataclass, overrides applied).
        settings: the experiment's ``PAPER_SETTINGS``.
        embedded: the run uses the embedded data (no ``data_dir``); ``False`` leaves out
            the settings marked `embedded_only`.

    Returns:
        A list of `Departure` (empty when the run follows the paper in every listed setting).

    Raises:
        ValueError: a setting names a field the config does not have (a typo in
            ``PAPER_SETTINGS`` fails here, not silently).
    """
    rows = []
    for setting in settings:
        label = setting.label or setting.field
        if setting.embedded_only and not embedded:
            continue
        if setting.field is None:
            rows.append(Departure(label, setting.paper, setting.ours, setting.why))
            continue
        value = _get(config, setting.field)
        same = setting.matches or _same
        if not same(value, setting.paper):
            shown = setting.ours(config) if callable(setting.ours) else value
            rows.append(Departure(label, setting.paper, shown, setting.why))
    return rows


def _cell(value) -> str:
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def departures_markdown(rows: Iterable[Departure]) -> str:
    """The departures as a Markdown table (``IPython.display.Markdown`` shows it in a notebook).

    An empty list gives one line saying the run follows the paper in every listed setting.
    """
    rows = list(rows)
    if not rows:
        return "This run follows the paper in every setting kerasmed lists."
    lines = ["| setting | paper | this run | why |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {_cell(r.setting)} | {_cell(r.paper)} | {_cell(r.ours)} | {_cell(r.why)} |"
        for r in rows
    ]
    return "\n".join(lines)
