"""Data-parallel training on two virtual CPU devices gives the one-device result.

The device count must be fixed before the backend starts, so each backend's cases run in one
subprocess (`_CASES`; ~2 min on the shared 2-core machine). The JAX case runs in the suite's jax run, the TensorFlow case in
its tensorflow run once that works (see the comment below); torch checks the message.
"""

import json
import os
import subprocess
import sys

import keras
import pytest

from kerasmed.distribute import distribution_scope

_CASES = r"""
import json, os, sys
backend = sys.argv[1]
os.environ["KERAS_BACKEND"] = backend
if backend == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
else:
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from kerasmed.distribute import distribution_scope
from kerasmed.experiments import get_config
from kerasmed.experiments import ich
from kerasmed.models.fcslstm import build_fcslstm
from kerasmed.models.longitudinal import build_tlstm_model

ICH = dict(slice_size=32, base_filters=2, feature_dim=4, lstm_units=3)


def inputs_for(model, batch=4, steps=3):
    rng = np.random.default_rng(0)
    arrays = []
    specs = list(model.input.values()) if isinstance(model.input, dict) else model.inputs
    for spec in specs:
        shape = [batch] + [steps if d is None else d for d in spec.shape[1:]]
        if "bool" in str(spec.dtype):
            arrays.append(np.ones(shape, bool))
        else:
            arrays.append(rng.uniform(size=shape).astype("float32"))
    if isinstance(model.input, dict):
        return dict(zip(model.input, arrays))
    return arrays


def builders():
    def tlstm():
        return build_tlstm_model(num_labels=3, units=4, feature_dim=5)
    def ich_model():
        return ich.build_models(get_config("ich", "quick", **ICH))[1]
    def ich_remat():
        config = get_config("ich", "quick", slice_chunk=2, remat=True, **ICH)
        return ich.build_models(config)[1]
    def fcslstm():
        return build_fcslstm((2, 16, 16, 1), 3, width_divisor=16, fuse_level=2)
    return {"tlstm (TimeModulatedLSTM)": tlstm, "ich remat+chunking": ich_remat,
            "fcslstm (StructuredConvLSTM2D)": fcslstm}


def train(build, distribute):
    keras.utils.set_random_seed(0)
    with distribution_scope(distribute):
        model = build()
        x = inputs_for(model)
        y = np.random.default_rng(1).uniform(size=(4, *model.output_shape[1:])).astype("float32")
        model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=False)
        losses = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0).history["loss"]
        return losses, [np.asarray(w) for w in model.get_weights()]


def staged(distribute):
    keras.utils.set_random_seed(0)
    config = get_config("ich", "quick", **ICH)
    with distribution_scope(distribute):
        cnn, model = ich.build_models(config)
        trainer = ich.StagedTrainer(cnn, model, jit_compile=False)
        rng = np.random.default_rng(2)
        slices = rng.uniform(size=(4, 32, 32, 1)).astype("float32")
        pre = trainer.pretrain_cnn((slices, np.eye(2)[[0, 1, 0, 1]].astype("float32")), epochs=2)
        volumes = (rng.uniform(size=(4, 3, 32, 32, 1)).astype("float32"), np.ones((4, 3), bool))
        lstm = trainer.train_lstm((volumes, np.eye(2)[[1, 0, 0, 1]].astype("float32")), epochs=2)
        return pre.history["loss"] + lstm.history["loss"], [np.asarray(w) for w in model.get_weights()]


devices = keras.distribution.list_devices()
out = {"devices": devices, "cases": {}}
cases = {n: (lambda d, b=b: train(b, d)) for n, b in builders().items()}
for name, case in cases.items():
    one, two = case(None), case("data-parallel")
    out["cases"][name] = {
        "loss_1": one[0], "loss_2": two[0],
        "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(one[1], two[1])),
        "max_weight": max(float(np.abs(a).max()) for a in one[1]),
    }
print("RESULT " + json.dumps(out))
"""


def _run_cases(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", _CASES, backend], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


# TensorFlow is not parametrized yet: under tf.distribute.MirroredStrategy, fit of these models
# (all take a bool mask input) fails with "AddN ... bool" (open; see kerasmed.distribute).
@pytest.mark.parametrize("backend", ["jax"])
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="runs once, in the jax suite run")
def test_two_devices_train_like_one(backend):
    result = _run_cases(backend)
    assert len(result["devices"]) == 2
    assert len(result["cases"]) == 3
    for name, case in result["cases"].items():
        # Two devices sum the gradient of each half batch and then add the halves: float32
        # addition in another order, a few ulps per step (~1e-7 relative), grown over a few
        # SGD steps through LSTMs; 1e-5 relative is far below any real difference.
        assert case["loss_2"] == pytest.approx(case["loss_1"], rel=1e-5, abs=1e-6), name
        assert case["max_weight_diff"] <= 1e-5 * max(1.0, case["max_weight"]), name


def test_torch_and_unknown_strategies_say_what_is_supported():
    with pytest.raises(ValueError, match="Received: distribute='model-parallel'"):
        with distribution_scope("model-parallel"):
            pass
    if keras.backend.backend() == "torch":
        with pytest.raises(ValueError, match="DistributedDataParallel"):
            with distribution_scope("data-parallel"):
                pass
    with distribution_scope(None) as scope:
        assert scope is None
