"""Prepare COV19-CT-DB for ``kerasmed reproduce two-step --data-dir`` (paper 003, Hsu et al. 2022).

Input: the COV19-CT-DB release as distributed, ``ROOT/<split>/<covid|non-covid>/<scan_id>/<n>.jpg``
(read by `kerasmed.io.cov19_ct`: slices in numeric order, labels from the class folders; a scan
folder may hold one NIfTI file or a DICOM series instead). For every scan, once, this script
does what ``kerasmed reproduce two-step`` would otherwise do at every run
(`kerasmed.experiments.two_step_cov19`): it selects the lung window (the ``ceil(0.5 n)``
contiguous slices of largest lung area, `kerasmed.preprocessing.select_lung_slices`, in the
scan's units: 8-bit with the authors' threshold 100, HU for NIfTI / DICOM) and resizes every
slice to the model's input (OpenCV area interpolation), with the settings of the experiment's
preset (``--preset``: window fraction, filter sizes, slice size; ``--slice-size`` changes the
last). Every slice is kept, not only the window: the two-step heads read the embeddings of
all of a scan's slices (the authors' code), and a scan of 20 slices or fewer is sampled whole.

Output (``--out``):

- ``scans/<split>/<covid|non-covid>/<scan_id>.npz``, one per scan (no pickled objects):
  ``slices`` ``(n, S, S)`` uint8, the window ``start``/``stop`` (stop exclusive), ``areas``
  (lung pixels per slice), ``crop_box``, ``found``, ``rule``, ``kind``, ``threshold``, ``notes``
  (the `kerasmed.preprocessing.LungSliceSelection`), ``n_slices``, ``label``, ``split``,
  ``scan_id``, ``source_shape`` (the slices' size as read); about ``n x S x S`` bytes
  (64 KiB a slice at the paper's 256, 4 KiB at the quick preset's 64), or less with
  ``--compress`` (slower to read at every batch);
- ``scans.csv``: ``scan_id, split, label, file, window_start, window_stop, n_slices,
  window_rule``, one row per prepared scan (the reader's order), written at the end;
- ``settings.json``: the preset and the settings the files depend on (the experiment refuses
  a run with other settings and says how to match them);
- ``prepare_report.txt`` (also printed): what was written, every scan not prepared and why
  (unreadable slices, empty folders), slices and files left out of prepared scans (mixed
  sizes, stray files), and the scans whose window is not a lung-area window.

Every output is written atomically and each scan's journal record (``.prep/``) after its file,
so an interrupted run (Ctrl-C, a crash) resumes where it stopped: a rerun with the same
settings and the same COV19-CT-DB folder prepares only the scans not done yet
(`kerasmed.io.prep_runner`); other settings (or another folder) prepare every scan again.
A scan with an unreadable slice is not prepared; ``--strict`` (the default) stops with one
error listing them after preparing the others (scans.csv is not written), ``--no-strict``
leaves them out and lists them in the report.

Example::

    python data_prep/two_step_ct.py ~/data/COV19-CT-DB --out data/two_step --workers 8
    kerasmed reproduce two-step --data-dir data/two_step
    python data_prep/two_step_ct.py ~/data/COV19-CT-DB --out data/two_step_paper --preset paper
    kerasmed reproduce two-step --preset paper --data-dir data/two_step_paper
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np

from kerasmed.experiments.registry import get_config
from kerasmed.experiments.two_step_cov19 import (
    INDEX_COLUMNS,
    INDEX_FILE,
    SETTINGS_FILE,
    SPLITS,
    model_slices,
    prep_settings,
    select_windows,
)
from kerasmed.io.cov19_ct import COV19_CLASSES, Cov19Entry, index_cov19_ct, read_cov19_scan
from kerasmed.io.prep_runner import (
    PrepTask,
    add_prep_arguments,
    positive_int,
    run_prep,
    run_script,
    save_npz_atomic,
    write_text_atomic,
)
from kerasmed.io.report import LoadReport, write_prepare_report

SCANS_DIR = "scans"
STATE_DIR = ".prep"
CLASS_NAMES = {label: name for name, label in COV19_CLASSES.items()}
FORMAT_VERSION = 1


def _task_key(entry):
    """The journal key of a scan: ``<split>.<class>.<scan_id>`` in file-name characters."""
    text = f"{entry.split}.{CLASS_NAMES[entry.label]}.{entry.scan_id}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).lstrip(".")


def scan_file(entry):
    """The scan's ``.npz`` path, relative to the output folder (``/`` separated)."""
    return f"{SCANS_DIR}/{entry.split}/{CLASS_NAMES[entry.label]}/{entry.scan_id}.npz"


def prepare_scan(args):
    """Work of one scan (one `PrepTask`): reads it, selects its window, writes its ``.npz``.

    Args:
        args: dict with ``entry`` (`Cov19Entry` fields), ``out`` (output folder), ``file``
            (relative path of the ``.npz``), ``settings`` (`prep_settings`) and ``compress``.

    Returns:
        The journal record: the index row, ``outputs``, and what the report lists (``ignored``
        slices and files of the scan, the window's ``notes``).

    Raises:
        LoadError: a slice or the scan cannot be used (the message names every file).
    """
    entry = Cov19Entry(**args["entry"])
    settings = argparse.Namespace(**args["settings"])
    with warnings.catch_warnings():  # what it warns about is in the record ("ignored")
        warnings.simplefilter("ignore")
        scan = read_cov19_scan(entry, strict=True)
    window = select_windows([scan.array], settings, kind=scan.kind)[0]
    slices = model_slices(scan.array, settings.slice_size, kind=scan.kind)
    arrays = {
        "slices": slices,
        "start": np.int64(window.start),
        "stop": np.int64(window.stop),
        "areas": np.asarray(window.areas, np.int64),
        "crop_box": np.asarray(window.crop_box, np.int32),
        "found": np.bool_(window.found),
        "rule": np.str_(window.rule),
        "kind": np.str_(window.kind),
        "threshold": np.float64(window.threshold),
        "notes": np.array([str(n) for n in window.notes], dtype=str),
        "n_slices": np.int64(len(slices)),
        "label": np.int64(entry.label),
        "split": np.str_(entry.split),
        "scan_id": np.str_(entry.scan_id),
        "source_shape": np.array(scan.array.shape[1:3], np.int64),
    }
    save_npz_atomic(os.path.join(args["out"], args["file"]), compress=args["compress"], **arrays)
    notes = [f"window {window.rule}: {window.reason}"] if window.reason else []
    notes += [str(n) for n in window.notes]
    return {
        "outputs": [args["file"]],
        "row": {
            "scan_id": entry.scan_id,
            "split": entry.split,
            "label": entry.label,
            "file": args["file"],
            "window_start": int(window.start),
            "window_stop": int(window.stop),
            "n_slices": int(len(slices)),
            "window_rule": window.rule,
        },
        "ignored": [str(p) for p in scan.report.ignored],
        "notes": notes,
    }


def index_text(rows):
    """``scans.csv``'s text: the header (`INDEX_COLUMNS`) and one line per row dict."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(INDEX_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example:\n" + __doc__.split("Example::\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("root", help="the COV19-CT-DB folder (holding train/ and validation/)")
    parser.add_argument("--out", required=True, help="output folder (scans.csv, scans/, ...)")
    parser.add_argument(
        "--preset",
        choices=("quick", "paper"),
        default="quick",
        help="the two-step preset whose window and slice settings are used (default: quick, "
        "the experiment's default; paper: 256 x 256 slices, filters 5 and 10)",
    )
    parser.add_argument(
        "--slice-size",
        type=positive_int,
        default=None,
        help="H = W of the stored slices (default: the preset's slice_size; a run then needs "
        "--set slice_size=N)",
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        default=list(SPLITS.values()),
        help="split folders to prepare (default: train validation, the experiment's parts)",
    )
    parser.add_argument(
        "--compress", action="store_true", help="zlib-compressed .npz (smaller, slower to read)"
    )
    add_prep_arguments(parser)
    return parser.parse_args(argv)


def _settings(args):
    config = get_config("two-step", args.preset)
    settings = prep_settings(config)
    if args.slice_size is not None:
        settings["slice_size"] = args.slice_size
    return settings


def _forget_other_settings(out, saved):
    """Removes ``scans.csv`` / ``settings.json`` made with other settings (the folder is remade)."""
    path = out / SETTINGS_FILE
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        old = None
    keys = ("config", "compress", "format", "source")
    if not isinstance(old, dict) or any(old.get(k) != saved[k] for k in keys):
        for name in (INDEX_FILE, SETTINGS_FILE):
            (out / name).unlink(missing_ok=True)


def main(argv=None):
    """Prepares the folder; returns the summary dict written first in ``prepare_report.txt``.

    Raises:
        FileNotFoundError: the COV19-CT-DB folder or a split folder is missing.
        kerasmed.io.LoadError: with ``--strict``, scans that cannot be prepared (every other
            scan is prepared first).
        ValueError: no scan could be prepared.
    """
    args = parse_args(argv)
    out = Path(args.out)
    if out.resolve() == Path(args.root).resolve():
        raise ValueError(f"--out must not be the COV19-CT-DB folder. Received: out={args.out!r}")
    entries, index_report = index_cov19_ct(args.root, tuple(args.splits))
    settings = _settings(args)
    saved = {
        "preset": args.preset,
        "config": settings,
        "compress": args.compress,
        "format": FORMAT_VERSION,
        "source": str(Path(args.root).resolve()),
        "splits": list(args.splits),
    }
    out.mkdir(parents=True, exist_ok=True)
    _forget_other_settings(out, saved)
    tasks = []
    for entry in entries:
        args_of_scan = {
            "entry": {
                "split": entry.split,
                "label": entry.label,
                "scan_id": entry.scan_id,
                "folder": entry.folder,
            },
            "out": str(out),
            "file": scan_file(entry),
            "settings": settings,
            "compress": args.compress,
        }
        tasks.append(PrepTask(_task_key(entry), args_of_scan, entry.folder))
    with warnings.catch_warnings():  # the strict rule is applied below, to every report
        warnings.simplefilter("ignore")
        run = run_prep(
            tasks, prepare_scan, out / STATE_DIR,
            settings={k: saved[k] for k in ("config", "compress", "format", "source")},
            workers=args.workers, progress=not args.no_progress, desc="COV19-CT-DB scans",
            unit="scan", strict=False, what="scan(s)", source=str(args.root),
        )  # fmt: skip
    records = [run.records[t.key] for t in tasks if t.key in run.records]
    rows = [record["row"] for record in records]
    left_out = LoadReport("slices and files left out of prepared scans", unit="scans")
    left_out.num_rows = len(records)
    notes = [
        f"  {r['row']['split']}/{r['row']['scan_id']}: {n}" for r in records for n in r["notes"]
    ]
    for record in records:
        for text in record["ignored"]:
            left_out.ignore(text)
    failed = index_report.problems + run.report.problems
    counts = {
        split: {
            "covid": sum(r["split"] == split and r["label"] == 1 for r in rows),
            "non-covid": sum(r["split"] == split and r["label"] == 0 for r in rows),
        }
        for split in args.splits
    }
    summary = {
        "source": str(args.root),
        "out": str(out),
        "preset": args.preset,
        **settings,
        "scans_prepared": len(rows),
        "per_split": counts,
        "scans_not_prepared": len(failed),
        "computed_now": len(run.computed),
        "resumed": len(run.resumed),
        "workers": run.workers,
        "seconds": round(run.seconds, 2),
        "bytes_on_disk": sum(os.path.getsize(out / r["file"]) for r in rows),
        "index": None,
    }
    problems = LoadReport(str(args.root), num_rows=index_report.num_rows, unit="scan folders")
    problems.problems, problems.ignored = failed, list(index_report.ignored)
    window_notes = f"Windows that are not a lung-area window, and notes ({len(notes)}):\n"
    window_notes += "\n".join(notes) if notes else "  none"
    done = not (args.strict and failed) and rows
    if done:
        write_text_atomic(out / SETTINGS_FILE, json.dumps(saved, indent=2) + "\n")
        write_text_atomic(out / INDEX_FILE, index_text(rows))
        summary["index"] = str(out / INDEX_FILE)
    write_prepare_report(out, summary, problems, left_out, window_notes)
    problems.raise_or_warn(args.strict, "scan(s)")
    if not rows:
        raise ValueError(
            f"No scan could be prepared from {args.root}; see {out / 'prepare_report.txt'}. "
            f"Received: root={args.root!r}"
        )
    return summary


if __name__ == "__main__":
    run_script(main)
