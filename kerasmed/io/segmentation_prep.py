"""The data-prep task of one subject of a segmentation manifest: its slices saved, then loaded.

``data_prep/longitudinal_segmentation.py`` runs `save_subject_slices` for every subject through
`kerasmed.io.prep_runner.run_prep` (in worker processes, journaled, resumable) and rebuilds each
`kerasmed.io.longitudinal_nifti.SubjectSlices` with `load_subject_slices` before
`kerasmed.io.longitudinal_nifti.segmentation_from_subjects` assembles the sequences.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from kerasmed.io.longitudinal_nifti import SubjectSlices, read_subject_slices
from kerasmed.io.prep_runner import save_npz_atomic
from kerasmed.io.report import LoadProblem, LoadReport
from kerasmed.io.segmentation_manifest import SegmentationManifest

__all__ = ["load_subject_slices", "save_subject_slices", "subject_manifest"]


def subject_manifest(manifest: SegmentationManifest, i) -> SegmentationManifest:
    """The manifest of subject `i` alone (what a worker process needs to read it)."""
    return SegmentationManifest(
        ids=(manifest.ids[i],),
        timepoints=[manifest.timepoints[i]],
        image_paths=[manifest.image_paths[i]],
        label_paths=[manifest.label_paths[i]],
        rows=[manifest.rows[i]],
        channel_names=manifest.channel_names,
        report=LoadReport(manifest.report.source),
    )


def save_subject_slices(args):
    """`read_subject_slices` of one subject, its arrays saved (atomically) to ``folder/name``.

    ``data_prep/longitudinal_segmentation.py`` gives it to `kerasmed.io.prep_runner.run_prep`
    as the task of each subject; `load_subject_slices` turns its record and file back into the
    `SubjectSlices`.

    Args:
        args: ``(folder, name, manifest, options)``: ``name`` is relative to ``folder`` (keys
            ``images`` and ``labels``), ``manifest`` the `subject_manifest` of the subject,
            ``options`` those of `check_segmentation_options`.

    Returns:
        The task's record, JSON-serialisable: ``"outputs"`` (``[name]``), the subject's CSV
        ``"rows"`` and the other fields of its `SubjectSlices` but the arrays.
    """
    folder, name, manifest, options = args
    item = read_subject_slices(manifest, 0, **options)
    save_npz_atomic(os.path.join(folder, name), images=item.images, labels=item.labels)
    return {
        "outputs": [name],
        "rows": manifest.rows[0].tolist(),
        "problems": [dataclasses.asdict(problem) for problem in item.problems],
        "ignored": [dataclasses.asdict(problem) for problem in item.ignored],
        "kept": item.kept,
        "slice_indices": [int(z) for z in item.slice_indices],
        "slice_error": item.slice_error,
    }


def load_subject_slices(folder, record, rows=None) -> SubjectSlices:
    """The `SubjectSlices` saved by `save_subject_slices` (from its record).

    Args:
        folder: the folder of the record's ``"outputs"``.
        record: the record `save_subject_slices` returned.
        rows: the subject's CSV lines in the manifest now (``manifest.rows[i]``); the
            problems' rows are renumbered from the record's to these (the CSV may have gained
            or lost lines above the subject since). ``None`` keeps them.
    """
    renumber = {} if rows is None else dict(zip(record["rows"], np.asarray(rows).tolist()))

    def problems(entries):
        return [LoadProblem(**{**e, "row": renumber.get(e["row"], e["row"])}) for e in entries]

    with np.load(os.path.join(folder, record["outputs"][0])) as part:
        images, labels = part["images"], part["labels"]
    return SubjectSlices(
        problems=problems(record["problems"]),
        ignored=problems(record["ignored"]),
        kept=record["kept"],
        slice_indices=record["slice_indices"],
        slice_error=record["slice_error"],
        images=images,
        labels=labels,
    )
