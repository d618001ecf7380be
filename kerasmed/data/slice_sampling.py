"""Slice sampling of the two-step CT method (Hsu et al., paper 003) and its PyDatasets.

CT scans have different numbers of slices; both steps of the method draw a fixed number of
them per scan.

- `sample_window_slices`: the 16 slices the 2D CNN sees per scan, drawn from the scan's
  selected lung window by the authors' rules (their code): a window longer than 16 slices gives
  16 without replacement; otherwise a scan of more than 20 slices gives 16 from the window with
  replacement; a smaller scan gives 16 from all its slices (with replacement only when it has
  fewer than 16: the authors' code does not say; repeats only when needed is our choice).
- `sample_sequence_slices`: the slices whose embeddings the sequence heads read (120 for the
  BiLSTM, 224 for the Swin Transformer): fewer slices than that -> all of them plus random
  repeats; more -> that many without replacement (the paper's rule for Swin, Section 3.1;
  the authors' LSTM code "repeats if fewer" too).
- `WindowSliceDataset`: training batches of the 2D CNN, ``scans_per_batch`` scans x 16 slices
  (the authors': 8 x 16), each slice labelled with its scan's label.
- `EmbeddingSequenceDataset`: batches of sampled embedding sequences for either head; fresh
  draws every epoch by default, or the authors' fixed draw per scan (their ``__getitem__``
  reseeds, so a scan shows the same slices every epoch).

Every draw is returned in slice order (sorted indices). Randomness comes from
``numpy.random.default_rng`` seeded by ``(seed, epoch, ...)``, so a batch is reproducible.

Reference: C.-C. Hsu et al., *Spatiotemporal feature learning based on two-step LSTM and
Transformer for CT scans*, Section 3.1, and the authors' code (``train_code/``).
"""

from __future__ import annotations

import numpy as np

from kerasmed.data._epoch_order import EpochOrderDataset
from kerasmed.validation import check_positive_int

__all__ = [
    "window_bounds",
    "sample_window_slices",
    "sample_sequence_slices",
    "as_slice_batch",
    "WindowSliceDataset",
    "EmbeddingSequenceDataset",
]

# The authors draw from the whole scan instead of the window when it has at most this many slices.
SMALL_SCAN_SLICES = 20


def window_bounds(window, num_total):
    """Returns ``(start, stop)`` of a window given as a pair or an object with ``.start``/``.stop``.

    Args:
        window: ``(start, stop)`` (stop exclusive), or a slice-selection result with ``.start``
            and ``.stop`` attributes (`kerasmed.preprocessing.select_lung_slices`'s).
        num_total: number of slices of the scan.

    Returns:
        ``(start, stop)`` as ints with ``0 <= start < stop <= num_total``.

    Example:

    >>> window_bounds((2, 5), 10)
    (2, 5)
    """
    if hasattr(window, "start") and hasattr(window, "stop"):
        start, stop = window.start, window.stop
    else:
        start, stop = window
    start, stop = int(start), int(stop)
    if not 0 <= start < stop <= num_total:
        raise ValueError(
            f"`window` must satisfy 0 <= start < stop <= {num_total} (the number of slices). "
            f"Received: window={(start, stop)}"
        )
    return start, stop


def sample_window_slices(num_total, window, rng, num_slices=16):
    """Indices of the slices the 2D CNN sees for one scan, by the authors' rules.

    Args:
        num_total: number of slices of the scan (n).
        window: the selected window, ``(start, stop)`` or an object with ``.start``/``.stop``.
        rng: a ``numpy.random.Generator``.
        num_slices: slices per draw (the authors' 16).

    Returns:
        ``(num_slices,)`` int array of slice indices in increasing order: from the window
        without replacement when it is longer than `num_slices`; else from the window with
        replacement when ``n > 20``; else from all ``n`` slices (with replacement only when
        ``n < num_slices``).

    Example:

    >>> idx = sample_window_slices(100, (40, 90), np.random.default_rng(0))
    >>> len(idx), len(set(idx.tolist())), bool(idx.min() >= 40 and idx.max() < 90)
    (16, 16, True)
    """
    num_total = check_positive_int(num_total, "num_total")
    num_slices = check_positive_int(num_slices, "num_slices")
    start, stop = window_bounds(window, num_total)
    if stop - start > num_slices:
        idx = start + rng.choice(stop - start, size=num_slices, replace=False)
    elif num_total > SMALL_SCAN_SLICES:
        idx = start + rng.choice(stop - start, size=num_slices, replace=True)
    else:
        idx = rng.choice(num_total, size=num_slices, replace=num_total < num_slices)
    return np.sort(idx)


def sample_sequence_slices(num_total, num_slices, rng):
    """Indices of the slices whose embeddings a sequence head reads, in slice order.

    Args:
        num_total: number of slices of the scan.
        num_slices: slices per sequence (120 for the BiLSTM, 224 for Swin).
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(num_slices,)`` sorted int array: all slices plus random repeats when
        ``num_total < num_slices``; `num_slices` distinct slices otherwise.

    Example:

    >>> sample_sequence_slices(3, 5, np.random.default_rng(0)).tolist()
    [0, 1, 1, 2, 2]
    """
    num_total = check_positive_int(num_total, "num_total")
    num_slices = check_positive_int(num_slices, "num_slices")
    if num_total >= num_slices:
        return np.sort(rng.choice(num_total, size=num_slices, replace=False))
    extra = rng.choice(num_total, size=num_slices - num_total, replace=True)
    return np.sort(np.concatenate([np.arange(num_total), extra]))


def as_slice_batch(slices, channels=None):
    """``(N, H, W)`` or ``(N, H, W, C)`` slices as a float32 ``(N, H, W, channels)`` batch.

    A single-channel stack is repeated to `channels` (a grey CT slice fed to an RGB backbone,
    as the challenge's JPEG slices are).

    Args:
        slices: array of slices.
        channels: channels wanted; ``None`` keeps them (1 for an ``(N, H, W)`` stack).

    Returns:
        A float32 array ``(N, H, W, channels)``.

    Example:

    >>> as_slice_batch(np.zeros((2, 4, 4)), channels=3).shape
    (2, 4, 4, 3)
    """
    x = np.asarray(slices, dtype="float32")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(
            f"`slices` must be (N, H, W) or (N, H, W, C). Received: slices.shape={x.shape}"
        )
    if channels is not None and x.shape[-1] != channels:
        if x.shape[-1] != 1:
            raise ValueError(
                f"Cannot turn {x.shape[-1]} channels into {channels}. Received: channels={channels}"
            )
        x = np.repeat(x, channels, axis=-1)
    return x


class WindowSliceDataset(EpochOrderDataset):
    """Training batches of the 2D slice CNN: `scans_per_batch` scans x 16 window slices.

    Each epoch visits every scan once (shuffled by default); each scan contributes
    `slices_per_scan` slices drawn by `sample_window_slices` from its window, labelled with
    the scan's label (binary cross-entropy on single slices, the paper's Eq. 5).

    Args:
        volumes: list of ``(n_i, H, W)`` or ``(n_i, H, W, C)`` arrays, slices already sized
            for the model (intensities as the model expects, e.g. 0-255 for EfficientNet).
        windows: one window per scan, ``(start, stop)`` or a selection result.
        labels: ``(num_scans,)`` 0/1 scan labels.
        scans_per_batch: scans per batch (the authors': 8).
        slices_per_scan: slices drawn per scan (the authors': 16).
        channels: channels of the batches (3 for an ImageNet backbone); ``None`` keeps them.
        augment: ``None`` or a callable ``(slice (H, W, C), rng) -> slice``.
        shuffle: visit the scans in a new random order every epoch.
        seed: batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    Example:

    >>> volumes = [np.zeros((30, 8, 8)), np.ones((10, 8, 8))]
    >>> data = WindowSliceDataset(volumes, [(5, 25), (2, 7)], [0, 1], scans_per_batch=2)
    >>> x, y = data[0]
    >>> x.shape, sorted(set(y.tolist()))
    ((32, 8, 8, 1), [0.0, 1.0])
    """

    def __init__(
        self,
        volumes,
        windows,
        labels,
        scans_per_batch=8,
        slices_per_scan=16,
        channels=None,
        augment=None,
        shuffle=True,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not len(volumes) == len(windows) == len(labels) or not len(volumes):
            raise ValueError(
                "`volumes`, `windows` and `labels` need one entry per scan (and at least one). "
                f"Received: lengths={len(volumes)}, {len(windows)}, {len(labels)}"
            )
        if augment is not None and not callable(augment):
            raise ValueError(f"`augment` must be None or a callable. Received: augment={augment!r}")
        self.volumes = volumes
        self.windows = [window_bounds(w, len(v)) for w, v in zip(windows, volumes)]
        self.labels = np.asarray(labels, dtype="float32")
        self.scans_per_batch = check_positive_int(scans_per_batch, "scans_per_batch")
        self.slices_per_scan = check_positive_int(slices_per_scan, "slices_per_scan")
        self.channels = check_positive_int(channels, "channels", allow_none=True)
        self.augment, self.shuffle, self.seed = augment, shuffle, seed
        self._start_order(len(volumes), self.scans_per_batch)

    def __getitem__(self, index):
        rows = self._batch_rows(index)
        rng = np.random.default_rng([self.seed, self._epoch, index])
        slices = []
        for i in rows:
            idx = sample_window_slices(
                len(self.volumes[i]), self.windows[i], rng, self.slices_per_scan
            )
            x = as_slice_batch(np.asarray(self.volumes[i])[idx], self.channels)
            if self.augment is not None:
                x = np.stack([self.augment(image, rng) for image in x]).astype("float32")
            slices.append(x)
        y = np.repeat(self.labels[rows], self.slices_per_scan)
        return np.concatenate(slices), y


class EmbeddingSequenceDataset(EpochOrderDataset):
    """Batches of sampled slice-embedding sequences for the BiLSTM and Swin heads.

    Scan ``i``'s sequence is ``embeddings[i][sample_sequence_slices(n_i, num_slices, rng)]``
    (slice order kept). With ``fixed_draws=False`` (default) the rng is seeded by
    ``(seed, epoch, i)``: a fresh draw every epoch, which is the paper's "dropping out the
    embedding of slices" against overfitting. With ``fixed_draws=True`` it is seeded by
    ``(seed, i)``: the same slices every epoch, as the authors' code runs.

    Args:
        embeddings: list of ``(n_i, D)`` arrays (`kerasmed.models.embed_scans`).
        labels: ``(num_scans,)`` 0/1 scan labels, or ``None`` for inputs only (prediction).
        num_slices: sequence length (120 for the BiLSTM, 224 for Swin).
        batch_size: scans per batch (the authors': 32 for the BiLSTM, 16 for Swin).
        fixed_draws: keep each scan's draw across epochs.
        shuffle: visit the scans in a new random order every epoch (``False`` for prediction).
        seed: seed of the draws and the order.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    Example:

    >>> data = EmbeddingSequenceDataset([np.ones((5, 4)), np.ones((9, 4))], [0, 1],
    ...                                 num_slices=6, batch_size=2, shuffle=False)
    >>> x, y = data[0]
    >>> x.shape, y.tolist()
    ((2, 6, 4), [0.0, 1.0])
    """

    def __init__(
        self,
        embeddings,
        labels=None,
        num_slices=120,
        batch_size=32,
        fixed_draws=False,
        shuffle=True,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not len(embeddings):
            raise ValueError("`embeddings` must hold at least one scan. Received: embeddings=[]")
        if labels is not None and len(labels) != len(embeddings):
            raise ValueError(
                "`labels` needs one entry per scan. "
                f"Received: {len(embeddings)} scans, {len(labels)} labels"
            )
        widths = {np.shape(e)[-1] for e in embeddings}
        if len(widths) != 1 or any(np.ndim(e) != 2 for e in embeddings):
            raise ValueError(
                "`embeddings` must be (n_i, D) arrays of one width D. "
                f"Received: shapes={[np.shape(e) for e in embeddings[:5]]}..."
            )
        self.embeddings = embeddings
        self.labels = None if labels is None else np.asarray(labels, dtype="float32")
        self.num_slices = check_positive_int(num_slices, "num_slices")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.fixed_draws, self.shuffle, self.seed = bool(fixed_draws), shuffle, seed
        self._start_order(len(embeddings), self.batch_size)

    def sample_indices(self, scan):
        """The slice indices scan number `scan` gets in the current epoch."""
        key = [self.seed, scan] if self.fixed_draws else [self.seed, self._epoch, scan]
        rng = np.random.default_rng(key)
        return sample_sequence_slices(len(self.embeddings[scan]), self.num_slices, rng)

    def __getitem__(self, index):
        rows = self._batch_rows(index)
        x = np.stack(
            [np.asarray(self.embeddings[i], "float32")[self.sample_indices(i)] for i in rows]
        )
        if self.labels is None:
            return (x,)
        return x, self.labels[rows]
