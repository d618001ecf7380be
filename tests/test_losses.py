"""Class weights and the weighted, sparsely labelled cross-entropy of paper 002: NumPy reference,
hand-worked values, ignored pixels (no effect, zero gradient), serialization, model.fit."""

import os
import tempfile
import tracemalloc

import keras
import numpy as np
import pytest
import sklearn.utils.class_weight

import kerasmed.losses
from kerasmed.losses import WeightedCategoricalCrossentropy, class_weights_from_labels

B, T, H, W, K = 2, 3, 4, 5, 4
EPSILON = 1e-7  # keras.config.epsilon()


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# ----------------------------------------------------------------------- NumPy reference
def reference_loss(
    y_true, y_pred, class_weights, ignore_label=-1, from_logits=False, normalization="weights"
):
    """sum_p w[y_p] (-log q_p[y_p]) / (sum_p w[y_p] or #labelled), and the per-sample values."""
    y_true = np.asarray(y_true)
    y_pred = np.float64(y_pred)
    valid = np.ones(y_true.shape, bool) if ignore_label is None else y_true != ignore_label
    labels = np.where(valid, y_true, 0)
    if from_logits:
        shifted = y_pred - y_pred.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    else:
        probs = y_pred / y_pred.sum(-1, keepdims=True)
        log_probs = np.log(np.clip(probs, EPSILON, 1 - EPSILON))
    cross_entropy = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    weights = np.asarray(class_weights, np.float64)[labels] * valid
    terms = weights * cross_entropy
    normaliser = weights.sum() if normalization == "weights" else valid.sum()
    normaliser = normaliser if normaliser > 0 else 1.0
    per_sample = terms.reshape(len(terms), -1).sum(1) * len(terms) / normaliser
    return terms.sum() / normaliser, per_sample


@pytest.fixture
def batch(rng):
    y_true = rng.integers(0, K, size=(B, T, H, W))
    y_true[:, 1] = -1  # an unlabelled time point
    y_true[0, 0, :2] = -1  # and some unlabelled pixels
    probs = rng.dirichlet(np.ones(K), size=(B, T, H, W)).astype("float32")
    return y_true, probs


def value_and_grad(fn, x):
    """(fn(x), d fn / dx) with the active backend's autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return to_numpy(value), to_numpy(tape.gradient(value, x))
    if backend == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(x)
        return np.asarray(value), np.asarray(grad)
    import torch

    x = torch.tensor(x, requires_grad=True)
    value = fn(x)
    value.backward()
    return value.detach().numpy(), x.grad.numpy()


# ---------------------------------------------------------------- class_weights_from_labels
def test_class_weights_hand_worked():
    # 6 labelled pixels: four of class 0, two of class 1 -> 6/(2*4), 6/(2*2)
    labels = [[0, 0, 0, 1], [-1, -1, 0, 1]]
    np.testing.assert_allclose(class_weights_from_labels(labels, 2), [0.75, 1.5])


def test_class_weights_equal_sklearn_balanced(rng):
    labels = rng.choice(4, size=(3, 5, 8, 8), p=[0.7, 0.1, 0.15, 0.05])
    labels[0, 1] = -1
    weights = class_weights_from_labels(labels, 4)
    kept = labels[labels >= 0]
    expected = sklearn.utils.class_weight.compute_class_weight(
        "balanced", classes=np.arange(4), y=kept
    )
    np.testing.assert_allclose(weights, expected)
    counts = np.bincount(kept, minlength=4)
    assert np.isclose((counts * weights).sum(), kept.size)  # mean weight per pixel is 1
    assert np.argmax(weights) == 3 and np.argmin(weights) == 0  # rarest class weighs most


def test_class_weights_count_a_large_set_chunk_by_chunk(rng, monkeypatch):
    # A memory-mapped int8 label set is counted in chunks (never copied whole to int64):
    # chunks of 7 pixels, across which the counts and the out-of-range values add up.
    monkeypatch.setattr(kerasmed.losses, "_COUNT_CHUNK", 7)
    labels = rng.choice(np.array([-1, 0, 1, 2], np.int8), size=(4, 5, 6))
    kept = labels[labels >= 0]
    expected = sklearn.utils.class_weight.compute_class_weight(
        "balanced", classes=np.arange(3), y=kept
    )
    np.testing.assert_allclose(class_weights_from_labels(labels, 3), expected)
    labels.flat[0], labels.flat[-1] = 5, 9  # in the first and the last chunk
    with pytest.raises(ValueError, match=r"Received: labels values \[5, 9\]"):
        class_weights_from_labels(labels, 3)


def test_class_weights_never_copy_the_labels_whole(monkeypatch):
    # 4 M int8 labels (4 MB): a whole int64 copy would allocate 32 MB; by chunks of 64 K
    # the largest allocation is a chunk's.
    monkeypatch.setattr(kerasmed.losses, "_COUNT_CHUNK", 2**16)
    labels = np.resize(np.array([0, 1, 2, -1], np.int8), 2**22)
    tracemalloc.start()
    try:
        weights = class_weights_from_labels(labels, 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(weights, [1.0, 1.0, 1.0])
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MB traced"


def test_class_weights_ignore_none_and_errors():
    np.testing.assert_allclose(class_weights_from_labels([0, 1, 1, 1], 2, None), [2.0, 2 / 3])
    with pytest.raises(ValueError, match="classes \\[2\\]"):
        class_weights_from_labels([0, 1, 1, -1], 3)  # class 2 absent
    with pytest.raises(ValueError, match="ignore_label=None"):
        class_weights_from_labels([0, 1, -1], 2, ignore_label=None)
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        class_weights_from_labels([0], 0)
    with pytest.raises(ValueError, match="integer class indices"):
        class_weights_from_labels([0.5, 1.0], 2)


# --------------------------------------------------------------------- the loss's values
def test_hand_worked_value():
    # pixel 1: label 0, q = 0.8 (weight 1); pixel 2: label 1, q = 0.25 (weight 3); pixel 3 ignored
    y_true = np.array([[0, 1, -1]])
    y_pred = np.array([[[0.8, 0.2], [0.75, 0.25], [0.01, 0.99]]], "float32")
    loss = WeightedCategoricalCrossentropy([1.0, 3.0])
    expected = (-np.log(0.8) - 3 * np.log(0.25)) / (1 + 3)
    np.testing.assert_allclose(to_numpy(loss(y_true, y_pred)), expected, rtol=1e-6)
    by_pixels = WeightedCategoricalCrossentropy([1.0, 3.0], normalization="labelled")
    np.testing.assert_allclose(to_numpy(by_pixels(y_true, y_pred)), 2 * expected, rtol=1e-6)


@pytest.mark.parametrize("normalization", ["weights", "labelled"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_equals_numpy_reference(batch, rng, normalization, from_logits):
    y_true, probs = batch
    y_pred = rng.normal(size=probs.shape).astype("float32") if from_logits else probs
    weights = [0.5, 1.0, 2.0, 4.0]
    expected, per_sample = reference_loss(
        y_true, y_pred, weights, from_logits=from_logits, normalization=normalization
    )
    kwargs = {"from_logits": from_logits, "normalization": normalization}
    loss = WeightedCategoricalCrossentropy(weights, **kwargs)
    np.testing.assert_allclose(to_numpy(loss(y_true, y_pred)), expected, rtol=1e-5)
    no_reduction = WeightedCategoricalCrossentropy(weights, reduction="none", **kwargs)
    np.testing.assert_allclose(to_numpy(no_reduction(y_true, y_pred)), per_sample, rtol=1e-5)
    total = WeightedCategoricalCrossentropy(weights, reduction="sum", **kwargs)
    np.testing.assert_allclose(to_numpy(total(y_true, y_pred)), B * expected, rtol=1e-5)


def test_unweighted_equals_keras_sparse_crossentropy(batch, rng):
    """Without weights and without unlabelled pixels it is Keras's sparse cross-entropy."""
    _, probs = batch
    y_true = rng.integers(0, K, size=(B, T, H, W))
    ours = WeightedCategoricalCrossentropy(ignore_label=None)(y_true, probs)
    keras_loss = keras.losses.SparseCategoricalCrossentropy()(y_true, probs)
    np.testing.assert_allclose(to_numpy(ours), to_numpy(keras_loss), rtol=1e-5)
    ones = WeightedCategoricalCrossentropy([1.0] * K)(y_true[..., None].astype("float32"), probs)
    np.testing.assert_allclose(to_numpy(ones), to_numpy(keras_loss), rtol=1e-5)


def test_ignored_pixels_have_no_effect_and_zero_gradient(batch, rng):
    y_true, _ = batch
    logits = rng.normal(size=y_true.shape + (K,)).astype("float32")
    loss = WeightedCategoricalCrossentropy([0.5, 1.0, 2.0, 4.0], from_logits=True)
    value, grad = value_and_grad(lambda x: loss(y_true, x), logits)
    ignored = y_true == -1
    assert ignored.sum() == B * H * W + 2 * W
    np.testing.assert_array_equal(grad[ignored], 0.0)
    assert np.abs(grad[~ignored]).min() > 0
    # gradient of the labelled pixels: w_y (softmax - onehot) / sum of weights (NumPy)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = np.where(ignored, 0, y_true)
    w = np.array([0.5, 1.0, 2.0, 4.0])[labels] * ~ignored
    expected = w[..., None] * (probs - np.eye(K)[labels]) / w.sum()
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    # changing the predictions of ignored pixels changes nothing
    changed = np.where(ignored[..., None], rng.normal(size=logits.shape) * 10, logits)
    np.testing.assert_allclose(to_numpy(loss(y_true, changed.astype("float32"))), value, rtol=1e-6)


def test_all_pixels_ignored_gives_zero(batch):
    _, probs = batch
    y_true = -np.ones((B, T, H, W))
    assert float(to_numpy(WeightedCategoricalCrossentropy([1.0] * K)(y_true, probs))) == 0.0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Received: class_weights"):
        WeightedCategoricalCrossentropy([1.0, -1.0])
    with pytest.raises(ValueError, match="Received: normalization='mean'"):
        WeightedCategoricalCrossentropy(normalization="mean")
    with pytest.raises(ValueError, match="3 classes"):
        WeightedCategoricalCrossentropy([1.0, 2.0])(np.zeros((1, 2, 2)), np.ones((1, 2, 2, 3)))
    with pytest.raises(ValueError, match="y_true.shape"):
        WeightedCategoricalCrossentropy()(np.zeros((1, 2)), np.ones((1, 2, 2, 3)))


# --------------------------------------------------------------- serialization and fit
def test_serialize_deserialize(batch):
    y_true, probs = batch
    loss = WeightedCategoricalCrossentropy(
        [0.5, 1.0, 2.0, 4.0], ignore_label=-1, normalization="labelled", name="wce"
    )
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, WeightedCategoricalCrossentropy)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(
        to_numpy(restored(y_true, probs)), to_numpy(loss(y_true, probs)), rtol=1e-7
    )


def make_model():
    """Per-pixel softmax over a (T, H, W, 2) sequence: a 1x1 convolution at every time point,
    behind a Masking layer (all-zero pixels are padding: their output carries a Keras mask)."""
    inputs = keras.Input((T, H, W, 2))
    masked = keras.layers.Masking(0.0)(inputs)
    outputs = keras.layers.TimeDistributed(keras.layers.Conv2D(K, 1, activation="softmax"))(masked)
    return keras.Model(inputs, outputs)


def test_keras_mask_marks_pixels_unlabelled(batch):
    """A (B, T) Keras mask on the predictions acts as ignore_label on the masked time steps."""
    from keras.src.backend import set_keras_mask

    y_true, probs = batch
    y_pred = keras.ops.convert_to_tensor(probs)
    time_mask = np.array([[True, True, False], [True, True, True]])
    set_keras_mask(y_pred, keras.ops.convert_to_tensor(time_mask))
    loss = WeightedCategoricalCrossentropy([0.5, 1.0, 2.0, 4.0])
    masked_labels = np.where(time_mask[:, :, None, None], y_true, -1)
    expected, _ = reference_loss(masked_labels, probs, [0.5, 1.0, 2.0, 4.0])
    assert not np.isclose(expected, reference_loss(y_true, probs, [0.5, 1.0, 2.0, 4.0])[0])
    np.testing.assert_allclose(to_numpy(loss(y_true, y_pred)), expected, rtol=1e-5)


def test_fit_and_keras_file(batch, rng):
    y_true, _ = batch
    # an easy signal: channel 0 is the label, so the model can learn it
    x = np.stack([y_true.astype("float32"), rng.normal(size=y_true.shape)], -1).astype("float32")
    x[1, 2] = 0.0  # a padded time step: masked, so its labels do not count
    weights = class_weights_from_labels(y_true, K).tolist()
    model = make_model()
    model.compile(keras.optimizers.Adam(0.05), WeightedCategoricalCrossentropy(weights))

    padded = y_true.copy()
    padded[1, 2] = -1
    probs = model.predict(x, verbose=0)
    expected, _ = reference_loss(padded, probs, weights)
    assert not np.isclose(expected, reference_loss(y_true, probs, weights)[0])
    history = model.fit(x, y_true, batch_size=B, epochs=10, verbose=0)
    losses = history.history["loss"]
    # one batch per epoch: the first epoch's loss is the loss of the initial weights
    np.testing.assert_allclose(losses[0], expected, rtol=1e-5)
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0]

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, WeightedCategoricalCrossentropy)
    assert loaded.loss.get_config() == model.loss.get_config()
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        to_numpy(loaded.loss(y_true, probs)), reference_loss(y_true, probs, weights)[0], rtol=1e-5
    )
