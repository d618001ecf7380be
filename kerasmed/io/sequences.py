"""`LongitudinalSequences`: a patient's exams over time, and its ``.npz`` file format.

One container serves the simulated digit sequences (`kerasmed.data.simulate_longitudinal_digits`)
and real exams prepared from a CSV manifest (``data_prep/longitudinal_manifest.py``), so every
downstream step (inputs, batches, models, metrics) reads both the same way.

On disk (`save_longitudinal_npz` / `load_longitudinal_npz`), all sequences are concatenated
along the exam axis, with no Python objects (the file loads with ``allow_pickle=False``):

- ``images`` ``(N, H, W)`` float32, or uint8 read back as ``value / 255``: every exam of every
  sequence, in order (``N = sum(T_i)``); stored compressed (the default) or, with
  ``compress=False`` (what ``data_prep/longitudinal_manifest.py`` writes), uncompressed;
- ``labels`` ``(N, L)`` float32: multi-hot labels of each exam;
- ``deltas`` ``(N,)`` float32: time since the previous exam, 0 at each sequence's first exam;
- ``offsets`` ``(S + 1,)`` int64: sequence ``i`` is rows ``offsets[i]:offsets[i + 1]``;
- ``ids`` ``(S,)`` str: patient (sequence) identifiers;
- ``label_names`` ``(L,)`` str; ``delta_unit`` ``()`` str (``"days"``, ``"steps"``...);
- ``format_version`` ``()`` int64, currently 1.

Streaming: the ``images`` of a file written with ``compress=False`` are not read when the file
is loaded. `load_longitudinal_npz` maps them read-only (`kerasmed.io._npz.memmap_npz_member`)
and gives each sequence a `MappedImages`, a view of its rows of the map that reads and scales
them (uint8 -> float32 ``/ 255``) only when indexed; only the index (offsets, labels, deltas,
ids) is in memory. ``split`` and ``subset`` share these views, and
`kerasmed.data.exam_batches.ExamDataset` reads the batches of a training epoch from the map.
A compressed file (every file written before ``compress`` existed) cannot be mapped; it is
read into memory as before, or refused with a message naming the way out when its images
would not fit in this machine's memory.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from kerasmed.io._npz import NpzWriter, load_npz, memmap_npz_member, npz_member_header
from kerasmed.io.report import LoadReport

FORMAT_VERSION = 1
_KEYS = ("images", "labels", "deltas", "offsets", "ids", "label_names", "delta_unit")
_KIND = "longitudinal sequences"
_REWRITE = (
    "Rewrite it uncompressed: run data_prep/longitudinal_manifest.py again with the same "
    "arguments (it resumes from its journal and now writes the images uncompressed), or, on a "
    "machine with the memory, `save_longitudinal_npz(new_path, load_longitudinal_npz(path), "
    "image_dtype='uint8', compress=False)`."
)


def images_to_float(stored):
    """Exam images as float32 in ``[0, 1]``: uint8 divided by 255, anything else cast (a copy).

    The one conversion of the format, applied to the whole array when a compressed file is
    loaded and to each batch read from a mapped one, so both give the same values.
    """
    if stored.dtype == np.uint8:
        return stored.astype("float32") / np.float32(255.0)
    return np.array(stored, dtype="float32")


class _MappedFile:
    """Where the ``images`` member of one uncompressed file lies: file, offset, dtype, shape.

    `open` maps it read-only anew each time, and the mapping ends with the last array that
    uses it: pages read through a long-lived map would stay in the process's resident memory
    (they count in its RSS until the kernel needs them), so a training epoch over the whole
    file would seem to hold it all. Pickled as these few fields, never the pixels, so that a
    ``use_multiprocessing=True`` worker maps the file itself; the sequences of one file share
    one `_MappedFile`.
    """

    def __init__(self, array):
        self.filename, self.offset = os.fspath(array.filename), int(array.offset)
        self.dtype, self.shape = array.dtype, tuple(array.shape)
        self.order = "F" if array.ndim > 1 and not array.flags.c_contiguous else "C"

    def open(self) -> np.memmap:
        """The member as a read-only ``np.memmap`` (nothing is read until it is indexed)."""
        return np.memmap(self.filename, self.dtype, "r", self.offset, self.shape, self.order)


class MappedImages:
    """The ``(T, H, W)`` images of one sequence, left in a memory-mapped file until indexed.

    Behaves as a read-only float32 array for what the library does with a sequence's images:
    ``len``, ``shape``, ``dtype``, indexing (``images[t]``, ``images[1:3]``, ``images[..., None]``)
    and ``np.asarray``, each of which reads only the rows asked for and scales them with
    `images_to_float`. ``stored`` is the view of the map itself (uint8 or float32, nothing read);
    ``file`` and ``start`` place the sequence in the file's ``(N, H, W)`` array, so a dataset
    can read one batch's rows of many sequences at once.

    Made by `load_longitudinal_npz` for a file written with ``compress=False``.
    """

    __slots__ = ("file", "start", "stop")

    def __init__(self, file, start, stop):
        self.file, self.start, self.stop = file, int(start), int(stop)

    @property
    def stored(self) -> np.memmap:
        return self.file.open()[self.start : self.stop]

    @property
    def shape(self):
        return (self.stop - self.start, *self.file.shape[1:])

    @property
    def ndim(self):
        return len(self.file.shape)

    @property
    def dtype(self):
        return np.dtype("float32")

    def __len__(self):
        return self.stop - self.start

    def __getitem__(self, index):
        return images_to_float(np.asarray(self.stored[index]))

    def __array__(self, dtype=None, copy=None):
        images = images_to_float(self.stored)
        return images if dtype is None else images.astype(dtype, copy=False)

    def __repr__(self):
        return (
            f"MappedImages(shape={self.shape}, stored={self.file.dtype}, "
            f"file={self.file.filename!r}, rows={self.start}:{self.stop})"
        )


@dataclasses.dataclass
class LongitudinalSequences:
    """Variable-length sequences of exams: images, multi-hot labels and time lapses.

    Args:
        images: list of ``(T_i, H, W)`` float32 arrays with values in ``[0, 1]``, or of
            `MappedImages` (a file loaded without reading its images; `subset` and `split`
            keep them on disk, `last_exam` and `all_exams` read them).
        labels: list of ``(T_i, L)`` float32 multi-hot arrays (the labels of each exam).
        deltas: list of ``(T_i,)`` float32 arrays: time since the previous exam of the same
            sequence, ``deltas[i][0] == 0``.
        label_names: the ``L`` label names.
        ids: one identifier per sequence (patient id); defaults to ``"0", "1", ...``.
        delta_unit: unit of `deltas` (``"days"`` for real exams, ``"steps"`` for simulations).
        report: the `kerasmed.io.LoadReport` of the manifest the sequences were read from
            (`kerasmed.io.load_manifest_images`), or None.

    Example:

    >>> import numpy as np
    >>> seqs = LongitudinalSequences(
    ...     images=[np.zeros((3, 8, 8), "float32"), np.zeros((2, 8, 8), "float32")],
    ...     labels=[np.zeros((3, 2), "float32"), np.ones((2, 2), "float32")],
    ...     deltas=[np.array([0, 5, 2], "float32"), np.array([0, 30], "float32")],
    ...     label_names=("a", "b"),
    ... )
    >>> len(seqs), seqs.lengths.tolist()
    (2, [3, 2])
    >>> images, labels = seqs.last_exam()
    >>> images.shape, labels.tolist()
    ((2, 8, 8), [[0.0, 0.0], [1.0, 1.0]])
    """

    images: list
    labels: list
    deltas: list
    label_names: tuple
    ids: tuple | None = None
    delta_unit: str = "days"
    report: LoadReport | None = None

    def __post_init__(self):
        self.label_names = tuple(str(name) for name in self.label_names)
        n = len(self.images)
        if self.ids is None:
            self.ids = tuple(str(i) for i in range(n))
        self.ids = tuple(str(i) for i in self.ids)
        for field in ("labels", "deltas", "ids"):
            if len(getattr(self, field)) != n:
                raise ValueError(
                    f"`{field}` must have one entry per sequence ({n} images). "
                    f"Received: len({field})={len(getattr(self, field))}"
                )
        for i, (x, y, d) in enumerate(zip(self.images, self.labels, self.deltas)):
            x, y, d = np.shape(x), np.shape(y), np.shape(d)
            if len(y) != 2 or y[1] != len(self.label_names) or d != (x[0],) or y[0] != x[0]:
                raise ValueError(
                    f"Sequence {i} must have images (T, ...), labels (T, {len(self.label_names)}) "
                    f"and deltas (T,). Received: images={x}, labels={y}, deltas={d}"
                )

    def __len__(self):
        return len(self.images)

    @property
    def lengths(self) -> np.ndarray:
        """Number of exams ``T_i`` of each sequence, int64 ``(S,)``."""
        return np.array([len(x) for x in self.images], dtype="int64")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def subset(self, indices) -> LongitudinalSequences:
        """Returns the sequences at `indices` (a new container sharing the arrays)."""
        indices = np.asarray(indices, dtype="int64").reshape(-1)
        pick = lambda items: [items[i] for i in indices]  # noqa: E731
        return LongitudinalSequences(
            images=pick(self.images),
            labels=pick(self.labels),
            deltas=pick(self.deltas),
            label_names=self.label_names,
            ids=tuple(pick(self.ids)),
            delta_unit=self.delta_unit,
        )

    def split(self, test_size=0.25, seed=0):
        """Splits by sequence (patient) into ``(train, test)``.

        Args:
            test_size: fraction in ``(0, 1)`` of the sequences that go to the test part (at
                least one each side), or an int count.
            seed: seed of the random permutation.

        Returns:
            ``(train, test)``, two `LongitudinalSequences`; each keeps the original order.
        """
        n = len(self)
        if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
            valid, count = 1 <= test_size <= n - 1, int(test_size)
        else:
            valid = isinstance(test_size, float) and 0.0 < test_size < 1.0 and n >= 2
            count = min(max(round(test_size * n), 1), n - 1) if valid else 0
        if not valid:
            raise ValueError(
                f"`test_size` must be a fraction in (0, 1) or a count in [1, {n - 1}] "
                f"({n} sequences). Received: test_size={test_size!r}"
            )
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(order[count:])), self.subset(np.sort(order[:count]))

    def last_exam(self):
        """The paper's task for a single-image model: the last exam of every sequence.

        Returns:
            ``(images, labels)``: ``(S, H, W)`` float32 and ``(S, L)`` float32.
        """
        images = np.stack([x[-1] for x in self.images]).astype("float32", copy=False)
        labels = np.stack([y[-1] for y in self.labels]).astype("float32", copy=False)
        return images, labels

    def all_exams(self):
        """Every exam of every sequence, e.g. to train a single-image CNN.

        Returns:
            ``(images, labels)``: ``(N, H, W)`` and ``(N, L)`` float32, ``N = sum(T_i)``.
        """
        return (
            np.concatenate(self.images).astype("float32", copy=False),
            np.concatenate(self.labels).astype("float32", copy=False),
        )


def save_longitudinal_npz(
    path, sequences: LongitudinalSequences, image_dtype="float32", compress=True
):
    """Writes `sequences` to one ``.npz`` file (format in the module docstring).

    The images are written one sequence at a time (`kerasmed.io._npz.NpzWriter`), so a set
    whose sequences are on disk (`MappedImages`, or the `kerasmed.io._npz.NpzMember` parts
    of ``data_prep/longitudinal_manifest.py``) is never in memory whole; the file holds the
    arrays ``np.savez`` would write for the concatenated sequences.

    Args:
        path: output file; ``.npz`` is appended if missing, as NumPy does.
        sequences: a `LongitudinalSequences` whose images all have one image shape.
        image_dtype: ``"float32"``, or ``"uint8"`` (values in ``[0, 1]`` stored as
            ``round(255 * value)``, 4x smaller).
        compress: True (``np.savez_compressed``, smaller), or False (``np.savez``): the
            images can then be memory-mapped, and `load_longitudinal_npz` streams them
            instead of reading the whole set into memory.
    """
    if image_dtype not in ("float32", "uint8"):
        raise ValueError(
            f"`image_dtype` must be 'float32' or 'uint8'. Received: image_dtype={image_dtype!r}"
        )
    if not isinstance(compress, bool):
        raise ValueError(f"`compress` must be True or False. Received: compress={compress!r}")
    if not isinstance(sequences, LongitudinalSequences):
        raise ValueError(
            "`sequences` must be a LongitudinalSequences. "
            f"Received: sequences of type {type(sequences).__name__}"
        )
    if len(sequences) == 0:
        raise ValueError("Cannot save an empty `sequences`. Received: len(sequences)=0")
    trailing = {tuple(np.shape(x)[1:]) for x in sequences.images}
    if len(trailing) != 1:
        raise ValueError(
            "Every sequence's images must have one image shape to be saved in one file. "
            f"Received: image shapes {sorted(trailing)}"
        )
    shape = (int(sequences.lengths.sum()), *trailing.pop())

    def stored(images):  # one sequence at a time: the whole set is never in memory
        images = np.asarray(images, dtype="float32")
        if image_dtype == "uint8":
            images = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype("uint8")
        return images

    with NpzWriter(path, compress=compress) as out:
        out.add_rows("images", shape, image_dtype, map(stored, sequences.images))
        out.add("labels", np.concatenate(sequences.labels).astype("float32"))
        out.add("deltas", np.concatenate(sequences.deltas).astype("float32"))
        out.add("offsets", np.concatenate([[0], np.cumsum(sequences.lengths)]).astype("int64"))
        out.add("ids", np.array(sequences.ids, dtype=str))
        out.add("label_names", np.array(sequences.label_names, dtype=str))
        out.add("delta_unit", np.array(sequences.delta_unit, dtype=str))
        out.add("format_version", np.array(FORMAT_VERSION, dtype="int64"))


def _physical_memory_bytes():
    """This machine's memory in bytes, or None where the OS does not say (e.g. Windows)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _load_compressed_images(path, max_memory_bytes):
    """The images of a compressed file, read into memory if they fit in `max_memory_bytes`."""
    shape, dtype = npz_member_header(path, "images")
    count = int(np.prod(shape, dtype=np.int64))
    needed = count * 4 + (count * dtype.itemsize if dtype != np.float32 else 0)
    if max_memory_bytes is not None and needed > max_memory_bytes:
        raise ValueError(
            f"{path}: its images are stored compressed, so they cannot be streamed from disk, "
            f"and reading them ({shape} {dtype}, {needed / 1024**3:.1f} GiB as float32) needs "
            f"more than {max_memory_bytes / 1024**3:.1f} GiB of memory. {_REWRITE} "
            f"Received: path={path!r}, max_memory_bytes={max_memory_bytes}"
        )
    return images_to_float(load_npz(path, ("images",), _KIND)["images"])


def load_longitudinal_npz(path, stream=None, max_memory_bytes="auto") -> LongitudinalSequences:
    """Reads a file written by `save_longitudinal_npz` (or ``data_prep/longitudinal_manifest.py``).

    Args:
        path: the ``.npz`` file.
        stream: None (default): the images of a file written with ``compress=False`` stay on
            disk (`MappedImages`, read when indexed), those of a compressed file are read
            into memory. True: the images must stay on disk (a compressed file raises a
            ``ValueError`` that says how to rewrite it). False: read them into memory.
        max_memory_bytes: the most memory the images of a compressed file may take while
            they are read (the stored array plus its float32 copy); a larger file raises a
            ``ValueError`` that says how to rewrite it uncompressed. ``"auto"`` (default):
            this machine's physical memory; None: no limit.

    Returns:
        A `LongitudinalSequences` whose images are float32 in ``[0, 1]`` (arrays, or
        `MappedImages` that give float32 when read).

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is not an ``.npz`` file, a key is missing or the arrays are
            inconsistent.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> seqs = LongitudinalSequences(
    ...     [np.full((2, 4, 4), 0.5, "float32")], [np.zeros((2, 1), "float32")],
    ...     [np.array([0, 3], "float32")], ("a",))
    >>> save_longitudinal_npz(path, seqs, image_dtype="uint8", compress=False)
    >>> back = load_longitudinal_npz(path)
    >>> type(back.images[0]).__name__, str(back.images[0].stored.dtype), back.images[0][1].dtype
    ('MappedImages', 'uint8', dtype('float32'))
    >>> round(float(back.images[0][1, 0, 0]), 4)  # 128 / 255
    0.502
    """
    if stream not in (None, True, False):
        raise ValueError(f"`stream` must be None, True or False. Received: stream={stream!r}")
    if max_memory_bytes == "auto":
        max_memory_bytes = _physical_memory_bytes()
    elif max_memory_bytes is not None and (
        not isinstance(max_memory_bytes, (int, np.integer)) or max_memory_bytes < 1
    ):
        raise ValueError(
            "`max_memory_bytes` must be 'auto', None or a positive integer. "
            f"Received: max_memory_bytes={max_memory_bytes!r}"
        )
    path = os.fspath(path)
    arrays = load_npz(path, [k for k in _KEYS if k != "images"], _KIND)
    stored = None if stream is False else memmap_npz_member(path, "images", _KIND)
    images = stored
    if stored is not None and not isinstance(stored, np.memmap):  # no exam: nothing to map
        images, stored = images_to_float(stored), None
    elif stored is None and stream:
        raise ValueError(
            f"{path}: its images are stored compressed and cannot be streamed from disk. "
            f"{_REWRITE} Received: path={path!r}, stream=True"
        )
    if images is None:
        images = _load_compressed_images(path, max_memory_bytes)
    offsets = arrays["offsets"].astype("int64")
    n = len(images)
    if (
        offsets.ndim != 1
        or len(offsets) != len(arrays["ids"]) + 1
        or offsets[0] != 0
        or offsets[-1] != n
        or np.any(np.diff(offsets) < 0)
        or len(arrays["labels"]) != n
        or len(arrays["deltas"]) != n
    ):
        raise ValueError(
            f"{path}: `offsets` must rise from 0 to the number of exams ({n}) with one entry "
            f"per sequence plus one. Received: offsets={offsets.tolist()[:10]}..., "
            f"labels={arrays['labels'].shape}, deltas={arrays['deltas'].shape}"
        )
    cut = offsets[1:-1]
    if stored is None:
        per_sequence = np.split(images, cut)
    else:
        file = _MappedFile(stored)
        per_sequence = [MappedImages(file, a, b) for a, b in zip(offsets[:-1], offsets[1:])]
    return LongitudinalSequences(
        images=per_sequence,
        labels=np.split(arrays["labels"].astype("float32", copy=False), cut),
        deltas=np.split(arrays["deltas"].astype("float32", copy=False), cut),
        label_names=tuple(arrays["label_names"].tolist()),
        ids=tuple(arrays["ids"].tolist()),
        delta_unit=str(arrays["delta_unit"]),
    )
