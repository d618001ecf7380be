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


def test_embedded_only_rows_are_left_out_on_real_data():
    settings = (
        PaperSetting("epochs", 100, "epochs", "-", embedded_only=True),
        PaperSetting(None, "COV19-CT-DB", "data", "-", ours="phantom", embedded_only=True),
        PaperSetting("widths", (64,), "batch", "-"),
    )
    assert [r.setting for r in departures(Config(), settings)] == ["epochs", "data", "batch"]
    assert [r.setting for r in departures(Config(), settings, embedded=False)] == ["batch"]


@pytest.mark.parametrize(
    "name, method_rows",
    [("two-step", ["data", "Swin variant", "Swin weight decay"]), ("xray", ["data"])],
)
def test_paper_preset_departs_only_in_method(name, method_rows):
    # The paper preset follows the paper in every setting; what is left is what no setting
    # can express (the data without --data-dir, a library's missing variant).
    assert [r.setting for r in get_departures(name, "paper")] == method_rows
    quick = [r.setting for r in get_departures(name, "quick")]
    assert len(quick) > len(method_rows) and set(method_rows) <= set(quick)
    real = [r.setting for r in get_departures(name, "paper", data_dir="somewhere")]
    assert "data" not in real


def test_an_override_to_the_papers_value_leaves_the_table():
    assert "epochs per model" in [r.setting for r in get_departures("xray", "quick")]
    rows = get_departures("xray", "quick", epochs=25)
    assert "epochs per model" not in [r.setting for r in rows]
