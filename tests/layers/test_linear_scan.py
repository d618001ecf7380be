"""Tests of the linear-recurrence scans (the tLSTM's cell-state recurrence) against a NumPy loop."""

import keras
import numpy as np
import pytest

from kerasmed import backend_policy
from kerasmed.layers.linear_scan import (
    blocked_scan,
    linear_scan,
    sequential_scan,
    states_before_dynamic,
)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def _numpy_scan(a, b, h0):
    h, out = h0, []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return np.stack(out, axis=1)


def test_linear_scans_match_a_float64_loop(rng):
    """Both solvers of h_t = a_t h_{t-1} + b_t (each backend's choice and the other one)."""
    steps = 13  # chunks of 4 or 8, the last one padded
    a = rng.uniform(0.0, 1.0, size=(2, steps, 5)) ** 3
    a[:, 3:7] = 1e-30  # products underflow: no division/logarithm may break on them
    a[:, 9] = 1.0
    b = rng.normal(size=(2, steps, 5))
    b[:, 9] = 0.0
    h0 = rng.normal(size=(2, 5))
    args = [keras.ops.convert_to_tensor(v.astype("float32")) for v in (a, b, h0)]
    expected = _numpy_scan(a, b, h0)
    np.testing.assert_allclose(to_numpy(sequential_scan(*args)), expected, atol=1e-5)
    np.testing.assert_allclose(to_numpy(blocked_scan(*args)), expected, atol=1e-5)
    # the loop over chunks of unknown number (reached on TensorFlow), given states before each step
    before = np.concatenate([h0[:, None], expected[:, :-1]], axis=1)
    np.testing.assert_allclose(
        to_numpy(states_before_dynamic(args[2], args[0], args[1])), before, atol=1e-5
    )
    # ``a`` broadcast over units (the masked-output fill), chunks of 8
    got = blocked_scan(args[0][..., :1], *args[1:], chunk=8)
    np.testing.assert_allclose(to_numpy(got), _numpy_scan(a[..., :1], b, h0), atol=1e-5)


@pytest.mark.parametrize("method", [None, "sequential", "blocked"])
def test_linear_scan_methods_agree(rng, method):
    a = rng.uniform(0.2, 1.0, size=(3, 9, 4)).astype("float32")
    b = rng.normal(size=(3, 9, 4)).astype("float32")
    h0 = rng.normal(size=(3, 4)).astype("float32")
    got = linear_scan(a, b, h0, method=method)
    np.testing.assert_allclose(to_numpy(got), _numpy_scan(a, b, h0), atol=1e-5)


def test_the_default_method_follows_the_backend_policy():
    expected = (
        "sequential" if keras.backend.backend() == "jax" and backend_policy.on_cpu() else "blocked"
    )
    assert backend_policy.linear_scan_method() == expected


def test_an_unknown_method_is_refused():
    x = np.ones((1, 2, 1), "float32")
    with pytest.raises(ValueError, match="Received: method='fast'"):
        linear_scan(x, x, np.zeros((1, 1), "float32"), method="fast")
