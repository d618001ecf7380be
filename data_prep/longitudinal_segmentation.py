"""Prepare longitudinal multimodal brain MRI (NIfTI) for ``kerasmed reproduce fcslstm --data-dir``.

Input: a CSV manifest, one row per (subject, time point), with the columns ``subject``,
``timepoint`` (a number, e.g. age in months), one or more image columns (``image_t1w``,
``image_t2w``...: one channel each, in column order) and ``label`` (an integer tissue label
volume, or empty for an unlabelled time point); see `kerasmed.io.longitudinal_nifti`. Every
volume of a subject must already be registered to one voxel grid (same shape): registration is
not done here.

Output, in ``--out``: ``segmentation.npz`` (images ``(S, T, H, W, C)`` float32, z-scored per
volume over the nonzero voxels; labels ``(S, T, H, W)`` int8 with ``-1`` where unlabelled;
subject ids, axial slice indices and time points, one entry per (subject, slice) sequence;
stored uncompressed, so that `kerasmed.io.load_segmentation_npz` memory-maps the images and
``kerasmed reproduce fcslstm`` reads each batch from the file), and ``prepare_report.txt``
listing every row, time point or subject not used. The same report is printed. Unusable rows, time points
and subjects stop the script with a list of all of them (``--no-strict`` skips them instead,
see `kerasmed.io.report`).

The subjects are read one at a time in ``--workers`` processes
(`kerasmed.io.prep_runner.run_prep`, with a progress bar): each subject's selected slices are
written to ``OUT/.parts/`` and journaled in ``OUT/.prep/``, so a rerun, or a run interrupted
and started again, reads only the subjects not done yet with the same ``--slices``,
``--image-size``, ``--normalize``, ``--timepoints`` and ``--label-map``; a subject whose files
or time points changed is read again. Every ``.npz`` file is written atomically (temporary
file + rename). The two hidden folders may be deleted once ``segmentation.npz`` is written.

To see the expected format, write a tiny synthetic example (2 subjects x 3 time points, T1w +
T2w, the 6-month time point unlabelled) and convert it::

    python data_prep/longitudinal_segmentation.py --write-example example
    python data_prep/longitudinal_segmentation.py example/manifest.csv --out data/fcslstm \\
        --slices all --image-size 32

For the paper's BRIC data (one annotated axial slice per volume) use ``--slices labelled``; for
label files coded 0/10/150/250 (iSeg-2017) add ``--label-map 0:0,10:1,150:2,250:3``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel
import numpy as np

from kerasmed.io import prep_runner, read_segmentation_manifest, save_segmentation_npz
from kerasmed.io.longitudinal_nifti import check_segmentation_options, segmentation_from_subjects
from kerasmed.io.manifest import item_key
from kerasmed.io.report import write_prepare_report
from kerasmed.io.segmentation_prep import (
    load_subject_slices,
    save_subject_slices,
    subject_manifest,
)
from kerasmed.io.segmentation_sequences import NPZ_NAME

PARTS = ".parts"  # one .npz per subject: its selected slices
PARTS_VERSION = 1  # of the part files; a record of another version is computed again

# Mean intensity of (background, CSF, GM, WM) at 0, 6 and 12 months. Infant white matter is
# darker than grey matter on T1w at birth, about the same at 6 months ("isointense" phase, the
# hardest to segment) and brighter at 12 months; T2w shows the reverse.
_EXAMPLE_MONTHS = (0, 6, 12)
_EXAMPLE_INTENSITY = {
    "t1w": {0: (0, 200, 600, 400), 6: (0, 200, 600, 600), 12: (0, 200, 600, 800)},
    "t2w": {0: (0, 1500, 900, 1200), 6: (0, 1500, 900, 900), 12: (0, 1500, 900, 700)},
}
EXAMPLE_SHAPE = (24, 28, 6)  # (x, y, z) voxels as stored
EXAMPLE_AFFINE = np.array(  # stored x runs towards the patient's Left (read_nifti flips it)
    [[-1.0, 0, 0, 12.0], [0, 1.0, 0, -14.0], [0, 0, 2.0, -6.0], [0, 0, 0, 1]]
)


def example_labels(subject_index, month, shape=EXAMPLE_SHAPE):
    """Tissue labels (0 background, 1 CSF, 2 GM, 3 WM) of a growing ellipsoidal brain, (x, y, z)."""
    grow = (1.0 + 0.1 * subject_index) * (0.85 + 0.15 * month / 12.0)
    x, y, z = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    radius = np.sqrt((x / (0.45 * shape[0])) ** 2 + (y / (0.45 * shape[1])) ** 2 + (z / 4.0) ** 2)
    radius = radius / grow
    labels = np.zeros(shape, dtype=np.uint8)
    labels[radius < 1.0] = 1
    labels[radius < 0.8] = 2
    labels[radius < 0.55] = 3
    return labels


def write_example(folder, seed=0):
    """Writes 2 subjects x 3 time points (T1w, T2w NIfTI; labels at 0 and 12 months) + manifest.

    Args:
        folder: output folder (created if needed).
        seed: seed of the image noise.

    Returns:
        The path of ``manifest.csv``.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    lines = ["subject,timepoint,image_t1w,image_t2w,label"]
    for s, subject in enumerate(("sub-01", "sub-02")):
        (folder / subject).mkdir(parents=True, exist_ok=True)
        for month in _EXAMPLE_MONTHS:
            labels = example_labels(s, month)
            names = {}
            for modality, table in _EXAMPLE_INTENSITY.items():
                image = np.asarray(table[month], dtype=np.float32)[labels]
                image[labels > 0] += rng.normal(0.0, 20.0, int((labels > 0).sum()))
                names[modality] = f"{subject}/month{month:02d}_{modality}.nii.gz"
                nibabel.save(nibabel.Nifti1Image(image, EXAMPLE_AFFINE), folder / names[modality])
            label_name = ""
            if month != 6:  # sparse annotation: the isointense 6-month scan has no label
                label_name = f"{subject}/month{month:02d}_seg.nii.gz"
                nibabel.save(nibabel.Nifti1Image(labels, EXAMPLE_AFFINE), folder / label_name)
            lines.append(f"{subject},{month},{names['t1w']},{names['t2w']},{label_name}")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _slices(text):
    if text in ("middle", "all", "labelled"):
        return text
    try:
        if ":" in text:
            start, stop = text.split(":")
            return (float(start), float(stop))
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected middle, all, labelled, indices '40,41' or a fraction range '0.3:0.7', "
            f"got {text!r}"
        ) from None


def _label_map(text):
    try:
        return {int(k): int(v) for k, v in (item.split(":") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected file_value:class pairs such as '0:0,10:1,150:2,250:3', got {text!r}"
        ) from None


# the options of the conversion: flag -> argparse keywords
OPTIONS = {
    "--slices": dict(
        type=_slices,
        default="middle",
        help="axial slices: middle (default), all, labelled, indices '40,41' or a fraction "
        "range '0.3:0.7'",
    ),
    "--image-size": dict(
        type=prep_runner.positive_int, nargs="+", default=None, help="H [W] (default: keep)"
    ),
    "--normalize": dict(
        choices=("zscore", "none"),
        default="zscore",
        help="per-volume z-score over the nonzero (brain) voxels, or none",
    ),
    "--timepoints": dict(help="comma-separated time points to keep (default: all)"),
    "--label-map": dict(
        type=_label_map,
        help="file value:class pairs, e.g. 0:0,10:1,150:2,250:3 (default: values as they are)",
    ),
    "--image-columns": dict(help="comma-separated image columns (default: image and image_*)"),
    "--label-column": dict(default="label", help="label column; '' for a manifest without labels"),
    "--image-root": dict(help="folder of relative paths (default: the CSV's folder)"),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "manifest", nargs="?", help="CSV file: subject, timepoint, image columns, label"
    )
    parser.add_argument("--out", help="output folder (created if needed)")
    parser.add_argument(
        "--write-example",
        metavar="DIR",
        help="write a tiny synthetic example (NIfTI files + manifest.csv) to DIR and stop",
    )
    for option, keywords in OPTIONS.items():
        parser.add_argument(option, **keywords)
    prep_runner.add_prep_arguments(parser)
    args = parser.parse_args(argv)
    if args.write_example is None and (args.manifest is None or args.out is None):
        parser.error("give a manifest and --out, or --write-example DIR")
    if args.image_size is not None and len(args.image_size) not in (1, 2):
        parser.error(f"--image-size takes H or H W, got {args.image_size}")
    return args


def read_subjects(manifest, out, options, args):
    """Runs `save_subject_slices` for every subject not done yet (`run_prep`, resuming).

    Returns ``(SubjectSlices per subject, the PrepRun, key -> subject id)``.
    """
    tasks = []
    for i, subject in enumerate(manifest.ids):
        files = [path for paths in manifest.image_paths[i] for path in paths]
        files += [path for path in manifest.label_paths[i] if path is not None]
        key = item_key(subject, files, manifest.timepoints[i].tolist())
        task_args = (str(out), f"{PARTS}/{key}.npz", subject_manifest(manifest, i), options)
        tasks.append(prep_runner.PrepTask(key, task_args, source=files[0]))
    settings = {**options, "label_map": None, "parts": PARTS_VERSION}
    if options["label_map"] is not None:  # JSON keys are strings: keep the pairs
        settings["label_map"] = sorted(options["label_map"].items())
    run = prep_runner.run_prep(
        tasks,
        save_subject_slices,
        out / ".prep",
        settings=settings,
        workers=args.workers,
        progress=not args.no_progress,
        desc="subjects",
        unit="subject",
        errors=(),  # an unreadable volume is a problem in the record, not of the task
    )
    subjects = [
        load_subject_slices(out, run.records[task.key], manifest.rows[i])
        for i, task in enumerate(tasks)
    ]
    return subjects, run, {task.key: manifest.ids[i] for i, task in enumerate(tasks)}


def main(argv=None):
    """Writes the example, or converts the manifest and returns the summary of the report
    plus ``"computed"`` / ``"resumed"``: the ids of the subjects read now / resumed."""
    args = parse_args(argv)
    if args.write_example is not None:
        manifest = write_example(args.write_example)
        print(f"Wrote {manifest} and its NIfTI files. Convert them with:")
        print(f"  python data_prep/longitudinal_segmentation.py {manifest} --out OUT --slices all")
        return {"example_manifest": str(manifest)}
    manifest = read_segmentation_manifest(
        args.manifest,
        image_columns=args.image_columns.split(",") if args.image_columns else None,
        label_column=args.label_column or None,
        image_root=args.image_root,
        strict=args.strict,
    )
    size = args.image_size
    options = check_segmentation_options(
        slices=args.slices,
        image_size=None if size is None else (size[0], size[-1]),
        normalize=None if args.normalize == "none" else args.normalize,
        timepoints=[float(t) for t in args.timepoints.split(",")] if args.timepoints else None,
        label_map=args.label_map,
    )
    out = Path(args.out)
    subjects, run, names = read_subjects(manifest, out, options, args)
    sequences = segmentation_from_subjects(
        manifest, subjects, image_size=options["image_size"], strict=args.strict
    )
    with prep_runner.atomic_path(out / NPZ_NAME) as temporary:
        save_segmentation_npz(temporary, sequences, compress=False)  # mappable
    summary = {
        "manifest": str(args.manifest),
        "rows": sequences.report.num_rows,
        "skipped_rows": sequences.report.skipped_rows,
        "subjects": len(set(sequences.subject_ids)),
        "sequences": len(sequences),
        "images_shape": list(sequences.images.shape),
        "channel_names": list(sequences.channel_names),
        "labelled_slices": int(sequences.labelled.sum()),
        "classes": np.unique(sequences.labels[sequences.labels >= 0]).tolist(),
        "file": str(out / NPZ_NAME),
        "prep": run.summary(),
    }
    write_prepare_report(out, summary, sequences.report)
    return {
        **summary,
        "computed": [names[key] for key in run.computed],
        "resumed": [names[key] for key in run.resumed],
    }


if __name__ == "__main__":
    prep_runner.run_script(main)
