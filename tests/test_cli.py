"""The `kerasmed` command and the results.json schema."""

import json
import os
import subprocess
import sys
import types

import pytest

from kerasmed import __version__, cli, environment
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
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert spec.notebook in row and os.path.exists(spec.notebook)
        assert row.endswith("ready") == spec.ready
    assert "two-step" in out and EXPERIMENTS["two-step"].ready


def test_readme_quotes_the_presets_runtimes():
    """README.md's runtimes are the presets' own (the one place `kerasmed list` reads)."""
    with open("README.md", encoding="utf-8") as file:
        readme = file.read()
    for spec in EXPERIMENTS.values():
        for preset in spec.presets.values():
            assert f"| `{spec.name}` | `{preset.name}` | {preset.expected} |" in readme


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

    def run(*args, **kwargs):
        calls.append((args, kwargs))
        return _results({"a": {"auc": 0.5}})

    monkeypatch.setattr(registry, "run_experiment", run)
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


TINY_TLSTM = [
    "--set", "num_train=16", "--set", "num_test=16", "--set", "image_size=16",
    "--set", "cnn_epochs=1", "--set", "seq_epochs=1", "--set", "models=('lstm', 'tlstm_v1')",
    "--set", "cnn_filters=(4,)", "--set", "feature_dim=8", "--set", "units=4",
]  # fmt: skip


def _fresh_environment():
    """This process's environment less the log level the test setup sets (a new user's shell)."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def test_reproduce_is_quiet_and_lists_every_file_written(tmp_path):
    """A real (tiny) run in a fresh process: no backend log lines on stderr, the table with its
    legend and verdict, and a last line naming every file written, as results.json does."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "kerasmed.cli", "reproduce", "tlstm", "--out", str(out),
         *TINY_TLSTM],
        capture_output=True, text=True, env=_fresh_environment(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for noise in ("E0000", "I0000", "W0000", "oneDNN", "absl::InitializeLog", "retracing"):
        assert noise not in proc.stderr, proc.stderr
    results = json.loads((out / "results.json").read_text())
    on_disk = sorted(p.name for p in out.iterdir())
    assert results["files"] == on_disk
    assert {"results.json", "single_image.weights.h5", "learning_curves.png"} <= set(on_disk)
    lines = proc.stdout.rstrip().splitlines()
    assert lines[-1].startswith(f"Wrote {out.as_posix()}/: " + ", ".join(on_disk) + " (")
    verdict = results["verdict"]
    assert verdict["holds"] in (True, False) and f"Verdict: {verdict['text']}" in lines
    assert any(line.startswith("Legend: ") for line in lines)


def test_filter_startup_lines_keeps_everything_else():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796293065.207592    8013 port.cc:153] oneDNN custom operations are on.\n"
        "I0000 00:00:1796293065.252764    8013 cpu_feature_guard.cc:227] This TensorFlow ...\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild ...\n"
        "E0000 00:00:1796293071.868871    8013 cuda_platform.cc:52] failed call to cuInit: x\n"
        "E0000 00:00:1796293071.868871    8013 something.cc:1] a real error\n"
        "UserWarning: something else\n"
    )
    assert environment.filter_startup_lines(text) == (
        "E0000 00:00:1796293071.868871    8013 something.cc:1] a real error\n"
        "UserWarning: something else\n"
    )


def test_verbose_leaves_the_log_levels_alone(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    environment.start_backend(quiet=False)
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    environment.start_backend(quiet=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


def test_quiet_start_hides_tqdms_no_widgets_warning_only():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        environment.quiet_backend_logs()
        warnings.warn("IProgress not found. Please update jupyter and ipywidgets.", stacklevel=1)
        warnings.warn("something else", stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_missing_backend_exits_2_with_the_install_line(backend):
    code = (
        f"import sys; sys.modules[{backend!r}] = None; from kerasmed import cli; "
        f"rc = cli.main(['reproduce', 'tlstm', '--backend', {backend!r}]); "
        "sys.exit(rc + 10 * ('keras' in sys.modules))"
    )  # sys.modules[name] = None: `find_spec` and `import` see the package as missing
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr  # and Keras was never imported
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"kerasmed: error: the {backend} backend needs the {backend!r}")
    assert f'pip install -e ".[{backend}]"' in proc.stderr


def test_missing_backend_via_environment_variable(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setattr(environment.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(registry, "run_experiment", lambda *a, **k: pytest.fail("ran"))
    assert cli.main(["reproduce", "tlstm"]) == 2
    assert 'Install it with: pip install -e ".[jax]"' in capsys.readouterr().err


def test_install_extras_exist_in_pyproject():
    import tomllib

    with open("pyproject.toml", "rb") as file:
        extras = tomllib.load(file)["project"]["optional-dependencies"]
    for backend in ("jax", "torch"):
        assert environment.install_line(backend) == f'pip install -e ".[{backend}]"'
        assert any(dep.startswith(backend) for dep in extras[backend])


@pytest.mark.parametrize(
    "experiment, data_file, script",
    [
        ("tlstm", "sequences.npz", "data_prep/longitudinal_manifest.py"),
        ("ich", "labels.csv", "data_prep/head_ct_ich.py"),
        ("fcslstm", "segmentation.npz", "data_prep/longitudinal_segmentation.py"),
    ],
)
def test_data_dir_without_its_file_names_the_script_and_writes_nothing(
    experiment, data_file, script, tmp_path, capsys
):
    out = tmp_path / "results" / experiment
    argv = ["reproduce", experiment, "--data-dir", str(tmp_path), "--out", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"--data-dir has no {data_file}" in err and script in err
    assert os.path.exists(script)
    assert not (tmp_path / "results").exists()


def _failing_experiment(monkeypatch):
    def run(out=None, **kwargs):
        with open(os.path.join(out, "partial.png"), "wb") as file:  # a figure, then the failure
            file.write(b"x")
        raise ValueError("the data are unusable. Received: x=1")

    real = registry.EXPERIMENTS["tlstm"]
    fake = types.SimpleNamespace(
        presets=real.presets, load=lambda: types.SimpleNamespace(run=run, PAPER={})
    )
    monkeypatch.setattr(registry, "get_experiment", lambda name: fake)
    monkeypatch.setattr(registry, "check_data_dir", lambda name, data_dir: None)


def test_failed_run_removes_the_out_folder_it_created(monkeypatch, tmp_path):
    _failing_experiment(monkeypatch)
    out = tmp_path / "new" / "tlstm"
    with pytest.raises(ValueError, match="unusable"):
        registry.run_experiment("tlstm", out=str(out))
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "kept"
    existing.mkdir()
    with pytest.raises(ValueError):
        registry.run_experiment("tlstm", out=str(existing))
    assert existing.is_dir()  # a folder that was there before the run stays


def test_format_table_has_legend_additions_and_verdict():
    results = _results({"a": {"f": {"0": 0.25, "avg": 0.25}}, "mine": {"auc": 0.6}})
    results["verdict"] = {"text": "a claim: reproduced (numbers)"}
    lines = format_table(results).splitlines()
    assert lines[-1] == "Verdict: a claim: reproduced (numbers)"
    assert "kerasmed's additions, not in the paper: mine." in lines
    assert any(line.startswith("Columns 0: one per label (the labels)") for line in lines)
    assert any(line.startswith("Legend: 'ours' is this run") for line in lines)


def test_requirements_txt_and_pyproject_agree():
    """Every package of requirements.txt has the same version range in pyproject.toml."""
    import tomllib
    from packaging.requirements import Requirement

    with open("pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    declared = {}
    for line in [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]:
        requirement = Requirement(line)
        declared.setdefault(requirement.name, set()).add(str(requirement.specifier))
    with open("requirements.txt", encoding="utf-8") as file:
        lines = [line.split("#")[0].strip() for line in file]
    pinned = [Requirement(line) for line in lines if line and not line.startswith("-")]
    assert "keras" in {r.name for r in pinned}
    for requirement in pinned:
        assert str(requirement.specifier) in declared.get(requirement.name, ()), requirement


def test_gitignore_keeps_the_venv_and_results_out():
    with open(".gitignore", encoding="utf-8") as file:
        ignored = file.read().split()
    assert ".venv/" in ignored and "results/" in ignored
