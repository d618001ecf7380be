"""Class-weighted cross-entropy for per-pixel segmentation with sparse (partial) annotation.

Paper 002 (FCSLSTM) trains with "the weighted cross-entropy loss [...] the weights are inverted
proportionally to the number of pixels in each class in the training dataset", and its data are
sparsely annotated (one labelled slice per 3D volume; in the BRIC split only time points 1, 2, 4
and 5 are labelled for training). As in 3D U-Net, unlabelled pixels get weight 0 in the loss.

- `class_weights_from_labels` computes the inverse-frequency class weights from training labels.
- `WeightedCategoricalCrossentropy` is the loss: sparse integer labels ``(B, [T,] H, W)`` against
  per-pixel class probabilities (or logits) ``(B, [T,] H, W, K)``; pixels whose label equals
  ``ignore_label`` (default -1) carry weight 0 and are left out of the normalisation.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from keras.src import backend as keras_backend
from keras.src.losses.loss import reduce_weighted_values

__all__ = ["class_weights_from_labels", "WeightedCategoricalCrossentropy"]

_COUNT_CHUNK = 2**22  # labels counted per chunk: a memory-mapped label set is never copied whole

_NORMALIZATIONS = ("weights", "labelled")


def class_weights_from_labels(labels, num_classes, ignore_label=-1):
    """Class weights inversely proportional to each class's pixel count in the training labels.

    ``w_c = N / (K * n_c)``, where ``n_c`` is the number of pixels of class ``c``, ``N = sum_c
    n_c`` the number of labelled pixels and ``K = num_classes``. This is scikit-learn's
    ``compute_class_weight("balanced", ...)`` normalisation: every class gets the same total
    weight ``N / K``, and the weights averaged over the labelled *pixels* equal 1
    (``sum_c n_c w_c = N``), so the weighted loss keeps the scale of the unweighted one. With
    balanced classes every weight is 1.

    A class that has no pixel in `labels` has no finite inverse frequency: this raises a
    `ValueError` (pass weights by hand, e.g. 0 for that class, if that is what you want).

    Args:
        labels: integer array of any shape, e.g. ``(S, T, H, W)``, with values in
            ``[0, num_classes)`` or `ignore_label`.
        num_classes: number of classes ``K``.
        ignore_label: label of unannotated pixels, not counted; `None` counts every pixel.

    Returns:
        A ``(num_classes,)`` float64 NumPy array.

    Example:

    >>> class_weights_from_labels([[0, 0, 0, 1], [-1, -1, 0, 1]], num_classes=2).tolist()
    [0.75, 1.5]

    Reference: Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical
    image segmentation", ISBI 2018, Section 2.3.
    """
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive int. Received: num_classes={num_classes}"
        )
    num_classes = int(num_classes)
    labels = np.asarray(labels)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError(
                f"`labels` must hold integer class indices. Received: labels.dtype={labels.dtype}"
            )
    counts, bad = np.zeros(num_classes, dtype="int64"), set()
    flat = labels.reshape(-1)
    for start in range(0, flat.size, _COUNT_CHUNK):  # int64 copies of a chunk, not of the set
        chunk = flat[start : start + _COUNT_CHUNK].astype("int64")
        if ignore_label is not None:
            chunk = chunk[chunk != ignore_label]
        out_of_range = (chunk < 0) | (chunk >= num_classes)
        if out_of_range.any():
            bad.update(np.unique(chunk[out_of_range]).tolist())
            continue
        counts += np.bincount(chunk, minlength=num_classes)
    if bad:
        raise ValueError(
            f"`labels` must be in [0, {num_classes}) or equal to ignore_label={ignore_label}. "
            f"Received: labels values {sorted(bad)[:10]}"
        )
    counts = counts.astype("float64")
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(
            "Every class needs at least one labelled pixel to get an inverse-frequency weight. "
            f"Received: no pixel of classes {missing.tolist()} (counts={counts.astype(int).tolist()})"
        )
    return counts.sum() / (num_classes * counts)


@keras.saving.register_keras_serializable(package="kerasmed")
class WeightedCategoricalCrossentropy(keras.losses.Loss):
    """Per-pixel categorical cross-entropy with class weights and unlabelled pixels ignored.

    For every pixel ``p`` with label ``y_p != ignore_label`` and predicted class probabilities
    ``q_p``, the loss term is ``w[y_p] * (-log q_p[y_p])``; unlabelled pixels contribute nothing
    (weight 0, zero gradient). With the default ``"sum_over_batch_size"`` reduction the loss of
    a batch is

    - ``normalization="weights"`` (default): ``sum_p w[y_p] (-log q_p[y_p]) / sum_p w[y_p]``,
      the weighted mean -- what PyTorch's ``CrossEntropyLoss(weight, ignore_index)`` and Torch7's
      ``ClassNLLCriterion`` (the paper's code was written in Torch) compute;
    - ``normalization="labelled"``: ``sum_p w[y_p] (-log q_p[y_p]) / #labelled pixels``.

    Sums run over every labelled pixel of the whole batch (all samples and time points), so a
    sample with more annotated pixels counts more. A batch with no labelled pixel has loss 0.
    To fit Keras's reduction, `call` returns one value per sample: the sample's weighted sum
    divided by the batch's normaliser and multiplied by the batch size, so that their mean is
    the loss above (the way Keras itself folds masks into ``"sum_over_batch_size"``). A
    ``sample_weight`` must therefore be per sample, shape ``(B,)``.

    Probabilities are handled like ``keras.losses.categorical_crossentropy``: rescaled to sum to
    1 over the last axis and clipped to ``[epsilon, 1 - epsilon]`` before the log.

    A Keras mask carried by `y_pred` (e.g. padded time steps of a sequence model behind a
    ``Masking`` layer), of shape ``(B, T)`` or ``(B, T, H, W)``, marks its masked pixels as
    unlabelled. (Keras would otherwise multiply the per-sample values by the mask; two private
    Keras symbols, ``backend.get_keras_mask`` and ``reduce_weighted_values``, do the folding, so
    the Keras minor version is pinned in ``requirements.txt``.)

    Args:
        class_weights: ``K`` non-negative class weights (e.g. from
            `class_weights_from_labels`), or `None` for all ones (a masked cross-entropy).
        ignore_label: label of unannotated pixels, or `None` if every pixel is labelled.
        from_logits: whether `y_pred` holds logits rather than probabilities.
        normalization: ``"weights"`` or ``"labelled"`` (see above).
        reduction: Keras loss reduction (``"sum_over_batch_size"`` gives the loss above).
        name: name of the loss.
        dtype: dtype of the loss computations (defaults to ``keras.config.floatx()``).

    Call arguments:
        y_true: integer labels ``(B, [T,] H, W)`` (a trailing axis of size 1 is accepted),
            with values in ``[0, K)`` or `ignore_label`. Keras may pass them as floats.
        y_pred: per-pixel class probabilities (softmax output) or logits, ``(B, [T,] H, W, K)``.

    Example:

    >>> loss = WeightedCategoricalCrossentropy(class_weights=[1.0, 3.0])
    >>> y_true = np.array([[[0, 1], [-1, 1]]])  # (B, H, W); -1 = unlabelled
    >>> y_pred = np.full((1, 2, 2, 2), 0.5, "float32")
    >>> round(float(loss(y_true, y_pred)), 4)  # -log(0.5)
    0.6931

    Reference: Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical
    image segmentation", ISBI 2018, Section 2.3 (loss) and Section 3 (sparse labels); Çiçek et
    al., "3D U-Net", MICCAI 2016 (weight 0 for unlabelled voxels).
    """

    def __init__(
        self,
        class_weights=None,
        ignore_label=-1,
        from_logits=False,
        normalization="weights",
        reduction="sum_over_batch_size",
        name="weighted_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if class_weights is not None:
            weights = np.asarray(class_weights, dtype="float64")
            if weights.ndim != 1 or weights.size < 1 or not np.isfinite(weights).all():
                raise ValueError(
                    "`class_weights` must be a 1D sequence of finite numbers. "
                    f"Received: class_weights={class_weights}"
                )
            if (weights < 0).any():
                raise ValueError(
                    f"`class_weights` must be >= 0. Received: class_weights={weights.tolist()}"
                )
            class_weights = [float(w) for w in weights]
        if ignore_label is not None and int(ignore_label) != ignore_label:
            raise ValueError(
                f"`ignore_label` must be an int or None. Received: ignore_label={ignore_label}"
            )
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {_NORMALIZATIONS}. "
                f"Received: normalization={normalization!r}"
            )
        self.class_weights = class_weights
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.from_logits = bool(from_logits)
        self.normalization = normalization

    def __call__(self, y_true, y_pred, sample_weight=None):
        mask = keras_backend.get_keras_mask(y_pred)
        if mask is None:
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        with keras.name_scope(self.name):
            y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
            y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
            losses = self._per_sample_losses(y_true, y_pred, mask)
            return reduce_weighted_values(
                losses, sample_weight=sample_weight, reduction=self.reduction, dtype=self.dtype
            )

    def call(self, y_true, y_pred):
        return self._per_sample_losses(y_true, y_pred)

    def _per_sample_losses(self, y_true, y_pred, mask=None):
        num_classes = y_pred.shape[-1]
        if num_classes is None:
            raise ValueError(
                "The class axis (last) of `y_pred` must have a known size. "
                f"Received: y_pred.shape={y_pred.shape}"
            )
        if self.class_weights is not None and len(self.class_weights) != num_classes:
            raise ValueError(
                f"`y_pred` has {num_classes} classes on its last axis but `class_weights` has "
                f"{len(self.class_weights)}. Received: y_pred.shape={y_pred.shape}"
            )
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if len(y_true.shape) != len(y_pred.shape) - 1:
            raise ValueError(
                "`y_true` must hold one integer label per pixel, with the shape of `y_pred` "
                f"without its class axis. Received: y_true.shape={y_true.shape}, "
                f"y_pred.shape={y_pred.shape}"
            )
        labels = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
        if self.ignore_label is None:
            valid = ops.ones_like(labels, dtype=self.dtype)
            safe_labels = labels
        else:
            is_valid = ops.not_equal(labels, self.ignore_label)
            valid = ops.cast(is_valid, self.dtype)
            safe_labels = ops.where(is_valid, labels, ops.zeros_like(labels))
        if mask is not None:
            mask = ops.cast(mask, self.dtype)
            while len(mask.shape) < len(valid.shape):
                mask = ops.expand_dims(mask, -1)
            valid = valid * mask
        one_hot = ops.one_hot(safe_labels, num_classes, dtype=self.dtype)

        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            probs = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
            epsilon = keras.config.epsilon()
            log_probs = ops.log(ops.clip(probs, epsilon, 1.0 - epsilon))
        cross_entropy = -ops.sum(one_hot * log_probs, axis=-1)

        if self.class_weights is None:
            weights = valid
        else:
            table = ops.convert_to_tensor(self.class_weights, dtype=self.dtype)
            weights = ops.sum(one_hot * table, axis=-1) * valid
        pixel_axes = tuple(range(1, len(cross_entropy.shape)))
        per_sample = ops.sum(weights * cross_entropy, axis=pixel_axes)
        normaliser = ops.sum(weights if self.normalization == "weights" else valid)
        # A batch without labelled pixels has per_sample == 0: divide by 1 instead of 0.
        normaliser = ops.where(normaliser > 0, normaliser, ops.ones_like(normaliser))
        batch_size = ops.cast(ops.shape(per_sample)[0], self.dtype)
        return per_sample * (batch_size / normaliser)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "class_weights": self.class_weights,
                "ignore_label": self.ignore_label,
                "from_logits": self.from_logits,
                "normalization": self.normalization,
                "dtype": self.dtype,
            }
        )
        return config
