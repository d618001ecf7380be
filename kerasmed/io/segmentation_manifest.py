"""Reading the CSV manifest of longitudinal multimodal NIfTI volumes with sparse labels.

Paper 002 (FCSLSTM) segments infant brain MRI into tissues (WM, GM, CSF) at several time points,
from T1w and T2w images, with labels for only some of them. The data is described by a CSV
manifest with a header row and one row per (subject, time point)::

    subject,timepoint,image_t1w,image_t2w,label
    s01,0,s01/m00_t1w.nii.gz,s01/m00_t2w.nii.gz,s01/m00_seg.nii.gz
    s01,6,s01/m06_t1w.nii.gz,s01/m06_t2w.nii.gz,
    s01,12,s01/m12_t1w.nii.gz,s01/m12_t2w.nii.gz,s01/m12_seg.nii.gz

- ``timepoint`` is a number (e.g. age in months); a subject's time points are sorted by it.
- The image columns are ``image`` and every column starting with ``image_``, in header order
  (or the ``image_columns`` you name); each holds one modality, which becomes one channel.
  Alternatively a single image column may hold several ``;``-separated paths per cell.
- ``label`` holds an integer label volume (e.g. 0 background, 1 CSF, 2 GM, 3 WM); an empty cell
  is an unlabelled time point, which is normal in this paper (sparse annotation).
- Relative paths start from the CSV's folder (or ``image_root``).

Rows that cannot be used (empty cell, non-numeric time point, duplicate (subject, time point),
missing file, too many fields) are never dropped silently: each becomes a
`kerasmed.io.LoadProblem` with its CSV line (the header is line 1), and
`read_segmentation_manifest` follows the strict rule of `kerasmed.io.report`: ``strict=True``
(default) raises one error listing them all; ``strict=False`` skips them, warns, and lists them
in ``manifest.report``. `kerasmed.io.load_segmentation_sequences` then reads the volumes.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from kerasmed.io._csv import check_columns, read_manifest_csv
from kerasmed.io.report import LoadReport

__all__ = ["SegmentationManifest", "read_segmentation_manifest"]


@dataclasses.dataclass
class SegmentationManifest:
    """Per-subject time points read from a manifest, sorted by time (volumes not loaded yet).

    Attributes:
        ids: subject ids, in order of first appearance in the CSV.
        timepoints: per subject, ``(T_i,)`` float64 sorted time points.
        image_paths: per subject, ``T_i`` tuples of ``C`` resolved paths (one per channel).
        label_paths: per subject, ``T_i`` resolved label paths, ``None`` when unlabelled.
        rows: per subject, ``(T_i,)`` int64 CSV line numbers.
        channel_names: the ``C`` channel names (image column names; ``image[k]`` for the
            ``k``-th path of a single ``;``-separated column).
        report: the `kerasmed.io.LoadReport` of the rows (loading the volumes extends a copy).
    """

    ids: tuple
    timepoints: list
    image_paths: list
    label_paths: list
    rows: list
    channel_names: tuple
    report: LoadReport

    def __len__(self):
        return len(self.ids)


@dataclasses.dataclass(frozen=True)
class _Columns:
    """The manifest's column names (``label`` is None for a manifest without labels)."""

    subject: str
    timepoint: str
    images: tuple
    label: str | None


def _manifest_columns(path, header, image_columns, label_column, subject_column, timepoint_column):
    """Finds the image columns and checks that every needed column is in the header."""
    if image_columns is None:
        image_columns = [h for h in header if h == "image" or h.startswith("image_")]
    columns = _Columns(
        subject_column, timepoint_column, tuple(map(str, image_columns)), label_column
    )
    required = [subject_column, timepoint_column, *columns.images]
    required += [] if label_column is None else [label_column]
    required += [] if columns.images else ["image or image_<modality>"]
    need = (
        f"{subject_column!r}, {timepoint_column!r}, one or more image columns ('image' or "
        f"'image_<modality>') and {label_column!r} (pass label_column=None for a manifest "
        "without labels)"
    )
    check_columns(path, header, required, need)
    return columns


def _timepoint(text):
    """A time point cell as a finite float, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _row_files(row, columns, root, check_files, num_channels):
    """A row's files: ``(image paths, label path or None)`` and the problems of those cells.

    Each problem is ``(reason, where)``, ``where`` holding `kerasmed.io.LoadProblem` fields.
    """
    faults, files, count = [], [], 0  # (column, relative path), number of image paths
    for c in columns.images:
        cell = row.cells[c]
        parts = [p.strip() for p in cell.split(";")] if cell else []
        if len(columns.images) > 1 and len(parts) > 1:
            faults.append(("several paths in one of several image columns", c, cell))
        if any(not p for p in parts):
            faults.append(("empty path in a ';'-separated list", c, cell))
        files.extend((c, p) for p in parts if p)
        count += len(parts)
    first = columns.images[0]
    if row.cells[first] and len(columns.images) == 1 and num_channels not in (None, count):
        faults.append(
            (f"{count} image paths, earlier rows have {num_channels}", first, row.cells[first])
        )
    labelled = columns.label is not None and bool(row.cells[columns.label])
    if labelled:
        files.append((columns.label, row.cells[columns.label]))
    faults = [(reason, {"column": c, "value": cell}) for reason, c, cell in faults]
    paths = []
    for c, relative in files:
        paths.append(os.path.normpath(os.path.join(root, relative)))
        if check_files and not os.path.isfile(paths[-1]):
            where = {"path": paths[-1], "column": c, "value": row.cells[c]}
            faults.append((f"file not found: {paths[-1]}", where))
    label = paths.pop() if labelled else None
    return (tuple(paths), label), faults


def _parse_row(row, header, columns, root, check_files, num_channels, items):
    """One manifest row: ``(subject, timepoint, image paths, label path)`` and its problems."""
    faults = []
    reason = row.fields_reason(header)
    if reason:
        faults.append((reason, {}))
    for c in (columns.subject, columns.timepoint, *columns.images):
        if not row.cells[c]:
            faults.append(("missing value", {"column": c, "value": row.raw.get(c)}))
    subject, text = row.cells[columns.subject], row.cells[columns.timepoint]
    timepoint = _timepoint(text) if text else None
    if text and timepoint is None:
        faults.append(("non-numeric time point", {"column": columns.timepoint, "value": text}))
    (images, label), file_faults = _row_files(row, columns, root, check_files, num_channels)
    faults += file_faults
    if subject and timepoint is not None and timepoint in items.get(subject, {}):
        first = items[subject][timepoint][0]
        reason = f"duplicate time point of subject {subject!r} (first at row {first})"
        faults.append((reason, {"column": columns.timepoint, "value": text}))
    return (subject, timepoint, images, label), faults


def _sorted_manifest(items, image_columns, num_channels, report):
    """The `SegmentationManifest` of ``{subject: {timepoint: (row, images, label)}}``."""
    if len(image_columns) == 1 and (num_channels or 1) > 1:
        channel_names = tuple(f"{image_columns[0]}[{k}]" for k in range(num_channels))
    else:
        channel_names = tuple(image_columns)
    per_subject = {"timepoints": [], "image_paths": [], "label_paths": [], "rows": []}
    for by_time in items.values():
        order = sorted(by_time)
        rows, images, labels = zip(*(by_time[t] for t in order))
        per_subject["timepoints"].append(np.array(order, dtype="float64"))
        per_subject["image_paths"].append(images)
        per_subject["label_paths"].append(labels)
        per_subject["rows"].append(np.array(rows, dtype="int64"))
    return SegmentationManifest(
        ids=tuple(items), channel_names=channel_names, report=report, **per_subject
    )


def read_segmentation_manifest(
    csv_path,
    image_columns=None,
    label_column="label",
    subject_column="subject",
    timepoint_column="timepoint",
    image_root=None,
    strict=True,
    check_files=True,
) -> SegmentationManifest:
    """Reads a longitudinal segmentation manifest (see the module docstring).

    Args:
        csv_path: the CSV file (UTF-8, header row).
        image_columns: image column names, in channel order; ``None`` uses ``image`` and the
            columns starting with ``image_``, in header order. With a single image column, a
            cell may hold several ``;``-separated paths (the same number in every row).
        label_column: the label column (empty cells = unlabelled); ``None`` when the manifest
            has no labels at all.
        subject_column: the subject id column.
        timepoint_column: the numeric time point column.
        image_root: folder that relative paths start from; ``None`` uses the CSV's folder.
        strict: if True (default), any unusable row raises a `kerasmed.io.LoadError` (a
            ``ValueError``) listing every one, with its CSV row, column and value; if False
            they are skipped, warned about and listed in ``manifest.report``.
        check_files: report rows whose image or label file does not exist.

    Returns:
        A `SegmentationManifest`; ``manifest.report`` lists the skipped rows.

    Raises:
        FileNotFoundError: `csv_path` does not exist.
        ValueError: the file is not UTF-8 CSV, a required column is missing from the header,
            or (``strict``) a row is unusable.

    Example:

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.csv").write_text(
    ...     "subject,timepoint,image_t1w,image_t2w,label\\n"
    ...     "s1,12,a12.nii,b12.nii,\\ns1,0,a0.nii,b0.nii,l0.nii\\ns1,six,a6.nii,b6.nii,\\n")
    >>> m = read_segmentation_manifest(folder / "m.csv", check_files=False, strict=False)
    >>> m.ids, m.timepoints[0].tolist(), m.channel_names, m.report.skipped_rows
    (('s1',), [0.0, 12.0], ('image_t1w', 'image_t2w'), [4])
    >>> [p is None for p in m.label_paths[0]]
    [False, True]
    """
    csv_path, header, rows, root = read_manifest_csv(csv_path, image_root)
    columns = _manifest_columns(
        csv_path, header, image_columns, label_column, subject_column, timepoint_column
    )
    report = LoadReport(source=csv_path)
    items = {}  # subject -> {timepoint: (row, image paths, label path)}
    num_channels = None
    for row in rows:
        report.num_rows += 1
        entry, faults = _parse_row(row, header, columns, root, check_files, num_channels, items)
        for reason, where in faults:
            report.add(reason, row=row.line, **where)
        if not faults:
            subject, timepoint, images, label = entry
            num_channels = len(images) if num_channels is None else num_channels
            items.setdefault(subject, {})[timepoint] = (row.line, images, label)
    report.raise_or_warn(strict, "row(s)")
    return _sorted_manifest(items, columns.images, num_channels, report)
