"""`SegmentationSequences`: aligned 2D slices over time with sparse labels, and their ``.npz`` file.

`kerasmed.io.load_segmentation_sequences` builds them from a manifest of NIfTI volumes,
``data_prep/longitudinal_segmentation.py`` saves them with `save_segmentation_npz`, and
``kerasmed reproduce fcslstm --data-dir`` reads them with `load_segmentation_npz`.

The file stores its arrays uncompressed by default, so that `load_segmentation_npz` maps the
``images`` read-only (`kerasmed.io._npz.memmap_npz_member`) instead of reading them: only the
pages a batch touches are read (`kerasmed.data.segmentation_streaming`). The labels, one int8
per pixel (an eighth of two float32 channels), and the index arrays are read into memory. A
file written compressed (``compress=True``, or by an older kerasmed) has the same keys and
loads into memory as before.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from kerasmed.io._npz import load_npz, memmap_npz_member
from kerasmed.io.report import LoadReport

__all__ = ["SegmentationSequences", "load_segmentation_npz", "save_segmentation_npz"]

FORMAT_VERSION = 1
NPZ_NAME = "segmentation.npz"
_NPZ_KEYS = ("images", "labels", "subject_ids", "slice_indices", "timepoints", "channel_names")
_KIND = "segmentation sequences"


@dataclasses.dataclass
class SegmentationSequences:
    """Sequences of aligned 2D slices over time, with labels (``-1`` = not annotated).

    One sequence is one axial slice index of one subject followed over the time points.

    Args:
        images: ``(S, T, H, W, C)`` float32; a float32 ``np.memmap`` (`load_segmentation_npz`
            of an uncompressed file) is kept as it is, anything else is converted.
        labels: ``(S, T, H, W)`` int8 class indices, ``-1`` where there is no label (a whole
            time point without a label file, or voxels mapped to ``-1``).
        subject_ids: ``S`` subject ids.
        slice_indices: ``(S,)`` int64 axial index ``z`` of each slice in the canonical volume.
        timepoints: ``(S, T)`` float64 time points of each sequence, increasing.
        channel_names: the ``C`` channel names.
        report: the `kerasmed.io.LoadReport` of the manifest and of loading its volumes, or
            ``None`` (read from a file).

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
    report: LoadReport | None = None

    def __post_init__(self):
        if not (isinstance(self.images, np.memmap) and self.images.dtype == np.float32):
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


def save_segmentation_npz(path, sequences: SegmentationSequences, compress=False):
    """Writes `sequences` to an ``.npz`` file readable without pickle.

    Keys: ``images`` ``(S, T, H, W, C)`` float32, ``labels`` ``(S, T, H, W)`` int8 (``-1``
    unlabelled), ``subject_ids`` ``(S,)`` str, ``slice_indices`` ``(S,)`` int64,
    ``timepoints`` ``(S, T)`` float64, ``channel_names`` ``(C,)`` str, ``format_version`` int64.

    Args:
        path: output file; ``.npz`` is appended by NumPy if missing.
        sequences: a `SegmentationSequences`.
        compress: False (default) stores the arrays as they are (``np.savez``), so that
            `load_segmentation_npz` memory-maps the images; True compresses them
            (``np.savez_compressed``: a smaller file, whose images are read into memory).
    """
    if len(sequences) == 0:
        raise ValueError("Cannot save an empty `sequences`. Received: len(sequences)=0")
    if not isinstance(compress, bool):
        raise ValueError(f"`compress` must be True or False. Received: compress={compress!r}")
    save = np.savez_compressed if compress else np.savez
    save(
        path,
        images=sequences.images.astype("float32"),
        labels=sequences.labels.astype("int8"),
        subject_ids=np.array(sequences.subject_ids, dtype=str),
        slice_indices=sequences.slice_indices.astype("int64"),
        timepoints=sequences.timepoints.astype("float64"),
        channel_names=np.array(sequences.channel_names, dtype=str),
        format_version=np.array(FORMAT_VERSION, dtype="int64"),
    )


def load_segmentation_npz(path, mmap=True) -> SegmentationSequences:
    """Reads a file written by `save_segmentation_npz` (``data_prep/longitudinal_segmentation.py``).

    Args:
        path: the ``.npz`` file, or a folder holding ``segmentation.npz`` (the experiment's
            ``--data-dir``).
        mmap: True (default): when the file stores ``images`` uncompressed as float32, they
            are a read-only ``np.memmap`` of the file (nothing read until indexed); a
            compressed file's images are read into memory. False always reads them.

    Returns:
        A `SegmentationSequences` (``report=None``).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is not an ``.npz`` file, a key is missing, or the arrays have
            inconsistent shapes or types.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, NPZ_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No such segmentation .npz file: {path} (write it with "
            "data_prep/longitudinal_segmentation.py)"
        )
    images = memmap_npz_member(path, "images", _KIND) if mmap else None
    if images is not None and images.dtype == np.float32:
        arrays = {"images": images, **load_npz(path, _NPZ_KEYS[1:], _KIND)}  # all but images
    else:
        arrays = load_npz(path, _NPZ_KEYS, _KIND)
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
