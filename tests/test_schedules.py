"""Paper 002's optimizer and learning-rate schedule: values, the callback in fit (and resumed
fit), the step-based schedule inside an optimizer and a .keras file, RMSprop's update."""

import os
import tempfile

import keras
import numpy as np
import pytest

from kerasmed.schedules import (
    EpochExponentialDecay,
    fcslstm_optimizer,
    paper_learning_rate,
    paper_lr_callback,
)


def expected_lr(epoch, initial=1e-3, decay=0.97, start=20):
    """0-based epochs 0..start-1 at `initial`, then times `decay` per epoch."""
    return initial * decay ** max(0, epoch - start + 1)


def test_paper_values():
    for epoch in range(20):
        assert paper_learning_rate(epoch, 0.5) == 1e-3  # the current lr is ignored
    assert paper_learning_rate(20) == pytest.approx(0.97e-3, rel=1e-12)
    assert paper_learning_rate(21) == pytest.approx(0.97**2 * 1e-3, rel=1e-12)
    assert paper_learning_rate(119) == pytest.approx(0.97**100 * 1e-3, rel=1e-12)
    assert paper_learning_rate(5, initial=0.1, decay=0.5, start=3) == pytest.approx(0.1 * 0.5**3)
    assert paper_learning_rate(0, start=0) == pytest.approx(0.97e-3)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Received: epoch=-1"):
        paper_learning_rate(-1)
    with pytest.raises(ValueError, match="Received: decay=1.5"):
        paper_learning_rate(0, decay=1.5)
    with pytest.raises(ValueError, match="Received: initial=0"):
        paper_lr_callback(initial=0)
    with pytest.raises(ValueError, match="Received: steps_per_epoch=0"):
        EpochExponentialDecay(steps_per_epoch=0)


def tiny_model(optimizer):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer, "mse")
    return model


def test_callback_in_fit_and_resumed():
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    model = tiny_model(fcslstm_optimizer())
    callback = paper_lr_callback(initial=1e-3, decay=0.9, start=3)
    history = model.fit(x, y, epochs=6, batch_size=4, verbose=0, callbacks=[callback])
    expected = [expected_lr(e, decay=0.9, start=3) for e in range(6)]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-6)
    # resuming at epoch 6 continues the decay (the schedule depends on the epoch only)
    history = model.fit(
        x, y, epochs=8, initial_epoch=6, batch_size=4, verbose=0, callbacks=[callback]
    )
    np.testing.assert_allclose(
        history.history["learning_rate"],
        [expected_lr(6, decay=0.9, start=3), expected_lr(7, decay=0.9, start=3)],
        rtol=1e-6,
    )


def test_epoch_exponential_decay_values_and_config():
    schedule = EpochExponentialDecay(1e-3, steps_per_epoch=10)
    for step in (0, 9, 199, 200, 209, 210, 1000):
        assert float(schedule(step)) == pytest.approx(expected_lr(step // 10), rel=1e-5)  # float32
    restored = EpochExponentialDecay.from_config(schedule.get_config())
    assert restored.get_config() == schedule.get_config()


def test_schedule_in_optimizer_and_keras_file():
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    schedule = EpochExponentialDecay(1e-2, steps_per_epoch=2, decay_rate=0.5, start_epoch=1)
    model = tiny_model(fcslstm_optimizer(schedule))
    model.fit(x, y, epochs=3, batch_size=2, verbose=0)  # 6 steps
    assert int(model.optimizer.iterations) == 6
    # the rate of the next step (epoch 3): 1e-2 * 0.5 ** 3
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-2 * 0.5**3, rel=1e-6)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    loaded_schedule = loaded.optimizer._learning_rate
    assert isinstance(loaded_schedule, EpochExponentialDecay)
    assert loaded_schedule.get_config() == schedule.get_config()
    assert loaded.optimizer.rho == pytest.approx(0.95)


def test_fcslstm_optimizer_rmsprop_update():
    """Two RMSprop steps with rho = 0.95 against NumPy: v = ρv + (1-ρ)g², w -= lr g/√(v+ε)."""
    optimizer = fcslstm_optimizer()
    assert optimizer.rho == pytest.approx(0.95) and optimizer.epsilon == pytest.approx(1e-8)
    w = keras.Variable(np.array([1.0, -2.0, 0.5], "float32"))
    w_np, v_np = np.array([1.0, -2.0, 0.5]), np.zeros(3)
    for g in (np.array([0.1, -0.3, 2.0]), np.array([0.2, 0.1, -1.0])):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), w)])
        v_np = 0.95 * v_np + 0.05 * g**2
        w_np = w_np - 1e-3 * g / np.sqrt(v_np + 1e-8)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(w), w_np, rtol=1e-5)
