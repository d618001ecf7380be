"""Batches of segmentation sequences read from their images when Keras asks for them (paper 002).

`kerasmed.io.load_segmentation_npz` maps the ``images`` ``(S, T, H, W, C)`` of an uncompressed
``segmentation.npz`` read-only (a ``np.memmap``); the datasets here index that map, so one
batch's images are read from the file when the batch is made and nothing else of them is in
memory. The labels ``(S, T, H, W)`` (one int8 per pixel) and the lists of items are in memory.

- `SegmentationFrameDataset`: batches of single frames ``images[s, t]`` ``(B, H, W, C)`` and
  their labels ``(B, H, W)``, for a model of one image (the concise FCN); `labelled_frames`
  lists the frames with at least one label, `sequence_frames` every frame of some sequences.
- `SegmentationSequenceDataset`: batches of whole sequences ``(B, T, H, W, C)`` and their
  labels ``(B, T, H, W)``, for the FCSLSTM models.

Both give the same batches for an in-memory array as for its map. Each epoch visits the items
in the order ``arange(N)``, or with ``shuffle`` in a permutation seeded by ``(seed, epoch)``
(`kerasmed.data._epoch_order.EpochOrderDataset`). They take ``workers``,
``use_multiprocessing`` and ``max_queue_size`` like every ``keras.utils.PyDataset``; a
memory map is pickled as its file, offset, dtype and shape (not its bytes) and mapped again
in the worker process. Labels come out as int32, images as float32; a batch holding NaN or
infinite values raises a ``ValueError`` naming its sequences.

A batch is read through a map of the file made for that batch and closed once its items are
copied out, not through the map it was given: the pages a long-lived map has touched stay in
the process's resident memory until it is closed (reclaimable, but counted), so reading a
whole epoch through one map would show the file's size in the RSS.

``benchmarks/streaming_memory.py --fcslstm`` measures the peak memory of one epoch, streamed
vs in memory, as the set grows.
"""

from __future__ import annotations

import mmap

import numpy as np

from kerasmed.data._epoch_order import EpochOrderDataset
from kerasmed.validation import check_whole_number

__all__ = [
    "SegmentationFrameDataset",
    "SegmentationSequenceDataset",
    "labelled_frames",
    "sequence_frames",
]


def _sequence_indices(sequences, num_sequences):
    if sequences is None:
        return np.arange(num_sequences)
    indices = np.asarray(sequences)
    if indices.dtype == bool:
        if indices.shape != (num_sequences,):
            raise ValueError(
                f"A boolean `sequences` needs one entry per sequence ({num_sequences}). "
                f"Received: sequences.shape={indices.shape}"
            )
        return np.flatnonzero(indices)
    indices = indices.reshape(-1)
    if indices.size and (
        indices.dtype.kind not in "iu" or indices.min() < 0 or indices.max() >= num_sequences
    ):
        raise ValueError(
            f"`sequences` must be indices in [0, {num_sequences}) or a boolean mask. "
            f"Received: sequences={sequences!r}"
        )
    return indices.astype(np.int64)


def labelled_frames(labels, sequences=None, ignore_label=-1):
    """The ``(sequence, time point)`` pairs whose label map has at least one labelled pixel.

    Args:
        labels: ``(S, T, H, W)`` integer labels.
        sequences: the sequences to look at (indices or an ``(S,)`` boolean mask); None: all.
        ignore_label: the label of unlabelled pixels.

    Returns:
        ``(N, 2)`` int64, sequence by sequence and time point by time point (the order of
        ``images[keep]`` for a boolean ``keep`` of shape ``(S, T)``).

    Example:

    >>> labels = np.full((2, 3, 1, 1), -1)
    >>> labels[0, 2] = labels[1, 0] = 1
    >>> labelled_frames(labels).tolist(), labelled_frames(labels, [1]).tolist()
    ([[0, 2], [1, 0]], [[1, 0]])
    """
    labels = np.asarray(labels)
    if labels.ndim != 4:
        raise ValueError(f"`labels` must be (S, T, H, W). Received: labels.shape={labels.shape}")
    rows = _sequence_indices(sequences, len(labels))
    keep = np.any(labels[rows] != ignore_label, axis=(2, 3))
    index, step = np.nonzero(keep)
    return np.stack([rows[index], step], axis=1).astype(np.int64)


def sequence_frames(num_timepoints, sequences):
    """Every ``(sequence, time point)`` pair of `sequences` (indices), sequence by sequence.

    Example:

    >>> sequence_frames(2, [3, 1]).tolist()
    [[3, 0], [3, 1], [1, 0], [1, 1]]
    """
    rows = np.asarray(sequences, dtype=np.int64).reshape(-1)
    steps = np.arange(int(num_timepoints), dtype=np.int64)
    return np.stack([np.repeat(rows, len(steps)), np.tile(steps, len(rows))], axis=1)


def _map_spec(array):
    """``(filename, dtype, offset, shape, order)`` of a whole read-only np.memmap, else None."""
    if (
        isinstance(array, np.memmap)
        and isinstance(array.base, mmap.mmap)
        and array.filename is not None
        and array.mode == "r"
    ):
        order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
        return (array.filename, array.dtype.str, int(array.offset), array.shape, order)
    return None


def _open_map(spec):
    filename, dtype, offset, shape, order = spec
    return np.memmap(filename, dtype, mode="r", offset=offset, shape=shape, order=order)


class _SegmentationBatches(EpochOrderDataset):
    """Batch ``i``: the items ``order[i * b : (i + 1) * b]`` read from `images` (and `labels`)."""

    def __init__(self, images, labels, items, batch_size, shuffle, seed, **kwargs):
        super().__init__(**kwargs)
        if np.ndim(images) != 5:
            raise ValueError(
                f"`images` must be (S, T, H, W, C). Received: images.shape={np.shape(images)}"
            )
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != images.shape[:4] or labels.dtype.kind not in "iu":
                raise ValueError(
                    f"`labels` must be integers of shape {images.shape[:4]} (images' S, T, H, W)."
                    f" Received: labels.shape={labels.shape}, labels.dtype={labels.dtype}"
                )
        batch_size = check_whole_number(batch_size, "batch_size")
        if len(items) == 0:
            raise ValueError(f"There is nothing to batch. Received: {len(items)} items")
        self.images, self.labels, self.items = images, labels, items
        self._map = _map_spec(images)  # read each batch through a map of its own
        self.shuffle, self.seed = bool(shuffle), seed
        self._start_order(len(items), batch_size)

    def _take(self, array, rows):  # the items `rows` of `array`: one per subclass
        return array[rows]

    def _sequences_of(self, rows):
        return rows

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index out of range [0, {len(self)}). Received: {index}")
        rows = self.items[self._batch_rows(index)]
        images = self.images if self._map is None else _open_map(self._map)
        x = np.asarray(self._take(images, rows), dtype="float32")
        del images  # closes the batch's map (the copy `x` does not hold it)
        if not np.isfinite(x).all():
            bad = np.unique(self._sequences_of(rows)[~np.isfinite(x).reshape(len(x), -1).all(1)])
            raise ValueError(
                f"The images of sequences {bad.tolist()} hold NaN or infinite values. "
                f"Received: batch {index}"
            )
        if self.labels is None:
            return x
        return x, np.asarray(self._take(self.labels, rows), dtype="int32")

    def __getstate__(self):
        state = dict(self.__dict__)
        if self._map is not None:  # worker processes map the file again
            state["images"] = None
        return state

    def __setstate__(self, state):
        if state["_map"] is not None:
            state["images"] = _open_map(state["_map"])
        self.__dict__.update(state)


class SegmentationFrameDataset(_SegmentationBatches):
    """Batches of single frames ``images[s, t]`` ``(B, H, W, C)`` and labels ``(B, H, W)``.

    Args:
        images: ``(S, T, H, W, C)`` array, or its ``np.memmap`` (`kerasmed.io.load_segmentation_npz`
            of an uncompressed file): only a batch's frames are read.
        labels: ``(S, T, H, W)`` integer labels (``-1`` unlabelled), or None: the batches are
            the images only (for ``model.predict``).
        frames: ``(N, 2)`` ``(sequence, time point)`` pairs to visit (`labelled_frames`,
            `sequence_frames`); None: every frame, sequence by sequence.
        batch_size: frames per batch.
        shuffle: visit the frames in a new order every epoch (False: in the order of `frames`).
        seed: seed of the order; epoch ``e`` uses ``default_rng([seed, e])``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    Example:

    >>> images = np.arange(2 * 3 * 1 * 1 * 1, dtype="float32").reshape(2, 3, 1, 1, 1)
    >>> data = SegmentationFrameDataset(images, None, frames=[[1, 2], [0, 1]], batch_size=2)
    >>> data[0].ravel().tolist()
    [5.0, 1.0]
    """

    def __init__(
        self, images, labels=None, frames=None, batch_size=32, shuffle=False, seed=0, **kwargs
    ):
        shape = np.shape(images)
        if frames is None and len(shape) == 5:
            frames = sequence_frames(shape[1], np.arange(shape[0]))
        frames = np.asarray(frames)
        if frames.ndim != 2 or frames.shape[1] != 2 or frames.dtype.kind not in "iu":
            raise ValueError(
                "`frames` must be (N, 2) integer (sequence, time point) pairs. "
                f"Received: frames.shape={frames.shape}, frames.dtype={frames.dtype}"
            )
        if (
            len(shape) == 5
            and len(frames)
            and (frames.min() < 0 or (frames >= np.array(shape[:2])).any())
        ):
            raise ValueError(
                f"`frames` must lie in [0, {shape[0]}) x [0, {shape[1]}). "
                f"Received: frames.min={frames.min()}, frames.max(axis=0)={frames.max(0).tolist()}"
            )
        super().__init__(
            images, labels, frames.astype(np.int64), batch_size, shuffle, seed, **kwargs
        )

    def _take(self, array, rows):
        return array[rows[:, 0], rows[:, 1]]

    def _sequences_of(self, rows):
        return rows[:, 0]


class SegmentationSequenceDataset(_SegmentationBatches):
    """Batches of whole sequences ``(B, T, H, W, C)`` and their labels ``(B, T, H, W)``.

    Args:
        images: ``(S, T, H, W, C)`` array, or its ``np.memmap``: only a batch's sequences are
            read.
        labels: ``(S, T, H, W)`` integer labels (``-1`` unlabelled), or None (images only).
        sequences: the sequences to visit, indices or an ``(S,)`` boolean mask; None: all.
        batch_size, shuffle, seed, **kwargs: as `SegmentationFrameDataset` (per sequence).

    Example:

    >>> images = np.arange(3, dtype="float32").reshape(3, 1, 1, 1, 1)
    >>> data = SegmentationSequenceDataset(images, sequences=[2, 0], batch_size=2)
    >>> data[0].shape, data[0].ravel().tolist()
    ((2, 1, 1, 1, 1), [2.0, 0.0])
    """

    def __init__(
        self, images, labels=None, sequences=None, batch_size=1, shuffle=False, seed=0, **kwargs
    ):
        shape = np.shape(images)
        rows = _sequence_indices(sequences, shape[0] if shape else 0)
        super().__init__(images, labels, rows, batch_size, shuffle, seed, **kwargs)
