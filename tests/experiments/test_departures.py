"""The "differs from the paper" table: computed from the config, never drifting from it."""

import dataclasses

import pytest

from kerasmed.experiments import EXPERIMENTS, get_departures
from kerasmed.experiments.departures import (
    Departure,
    PaperSetting,
    departures,
    departures_markdown,
)


@dataclasses.dataclass(frozen=True)
class Inner:
    units: int = 32


@dataclasses.dataclass(frozen=True)
class Config:
    epochs: int = 5
    learning_rate: float = 1e-3
    widths: tuple = (16, 32)
    inner: Inner = Inner()


SETTINGS = (
    PaperSetting("epochs", 100, "epochs", "minutes on a CPU"),
    PaperSetting("learning_rate", 0.001, "learning rate", "-"),
    PaperSetting("widths", [16, 32], "widths", "-"),
    PaperSetting(
        "inner.units", 512, "LSTM units", "a small model", ours=lambda c: f"{c.inner.units} units"
    ),
    PaperSetting(None, "AlexNet", "image model", "no download", ours="small CNN"),
)


def test_only_differing_settings_are_listed():
    rows = departures(Config(), SETTINGS)
    assert [r.setting for r in rows] == ["epochs", "LSTM units", "image model"]
    assert rows[0] == Departure("epochs", 100, 5, "minutes on a CPU")
    assert rows[1].ours == "32 units"


def test_an_override_that_matches_the_paper_removes_the_row():
    config = dataclasses.replace(Config(), epochs=100, inner=Inner(512))
    assert [r.setting for r in departures(config, SETTINGS)] == ["image model"]


def test_custom_match_and_float_tolerance():
    settings = (
        PaperSetting("learning_rate", 0.001 + 1e-15, "lr"),
        PaperSetting("widths", 32, "widest", matches=lambda ours, paper: max(ours) == paper),
    )
    assert departures(Config(), settings) == []
    assert len(departures(dataclasses.replace(Config(), widths=(8, 16)), settings)) == 1


def test_unknown_field_is_an_error():
    with pytest.raises(ValueError, match="no setting 'inner.unit'"):
        departures(Config(), (PaperSetting("inner.unit", 1),))


def test_method_difference_needs_ours():
    with pytest.raises(ValueError, match="needs `ours`"):
        PaperSetting(None, "AlexNet", "image model")


def test_markdown_table():
    text = departures_markdown(departures(Config(), SETTINGS))
    lines = text.splitlines()
    assert lines[0] == "| setting | paper | this run | why |"
    assert lines[2] == "| epochs | 100 | 5 | minutes on a CPU |"
    assert len(lines) == 2 + 3
    assert "follows the paper" in departures_markdown([])


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_registered_experiment_resolves_its_paper_settings(name):
    # A typo in an experiment's PAPER_SETTINGS fails here; every preset resolves.
    for preset in EXPERIMENTS[name].presets:
        for row in get_departures(name, preset):
            assert row.setting and isinstance(row.to_dict(), dict)
