"""kerasmed.models.fcslstm: the concise FCN (paper 002, Section 2.1), its back-end against a NumPy
transcription, the U-Net size reference, and the (bidirectional, grouped, rematerialized) FCSLSTM.

Models are built with zero initializers and then given NumPy-drawn weights (`randomize`): on
JAX every random initializer compiles a separate XLA program per weight shape (seconds each on
the shared CPU). Forward passes go through `run`: an eager call, except on JAX, where one jitted
`predict_on_batch` compiles much faster than JAX's op-by-op eager mode.
"""

import os
import tempfile

import keras
import numpy as np
import pytest

from kerasmed.models.fcslstm import (
    FrameWise,
    Remat,
    block_filters,
    build_concise_fcn,
    build_fcn_backend,
    build_fcslstm,
    build_unet,
    conv_block,
    level_sizes,
)

T, H, W = 3, 16, 16
TINY = {"width_divisor": 16}  # channels 4, 8, 16, 32, 32
ZEROS = {"kernel_initializer": "zeros"}
LSTM_ZEROS = {**ZEROS, "lstm_kernel_initializer": "zeros", "recurrent_initializer": "zeros"}
JAX = keras.backend.backend() == "jax"


def randomize(model, seed=0):
    """He-normal-like kernels and small biases drawn with NumPy (same numbers on every backend)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape = tuple(w.shape)
        scale = np.sqrt(2.0 / np.prod(shape[:-1])) if len(shape) > 1 else 0.1
        w.assign((rng.normal(size=shape) * scale).astype("float32"))
    return model


def run(model, x):
    outputs = model.predict_on_batch(x) if JAX else model(x)
    return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)


def frames(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


# ----------------------------------------------------------------------- blocks and sizes
def test_block_filters_and_level_sizes():
    assert block_filters(1) == (64, 128, 256, 512, 512)  # VGG-16
    assert block_filters(2) == (32, 64, 128, 256, 256)
    assert block_filters(4) == (16, 32, 64, 128, 128)
    assert level_sizes((40, 40)) == [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3), (2, 2)]
    assert level_sizes((37, 50))[-1] == (2, 2)  # ceil(37 / 32), ceil(50 / 32)
    with pytest.raises(ValueError, match="width_divisor=3"):
        block_filters(3)


def test_conv_block_is_vgg_block_with_ceil_pooling():
    block = conv_block(3, 8, 3, name="m")
    assert block.name == "m_conv3"
    assert [layer.name for layer in block.layers] == [
        "m_conv3_1",
        "m_conv3_2",
        "m_conv3_3",
        "m_pool3",
    ]
    x = frames((1, 5, 7, 2))
    block.build((None, 5, 7, 2))
    y = run(randomize(block), x)
    assert y.shape == (1, 3, 4, 8)
    # the pooling covers the last odd row/column alone (ceil mode, no padding value wins)
    before_pool = run(keras.Sequential(block.layers[:-1]), x)
    np.testing.assert_allclose(y[0, 2, 3], before_pool[0, 4, 6], atol=1e-6)
    np.testing.assert_allclose(y[0, 0, 0], before_pool[0, :2, :2].max(axis=(0, 1)), atol=1e-6)


# ------------------------------------------------------------ back-end vs a NumPy transcription
def conv_same(x, w):
    """Cross-correlation with Keras's "same" zero padding (extra pad at the bottom/right)."""
    kh, kw = w.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    out = np.zeros(x.shape[:3] + (w.shape[-1],))
    for a in range(kh):
        for b in range(kw):
            out += xp[:, a : a + x.shape[1], b : b + x.shape[2], :] @ w[a, b]
    return out


def deconv_same(x, w, stride=2):
    """Transposed convolution, "same" padding: the gradient of a strided "same" convolution.
    Input pixel i spreads its kernel over full-output rows i*stride ... i*stride + k - 1; the
    output drops (k - stride) // 2 rows at the top (and the rest at the bottom)."""
    kh, kw, _, _ = w.shape  # (rows, cols, out channels, in channels)
    n, rows, cols, _ = x.shape
    full = np.zeros((n, (rows - 1) * stride + kh, (cols - 1) * stride + kw, w.shape[2]))
    for i in range(rows):
        for j in range(cols):
            full[:, i * stride : i * stride + kh, j * stride : j * stride + kw] += np.einsum(
                "nc,abdc->nabd", x[:, i, j], w
            )
    top, left = (kh - stride) // 2, (kw - stride) // 2
    return full[:, top : top + rows * stride, left : left + cols * stride]


def reference_backend(features, weights, sizes, fuse_level, fuse_mode):
    """Section 2.1's back-end: deconv6..deconv10, crop to each front-end level (top-left
    aligned), fuse conv4..conv(5-L), 3x3 conv to c channels, softmax."""
    x = features[5]
    for k in range(6, 11):
        level = 10 - k
        x = deconv_same(x, weights[f"deconv{k}"][0]) + weights[f"deconv{k}"][1]
        x = x[:, : sizes[level][0], : sizes[level][1]]
        if 1 <= level <= 4 and level >= 5 - fuse_level:
            skip = features[level]
            if fuse_mode == "concat":
                x = np.concatenate([x, skip], axis=-1)
            else:
                kernel, bias = weights[f"score{level}"]
                x = x + skip @ kernel[0, 0] + bias
    kernel, bias = weights["conv_out"]
    z = conv_same(x, kernel) + bias
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("fuse_mode,fuse_level", [("concat", 4), ("sum", 2)])
def test_backend_matches_numpy(fuse_mode, fuse_level):
    size, channels, classes = (9, 13), {1: 2, 2: 3, 3: 2, 4: 3, 5: 4}, 3
    backend = build_fcn_backend(size, channels, classes, fuse_level, fuse_mode, name="b", **ZEROS)
    assert backend.fused_blocks == [5] + [4, 3, 2, 1][:fuse_level]
    randomize(backend, seed=1)
    sizes = level_sizes(size)
    assert sizes[1:] == [(5, 7), (3, 4), (2, 2), (1, 1), (1, 1)]
    rng = np.random.default_rng(2)
    features = {
        k: rng.normal(size=(2, *sizes[k], c)).astype("float32") for k, c in channels.items()
    }
    weights = {
        layer.name[2:]: [keras.ops.convert_to_numpy(w).astype("float64") for w in layer.weights]
        for layer in backend.layers
        if layer.weights
    }
    expected = reference_backend(features, weights, sizes, fuse_level, fuse_mode)
    got = run(backend, [features[k] for k in backend.fused_blocks])
    assert got.shape == (2, 9, 13, classes)
    np.testing.assert_allclose(got, expected, atol=2e-5)


# -------------------------------------------------------------------- concise FCN and U-Net
def vgg_front_end_params(in_channels, filters):
    params, cin = 0, in_channels
    for (num_convs, _), f in zip(((2, 0), (2, 0), (3, 0), (3, 0), (3, 0)), filters):
        for _ in range(num_convs):
            params += 9 * cin * f + f
            cin = f
    return params


def test_fcn_parameter_counts():
    # Full-width front-end = VGG-16's convolutions (keras.applications.VGG16, include_top=False,
    # has 14,714,688 parameters for 3 input channels).
    full = build_concise_fcn((32, 32, 3), 2, width_divisor=1, fuse_level=0, **ZEROS)
    front = sum(full.get_layer(f"fcn_conv{k}").count_params() for k in range(1, 6))
    assert front == vgg_front_end_params(3, block_filters(1)) == 14_714_688
    # The concise FCN at width / 2, 2 input channels, 4 classes, fuse level 4 (concatenation):
    # deconv k reads c + (channels of the level fused before it); one 3x3 conv c -> c.
    c, f = 4, block_filters(2)
    fcn = build_concise_fcn((256, 256, 2), c, width_divisor=2, **ZEROS)
    inputs = [f[4], c + f[3], c + f[2], c + f[1], c + f[0]]
    back = sum(16 * cin * c + c for cin in inputs) + 9 * c * c + c
    assert fcn.count_params() == vgg_front_end_params(2, f) + back
    # Sum fusion at level 2 (FCN-8s-like): two 1x1 score convolutions, every deconv reads c.
    fcn8 = build_concise_fcn((256, 256, 2), c, fuse_level=2, fuse_mode="sum", **ZEROS)
    back = (16 * f[4] * c + c) + 4 * (16 * c * c + c) + (f[3] * c + c) + (f[2] * c + c)
    assert fcn8.count_params() == vgg_front_end_params(2, f) + back + 9 * c * c + c


def unet_params(in_channels, classes, base=64, depth=4):
    params, cin = 0, in_channels
    for level in range(depth + 1):
        f = base * 2**level
        params += (9 * cin * f + f) + (9 * f * f + f)
        cin = f
    for level in range(depth - 1, -1, -1):
        f = base * 2**level
        params += 4 * cin * f + f  # 2x2 up-convolution
        params += (9 * 2 * f * f + f) + (9 * f * f + f)
        cin = f
    return params + cin * classes + classes


def test_unet_is_twenty_to_thirty_times_larger_than_the_concise_fcn():
    unet = build_unet((256, 256, 1), 2, **ZEROS)
    assert unet.count_params() == unet_params(1, 2) == 31_030_658  # U-Net paper: "31 M"
    assert unet.output_shape == (None, 256, 256, 2)
    unet = build_unet((256, 256, 2), 4, **ZEROS)
    ratios = {
        d: unet.count_params()
        / build_concise_fcn((256, 256, 2), 4, width_divisor=d, **ZEROS).count_params()
        for d in (2, 4)
    }
    # the paper's "20 times smaller than u-net" sits between the two widths it tested
    assert 8.0 < ratios[2] < 9.0 and 30.0 < ratios[4] < 35.0, ratios
    odd = build_unet((37, 50, 1), 3, base_filters=2, **ZEROS)
    y = run(randomize(odd), frames((1, 37, 50, 1)))
    assert y.shape == (1, 37, 50, 3)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(32, 32, 2), (40, 40, 1), (37, 50, 3)])
def test_fcn_shapes_any_input_size(shape):
    fcn = randomize(build_concise_fcn(shape, 3, **TINY, **ZEROS))
    sizes = level_sizes(shape[:2])
    for k, f in enumerate(block_filters(16), start=1):
        assert fcn.get_layer(f"fcn_conv{k}").output.shape == (None, *sizes[k], f)
    y = run(fcn, frames((2, *shape)))
    assert y.shape == (2, *shape[:2], 3)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)
    assert y.min() >= 0.0 and y.std() > 1e-3  # a real map, not a constant


def test_fcn_on_sequences_segments_every_time_point_alone():
    model = randomize(build_concise_fcn((None, 40, 40, 2), 3, **TINY, **ZEROS))
    image_fcn = model.get_layer("fcn_frames").layer
    assert model.output_shape == (None, None, 40, 40, 3)
    for steps in (2, 3):
        x = frames((2, steps, 40, 40, 2), seed=steps)
        y = run(model, x)
        per_frame = run(image_fcn, x.reshape(2 * steps, 40, 40, 2)).reshape(y.shape)
        np.testing.assert_allclose(y, per_frame, atol=1e-6)
    changed = x.copy()
    changed[:, 1] += 1.0
    y2 = run(model, changed)
    np.testing.assert_array_equal(y2[:, [0, 2]], y[:, [0, 2]])
    assert np.abs(y2[:, 1] - y[:, 1]).max() > 1e-4


# --------------------------------------------------------------------------------- FCSLSTM
def test_fcslstm_structure_and_unknown_length():
    model = randomize(build_fcslstm((None, 40, 40, 2), 4, **TINY, **LSTM_ZEROS))
    sizes = level_sizes((40, 40))
    for k, f in enumerate(block_filters(16), start=1):
        lstm = model.get_layer(f"fcslstm_lstm{k}")
        assert lstm.input_operator.name == f"fcslstm_conv{k}"  # Ψ_x = block k, pooling included
        assert lstm.output.shape == (None, None, *sizes[k], f)  # state size follows the operator
        assert lstm.kernel_size == (1, 1) and lstm.recurrent_kernel_size == (3, 3)
    assert model.get_layer("fcslstm_frames").layer.fused_blocks == [5, 4, 3, 2, 1]
    for steps in (2, 3):  # eager calls (TF: see test_fcslstm_predict_with_two_lengths)
        y = run(model, frames((1, steps, 40, 40, 2), seed=steps))
        assert y.shape == (1, steps, 40, 40, 4)
        np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


@pytest.mark.skipif(
    keras.backend.backend() == "jax", reason="`run` already compiles two lengths on JAX"
)
def test_fcslstm_predict_with_two_lengths():
    """`predict` traces one graph per length on TF: the batch size must survive the reshapes
    of `StructuredConvLSTM2D.project_inputs` for the time loop to accept its state."""
    model = randomize(build_fcslstm((None, 32, 32, 1), 2, **TINY, **LSTM_ZEROS))
    for steps in (2, 3):
        assert model.predict(frames((1, steps, 32, 32, 1)), verbose=0).shape == (
            1,
            steps,
            32,
            32,
            2,
        )


def test_fcslstm_is_lstm_stack_then_framewise_backend():
    model = randomize(build_fcslstm((T, H, W, 2), 3, **TINY, **LSTM_ZEROS))
    x = frames((2, T, H, W, 2))
    lstms = [model.get_layer(f"fcslstm_lstm{k}").output for k in range(1, 6)]
    states = run(keras.Model(model.input, lstms), x)
    backend = model.get_layer("fcslstm_frames").layer
    folded = [states[k - 1].reshape(2 * T, *states[k - 1].shape[2:]) for k in backend.fused_blocks]
    expected = run(backend, folded).reshape(2, T, H, W, 3)
    np.testing.assert_allclose(run(model, x), expected, atol=1e-6)


def test_causality_and_bidirectional_future_context():
    x = frames((1, T, H, W, 2))
    changed_last = x.copy()
    changed_last[:, -1] = frames((1, H, W, 2), seed=5)
    uni = randomize(build_fcslstm((T, H, W, 2), 3, **TINY, **LSTM_ZEROS))
    bi = randomize(build_fcslstm((T, H, W, 2), 3, bidirectional=True, **TINY, **LSTM_ZEROS))
    assert bi.get_layer("fcslstm_bilstm1").merge_mode == "concat"
    assert bi.get_layer("fcslstm_bilstm2").output.shape == (None, T, 4, 4, 16)  # 2 x 8 channels
    y_uni, y_bi = run(uni, x), run(bi, x)
    assert np.abs(y_uni - y_bi).max() > 1e-3
    y_uni_changed, y_bi_changed = run(uni, changed_last), run(bi, changed_last)
    # unidirectional: time points before the change do not see it; the changed one does
    np.testing.assert_array_equal(y_uni_changed[:, :-1], y_uni[:, :-1])
    assert np.abs(y_uni_changed[:, -1] - y_uni[:, -1]).max() > 1e-4
    # bidirectional: the first time point sees the last one through the backward direction
    assert np.abs(y_bi_changed[:, 0] - y_bi[:, 0]).max() > 1e-4
    changed_middle = x.copy()
    changed_middle[:, 1] += 0.5
    y_mid = run(uni, changed_middle)
    np.testing.assert_array_equal(y_mid[:, 0], y_uni[:, 0])
    assert np.abs(y_mid[:, 2] - y_uni[:, 2]).max() > 1e-4  # carried forward by the states


def test_operator_grouping():
    plain = build_fcslstm((T, H, W, 2), 3, **TINY, **LSTM_ZEROS)
    grouped = build_fcslstm((T, H, W, 2), 3, operator_groups=(2, 3), **TINY, **LSTM_ZEROS)
    lstm1, lstm2 = grouped.get_layer("fcslstm_lstm1"), grouped.get_layer("fcslstm_lstm2")
    assert lstm1.input_operator.name == "fcslstm_conv1_to_2"
    assert [b.name for b in lstm2.input_operator.layers] == [f"fcslstm_conv{k}" for k in (3, 4, 5)]
    # two stored states over time instead of five: after conv2 (4x4x8) and conv5 (1x1x32)
    assert lstm1.output.shape == (None, T, 4, 4, 8) and lstm2.output.shape == (None, T, 1, 1, 32)
    assert grouped.get_layer("fcslstm_frames").layer.fused_blocks == [5, 2]
    assert grouped.count_params() < plain.count_params()
    y = run(randomize(grouped), frames((1, T, H, W, 2)))
    assert y.shape == (1, T, H, W, 3)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


def _roundtrip(model, x):
    expected = run(model, x)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(run(loaded, x), expected, atol=1e-6)
    return loaded


def test_keras_file_roundtrip():
    fcn = build_concise_fcn((None, 40, 40, 2), 3, fuse_mode="sum", remat=True, **TINY, **ZEROS)
    loaded = _roundtrip(randomize(fcn), frames((1, 2, 40, 40, 2)))
    assert isinstance(loaded.get_layer("fcn_frames"), FrameWise)
    block = loaded.get_layer("fcn_frames").layer.get_layer("fcn_conv1_remat")
    assert isinstance(block, Remat) and block.layer.name == "fcn_conv1"
    model = build_fcslstm(
        (None, H, W, 2), 3, bidirectional=True, operator_groups=(1, 2, 2), merge_mode="sum",
        remat=True, **TINY, **LSTM_ZEROS,
    )  # fmt: skip
    loaded = _roundtrip(randomize(model), frames((1, T, H, W, 2)))
    wrapper = loaded.get_layer("fcslstm_bilstm2_remat")
    assert isinstance(wrapper, Remat) and wrapper.layer.merge_mode == "sum"
    assert wrapper.layer.forward_layer.input_operator.name == "fcslstm_conv2_to_3"


@pytest.mark.slow
def test_training_reduces_the_loss_and_remat_changes_nothing():
    """A few RMSprop steps (the paper's optimizer, a larger step) on bright-blob sequences, for the
    FCSLSTM with and without remat (each stacked layer and the back-end wrapped in `Remat`):
    same weights in, same losses and weights out. (Bidirectional layers under `Remat` are
    checked by the round trip; each compiled training step costs tens of seconds on JAX.)"""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:H, :W]
    x = np.zeros((2, T, H, W, 1), "float32")
    for i in range(2):
        for t in range(T):
            r, c = rng.integers(5, 11, size=2)
            x[i, t, ..., 0] = ((rows - r) ** 2 + (cols - c) ** 2 < (2 + t) ** 2).astype("float32")
    x += rng.normal(scale=0.1, size=x.shape).astype("float32")
    y = keras.utils.to_categorical((x[..., 0] > 0.5).astype("int32"), 2)
    kwargs = {"operator_groups": (2, 3), **TINY, **LSTM_ZEROS}
    weights, results = None, []
    for remat in (False, True):
        model = build_fcslstm((T, H, W, 1), 2, remat=remat, **kwargs)
        weights = weights or randomize(model).get_weights()
        model.set_weights(weights)
        # eager on TensorFlow: its graph compiler takes longer than these steps (torch is eager)
        model.compile(
            keras.optimizers.RMSprop(1e-2, rho=0.95),
            "categorical_crossentropy",
            run_eagerly=not JAX,
        )
        history = model.fit(x, y, batch_size=2, epochs=6, verbose=0).history["loss"]
        results.append((history, model.get_weights()))
    assert [layer.name for layer in model.layers[1:]] == [
        "fcslstm_lstm1_remat", "fcslstm_lstm2_remat", "fcslstm_frames_remat",
    ]  # fmt: skip
    assert all(isinstance(layer, Remat) for layer in model.layers[1:])
    (history, trained), (history_remat, trained_remat) = results
    assert history[-1] < 0.7 * history[0], history
    np.testing.assert_allclose(history_remat, history, rtol=1e-4)
    for a, b in zip(trained_remat, trained):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"input_shape": (32, 32, 1)}, "input_shape"),
        ({"input_shape": (T, None, 32, 1)}, "must be known"),
        ({"fuse_level": 5}, "fuse_level=5"),
        ({"fuse_mode": "max"}, "fuse_mode='max'"),
        ({"operator_groups": (2, 2)}, "operator_groups"),
        ({"merge_mode": "first"}, "merge_mode='first'"),
        ({"input_shape": (None, 32, 32, 1), "unroll": True}, "unroll"),
        ({"num_classes": 0}, "num_classes=0"),
    ],
)
def test_invalid_arguments(kwargs, match):
    arguments = {"input_shape": (T, 32, 32, 1), "num_classes": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        build_fcslstm(**arguments)
