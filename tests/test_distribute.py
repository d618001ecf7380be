"""Data-parallel training on two virtual CPU devices gives the one-device result.

The device count must be fixed before the backend starts, so each group of cases runs in a
subprocess: this file run as a script, ``python tests/test_distribute.py BACKEND CASE...``,
with ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (JAX) or two logical CPU devices
(TensorFlow). Every case trains the same tiny model twice from the same seed and the same
global batch, once on one device and once under ``distribution_scope("data-parallel")``, and
prints the losses, the largest weight difference and the number of replicas that trained.
JAX cases run in the suite's jax run, TensorFlow cases in its tensorflow run; torch checks the
message.

One model per paper that trains end to end: tlstm (`TimeModulatedLSTM`, bool mask), ich
(slice CNN + BiLSTMs, bool mask, with slice chunking and rematerialisation), fcslstm
(`StructuredConvLSTM2D`), the two-step BiLSTM head, xray (small CNN backbone with
BatchNormalization, synchronised by the scope itself on TensorFlow); and the ich staged
training (three stages, each re-compiled).

Tolerance: one device sums the loss gradient of the whole batch in one reduction; two devices
sum each half and then add the halves (an all-reduce), float32 additions in another order,
each a few ulps apart (~1e-7 relative). Two or three SGD steps through LSTMs carry that into
the losses and weights; seen here on both backends: at most 9e-7 relative in a loss
(FCSLSTM, a mean over 2,048 pixels) and 1.2e-7 in a weight. `_RTOL` = 1e-5 leaves a margin
of ten and stays far below what a real difference does (measured on these cases with
TensorFlow): BatchNormalization statistics per half batch (xray without
`synchronize_batch_norm`, which the scope now calls at compile) move the losses by 3.5e-4 to 6.4e-4 relative, the tLSTM's mask
ignored by 3.4e-2.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

_RTOL = 1e-5
_ROOT = Path(__file__).resolve().parents[1]
_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
_TINY_ICH = dict(
    slice_size=32, base_filters=2, feature_dim=4, lstm_units=3, dropout=0.0,
    cnn_initializer="glorot_uniform",
)  # fmt: skip


# ---------------------------------------------------------------- cases (run in the subprocess)


def _configure_two_devices(backend):
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "jax":
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )


def _replicas(model):
    import keras

    if keras.backend.backend() == "jax":
        return len(model.trainable_weights[0].value.sharding.device_set)
    return model.distribute_strategy.num_replicas_in_sync


def _mask(batch, steps):
    import numpy as np

    mask = np.ones((batch, steps), bool)
    mask[1, -1:] = False  # right padding, one sample in each half of the batch
    mask[batch - 1, -2:] = False
    return mask


def _fit(model, x, y, loss="mse", epochs=3):
    import keras
    import numpy as np

    model.compile(keras.optimizers.SGD(0.1), loss)
    history = model.fit(x, y, batch_size=len(y), epochs=epochs, shuffle=False, verbose=0)
    return history.history["loss"], [np.asarray(w) for w in model.get_weights()], model


def _tlstm():
    import numpy as np

    from kerasmed.models.longitudinal import build_tlstm_model

    rng = np.random.default_rng(0)
    model = build_tlstm_model(num_labels=3, units=4, feature_dim=5)
    x = {
        "features": rng.normal(size=(4, 3, 5)).astype("float32"),
        "previous_labels": rng.integers(0, 2, (4, 3, 3)).astype("float32"),
        "time": rng.uniform(size=(4, 3, 1)).astype("float32"),
        "mask": _mask(4, 3),
    }
    return _fit(model, x, rng.integers(0, 2, (4, 3)).astype("float32"))


def _ich_inputs(rng, batch=4, steps=3, size=32):
    import numpy as np

    volumes = rng.uniform(size=(batch, steps, size, size, 1)).astype("float32")
    labels = np.eye(2, dtype="float32")[rng.integers(0, 2, batch)]
    return [volumes, _mask(batch, steps)], labels


def _ich_remat_chunked():
    import numpy as np

    from kerasmed.experiments import get_config, ich

    config = get_config("ich", "quick", slice_chunk=2, remat=True, **_TINY_ICH)
    model = ich.build_models(config)[1]
    x, y = _ich_inputs(np.random.default_rng(0))
    return _fit(model, x, y, "categorical_crossentropy")


def _ich_staged():
    import numpy as np

    from kerasmed.experiments import get_config, ich
    from kerasmed.training import StagedTrainer

    cnn, model = ich.build_models(get_config("ich", "quick", **_TINY_ICH))
    trainer = StagedTrainer(cnn, model)
    rng = np.random.default_rng(0)
    slices = rng.uniform(size=(4, 32, 32, 1)).astype("float32")
    slice_labels = np.eye(2, dtype="float32")[[0, 1, 0, 1]]
    x, y = _ich_inputs(rng)
    fit = dict(epochs=1, batch_size=4, shuffle=False)
    losses = trainer.pretrain_cnn(slices, y=slice_labels, **fit).history["loss"]
    losses += trainer.train_lstm(x, y=y, **fit).history["loss"]
    losses += trainer.finetune(x, y=y, **fit).history["loss"]
    return losses, [np.asarray(w) for w in model.get_weights()], model


def _fcslstm():
    import numpy as np

    from kerasmed.models.fcslstm import build_fcslstm

    rng = np.random.default_rng(0)
    # Uniform initialisers: JAX compiles a truncated normal (he_normal) per kernel shape, ~1 s
    # each on 2 cores; the initialisation is not what is compared here.
    model = build_fcslstm(
        (2, 16, 16, 1), 3, width_divisor=16, fuse_level=2, kernel_initializer="glorot_uniform",
        recurrent_initializer="glorot_uniform",
    )  # fmt: skip
    x = rng.uniform(size=(4, 2, 16, 16, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, (4, 2, 16, 16))]
    return _fit(model, x, y, "categorical_crossentropy", epochs=2)


def _two_step():
    import numpy as np

    from kerasmed.models.two_step import build_two_step_lstm

    rng = np.random.default_rng(0)
    model = build_two_step_lstm(
        sequence_length=4, embedding_dim=6, units=3, num_layers=1, head_units=5, dropout=0.0,
        head_dropout=0.0,
    )  # fmt: skip
    x = rng.normal(size=(4, 4, 6)).astype("float32")
    return _fit(model, x, rng.integers(0, 2, (4, 1)).astype("float32"), "binary_crossentropy")


def _xray():
    import keras
    import numpy as np

    from kerasmed.models.xray import build_inception_classifier

    rng = np.random.default_rng(0)
    model = build_inception_classifier(
        3, (16, 16, 3), weights=None, backbone="small_cnn", dense_units=4, filters=(2, 3),
        feature_dim=4,
    )  # fmt: skip
    x = rng.uniform(0, 255, size=(4, 16, 16, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 1]]
    result = _fit(model, x, y, "categorical_crossentropy")
    # Nothing called here: on TensorFlow the scope's compile synchronised both
    # BatchNormalization layers (all-reduced statistics; per half batch otherwise). JAX (the
    # global batch's statistics already) and one device: left as built.
    synchronized = sum(
        layer.synchronized
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    expected = 2 if _replicas(model) == 2 and keras.backend.backend() == "tensorflow" else 0
    assert synchronized == expected, (synchronized, expected)
    return result


_CASES = {
    "tlstm": _tlstm,
    "ich_remat_chunked": _ich_remat_chunked,
    "ich_staged": _ich_staged,
    "fcslstm": _fcslstm,
    "two_step": _two_step,
    "xray": _xray,
}


def _keras_data_parallel_replicas():
    """Replicas of a model trained under keras.distribution.DataParallel itself."""
    import keras
    import numpy as np

    with keras.distribution.DataParallel(devices=keras.distribution.list_devices()).scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        _fit(model, np.ones((4, 3), "float32"), np.ones((4, 2), "float32"), epochs=1)
        return _replicas(model)


def _main(backend, names):
    _configure_two_devices(backend)
    import keras
    import numpy as np

    from kerasmed.distribute import distribution_scope

    out = {"devices": keras.distribution.list_devices(), "cases": {}}
    for name in names:
        start = time.perf_counter()
        runs = []
        for distribute in (None, "data-parallel"):
            keras.utils.set_random_seed(0)
            with distribution_scope(distribute):
                losses, weights, model = _CASES[name]()
                runs.append((losses, weights, _replicas(model)))
        (loss_1, weights_1, replicas_1), (loss_2, weights_2, replicas_2) = runs
        out["cases"][name] = {
            "loss_1": loss_1,
            "loss_2": loss_2,
            "replicas_1": replicas_1,
            "replicas_2": replicas_2,
            "max_weight_diff": max(
                float(np.abs(a - b).max()) for a, b in zip(weights_1, weights_2)
            ),
            "max_weight": max(float(np.abs(a).max()) for a in weights_1),
            "seconds": round(time.perf_counter() - start, 1),
        }
    if backend == "tensorflow":
        out["keras_data_parallel_replicas"] = _keras_data_parallel_replicas()
    print("RESULT " + json.dumps(out))


# ---------------------------------------------------------------- tests


def _run_cases(backend, names):
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    done = subprocess.run(
        [sys.executable, __file__, backend, *names], env=env, capture_output=True, text=True,
        timeout=300, cwd=_ROOT,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


# Groups of cases sharing one subprocess (one backend start each). Seen on 2 shared cores:
# TensorFlow 30-80 s a group; JAX compiles every train step (and weight initialiser) with XLA,
# 30-160 s a group, the FCSLSTM's five convolutional LSTMs the longest, hence `slow` there
# (the TensorFlow run checks that layer under the distribution too).
_GROUPS = [("tlstm", "two_step"), ("ich_remat_chunked",), ("ich_staged",), ("xray",)]
if _BACKEND == "jax":
    _GROUPS.append(pytest.param(("fcslstm",), marks=pytest.mark.slow))
else:
    _GROUPS[1] = ("ich_remat_chunked", "fcslstm")


@pytest.mark.skipif(_BACKEND == "torch", reason="Keras has no torch distribution (see below)")
@pytest.mark.parametrize("names", _GROUPS, ids="+".join)
def test_two_devices_train_like_one(names):
    result = _run_cases(_BACKEND, names)
    assert len(result["devices"]) == 2, result["devices"]
    assert sorted(result["cases"]) == sorted(names)
    for name, case in result["cases"].items():
        assert (case["replicas_1"], case["replicas_2"]) == (1, 2), name
        assert case["loss_2"] == pytest.approx(case["loss_1"], rel=_RTOL, abs=1e-7), name
        assert case["max_weight_diff"] <= _RTOL * max(1.0, case["max_weight"]), name
        assert case["loss_1"][-1] != case["loss_1"][0], f"{name} did not train"
    if _BACKEND == "tensorflow":
        # Why kerasmed uses tf.distribute.MirroredStrategy on TensorFlow: Keras 3's
        # keras.distribution.DataParallel trains there on one replica. When this fails, Keras
        # distributes TensorFlow itself and kerasmed.distribute can use DataParallel there too.
        assert result["keras_data_parallel_replicas"] == 1


def test_process_shard_gives_each_process_its_block_of_the_global_batch():
    import numpy as np

    from kerasmed.distribute import process_shard

    batch = ({"a": np.arange(12).reshape(6, 2), "b": np.arange(6) > 2}, np.arange(6.0), None)
    for count in (1, 2, 3):
        parts = [process_shard(batch, index, count) for index in range(count)]
        for part in parts:
            assert part[2] is None
            assert len(part[1]) == 6 // count
        # disjoint, in order, and together the global batch
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), batch[1])
        np.testing.assert_array_equal(np.concatenate([p[0]["a"] for p in parts]), batch[0]["a"])
        np.testing.assert_array_equal(np.concatenate([p[0]["b"] for p in parts]), batch[0]["b"])
    np.testing.assert_array_equal(process_shard(batch, 1, 2)[1], [3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match=r"Received: a batch of shape \(5,\) with count=2"):
        process_shard(np.arange(5), 0, 2)
    with pytest.raises(ValueError, match="Received: index=2, count=2"):
        process_shard(batch, 2, 2)
    with pytest.raises(ValueError, match="Received: count=0"):
        process_shard(batch, 0, 0)


@pytest.mark.skipif(_BACKEND != "jax", reason="several processes are JAX's only")
def test_multi_process_scope_feeds_this_process_rows(monkeypatch):
    """Keras's JAX trainer gets host 1's half of each batch when jax counts two processes
    (one process, one device here: only the counts are pretended)."""
    import jax
    import numpy as np
    from keras.src.backend.jax import trainer

    from kerasmed.distribute import distribution_scope

    original = trainer._distribute_data
    with distribution_scope("data-parallel") as distribution:
        assert trainer._distribute_data is original  # one process: Keras's own, untouched
        assert distribution.auto_shard_dataset  # as before: nothing to shard across hosts
    x, y = np.arange(8.0).reshape(4, 2), np.arange(4.0)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    with distribution_scope("data-parallel") as distribution:
        assert distribution.auto_shard_dataset is False  # Keras would refuse arrays otherwise
        fed_x, fed_y, fed_w = trainer._distribute_data((x, y, None))
    assert trainer._distribute_data is original
    np.testing.assert_array_equal(np.asarray(fed_x), x[2:])
    np.testing.assert_array_equal(np.asarray(fed_y), y[2:])
    assert fed_w is None


@pytest.mark.skipif(_BACKEND != "tensorflow", reason="the compile hook is TensorFlow's")
def test_tensorflow_scope_restores_compile():
    from keras.src.trainers.trainer import Trainer

    from kerasmed.distribute import distribution_scope

    original = Trainer.compile
    with distribution_scope("data-parallel"):
        assert Trainer.compile is not original
    assert Trainer.compile is original


def test_torch_and_unknown_strategies_say_what_is_supported():
    import keras

    from kerasmed.distribute import distribution_scope

    with pytest.raises(ValueError, match="Received: distribute='model-parallel'"):
        with distribution_scope("model-parallel"):
            pass
    if keras.backend.backend() == "torch":
        with pytest.raises(ValueError, match="Keras has no torch distribution"):
            with distribution_scope("data-parallel"):
                pass
    with distribution_scope(None) as scope:
        assert scope is None


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2:])
