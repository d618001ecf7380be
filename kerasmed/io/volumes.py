"""`VolumeSet`: CT volumes with volume and slice labels, and the folder format they are kept in.

One container serves the synthetic head CTs (`kerasmed.data.simulate_head_ct`) and real head
CTs prepared by ``data_prep/head_ct_ich.py`` (CQ500, RSNA 2019), so the ``ich`` experiment
reads both the same way. On disk (`kerasmed.io.save_volume_set` or `kerasmed.io.VolumeSetWriter`
write it, in `kerasmed.io.volume_writer`; `load_volume_set` reads it; ``kerasmed reproduce ich
--data-dir DIR`` takes ``DIR``)::

    DIR/
      labels.csv              volume_id,label,num_slices   (header = row 1, one row per volume)
      volumes/<volume_id>.npz one file per volume

``labels.csv`` holds the volume label (``1`` = intracranial hemorrhage, ``0`` = none) and the
number of slices, so a reader can count and balance the classes without opening a volume; extra
columns are allowed and ignored. Volume ids use the characters ``A-Z a-z 0-9 . _ -`` (they are
file names). Each ``.npz`` file loads with ``allow_pickle=False`` and holds:

- ``hu`` ``(N, H, W)`` float32 or int16: the volume in Hounsfield units, slice ``0`` first (the
  data-prep scripts order slices by increasing position along the slice normal, i.e. from the
  skull base up for an axial head CT);
- ``spacing`` ``(3,)`` float64: voxel size ``(z, y, x)`` in millimetres;
- ``slice_labels`` ``(N,)`` int8: ``1``/``0`` per slice, ``-1`` where unknown;
- ``format_version`` ``()`` int64, currently 1.

Reading checks every row and every file: a missing file, a label that is not 0/1, a number of
slices that disagrees with the file, slice labels that contradict the volume label, a slice size
that differs from the other volumes' (unless `load_volume_set` is asked to resize). Each problem
names its row in ``labels.csv`` (the header is row 1) and follows the strict rule of
`kerasmed.io.report`: ``strict=True`` (default) raises one error listing them all,
``strict=False`` skips those volumes, warns, and lists them in ``VolumeSet.report``. Files in
``volumes/`` that ``labels.csv`` does not list are never loaded and are listed there too.
Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from kerasmed.io._csv import check_columns, read_csv_rows
from kerasmed.io._npz import load_npz
from kerasmed.io.report import _MAX_LISTED, LoadReport
from kerasmed.preprocessing.resize import INTERPOLATIONS, resize_slices
from kerasmed.validation import check_int_tuple, check_one_of, check_positive_int

__all__ = ["VolumeSet", "load_volume_set"]

FORMAT_VERSION = 1
LABELS_FILE = "labels.csv"
VOLUMES_DIR = "volumes"
CSV_COLUMNS = ("volume_id", "label", "num_slices")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NPZ_KEYS = ("hu", "spacing", "slice_labels")
_HU_DTYPES = ("float32", "int16")


def _slice_label_problem(label, slice_labels):
    """Why per-slice labels contradict a volume label (None when they agree)."""
    values = np.unique(slice_labels)
    if not np.isin(values, (-1, 0, 1)).all():
        return f"slice labels must be -1, 0 or 1, found {values.tolist()}"
    known = slice_labels[slice_labels >= 0]
    if label == 0 and (known == 1).any():
        return "volume label is 0 but some slice labels are 1"
    if label == 1 and known.size == slice_labels.size and known.size and not known.any():
        return "volume label is 1 but every slice label is 0"
    return None


def _volume_problem(hu, spacing, slice_labels, label):
    """Why arrays cannot be one volume of `label`: ``(reason, what was received)``, or None."""
    if hu.ndim != 3 or hu.shape[0] < 1 or hu.dtype.kind not in "fiu":
        return "`hu` must be a numeric (N, H, W) array with N >= 1", (
            f"hu.shape={hu.shape}, hu.dtype={hu.dtype}"
        )
    finite = np.isfinite(hu)
    if not finite.all():
        return "`hu` holds NaN or infinite values", f"{int(hu.size - finite.sum())} such value(s)"
    if spacing.shape != (3,) or not (np.isfinite(spacing).all() and (spacing > 0).all()):
        return "`spacing` must be 3 positive sizes (z, y, x) in mm", f"spacing={spacing.tolist()}"
    if slice_labels.shape != hu.shape[:1]:
        return f"`slice_labels` must have one value per slice ({len(hu)})", (
            f"slice_labels.shape={slice_labels.shape}"
        )
    problem = _slice_label_problem(label, slice_labels)
    if problem:
        return problem, f"slice_labels={slice_labels.tolist()[:_MAX_LISTED]}, label={label}"
    return None


@dataclasses.dataclass
class VolumeSet:
    """CT volumes in Hounsfield units with a label per volume and, when known, per slice.

    Args:
        volumes: list of ``(N_i, H, W)`` float32 arrays in HU (slice 0 first).
        labels: ``(n,)`` int array, 1 for intracranial hemorrhage, 0 for none.
        slice_labels: None (no slice labels at all), or a list of ``(N_i,)`` int8 arrays,
            ``1``/``0`` per slice and ``-1`` where unknown.
        spacing: ``(n, 3)`` float array, voxel size ``(z, y, x)`` in millimetres.
        ids: one string per volume (file names on disk, so ``A-Z a-z 0-9 . _ -``); defaults to
            ``"volume-00000"``, ``"volume-00001"``...
        report: the `kerasmed.io.LoadReport` of `load_volume_set` (what it did not load, and
            why), or None.

    Example:

    >>> import numpy as np
    >>> data = VolumeSet(
    ...     volumes=[np.zeros((3, 8, 8), "float32"), np.full((5, 8, 8), 40.0, "float32")],
    ...     labels=[0, 1],
    ...     slice_labels=[np.zeros(3, "int8"), np.array([0, 1, 1, -1, 0], "int8")],
    ...     spacing=[[5.0, 0.5, 0.5], [5.0, 0.5, 0.5]],
    ...     ids=["a", "b"],
    ... )
    >>> len(data), data.lengths.tolist(), data.subset([1]).ids
    (2, [3, 5], ['b'])
    """

    volumes: list
    labels: np.ndarray
    slice_labels: list | None
    spacing: np.ndarray
    ids: list | None = None
    report: LoadReport | None = None

    def __post_init__(self):
        n = len(self.volumes)
        self.volumes = [np.asarray(v, dtype=np.float32) for v in self.volumes]
        for i, volume in enumerate(self.volumes):
            if volume.ndim != 3:
                raise ValueError(
                    f"Every volume must be (N, H, W). Received: volumes[{i}].shape={volume.shape}"
                )
        labels = np.asarray(self.labels).reshape(-1)
        if labels.shape != (n,) or not np.isin(labels, (0, 1)).all():
            raise ValueError(
                f"`labels` must hold one 0/1 value per volume ({n} volumes). "
                f"Received: labels={labels.tolist()[:_MAX_LISTED]}"
            )
        self.labels = labels.astype(np.int64)
        spacing = np.asarray(self.spacing, dtype=np.float64)
        if spacing.shape != (n, 3) or not (np.isfinite(spacing).all() and (spacing > 0).all()):
            raise ValueError(
                f"`spacing` must be ({n}, 3) positive voxel sizes (z, y, x) in mm. "
                f"Received: spacing with shape {spacing.shape}"
            )
        self.spacing = spacing
        if self.ids is None:
            self.ids = [f"volume-{i:05d}" for i in range(n)]
        self.ids = [str(i) for i in self.ids]
        if len(self.ids) != n or len(set(self.ids)) != n:
            raise ValueError(
                f"`ids` must hold {n} distinct strings, one per volume. "
                f"Received: ids={self.ids[:_MAX_LISTED]}"
            )
        if self.slice_labels is not None:
            if len(self.slice_labels) != n:
                raise ValueError(
                    f"`slice_labels` must have one entry per volume ({n}). "
                    f"Received: len(slice_labels)={len(self.slice_labels)}"
                )
            self.slice_labels = [np.asarray(s).astype(np.int8) for s in self.slice_labels]
            for i, (volume, labelled) in enumerate(zip(self.volumes, self.slice_labels)):
                if labelled.shape != volume.shape[:1]:
                    raise ValueError(
                        f"slice_labels[{i}] must have one value per slice. Received: "
                        f"slice_labels[{i}].shape={labelled.shape}, volumes[{i}].shape={volume.shape}"
                    )
                problem = _slice_label_problem(self.labels[i], labelled)
                if problem:
                    raise ValueError(
                        f"Volume {i} ({self.ids[i]}): {problem}. "
                        f"Received: slice_labels[{i}]={labelled.tolist()[:_MAX_LISTED]}"
                    )

    def __len__(self):
        return len(self.volumes)

    @property
    def lengths(self) -> np.ndarray:
        """Number of slices ``N_i`` of each volume, int64 ``(n,)``."""
        return np.array([len(v) for v in self.volumes], dtype=np.int64)

    def subset(self, indices) -> VolumeSet:
        """Returns the volumes at `indices` (a new container sharing the arrays)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return VolumeSet(
            volumes=[self.volumes[i] for i in indices],
            labels=self.labels[indices],
            slice_labels=None
            if self.slice_labels is None
            else [self.slice_labels[i] for i in indices],
            spacing=self.spacing[indices],
            ids=[self.ids[i] for i in indices],
        )


def _read_volume_file(path, num_slices, label):
    """Reads and checks one ``.npz`` file; returns ``((hu, spacing, slice_labels), reason)``."""
    try:
        arrays = load_npz(path, _NPZ_KEYS, "volume")
    except (FileNotFoundError, ValueError) as error:
        return None, str(error)
    hu, spacing, slice_labels = (arrays[k] for k in _NPZ_KEYS)
    if hu.ndim == 3 and hu.shape[0] != num_slices:
        return None, f"num_slices is {num_slices} in labels.csv but {path.name} has {hu.shape[0]}"
    if slice_labels.dtype.kind not in "iu":
        return None, f"`slice_labels` must be integers, found {slice_labels.dtype}"
    try:
        spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None, f"`spacing` must be 3 positive sizes in mm, found {spacing.dtype}"
    problem = _volume_problem(hu, spacing, slice_labels, label)
    if problem:
        return None, f"{problem[0]} ({problem[1]})"
    return (hu.astype(np.float32, copy=False), spacing, slice_labels.astype(np.int8)), None


def _parse_row(row, header, seen):
    """Checks one ``labels.csv`` row; returns ``((volume_id, label, num_slices), reason)``."""
    reason = row.fields_reason(header, allow_short=False)
    if reason:
        return None, reason
    volume_id, label, count = (row.cells[c] for c in CSV_COLUMNS)
    if not _ID_PATTERN.match(volume_id):
        return None, f"invalid volume_id {volume_id!r} (allowed: A-Z a-z 0-9 . _ -)"
    if volume_id in seen:
        return None, f"duplicate volume_id {volume_id!r} (first at row {seen[volume_id]})"
    seen[volume_id] = row.line
    if label not in ("0", "1"):
        return None, f"label must be 0 or 1, found {label!r}"
    if not count.isdigit() or int(count) < 1:
        return None, f"num_slices must be a positive integer, found {count!r}"
    return (volume_id, int(label), int(count)), None


def _labels_file(directory):
    """The ``labels.csv`` of a volume set folder; FileNotFoundError when either is missing."""
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Volume set folder not found. Received: directory={str(directory)!r}"
        )
    path = directory / LABELS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: a volume set folder holds labels.csv "
            f"(columns {','.join(CSV_COLUMNS)}) and volumes/<volume_id>.npz. "
            f"Received: directory={str(directory)!r}"
        )
    return path


def _read_volumes(directory, rows, header, report, max_volumes, size, interpolation):
    """Reads the volumes that `rows` list, in order, recording each unusable one in `report`.

    Returns the usable ones as ``(volume_id, label, hu, spacing, slice_labels)`` tuples (slices
    resized to `size` if given) and ``{volume_id: row}`` of the rows whose id was read.
    """
    volumes, seen = [], {}
    first = None  # (volume_id, (H, W)) of the first volume, when slices are not resized
    for row in rows:
        if max_volumes is not None and len(volumes) >= max_volumes:
            break
        report.num_rows += 1
        entry, reason = _parse_row(row, header, seen)
        volume_id = row.cells["volume_id"] if "volume_id" in row.raw else "?"
        path = None
        if entry:
            path = directory / VOLUMES_DIR / f"{volume_id}.npz"
            arrays, reason = _read_volume_file(path, entry[2], entry[1])
        if not reason and size is None:
            shape = arrays[0].shape[1:]
            if first is None:
                first = (volume_id, shape)
            elif shape != first[1]:
                reason = (
                    f"slice size {shape[0]}x{shape[1]} differs from {first[1][0]}x"
                    f"{first[1][1]} (volume {first[0]!r}); pass slice_size=(H, W) to resize"
                )
        if reason:
            report.add(reason, path=None if path is None else str(path), row=row.line,
                       item=volume_id)  # fmt: skip
            continue
        hu, spacing, slice_labels = arrays
        if size is not None and hu.shape[1:] != size:
            spacing = spacing * [1.0, hu.shape[1] / size[0], hu.shape[2] / size[1]]
            hu = resize_slices(hu, size, interpolation)
        volumes.append((volume_id, entry[1], hu, spacing, slice_labels))
    return volumes, seen


def load_volume_set(
    directory, max_volumes=None, slice_size=None, interpolation="area", strict=True
) -> VolumeSet:
    """Reads a volume set written by `save_volume_set` or ``data_prep/head_ct_ich.py``.

    Every row of ``labels.csv`` and every volume file is checked (see the module docstring).

    Args:
        directory: the folder holding ``labels.csv`` and ``volumes/``.
        max_volumes: read only the first `max_volumes` usable volumes, in the order of
            ``labels.csv`` (the rows after them are not read); None reads all.
        slice_size: None (default) requires every volume to have the same ``(H, W)``; an int
            or ``(height, width)`` resizes every slice to that size with
            `kerasmed.preprocessing.resize_slices` (`interpolation`) and scales the in-plane
            spacing accordingly.
        interpolation: ``"area"`` (default; averages when shrinking), ``"linear"`` or
            ``"nearest"``; used only with `slice_size`.
        strict: if True (default), any problem raises a `kerasmed.io.LoadError` (a
            ``ValueError``) that lists every problem found (with its row in ``labels.csv``);
            if False, the faulty volumes are skipped, warned about and listed in
            ``VolumeSet.report``.

    Returns:
        A `VolumeSet` with float32 HU volumes and its ``report``. ``slice_labels`` is None
        when no slice of any loaded volume has a known label.

    Raises:
        FileNotFoundError: `directory` or its ``labels.csv`` does not exist.
        ValueError: a malformed header, no usable volume, or (with ``strict=True``) any problem.

    Example:

    >>> import tempfile
    >>> from kerasmed.io import VolumeSetWriter
    >>> folder = tempfile.mkdtemp()
    >>> with VolumeSetWriter(folder) as writer:
    ...     _ = writer.add("a", np.zeros((3, 16, 16)), label=0, spacing=(5, 0.5, 0.5))
    ...     _ = writer.add("b", np.zeros((4, 32, 32)), label=1, spacing=(5, 0.25, 0.25))
    >>> data = load_volume_set(folder, slice_size=16)
    >>> [v.shape for v in data.volumes], data.spacing[:, 1].tolist(), data.slice_labels
    ([(3, 16, 16), (4, 16, 16)], [0.5, 0.5], None)
    >>> data.report.ok, data.report.num_rows
    (True, 2)
    """
    max_volumes = check_positive_int(max_volumes, "max_volumes", allow_none=True)
    check_one_of(interpolation, "interpolation", tuple(INTERPOLATIONS))
    size = None if slice_size is None else check_int_tuple(slice_size, "slice_size", 2)
    directory = Path(directory)
    labels_path = _labels_file(directory)
    header, rows = read_csv_rows(labels_path, "labels", require_rows=False)
    check_columns(labels_path, header, CSV_COLUMNS)
    report = LoadReport(str(labels_path))
    volumes, seen = _read_volumes(directory, rows, header, report, max_volumes, size, interpolation)
    if max_volumes is None:
        for path in sorted((directory / VOLUMES_DIR).glob("*.npz")):
            if path.stem not in seen:
                reason = "file in volumes/ not listed in labels.csv"
                report.ignore(reason, path=str(path), item=path.stem)
    report.raise_or_warn(strict, "volume(s)")
    if not volumes:
        raise ValueError(f"No usable volume in {directory}. Received: directory={str(directory)!r}")
    ids, labels, hus, spacing, slice_labels = zip(*volumes)
    known = any((s >= 0).any() for s in slice_labels)
    return VolumeSet(
        volumes=list(hus),
        labels=np.array(labels, dtype=np.int64),
        slice_labels=list(slice_labels) if known else None,
        spacing=np.array(spacing, dtype=np.float64),
        ids=list(ids),
        report=report,
    )
