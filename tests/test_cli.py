"""The `kerasmed` command and the results.json schema."""

import json
import subprocess
import sys

import pytest

from kerasmed import __version__, cli
from kerasmed.experiments import EXPERIMENTS, format_table, get_experiment, validate_results


def test_version_is_exposed():
    assert __version__.count(".") == 2


def test_list_prints_every_experiment_and_preset(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name, spec in EXPERIMENTS.items():
        assert name in out
        for preset, runtime in spec.runtimes.items():
            assert preset in out and runtime in out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["reproduce", "nosuch"], "unknown experiment 'nosuch'"),
        (["reproduce", "tlstm", "--preset", "huge"], "unknown preset 'huge'"),
    ],
)
def test_unknown_names_exit_2_and_list_valid_ones(argv, needle, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "tlstm" in err and "quick" in err


def test_console_script_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "kerasmed.cli", "reproduce", "nosuch"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Valid experiments: tlstm" in proc.stderr


def test_get_experiment_error_names_value():
    with pytest.raises(ValueError, match="Received: experiment='nope'"):
        get_experiment("nope")


def test_experiment_modules_declare_the_registered_presets():
    for spec in EXPERIMENTS.values():
        module = spec.load()
        assert set(module.PRESETS) == set(spec.presets), spec.name
        validate_results(
            {
                "experiment": spec.name,
                "preset": "paper",
                "backend": "tensorflow",
                "seconds": 0.0,
                "models": module.PAPER,
                "paper": module.PAPER,
            }
        )


def _results(models):
    return {
        "experiment": "x",
        "preset": "quick",
        "backend": "jax",
        "seconds": 1.5,
        "models": models,
        "paper": {"a": {"f": {"0": 0.5, "avg": 0.5}, "auc": 0.9}},
    }


def test_validate_results_accepts_the_documented_shape():
    validate_results(_results({"a": {"f": {"0": 0.25, "avg": 0.25}, "auc_ci": [0.1, 0.2]}}))
    json.dumps(_results({"a": {"auc": 0.5}}))


@pytest.mark.parametrize(
    "models, needle",
    [
        ({"a": {"f": {"0": 0.25}}}, "'avg'"),
        ({"a": {"f": "high"}}, "Received: 'high'"),
        ({"a": {}}, "must map metrics"),
        ({"a": {"f": {"0": None, "avg": 1.0}}}, "must be a number"),
    ],
)
def test_validate_results_rejects_bad_shapes(models, needle):
    with pytest.raises(ValueError, match=needle):
        validate_results(_results(models))


def test_format_table_puts_paper_row_under_ours():
    text = format_table(_results({"a": {"f": {"0": 0.25, "avg": 0.25}}, "b": {"auc": 0.75}}))
    lines = text.splitlines()
    ours = next(i for i, line in enumerate(lines) if line.startswith("a ") and "ours" in line)
    assert "0.250" in lines[ours]
    assert lines[ours + 1].split()[:3] == ["paper", "0.500", "0.500"]
    assert "0.750" in text and "0.900" in text
    # a model the paper did not report shows '-' on its paper row
    b_row = next(i for i, line in enumerate(lines) if line.startswith("b ") and "auc" not in line)
    assert lines[b_row + 1].split() == ["paper", "-", "-"]
