"""`ExamDataset`: batches of single exams of `kerasmed.io.LongitudinalSequences`, read on demand.

The single-image stage of paper 000 (train an image CNN on every exam, then run its backbone
over every exam) sees the exams one by one, not as sequences. When the sequences come from a
file written uncompressed (`kerasmed.io.load_longitudinal_npz` returns `MappedImages`), the
exams stay in the memory-mapped file: a batch reads its rows from the map (one sorted read
for the rows of all its sequences) and scales them to float32 there, so a training epoch
never holds more than ``max_queue_size`` batches of images. Only the index, one int64 row
number and the labels of each exam, is in memory. In-memory sequences (the simulated data)
are batched the same way, from their arrays.

``benchmarks/streaming_memory.py --case tlstm`` measures the peak memory of one stage-1 epoch
as the set grows, streamed and in memory.
"""

from __future__ import annotations

import numpy as np

from kerasmed.data._epoch_order import EpochOrderDataset
from kerasmed.io.sequences import MappedImages, images_to_float
from kerasmed.validation import check_finite_array, check_whole_number

__all__ = ["ExamDataset", "last_exam_rows", "streams_images"]


def streams_images(sequences) -> bool:
    """True when every sequence's images stay in a memory-mapped file (`MappedImages`)."""
    return len(sequences) > 0 and all(isinstance(x, MappedImages) for x in sequences.images)


def last_exam_rows(sequences) -> np.ndarray:
    """The row of each sequence's last exam among all exams (``ExamDataset(exams=...)``)."""
    return np.cumsum(sequences.lengths) - 1


class ExamDataset(EpochOrderDataset):
    """A ``keras.utils.PyDataset`` of single exams: ``(images, labels)`` batches.

    Args:
        sequences: a `kerasmed.io.LongitudinalSequences` (images as arrays or `MappedImages`).
        exams: the exams to batch, as rows of all exams in order (sequence 0's first exam is
            row 0, ``N = sum(T_i)`` rows in all), e.g. `last_exam_rows`; default every exam.
        batch_size: exams per batch (the last batch may be smaller).
        shuffle: draw a new order of `exams` every epoch (seeded by ``(seed, epoch)``);
            False keeps the order of `exams`, as ``predict`` needs.
        seed: seed of the shuffled order.
        labels: True yields ``(images, labels)``, False ``images`` only (for ``predict``).
        channel_axis: add a trailing channel axis, ``(B, H, W, 1)``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``; with
            ``use_multiprocessing=True`` each worker maps the file itself (only its name is
            sent).

    Each batch is float32 in ``[0, 1]`` (uint8 on disk is divided by 255 per batch); a batch
    with a NaN or infinite value raises a ``ValueError`` naming the exam.

    Example:

    >>> from kerasmed.io import LongitudinalSequences
    >>> seqs = LongitudinalSequences(
    ...     [np.zeros((3, 4, 4), "float32"), np.ones((2, 4, 4), "float32")],
    ...     [np.zeros((3, 1), "float32"), np.ones((2, 1), "float32")],
    ...     [np.array([0, 1, 2], "float32"), np.array([0, 5], "float32")], ("a",))
    >>> data = ExamDataset(seqs, batch_size=4)
    >>> len(data), data[0][0].shape, data[1][1].tolist()
    (2, (4, 4, 4, 1), [[1.0]])
    >>> ExamDataset(seqs, exams=last_exam_rows(seqs), batch_size=8)[0][1].tolist()
    [[0.0], [1.0]]
    """

    def __init__(
        self,
        sequences,
        exams=None,
        batch_size=32,
        shuffle=False,
        seed=0,
        labels=True,
        channel_axis=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        batch_size = check_whole_number(batch_size, "batch_size")
        lengths = sequences.lengths
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        total = int(offsets[-1])
        if exams is None:
            rows = np.arange(total)
        else:
            rows = np.asarray(exams).reshape(-1)
            if len(rows) and (rows.dtype.kind not in "iu" or rows.min() < 0 or rows.max() >= total):
                raise ValueError(
                    f"`exams` must be rows of the {total} exams (integers in [0, {total})). "
                    f"Received: exams of dtype {rows.dtype}, values "
                    f"{rows.tolist()[:5]}{'...' if len(rows) > 5 else ''}"
                )
            rows = rows.astype(np.int64)
        if len(rows) == 0:
            raise ValueError(f"`exams` must select at least one exam. Received: exams={exams!r}")
        self._sequence = np.searchsorted(offsets, rows, side="right") - 1
        self._step = rows - offsets[self._sequence]
        self._labels = np.concatenate(sequences.labels).astype("float32", copy=False)[rows]
        self._images = list(sequences.images)
        self._rows = rows
        # One file behind every sequence: a batch is one read of the file's rows.
        files = {id(x.file): x.file for x in self._images if isinstance(x, MappedImages)}
        self._file = None
        if streams_images(sequences) and len(files) == 1:
            self._file = next(iter(files.values()))
            starts = np.array([x.start for x in self._images], dtype=np.int64)
            self._file_rows = starts[self._sequence] + self._step
        self.labels, self.channel_axis = bool(labels), bool(channel_axis)
        self.shuffle, self.seed = bool(shuffle), seed
        self._start_order(len(rows), batch_size)

    def _read(self, items):
        if self._file is not None:
            file_rows = self._file_rows[items]
            order = np.argsort(file_rows, kind="stable")
            stored = np.empty((len(items), *self._file.shape[1:]), self._file.dtype)
            # rows read in file order, through a map that ends with this batch
            stored[order] = self._file.open()[file_rows[order]]
            return images_to_float(stored)
        return np.stack(
            [
                np.asarray(self._images[s][t], dtype="float32")
                for s, t in zip(self._sequence[items], self._step[items])
            ]
        )

    def __getitem__(self, index):
        items = self._batch_rows(index)
        images = self._read(items)
        finite = np.isfinite(images.reshape(len(items), -1)).all(axis=1)
        if not finite.all():
            first = int(np.flatnonzero(~finite)[0])
            item = items[first]
            check_finite_array(images[first], f"images[{self._sequence[item]}][{self._step[item]}]")
        if self.channel_axis:
            images = images[..., None]
        return (images, self._labels[items]) if self.labels else images
