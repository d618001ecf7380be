"""kerasmed.training: per-stage compile settings, staged training, end to end, resumption."""

import os

import keras
import numpy as np
import pytest

from kerasmed.data import BalancedSliceDataset, BalancedVolumeDataset, simulate_head_ct
from kerasmed.models.ich import build_cnn_bilstm, build_slice_cnn, slice_feature_model
from kerasmed.preprocessing import window_hu
from kerasmed.training import PAPER_STAGES, StagedTrainer, compile_stage, train_end_to_end


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


class _CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = None

    def on_train_begin(self, logs=None):
        self.epochs = self.params["epochs"]


@pytest.mark.parametrize("stage", ["train_lstm", "end_to_end"])
def test_stage_defaults_come_from_the_table(monkeypatch, stage, tmp_path):
    """epochs / learning rate left out -> the stage's PAPER_STAGES entry, for the trainer and
    train_end_to_end alike; fit_stage writes the stage's checkpoint."""
    monkeypatch.setitem(PAPER_STAGES, stage, {**PAPER_STAGES[stage], "epochs": 0})
    monkeypatch.setitem(PAPER_STAGES[stage], "learning_rate", 0.25)
    cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5, num_classes=2)
    model = build_cnn_bilstm((32, 32, 1), slice_cnn=slice_feature_model(cnn), lstm_units=3)
    volumes, data = _phantom()
    data = BalancedVolumeDataset(volumes, data.labels, samples_per_epoch=2)
    count = _CountEpochs()
    if stage == "train_lstm":
        trainer = StagedTrainer(cnn, model, checkpoint_dir=str(tmp_path))
        trainer.train_lstm(data, callbacks=[count])
    else:
        train_end_to_end(model, data, checkpoint_dir=str(tmp_path), callbacks=[count])
    assert count.epochs == 0
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.25)
    assert os.path.isdir(tmp_path / stage)
