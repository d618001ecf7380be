"""Prepare real longitudinal exams (e.g. chest x-rays) for ``kerasmed reproduce tlstm --data-dir``.

Input: a CSV manifest, one row per image, with the columns ``patient_id``, ``study_date``,
``image_path`` and one 0/1 column per label (optionally ``split`` = ``train``/``test`` per
patient); see `kerasmed.io.manifest`. Images may be PNG/JPEG (OpenCV) or DICOM ``.dcm``
(pydicom); each is converted to grey levels in [0, 1] and resized.

Output, in ``--out``: ``sequences.npz`` with every patient kept, which
``kerasmed reproduce tlstm --data-dir OUT`` reads (and splits by patient itself); when the
manifest has a ``split`` column, also one file per split value (``train.npz``, ``test.npz``...).
The format is described in `kerasmed.io.sequences` and read by
`kerasmed.io.load_longitudinal_npz`. Unusable rows and unreadable images stop the script with a
list of all of them (``--no-strict`` skips them instead, see `kerasmed.io.report`);
``prepare_report.txt`` (also printed) lists every row or image not used.

Example::

    python data_prep/longitudinal_manifest.py exams.csv --out data/cxr --image-size 299 \\
        --label-columns cardiomegaly,consolidation,pleural_effusion,hiatus_hernia --min-exams 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from kerasmed.io import load_manifest_images, read_longitudinal_manifest, save_longitudinal_npz
from kerasmed.io.prep_runner import positive_int, run_script
from kerasmed.io.report import add_strict_argument, write_prepare_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", help="CSV file: patient_id, study_date, image_path, labels...")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument(
        "--image-root",
        default=None,
        help="folder of relative image paths (default: the CSV's folder)",
    )
    parser.add_argument(
        "--label-columns", default=None, help="comma-separated label columns (default: all others)"
    )
    parser.add_argument(
        "--date-format",
        default=None,
        help="strptime format, e.g. %%d/%%m/%%Y (default: ISO or YYYYMMDD)",
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        nargs="+",
        default=[299],
        help="H [W] of the output images (paper: 299)",
    )
    parser.add_argument(
        "--min-exams",
        type=positive_int,
        default=2,
        help="keep patients with at least this many exams (paper: 2)",
    )
    parser.add_argument(
        "--image-dtype",
        choices=("uint8", "float32"),
        default="uint8",
        help="on-disk image type (uint8 is 4x smaller)",
    )
    add_strict_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
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
    sequences = load_manifest_images(manifest, image_size=size, strict=args.strict)
    splits = dict(zip(manifest.ids, manifest.splits)) if manifest.splits is not None else None
    keep = np.flatnonzero(sequences.lengths >= args.min_exams)
    dropped = len(sequences) - len(keep)
    report, sequences = sequences.report, sequences.subset(keep)
    if len(sequences) == 0:
        sys.exit(f"No patient with at least {args.min_exams} readable exams in {args.manifest}.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
    }
    for name, part in parts.items():
        path = out / f"{name}.npz"
        save_longitudinal_npz(path, part, image_dtype=args.image_dtype)
        summary["files"][path.name] = {"patients": len(part), "exams": int(part.lengths.sum())}
    write_prepare_report(out, summary, report)
    return summary


if __name__ == "__main__":
    run_script(main)
