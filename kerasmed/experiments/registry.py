"""The experiment registry, `results.json` schema and the paper-vs-ours table.

Each paper has one experiment module in this package exposing ``PAPER`` (the paper's
published numbers, in the ``models`` shape below) and ``run(preset, data_dir, out, seed,
verbose, **overrides) -> dict`` returning at least ``{"models": {...}}``, and one presets
module in `kerasmed.experiments.presets` (same name) with its frozen config class,
``PRESETS`` (``{name: Preset}``: config, expected runtime and hardware), ``TITLE`` and
``NOTEBOOK``. This module reads only the presets modules, so ``kerasmed list`` and the
checks of ``--set`` overrides import no Keras.

``results.json`` shape::

    {"experiment": str, "preset": str, "backend": str, "seconds": float,
     "data_dir": str | None (the prepared dataset; None = the embedded data),
     "models": {model: {metric: value | [low, high] | {label: value, "avg": value}}},
     "paper": {same shape, the paper's published numbers},
     "overrides": {dotted key: value}, "config": {the resolved config},
     "verdict": {"claim": str, "holds": bool | None, "evidence": str, "text": str},
     "findings": [the further checks, each shaped as "verdict"],
     "departures": [{"setting": str, "paper": ..., "ours": ..., "why": str}],
     "files": [every file the run wrote in `out`, results.json included], ...extra keys...}

The verdict is computed from the numbers by `kerasmed.experiments.verdicts`; the departures
(where the run's config differs from the paper, see `get_departures`) by
`kerasmed.experiments.departures` from the presets module's ``PAPER_SETTINGS``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import numbers
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from kerasmed.experiments.config import Preset, config_to_dict, normalize_overrides, resolve_config
from kerasmed.experiments.departures import departures
from kerasmed.experiments.verdicts import findings, verdict


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A registered experiment: one paper's end-to-end run.

    Args:
        name: the name used on the command line (`kerasmed reproduce NAME`).
        module: dotted path of the module holding ``PAPER`` and ``run``.
        title: one line naming the paper.
        notebook: the tutorial notebook that walks through the same run.
        presets: ``{preset name: Preset}`` (config, expected runtime and hardware).
        data_file: the file a ``--data-dir`` folder must hold, or ``None`` when the experiment
            reads no real data yet.
        data_prep: the command that makes that folder from the public dataset.
        ready: ``True`` when the quick preset reproduces the paper's claim (the notebook is
            done); ``False`` while the experiment is in progress.
    """

    name: str
    module: str
    title: str
    notebook: str
    presets: Mapping[str, Preset]
    data_file: str | None = None
    data_prep: str | None = None
    ready: bool = True
    paper_settings: tuple = ()

    @property
    def runtimes(self) -> dict:
        """Preset name -> expected wall time and hardware, as shown by `kerasmed list`."""
        return {name: preset.expected for name, preset in self.presets.items()}

    def load(self):
        """Imports and returns the experiment module (this imports Keras)."""
        return importlib.import_module(self.module)


def _register(name, module, data_file, data_prep, ready=True):
    presets = importlib.import_module(f"kerasmed.experiments.presets.{module}")
    return Experiment(
        name,
        f"kerasmed.experiments.{module}",
        presets.TITLE,
        presets.NOTEBOOK,
        presets.PRESETS,
        data_file,
        data_prep,
        ready,
        tuple(getattr(presets, "PAPER_SETTINGS", ())),
    )


EXPERIMENTS = {
    e.name: e
    for e in (
        _register(
            "tlstm",
            "longitudinal",
            "sequences.npz",
            "python data_prep/longitudinal_manifest.py MANIFEST.csv --out DIR",
        ),
        _register(
            "ich", "ich", "labels.csv", "python data_prep/head_ct_ich.py cq500|rsna ... --out DIR"
        ),
        _register(
            "fcslstm",
            "fcslstm",
            "segmentation.npz",
            "python data_prep/longitudinal_segmentation.py MANIFEST.csv --out DIR",
        ),
        _register(
            "two-step",
            "two_step",
            "scans.csv",
            "python data_prep/two_step_ct.py COV19-CT-DB --out DIR [--preset quick|paper]",
        ),
        _register(
            "xray",
            "xray",
            "ImageCLEFmed2009_train_codes.02.csv",
            "the ImageCLEF 2009 release as distributed (layout in kerasmed.io.imageclef)",
        ),
    )
}


def get_experiment(name: str) -> Experiment:
    """Returns the registered experiment called `name`.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    if name not in EXPERIMENTS:
        raise ValueError(
            f"Unknown experiment. Valid experiments: {', '.join(sorted(EXPERIMENTS))}. "
            f"Received: experiment={name!r}"
        )
    return EXPERIMENTS[name]


def get_config(name, preset="quick", **overrides):
    """The frozen config of one experiment's preset, with `overrides` applied (no Keras import).

    Args:
        name: a registered experiment name.
        preset: one of its presets.
        **overrides: settings to change, see `kerasmed.experiments.config.apply_overrides`
            (dotted keys through ``**{"a.b": value}``, or a dict for a nested setting).

    Returns:
        The experiment's config dataclass instance (the preset itself is unchanged).

    Example:

    >>> config = get_config("fcslstm", "quick", test_timepoint=0)
    >>> config.test_timepoint, get_config("fcslstm", "quick").test_timepoint
    (0, 2)
    """
    return resolve_config(get_experiment(name).presets, preset, overrides, experiment=name)


def get_departures(name, preset="quick", data_dir=None, **overrides):
    """Where a run of `preset` (with `overrides`) departs from the paper: a list of `Departure`.

    Computed from the config (no Keras import) and the presets module's ``PAPER_SETTINGS``,
    so the "differs from the paper" table of a notebook cannot drift from the code;
    `kerasmed.experiments.departures.departures_markdown` renders it.

    Example:

    >>> rows = get_departures("fcslstm", "quick")
    >>> isinstance(rows, list)
    True
    """
    config = get_config(name, preset, **overrides)
    return departures(config, get_experiment(name).paper_settings, embedded=data_dir is None)


def run_experiment(
    name, preset="quick", data_dir=None, out=None, seed=0, verbose=True, distribute=None,
    **overrides,
):  # fmt: skip
    """Runs one experiment end to end and writes ``out/results.json``.

    Args:
        name: a registered experiment name (see `kerasmed list`).
        preset: one of the experiment's presets, e.g. ``"quick"`` or ``"paper"``.
        data_dir: folder holding a real dataset prepared by ``data_prep/``; ``None`` uses
            the experiment's embedded data.
        out: output folder for ``results.json`` and figures; ``None`` writes nothing.
        seed: global seed (NumPy, Python and the Keras backend).
        verbose: print progress bars and stage messages (the paper-vs-ours table is
            `format_table(results)`; `report` prints it with the files written).
        distribute: None (one device) or ``"data-parallel"`` (every local device, or every
            host's; see `kerasmed.distribute.distribution_scope`).
        **overrides: settings of the preset to change for this run (see `get_config`);
            checked before Keras is imported and recorded in ``results.json`` with the
            resolved ``config``.

    Returns:
        The results dictionary (the ``results.json`` content).

    Raises:
        FileNotFoundError: when `data_dir` is not a folder or lacks the file the experiment
            reads (the message names the ``data_prep/`` command that makes it).

    A run that fails removes the `out` folder it created (an existing folder is kept).
    """
    config = get_config(name, preset, **overrides)
    applied = normalize_overrides(config, overrides)
    check_data_dir(name, data_dir)
    module = get_experiment(name).load()

    import keras

    from kerasmed.experiments.common import figure_caption  # imports Keras: not at the top

    keras.utils.set_random_seed(seed)
    created = _make_folder(out)
    before = _snapshot(out)
    start = time.perf_counter()
    from kerasmed.distribute import distribution_scope

    try:
        caption = f"{name}, {preset} preset, {keras.backend.backend()} backend, seed {seed}"
        with figure_caption(caption), distribution_scope(distribute):
            produced = module.run(
                preset=preset, data_dir=data_dir, out=out, seed=seed, verbose=verbose, **overrides
            )
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    results = {
        "experiment": name,
        "preset": preset,
        "backend": keras.backend.backend(),
        "seconds": round(seconds, 2),
        "data_dir": None if data_dir is None else str(data_dir),
        "models": produced.pop("models"),
        "paper": module.PAPER,
        "overrides": applied,
        "distribute": distribute,
        "config": config_to_dict(config),
        **produced,
    }
    found = verdict(results)
    if found is not None:
        results["verdict"] = found.to_dict()
    results["findings"] = [f.to_dict() for f in findings(results)]
    results["departures"] = [
        d.to_dict()
        for d in departures(config, get_experiment(name).paper_settings, embedded=data_dir is None)
    ]
    validate_results(results)
    if out is not None:
        results["files"] = sorted({*_written(out, before), "results.json"})
        path = Path(out) / "results.json"
        path.write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    return results


def check_data_dir(name, data_dir):
    """Raises ``FileNotFoundError`` unless `data_dir` is ``None`` or a folder experiment
    `name` can read; the message names the ``data_prep/`` command that makes one."""
    if data_dir is None:
        return
    spec = get_experiment(name)
    if spec.data_file is None:
        raise FileNotFoundError(
            f"Experiment {name!r} reads no real dataset yet: run it without --data-dir. "
            f"Received: data_dir={str(data_dir)!r}"
        )
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"--data-dir is not a folder. Received: data_dir={data_dir!r}")
    if not (folder / spec.data_file).exists():  # a file, or a folder (COV19-CT-DB's train/)
        raise FileNotFoundError(
            f"--data-dir has no {spec.data_file}, the file experiment {name!r} reads; make the "
            f"folder with: {spec.data_prep} (see README, 'Real datasets'). "
            f"Received: data_dir={str(data_dir)!r}"
        )


def _make_folder(out):
    """Creates `out` (and its parents); returns the topmost folder created, or ``None``."""
    if out is None:
        return None
    path = Path(out).absolute()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    return missing[-1] if missing else None


def _snapshot(out):
    if out is None:
        return {}
    return {p: p.stat().st_mtime_ns for p in Path(out).rglob("*") if p.is_file()}


def _written(out, before):
    """The files in `out` (relative paths) that are new or changed since `before`."""
    after = _snapshot(out)
    return [p.relative_to(out).as_posix() for p, mtime in after.items() if before.get(p) != mtime]


def report(results, out=None) -> str:
    """The table with its legend and verdict, and one line listing every file written.

    Example:

    >>> results = {"experiment": "x", "preset": "quick", "backend": "jax", "seconds": 2.0,
    ...            "models": {"a": {"auc": 0.5}}, "files": ["results.json", "roc.png"]}
    >>> print(report(results, out="results/x").splitlines()[-1])
    Wrote results/x/: results.json, roc.png (2 s)
    """
    text = format_table(results)
    if out is not None and results.get("files"):
        text += (
            f"\n\nWrote {Path(out).as_posix()}/: {', '.join(results['files'])} "
            f"({results['seconds']:.0f} s)"
        )
    return text


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Not JSON serializable: {type(value).__name__}")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_value(where, value):
    if _is_number(value):
        return
    if isinstance(value, (list, tuple)) and value and all(_is_number(v) for v in value):
        return
    if isinstance(value, dict) and value:
        for label, v in value.items():
            if not _is_number(v):
                raise ValueError(f"{where}[{label!r}] must be a number. Received: {v!r}")
        if "avg" not in value:
            raise ValueError(f"{where} is per-label and needs an 'avg' entry. Received: {value!r}")
        return
    raise ValueError(
        f"{where} must be a number, a list of numbers or {{label: number, 'avg': number}}. "
        f"Received: {value!r}"
    )


def validate_results(results: dict) -> None:
    """Checks that `results` has the ``results.json`` shape; raises ``ValueError`` if not."""
    for key, kind in (
        ("experiment", str),
        ("preset", str),
        ("backend", str),
        ("seconds", numbers.Real),
        ("models", dict),
        ("paper", dict),
    ):
        if not isinstance(results.get(key), kind):
            raise ValueError(
                f"results[{key!r}] must be a {kind.__name__}. Received: {results.get(key)!r}"
            )
    for section in ("models", "paper"):
        for model, metrics in results[section].items():
            if not isinstance(metrics, dict) or not metrics:
                raise ValueError(f"results[{section!r}][{model!r}] must map metrics to values.")
            for metric, value in metrics.items():
                _check_value(f"results[{section!r}][{model!r}][{metric!r}]", value)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if _is_number(value):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def format_table(results: dict, verdicts: bool = True) -> str:
    """Formats the paper-vs-ours table: one block per metric, one row per model and source.

    Per-label metrics get a column per label plus ``avg``; plain metrics get one column.
    Models or metrics the paper did not report show ``-`` on the paper row. With `verdicts`,
    the run's verdict and findings (`kerasmed.experiments.verdicts`) follow the table (the
    notebooks print them in a cell of their own, with ``verdicts=False`` here).
    """
    ours, paper = results["models"], results.get("paper", {})
    metrics = []
    for table in (ours, paper):
        for model_metrics in table.values():
            metrics += [m for m in model_metrics if m not in metrics]
    models = list(ours) + [m for m in paper if m not in ours]
    lines = [
        f"{results['experiment']} ({results['preset']} preset, {results['backend']} backend, "
        f"{results['seconds']:.0f} s)"
    ]
    if results.get("overrides"):
        lines.append(
            "overrides: " + ", ".join(f"{k}={v!r}" for k, v in results["overrides"].items())
        )
    per_label = []
    for metric in metrics:
        labels = []
        for table in (ours, paper):
            for model_metrics in table.values():
                value = model_metrics.get(metric)
                if isinstance(value, dict):
                    labels += [k for k in value if k not in labels]
        columns = labels or ["value"]
        per_label += [c for c in labels if c != "avg" and c not in per_label]
        width = max(12, *(len(m) + 2 for m in models))
        header = f"{metric:<{width}}{'source':<8}" + "".join(f"{c:>10}" for c in columns)
        lines += ["", header, "-" * len(header)]
        for model in models:
            for source, table in (("ours", ours), ("paper", paper)):
                value = table.get(model, {}).get(metric)
                if isinstance(value, dict):
                    cells = [_fmt(value.get(c)) for c in columns]
                elif labels:
                    cells = ["-"] * (len(columns) - 1) + [_fmt(value)]
                else:
                    cells = [_fmt(value)]
                name = model if source == "ours" else ""
                lines.append(f"{name:<{width}}{source:<8}" + "".join(f"{c:>10}" for c in cells))
    lines += ["", *_legend(results, per_label)]
    if verdicts and results.get("verdict"):
        lines.append(f"Verdict: {results['verdict']['text']}")
    if verdicts and results.get("findings"):
        lines.append("Findings:")
        lines += [f"  {f['text']}" for f in results["findings"]]
    return "\n".join(lines)


# what the per-label columns of an experiment's table are
_LABEL_COLUMNS = {
    "tlstm": "the digits drawn in an exam, the simulated findings",
    "fcslstm": "the tissue classes",
}


def _legend(results, per_label):
    """The lines under the table that say what its rows, columns and models are."""
    lines = [
        "Legend: 'ours' is this run, 'paper' the paper's published number ('-': none); "
        "one block per metric."
    ]
    if per_label:
        what = _LABEL_COLUMNS.get(results["experiment"], "the labels")
        lines.append(
            f"Columns {', '.join(map(str, per_label))}: one per label ({what}); "
            "'avg' is their mean."
        )
    added = [m for m in results["models"] if m not in results.get("paper", {})]
    if added:
        lines.append(f"kerasmed's additions, not in the paper: {', '.join(added)}.")
    return lines
