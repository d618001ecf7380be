"""StructuredConvLSTM2D: equality with keras.layers.ConvLSTM2D, Eq. (1) of paper 002 in NumPy,
Keras layer contract (config, .keras files, Bidirectional, masking, stateful)."""

import keras
import numpy as np
import pytest
from layer_checks import assert_keras_file_roundtrip, check_layer

from kerasmed.layers.structured_conv_lstm import StructuredConvLSTM2D, StructuredConvLSTM2DCell

B, T, H, W, C = 2, 3, 8, 8, 2


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def make_operator(filters=3):
    """Ψ_x of the tests: conv + ReLU + 2x2 max pooling (the state is 4x4 for 8x8 frames)."""
    return keras.Sequential(
        [
            keras.layers.Conv2D(filters, 3, padding="same"),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(2),
        ]
    )


@pytest.fixture
def x(rng):
    return rng.normal(size=(B, T, H, W, C)).astype("float32")


# ---------------------------------------------------------------- NumPy reference of Eq. (1)
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def conv_same(x, w):
    """Cross-correlation with Keras's "same" zero padding (extra pad at the bottom/right)."""
    kh, kw = w.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    rows, cols = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (w.shape[-1],))
    for a in range(kh):
        for b in range(kw):
            out += xp[:, a : a + rows, b : b + cols, :] @ w[a, b]
    return out


def reference_eq1(psi, kernel, recurrent_kernel, bias, h, c):
    """Eq. (1): gates σ(W*Ψ(x_t) + U*h_{t-1} + b); returns all h_t and the last (h, c)."""
    kernel, recurrent_kernel, bias = (np.float64(a) for a in (kernel, recurrent_kernel, bias))
    outputs = []
    for psi_t in psi:
        z = conv_same(np.float64(psi_t), kernel) + conv_same(h, recurrent_kernel) + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_c)
        h = sigmoid(z_o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


# ------------------------------------------------------- input_operator=None is ConvLSTM2D
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"return_sequences": True, "return_state": True},
        {"go_backwards": True, "return_sequences": True, "return_state": True},
        {"padding": "valid", "strides": 2},
    ],
)
def test_equals_keras_conv_lstm2d(x, kwargs):
    kwargs = {"padding": "same", **kwargs}
    keras_layer = keras.layers.ConvLSTM2D(2, 3, **kwargs)
    expected = keras_layer(x)
    ours = StructuredConvLSTM2D(2, 3, **kwargs)
    ours.build(x.shape)
    assert [w.shape for w in ours.weights] == [w.shape for w in keras_layer.weights]
    ours.set_weights(keras_layer.get_weights())
    got = ours(x)
    assert len(keras.tree.flatten(got)) == len(keras.tree.flatten(expected))
    for g, e in zip(keras.tree.flatten(got), keras.tree.flatten(expected)):
        np.testing.assert_allclose(to_numpy(g), to_numpy(e), atol=1e-6)


def test_equals_keras_conv_lstm2d_channels_first_and_initial_state(x, rng):
    """Ours in channels_first = Keras's ConvLSTM2D in channels_last on the transposed frames.

    (Keras's own channels_first ConvLSTM2D cannot be the reference: TensorFlow's CPU Conv2D
    takes NCHW only in oneDNN builds; ours transposes there, `backend_policy`.)
    """
    x_cf = np.transpose(x, (0, 1, 4, 2, 3))
    h0, c0 = (rng.normal(size=(B, 2, H, W)).astype("float32") for _ in range(2))
    keras_layer = keras.layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True)
    last = lambda a: np.transpose(a, (0, 2, 3, 1))  # noqa: E731  (B, C, H, W) -> (B, H, W, C)
    expected = to_numpy(keras_layer(x, initial_state=[last(h0), last(c0)]))
    ours = StructuredConvLSTM2D(2, 3, data_format="channels_first", return_sequences=True)
    ours.build(x_cf.shape)
    ours.set_weights(keras_layer.get_weights())
    np.testing.assert_allclose(
        to_numpy(ours(x_cf, initial_state=[h0, c0])),
        np.transpose(expected, (0, 1, 4, 2, 3)),
        atol=1e-6,
    )


# ------------------------------------------------------------ Eq. (1) with an input operator
def test_operator_matches_numpy_eq1(x, rng):
    operator = make_operator()
    layer = StructuredConvLSTM2D(
        2,
        3,
        input_operator=operator,
        recurrent_kernel_size=(1, 2),
        return_sequences=True,
        return_state=True,
        bias_initializer="random_normal",
        unit_forget_bias=False,
    )
    outputs, h_last, c_last = (to_numpy(t) for t in layer(x))
    kernel, recurrent_kernel, bias = (to_numpy(w) for w in layer.cell.weights[:3])
    assert recurrent_kernel.shape == (1, 2, 2, 8)
    psi = [to_numpy(operator(x[:, t])) for t in range(T)]  # Ψ_x(x_t), one step at a time
    zeros = np.zeros((B, 4, 4, 2))
    ref_outputs, ref_h, ref_c = reference_eq1(psi, kernel, recurrent_kernel, bias, zeros, zeros)
    np.testing.assert_allclose(outputs, ref_outputs, atol=1e-5)
    np.testing.assert_allclose(h_last, ref_h, atol=1e-5)
    np.testing.assert_allclose(c_last, ref_c, atol=1e-5)
    # The operator's weights are the cell's weights (trainable, after kernel/recurrent/bias).
    assert len(layer.trainable_weights) == 5
    assert layer.trainable_weights[3] is operator.layers[0].kernel


def test_cell_one_step_matches_numpy_eq1(rng):
    cell = StructuredConvLSTM2DCell(2, 3, input_operator=make_operator())
    frame = rng.normal(size=(B, H, W, C)).astype("float32")
    cell.build(frame.shape)
    h0, c0 = (rng.normal(size=(B, 4, 4, 2)).astype("float32") for _ in range(2))
    h, (h_state, c) = cell(frame, [h0, c0])
    kernel, recurrent_kernel, bias = (to_numpy(w) for w in cell.weights[:3])
    psi = [to_numpy(cell.input_operator(frame))]
    _, ref_h, ref_c = reference_eq1(psi, kernel, recurrent_kernel, bias, h0, c0)
    np.testing.assert_allclose(to_numpy(h), ref_h, atol=1e-5)
    np.testing.assert_allclose(to_numpy(c), ref_c, atol=1e-5)
    np.testing.assert_allclose(to_numpy(h_state), to_numpy(h))


def test_state_size_follows_pooling_operator():
    layer = StructuredConvLSTM2D(
        2,
        3,
        input_operator=make_operator(),
        padding="valid",
        return_sequences=True,
        return_state=True,
    )
    layer.build((None, T, 16, 12, C))
    assert layer.cell.state_shape == (None, 6, 4, 2)  # pool 16x12 -> 8x6, valid 3x3 conv -> 6x4
    h0, c0 = layer.get_initial_state(4)
    assert tuple(h0.shape) == tuple(c0.shape) == (4, 6, 4, 2)
    assert not np.any(to_numpy(h0)) and not np.any(to_numpy(c0))
    outputs, h, c = layer(np.ones((4, T, 16, 12, C), "float32"))
    assert tuple(outputs.shape) == (4, T, 6, 4, 2)
    assert tuple(h.shape) == tuple(c.shape) == (4, 6, 4, 2)
    assert layer.compute_output_shape((None, T, 16, 12, C)) == (
        (None, T, 6, 4, 2),
        (None, 6, 4, 2),
        (None, 6, 4, 2),
    )


# ------------------------------------------------------------------ Keras layer contract
def test_check_layer_without_operator(x):
    check_layer(
        StructuredConvLSTM2D,
        {"filters": 2, "kernel_size": 3, "return_sequences": True},
        input_data=x,
        expected_output_shape=(B, T, H, W, 2),
        expected_num_trainable_weights=3,
        supports_masking=True,
        run_mixed_precision_check=False,  # run once, with the operator, below
    )


def test_check_layer_with_operator_and_dropout(x):
    operator_config = keras.saving.serialize_keras_object(make_operator())
    check_layer(
        StructuredConvLSTM2D,
        {
            "filters": 2,
            "kernel_size": 3,
            "input_operator": operator_config,
            "dropout": 0.2,
            "recurrent_dropout": 0.2,
            "seed": 1,
        },
        input_data=x,
        expected_output_shape=(B, 4, 4, 2),
        expected_num_trainable_weights=5,
        supports_masking=True,
    )


def test_dropout_only_in_training(x):
    layer = StructuredConvLSTM2D(2, 3, input_operator=make_operator(), dropout=0.5, seed=3)
    plain = StructuredConvLSTM2D(2, 3, input_operator=make_operator())
    inference = to_numpy(layer(x, training=False))
    plain.build(x.shape)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(inference, to_numpy(plain(x)), atol=1e-6)
    assert np.abs(to_numpy(layer(x, training=True)) - inference).max() > 1e-3


def test_keras_file_roundtrip_with_operator(x):
    inputs = keras.Input((T, H, W, C))
    outputs = StructuredConvLSTM2D(2, 3, input_operator=make_operator(), return_sequences=True)(
        inputs
    )
    model = keras.Model(inputs, outputs)
    loaded = assert_keras_file_roundtrip(model, x)
    operator = loaded.layers[1].input_operator
    assert isinstance(operator, keras.Sequential) and len(operator.weights) == 2


def test_bidirectional_with_operator(x):
    layer = StructuredConvLSTM2D(2, 3, input_operator=make_operator(), return_sequences=True)
    bidirectional = keras.layers.Bidirectional(layer)
    inputs = keras.Input((T, H, W, C))
    model = keras.Model(inputs, bidirectional(inputs))
    output = to_numpy(model(x))
    assert output.shape == (B, T, 4, 4, 4)
    forward, backward = bidirectional.forward_layer, bidirectional.backward_layer
    assert forward.input_operator is not backward.input_operator
    assert layer.input_operator is not forward.input_operator
    assert len(bidirectional.trainable_weights) == 10
    ids = {id(w) for w in forward.weights} & {id(w) for w in backward.weights}
    assert not ids
    f_kernel = to_numpy(forward.input_operator.weights[0])
    b_kernel = to_numpy(backward.input_operator.weights[0])
    assert np.abs(f_kernel - b_kernel).max() > 1e-3
    # The backward half is the layer run with go_backwards, flipped back in time.
    manual = StructuredConvLSTM2D(
        2, 3, input_operator=make_operator(), return_sequences=True, go_backwards=True
    )
    manual.build(x.shape)
    manual.set_weights(backward.get_weights())
    np.testing.assert_allclose(output[..., 2:], to_numpy(manual(x))[:, ::-1], atol=1e-6)
    assert_keras_file_roundtrip(model, x)


def test_masked_step_carries_state(x):
    layer = StructuredConvLSTM2D(2, 3, input_operator=make_operator(), return_sequences=True)
    frames = keras.Input((None, H, W, C))  # unknown length: the mask must not need it
    mask_input = keras.Input((None,), dtype="bool")
    model = keras.Model([frames, mask_input], layer(frames, mask=mask_input))
    mask = np.array([[True, False, True], [True, True, True]])
    masked = model.predict([x, mask], verbose=0)
    full = to_numpy(layer(x))
    # Sample 0 with its step 1 masked == the same sample with that step removed.
    shortened = to_numpy(layer(x[:1, [0, 2]]))
    np.testing.assert_allclose(masked[0, [0, 2]], shortened[0], atol=1e-6)
    np.testing.assert_allclose(masked[0, 1], masked[0, 0])  # output carried over
    np.testing.assert_allclose(masked[1], full[1], atol=1e-6)  # unmasked sample unchanged
    assert np.abs(masked[0, 2] - full[0, 2]).max() > 1e-4
    layer.zero_output_for_mask = True  # what Bidirectional sets with return_sequences
    zeroed = to_numpy(layer(x, mask=mask))
    assert not np.any(zeroed[0, 1])
    np.testing.assert_allclose(zeroed[0, [0, 2]], masked[0, [0, 2]], atol=1e-6)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_mask_without_operator_in_both_loops_and_layouts(x, data_format):
    """Without an operator the input convolution runs inside the loop for inference on JAX and
    before it otherwise (`_project_per_step`): both give the same masked outputs, in both
    layouts (the mask travels as an extra channel, on axis -1 or on the time-major axis 2)."""
    frames = x if data_format == "channels_last" else np.transpose(x, (0, 1, 4, 2, 3))
    layer = StructuredConvLSTM2D(2, 3, return_sequences=True, data_format=data_format)
    mask = np.array([[True, False, True], [True, True, True]])
    inference = to_numpy(layer(frames, mask=mask))
    np.testing.assert_allclose(
        inference, to_numpy(layer(frames, mask=mask, training=True)), atol=1e-6
    )
    shortened = to_numpy(layer(frames[:1, [0, 2]]))
    np.testing.assert_allclose(inference[0, [0, 2]], shortened[0], atol=1e-6)
    np.testing.assert_allclose(inference[0, 1], inference[0, 0])
    np.testing.assert_allclose(inference[1], to_numpy(layer(frames))[1], atol=1e-6)


def test_stateful_carries_state_between_calls(x):
    stateful = StructuredConvLSTM2D(2, 3, input_operator=make_operator(), stateful=True)
    stateful.build(x.shape)
    plain = StructuredConvLSTM2D(2, 3, input_operator=make_operator())
    plain.build(x.shape)
    plain.set_weights(stateful.get_weights())
    stateful(x[:, :2])
    np.testing.assert_allclose(to_numpy(stateful(x[:, 2:])), to_numpy(plain(x)), atol=1e-6)
    assert np.any(to_numpy(stateful.states[1]))
    stateful.reset_state()
    assert not any(np.any(to_numpy(s)) for s in stateful.states)


def test_config_roundtrip_builds_fresh_operator():
    layer = StructuredConvLSTM2D(
        2, 3, input_operator=make_operator(), recurrent_kernel_size=5, padding="valid"
    )
    config = layer.get_config()
    assert config["input_operator"]["class_name"] == "Sequential"
    assert config["recurrent_kernel_size"] == (5, 5) and config["padding"] == "valid"
    clone = StructuredConvLSTM2D.from_config(config)
    assert clone.input_operator is not layer.input_operator
    assert clone.get_config() == config


# ------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"padding": "full"}, "Received: padding=full"),
        ({"filters": 0}, "Received: filters=0"),
        ({"kernel_size": (3, 3, 3)}, r"Received: kernel_size=\(3, 3, 3\)"),
        ({"input_operator": "conv"}, "Received: input_operator='conv'"),
        ({"dropout": 1.5}, "Received: dropout=1.5"),
        ({"data_format": "nhwc"}, "Received: data_format=nhwc"),
        ({"strides": 2, "dilation_rate": 2}, "Received: strides="),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StructuredConvLSTM2D(**{"filters": 2, "kernel_size": 3, **kwargs})


def test_bad_input_rank_and_operator_output_raise():
    # the rank is checked by the layer's InputSpec, as keras.layers.ConvLSTM2D does
    with pytest.raises(ValueError, match=r"expected ndim=5, found ndim=4"):
        StructuredConvLSTM2D(2, 3)(np.zeros((2, 8, 8, 1), "float32"))
    flatten = StructuredConvLSTM2D(2, 3, input_operator=keras.layers.Flatten())
    with pytest.raises(ValueError, match="Received: input_operator=flatten"):
        flatten.build((None, T, H, W, C))


def test_trainable_reaches_the_cell_and_properties_forward():
    frozen = StructuredConvLSTM2D(2, 3, trainable=False)
    assert not frozen.cell.trainable
    frozen.build((None, T, H, W, C))
    assert frozen.trainable_weights == [] and len(frozen.non_trainable_weights) == 3
    layer = StructuredConvLSTM2D(4, 3, padding="same", dropout=0.25)
    assert (layer.filters, layer.padding, layer.dropout) == (4, "same", 0.25)
