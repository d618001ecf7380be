"""kerasmed.callbacks: KeepBestWeights (stage checkpoints are tested with the staged trainer)."""

import keras
import numpy as np
import pytest

from kerasmed.callbacks import KeepBestWeights, PreciseBatchNorm, ValidationScore


class _RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


@pytest.mark.parametrize("mode, values, best", [("max", [0.5, 0.9, 0.7], 1), ("min", [3, 2, 1], 2)])
def test_keep_best_weights_restores_the_best_epoch(mode, values, best):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    scores = iter(values)

    class Score(keras.callbacks.Callback):  # runs before KeepBestWeights: sets the watched log
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = next(scores)

    record, keep = _RecordWeights(), KeepBestWeights("score", mode=mode)
    x, y = np.ones((8, 2)), np.full((8, 1), 3.0)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[Score(), record, keep])
    assert keep.best_epoch == best and keep.best == values[best]
    for restored, expected in zip(model.get_weights(), record.weights[best]):
        np.testing.assert_array_equal(restored, expected)
    assert not np.array_equal(record.weights[best][0], record.weights[-1][0]) or best == 2


def test_keep_best_weights_errors():
    with pytest.raises(ValueError, match="mode"):
        KeepBestWeights("val_auc", mode="up")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="val_auc"):
        model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0,
                  callbacks=[KeepBestWeights("val_auc", "max")])  # fmt: skip


def test_validation_score_feeds_keep_best_weights():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    scores = iter([0.2, 0.9, 0.5])
    seen = []

    def score(m):
        seen.append(m.get_weights())
        return next(scores)

    best = KeepBestWeights("val_score", mode="max")
    history = model.fit(
        np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0,
        callbacks=[ValidationScore(score, "val_score"), best],
    )  # fmt: skip
    assert history.history["val_score"] == [0.2, 0.9, 0.5] and best.best_epoch == 1
    for restored, kept in zip(model.get_weights(), seen[1]):
        np.testing.assert_allclose(restored, kept)
    with pytest.raises(ValueError, match="score"):
        ValidationScore(0.5)


def test_precise_batch_norm_sets_the_batch_statistics():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization(momentum=0.99)]
    )
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype("float32")
    batch = rng.normal(2.0, 3.0, size=(64, 3)).astype("float32")
    model.fit(
        x, np.zeros((8, 2)), epochs=1, verbose=0, callbacks=[PreciseBatchNorm(lambda e: batch)]
    )
    kernel, bias = model.layers[0].get_weights()
    h = batch @ kernel + bias  # the NumPy statistics of the BN input on that batch
    norm = model.layers[1]
    np.testing.assert_allclose(np.asarray(norm.moving_mean), h.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(norm.moving_variance), h.var(0), rtol=1e-3, atol=1e-4)
    assert norm.momentum == 0.99  # restored
