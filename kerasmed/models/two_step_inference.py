"""Inference of paper 003's models: slice embeddings, scan predictions with Mean-N, the ensemble.

- `embed_scans`: every slice of every scan through the embedding model (the authors embed all
  slices, not only the window), in fixed-size batches across scan boundaries;
- `predict_scans`: the 2D CNN's scan probability, the mean over 16 slices drawn from the
  scan's window (`kerasmed.data.sample_window_slices`); Mean-N averages N such draws
  (the paper's Table 1: Mean 10, Mean 50), and the single draws are kept so the spread of
  single-draw scores can be reported (the paper: macro-F1 0.920 ... 0.938);
- `ensemble_probabilities`: the mean of the heads' probabilities (the authors' submission:
  Swin, 2D CNN Mean-10 and BiLSTM).

Reference: C.-C. Hsu et al., *Spatiotemporal feature learning based on two-step LSTM and
Transformer for CT scans*, Sections 3.1-3.2, and the authors' code.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasmed.data.slice_sampling import as_slice_batch, sample_window_slices
from kerasmed.progress import progress_bar
from kerasmed.validation import check_positive_int

__all__ = ["ScanPredictions", "embed_scans", "predict_scans", "ensemble_probabilities"]


def _model_image_shape(model):
    shape = tuple(model.input_shape)
    if len(shape) != 4:
        raise ValueError(
            f"The model must take (B, H, W, C) slices. Received: model.input_shape={shape}"
        )
    return shape[1:]


def _predict_slices(model, slice_arrays, batch_size, progress, description):
    """Runs `model` over the slices of every array in `slice_arrays`, in batches of one shape.

    Batches are filled across array boundaries and the last one is padded, so the compiled
    predict function sees a single input shape (no retracing on TensorFlow / JAX).
    """
    height, width, channels = _model_image_shape(model)
    batch_size = check_positive_int(batch_size, "batch_size")
    arrays = list(slice_arrays)
    counts = [len(a) for a in arrays]
    buffer = np.zeros((batch_size, height, width, channels), "float32")
    outputs, filled = [], 0
    with progress_bar(
        total=sum(counts), unit="slice", desc=description, disable=not progress
    ) as bar:
        for i, array in enumerate(arrays):
            x = as_slice_batch(array, channels)
            if x.shape[1:3] != (height, width):
                raise ValueError(
                    f"Scan {i}'s slices are {x.shape[1:3]}, the model takes {(height, width)}: "
                    f"resize them first. Received: volumes[{i}].shape={np.shape(array)}"
                )
            position = 0
            while position < len(x):
                take = min(batch_size - filled, len(x) - position)
                buffer[filled : filled + take] = x[position : position + take]
                filled, position = filled + take, position + take
                if filled == batch_size:
                    outputs.append(np.asarray(model.predict_on_batch(buffer)))
                    bar.update(filled)
                    filled = 0
        if filled:
            outputs.append(np.asarray(model.predict_on_batch(buffer))[:filled])
            bar.update(filled)
    if not outputs:
        return [np.zeros((0,) + tuple(model.output_shape[1:]), "float32") for _ in arrays]
    return np.split(np.concatenate(outputs), np.cumsum(counts)[:-1])


def embed_scans(embedding_model, volumes, batch_size=64, progress=True):
    """The embedding of every slice of every scan.

    Args:
        embedding_model: `kerasmed.models.slice_embedding_model` of a trained slice CNN.
        volumes: list of ``(n_i, H, W)`` or ``(n_i, H, W, C)`` arrays sized for the model
            (grey slices are repeated to the model's channels).
        batch_size: slices per forward pass (batches run across scan boundaries).
        progress: show a tqdm progress bar over the slices.

    Returns:
        A list of float32 ``(n_i, embedding_dim)`` arrays, one per scan.

    Example:

    >>> from kerasmed.models.two_step import build_slice_embedder, slice_embedding_model
    >>> cnn = build_slice_embedder("small_cnn", (16, 16, 3), embedding_dim=4, filters=(4,))
    >>> embeddings = embed_scans(slice_embedding_model(cnn),
    ...                          [np.zeros((5, 16, 16)), np.ones((3, 16, 16))],
    ...                          batch_size=4, progress=False)
    >>> [e.shape for e in embeddings]
    [(5, 4), (3, 4)]
    """
    outputs = _predict_slices(embedding_model, volumes, batch_size, progress, "embedding")
    return [np.asarray(o, "float32") for o in outputs]


@dataclasses.dataclass(frozen=True)
class ScanPredictions:
    """Scan probabilities of the 2D CNN over several slice draws.

    Attributes:
        per_draw: ``(num_draws, num_scans)``: each draw's mean probability of its 16 slices
            (row ``d`` is one single-draw prediction of every scan).
        mean: ``(num_scans,)``: the Mean-N probability, ``per_draw.mean(axis=0)``.
    """

    per_draw: np.ndarray
    mean: np.ndarray


def predict_scans(
    model,
    scans,
    windows,
    num_draws=1,
    slices_per_scan=16,
    seed=0,
    batch_size=64,
    progress=False,
):
    """The 2D CNN's scan probabilities: 16 sampled slices per draw, N draws (Mean-N).

    Draw ``d`` of scan ``i`` takes `slices_per_scan` slices by `sample_window_slices` with
    ``numpy.random.default_rng([seed, d, i])``; its probability is the mean of those slices'
    probabilities (the paper's test rule, threshold 0.5). The model is deterministic at
    inference, so every distinct slice a scan's draws use is predicted once and the draws
    average those probabilities.

    Args:
        model: a slice classifier mapping ``(B, H, W, C)`` to ``(B, 1)`` probabilities
            (`kerasmed.models.build_slice_embedder`).
        scans: list of ``(n_i, H, W)`` or ``(n_i, H, W, C)`` arrays sized for the model.
        windows: one window per scan, ``(start, stop)`` or a selection result.
        num_draws: N of Mean-N (1: a single draw; the paper: 10 and 50).
        slices_per_scan: slices per draw (16).
        seed: seed of the draws.
        batch_size: slices per forward pass.
        progress: show a progress bar over the predicted slices.

    Returns:
        A `ScanPredictions` with ``per_draw`` ``(num_draws, num_scans)`` and ``mean``.

    Example:

    >>> from kerasmed.models.two_step import build_slice_embedder
    >>> cnn = build_slice_embedder("small_cnn", (16, 16, 3), embedding_dim=4, filters=(4,))
    >>> scans = [np.zeros((30, 16, 16)), np.ones((12, 16, 16))]
    >>> result = predict_scans(cnn, scans, [(5, 25), (3, 9)], num_draws=3)
    >>> result.per_draw.shape, result.mean.shape
    ((3, 2), (2,))
    """
    num_draws = check_positive_int(num_draws, "num_draws")
    slices_per_scan = check_positive_int(slices_per_scan, "slices_per_scan")
    if len(scans) != len(windows):
        raise ValueError(
            "`scans` and `windows` need one entry per scan. "
            f"Received: {len(scans)} scans, {len(windows)} windows"
        )
    draws, unique, positions = [], [], []
    for i, (scan, window) in enumerate(zip(scans, windows)):
        idx = np.stack(
            [
                sample_window_slices(
                    len(scan), window, np.random.default_rng([seed, d, i]), slices_per_scan
                )
                for d in range(num_draws)
            ]
        )
        needed, where = np.unique(idx, return_inverse=True)
        draws.append(idx)
        unique.append(np.asarray(scan)[needed])
        positions.append(where.reshape(idx.shape))
    probabilities = _predict_slices(model, unique, batch_size, progress, "slices")
    per_draw = np.zeros((num_draws, len(scans)), "float64")
    for i, (p, where) in enumerate(zip(probabilities, positions)):
        per_draw[:, i] = np.asarray(p, "float64").reshape(-1)[where].mean(axis=1)
    return ScanPredictions(per_draw=per_draw, mean=per_draw.mean(axis=0))


def ensemble_probabilities(*probabilities, weights=None):
    """The (weighted) mean of several models' probabilities for the same scans.

    Args:
        *probabilities: arrays of one shape, e.g. ``(num_scans,)`` or ``(num_scans, 1)``.
        weights: one weight per model; default equal weights (the authors' mean).

    Returns:
        A float64 array of that shape.

    Example:

    >>> ensemble_probabilities(np.array([0.2, 0.9]), np.array([0.4, 0.5]), np.array([0.6, 0.1]))
    array([0.4, 0.5])
    """
    if not probabilities:
        raise ValueError("Pass at least one array of probabilities. Received: probabilities=()")
    arrays = [np.asarray(p, "float64") for p in probabilities]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(
            f"Every model's probabilities need the same shape. Received: shapes={sorted(shapes)}"
        )
    if weights is None:
        return np.mean(arrays, axis=0)
    weights = np.asarray(weights, "float64")
    if weights.shape != (len(arrays),) or np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError(
            "`weights` needs one non-negative weight per model, not all zero. "
            f"Received: weights={weights.tolist()}"
        )
    return np.tensordot(weights / weights.sum(), np.stack(arrays), axes=1)
