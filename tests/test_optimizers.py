"""kerasmed.optimizers.AdamL2 against a NumPy transcription of ``torch.optim.Adam``'s step."""

import os
import tempfile

import keras
import numpy as np
import pytest

from kerasmed.optimizers import AdamL2


def torch_adam_reference(w, gradients, lr, betas=(0.9, 0.999), eps=1e-8, wd=0.0, amsgrad=False):
    """``torch.optim.Adam``'s single-tensor step (torch/optim/adam.py), in float64 NumPy."""
    w = np.array(w, dtype="float64")
    m, v, v_max = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    beta1, beta2 = betas
    for step, grad in enumerate(gradients, start=1):
        grad = np.asarray(grad, "float64")
        if wd != 0:
            grad = grad + wd * w  # grad.add(param, alpha=weight_decay)
        m = m + (grad - m) * (1 - beta1)  # exp_avg.lerp_(grad, 1 - beta1)
        v = v * beta2 + (1 - beta2) * grad * grad  # exp_avg_sq.mul_(beta2).addcmul_(...)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        if amsgrad:
            v_max = np.maximum(v_max, v)
            denom = np.sqrt(v_max) / np.sqrt(bias_correction2) + eps
        else:
            denom = np.sqrt(v) / np.sqrt(bias_correction2) + eps
        w = w - step_size * m / denom  # param.addcdiv_(exp_avg, denom, value=-step_size)
    return w


def _apply(optimizer, w0, gradients):
    variable = keras.Variable(np.asarray(w0, "float32"))
    for grad in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(np.asarray(grad, "float32"))], [variable])
    return keras.ops.convert_to_numpy(variable)


RNG = np.random.default_rng(0)
W0 = RNG.normal(size=(3, 4))
# small and large gradients, so that epsilon's placement matters in the small ones
GRADIENTS = [RNG.normal(scale=s, size=(3, 4)) for s in (1.0, 1e-6, 0.3, 2.0, 1e-7)]


@pytest.mark.parametrize("wd", [0.0, 5e-4, 0.3])
def test_one_update_matches_torch_adam(wd):
    got = _apply(AdamL2(learning_rate=1e-2, weight_decay=wd), W0, GRADIENTS[:1])
    expected = torch_adam_reference(W0, GRADIENTS[:1], lr=1e-2, wd=wd)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_several_updates_match_torch_adam(amsgrad):
    kwargs = dict(lr=3e-2, betas=(0.8, 0.99), eps=1e-8, wd=0.2, amsgrad=amsgrad)
    optimizer = AdamL2(
        learning_rate=3e-2, beta_1=0.8, beta_2=0.99, epsilon=1e-8, weight_decay=0.2,
        amsgrad=amsgrad,
    )  # fmt: skip
    got = _apply(optimizer, W0, GRADIENTS)
    np.testing.assert_allclose(got, torch_adam_reference(W0, GRADIENTS, **kwargs), rtol=1e-5)
    # the test can tell the optimizers apart: Keras's Adam (decoupled decay, epsilon on sqrt(v))
    decoupled = keras.optimizers.Adam(
        learning_rate=3e-2, beta_1=0.8, beta_2=0.99, epsilon=1e-8, weight_decay=0.2,
        amsgrad=amsgrad,
    )  # fmt: skip
    other = _apply(decoupled, W0, GRADIENTS)
    assert np.abs(other - got).max() > 1e-3


def test_matches_torch_itself_when_installed():
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    optimizer = torch.optim.Adam([param], lr=1e-2, weight_decay=5e-2)
    for grad in GRADIENTS:
        param.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    got = _apply(AdamL2(learning_rate=1e-2, weight_decay=5e-2), W0, GRADIENTS)
    np.testing.assert_allclose(got, param.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_excluded_variables_get_no_l2_term():
    optimizer = AdamL2(learning_rate=1e-2, weight_decay=0.5)
    decayed, excluded = keras.Variable(np.ones(2, "float32")), keras.Variable(np.ones(2, "float32"))
    optimizer.exclude_from_weight_decay(var_list=[excluded])
    grads = [keras.ops.convert_to_tensor(np.full(2, g, "float32")) for g in (0.1, 0.1)]
    optimizer.apply(grads, [decayed, excluded])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(decayed), torch_adam_reference(np.ones(2), [[0.1, 0.1]], 1e-2, wd=0.5), rtol=1e-6
    )  # fmt: skip
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(excluded), torch_adam_reference(np.ones(2), [[0.1, 0.1]], 1e-2), rtol=1e-6
    )  # fmt: skip


def test_fit_steps_match_torch_adam_with_analytic_gradients():
    # y = x @ k, loss = mean((x @ k - y)^2): grad = 2 / N * x.T @ (x @ k - y)
    x = RNG.normal(size=(8, 3)).astype("float32")
    y = RNG.normal(size=(8, 1)).astype("float32")
    k0 = RNG.normal(size=(3, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.layers[0].set_weights([k0.astype("float32")])
    model.compile(AdamL2(learning_rate=5e-2, weight_decay=0.1), "mean_squared_error")
    model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0)
    k, m, v = k0.astype("float64"), np.zeros_like(k0), np.zeros_like(k0)
    for step in range(1, 5):
        grad = 2.0 / len(x) * x.T.astype("float64") @ (x @ k - y) + 0.1 * k
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        k = k - 5e-2 / (1 - 0.9**step) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**step) + 1e-8)
    np.testing.assert_allclose(model.layers[0].get_weights()[0], k, rtol=1e-4, atol=1e-6)


def test_config_and_keras_file_round_trip():
    optimizer = AdamL2(learning_rate=3e-4, weight_decay=1e-3, epsilon=1e-6, amsgrad=True)
    config = optimizer.get_config()
    assert config["weight_decay"] == 1e-3 and config["epsilon"] == 1e-6 and config["amsgrad"]
    again = AdamL2.from_config(config)
    assert again.coupled_weight_decay == 1e-3 and again.weight_decay is None
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is AdamL2 and restored.coupled_weight_decay == 1e-3
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer, "mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    assert isinstance(loaded.optimizer, AdamL2)
    assert loaded.optimizer.coupled_weight_decay == 1e-3
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 1


def test_invalid_weight_decay():
    with pytest.raises(ValueError, match="weight_decay=-0.1"):
        AdamL2(weight_decay=-0.1)
