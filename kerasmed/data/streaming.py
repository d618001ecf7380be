"""Streamed datasets: only the index (paths, labels, lengths) lives in memory.

A real dataset does not fit in RAM (CQ500: 491 head CTs of ~250 slices of 512 x 512 are
~125 GB as float32), so its batches are read from disk when Keras asks for them:

- `VolumeFiles`: a read-only list of volumes kept as one file per volume (``.npy``, opened
  with ``np.load(mmap_mode="r")``; or ``.npz``, whose members cannot be memory-mapped, read
  one file per item); ``files[i]`` opens file ``i``, checks it and applies `transform`.
  ``files.lengths`` comes from the index, so nothing is opened to plan a batch.
- `read_volume_index`: the index of a volume-set folder (``labels.csv`` + ``volumes/``, the
  format of `kerasmed.io.volumes`): its rows are checked like `kerasmed.io.load_volume_set`
  checks them, with the same `strict` rule (`kerasmed.io.report`), but only the slice labels
  (one int8 per slice) are read from each file.
- `StreamedVolumeDataset`, `StreamedSliceDataset`, `StreamedSequenceDataset`: the in-memory
  `BalancedVolumeDataset`, `BalancedSliceDataset` and `SequenceDataset` (same batches, same
  padding and masks: they are subclasses) over `VolumeFiles`. They take ``workers``,
  ``use_multiprocessing`` and ``max_queue_size`` like every ``keras.utils.PyDataset``; with
  ``workers > 1`` Keras reads the next batches in threads (or processes) while the model
  trains on the current one. `volume_dataset` picks the streamed or in-memory class.

``benchmarks/streaming_memory.py`` measures the peak memory of one epoch as the set grows and
the throughput with and without reading workers.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import os
from pathlib import Path

import numpy as np

from kerasmed.data.samplers import BalancedSliceDataset, BalancedVolumeDataset
from kerasmed.data.sequences import SequenceDataset
from kerasmed.io._csv import check_columns, read_csv_rows
from kerasmed.io._npz import load_npz
from kerasmed.io.report import LoadReport
from kerasmed.io.volumes import (
    _NPZ_KEYS,
    CSV_COLUMNS,
    VOLUMES_DIR,
    _labels_file,
    _parse_row,
    _slice_label_problem,
)

STREAM_ABOVE_BYTES = 2 * 1024**3
"""Experiments stream a real dataset whose volumes would take more than this as float32."""

__all__ = [
    "STREAM_ABOVE_BYTES",
    "StreamedSequenceDataset",
    "StreamedSliceDataset",
    "StreamedVolumeDataset",
    "VolumeFiles",
    "VolumeIndex",
    "read_volume_index",
    "volume_dataset",
    "volume_lengths",
]


class VolumeFiles(collections.abc.Sequence):
    """A list of arrays that stay on disk: item ``i`` is read from ``paths[i]`` when asked for.

    Args:
        paths: one ``.npy`` or ``.npz`` file per item.
        lengths: the length (first axis) of each item *after* `transform`, from the index;
            an item whose length differs raises a ``ValueError`` naming its file.
        key: the array to read from an ``.npz`` file (ignored for ``.npy``).
        transform: None, or a function ``array -> array`` applied to every item after it is
            read (e.g. windowing); give a module-level function or a ``functools.partial``
            of one, so that ``use_multiprocessing=True`` can send it to worker processes.
        dtype: floating items are cast to this dtype (default float32) before `transform`.

    Example:

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     np.save(folder / f"{i}.npy", np.full((i + 1, 2, 2), i, "float32"))
    >>> files = VolumeFiles([folder / f"{i}.npy" for i in range(3)], lengths=[1, 2, 3])
    >>> len(files), files[2].shape, files.lengths.tolist(), len(files[1:])
    (3, (3, 2, 2), [1, 2, 3], 2)
    """

    def __init__(self, paths, lengths, key="hu", transform=None, dtype="float32"):
        self.paths = [os.fspath(p) for p in paths]
        self.lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if len(self.lengths) != len(self.paths):
            raise ValueError(
                f"`lengths` needs one entry per path ({len(self.paths)}). "
                f"Received: len(lengths)={len(self.lengths)}"
            )
        if transform is not None and not callable(transform):
            raise ValueError(f"`transform` must be callable or None. Received: {transform!r}")
        self.key, self.transform, self.dtype = key, transform, dtype

    def __len__(self):
        return len(self.paths)

    def _read(self, path):
        if path.endswith(".npy"):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"volume file not found: {path}")
            return np.load(path, mmap_mode="r", allow_pickle=False)
        return load_npz(path, (self.key,), "volume")[self.key]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        path = self.paths[index]
        array = self._read(path)
        if self.dtype is not None and array.dtype.kind in "fiu":
            array = np.asarray(array, dtype=self.dtype)
        if not np.isfinite(array).all():
            raise ValueError(f"{path} holds NaN or infinite values. Received: path={path!r}")
        if self.transform is not None:
            array = self.transform(array)
        if len(array) != self.lengths[index]:
            raise ValueError(
                f"{path} has {len(array)} steps but the index says {self.lengths[index]}. "
                f"Received: path={path!r}"
            )
        return array

    def subset(self, indices):
        """The items at `indices`, as `VolumeFiles` (nothing is read)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        return VolumeFiles(
            [self.paths[i] for i in indices], self.lengths[indices], self.key,
            self.transform, self.dtype,
        )  # fmt: skip

    def with_transform(self, transform, lengths=None):
        """The same files with another `transform` (and the lengths it gives)."""
        lengths = self.lengths if lengths is None else lengths
        return VolumeFiles(self.paths, lengths, self.key, transform, self.dtype)


def volume_lengths(volumes) -> np.ndarray:
    """The length of each volume: from the index of `VolumeFiles`, else ``len`` of each array."""
    if isinstance(volumes, VolumeFiles):
        return volumes.lengths
    return np.array([len(v) for v in volumes], dtype=np.int64)


@dataclasses.dataclass
class VolumeIndex:
    """What `read_volume_index` keeps of a volume-set folder: no voxel, one row per volume.

    Attributes: ``ids`` (list of str), ``labels`` ``(n,)`` int64, ``lengths`` ``(n,)`` int64
    (slices per volume), ``slice_labels`` (list of ``(N_i,)`` int8, ``-1`` where unknown),
    ``files`` (`VolumeFiles` of the ``hu`` arrays, float32), ``report`` (`LoadReport`).
    """

    ids: list
    labels: np.ndarray
    lengths: np.ndarray
    slice_labels: list
    files: VolumeFiles
    report: LoadReport

    def __len__(self):
        return len(self.ids)

    def float32_bytes(self) -> int:
        """Bytes the volumes would take in memory as float32 (the first file gives H x W)."""
        height, width = self.files[0].shape[1:3]
        return int(self.lengths.sum()) * int(height) * int(width) * 4


def _index_entry(directory, row, header, seen):
    """``((volume_id, label, num_slices, path, slice_labels), reason)`` for one row."""
    entry, reason = _parse_row(row, header, seen)
    if reason:
        return None, reason, None
    volume_id, label, count = entry
    path = directory / VOLUMES_DIR / f"{volume_id}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _NPZ_KEYS if k not in data.files]
            slice_labels = None if missing else data["slice_labels"]
    except FileNotFoundError:
        return None, f"volume file not found: {path}", path
    except (OSError, ValueError, EOFError) as error:
        return None, f"cannot read {path} ({type(error).__name__}: {error})", path
    if missing:
        return None, f"{path} is not a volume file: missing keys {missing}", path
    if slice_labels.dtype.kind not in "iu" or slice_labels.shape != (count,):
        return None, (
            f"`slice_labels` must be {count} integers (num_slices in labels.csv), found "
            f"shape {slice_labels.shape} of {slice_labels.dtype}"
        ), path  # fmt: skip
    problem = _slice_label_problem(label, slice_labels)
    if problem:
        return None, problem, path
    return (volume_id, label, count, path, slice_labels.astype(np.int8)), None, path


def read_volume_index(directory, strict=True) -> VolumeIndex:
    """The index of a volume-set folder (`kerasmed.io.volumes` format), without its voxels.

    Every row of ``labels.csv`` is checked as `kerasmed.io.load_volume_set` checks it (id,
    label, slice count, duplicates) and every listed file is opened for its slice labels only;
    the ``hu`` arrays are read, and their values checked, when a batch needs them.

    Args:
        directory: the folder holding ``labels.csv`` and ``volumes/``.
        strict: True (default) raises one `kerasmed.io.LoadError` listing every problem;
            False skips those rows, warns and lists them in ``report``.

    Returns:
        A `VolumeIndex`.

    Example:

    >>> import tempfile
    >>> from kerasmed.io import VolumeSet, save_volume_set
    >>> folder = tempfile.mkdtemp()
    >>> volumes = [np.zeros((3, 8, 8)), np.ones((4, 8, 8))]
    >>> _ = save_volume_set(folder, VolumeSet(volumes, [0, 1], None, [(5, 1, 1)] * 2, ["a", "b"]))
    >>> index = read_volume_index(folder)
    >>> index.ids, index.lengths.tolist(), index.files[1].shape
    (['a', 'b'], [3, 4], (4, 8, 8))
    """
    directory = Path(directory)
    labels_path = _labels_file(directory)
    header, rows = read_csv_rows(labels_path, "labels")
    check_columns(labels_path, header, CSV_COLUMNS)
    report = LoadReport(str(labels_path))
    entries, seen = [], {}
    for row in rows:
        report.num_rows += 1
        entry, reason, path = _index_entry(directory, row, header, seen)
        if reason:
            item = row.cells["volume_id"] if "volume_id" in row.raw else "?"
            report.add(reason, path=None if path is None else str(path), row=row.line, item=item)
            continue
        entries.append(entry)
    for path in sorted((directory / VOLUMES_DIR).glob("*.npz")):
        if path.stem not in seen:
            report.ignore(
                "file in volumes/ not listed in labels.csv", path=str(path), item=path.stem
            )
    report.raise_or_warn(strict, "volume(s)")
    if not entries:
        raise ValueError(f"No usable volume in {directory}. Received: directory={str(directory)!r}")
    ids, labels, lengths, paths, slice_labels = zip(*entries)
    return VolumeIndex(
        ids=list(ids),
        labels=np.array(labels, dtype=np.int64),
        lengths=np.array(lengths, dtype=np.int64),
        slice_labels=list(slice_labels),
        files=VolumeFiles(paths, lengths, key="hu"),
        report=report,
    )


def _check_files(volumes, name):
    if not isinstance(volumes, VolumeFiles):
        raise ValueError(
            f"`{name}` must be a kerasmed.data.VolumeFiles (use the in-memory dataset for "
            f"arrays). Received: {name} of type {type(volumes).__name__}"
        )


class StreamedVolumeDataset(BalancedVolumeDataset):
    """`BalancedVolumeDataset` over `VolumeFiles`: the same batches, read when needed.

    Batch lengths are planned from ``volumes.lengths``, so drawing an epoch opens no file.

    Args:
        volumes: a `VolumeFiles`.
        labels, **kwargs: as `BalancedVolumeDataset` (``workers``, ``use_multiprocessing``,
            ``max_queue_size`` included).
    """

    def __init__(self, volumes, labels, **kwargs):
        _check_files(volumes, "volumes")
        super().__init__(volumes, labels, **kwargs)

    def _batch_length(self, rows):
        length = int(self.volumes.lengths[rows].max())
        if self.pad_multiple:
            length = -(-length // self.pad_multiple) * self.pad_multiple
        return length


class StreamedSliceDataset(BalancedSliceDataset):
    """`BalancedSliceDataset` over `VolumeFiles`: each slice of a batch is taken from its volume,
    read (and transformed) when the batch is made. Args as `BalancedSliceDataset`, with
    `volumes` a `VolumeFiles`.
    """

    def __init__(self, volumes, slice_labels, volume_labels, **kwargs):
        _check_files(volumes, "volumes")
        super().__init__(volumes, slice_labels, volume_labels, **kwargs)


class _LazyItem:
    """One item of a `VolumeFiles`: its length from the index, its array when asked for."""

    __slots__ = ("files", "index")

    def __init__(self, files, index):
        self.files, self.index = files, index

    def __len__(self):
        return int(self.files.lengths[self.index])

    def __array__(self, dtype=None, copy=None):
        array = self.files[self.index]
        return array if dtype is None else array.astype(dtype)


class StreamedSequenceDataset(SequenceDataset):
    """`SequenceDataset` whose inputs are `VolumeFiles`: lengths from the index, items on demand.

    Args as `SequenceDataset`, with `inputs` a `VolumeFiles` or ``{name: VolumeFiles}``.
    """

    def __init__(self, inputs, targets=None, **kwargs):
        named = inputs.items() if isinstance(inputs, dict) else [("inputs", inputs)]
        for name, files in named:
            _check_files(files, name)
        lazy = {name: [_LazyItem(files, i) for i in range(len(files))] for name, files in named}
        super().__init__(lazy if isinstance(inputs, dict) else lazy["inputs"], targets, **kwargs)


def volume_dataset(volumes, labels, **kwargs):
    """`StreamedVolumeDataset` for `VolumeFiles`, `BalancedVolumeDataset` for in-memory arrays."""
    cls = StreamedVolumeDataset if isinstance(volumes, VolumeFiles) else BalancedVolumeDataset
    return cls(volumes, labels, **kwargs)
