"""`VolumeSet`: CT volumes with volume and slice labels, and the folder format they are kept in.

One container serves the synthetic head CTs (`kerasmed.data.simulate_head_ct`, via
`from_phantom`) and real head CTs prepared by ``data_prep/head_ct_ich.py`` (CQ500, RSNA 2019), so
the ``ich`` experiment reads both the same way. On disk (`save_volume_set` or `VolumeSetWriter`
write it, `load_volume_set` reads it; ``kerasmed reproduce ich --data-dir DIR`` takes ``DIR``)::

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
names its row in ``labels.csv`` (the header is row 1); ``strict=True`` (default) raises one error
listing them all, ``strict=False`` skips those volumes, warns, and lists them in
`VolumeSet.skipped`. Nothing is dropped silently.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "SkippedVolume",
    "VolumeSet",
    "VolumeSetWriter",
    "from_phantom",
    "load_volume_set",
    "save_volume_set",
]

FORMAT_VERSION = 1
LABELS_FILE = "labels.csv"
VOLUMES_DIR = "volumes"
CSV_COLUMNS = ("volume_id", "label", "num_slices")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NPZ_KEYS = ("hu", "spacing", "slice_labels")
_HU_DTYPES = ("float32", "int16")
_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
_MAX_LISTED = 20


@dataclasses.dataclass(frozen=True)
class SkippedVolume:
    """A volume that was not loaded: its row in ``labels.csv`` (None if unlisted), id and why."""

    row: int | None
    volume_id: str
    reason: str

    def __str__(self):
        where = f"row {self.row}" if self.row is not None else "not in labels.csv"
        return f"{where} ({self.volume_id}): {self.reason}"


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
        skipped: the `SkippedVolume` records of the entries `load_volume_set` did not load.

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
    skipped: list = dataclasses.field(default_factory=list)

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
                    raise ValueError(f"Volume {i} ({self.ids[i]}): {problem}.")

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


def from_phantom(phantom, ids=None) -> VolumeSet:
    """Wraps a `kerasmed.data.HeadCTPhantom` (or anything with the same fields) as a `VolumeSet`.

    Args:
        phantom: an object with ``volumes``, ``labels``, ``slice_labels`` and ``spacing``, e.g.
            the result of `kerasmed.data.simulate_head_ct`.
        ids: volume ids; defaults to ``"phantom-00000"``, ``"phantom-00001"``...

    Returns:
        A `VolumeSet` sharing the phantom's volumes (slice labels are all known).

    Example:

    >>> from kerasmed.data import simulate_head_ct
    >>> data = from_phantom(simulate_head_ct(2, slice_size=32, min_slices=8, max_slices=8))
    >>> data.ids, data.labels.tolist(), data.volumes[0].shape
    (['phantom-00000', 'phantom-00001'], [1, 0], (8, 32, 32))
    """
    n = len(phantom.volumes)
    return VolumeSet(
        volumes=list(phantom.volumes),
        labels=phantom.labels,
        slice_labels=None if phantom.slice_labels is None else list(phantom.slice_labels),
        spacing=phantom.spacing,
        ids=[f"phantom-{i:05d}" for i in range(n)] if ids is None else ids,
    )


class VolumeSetWriter:
    """Writes a volume set one volume at a time (for data that does not fit in memory).

    Each `add` writes ``volumes/<volume_id>.npz`` at once; `close` (or leaving a ``with`` block
    without an exception) writes ``labels.csv``. Until then the folder holds no ``labels.csv``,
    so an interrupted run cannot be mistaken for a complete one.

    Args:
        directory: output folder (created if needed).
        hu_dtype: on-disk type of the HU values: ``"float32"`` (exact) or ``"int16"`` (rounded to
            the nearest HU, half the size; values must lie in [-32768, 32767]).
        compress: whether to compress the ``.npz`` files (``np.savez_compressed``).
        overwrite: whether to replace an existing ``labels.csv`` (it is removed at once). Files
            in ``volumes/`` that the new set does not list are left in place and reported by
            `load_volume_set`.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with VolumeSetWriter(folder, hu_dtype="int16") as writer:
    ...     _ = writer.add("case-1", np.full((4, 8, 8), 40.0), label=1, spacing=(5, 0.5, 0.5))
    >>> sorted(os.listdir(folder)), open(os.path.join(folder, "labels.csv")).read().split()
    (['labels.csv', 'volumes'], ['volume_id,label,num_slices', 'case-1,1,4'])
    """

    def __init__(self, directory, hu_dtype="float32", compress=True, overwrite=False):
        if hu_dtype not in _HU_DTYPES:
            raise ValueError(
                f"`hu_dtype` must be 'float32' or 'int16'. Received: hu_dtype={hu_dtype!r}"
            )
        self.directory = Path(directory)
        self.hu_dtype = hu_dtype
        self.compress = bool(compress)
        labels_path = self.directory / LABELS_FILE
        if labels_path.exists():
            if not overwrite:
                raise FileExistsError(
                    f"{labels_path} already exists; pass overwrite=True to replace the volume set."
                )
            labels_path.unlink()
        (self.directory / VOLUMES_DIR).mkdir(parents=True, exist_ok=True)
        self.rows = []
        self._ids = set()
        self.closed = False

    def add(self, volume_id, hu, label, spacing, slice_labels=None):
        """Writes one volume.

        Args:
            volume_id: its id (``A-Z a-z 0-9 . _ -``, not starting with ``.``, ``_`` or ``-``).
            hu: ``(N, H, W)`` array in Hounsfield units.
            label: 1 (hemorrhage) or 0.
            spacing: voxel size ``(z, y, x)`` in mm.
            slice_labels: ``(N,)`` ints in {-1, 0, 1}, or None (all unknown, stored as -1).

        Returns:
            The path of the ``.npz`` file written.
        """
        if self.closed:
            raise ValueError("This VolumeSetWriter is closed.")
        volume_id = str(volume_id)
        if not _ID_PATTERN.match(volume_id):
            raise ValueError(
                "A volume id must use only A-Z a-z 0-9 . _ - and start with a letter or digit "
                f"(it is a file name). Received: volume_id={volume_id!r}"
            )
        if volume_id in self._ids:
            raise ValueError(f"Duplicate volume id. Received: volume_id={volume_id!r}")
        if label not in (0, 1) or isinstance(label, (bool, np.bool_)):
            raise ValueError(f"`label` must be 0 or 1. Received: label={label!r}")
        hu = np.asarray(hu)
        if hu.ndim != 3 or hu.shape[0] < 1 or not np.issubdtype(hu.dtype, np.number):
            raise ValueError(
                f"`hu` must be a numeric (N, H, W) array with N >= 1. Received: hu.shape={hu.shape}"
            )
        if not np.isfinite(hu).all():
            raise ValueError(f"`hu` of volume {volume_id!r} holds NaN or infinite values.")
        spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
        if spacing.shape != (3,) or not (np.isfinite(spacing).all() and (spacing > 0).all()):
            raise ValueError(
                f"`spacing` must be 3 positive sizes (z, y, x) in mm. Received: spacing={spacing}"
            )
        n = hu.shape[0]
        if slice_labels is None:
            slice_labels = np.full(n, -1, np.int8)
        slice_labels = np.asarray(slice_labels).reshape(-1)
        if slice_labels.shape != (n,):
            raise ValueError(
                f"`slice_labels` must have one value per slice ({n}). "
                f"Received: slice_labels.shape={slice_labels.shape}"
            )
        problem = _slice_label_problem(int(label), slice_labels)
        if problem:
            raise ValueError(f"Volume {volume_id!r}: {problem}.")
        if self.hu_dtype == "int16":
            hu = np.rint(hu)
            if hu.min() < -32768 or hu.max() > 32767:
                raise ValueError(
                    f"HU values of volume {volume_id!r} ({hu.min():g} to {hu.max():g}) do not "
                    "fit in int16; use hu_dtype='float32'."
                )
        path = self.directory / VOLUMES_DIR / f"{volume_id}.npz"
        partial = path.with_name(path.name + ".partial")
        save = np.savez_compressed if self.compress else np.savez
        with open(partial, "wb") as f:
            save(
                f,
                hu=hu.astype(self.hu_dtype),
                spacing=spacing,
                slice_labels=slice_labels.astype(np.int8),
                format_version=np.array(FORMAT_VERSION, dtype=np.int64),
            )
        os.replace(partial, path)
        self._ids.add(volume_id)
        self.rows.append((volume_id, int(label), n))
        return path

    def close(self):
        """Writes ``labels.csv``; returns its path."""
        path = self.directory / LABELS_FILE
        if not self.closed:
            with open(path, "w", newline="") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(CSV_COLUMNS)
                writer.writerows(self.rows)
            self.closed = True
        return path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()


def save_volume_set(directory, volume_set, hu_dtype="float32", compress=True, overwrite=False):
    """Writes a `VolumeSet` to `directory` (``labels.csv`` + ``volumes/<id>.npz``).

    Args:
        directory: output folder (created if needed).
        volume_set: a `VolumeSet`.
        hu_dtype: ``"float32"`` (exact) or ``"int16"`` (rounded to whole HU, half the size).
        compress: whether to compress the ``.npz`` files.
        overwrite: whether to replace an existing volume set in `directory`.

    Returns:
        The path of ``labels.csv``.

    Example:

    >>> import tempfile
    >>> from kerasmed.data import simulate_head_ct
    >>> data = from_phantom(simulate_head_ct(2, slice_size=32, min_slices=8, max_slices=8))
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_volume_set(folder, data)
    >>> back = load_volume_set(folder)
    >>> back.ids == data.ids, all((a == b).all() for a, b in zip(back.volumes, data.volumes))
    (True, True)
    """
    if len(volume_set) == 0:
        raise ValueError("Cannot save an empty volume set. Received: len(volume_set)=0")
    with VolumeSetWriter(directory, hu_dtype, compress, overwrite) as writer:
        for i, volume in enumerate(volume_set.volumes):
            writer.add(
                volume_set.ids[i],
                volume,
                int(volume_set.labels[i]),
                volume_set.spacing[i],
                None if volume_set.slice_labels is None else volume_set.slice_labels[i],
            )
    return writer.close()


def _target_size(slice_size):
    if slice_size is None:
        return None
    size = (slice_size, slice_size) if np.isscalar(slice_size) else tuple(slice_size)
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(
            "`slice_size` must be None, a positive int or (height, width). "
            f"Received: slice_size={slice_size!r}"
        )
    return tuple(int(s) for s in size)


def _read_volume_file(path, num_slices, label):
    """Reads and checks one ``.npz`` file; returns ``((hu, spacing, slice_labels), problem)``."""
    if not path.is_file():
        return None, f"volume file not found: {path}"
    if not zipfile.is_zipfile(path):
        return None, f"cannot read {path}: not an .npz (zip) file"
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _NPZ_KEYS if k not in data.files]
            if missing:
                return None, f"{path.name} lacks the keys {missing} (has {sorted(data.files)})"
            hu, spacing, slice_labels = (data[k] for k in _NPZ_KEYS)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        return None, f"cannot read {path} ({type(error).__name__}: {error})"
    if hu.ndim != 3 or hu.dtype.kind not in "fiu":
        return None, f"`hu` must be a numeric (N, H, W) array, found {hu.dtype} {hu.shape}"
    if hu.shape[0] != num_slices:
        return None, f"num_slices is {num_slices} in labels.csv but {path.name} has {hu.shape[0]}"
    hu = hu.astype(np.float32, copy=False)
    if not np.isfinite(hu).all():
        return None, f"{path.name}: `hu` holds NaN or infinite values"
    spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if spacing.shape != (3,) or not (np.isfinite(spacing).all() and (spacing > 0).all()):
        return None, f"`spacing` must be 3 positive sizes in mm, found {spacing.tolist()}"
    if slice_labels.shape != (num_slices,) or slice_labels.dtype.kind not in "iu":
        return None, (
            f"`slice_labels` must be {num_slices} integers, found "
            f"{slice_labels.dtype} {slice_labels.shape}"
        )
    slice_labels = slice_labels.astype(np.int8)
    problem = _slice_label_problem(label, slice_labels)
    if problem:
        return None, problem
    return (hu, spacing, slice_labels), None


def _parse_row(fields, header, row, seen):
    """Checks one ``labels.csv`` row; returns ``((volume_id, label, num_slices), problem)``."""
    if len(fields) != len(header):
        return None, f"{len(fields)} fields, the header has {len(header)}"
    values = dict(zip(header, (f.strip() for f in fields)))
    volume_id, label, count = values["volume_id"], values["label"], values["num_slices"]
    if not _ID_PATTERN.match(volume_id):
        return None, f"invalid volume_id {volume_id!r} (allowed: A-Z a-z 0-9 . _ -)"
    if volume_id in seen:
        return None, f"duplicate volume_id {volume_id!r} (first at row {seen[volume_id]})"
    seen[volume_id] = row
    if label not in ("0", "1"):
        return None, f"label must be 0 or 1, found {label!r}"
    if not count.isdigit() or int(count) < 1:
        return None, f"num_slices must be a positive integer, found {count!r}"
    return (volume_id, int(label), int(count)), None


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
            or ``(height, width)`` resizes every slice to that size with OpenCV (`interpolation`)
            and scales the in-plane spacing accordingly.
        interpolation: ``"area"`` (default; averages when shrinking), ``"linear"`` or
            ``"nearest"``; used only with `slice_size`.
        strict: if True (default), any problem raises a `ValueError` that lists every problem
            found (with its row in ``labels.csv``); if False, the faulty volumes are skipped,
            warned about and listed in `VolumeSet.skipped`.

    Returns:
        A `VolumeSet` with float32 HU volumes. ``slice_labels`` is None when no slice of any
        loaded volume has a known label.

    Raises:
        FileNotFoundError: `directory` or its ``labels.csv`` does not exist.
        ValueError: a malformed header, no usable volume, or (with ``strict=True``) any problem.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with VolumeSetWriter(folder) as writer:
    ...     _ = writer.add("a", np.zeros((3, 16, 16)), label=0, spacing=(5, 0.5, 0.5))
    ...     _ = writer.add("b", np.zeros((4, 32, 32)), label=1, spacing=(5, 0.25, 0.25))
    >>> data = load_volume_set(folder, slice_size=16)
    >>> [v.shape for v in data.volumes], data.spacing[:, 1].tolist(), data.slice_labels
    ([(3, 16, 16), (4, 16, 16)], [0.5, 0.5], None)
    """
    if max_volumes is not None and (int(max_volumes) != max_volumes or max_volumes < 1):
        raise ValueError(
            f"`max_volumes` must be None or a positive int. Received: max_volumes={max_volumes!r}"
        )
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"`interpolation` must be one of {sorted(_INTERPOLATIONS)}. "
            f"Received: interpolation={interpolation!r}"
        )
    size = _target_size(slice_size)
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"Volume set folder not found: {directory}")
    labels_path = directory / LABELS_FILE
    if not labels_path.is_file():
        raise FileNotFoundError(
            f"{labels_path} not found: a volume set folder holds labels.csv "
            f"(columns {','.join(CSV_COLUMNS)}) and volumes/<volume_id>.npz."
        )

    volumes, labels, slice_labels, spacing, ids, skipped = [], [], [], [], [], []
    first = None  # (volume_id, (H, W)) of the first volume, when slices are not resized
    with open(labels_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{labels_path} (row 1, header): missing columns {missing}. "
                f"Received: header={header}"
            )
        seen = {}
        for fields in reader:
            if max_volumes is not None and len(volumes) >= max_volumes:
                break
            if not fields or all(not f.strip() for f in fields):
                continue  # blank line
            row = reader.line_num
            entry, problem = _parse_row(fields, header, row, seen)
            if entry:
                volume_id = entry[0]
            else:
                position = header.index("volume_id")
                volume_id = fields[position].strip() if position < len(fields) else "?"
            if entry:
                path = directory / VOLUMES_DIR / f"{entry[0]}.npz"
                arrays, problem = _read_volume_file(path, entry[2], entry[1])
            if not problem and size is None:
                shape = arrays[0].shape[1:]
                if first is None:
                    first = (volume_id, shape)
                elif shape != first[1]:
                    problem = (
                        f"slice size {shape[0]}x{shape[1]} differs from {first[1][0]}x"
                        f"{first[1][1]} (volume {first[0]!r}); pass slice_size=(H, W) to resize"
                    )
            if problem:
                skipped.append(SkippedVolume(row, volume_id, problem))
                continue
            hu, voxel, labelled = arrays
            if size is not None and hu.shape[1:] != size:
                voxel = voxel * [1.0, hu.shape[1] / size[0], hu.shape[2] / size[1]]
                hu = np.stack(
                    [
                        cv2.resize(s, size[::-1], interpolation=_INTERPOLATIONS[interpolation])
                        for s in hu
                    ]
                )
            volumes.append(hu)
            labels.append(entry[1])
            slice_labels.append(labelled)
            spacing.append(voxel)
            ids.append(volume_id)

    listed = set(seen)
    unlisted = sorted(
        p.stem for p in (directory / VOLUMES_DIR).glob("*.npz") if p.stem not in listed
    )
    if max_volumes is None and unlisted:
        reason = "file in volumes/ not listed in labels.csv"
        skipped.extend(SkippedVolume(None, i, reason) for i in unlisted)
    if skipped:
        listing = "\n".join(f"  {s}" for s in skipped[:_MAX_LISTED])
        more = (
            f"\n  ... and {len(skipped) - _MAX_LISTED} more" if len(skipped) > _MAX_LISTED else ""
        )
        faulty = [s for s in skipped if s.row is not None]
        if strict and faulty:
            raise ValueError(
                f"{labels_path}: {len(faulty)} volume(s) cannot be used:\n{listing}{more}\n"
                "Pass strict=False to skip them (they are then listed in VolumeSet.skipped)."
            )
        warnings.warn(
            f"{labels_path}: {len(skipped)} volume(s) not loaded:\n{listing}{more}", stacklevel=2
        )
    if not volumes:
        raise ValueError(f"No usable volume in {directory}. Received: directory={str(directory)!r}")
    known = any((s >= 0).any() for s in slice_labels)
    return VolumeSet(
        volumes=volumes,
        labels=np.array(labels, dtype=np.int64),
        slice_labels=slice_labels if known else None,
        spacing=np.array(spacing, dtype=np.float64),
        ids=ids,
        skipped=skipped,
    )
