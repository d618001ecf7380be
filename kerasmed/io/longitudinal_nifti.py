"""Loading longitudinal multimodal NIfTI volumes with sparse labels into 2D + time sequences.

Paper 002 (FCSLSTM) segments infant brain MRI into tissues (WM, GM, CSF) at several time points,
from T1w and T2w images, with labels for only some of them. `read_segmentation_manifest`
(`kerasmed.io.segmentation_manifest`, where the CSV format is described) lists the volumes of
each (subject, time point); `load_segmentation_sequences` reads them in these steps:

1. per subject, the time points asked for (``timepoints=``; the others are listed as ignored);
2. per time point, its modalities and label volume (`read_nifti`), z-scored with
   `kerasmed.preprocessing.zscore_nonzero` and with the label values mapped;
3. per subject, the time points of the subject's most common shape;
4. the subjects with the most common number of time points, cut into axial slice sequences;
5. the slices resized with `kerasmed.preprocessing.resize_slices` on request.

Steps 1-3 and 5 concern one subject at a time (`read_subject_slices`, a `SubjectSlices`), step 4
all of them (`segmentation_from_subjects`); ``data_prep/longitudinal_segmentation.py`` runs the
first in worker processes (`kerasmed.io.segmentation_prep`).

A time point or subject that cannot be used at a step is never dropped silently: it becomes a
`kerasmed.io.LoadProblem` with its CSV line, under the strict rule of `kerasmed.io.report`
(``strict=True``, the default, raises one error listing them all; ``strict=False`` skips them,
warns, and lists them in the result's ``report``, which extends a copy of the manifest's).

Registration is the user's job: every modality, time point and label volume of a subject must
already be resampled to one voxel grid. `load_segmentation_sequences` checks that their shapes
agree (the affines are not compared) and takes the same axial slice index from each.

``data_prep/longitudinal_segmentation.py`` turns a manifest into ``segmentation.npz``
(`kerasmed.io.segmentation_sequences`), which ``kerasmed reproduce fcslstm --data-dir`` reads
with `load_segmentation_npz`.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
from nibabel.filebasedimages import ImageFileError

from kerasmed.io.nifti import read_nifti
from kerasmed.io.report import LoadError, LoadReport
from kerasmed.io.segmentation_manifest import (  # noqa: F401  (re-exported: the input)
    SegmentationManifest,
    read_segmentation_manifest,
)
from kerasmed.io.segmentation_sequences import (  # noqa: F401  (re-exported: the output format)
    NPZ_NAME,
    SegmentationSequences,
    load_segmentation_npz,
    save_segmentation_npz,
)
from kerasmed.preprocessing.intensity import zscore_nonzero
from kerasmed.preprocessing.resize import resize_slices
from kerasmed.validation import check_int_tuple, check_one_of

__all__ = [
    "SegmentationManifest",
    "SegmentationSequences",
    "SubjectSlices",
    "check_segmentation_options",
    "load_segmentation_npz",
    "load_segmentation_sequences",
    "read_segmentation_manifest",
    "read_subject_slices",
    "save_segmentation_npz",
    "segmentation_from_subjects",
]

_SLICE_MODES = ("middle", "all", "labelled")
_NORMALIZE = ("zscore", None)
_READ_ERRORS = (OSError, ValueError, EOFError, ImageFileError)


def _read_timepoint(image_paths, label_path, normalize, label_map):
    """Reads one time point: ``(Z, Y, X, C)`` float32 image and ``(Z, Y, X)`` int16 label or None.

    Raises ``ValueError`` (or an error of the NIfTI reader) naming the file at fault.
    """
    volumes = [read_nifti(path).array for path in image_paths]
    shapes = {v.shape for v in volumes}
    if len(shapes) > 1:
        listed = ", ".join(f"{p} {v.shape}" for p, v in zip(image_paths, volumes))
        raise ValueError(f"modalities have different shapes (register them first): {listed}")
    if normalize == "zscore":
        try:
            volumes = [zscore_nonzero(v) for v in volumes]
        except ValueError as error:
            raise ValueError(f"images {list(image_paths)}: {error}") from error
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


def _check_label_map(label_map):
    if label_map is None:
        return None
    label_map = {int(k): int(v) for k, v in label_map.items()}
    if any(not -1 <= v <= 127 for v in label_map.values()):
        raise ValueError(
            f"`label_map` classes must be in [-1, 127]. Received: label_map={label_map}"
        )
    return label_map


def _wanted_positions(manifest, i, wanted, report):
    """Positions of subject `i`'s time points to load (None: the subject lacks some)."""
    rows, times = manifest.rows[i], manifest.timepoints[i]
    if wanted is None:
        return list(range(len(times)))
    lacking = [t for t in wanted if t not in times.tolist()]
    if lacking:
        reason = f"subject {manifest.ids[i]!r} skipped: no time point {lacking} in the manifest"
        report.add(reason, row=int(rows.min()))
        return None
    for j, time in enumerate(times):
        if time not in wanted:  # left out on request: listed, never a problem
            reason = f"time point skipped: not in timepoints={wanted}"
            report.ignore(reason, row=int(rows[j]), column="timepoint", value=f"{time:g}")
    return [j for j, time in enumerate(times) if time in wanted]


def _read_subject(manifest, i, positions, normalize, label_map, report):
    """Reads subject `i`'s time points at `positions`; ``{position: (image, label)}``.

    A time point that cannot be read, or whose shape differs from the subject's most common
    one, is recorded in `report` and left out.
    """
    rows, volumes = manifest.rows[i], {}
    for j in positions:
        paths = manifest.image_paths[i][j]
        try:
            volumes[j] = _read_timepoint(paths, manifest.label_paths[i][j], normalize, label_map)
        except _READ_ERRORS as error:
            report.add(f"time point skipped: {error}", row=int(rows[j]))
    shapes = collections.Counter(image.shape[:3] for image, _ in volumes.values())
    if shapes:
        common = shapes.most_common(1)[0][0]
        for j in [j for j, (image, _) in volumes.items() if image.shape[:3] != common]:
            path = manifest.image_paths[i][j][0]
            reason = (
                f"time point skipped: shape {volumes.pop(j)[0].shape[:3]} of {path} differs "
                f"from the subject's other time points {common} (register them first)"
            )
            report.add(reason, path=path, row=int(rows[j]))
    return volumes


@dataclasses.dataclass
class SubjectSlices:
    """What one subject of a manifest gives `load_segmentation_sequences` (`read_subject_slices`).

    Attributes:
        problems: `kerasmed.io.LoadProblem` of its time points (or of the subject) that
            reading could not use, in order.
        ignored: `kerasmed.io.LoadProblem` of its time points left out on request.
        kept: positions (in the manifest's sorted time points) of the time points kept, or
            ``None`` when reading left the subject out.
        slice_indices: the axial indices selected (empty with `slice_error`).
        slice_error: why no slice could be selected, or ``None``.
        images: ``(K, T, H, W, C)`` float32, one sequence per selected slice (resized when
            an ``image_size`` was given).
        labels: ``(K, T, H, W)`` int16, ``-1`` where unlabelled.
    """

    problems: list
    ignored: list
    kept: list | None
    slice_indices: list
    slice_error: str | None
    images: np.ndarray
    labels: np.ndarray


def check_segmentation_options(
    slices="middle", image_size=None, normalize="zscore", timepoints=None, label_map=None
):
    """Checks the options of `load_segmentation_sequences`; returns them as a checked dict.

    The dict holds ``slices``, ``image_size`` (a ``(height, width)`` tuple or None),
    ``normalize``, ``timepoints`` (a list of floats or None) and ``label_map`` (int -> int or
    None): the keyword arguments of `read_subject_slices`.

    Raises:
        ValueError: naming the invalid argument and its value.
    """
    slices = _check_slices(slices)
    check_one_of(normalize, "normalize", _NORMALIZE)
    return {
        "slices": slices,
        "image_size": None if image_size is None else check_int_tuple(image_size, "image_size", 2),
        "normalize": normalize,
        "timepoints": None if timepoints is None else [float(t) for t in timepoints],
        "label_map": _check_label_map(label_map),
    }


def read_subject_slices(manifest: SegmentationManifest, i, **options) -> SubjectSlices:
    """Reads subject `i`'s volumes and cuts its selected slices (steps 1, 2, 3 and 5).

    The work of `load_segmentation_sequences` for one subject; `options` are its keyword
    arguments but ``strict`` (`check_segmentation_options`). `segmentation_from_subjects`
    then does step 4 and builds the sequences. A subject can be read in a worker process
    from `kerasmed.io.segmentation_prep.subject_manifest` (``i=0``).

    Returns:
        A `SubjectSlices`.
    """
    options = check_segmentation_options(**options)
    wanted, report = options["timepoints"], LoadReport(manifest.report.source)
    positions = _wanted_positions(manifest, i, wanted, report)
    kept, volumes = None, {}
    if positions is not None:
        volumes = _read_subject(
            manifest, i, positions, options["normalize"], options["label_map"], report
        )
        if wanted is not None and len(volumes) < len(wanted):
            reason = (
                f"subject {manifest.ids[i]!r} skipped: some of timepoints={wanted} are unusable"
            )
            report.add(reason, row=int(manifest.rows[i].min()))
        elif volumes:
            kept = sorted(volumes)
    chosen, error, images, labels = [], None, np.zeros(0, "float32"), np.zeros(0, "int16")
    if kept is not None:
        volume = np.stack([volumes[j][0] for j in kept])
        masks = [volumes[j][1] for j in kept]
        try:
            chosen = _select_slices(options["slices"], volume.shape[1], masks)
        except ValueError as failure:
            error = str(failure)
    if chosen:
        dense = np.stack(
            [np.full(volume.shape[1:4], -1, "int16") if lab is None else lab for lab in masks]
        )
        size = options["image_size"]
        pairs = [(volume[:, z], dense[:, z]) for z in chosen]
        if size is not None:
            pairs = [
                (resize_slices(x, size, "linear"), resize_slices(y, size, "nearest"))
                for x, y in pairs
            ]
        images = np.stack([x for x, _ in pairs])
        labels = np.stack([y for _, y in pairs])
    return SubjectSlices(report.problems, report.ignored, kept, chosen, error, images, labels)


def segmentation_from_subjects(
    manifest: SegmentationManifest, subjects, image_size=None, strict=True
) -> SegmentationSequences:
    """Builds the `SegmentationSequences` of `manifest` from its subjects' `SubjectSlices`.

    Step 4 of `load_segmentation_sequences`: the subjects with the most common number of time
    points are kept, the others recorded as problems, and the strict rule applied.

    Args:
        manifest: the `SegmentationManifest` the subjects were read from.
        subjects: one `SubjectSlices` per subject of `manifest`, in order
            (`read_subject_slices`, here or in worker processes).
        image_size: the ``image_size`` they were read with (``None``: every subject must have
            the same slice shape).
        strict: see `load_segmentation_sequences`.

    Returns:
        A `SegmentationSequences`, as `load_segmentation_sequences` returns it.
    """
    report, chosen = _common_length(manifest, subjects)
    report.raise_or_warn(strict, "time point(s) or subject(s)", since=manifest.report.mark())
    return _stack_subjects(manifest, chosen, image_size, report)


def _common_length(manifest, subjects):
    """The report with every subject's entries, and the ``(index, SubjectSlices)`` kept."""
    if len(subjects) != len(manifest):
        raise ValueError(
            f"`subjects` must have one entry per subject ({len(manifest)}). "
            f"Received: len(subjects)={len(subjects)}"
        )
    report = manifest.report.copy()
    for item in subjects:
        report.problems.extend(item.problems)
        report.ignored.extend(item.ignored)
    counts = collections.Counter(len(s.kept) for s in subjects if s.kept is not None)
    length = max(counts, key=lambda n: (counts[n], n)) if counts else 0
    chosen = []
    for i, item in enumerate(subjects):
        subject, first_row = manifest.ids[i], int(manifest.rows[i].min())
        if item.kept is None:
            continue
        if len(item.kept) != length:
            reason = (
                f"subject {subject!r} skipped: {len(item.kept)} usable time points, most "
                f"subjects have {length} (choose them with timepoints=...)"
            )
            report.add(reason, row=first_row)
        elif item.slice_error is not None:
            report.add(f"subject {subject!r} skipped: {item.slice_error}", row=first_row)
        else:
            chosen.append((i, item))
    return report, chosen


def _stack_subjects(manifest, chosen, image_size, report):
    """The `SegmentationSequences` of the `chosen` subjects (checks their slice shapes)."""
    if not chosen:
        raise LoadError(
            f"No usable subject in the manifest {report.source}:\n{report}\n"
            f"Received: a manifest of {len(manifest)} subject(s)",
            report,
        )
    if image_size is None:
        sizes = {}
        for i, item in chosen:
            sizes.setdefault(item.images.shape[2:4], manifest.ids[i])
        if len(sizes) > 1:
            listed = ", ".join(f"{s!r} {shape}" for shape, s in sizes.items())
            raise ValueError(
                f"Subjects have different slice shapes (Y, X): {listed}. Pass image_size to "
                "resize them. Received: image_size=None"
            )
    ids, slices, times = [], [], []
    for i, item in chosen:
        count = len(item.slice_indices)
        ids.extend([manifest.ids[i]] * count)
        slices.extend(item.slice_indices)
        times.extend([manifest.timepoints[i][item.kept]] * count)
    return SegmentationSequences(
        images=np.concatenate([item.images for _, item in chosen]),
        labels=np.concatenate([item.labels for _, item in chosen]),
        subject_ids=tuple(ids),
        slice_indices=slices,
        timepoints=np.stack(times),
        channel_names=manifest.channel_names,
        report=report,
    )


def load_segmentation_sequences(
    manifest: SegmentationManifest,
    slices="middle",
    image_size=None,
    normalize="zscore",
    timepoints=None,
    label_map=None,
    strict=True,
) -> SegmentationSequences:
    """Loads the volumes of a manifest into aligned 2D slice sequences over time.

    Each volume is read with `read_nifti` (canonical RAS+ orientation, array ``(Z, Y, X)``):
    a slice is ``array[z]``, an axial image whose rows run towards Anterior and whose columns
    run towards the patient's Right (show it with ``imshow(..., origin="lower")`` for anterior
    at the top). The channels are stacked in manifest column order.

    With ``normalize="zscore"`` every image volume (each modality of each time point) is
    standardised over its nonzero voxels, taken as the brain of a skull-stripped image
    (`kerasmed.preprocessing.zscore_nonzero`): ``(v - mean) / std`` there, while zero voxels
    (background) stay 0; a volume with NaN or infinite values is a problem. ``None`` keeps the
    intensities as read.

    Labels are class indices in ``[0, 127]``; ``-1`` means "not annotated": the whole slice at a
    time point without a label file, and any voxel whose file value is ``-1`` or maps to ``-1``.

    Nothing is dropped silently: a time point that cannot be used (unreadable file,
    modalities or label of different shapes, a shape that differs from the subject's other time
    points, invalid label values) is a problem with its CSV row; so is a subject whose slice
    selection does not fit its volumes, or whose number of usable time points differs from the
    others (the most frequent count, or ``len(timepoints)``). They follow the strict rule of
    `kerasmed.io.report` (see `strict`).

    Args:
        manifest: a `SegmentationManifest` from `read_segmentation_manifest`.
        slices: axial slices to take from every subject: ``"middle"`` (``Z // 2``), ``"all"``,
            ``"labelled"`` (slices with a label voxel > 0 at some time point, e.g. the one
            annotated slice per volume of the paper's BRIC data), an index or a list of indices
            (negative counts from the top), or a fraction range ``(start, stop)`` of floats:
            the slices whose centre ``(z + 0.5) / Z`` lies in ``[start, stop)``.
        image_size: ``(height, width)`` or an int; slices are resized with
            `kerasmed.preprocessing.resize_slices` (bilinear for images, nearest for labels). ``None`` keeps ``(Y, X)``, which must then be the same
            for every subject.
        normalize: ``"zscore"`` or ``None`` (see above).
        timepoints: time point values to keep (a subject lacking one is a problem, the other
            time points are listed in ``report.ignored``); ``None`` keeps all of them.
        label_map: dict from label file value (int) to class (``-1`` to ``127``), e.g.
            ``{0: 0, 10: 1, 150: 2, 250: 3}`` for iSeg-2017 files; a value missing from it is a
            problem. ``None`` uses the values as they are.
        strict: if True (default), any problem raises a `kerasmed.io.LoadError` (a
            ``ValueError``) listing every one; if False the time points and subjects at fault
            are skipped, warned about and listed in the result's ``report``.

    Returns:
        A `SegmentationSequences`, one sequence per (subject, selected slice), in manifest
        subject order then slice order; its ``report`` is a copy of ``manifest.report``
        extended with what loading did not use (``manifest.report`` itself is unchanged).

    Raises:
        ValueError: invalid arguments, subjects of different ``(Y, X)`` without `image_size`,
            no usable subject (a `kerasmed.io.LoadError` with the report), or (``strict``) any
            problem.

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
    options = check_segmentation_options(slices, image_size, normalize, timepoints, label_map)
    subjects = [read_subject_slices(manifest, i, **options) for i in range(len(manifest))]
    report, chosen = _common_length(manifest, subjects)
    report.raise_or_warn(strict, "time point(s) or subject(s)", since=manifest.report.mark())
    return _stack_subjects(manifest, chosen, options["image_size"], report)
