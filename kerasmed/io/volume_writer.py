"""Writing a volume set (`kerasmed.io.volumes` describes the format): one volume at a time.

`VolumeSetWriter` writes a set in one process. A parallel writer (``data_prep/head_ct_ich.py``
on `kerasmed.io.prep_runner`) writes each volume with `write_volume_file` in its workers and
the index with `write_labels_csv` at the end; both write atomically (a temporary file, then
``os.replace``), so a folder never holds a partial ``.npz`` or ``labels.csv``.
"""

from __future__ import annotations

import csv
import io
import os  # noqa: F401  (the docstring examples)
from pathlib import Path

import numpy as np

from kerasmed.io.prep_runner import atomic_path, write_text_atomic
from kerasmed.io.volumes import (
    _HU_DTYPES,
    _ID_PATTERN,
    CSV_COLUMNS,
    FORMAT_VERSION,
    LABELS_FILE,
    VOLUMES_DIR,
    VolumeSet,
    _volume_problem,
    load_volume_set,  # noqa: F401  (the docstring examples read back what they write)
)

__all__ = ["VolumeSetWriter", "save_volume_set", "write_labels_csv", "write_volume_file"]


def write_volume_file(
    directory, volume_id, hu, label, spacing, slice_labels=None, hu_dtype="float32", compress=True
):
    """Checks one volume and writes ``<directory>/volumes/<volume_id>.npz`` atomically.

    Args:
        directory: the volume set's folder (``volumes/`` is created if needed).
        volume_id: its id (``A-Z a-z 0-9 . _ -``, not starting with ``.``, ``_`` or ``-``).
        hu: ``(N, H, W)`` array in Hounsfield units.
        label: 1 (hemorrhage) or 0.
        spacing: voxel size ``(z, y, x)`` in mm.
        slice_labels: ``(N,)`` ints in {-1, 0, 1}, or None (all unknown, stored as -1).
        hu_dtype: ``"float32"`` (exact) or ``"int16"`` (rounded to whole HU).
        compress: whether to compress the file (``np.savez_compressed``).

    Returns:
        ``(path, row)``: the file written and its ``labels.csv`` row
        ``(volume_id, label, num_slices)``.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path, row = write_volume_file(folder, "case-1", np.zeros((3, 4, 4)), 0, (5, 1, 1))
    >>> os.path.relpath(path, folder), row
    ('volumes/case-1.npz', ('case-1', 0, 3))
    """
    if hu_dtype not in _HU_DTYPES:
        raise ValueError(
            f"`hu_dtype` must be 'float32' or 'int16'. Received: hu_dtype={hu_dtype!r}"
        )
    volume_id = str(volume_id)
    if not _ID_PATTERN.match(volume_id):
        raise ValueError(
            "A volume id must use only A-Z a-z 0-9 . _ - and start with a letter or digit "
            f"(it is a file name). Received: volume_id={volume_id!r}"
        )
    if label not in (0, 1) or isinstance(label, (bool, np.bool_)):
        raise ValueError(f"`label` must be 0 or 1. Received: label={label!r}")
    hu = np.asarray(hu)
    spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if slice_labels is None:
        slice_labels = np.full(hu.shape[:1], -1, np.int8)
    slice_labels = np.asarray(slice_labels).reshape(-1)
    problem = _volume_problem(hu, spacing, slice_labels, int(label))
    if problem:
        raise ValueError(f"Volume {volume_id!r}: {problem[0]}. Received: {problem[1]}")
    if hu_dtype == "int16":
        hu = np.rint(hu)
        if hu.min() < -32768 or hu.max() > 32767:
            raise ValueError(
                f"HU values of volume {volume_id!r} ({hu.min():g} to {hu.max():g}) do not "
                "fit in int16; use hu_dtype='float32'. Received: hu_dtype='int16'"
            )
    path = Path(directory) / VOLUMES_DIR / f"{volume_id}.npz"
    save = np.savez_compressed if compress else np.savez
    with atomic_path(path) as temporary:
        save(
            temporary,
            hu=hu.astype(hu_dtype),
            spacing=spacing,
            slice_labels=slice_labels.astype(np.int8),
            format_version=np.array(FORMAT_VERSION, dtype=np.int64),
        )
    return path, (volume_id, int(label), len(hu))


def write_labels_csv(directory, rows):
    """Writes ``<directory>/labels.csv`` (the index of a volume set) atomically; returns its path.

    Args:
        directory: the volume set's folder.
        rows: ``(volume_id, label, num_slices)`` per volume, in the order to list them (the
            rows `write_volume_file` returns).

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(write_labels_csv(folder, [("a", 1, 30), ("b", 0, 28)])).read().split()
    ['volume_id,label,num_slices', 'a,1,30', 'b,0,28']
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows((str(v), int(label), int(n)) for v, label, n in rows)
    return Path(write_text_atomic(Path(directory) / LABELS_FILE, buffer.getvalue()))


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
            raise ValueError(f"This VolumeSetWriter is closed. Received: volume_id={volume_id!r}")
        volume_id = str(volume_id)
        if volume_id in self._ids:
            raise ValueError(f"Duplicate volume id. Received: volume_id={volume_id!r}")
        path, row = write_volume_file(
            self.directory, volume_id, hu, label, spacing, slice_labels, self.hu_dtype,
            self.compress,
        )  # fmt: skip
        self._ids.add(volume_id)
        self.rows.append(row)
        return path

    def close(self):
        """Writes ``labels.csv``; returns its path."""
        path = self.directory / LABELS_FILE
        if not self.closed:
            write_labels_csv(self.directory, self.rows)
            self.closed = True
        return path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()


def save_volume_set(
    directory, volume_set: VolumeSet, hu_dtype="float32", compress=True, overwrite=False
):
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
    >>> phantom = simulate_head_ct(2, slice_size=32, min_slices=8, max_slices=8)
    >>> data = VolumeSet(phantom.volumes, phantom.labels, phantom.slice_labels, phantom.spacing)
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
