"""The "differs from the paper" tables of papers 000-002 (tlstm, ich, fcslstm)."""

import dataclasses

import pytest

from kerasmed.experiments import EXPERIMENTS, get_config, get_departures
from kerasmed.experiments.departures import departures

NAMES = ("tlstm", "ich", "fcslstm")


def _settings(rows):
    return [r.setting for r in rows]


@pytest.mark.parametrize("name", NAMES)
def test_every_row_resolves_and_explains_itself(name):
    settings = EXPERIMENTS[name].paper_settings
    assert settings, name
    for preset in EXPERIMENTS[name].presets:
        config = get_config(name, preset)
        for setting in settings:
            assert setting.why, setting  # every departure says why
            # resolves its field (a typo raises ValueError) and shows a value
            for row in departures(config, (setting,)):
                assert row.ours is not None and str(row.ours), (setting, row)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("tlstm", ["data", "image features", "batch size (sequences)"]),
        (
            "ich",
            [
                "data",
                "slice labels for stage 1",
                "maximum filter along z of the stage-1 slices",
                "slice CNN initializer",
            ],
        ),
        (
            "fcslstm",
            [
                "data",
                "held-out subjects (never trained on)",
                "epochs",
                "batch (sequences)",
                "input operator Ψ_x",
                "gate convolution after Ψ_x",
                "initialization",
            ],
        ),
    ],
)
def test_paper_preset_lists_only_method_and_data(name, expected):
    assert _settings(get_departures(name, "paper")) == expected


@pytest.mark.parametrize(
    "name, present",
    [
        ("tlstm", ["image features", "batch size (sequences)", "training targets"]),
        (
            "ich",
            [
                "stage-1 learning rate (Adam)",
                "augmentation (Section III-C)",
                "batch (volumes)",
                "slice feature vector",
                "units of each BiLSTM",
                "maximum filter along z (volume stages)",
            ],
        ),
        ("fcslstm", ["epochs", "gate convolution after Ψ_x", "slice size (pixels)"]),
    ],
)
def test_quick_preset_lists_its_departures(name, present):
    rows = get_departures(name, "quick")
    assert set(present) <= set(_settings(rows)), _settings(rows)
    assert len(rows) > len(get_departures(name, "paper"))


def test_quick_rows_show_the_runs_values():
    rows = {r.setting: r for r in get_departures("tlstm", "quick")}
    assert rows["batch size (sequences)"].ours == "32, padded and masked"
    assert rows["batch size (sequences)"].paper == 1
    assert rows["training targets"].ours == "every exam's labels"
    ich = {r.setting: r for r in get_departures("ich", "quick")}
    assert ich["stage-1 learning rate (Adam)"].paper == 1e-4
    assert ich["stage-1 learning rate (Adam)"].ours == 1e-3
    assert ich["stage-2 epochs (the paper: best model after ~13,000 volumes)"].ours == (
        "6 (480 volumes)"
    )
    assert ich["augmentation (Section III-C)"].ours == "none"


@pytest.mark.parametrize(
    "name, overrides, removed",
    [
        ("tlstm", {"batch_size": 1}, "batch size (sequences)"),
        ("tlstm", {"supervise_every_step": False}, "training targets"),
        ("ich", {"pretrain_learning_rate": 1e-4}, "stage-1 learning rate (Adam)"),
        ("ich", {"augment": "paper"}, "augmentation (Section III-C)"),
        ("ich", {"volume_batch": 1}, "batch (volumes)"),
        ("ich", {"feature_dim": 512}, "slice feature vector"),
        ("fcslstm", {"image_size": 256}, "slice size (pixels)"),
    ],
)
def test_an_override_to_the_papers_value_removes_its_row(name, overrides, removed):
    assert removed in _settings(get_departures(name, "quick"))
    assert removed not in _settings(get_departures(name, "quick", **overrides))


def test_an_override_away_from_the_paper_adds_a_row():
    assert "VGG-16 channels divided by" not in _settings(get_departures("fcslstm", "quick"))
    rows = get_departures("fcslstm", "quick", width_divisor=8)
    assert "VGG-16 channels divided by" in _settings(rows)
    assert "test time point" in _settings(get_departures("fcslstm", "quick", test_timepoint=0))
    row = {r.setting: r for r in get_departures("fcslstm", "paper", test_timepoint=0)}
    assert row["test time point"].ours == "time point 1"


def test_ich_z_filter_rows_swap_between_presets():
    # The quick preset does not filter z at all (a departure of the volume stages); the paper
    # preset filters z once for every stage (a departure of stage 1 only).
    quick, paper = (_settings(get_departures("ich", p)) for p in ("quick", "paper"))
    assert "maximum filter along z (volume stages)" in quick
    assert "maximum filter along z of the stage-1 slices" not in quick
    assert "maximum filter along z (volume stages)" not in paper


@pytest.mark.parametrize("name", NAMES)
def test_embedded_only_rows_leave_on_real_data(name):
    embedded = _settings(get_departures(name, "quick"))
    real = _settings(get_departures(name, "quick", data_dir="somewhere"))
    assert "data" in embedded and "data" not in real
    assert set(real) < set(embedded)
    only = {s.label for s in EXPERIMENTS[name].paper_settings if s.embedded_only}
    assert not only & set(real)


def test_a_dataclass_replace_follows_the_config():
    # departures reads the config it is given (no cached preset values)
    config = dataclasses.replace(get_config("tlstm", "quick"), batch_size=1)
    rows = departures(config, EXPERIMENTS["tlstm"].paper_settings)
    assert "batch size (sequences)" not in _settings(rows)
