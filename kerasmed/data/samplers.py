"""Balanced ``keras.utils.PyDataset`` samplers of Patel et al. (2019), Section III-C.

- `BalancedSliceDataset`: batches of single slices, positives and negatives drawn equally, for
  the slice CNN's pre-training.
- `BalancedVolumeDataset`: whole volumes with volume labels, classes drawn equally, right-padded
  with a mask when batched, for the sequence model's stages.

Both draw from ``numpy.random.default_rng`` seeded by ``(seed, epoch, batch)``, and augment
optionally (``"paper"`` or any ``(array, rng) -> array`` callable).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from kerasmed.data._epoch_order import EpochOrderDataset
from kerasmed.data.sequences import pad_to_batch
from kerasmed.preprocessing.augmentation import augment_paper
from kerasmed.validation import check_binary_array, check_finite_array, check_whole_number


def _resolve_augment(augment, volume):
    if augment is None or callable(augment):
        return augment
    if augment != "paper":
        raise ValueError(
            f"`augment` must be None, 'paper' or a callable. Received: augment={augment!r}"
        )
    if volume:  # Section III-C2: rotation over a random axis, shifts in all directions
        return lambda array, rng: augment_paper(
            array, rng, rotation_planes=[(0, 1), (0, 2), (1, 2)], shift_axes=(0, 1, 2)
        )[0]
    return lambda array, rng: augment_paper(array, rng)[0]  # Section III-C1: in-plane


def _one_hot(labels, num_classes):
    return np.eye(num_classes, dtype="float32")[np.asarray(labels, dtype=int)]


def _with_channel(array):
    array = np.asarray(array, dtype="float32")
    return array[..., None]


def _finite_float(array, name):
    """A drawn slice or volume as float32, refused (naming it) if it holds NaN or inf.

    Checked when drawn rather than up front: the volumes may be many and large, and a batch
    converts them to float32 anyway.
    """
    return check_finite_array(array, name).astype("float32", copy=False)


def _class_labels(labels, name, num_classes):
    """Integer class labels in ``[0, num_classes)`` (the rows of the one-hot targets)."""
    labels = check_finite_array(labels, name)
    bad = (labels != np.round(labels)) | (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"`{name}` must hold class labels in [0, num_classes={num_classes}). "
            f"Received: {name}[{i}]={labels[i].item()!r}"
        )
    return labels.astype(int)


class BalancedSliceDataset(keras.utils.PyDataset):
    """Batches of single slices with as many positives as negatives (Section III-C1).

    The candidates follow the paper: positive slices are the labelled slices of positive
    volumes, negative slices come *only from negative volumes* ("to avoid erroneously presenting
    positive samples"); unlabelled slices of positive volumes are never used. Each batch draws
    ``batch_size // 2`` positives and ``batch_size - batch_size // 2`` negatives at random (with
    replacement across batches), optionally augmented.

    Args:
        volumes: list of ``(N_i, H, W)`` arrays (already windowed / downsampled).
        slice_labels: list of ``(N_i,)`` 0/1 arrays.
        volume_labels: ``(num_volumes,)`` 0/1 array.
        batch_size: slices per batch. Default 25 (the paper's).
        steps_per_epoch: batches per epoch; default: enough to see every positive slice once.
        augment: ``None``, ``"paper"`` (one of identity / rotation / mirror / shift, see
            `kerasmed.preprocessing.augment_paper`) or a callable ``(slice, rng) -> slice``.
        num_classes: width of the one-hot targets (2 for the paper's softmax).
        seed: batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    Example:

    >>> volumes = [np.zeros((4, 8, 8)), np.ones((3, 8, 8))]
    >>> data = BalancedSliceDataset(volumes, [np.array([0, 1, 1, 0]), np.zeros(3)], [1, 0],
    ...                             batch_size=4)
    >>> x, y = data[0]
    >>> x.shape, y.sum(axis=0).tolist()
    ((4, 8, 8, 1), [2.0, 2.0])
    """

    def __init__(
        self,
        volumes,
        slice_labels,
        volume_labels,
        batch_size=25,
        steps_per_epoch=None,
        augment=None,
        num_classes=2,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        batch_size = check_whole_number(batch_size, "batch_size", minimum=2)
        steps_per_epoch = check_whole_number(steps_per_epoch, "steps_per_epoch", allow_none=True)
        num_classes = check_whole_number(num_classes, "num_classes", minimum=2)
        if not len(volumes) == len(slice_labels) == len(volume_labels):
            raise ValueError(
                "`volumes`, `slice_labels` and `volume_labels` need one entry per volume. "
                f"Received: lengths={len(volumes)}, {len(slice_labels)}, {len(volume_labels)}"
            )
        self.volumes = volumes
        volume_labels = check_binary_array(volume_labels, "volume_labels")
        positives, negatives = [], []
        for v, (labels, label) in enumerate(zip(slice_labels, volume_labels)):
            labels = check_binary_array(labels, f"slice_labels[{v}]")
            if labels.shape != (len(volumes[v]),):
                raise ValueError(
                    f"`slice_labels[{v}]` needs one label per slice of volume {v} "
                    f"({len(volumes[v])}). Received: slice_labels[{v}].shape={labels.shape}"
                )
            if label:
                positives += [(v, k) for k in np.flatnonzero(labels)]
            else:
                if labels.any():
                    raise ValueError(
                        f"Negative volume {v} has positive slice labels. Received: volume_labels[{v}]=0"
                    )
                negatives += [(v, k) for k in range(len(labels))]
        if not positives or not negatives:
            raise ValueError(
                "Need positive slices (from positive volumes) and negative volumes. "
                f"Received: {len(positives)} positive and {len(negatives)} negative slices"
            )
        self.positives, self.negatives = np.array(positives), np.array(negatives)
        self.batch_size, self.num_classes, self.seed = int(batch_size), num_classes, seed
        self.steps = steps_per_epoch or math.ceil(len(positives) / (self.batch_size // 2))
        self.augment = _resolve_augment(augment, volume=False)
        self._epoch = 0

    def __len__(self):
        return self.steps

    def on_epoch_end(self):
        self._epoch += 1

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self._epoch, index])
        num_pos = self.batch_size // 2
        pos = self.positives[rng.integers(len(self.positives), size=num_pos)]
        neg = self.negatives[rng.integers(len(self.negatives), size=self.batch_size - num_pos)]
        labels = np.r_[np.ones(num_pos, int), np.zeros(len(neg), int)]
        order = rng.permutation(self.batch_size)
        slices = []
        for v, k in np.concatenate([pos, neg])[order]:
            image = _finite_float(self.volumes[v][k], f"volumes[{v}][{k}]")
            slices.append(self.augment(image, rng) if self.augment else image)
        return _with_channel(np.stack(slices)), _one_hot(labels[order], self.num_classes)


class BalancedVolumeDataset(EpochOrderDataset):
    """Whole volumes with volume labels, positives and negatives drawn equally (Section III-C2).

    Every epoch draws `samples_per_epoch` volumes, half of each class, at random with
    replacement, optionally augmented. With ``batch_size=1`` (the paper's) a batch is
    ``(volume (1, N, H, W, 1), one_hot (1, C))``; with ``batch_size > 1`` or `pad_multiple` the
    volumes are right-padded and the batch input is ``(volume, mask)`` for a model built with
    ``use_mask=True``. Padding N up to a multiple (say 16) bounds the number of distinct shapes,
    which spares JAX a recompilation for every new slice count.

    On TensorFlow, Keras fixes every dimension that is equal in the first two batches of a
    ``fit``; so, when shuffling, the second batch is swapped with a later one of another length
    if needed. An unshuffled dataset (evaluation) keeps its order: on TensorFlow give it one
    shape, e.g. `pad_multiple` at least the longest volume.

    Args:
        volumes: list of ``(N_i, H, W)`` arrays (already windowed / downsampled).
        labels: ``(num_volumes,)`` 0/1 volume labels.
        batch_size: volumes per batch. Default 1.
        samples_per_epoch: volumes per epoch; default ``len(volumes)``.
        balance: draw the classes equally (``True``) or sample volumes uniformly.
        augment: ``None``, ``"paper"`` (identity / rotation about a random axis / mirror /
            shift in all directions) or a callable ``(volume, rng) -> volume``.
        pad_multiple: pad N to a multiple of this (with a mask input); ``None``: no padding
            when ``batch_size=1``.
        shuffle: draw at random; ``False`` visits the volumes in order (for evaluation; then
            `balance` is ignored and an epoch is one pass).
        num_classes: width of the one-hot targets.
        seed: epoch ``e`` depends only on ``(seed, e)``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    Example:

    >>> volumes = [np.zeros((3, 8, 8)), np.ones((5, 8, 8)), np.ones((4, 8, 8))]
    >>> data = BalancedVolumeDataset(volumes, [0, 1, 1], samples_per_epoch=4)
    >>> sorted(int(data[i][1][0, 1]) for i in range(len(data)))
    [0, 0, 1, 1]
    """

    def __init__(
        self,
        volumes,
        labels,
        batch_size=1,
        samples_per_epoch=None,
        balance=True,
        augment=None,
        pad_multiple=None,
        shuffle=True,
        num_classes=2,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = check_whole_number(num_classes, "num_classes", minimum=2)
        labels = _class_labels(labels, "labels", self.num_classes)
        if len(volumes) != len(labels) or not len(labels):
            raise ValueError(
                f"`volumes` and `labels` need the same, non-zero length. Received: "
                f"{len(volumes)} volumes, {len(labels)} labels"
            )
        batch_size = check_whole_number(batch_size, "batch_size")
        samples_per_epoch = check_whole_number(
            samples_per_epoch, "samples_per_epoch", allow_none=True
        )
        pad_multiple = check_whole_number(pad_multiple, "pad_multiple", allow_none=True)
        if balance and shuffle and labels.max() > 1:
            i = int(np.argmax(labels > 1))
            raise ValueError(
                "`balance=True` draws the classes 0 and 1 equally; pass `balance=False` for "
                f"more classes. Received: labels[{i}]={int(labels[i])}"
            )
        if balance and shuffle and len(np.unique(labels)) < 2:
            raise ValueError(
                f"`balance=True` needs both classes. Received: labels={labels.tolist()}"
            )
        self.volumes, self.labels = volumes, labels
        self.batch_size, self.balance, self.shuffle = int(batch_size), balance, shuffle
        self.samples = (
            len(volumes) if (samples_per_epoch is None or not shuffle) else int(samples_per_epoch)
        )
        self.pad_multiple, self.seed = pad_multiple, seed
        self.augment = _resolve_augment(augment, volume=True)
        self._start_order(self.samples, self.batch_size)

    def _draw_order(self):
        if not self.shuffle:
            return np.arange(len(self.volumes))
        rng = np.random.default_rng([self.seed, self._epoch])
        if not self.balance:
            return self._vary_first_two_batches(rng.integers(len(self.volumes), size=self.samples))
        half = self.samples // 2
        counts = {1: half, 0: self.samples - half}
        if rng.integers(2):  # an odd count alternates its extra sample between classes
            counts = {1: self.samples - half, 0: half}
        drawn = [rng.choice(np.flatnonzero(self.labels == c), size=counts[c]) for c in (0, 1)]
        return self._vary_first_two_batches(rng.permutation(np.concatenate(drawn)))

    def _batch_length(self, rows):
        length = max(len(self.volumes[i]) for i in rows)
        if self.pad_multiple:
            length = int(math.ceil(length / self.pad_multiple) * self.pad_multiple)
        return length

    def _vary_first_two_batches(self, order):
        """Swaps a later batch into second place when the first two have the same length.

        Keras's TensorFlow data adapter fixes every dimension that is equal in the first two
        batches; Keras's own advice for variable dimensions is to make those two differ.
        """
        size = self.batch_size
        blocks = [order[i : i + size] for i in range(0, len(order), size)]
        if len(blocks) > 2:
            first = self._batch_length(blocks[0])
            if self._batch_length(blocks[1]) == first:
                for j in range(2, len(blocks)):
                    if len(blocks[j]) == size and self._batch_length(blocks[j]) != first:
                        blocks[1], blocks[j] = blocks[j], blocks[1]
                        break
        return np.concatenate(blocks)

    def __getitem__(self, index):
        rows = self._batch_rows(index)
        rng = np.random.default_rng([self.seed, self._epoch, index, 1])
        arrays = []
        for i in rows:
            volume = _finite_float(self.volumes[i], f"volumes[{i}]")
            arrays.append(self.augment(volume, rng) if self.augment else volume)
        y = _one_hot(self.labels[rows], self.num_classes)
        if self.batch_size == 1 and self.pad_multiple is None:
            return _with_channel(arrays[0])[None], y
        length = max(len(a) for a in arrays)
        if self.pad_multiple:
            length = int(math.ceil(length / self.pad_multiple) * self.pad_multiple)
        padded, mask = pad_to_batch(arrays, max_length=length, dtype="float32")
        return (_with_channel(padded), mask), y
