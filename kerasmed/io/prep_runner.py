"""One runner for the ``data_prep/`` scripts: worker pool, progress, atomic outputs, resume.

A script lists its inputs as `PrepTask` objects (a unique ``key`` per output, the arguments
of the work function, the input's path for the report) and calls `run_prep`:

1. Tasks already done are skipped: a task is done when its journal record
   ``<state_dir>/<key>.json`` exists, was written with the same ``settings`` (and the same
   ``task.settings``, what this one task's output depends on besides, e.g. its source file's
   size and modification time), and every file it lists under ``"outputs"`` exists. The record is written (atomically) only after the
   task's outputs, and every output is itself written atomically (`atomic_path`: a temporary
   file in the same folder, then ``os.replace``), so an interrupted run leaves no partial
   output that could count as done, and a rerun does only the rest.
2. The other tasks run ``work(task.args)`` in a pool of ``workers`` processes (``spawn``;
   ``0`` or ``1`` runs them in this process; ``initializer`` runs once in each worker), with a
   tqdm progress bar and its ETA. The work
   function writes its outputs and returns a JSON-serialisable record (a dict); an optional
   ``finish(task, result)`` runs in this process on each result (e.g. a Keras model that
   should not be loaded once per worker) and returns the record instead.
3. A task whose work raises one of ``errors`` (``ValueError``, ``OSError``) is a problem of
   the returned `LoadReport`, naming its input; the strict rule of `kerasmed.io.report` then
   applies once at the end (``strict=True`` raises one `LoadError` listing every failed input,
   after the others were written; ``strict=False`` warns; ``strict=None`` leaves the rule to
   the caller, which merges the report into its own). Failed tasks have no record, so a rerun
   tries them again.

Without a journal (``state_dir=None``) nothing is written by the runner and nothing is
resumed: every task runs, and the records are what ``work`` (or ``finish``) returned, kept in
memory as they are (they need only be picklable, e.g. a dict holding a NumPy array, when
``workers > 1``). The pool, progress bar and strict rule are the same; the work function then
writes no file either (a reader without a cache folder: `kerasmed.data.load_imageclef_arrays`).

The work function is sent to the workers as a reference to its module file, so a function
of a ``data_prep/`` script works there whether the script runs as ``__main__`` or was loaded
from its path (as the tests do).

`add_prep_arguments` adds the shared options (``--workers``, ``--strict/--no-strict``,
``--no-progress``); `positive_int` / `non_negative_int` are the argparse types of sizes
(``--size 0`` is an argparse error naming the option and the value).

Example:

>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> def square(number):  # a real script writes its output with `atomic_path` here
...     return {"square": number * number}
>>> tasks = [PrepTask(str(n), n) for n in range(3)]
>>> run = run_prep(tasks, square, os.path.join(out, ".prep"), workers=0, progress=False)
>>> [run.records[t.key]["square"] for t in tasks], run.computed
([0, 1, 4], ['0', '1', '2'])
>>> run_prep(tasks, square, os.path.join(out, ".prep"), workers=0, progress=False).resumed
['0', '1', '2']
>>> sorted(os.listdir(out))
['.prep']
>>> run_prep(tasks, square, None, workers=0, progress=False).records["2"]  # in memory
{'square': 4}
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import importlib
import importlib.util
import json
import multiprocessing
import os
import sys
import tempfile
import time

import numpy as np

from kerasmed.io.report import LoadReport, add_strict_argument
from kerasmed.progress import progress_bar

__all__ = [
    "PrepRun",
    "PrepTask",
    "add_prep_arguments",
    "atomic_path",
    "non_negative_int",
    "positive_int",
    "resolve_workers",
    "run_prep",
    "run_script",
    "save_npz_atomic",
    "write_text_atomic",
]

RECORD_SUFFIX = ".json"


# ---------------------------------------------------------------- command line


def _int_type(text, minimum, what):
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}. Received: {text!r}")
    return value


def positive_int(text):
    """Argparse type of a size: an int >= 1 (``--size 0`` -> "argument --size: must be ...")."""
    return _int_type(text, 1, "a positive integer")


def non_negative_int(text):
    """Argparse type of a size where 0 means "keep": an int >= 0."""
    return _int_type(text, 0, "an integer >= 0")


def add_prep_arguments(parser, workers=True, progress=True):
    """Adds the shared options of a ``data_prep/`` script to `parser`.

    ``--strict/--no-strict`` (`kerasmed.io.report.add_strict_argument`), and with `workers`
    ``--workers N`` (default: every core; 0 or 1 = in this process), with `progress`
    ``--no-progress``.

    Example:

    >>> parser = argparse.ArgumentParser()
    >>> add_prep_arguments(parser)
    >>> args = parser.parse_args(["--workers", "0", "--no-strict"])
    >>> args.workers, args.strict, args.no_progress
    (0, False, False)
    """
    if workers:
        parser.add_argument(
            "--workers",
            type=non_negative_int,
            default=None,
            help="worker processes (default: every core; 0 or 1: in this process)",
        )
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_strict_argument(parser)


def resolve_workers(workers):
    """``None`` -> ``os.cpu_count()``; otherwise `workers` (an int >= 0)."""
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"`workers` must be None or an int >= 0. Received: workers={workers!r}")
    return int(workers)


def run_script(main, argv=None):
    """Runs a ``data_prep/`` script's ``main(argv)``; a bad input ends it with one line.

    A `ValueError` or `FileNotFoundError` (a bad argument, an unreadable input, the strict
    rule's `LoadError`) becomes ``sys.exit("error: <message>")`` (exit status 1, the message
    on stderr), not a traceback; anything else propagates. Returns what `main` returned.

    Example:

    >>> def main(argv=None):
    ...     raise ValueError("`--size` must be positive. Received: size=0")
    >>> try:
    ...     run_script(main)
    ... except SystemExit as stop:
    ...     print(stop.code)
    error: `--size` must be positive. Received: size=0
    """
    try:
        return main(argv)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


# ---------------------------------------------------------------- atomic writes


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; moves it onto `path` if the block succeeds.

    The temporary file keeps `path`'s suffix (``np.savez`` appends ``.npz`` otherwise) and
    starts with ``.``; it is removed when the block raises, so no partial file is left.

    Example:

    >>> folder = tempfile.mkdtemp()
    >>> with atomic_path(os.path.join(folder, "a.npz")) as tmp:
    ...     np.savez(tmp, x=np.arange(3))
    >>> os.listdir(folder)
    ['a.npz']
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(name)[1]
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp" + suffix, dir=folder)
    os.close(handle)
    try:
        yield temporary
        # mkstemp creates the file for its owner only; give it what a plain open() would
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def save_npz_atomic(path, compress=False, **arrays):
    """``np.savez`` (or ``savez_compressed``) of `arrays` to `path`, atomically; returns it."""
    save = np.savez_compressed if compress else np.savez
    with atomic_path(path) as temporary:
        save(temporary, **arrays)
    return os.fspath(path)


def write_text_atomic(path, text):
    """Writes `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return os.fspath(path)


# ---------------------------------------------------------------- the runner


@dataclasses.dataclass(frozen=True)
class PrepTask:
    """One unit of work: its `key` (unique; a file name: its journal record), the `args`
    given to the work function (picklable), the input it stands for (`source`, for the
    report) and its own `settings` (JSON-serialisable, e.g. its source file's size and
    modification time; a record written with other ones is not done)."""

    key: str
    args: object = None
    source: str | None = None
    settings: object = None


@dataclasses.dataclass
class PrepRun:
    """What `run_prep` did.

    Attributes:
        records: ``key -> record`` of every task done (now or before), in task order.
        computed: keys of the tasks run now.
        resumed: keys of the tasks skipped because a previous run had done them (none
            without a journal).
        report: a `LoadReport` of the failed tasks (``num_rows`` = number of tasks).
        workers: worker processes used (0 = in this process).
        seconds: wall time of the run.
    """

    records: dict
    computed: list
    resumed: list
    report: LoadReport
    workers: int
    seconds: float

    def summary(self):
        """A JSON-friendly dict: counts, workers, seconds, the failed inputs."""
        return {
            "tasks": self.report.num_rows,
            "computed": len(self.computed),
            "resumed": len(self.resumed),
            "failed": len(self.report.problems),
            "workers": self.workers,
            "seconds": round(self.seconds, 3),
        }


@dataclasses.dataclass(frozen=True)
class _FunctionRef:
    """A picklable reference to a module-level function by module name, file and name."""

    module: str
    path: str | None
    name: str

    @classmethod
    def of(cls, function):
        module = sys.modules.get(function.__module__)
        # a module loaded from its path without a sys.modules entry (a data_prep script loaded
        # by the tests) is found again by the function's own source file
        path = getattr(module, "__file__", None) or function.__code__.co_filename
        return cls(function.__module__, path, function.__qualname__)


_LOADED = {}


def _resolve(ref):
    if ref not in _LOADED:
        module = sys.modules.get(ref.module) if ref.module != "__main__" else None
        if module is None and ref.module != "__main__":
            with contextlib.suppress(ImportError):
                module = importlib.import_module(ref.module)
        if module is None or (ref.path and getattr(module, "__file__", None) != ref.path):
            name = f"_kerasmed_prep_{abs(hash(ref.path)):x}"
            spec = importlib.util.spec_from_file_location(name, ref.path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        _LOADED[ref] = getattr(module, ref.name)
    return _LOADED[ref]


def _call(ref, args, errors):
    """Runs one task in a worker; returns ``("ok", result)`` or ``("error", text)``."""
    try:
        return "ok", _resolve(ref)(args)
    except errors as error:
        return "error", f"{type(error).__name__}: {error}"


def _record_path(state_dir, key):
    return os.path.join(state_dir, f"{key}{RECORD_SUFFIX}")


def _as_json(value):
    return json.loads(json.dumps(value))  # as it reads back from a record


def _load_record(state_dir, task, settings, out_dir):
    try:
        with open(_record_path(state_dir, task.key), encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("settings") != settings:
        return None
    if saved.get("task_settings") != _as_json(task.settings):
        return None
    record = saved.get("record")
    outputs = record.get("outputs", []) if isinstance(record, dict) else []
    if not all(os.path.isfile(os.path.join(out_dir, name)) for name in outputs):
        return None
    return record


def _check_tasks(tasks):
    keys = [task.key for task in tasks]
    for key in keys:
        if not isinstance(key, str) or not key or os.sep in key or key.startswith("."):
            raise ValueError(
                f"A task key must be a non-empty file name not starting with '.'. Received: key={key!r}"
            )
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"Task keys must be unique. Received: duplicate keys {twice[:10]}")


def run_prep(
    tasks,
    work,
    state_dir,
    *,
    settings=None,
    finish=None,
    workers=None,
    progress=True,
    desc="preparing",
    unit="item",
    strict=True,
    what="input(s)",
    source=None,
    errors=(ValueError, OSError),
    out_dir=None,
    initializer=None,
):
    """Runs `work` on every `PrepTask` not done yet (module docstring); returns a `PrepRun`.

    Args:
        tasks: list of `PrepTask` with unique keys.
        work: a module-level function ``work(task.args) -> result``; it writes the task's
            outputs (with `atomic_path` / `save_npz_atomic`) and returns a JSON-serialisable
            dict (``"outputs"``: the files it wrote, relative to `out_dir`, checked on resume).
            Without a journal it may return its outputs instead (any picklable value).
        state_dir: folder of the journal records (created), e.g. ``OUT/.prep``; ``None``: no
            journal, no resume, the records kept in memory (module docstring).
        settings: JSON-serialisable settings the outputs depend on; a record written with
            other settings is not done (the task runs again and replaces its outputs).
            Unused without a journal.
        finish: optional ``finish(task, result) -> record``, run in this process.
        workers: processes (``None``: every core; 0 or 1: in this process).
        progress: show a tqdm progress bar (with its ETA).
        desc, unit: the progress bar's text.
        strict: the strict rule of `kerasmed.io.report` for the failed tasks; ``None``
            applies none (the caller does, on the returned ``report``).
        what: the inputs' name in the messages.
        source: the report's source (default `state_dir`'s parent; without a journal
            ``"in memory"``).
        errors: exception types that make a task a reported problem (others propagate).
        out_dir: folder of the records' ``"outputs"`` (default `state_dir`'s parent); unused
            without a journal.
        initializer: a module-level function run once in each worker process (e.g. one
            OpenCV thread per worker), not in this process.

    Returns:
        A `PrepRun`.

    Raises:
        LoadError: ``strict`` and some task failed (the others are written and journaled).
    """
    started = time.perf_counter()
    tasks = list(tasks)
    _check_tasks(tasks)
    workers = resolve_workers(workers)
    done = {}
    if state_dir is None:
        parent = "in memory"
    else:
        state_dir = os.fspath(state_dir)
        parent = os.path.dirname(os.path.abspath(state_dir))
        out_dir = parent if out_dir is None else os.fspath(out_dir)
        settings = _as_json(settings)
        os.makedirs(state_dir, exist_ok=True)
        for task in tasks:
            record = _load_record(state_dir, task, settings, out_dir)
            if record is not None:
                done[task.key] = record
    report = LoadReport(source or parent, num_rows=len(tasks), unit="inputs")
    todo = [task for task in tasks if task.key not in done]
    resumed, computed = [t.key for t in tasks if t.key in done], []
    errors = tuple(errors)
    used = workers if workers > 1 and len(todo) > 1 else 0
    bar = progress_bar(
        total=len(tasks), initial=len(done), desc=desc, unit=unit, disable=not progress
    )

    def accept(task, status, result):
        if status == "error":
            report.add(result, path=task.source, item=task.key)
            return
        record = finish(task, result) if finish is not None else result
        if state_dir is not None:
            saved = {"key": task.key, "settings": settings, "record": record}
            if task.settings is not None:
                saved["task_settings"] = task.settings
            text = json.dumps(saved)
            write_text_atomic(_record_path(state_dir, task.key), text)
            record = json.loads(text)["record"]
        done[task.key] = record
        computed.append(task.key)

    try:
        if used:
            ref = _FunctionRef.of(work)
            context = multiprocessing.get_context("spawn")
            pool = concurrent.futures.ProcessPoolExecutor(
                min(used, len(todo)), mp_context=context, initializer=initializer
            )
            try:
                futures = {pool.submit(_call, ref, task.args, errors): task for task in todo}
                for future in concurrent.futures.as_completed(futures):
                    accept(futures[future], *future.result())
                    bar.update()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            for task in todo:
                try:
                    status, result = "ok", work(task.args)
                except errors as error:
                    status, result = "error", f"{type(error).__name__}: {error}"
                accept(task, status, result)
                bar.update()
    finally:
        bar.close()
    records = {task.key: done[task.key] for task in tasks if task.key in done}
    order = {task.key: k for k, task in enumerate(tasks)}
    computed.sort(key=order.get)
    run = PrepRun(records, computed, resumed, report, used, time.perf_counter() - started)
    if strict is not None:
        report.raise_or_warn(strict, what)
    return run
