"""Prepare real longitudinal exams (e.g. chest x-rays) for ``kerasmed reproduce tlstm --data-dir``.

Input: a CSV manifest, one row per image, with the columns ``patient_id``, ``study_date``,
``image_path`` and one 0/1 column per label (optionally ``split`` = ``train``/``test`` per
patient); see `kerasmed.io.manifest`. Images may be PNG/JPEG (OpenCV) or DICOM ``.dcm``
(pydicom); each is converted to grey levels in [0, 1] and resized.

Output, in ``--out``: ``sequences.npz`` with every patient kept, which
``kerasmed reproduce tlstm --data-dir OUT`` reads (and splits by patient itself); when the
manifest has a ``split`` column, also one file per split value (``train.npz``, ``test.npz``...).
The format is described in `kerasmed.io.sequences` and read by
`kerasmed.io.load_longitudinal_npz`. The images are stored uncompressed, so the experiment
streams them from the file (memory-mapped, a batch at a time) instead of reading the whole set
into memory; a file written by an earlier version (compressed) is read into memory. The script
itself never holds the whole set either: each ``.npz`` is written a patient at a time from the
part files below. Unusable rows and unreadable images stop the script with a
list of all of them (``--no-strict`` skips them instead, see `kerasmed.io.report`);
``prepare_report.txt`` (also printed) lists every row or image not used.

The images are read and resized one patient at a time in ``--workers`` processes
(`kerasmed.io.prep_runner.run_prep`, with a progress bar), each patient written to
``OUT/.parts/`` and journaled in ``OUT/.prep/``: a rerun, or a run interrupted and started
again, reads only the patients not done yet with the same ``--image-size``; a patient whose
image files or rows changed is read again. Every ``.npz`` file is written atomically
(temporary file + rename). The two hidden folders may be deleted once the ``.npz`` files are
written.

Example::

    python data_prep/longitudinal_manifest.py exams.csv --out data/cxr --image-size 299 \\
        --label-columns cardiomegaly,consolidation,pleural_effusion,hiatus_hernia --min-exams 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from kerasmed.io import prep_runner, read_longitudinal_manifest, save_longitudinal_npz
from kerasmed.io.manifest import (
    item_key,
    load_patient_exams,
    save_patient_exams,
    sequences_from_exams,
)
from kerasmed.io.report import write_prepare_report

PARTS = ".parts"  # one .npz per patient: its exams' images
PARTS_VERSION = 1  # of the part files; a record of another version is computed again


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", help="CSV file: patient_id, study_date, image_path, labels...")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    options = {
        "--image-root": "folder of relative image paths (default: the CSV's folder)",
        "--label-columns": "comma-separated label columns (default: all others)",
        "--date-format": "strptime format, e.g. %%d/%%m/%%Y (default: ISO or YYYYMMDD)",
    }
    for option, text in options.items():
        parser.add_argument(option, default=None, help=text)
    parser.add_argument(
        "--image-size",
        type=prep_runner.positive_int,
        nargs="+",
        default=[299],
        help="H [W] of the output images (paper: 299)",
    )
    parser.add_argument(
        "--min-exams",
        type=prep_runner.positive_int,
        default=2,
        help="keep patients with at least this many exams (paper: 2)",
    )
    parser.add_argument(
        "--image-dtype",
        choices=("uint8", "float32"),
        default="uint8",
        help="on-disk image type (uint8 is 4x smaller)",
    )
    prep_runner.add_prep_arguments(parser)
    return parser.parse_args(argv)


def read_patients(manifest, out, size, args):
    """Runs `save_patient_exams` for every patient not done yet (`run_prep`, resuming).

    Returns ``(the (images, failures) of each patient, the PrepRun, key -> patient id)``.
    """
    tasks = []
    for patient, paths in zip(manifest.ids, manifest.image_paths):
        key = item_key(patient, paths)
        tasks.append(
            prep_runner.PrepTask(key, (str(out), f"{PARTS}/{key}.npz", paths, size), paths[0])
        )
    run = prep_runner.run_prep(
        tasks,
        save_patient_exams,
        out / ".prep",
        settings={"image_size": list(size), "parts": PARTS_VERSION},
        workers=args.workers,
        progress=not args.no_progress,
        desc="patients",
        unit="patient",
        errors=(),  # an unreadable image is a failure in the record, not of the task
    )
    patients = {task.key: patient for task, patient in zip(tasks, manifest.ids)}
    # lazy: each patient's images stay in its part file until save_longitudinal_npz writes them
    exams = [load_patient_exams(out, run.records[task.key], lazy=True) for task in tasks]
    return exams, run, patients


def main(argv=None):
    """Converts the manifest; returns the summary of ``prepare_report.txt`` with two more
    lists, the patients whose images were read by this run (``"computed"``) and those
    taken from the journal of an earlier run (``"resumed"``)."""
    args = parse_args(argv)
    labels = args.label_columns.split(",") if args.label_columns else None
    manifest = read_longitudinal_manifest(
        args.manifest,
        label_columns=labels,
        image_root=args.image_root,
        date_format=args.date_format,
        strict=args.strict,
    )
    size = tuple(args.image_size) if len(args.image_size) == 2 else (args.image_size[0],) * 2
    out = Path(args.out)
    exams, run, patients = read_patients(manifest, out, size, args)
    sequences = sequences_from_exams(manifest, exams, strict=args.strict)
    splits = dict(zip(manifest.ids, manifest.splits)) if manifest.splits is not None else None
    keep = np.flatnonzero(sequences.lengths >= args.min_exams)
    dropped = len(sequences) - len(keep)
    report, sequences = sequences.report, sequences.subset(keep)
    if len(sequences) == 0:
        sys.exit(f"No patient with at least {args.min_exams} readable exams in {args.manifest}.")
    parts = {"sequences": sequences}
    if splits is not None:
        for name in sorted({splits[i] for i in sequences.ids}):
            parts[name] = sequences.subset(
                [k for k, i in enumerate(sequences.ids) if splits[i] == name]
            )
    summary = {
        "manifest": str(args.manifest),
        "rows": report.num_rows,
        "skipped_rows": report.skipped_rows,
        "patients_below_min_exams": int(dropped),
        "label_names": list(sequences.label_names),
        "image_size": list(size),
        "files": {},
        "prep": run.summary(),
    }
    for name, part in parts.items():
        path = out / f"{name}.npz"
        with prep_runner.atomic_path(path) as temporary:
            save_longitudinal_npz(temporary, part, image_dtype=args.image_dtype, compress=False)
        summary["files"][path.name] = {"patients": len(part), "exams": int(part.lengths.sum())}
    write_prepare_report(out, summary, report)
    return {
        **summary,
        "computed": [patients[key] for key in run.computed],
        "resumed": [patients[key] for key in run.resumed],
    }


if __name__ == "__main__":
    prep_runner.run_script(main)
