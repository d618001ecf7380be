"""Reading longitudinal multimodal NIfTI volumes with sparse labels into 2D + time sequences.

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
missing file, wrong number of fields) are never dropped silently: each becomes a
`ManifestProblem` with its CSV line (the header is line 1) in ``manifest.report``, a warning
lists them, and ``strict=True`` raises instead.

Registration is the user's job: every modality, time point and label volume of a subject must
already be resampled to one voxel grid. `load_segmentation_sequences` checks that their shapes
agree (the affines are not compared) and takes the same axial slice index from each.

``data_prep/longitudinal_segmentation.py`` turns a manifest into ``segmentation.npz``, which
``kerasmed reproduce fcslstm --data-dir`` reads with `load_segmentation_npz`.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import os
import warnings

import cv2
import numpy as np
from nibabel.filebasedimages import ImageFileError

from kerasmed.io.manifest import ManifestProblem, ManifestReport
from kerasmed.io.nifti import read_nifti

__all__ = [
    "SegmentationManifest",
    "SegmentationSequences",
    "load_segmentation_npz",
    "load_segmentation_sequences",
    "read_segmentation_manifest",
    "save_segmentation_npz",
]

FORMAT_VERSION = 1
NPZ_NAME = "segmentation.npz"
_NPZ_KEYS = ("images", "labels", "subject_ids", "slice_indices", "timepoints", "channel_names")
_EXTRA = "\0extra"  # DictReader key of the fields beyond the header
_MAX_LISTED = 20
_SLICE_MODES = ("middle", "all", "labelled")
_NORMALIZE = ("zscore", None)
_READ_ERRORS = (OSError, ValueError, EOFError, ImageFileError)


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
        report: the `ManifestReport` (grows when the volumes are loaded).
    """

    ids: tuple
    timepoints: list
    image_paths: list
    label_paths: list
    rows: list
    channel_names: tuple
    report: ManifestReport

    def __len__(self):
        return len(self.ids)


@dataclasses.dataclass
class SegmentationSequences:
    """Sequences of aligned 2D slices over time, with labels (``-1`` = not annotated).

    One sequence is one axial slice index of one subject followed over the time points.

    Args:
        images: ``(S, T, H, W, C)`` float32.
        labels: ``(S, T, H, W)`` int8 class indices, ``-1`` where there is no label (a whole
            time point without a label file, or voxels mapped to ``-1``).
        subject_ids: ``S`` subject ids.
        slice_indices: ``(S,)`` int64 axial index ``z`` of each slice in the canonical volume.
        timepoints: ``(S, T)`` float64 time points of each sequence, increasing.
        channel_names: the ``C`` channel names.
        report: the `ManifestReport` of the manifest, or ``None`` (read from a file).

    Example:

    >>> import numpy as np
    >>> seqs = SegmentationSequences(
    ...     images=np.zeros((2, 3, 4, 4, 2), "float32"),
    ...     labels=np.full((2, 3, 4, 4), -1, "int8"),
    ...     subject_ids=("a", "b"), slice_indices=[5, 5],
    ...     timepoints=[[0, 6, 12], [0, 6, 12]], channel_names=("t1w", "t2w"))
    >>> seqs.labels[:, 0] = 2
    >>> len(seqs), seqs.labelled.tolist(), seqs.num_classes
    (2, [[True, False, False], [True, False, False]], 3)
    """

    images: np.ndarray
    labels: np.ndarray
    subject_ids: tuple
    slice_indices: np.ndarray
    timepoints: np.ndarray
    channel_names: tuple
    report: ManifestReport | None = None

    def __post_init__(self):
        self.images = np.asarray(self.images, dtype="float32")
        labels = np.asarray(self.labels)
        self.subject_ids = tuple(str(i) for i in self.subject_ids)
        self.slice_indices = np.asarray(self.slice_indices, dtype="int64").reshape(-1)
        self.timepoints = np.asarray(self.timepoints, dtype="float64")
        self.channel_names = tuple(str(c) for c in self.channel_names)
        shape = self.images.shape
        if (
            self.images.ndim != 5
            or labels.shape != shape[:4]
            or self.timepoints.shape != shape[:2]
            or len(self.subject_ids) != shape[0]
            or self.slice_indices.shape != shape[:1]
            or len(self.channel_names) != shape[-1]
        ):
            raise ValueError(
                "Expected images (S, T, H, W, C), labels (S, T, H, W), timepoints (S, T), S "
                "subject_ids and slice_indices, C channel_names. Received: "
                f"images={shape}, labels={labels.shape}, timepoints={self.timepoints.shape}, "
                f"subject_ids={len(self.subject_ids)}, slice_indices={self.slice_indices.shape}, "
                f"channel_names={self.channel_names}"
            )
        if not np.issubdtype(labels.dtype, np.integer) and not np.array_equal(
            labels, np.round(labels)
        ):
            raise ValueError(f"`labels` must be integers. Received: labels.dtype={labels.dtype}")
        if labels.size and (labels.min() < -1 or labels.max() > 127):
            raise ValueError(
                "`labels` must be -1 (unlabelled) or classes in [0, 127]. Received: "
                f"min={labels.min()}, max={labels.max()}"
            )
        self.labels = labels.astype("int8")

    def __len__(self):
        return len(self.images)

    @property
    def labelled(self) -> np.ndarray:
        """``(S, T)`` bool: whether each slice has at least one labelled voxel."""
        return np.any(self.labels >= 0, axis=(2, 3))

    @property
    def num_classes(self) -> int:
        """The largest class present plus one (0 without any label)."""
        return int(self.labels.max()) + 1 if self.labels.size else 0


def _raise_or_add(report, problem, strict, error=ValueError):
    if strict:
        raise error(f"{report.path}, {problem}. Received: strict=True")
    report.problems.append(problem)


def _warn_new(report, start, what):
    new = report.problems[start:]
    if new:
        lines = [str(p) for p in new[:_MAX_LISTED]]
        if len(new) > _MAX_LISTED:
            lines.append(f"... and {len(new) - _MAX_LISTED} more problems")
        warnings.warn(f"{what}:\n  " + "\n  ".join(lines), stacklevel=3)


def read_segmentation_manifest(
    csv_path,
    image_columns=None,
    label_column="label",
    subject_column="subject",
    timepoint_column="timepoint",
    image_root=None,
    strict=False,
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
        strict: raise at the first unusable row (``FileNotFoundError`` for a missing file,
            ``ValueError`` otherwise, naming the CSV file, row, column and value) instead of
            skipping and reporting it.
        check_files: report rows whose image or label file does not exist.

    Returns:
        A `SegmentationManifest`; ``manifest.report`` lists the skipped rows.

    Raises:
        FileNotFoundError: `csv_path` does not exist, or (``strict``) a listed file is missing.
        ValueError: a required column is missing from the header, or (``strict``) a row is
            unusable.

    Example:

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.csv").write_text(
    ...     "subject,timepoint,image_t1w,image_t2w,label\\n"
    ...     "s1,12,a12.nii,b12.nii,\\ns1,0,a0.nii,b0.nii,l0.nii\\ns1,six,a6.nii,b6.nii,\\n")
    >>> m = read_segmentation_manifest(folder / "m.csv", check_files=False)
    >>> m.ids, m.timepoints[0].tolist(), m.channel_names, m.report.skipped_rows
    (('s1',), [0.0, 12.0], ('image_t1w', 'image_t2w'), [4])
    >>> [p is None for p in m.label_paths[0]]
    [False, True]
    """
    csv_path = os.fspath(csv_path)
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"No such manifest file: {csv_path}")
    root = os.fspath(image_root) if image_root is not None else os.path.dirname(csv_path)
    report = ManifestReport(path=csv_path)
    items = {}  # subject -> {timepoint: (row, image paths, label path)}
    num_channels = None
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, restkey=_EXTRA)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        if image_columns is None:
            image_columns = [h for h in header if h == "image" or h.startswith("image_")]
        image_columns = [str(c) for c in image_columns]
        required = [subject_column, timepoint_column, *image_columns]
        if label_column is not None:
            required.append(label_column)
        missing = [c for c in required if c not in header]
        if not image_columns:
            missing.append("image or image_<modality>")
        if missing:
            raise ValueError(
                f"{csv_path} (row 1, header): missing columns {missing}; need "
                f"{subject_column!r}, {timepoint_column!r}, one or more image columns ('image' "
                f"or 'image_<modality>') and {label_column!r} (pass label_column=None for a "
                f"manifest without labels). Received: header={header}"
            )
        for record in reader:
            row = reader.line_num
            report.num_rows += 1
            faults = []  # (message, column, value, error class)
            if _EXTRA in record:
                count = len(header) + len(record[_EXTRA])
                faults.append((f"{count} fields, the header has {len(header)}", None, None))
            cells = {c: (record.get(c) or "").strip() for c in header}
            for c in required[:-1] if label_column is not None else required:
                if not cells[c]:
                    faults.append(("missing value", c, record.get(c)))
            timepoint = None
            if cells[timepoint_column]:
                try:
                    timepoint = float(cells[timepoint_column])
                except ValueError:
                    pass
                if timepoint is None or not np.isfinite(timepoint):
                    timepoint = None
                    faults.append(
                        ("non-numeric time point", timepoint_column, cells[timepoint_column])
                    )
            files, count = [], 0  # (column, cell, path), number of paths
            for c in image_columns:
                parts = [p.strip() for p in cells[c].split(";")] if cells[c] else []
                if len(image_columns) > 1 and len(parts) > 1:
                    faults.append(("several paths in one of several image columns", c, cells[c]))
                if any(not p for p in parts):
                    faults.append(("empty path in a ';'-separated list", c, cells[c]))
                files.extend((c, cells[c], p) for p in parts if p)
                count += len(parts)
            if cells[image_columns[0]] and len(image_columns) == 1:
                if num_channels is not None and count != num_channels:
                    message = f"{count} image paths, earlier rows have {num_channels}"
                    faults.append((message, image_columns[0], cells[image_columns[0]]))
            labelled = label_column is not None and bool(cells[label_column])
            if labelled:
                files.append((label_column, cells[label_column], cells[label_column]))
            paths = []
            for c, cell, relative in files:
                path = os.path.normpath(os.path.join(root, relative))
                paths.append(path)
                if check_files and not os.path.isfile(path):
                    faults.append((f"file not found: {path}", c, cell, FileNotFoundError))
            subject = cells[subject_column]
            if subject and timepoint is not None and timepoint in items.get(subject, {}):
                first = items[subject][timepoint][0]
                message = f"duplicate time point of subject {subject!r} (first at row {first})"
                faults.append((message, timepoint_column, cells[timepoint_column]))
            for fault in faults:
                error = fault[3] if len(fault) > 3 else ValueError
                _raise_or_add(report, ManifestProblem(row, *fault[:3]), strict, error)
            if faults:
                continue
            images = tuple(paths[:-1] if labelled else paths)
            num_channels = len(images) if num_channels is None else num_channels
            items.setdefault(subject, {})[timepoint] = (
                row,
                images,
                paths[-1] if labelled else None,
            )
    _warn_new(report, 0, "Unusable manifest rows (skipped)")
    if len(image_columns) == 1 and (num_channels or 1) > 1:
        channel_names = tuple(f"{image_columns[0]}[{k}]" for k in range(num_channels))
    else:
        channel_names = tuple(image_columns)
    ids, timepoints, image_paths, label_paths, rows = [], [], [], [], []
    for subject, by_time in items.items():
        order = sorted(by_time)
        ids.append(subject)
        timepoints.append(np.array(order, dtype="float64"))
        rows.append(np.array([by_time[t][0] for t in order], dtype="int64"))
        image_paths.append(tuple(by_time[t][1] for t in order))
        label_paths.append(tuple(by_time[t][2] for t in order))
    return SegmentationManifest(
        ids=tuple(ids),
        timepoints=timepoints,
        image_paths=image_paths,
        label_paths=label_paths,
        rows=rows,
        channel_names=channel_names,
        report=report,
    )


def _zscore_nonzero(volume):
    """(v - mean) / std over the nonzero voxels; zero voxels (background) stay 0."""
    mask = volume != 0
    out = np.zeros(volume.shape, dtype="float32")
    if mask.any():
        values = volume[mask].astype("float64")
        std = values.std()
        out[mask] = (values - values.mean()) / (std if std > 0 else 1.0)
    return out


def _read_timepoint(image_paths, label_path, normalize, label_map):
    """Reads one time point: ``(Z, Y, X, C)`` float32 image and ``(Z, Y, X)`` int16 label or None."""
    volumes = [read_nifti(path).array for path in image_paths]
    shapes = {v.shape for v in volumes}
    if len(shapes) > 1:
        listed = ", ".join(f"{p} {v.shape}" for p, v in zip(image_paths, volumes))
        raise ValueError(f"modalities have different shapes (register them first): {listed}")
    if normalize == "zscore":
        volumes = [_zscore_nonzero(v) for v in volumes]
    image = np.stack(volumes, axis=-1).astype("float32", copy=False)
    if label_path is None:
        return image, None
    raw = read_nifti(label_path).array
    if raw.shape != image.shape[:3]:
        raise ValueError(
            f"label shape {raw.shape} of {label_path} differs from image shape "
            f"{image.shape[:3]} of {image_paths[0]} (register them first)"
        )
    if not np.all(np.isfinite(raw)) or not np.array_equal(raw, np.round(raw)):
        raise ValueError(f"label file {label_path} has non-integer values")
    values = np.unique(raw)
    if label_map is None:
        bad = values[(values < -1) | (values > 127)].astype("int64")
        if bad.size:
            raise ValueError(
                f"label file {label_path} has values {bad[:10].tolist()} outside [-1, 127]; "
                "pass a label_map"
            )
        return image, raw.astype("int16")
    bad = [int(v) for v in values.tolist() if int(v) not in label_map]
    if bad:
        raise ValueError(f"label file {label_path} has values {bad[:10]} missing from label_map")
    label = np.zeros(raw.shape, dtype="int16")
    for value in values.tolist():
        label[raw == value] = label_map[int(value)]
    return image, label


def _check_slices(slices):
    if isinstance(slices, str):
        if slices not in _SLICE_MODES:
            raise ValueError(f"`slices` must be one of {_SLICE_MODES}. Received: slices={slices!r}")
        return slices
    if isinstance(slices, (int, np.integer)) and not isinstance(slices, bool):
        return [int(slices)]
    items = list(slices) if isinstance(slices, (list, tuple, np.ndarray)) else None
    if items and len(items) == 2 and any(isinstance(v, (float, np.floating)) for v in items):
        start, stop = float(items[0]), float(items[1])
        if 0.0 <= start < stop <= 1.0:
            return (start, stop)
    elif items and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items):
        return [int(v) for v in items]
    raise ValueError(
        f"`slices` must be one of {_SLICE_MODES}, an axial index, a list of indices, or a "
        f"fraction range (start, stop) with 0 <= start < stop <= 1. Received: slices={slices!r}"
    )


def _select_slices(slices, depth, labels):
    """Axial indices of a ``depth``-slice volume; raises ValueError if none or out of range."""
    if slices == "middle":
        return [depth // 2]
    if slices == "all":
        return list(range(depth))
    if slices == "labelled":
        found = np.zeros(depth, dtype=bool)
        for label in labels:
            if label is not None:
                found |= np.any(label > 0, axis=(1, 2))
        if not found.any():
            raise ValueError("no labelled slice (no label voxel > 0) at any time point")
        return np.flatnonzero(found).tolist()
    if isinstance(slices, tuple):
        centres = (np.arange(depth) + 0.5) / depth
        keep = np.flatnonzero((centres >= slices[0]) & (centres < slices[1])).tolist()
        if not keep:
            raise ValueError(f"slices={slices} selects no slice of a volume with {depth} slices")
        return keep
    bad = [z for z in slices if not -depth <= z < depth]
    if bad:
        raise ValueError(f"slice indices {bad} out of range for {depth} axial slices")
    return [z % depth for z in slices]


def _resize(images, labels, size):
    """Resizes ``(T, H, W, C)`` images (bilinear) and ``(T, H, W)`` labels (nearest)."""
    height, width = size
    out_images = np.empty((len(images), height, width, images.shape[-1]), dtype="float32")
    out_labels = np.empty((len(images), height, width), dtype="int16")
    for t in range(len(images)):
        resized = cv2.resize(images[t], (width, height), interpolation=cv2.INTER_LINEAR)
        out_images[t] = resized.reshape(height, width, -1)
        out_labels[t] = cv2.resize(labels[t], (width, height), interpolation=cv2.INTER_NEAREST)
    return out_images, out_labels


def load_segmentation_sequences(
    manifest: SegmentationManifest,
    slices="middle",
    image_size=None,
    normalize="zscore",
    timepoints=None,
    label_map=None,
    strict=False,
) -> SegmentationSequences:
    """Loads the volumes of a manifest into aligned 2D slice sequences over time.

    Each volume is read with `read_nifti` (canonical RAS+ orientation, array ``(Z, Y, X)``):
    a slice is ``array[z]``, an axial image whose rows run towards Anterior and whose columns
    run towards the patient's Right (show it with ``imshow(..., origin="lower")`` for anterior
    at the top). The channels are stacked in manifest column order.

    With ``normalize="zscore"`` every image volume (each modality of each time point) is
    standardised over its nonzero voxels, taken as the brain of a skull-stripped image:
    ``(v - mean) / std`` there, while zero voxels (background) stay 0. ``None`` keeps the
    intensities as read.

    Labels are class indices in ``[0, 127]``; ``-1`` means "not annotated": the whole slice at a
    time point without a label file, and any voxel whose file value is ``-1`` or maps to ``-1``.

    Nothing is dropped silently: a time point that cannot be used (unreadable file,
    modalities or label of different shapes, a shape that differs from the subject's other time
    points, invalid label values) is skipped and reported with its CSV row in
    ``manifest.report``; so is a subject whose slice selection does not fit its volumes, or
    whose number of usable time points differs from the others (the most frequent count, or
    ``len(timepoints)``). A warning lists the new problems.

    Args:
        manifest: a `SegmentationManifest` from `read_segmentation_manifest`.
        slices: axial slices to take from every subject: ``"middle"`` (``Z // 2``), ``"all"``,
            ``"labelled"`` (slices with a label voxel > 0 at some time point, e.g. the one
            annotated slice per volume of the paper's BRIC data), an index or a list of indices
            (negative counts from the top), or a fraction range ``(start, stop)`` of floats:
            the slices whose centre ``(z + 0.5) / Z`` lies in ``[start, stop)``.
        image_size: ``(height, width)`` or an int; slices are resized with OpenCV (bilinear for
            images, nearest for labels). ``None`` keeps ``(Y, X)``, which must then be the same
            for every subject.
        normalize: ``"zscore"`` or ``None`` (see above).
        timepoints: time point values to keep (subjects lacking one are skipped, other time
            points are reported as skipped); ``None`` keeps all of them.
        label_map: dict from label file value (int) to class (``-1`` to ``127``), e.g.
            ``{0: 0, 10: 1, 150: 2, 250: 3}`` for iSeg-2017 files; a value missing from it is a
            problem. ``None`` uses the values as they are.
        strict: raise ``ValueError`` (``FileNotFoundError`` for a missing file) at the first
            problem instead of skipping and reporting.

    Returns:
        A `SegmentationSequences`, one sequence per (subject, selected slice), in manifest
        subject order then slice order; ``report`` is ``manifest.report``.

    Raises:
        ValueError: invalid arguments, subjects of different ``(Y, X)`` without `image_size`,
            no usable subject, or (``strict``) any problem.

    Example:

    >>> import os, tempfile, nibabel, numpy as np
    >>> folder = tempfile.mkdtemp()
    >>> lines = ["subject,timepoint,image,label"]
    >>> for t in (0, 6):
    ...     volume = np.full((4, 3, 2), t + 1.0, "float32")  # (x, y, z), 2 axial slices
    ...     nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), os.path.join(folder, f"{t}.nii"))
    ...     lines.append(f"s1,{t},{t}.nii," + ("" if t else "0.nii"))
    >>> _ = open(os.path.join(folder, "m.csv"), "w").write("\\n".join(lines))
    >>> m = read_segmentation_manifest(os.path.join(folder, "m.csv"))
    >>> seqs = load_segmentation_sequences(m, slices="all", normalize=None)
    >>> seqs.images.shape, seqs.slice_indices.tolist(), seqs.images[0, :, 0, 0, 0].tolist()
    ((2, 2, 3, 4, 1), [0, 1], [1.0, 7.0])
    >>> seqs.labels[0, :, 0, 0].tolist()  # the 6-month time point has no label
    [1, -1]

    Reference:
        Gao, Phillips, Zheng, Min, Fletcher, Gerig, "Fully convolutional structured LSTM
        networks for joint 4D medical image segmentation", ISBI 2018, Section 3.
    """
    slices = _check_slices(slices)
    if normalize not in _NORMALIZE:
        raise ValueError(
            f"`normalize` must be one of {_NORMALIZE}. Received: normalize={normalize!r}"
        )
    if image_size is not None:
        size = (image_size,) * 2 if np.isscalar(image_size) else tuple(image_size)
        if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
            raise ValueError(
                "`image_size` must be a positive int or (height, width). "
                f"Received: image_size={image_size!r}"
            )
        image_size = (int(size[0]), int(size[1]))
    if label_map is not None:
        label_map = {int(k): int(v) for k, v in label_map.items()}
        if any(not -1 <= v <= 127 for v in label_map.values()):
            raise ValueError(
                f"`label_map` classes must be in [-1, 127]. Received: label_map={label_map}"
            )
    wanted = None if timepoints is None else [float(t) for t in timepoints]
    report = manifest.report
    start = len(report.problems)
    loaded = []  # (subject index, kept positions, images (T,Z,Y,X,C), labels [T x label|None])
    for i, subject in enumerate(manifest.ids):
        rows, times = manifest.rows[i], manifest.timepoints[i]
        positions = list(range(len(times)))
        if wanted is not None:
            lacking = [t for t in wanted if t not in times.tolist()]
            if lacking:
                message = f"subject {subject!r} skipped: no time point {lacking} in the manifest"
                _raise_or_add(report, ManifestProblem(int(rows.min()), message), strict)
                continue
            for j in positions:  # deliberately left out: reported, even when strict
                if times[j] not in wanted:
                    message = f"time point skipped: not in timepoints={wanted}"
                    report.problems.append(
                        ManifestProblem(int(rows[j]), message, "timepoint", f"{times[j]:g}")
                    )
            positions = [j for j in positions if times[j] in wanted]
        volumes = {}
        for j in positions:
            paths = manifest.image_paths[i][j]
            try:
                volumes[j] = _read_timepoint(
                    paths, manifest.label_paths[i][j], normalize, label_map
                )
            except _READ_ERRORS as error:
                kind = FileNotFoundError if isinstance(error, FileNotFoundError) else ValueError
                problem = ManifestProblem(int(rows[j]), f"time point skipped: {error}")
                _raise_or_add(report, problem, strict, kind)
        shapes = collections.Counter(v[0].shape[:3] for v in volumes.values())
        if shapes:
            common = shapes.most_common(1)[0][0]
            for j in list(volumes):
                if volumes[j][0].shape[:3] != common:
                    message = (
                        f"time point skipped: shape {volumes[j][0].shape[:3]} of "
                        f"{manifest.image_paths[i][j][0]} differs from the subject's other time "
                        f"points {common} (register them first)"
                    )
                    _raise_or_add(report, ManifestProblem(int(rows[j]), message), strict)
                    del volumes[j]
        if wanted is not None and len(volumes) < len(wanted):
            message = f"subject {subject!r} skipped: some of timepoints={wanted} are unusable"
            _raise_or_add(report, ManifestProblem(int(rows.min()), message), strict)
            continue
        if volumes:
            kept = sorted(volumes)
            images = np.stack([volumes[j][0] for j in kept])
            loaded.append((i, kept, images, [volumes[j][1] for j in kept]))
    counts = collections.Counter(len(item[1]) for item in loaded)
    length = max(counts, key=lambda n: (counts[n], n)) if counts else 0
    sequences = []  # (subject, z, images (T,Y,X,C), labels (T,Y,X), timepoints)
    for i, kept, images, labels in loaded:
        subject, first_row = manifest.ids[i], int(manifest.rows[i].min())
        if len(kept) != length:
            message = (
                f"subject {subject!r} skipped: {len(kept)} usable time points, most subjects "
                f"have {length} (choose them with timepoints=...)"
            )
            _raise_or_add(report, ManifestProblem(first_row, message), strict)
            continue
        try:
            chosen = _select_slices(slices, images.shape[1], labels)
        except ValueError as error:
            message = f"subject {subject!r} skipped: {error}"
            _raise_or_add(report, ManifestProblem(first_row, message), strict)
            continue
        dense = np.stack(
            [np.full(images.shape[1:4], -1, "int16") if lab is None else lab for lab in labels]
        )
        times = manifest.timepoints[i][kept]
        for z in chosen:
            sequences.append((subject, z, images[:, z], dense[:, z], times))
    _warn_new(report, start, "Unusable time points or subjects (skipped)")
    if not sequences:
        raise ValueError(f"No usable subject in the manifest {report.path}:\n  {report}")
    if image_size is None:
        sizes = {}
        for subject, _, images, _, _ in sequences:
            sizes.setdefault(images.shape[1:3], subject)
        if len(sizes) > 1:
            listed = ", ".join(f"{s!r} {shape}" for shape, s in sizes.items())
            raise ValueError(
                f"Subjects have different slice shapes (Y, X): {listed}. Pass image_size to "
                "resize them. Received: image_size=None"
            )
    else:
        sequences = [(s, z, *_resize(x, y, image_size), t) for s, z, x, y, t in sequences]
    return SegmentationSequences(
        images=np.stack([item[2] for item in sequences]),
        labels=np.stack([item[3] for item in sequences]),
        subject_ids=tuple(item[0] for item in sequences),
        slice_indices=[item[1] for item in sequences],
        timepoints=np.stack([item[4] for item in sequences]),
        channel_names=manifest.channel_names,
        report=report,
    )


def save_segmentation_npz(path, sequences: SegmentationSequences):
    """Writes `sequences` to a compressed ``.npz`` file readable without pickle.

    Keys: ``images`` ``(S, T, H, W, C)`` float32, ``labels`` ``(S, T, H, W)`` int8 (``-1``
    unlabelled), ``subject_ids`` ``(S,)`` str, ``slice_indices`` ``(S,)`` int64,
    ``timepoints`` ``(S, T)`` float64, ``channel_names`` ``(C,)`` str, ``format_version`` int64.

    Args:
        path: output file; ``.npz`` is appended by NumPy if missing.
        sequences: a `SegmentationSequences`.
    """
    if len(sequences) == 0:
        raise ValueError("Cannot save an empty `sequences`. Received: len(sequences)=0")
    np.savez_compressed(
        path,
        images=sequences.images.astype("float32"),
        labels=sequences.labels.astype("int8"),
        subject_ids=np.array(sequences.subject_ids, dtype=str),
        slice_indices=sequences.slice_indices.astype("int64"),
        timepoints=sequences.timepoints.astype("float64"),
        channel_names=np.array(sequences.channel_names, dtype=str),
        format_version=np.array(FORMAT_VERSION, dtype="int64"),
    )


def load_segmentation_npz(path) -> SegmentationSequences:
    """Reads a file written by `save_segmentation_npz` (``data_prep/longitudinal_segmentation.py``).

    Args:
        path: the ``.npz`` file, or a folder holding ``segmentation.npz`` (the experiment's
            ``--data-dir``).

    Returns:
        A `SegmentationSequences` (``report=None``).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if a key is missing, or the arrays have inconsistent shapes or types.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, NPZ_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No such segmentation .npz file: {path} (write it with "
            "data_prep/longitudinal_segmentation.py)"
        )
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in _NPZ_KEYS if k not in data.files]
        if missing:
            raise ValueError(
                f"{path} is not a segmentation sequences file: missing keys {missing}. "
                f"Received: keys={sorted(data.files)}"
            )
        arrays = {k: data[k] for k in _NPZ_KEYS}
    if not np.issubdtype(arrays["images"].dtype, np.floating) or not np.issubdtype(
        arrays["labels"].dtype, np.integer
    ):
        raise ValueError(
            f"{path}: `images` must be float and `labels` integer. Received: "
            f"images.dtype={arrays['images'].dtype}, labels.dtype={arrays['labels'].dtype}"
        )
    try:
        return SegmentationSequences(
            images=arrays["images"],
            labels=arrays["labels"],
            subject_ids=tuple(arrays["subject_ids"].tolist()),
            slice_indices=arrays["slice_indices"],
            timepoints=arrays["timepoints"],
            channel_names=tuple(arrays["channel_names"].tolist()),
        )
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
