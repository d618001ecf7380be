"""kerasmed.callbacks: KeepBestWeights (stage checkpoints are tested with the staged trainer)."""

import keras
import numpy as np
import pytest

from kerasmed.callbacks import KeepBestWeights


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
