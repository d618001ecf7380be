"""The `kerasmed` command and the results.json schema."""

import json
import subprocess
import sys

import pytest

from kerasmed import __version__, cli
from kerasmed.experiments import (
    EXPERIMENTS,
    format_table,
    get_config,
    get_experiment,
    registry,
    validate_results,
)


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
        assert module.PRESETS is spec.presets, spec.name  # one source: the presets module
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


def test_list_imports_no_keras():
    code = (
        "import sys; from kerasmed import cli; cli.main(['list']); sys.exit('keras' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "~2 min on a 2-core CPU" in proc.stdout


@pytest.mark.parametrize(
    "text, expected",
    [
        ("epochs=3", ("epochs", 3)),
        ("learning_rate = 1e-4", ("learning_rate", 1e-4)),
        ("encoding='log'", ("encoding", "log")),
        ('encoding="log"', ("encoding", "log")),
        ("encoding=log", ("encoding", "log")),  # a bare word falls back to the string
        ("augment=None", ("augment", None)),
        ("remat=True", ("remat", True)),
        ("sequence_models.bi_fcslstm.operator_groups=(2, 3)",
         ("sequence_models.bi_fcslstm.operator_groups", (2, 3))),
        ("cnn_filters=[8, 16]", ("cnn_filters", [8, 16])),
    ],
)  # fmt: skip
def test_parse_override(text, expected):
    assert cli.parse_override(text) == expected


@pytest.mark.parametrize("text", ["epochs", "=3", "epochs=3x", "cnn_filters=[1, x]", "a=(1,"])
def test_parse_override_rejects(text):
    with pytest.raises(ValueError, match="--set"):
        cli.parse_override(text)


def test_set_reaches_run_experiment_parsed_and_checked(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(registry, "run_experiment", lambda *a, **k: calls.append((a, k)))
    argv = ["reproduce", "tlstm", "--out", str(tmp_path), "--set", "seq_epochs=3",
            "--set", "encoding=log", "--set", 'models=("lstm",)']  # fmt: skip
    assert cli.main(argv) == 0
    ((args, overrides),) = calls
    assert args == ("tlstm", "quick", None, str(tmp_path), 0)
    assert overrides == {"seq_epochs": 3, "encoding": "log", "models": ("lstm",)}


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--set", "seq_epoch=3"], "Unknown setting 'seq_epoch' (did you mean 'seq_epochs'?)"),
        (["--set", "seq_epochs=3.5"], "`seq_epochs` must be int. Received: seq_epochs=3.5"),
        (["--set", "encoding=logs"], "`encoding` must be one of 'raw', 'scaled', 'log', 'one_hot'"),
        (["--set", "models=('lstm', 'gru')"], "Received: models='gru'"),
        (["--set", "units"], "--set needs KEY=VALUE"),
    ],
)
def test_bad_set_exits_2_with_the_message(argv, needle, monkeypatch, capsys):
    monkeypatch.setattr(registry, "run_experiment", lambda *a, **k: pytest.fail("ran"))
    assert cli.main(["reproduce", "tlstm", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kerasmed: error: ") and needle in err


def test_bad_set_key_lists_the_valid_keys_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "kerasmed.cli", "reproduce", "fcslstm", "--set",
         "sequence_models.bi_fcslstm.operator_group=(2, 3)"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "did you mean 'sequence_models.bi_fcslstm.operator_groups'?" in proc.stderr
    valid = get_config("fcslstm").sequence_models.bi_fcslstm.__dataclass_fields__
    for name in valid:
        assert f"sequence_models.bi_fcslstm.{name}" in proc.stderr


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
    assert "overrides" not in text
    with_overrides = format_table({**_results({"a": {"auc": 0.5}}), "overrides": {"epochs": 3}})
    assert with_overrides.splitlines()[1] == "overrides: epochs=3"
