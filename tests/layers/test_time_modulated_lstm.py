"""Tests of the time-modulated LSTM (paper 000, Eq. 1 and Eq. 2) against a NumPy transcription."""

import keras
import numpy as np
import pytest
from layer_checks import assert_keras_file_roundtrip, check_layer

from kerasmed.layers import TimeModulatedLSTM, TimeModulatedLSTMCell

B, T, F, L, U = 3, 7, 5, 4, 6
GATES = "ifco"  # Keras's column order


# --------------------------------------------------------------------------- NumPy reference
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def paper_weights(rng, version=1, recurrent=False, time_features=1, features=F):
    """Per-gate matrices named as in the paper: W_fx, W_fl, W_fj, b_f, ... (float64)."""
    w = {}
    for g in GATES:
        w[f"W{g}x"] = rng.normal(scale=0.4, size=(features, U))
        w[f"W{g}l"] = rng.normal(scale=0.4, size=(L, U))
        w[f"b{g}"] = rng.normal(scale=0.4, size=U)
        if version == 1:
            w[f"W{g}j"] = rng.normal(scale=0.4, size=(time_features, U))
        if recurrent:
            w[f"W{g}y"] = rng.normal(scale=0.4, size=(U, U))
    if version == 2:
        w["Wtj"] = rng.normal(scale=0.4, size=(time_features, U))
    return w


def reference(features, labels, time, w, version=1, recurrent=False, y0=None, h0=None):
    """Eq. (1) (version 1) or Eq. (2) (version 2) step by step; recurrent adds W_gy y_{t-1}."""
    batch = features.shape[0]
    y = np.zeros((batch, U)) if y0 is None else np.asarray(y0, np.float64)
    h = np.zeros((batch, U)) if h0 is None else np.asarray(h0, np.float64)
    outputs = []
    for t in range(features.shape[1]):

        def pre(g, t=t, y=y):
            a = features[:, t] @ w[f"W{g}x"] + labels[:, t] @ w[f"W{g}l"] + w[f"b{g}"]
            if version == 1:
                a = a + time[:, t] @ w[f"W{g}j"]
            if recurrent:
                a = a + y @ w[f"W{g}y"]
            return a

        f, i, o, c = sigmoid(pre("f")), sigmoid(pre("i")), sigmoid(pre("o")), np.tanh(pre("c"))
        h = f * h + i * c
        if version == 2:
            h = h + time[:, t] @ w["Wtj"]
        y = o * np.tanh(h)
        outputs.append(y)
    return np.stack(outputs, axis=1), y, h


def set_paper_weights(layer, w, version=1, recurrent=False):
    """Packs the paper's matrices into the Keras LSTMCell layout and sets them by name."""
    packed = {
        "kernel": np.concatenate([np.vstack([w[f"W{g}x"], w[f"W{g}l"]]) for g in GATES], axis=1),
        "bias": np.concatenate([w[f"b{g}"] for g in GATES]),
        "time_kernel": (
            np.concatenate([w[f"W{g}j"] for g in GATES], axis=1) if version == 1 else w["Wtj"]
        ),
    }
    if recurrent:
        packed["recurrent_kernel"] = np.concatenate([w[f"W{g}y"] for g in GATES], axis=1)
    layer.set_weights([packed[v.name] for v in layer.weights])


def make_data(rng, batch=B, steps=T, time_features=1, features=F):
    """Features, previous labels (0 at the first exam) and lapses from increasing exam times."""
    x = rng.normal(size=(batch, steps, features))
    labels = (rng.random((batch, steps + 1, L)) < 0.3).astype("float64")
    labels[:, 0] = 0.0
    times = np.cumsum(rng.uniform(0.1, 2.0, size=(batch, steps)), axis=1)
    return x, labels[:, :steps], times


def lapses(times, time_features=1):
    """δ_t = τ_t - τ_{t-1}, δ_1 = 0; `time_features=2` encodes it as [δ, sqrt(δ)]."""
    delta = np.abs(np.diff(times, axis=1, prepend=times[:, :1]))[..., None]
    return delta if time_features == 1 else np.concatenate([delta, np.sqrt(delta)], axis=-1)


def concat(*parts):
    return np.concatenate(parts, axis=-1).astype("float32")


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# ------------------------------------------------------------------------------ equations
@pytest.mark.parametrize(
    "version, recurrent, implementation",
    [
        (1, False, "scan"),
        (1, False, "loop"),
        (2, False, "scan"),
        (2, False, "loop"),
        (1, True, "loop"),
        (2, True, "auto"),
    ],
)
def test_matches_numpy_reference(rng, version, recurrent, implementation):
    x, labels, times = make_data(rng)
    delta = lapses(times)
    w = paper_weights(rng, version, recurrent)
    layer = TimeModulatedLSTM(
        U,
        L,
        version=version,
        recurrent=recurrent,
        implementation=implementation,
        return_sequences=True,
        return_state=True,
    )
    inputs = concat(x, labels, delta)
    layer.build(inputs.shape)
    set_paper_weights(layer, w, version, recurrent)
    sequence, y_state, h_state = (to_numpy(t) for t in layer(inputs))
    expected, y_ref, h_ref = reference(x, labels, delta, w, version, recurrent)
    np.testing.assert_allclose(sequence, expected, atol=1e-5)
    np.testing.assert_allclose(y_state, y_ref, atol=1e-5)
    np.testing.assert_allclose(h_state, h_ref, atol=1e-5)


@pytest.mark.parametrize("implementation", ["scan", "loop"])
def test_initial_state_continues_a_sequence(rng, implementation):
    x, labels, times = make_data(rng, steps=20)
    w = paper_weights(rng, 2)
    inputs = concat(x, labels, lapses(times))
    layer = TimeModulatedLSTM(U, L, version=2, implementation=implementation, return_state=True)
    layer.build(inputs.shape)
    set_paper_weights(layer, w, 2)
    _, y_mid, h_mid = layer(inputs[:, :9])
    out, _, h_end = layer(inputs[:, 9:], initial_state=[y_mid, h_mid])
    _, y_ref, h_ref = reference(x, labels, lapses(times), w, 2)
    np.testing.assert_allclose(to_numpy(out), y_ref, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h_end), h_ref, atol=1e-5)
    # stateful: the second batch continues from the first one's final states
    stateful = TimeModulatedLSTM.from_config({**layer.get_config(), "stateful": True})
    stateful.build(inputs.shape)
    stateful.set_weights(layer.get_weights())
    stateful(inputs[:, :9])
    np.testing.assert_allclose(to_numpy(stateful(inputs[:, 9:])[0]), y_ref, atol=1e-5)


# ----------------------------------------------------------------------------- gradients
def _sgd_step(implementation, inputs, target, weights, masked, **layer_kwargs):
    keras.utils.set_random_seed(0)
    x = keras.Input(inputs.shape[1:])
    h = keras.layers.Masking(0.0)(x) if masked else x
    h = TimeModulatedLSTM(U, L, implementation=implementation, **layer_kwargs)(h)
    model = keras.Model(x, keras.layers.Dense(2)(h))
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    model.train_on_batch(inputs, target)
    return model.get_weights()


@pytest.mark.parametrize(
    "layer_kwargs, masked",
    [
        ({"version": 1, "return_sequences": True, "time_features": 2}, True),
        ({"version": 2, "go_backwards": True}, False),
    ],
)
def test_scan_gradients_equal_loop_gradients(rng, layer_kwargs, masked):
    """One SGD step with lr=1 from identical weights: updated weights differ by the gradients."""
    x, labels, times = make_data(rng, steps=19)
    inputs = concat(x, labels, lapses(times, layer_kwargs.get("time_features", 1)))
    if masked:
        inputs[0, 12:] = 0.0
        inputs[2, 5:] = 0.0
    steps_out = (B, 19, 2) if layer_kwargs.get("return_sequences") else (B, 2)
    target = rng.normal(size=steps_out).astype("float32")
    build = _probe_model(inputs.shape[1:], layer_kwargs)
    weights = [rng.normal(scale=0.3, size=w.shape).astype("float32") for w in build.weights]
    scan = _sgd_step("scan", inputs, target, weights, masked, **layer_kwargs)
    loop = _sgd_step("loop", inputs, target, weights, masked, **layer_kwargs)
    for w0, ws, wl in zip(weights, scan, loop):
        assert np.abs(ws - w0).max() > 1e-4  # the step did move every weight
        np.testing.assert_allclose(ws, wl, atol=1e-5)


def _probe_model(shape, layer_kwargs):
    x = keras.Input(shape)
    h = TimeModulatedLSTM(U, L, **layer_kwargs)(x)
    return keras.Model(x, keras.layers.Dense(2)(h))


# ------------------------------------------------------------------------- keras contract
def test_check_layer():
    check_layer(
        TimeModulatedLSTM,
        {"units": 3, "num_labels": 2, "version": 2, "return_sequences": True},
        input_shape=(2, 5, 6),
        expected_output_shape=(2, 5, 3),
        expected_num_trainable_weights=3,
        expected_num_seed_generators=1,
        supports_masking=True,
    )


def test_cell_in_keras_rnn_equals_the_layer(rng):
    x, labels, times = make_data(rng)
    inputs = concat(x, labels, lapses(times))
    layer = TimeModulatedLSTM(U, L, recurrent=True, return_sequences=True)
    cell = TimeModulatedLSTMCell.from_config(layer.cell.get_config())
    rnn = keras.layers.RNN(cell, return_sequences=True)
    rnn.build(inputs.shape)
    layer.build(inputs.shape)
    assert [w.shape for w in rnn.weights] == [w.shape for w in layer.weights]
    rnn.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(rnn(inputs)), to_numpy(layer(inputs)), atol=1e-6)


def test_keras_file_roundtrip_with_list_inputs(rng):
    x, labels, times = make_data(rng)
    inputs = [keras.Input((None, F)), keras.Input((None, L)), keras.Input((None, 1))]
    outputs = TimeModulatedLSTM(U, L, version=2, return_sequences=True)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(L, activation="sigmoid")(outputs))
    data = [v.astype("float32") for v in (x, labels, lapses(times))]
    loaded = assert_keras_file_roundtrip(model, data)
    assert isinstance(loaded.layers[3], TimeModulatedLSTM)
    assert loaded.layers[3].get_config() == model.layers[3].get_config()


def test_list_input_equals_concatenated_input(rng):
    x, labels, times = make_data(rng)
    parts = [v.astype("float32") for v in (x, labels, lapses(times))]
    layer = TimeModulatedLSTM(U, L, return_sequences=True)
    np.testing.assert_allclose(
        to_numpy(layer(parts)), to_numpy(layer(concat(*parts))), rtol=1e-6, atol=1e-7
    )
    symbolic = layer([keras.Input((None, F)), keras.Input((None, L)), keras.Input((None, 1))])
    assert symbolic.shape == (None, None, U)


def test_compute_output_shape_with_unknown_batch_and_time():
    layer = TimeModulatedLSTM(U, L, return_sequences=True, return_state=True)
    out, y, h = layer(keras.Input((None, F + L + 1)))
    assert (out.shape, y.shape, h.shape) == ((None, None, U), (None, U), (None, U))
    assert layer.compute_output_shape((None, 9, F + L + 1)) == ((None, 9, U), (None, U), (None, U))


def test_variable_length_batches_in_a_compiled_model(rng):
    """Batches of two lengths through compiled train/predict functions. On TensorFlow the second
    trace has an unknown time axis (the dynamic-length scan), compiled with XLA."""
    w = paper_weights(rng, 1)
    xla = keras.backend.backend() == "tensorflow"
    models = {}
    for implementation in ("scan", "loop"):
        layer = TimeModulatedLSTM(U, L, implementation=implementation, return_sequences=True)
        models[implementation] = keras.Sequential([keras.Input((None, F + L + 1)), layer])
        set_paper_weights(layer, w)
        jit_compile = True if (xla and implementation == "scan") else "auto"
        models[implementation].compile(keras.optimizers.SGD(1.0), "mse", jit_compile=jit_compile)
    for steps in (5, 21):
        x, labels, times = make_data(rng, steps=steps)
        inputs = concat(x, labels, lapses(times))
        got = models["scan"].predict_on_batch(inputs)
        np.testing.assert_allclose(got, models["loop"].predict_on_batch(inputs), atol=1e-5)
        if steps == 5:
            np.testing.assert_allclose(got, reference(x, labels, lapses(times), w)[0], atol=1e-5)
        target = rng.normal(size=(B, steps, U)).astype("float32")
        for model in models.values():
            model.train_on_batch(inputs, target)
        for ws, wl in zip(models["scan"].get_weights(), models["loop"].get_weights()):
            np.testing.assert_allclose(ws, wl, atol=1e-5)


# -------------------------------------------------------------------- masks and backwards
@pytest.mark.parametrize("implementation", ["scan", "loop"])
def test_mask_matches_unpadded_sequences(rng, implementation):
    lengths = [7, 4, 1]
    x, labels, times = make_data(rng)
    delta = lapses(times)
    w = paper_weights(rng, 1)
    inputs = concat(x, labels, delta)
    mask = np.arange(T)[None] < np.array(lengths)[:, None]
    inputs[~mask] = 0.0
    layer = TimeModulatedLSTM(U, L, implementation=implementation, return_sequences=True)
    layer.build(inputs.shape)
    set_paper_weights(layer, w)
    sequence = to_numpy(layer(inputs, mask=mask))
    for k, n in enumerate(lengths):
        expected, _, _ = reference(x[k : k + 1, :n], labels[k : k + 1, :n], delta[k : k + 1, :n], w)
        np.testing.assert_allclose(sequence[k, :n], expected[0], atol=1e-5)
        # masked steps repeat the last real output
        np.testing.assert_allclose(
            sequence[k, n:], np.broadcast_to(expected[0, -1], (T - n, U)), atol=1e-5
        )
    last = TimeModulatedLSTM.from_config({**layer.get_config(), "return_sequences": False})
    last.build(inputs.shape)
    last.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(last(inputs, mask=mask)), sequence[:, -1], atol=1e-6)


@pytest.mark.parametrize(
    "implementation, version, time_features", [("scan", 1, 1), ("loop", 2, 1), ("scan", 1, 2)]
)
def test_bidirectional_backward_half_uses_lapses_in_processing_order(
    rng, implementation, version, time_features
):
    lengths = [7, 5, 2]
    x, labels, times = make_data(rng)
    delta = lapses(times, time_features)
    inputs = concat(x, labels, delta)
    mask = np.arange(T)[None] < np.array(lengths)[:, None]
    inputs[~mask] = 0.0
    layer = TimeModulatedLSTM(
        U,
        L,
        version=version,
        time_features=time_features,
        implementation=implementation,
        return_sequences=True,
    )
    bidirectional = keras.layers.Bidirectional(layer, merge_mode=None)
    bidirectional.build(inputs.shape)
    w_forward = paper_weights(rng, version, time_features=time_features)
    w_backward = paper_weights(rng, version, time_features=time_features)
    set_paper_weights(bidirectional.forward_layer, w_forward, version)
    set_paper_weights(bidirectional.backward_layer, w_backward, version)
    forward, backward = (to_numpy(t) for t in bidirectional(inputs, mask=mask))
    for k, n in enumerate(lengths):
        ref_forward, _, _ = reference(
            x[k : k + 1, :n], labels[k : k + 1, :n], delta[k : k + 1, :n], w_forward, version
        )
        # The explicitly reversed exam sequence, its lapses recomputed from the exam times.
        reversed_times = times[k : k + 1, :n][:, ::-1]
        ref_backward, _, _ = reference(
            x[k : k + 1, :n][:, ::-1],
            labels[k : k + 1, :n][:, ::-1],
            lapses(reversed_times, time_features),
            w_backward,
            version,
        )
        np.testing.assert_allclose(forward[k, :n], ref_forward[0], atol=1e-5)
        np.testing.assert_allclose(backward[k, :n], ref_backward[0, ::-1], atol=1e-5)
        np.testing.assert_allclose(backward[k, n:], 0.0)  # Bidirectional zeroes masked outputs


def test_sequences_of_one_exam(rng):
    x, labels, times = make_data(rng, steps=1)
    delta = lapses(times)
    w = paper_weights(rng, 1)
    inputs = concat(x, labels, delta)
    expected, _, _ = reference(x, labels, delta, w)
    for implementation in ("scan", "loop"):
        for go_backwards in (False, True):
            layer = TimeModulatedLSTM(
                U, L, implementation=implementation, go_backwards=go_backwards
            )
            layer.build(inputs.shape)
            set_paper_weights(layer, w)
            np.testing.assert_allclose(to_numpy(layer(inputs)), expected[:, 0], atol=1e-5)


def test_dropout_is_shared_by_scan_and_loop(rng):
    """Dropout drops the same step-input columns at every step, identically in both paths."""
    x, labels, times = make_data(rng)
    inputs = concat(x, labels, lapses(times))
    scan = TimeModulatedLSTM(U, L, implementation="scan", dropout=0.5, seed=3)
    loop = TimeModulatedLSTM(U, L, implementation="loop", dropout=0.5, seed=3)
    scan.build(inputs.shape)
    loop.build(inputs.shape)
    loop.set_weights(scan.get_weights())
    trained = to_numpy(scan(inputs, training=True))
    np.testing.assert_allclose(to_numpy(loop(inputs, training=True)), trained, atol=1e-5)
    assert np.abs(trained - to_numpy(scan(inputs, training=False))).max() > 1e-3


# --------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"units": 0}, "units=0"),
        ({"version": 3}, "version=3"),
        ({"implementation": "fast"}, "implementation='fast'"),
        ({"implementation": "scan", "recurrent": True}, "implementation='scan'"),
        ({"recurrent_dropout": 0.2}, "recurrent_dropout=0.2"),
        ({"time_features": 0}, "time_features=0"),
        ({"num_labels": -1}, "num_labels=-1"),
    ],
)
def test_invalid_arguments(kwargs, received):
    kwargs = {"units": 4, "num_labels": 2, **kwargs}
    with pytest.raises(ValueError, match=f"Received: {received}"):
        TimeModulatedLSTM(**kwargs)


@pytest.mark.parametrize(
    "inputs, received",
    [
        ([(2, 3, 5), (2, 3, 3), (2, 3, 1)], r"previous_labels.shape=\(2, 3, 3\)"),
        ([(2, 3, 5), (2, 3, 2), (2, 3, 2)], r"time_deltas.shape=\(2, 3, 2\)"),
        ([(2, 5), (2, 3, 2), (2, 3, 1)], r"features.shape=\(2, 5\)"),
        ([(2, 3, 0), (2, 3, 2), (2, 3, 1)], r"features.shape=\(2, 3, 0\)"),
        ((2, 3, 3), r"sequences.shape=\(2, 3, 3\)"),
        ((2, 0, 8), r"sequences.shape=\(2, 0, 8\)"),
        ((2, 8), r"sequences.shape=\(2, 8\)"),
    ],
)
def test_invalid_inputs(inputs, received):
    layer = TimeModulatedLSTM(4, 2)
    if isinstance(inputs, list):
        data = [np.zeros(s, "float32") for s in inputs]
    else:
        data = np.zeros(inputs, "float32")
    with pytest.raises(ValueError, match=f"Received: {received}"):
        layer(data)


def test_properties_forward_to_the_cell():
    layer = TimeModulatedLSTM(4, 2, version=2, time_features=3, dropout=0.25)
    assert (layer.units, layer.num_labels, layer.version, layer.time_features) == (4, 2, 2, 3)
    assert (layer.recurrent, layer.dropout, layer.recurrent_dropout) == (False, 0.25, 0.0)
    assert TimeModulatedLSTM(4, 2, trainable=False).cell.trainable is False
