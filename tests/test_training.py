"""kerasmed.training: balanced samplers, per-stage compile settings, staged training, resumption."""

import os

import keras
import numpy as np
import pytest

from kerasmed.data import simulate_head_ct
from kerasmed.models.ich import build_cnn_bilstm, build_slice_cnn, slice_feature_model
from kerasmed.preprocessing import window_hu
from kerasmed.training import (
    PAPER_STAGES,
    BalancedSliceDataset,
    BalancedVolumeDataset,
    KeepBestWeights,
    StagedTrainer,
    compile_stage,
    train_end_to_end,
)


def _coded_volumes():
    """Slice k of volume v holds the value 100 v + k everywhere (to identify a drawn slice)."""
    lengths, labels = [5, 4, 6, 3], [1, 0, 1, 0]
    volumes = [
        np.stack([np.full((4, 4), 100.0 * v + k) for k in range(n)]) for v, n in enumerate(lengths)
    ]
    slice_labels = [
        np.array([0, 1, 1, 0, 0]),
        np.zeros(4),
        np.array([0, 0, 0, 1, 1, 1]),
        np.zeros(3),
    ]
    return volumes, slice_labels, labels


def test_balanced_slice_dataset_draws_equal_classes_from_allowed_slices():
    volumes, slice_labels, labels = _coded_volumes()
    data = BalancedSliceDataset(
        volumes, slice_labels, labels, batch_size=10, steps_per_epoch=3, seed=1
    )
    allowed = {1: {1, 2, 203, 204, 205}, 0: {100, 101, 102, 103, 300, 301, 302}}
    assert len(data) == 3
    for index in range(len(data)):
        x, y = data[index]
        assert x.shape == (10, 4, 4, 1) and x.dtype == np.float32 and y.shape == (10, 2)
        np.testing.assert_array_equal(y.sum(axis=0), [5, 5])  # as many positives as negatives
        for image, target in zip(x, y):
            code = int(image[0, 0, 0])
            assert np.all(image == code)
            assert code in allowed[int(target[1])]  # negatives only from negative volumes
    again = BalancedSliceDataset(
        volumes, slice_labels, labels, batch_size=10, steps_per_epoch=3, seed=1
    )
    np.testing.assert_array_equal(again[2][0], data[2][0])
    data.on_epoch_end()
    assert not np.array_equal(again[2][0], data[2][0])
    shifted = BalancedSliceDataset(
        volumes, slice_labels, labels, batch_size=4, augment=lambda image, rng: image + 1000.0
    )
    assert shifted[0][0].min() >= 1000.0
    with pytest.raises(ValueError, match=r"Received: volume_labels\[2\]=0"):
        BalancedSliceDataset(volumes, slice_labels, [1, 0, 0, 0], batch_size=4)


def test_balanced_volume_dataset_balance_padding_and_order():
    volumes = [np.full((n, 4, 4), float(i)) for i, n in enumerate([3, 5, 4, 6, 2])]
    labels = [1, 0, 0, 0, 0]  # one positive among five
    data = BalancedVolumeDataset(volumes, labels, samples_per_epoch=10, seed=2)
    drawn = [data[i] for i in range(len(data))]
    assert len(drawn) == 10
    assert sum(int(y[0, 1]) for _, y in drawn) == 5
    for x, y in drawn:
        index = int(x[0, 0, 0, 0, 0])
        assert x.shape == (1, len(volumes[index]), 4, 4, 1) and y[0, 1] == labels[index]
    padded = BalancedVolumeDataset(volumes, labels, batch_size=2, pad_multiple=4, shuffle=False)
    (x, mask), y = padded[1]  # volumes 2 and 3: 4 and 6 slices, padded to 8
    assert x.shape == (2, 8, 4, 4, 1)
    np.testing.assert_array_equal(mask.sum(axis=1), [4, 6])
    np.testing.assert_array_equal(y[:, 1], [0, 0])
    assert len(padded) == 3
    # Keras on TensorFlow fixes the dimensions equal in the first two batches: they differ
    for seed in range(5):
        data = BalancedVolumeDataset(volumes, labels, samples_per_epoch=6, seed=seed)
        assert data[0][0].shape[1] != data[1][0].shape[1]


@pytest.mark.parametrize("stage", sorted(PAPER_STAGES))
def test_compile_stage_uses_the_paper_settings(stage):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    compile_stage(model, stage)
    expected = {"pretrain_cnn": ("Adam", 1e-4), "train_lstm": ("RMSprop", 1e-3),
                "finetune": ("RMSprop", 1e-4), "end_to_end": ("RMSprop", 1e-4)}[stage]  # fmt: skip
    assert type(model.optimizer).__name__ == expected[0]
    np.testing.assert_allclose(float(model.optimizer.learning_rate), expected[1], rtol=1e-6)
    compile_stage(model, stage, learning_rate=0.5)
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.5)
    with pytest.raises(ValueError, match="Received: stage='warmup'"):
        compile_stage(model, "warmup")


def _phantom():
    # one slice count: a new count means a new compilation on JAX (variable N: test_ich_models)
    data = simulate_head_ct(6, slice_size=32, min_slices=8, max_slices=8, seed=4)
    return [window_hu(v) for v in data.volumes], data


def _snapshot(layers):
    return [np.array(keras.ops.convert_to_numpy(w)) for w in layers]


def test_staged_training_freezes_and_recompiles(tmp_path):
    volumes, data = _phantom()
    cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5, num_classes=2)
    model = build_cnn_bilstm(
        (32, 32, 1), slice_cnn=slice_feature_model(cnn), lstm_units=3, slice_chunk=4, remat=True
    )
    trainer = StagedTrainer(cnn, model, checkpoint_dir=str(tmp_path))
    shared = [w for w in cnn.weights if "head" not in w.path]
    lstm = model.get_layer("ich_bilstm1").weights

    before = _snapshot(cnn.weights)
    slices = BalancedSliceDataset(
        volumes, data.slice_labels, data.labels, batch_size=6, steps_per_epoch=2
    )
    trainer.pretrain_cnn(slices, epochs=1)
    assert type(cnn.optimizer).__name__ == "Adam"
    np.testing.assert_allclose(float(cnn.optimizer.learning_rate), 1e-4, rtol=1e-6)
    assert all(not np.array_equal(a, b) for a, b in zip(before, _snapshot(cnn.weights)))

    volumes_data = BalancedVolumeDataset(volumes, data.labels, samples_per_epoch=2)
    cnn_before, lstm_before = _snapshot(shared), _snapshot(lstm)
    history = trainer.train_lstm(volumes_data, epochs=1)
    assert not cnn.trainable and model.trainable_weights and "auc" in history.history
    assert type(model.optimizer).__name__ == "RMSprop"
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 1e-3, rtol=1e-6)
    for a, b in zip(cnn_before, _snapshot(shared)):
        np.testing.assert_array_equal(a, b)  # frozen CNN
    assert all(not np.array_equal(a, b) for a, b in zip(lstm_before, _snapshot(lstm)))

    cnn_before = _snapshot(shared)
    trainer.finetune(volumes_data, epochs=1)
    assert cnn.trainable
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 1e-4, rtol=1e-6)
    changed = [not np.array_equal(a, b) for a, b in zip(cnn_before, _snapshot(shared))]
    assert all(changed)  # every conv and dense layer of the CNN moved end to end
    for stage in ("pretrain_cnn", "train_lstm", "finetune"):
        assert os.path.exists(tmp_path / stage / "model.keras")
    assert set(trainer.histories) == {"pretrain_cnn", "train_lstm", "finetune"}


def test_end_to_end_from_scratch_unfreezes_everything():
    model = build_cnn_bilstm((32, 32, 1), lstm_units=3, base_filters=2, feature_dim=5)
    cnn = model.get_layer("ich_slices").slice_model
    cnn.get_layer("ich_cnn_conv1").trainable = False  # a frozen layer deep inside
    volumes, data = _phantom()
    data = BalancedVolumeDataset(volumes, data.labels, samples_per_epoch=2)
    # epochs=0: the fit machinery runs without a (slow to compile) step; the staged test trains
    history = train_end_to_end(model, data, epochs=0)
    assert history.history == {}
    assert cnn.get_layer("ich_cnn_conv1").trainable
    assert len(model.trainable_weights) == len(model.weights)
    assert type(model.optimizer).__name__ == "RMSprop"
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 1e-4, rtol=1e-6)
    with pytest.raises(ValueError, match="no shared weights"):
        StagedTrainer(
            build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5, num_classes=2), model
        )


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch, self.weights = at_epoch, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            self.weights = _snapshot(self.model.weights)
            raise RuntimeError("power cut")


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs, self.start_weights, self.start_iterations = [], None, None

    def on_train_begin(self, logs=None):
        self.start_weights = _snapshot(self.model.weights)
        self.start_iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_interrupted_stage_resumes_from_the_saved_epoch(tmp_path):
    volumes, data = _phantom()
    slices = BalancedSliceDataset(
        volumes, data.slice_labels, data.labels, batch_size=4, steps_per_epoch=2
    )
    cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5, num_classes=2)
    model = build_cnn_bilstm((32, 32, 1), slice_cnn=slice_feature_model(cnn), lstm_units=3)
    interrupt = _Interrupt(at_epoch=1)
    with pytest.raises(RuntimeError, match="power cut"):
        StagedTrainer(cnn, model, checkpoint_dir=str(tmp_path)).pretrain_cnn(
            slices, epochs=4, callbacks=[interrupt]
        )
    assert os.path.exists(tmp_path / "pretrain_cnn" / "backup")
    keras.utils.set_random_seed(9)  # a fresh process would start from other weights
    cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5, num_classes=2)
    model = build_cnn_bilstm((32, 32, 1), slice_cnn=slice_feature_model(cnn), lstm_units=3)
    recorder = _Recorder()
    history = StagedTrainer(cnn, model, checkpoint_dir=str(tmp_path)).pretrain_cnn(
        slices, epochs=4, callbacks=[recorder]
    )
    assert recorder.epochs == [2, 3] and len(history.history["loss"]) == 2
    assert recorder.start_iterations == 4  # 2 epochs x 2 steps, optimizer state restored
    for saved, restored in zip(interrupt.weights, recorder.start_weights):
        np.testing.assert_array_equal(saved, restored)
    assert not os.path.exists(tmp_path / "pretrain_cnn" / "backup")  # removed once finished


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
