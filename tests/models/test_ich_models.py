"""kerasmed.models.ich: the slice CNN, the slice encoder (chunked / rematerialized), CNN + BiLSTM."""

import keras
import numpy as np
import pytest
from layer_checks import assert_keras_file_roundtrip

from kerasmed.models.ich import (
    SliceEncoder,
    build_cnn_bilstm,
    build_slice_cnn,
    slice_feature_model,
)

TINY = {"lstm_units": 3, "base_filters": 2, "feature_dim": 5}


def _volumes(batch, slices, size=32, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, slices, size, size, 1)).astype("float32")


def test_slice_cnn_layer_names_and_shapes_at_256():
    cnn = build_slice_cnn((256, 256, 1), name="cnn")
    convs = [f"cnn_conv{i}" for i in range(1, 12)]
    pools = [f"cnn_pool{i}" for i in range(1, 7)]
    names = [layer.name for layer in cnn.layers]
    assert [n for n in names if "conv" in n] == convs
    assert [n for n in names if "pool" in n] == pools
    assert names[-3:] == ["cnn_dropout1", "cnn_fc1", "cnn_features"]
    # five 2x2 poolings: 256 -> 8; filters double from unit to unit, 16 ... 256, then 512
    assert cnn.get_layer("cnn_conv2").output.shape == (None, 256, 256, 16)
    assert cnn.get_layer("cnn_pool5").output.shape == (None, 8, 8, 256)
    assert cnn.get_layer("cnn_conv11").output.shape == (None, 8, 8, 512)
    assert cnn.get_layer("cnn_pool6").output.shape == (None, 512)  # the 8x8 map pooled to 1x1
    assert cnn.output_shape == (None, 512)
    assert [c.get_config()["kernel_size"] for c in cnn.layers if "conv" in c.name] == [(3, 3)] * 11


def test_slice_cnn_small_inputs_and_head():
    cnn = build_slice_cnn((64, 64, 1), base_filters=2, feature_dim=16, num_classes=2, name="s")
    assert cnn.get_layer("s_pool5").output.shape == (None, 2, 2, 32)
    assert cnn.get_layer("s_pool6").output.shape == (None, 64)
    assert cnn.output_shape == (None, 2)
    assert [layer.name for layer in cnn.layers[-3:]] == ["s_features", "s_dropout2", "s_head"]
    probs = cnn.predict(np.zeros((3, 64, 64, 1), "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    features = slice_feature_model(cnn)
    assert features.output_shape == (None, 16)
    assert {id(w) for w in features.weights} <= {id(w) for w in cnn.weights}
    small = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5)
    assert small.get_layer("slice_cnn_pool5").output.shape[1:3] == (1, 1)


def test_slice_cnn_parameter_count_of_the_paper_configuration():
    cnn = build_slice_cnn((256, 256, 1))  # base 16, 512-d features, no head
    filters = [16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512]
    inputs = [1] + filters[:-1]
    conv = sum(3 * 3 * cin * cout + cout for cin, cout in zip(inputs, filters))
    dense = (512 * 512 + 512) + (512 * 512 + 512)
    assert conv == 2_358_640  # arithmetic check of the list above
    assert cnn.count_params() == conv + dense
    with_head = build_slice_cnn((256, 256, 1), num_classes=2)
    assert with_head.count_params() == conv + dense + 512 * 2 + 2


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"Received: input_shape=\(16, 16, 1\)"):
        build_slice_cnn((16, 16, 1))
    with pytest.raises(ValueError, match="Received: dropout=1"):
        build_slice_cnn((32, 32, 1), dropout=1)
    with pytest.raises(ValueError, match="Received: slice_chunk=0"):
        build_cnn_bilstm((32, 32, 1), slice_chunk=0, **TINY)
    with pytest.raises(ValueError, match="Received: layer_name='nope'"):
        slice_feature_model(build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5), "nope")
    # random state (dropout) in the looped part is refused
    with pytest.raises(ValueError, match="Received: loop='unrolled'"):
        SliceEncoder(build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5), loop="unrolled")
    with pytest.raises(ValueError, match="Received: split_layer=None"):
        SliceEncoder(build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5), slice_chunk=2)


def test_initializers_as_the_paper_says():
    keras.utils.set_random_seed(1)
    model = build_cnn_bilstm((32, 32, 1), lstm_units=6, base_filters=2, feature_dim=5)
    assert (
        model.get_layer("ich_slices")
        .slice_model.get_layer("ich_cnn_conv1")
        .get_config()["kernel_initializer"]["class_name"]
        == "GlorotUniform"
    )
    for name in ("ich_bilstm1", "ich_bilstm2"):
        layer = model.get_layer(name)
        assert layer.get_config()["merge_mode"] == "sum"
        for lstm in (layer.forward_layer, layer.backward_layer):
            config = lstm.get_config()
            assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
            assert config["recurrent_initializer"]["class_name"] == "Orthogonal"
            assert config["unit_forget_bias"] is True
            kernel, recurrent, bias = (np.asarray(w) for w in lstm.weights)
            units = 6
            limit = np.sqrt(6.0 / (kernel.shape[0] + kernel.shape[1]))
            assert np.abs(kernel).max() <= limit and kernel.std() > limit / 4
            # orthogonal recurrent kernel (units, 4 units): orthonormal rows
            np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(units), atol=1e-5)
            # gate order i, f, c, o: forget-gate bias 1, other biases 0
            expected = np.r_[np.zeros(units), np.ones(units), np.zeros(2 * units)]
            np.testing.assert_array_equal(bias, expected)
    assert model.get_layer("ich_bilstm1").forward_layer.return_sequences
    assert not model.get_layer("ich_bilstm2").forward_layer.return_sequences


def _numpy_lstm(x, kernel, recurrent, bias):
    """Eq. 1 of the paper, gate order i, f, C, o (Keras's weight layout)."""

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    units = recurrent.shape[0]
    h, c, outputs = np.zeros(units), np.zeros(units), []
    for x_t in x:
        z = x_t @ kernel + h @ recurrent + bias
        i, f = sigmoid(z[:units]), sigmoid(z[units : 2 * units])
        c_hat, o = np.tanh(z[2 * units : 3 * units]), sigmoid(z[3 * units :])
        c = f * c + i * c_hat
        h = o * np.tanh(c)
        outputs.append(h)
    return np.array(outputs)


def test_bidirectional_sum_matches_numpy_equation():
    model = build_cnn_bilstm((32, 32, 1), **TINY)
    layer = model.get_layer("ich_bilstm1")  # return_sequences=True
    x = np.random.default_rng(3).normal(size=(1, 6, 5)).astype("float32")
    forward = [np.asarray(w, dtype="float64") for w in layer.forward_layer.weights]
    backward = [np.asarray(w, dtype="float64") for w in layer.backward_layer.weights]
    h_a = _numpy_lstm(x[0], *forward)  # network A: h_1 ... h_N
    h_b = _numpy_lstm(x[0][::-1], *backward)[::-1]  # network B read from N to 1, re-aligned
    expected = h_a + h_b  # (h^A_1 + H^B_1, ..., h^A_N + H^B_N)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x))[0], expected, atol=1e-5)


def test_variable_number_of_slices_and_masked_batches():
    model = build_cnn_bilstm((32, 32, 1), use_mask=True, **TINY)
    short, long = _volumes(1, 4, seed=1), _volumes(1, 7, seed=2)
    alone = [model.predict([v, np.ones(v.shape[:2], bool)], verbose=0)[0] for v in (short, long)]
    assert not np.allclose(alone[0], alone[1])
    padded = np.concatenate([np.pad(short, ((0, 0), (0, 3), (0, 0), (0, 0), (0, 0))), long])
    mask = np.arange(7)[None] < np.array([[4], [7]])
    batch = model.predict([padded, mask], verbose=0)
    np.testing.assert_allclose(batch, np.stack(alone), atol=1e-5)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, rtol=1e-6)


def test_chunked_rematerialized_path_equals_plain_path():
    keras.utils.set_random_seed(2)
    x = _volumes(2, 7, seed=4)  # 14 slices: chunks of 4 leave a partial chunk
    y = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
    plain = build_cnn_bilstm((32, 32, 1), dropout=0.0, **TINY)
    fast = build_cnn_bilstm((32, 32, 1), dropout=0.0, slice_chunk=4, remat=True, **TINY)
    weights = plain.get_weights()
    fast.set_weights(weights)
    # forward, eagerly, for every combination of the encoder's options
    reference = keras.ops.convert_to_numpy(plain.get_layer("ich_slices")(x))
    cnn = plain.get_layer("ich_slices").slice_model
    variants = (
        {"slice_chunk": 4},  # a Python loop over the chunks
        {"slice_chunk": 4, "loop": "scan"},
        {"remat": True},
        {"slice_chunk": 3, "remat": True},  # keras.ops.scan
        {"slice_chunk": 3, "remat": True, "loop": "python"},
    )
    for options in variants:
        encoder = SliceEncoder(cnn, **options)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(encoder(x)), reference, atol=1e-5)
    # gradients: one SGD step with learning rate 1 moves every weight by minus its gradient
    for model in (plain, fast):
        model.compile(keras.optimizers.SGD(learning_rate=1.0), "categorical_crossentropy")
        model.train_on_batch(x, y)
    moved = [w - np.asarray(v) for w, v in zip(weights, plain.weights)]
    assert max(np.abs(m).max() for m in moved[:4]) > 1e-4  # the CNN's gradients are not zero
    for before, after_plain, after_fast in zip(weights, plain.weights, fast.weights):
        np.testing.assert_allclose(
            before - np.asarray(after_fast), before - np.asarray(after_plain), atol=1e-5
        )


def test_keras_file_round_trip_of_the_chunked_model():
    cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=5, num_classes=2)
    model = build_cnn_bilstm(
        (32, 32, 1), slice_cnn=slice_feature_model(cnn), lstm_units=3, slice_chunk=2, remat=True
    )
    loaded = assert_keras_file_roundtrip(model, _volumes(1, 5, seed=5), atol=1e-5)
    encoder = loaded.get_layer("ich_slices")
    assert isinstance(encoder, SliceEncoder)
    assert (encoder.slice_chunk, encoder.remat, encoder.split_layer, encoder.loop) == (
        2, True, "slice_cnn_pool6", "auto",
    )  # fmt: skip
