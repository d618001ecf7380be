"""kerasmed.models.two_step and two_step_inference: paper 003's slice CNN, BiLSTM and Swin heads."""

import keras
import numpy as np
import pytest
from layer_checks import assert_keras_file_roundtrip

from kerasmed.data.slice_sampling import (
    EmbeddingSequenceDataset,
    WindowSliceDataset,
    sample_window_slices,
)
from kerasmed.models import (
    build_slice_embedder,
    build_two_step_lstm,
    build_two_step_swin,
    embed_scans,
    ensemble_probabilities,
    predict_scans,
    slice_embedding_model,
)
from kerasmed.optimizers import AdamL2

RNG = np.random.default_rng(0)


def _small_cnn(embedding_dim=8, channels=3, size=32):
    return build_slice_embedder(
        "small_cnn", (size, size, channels), embedding_dim=embedding_dim, filters=(4, 8),
        feature_dim=16,
    )  # fmt: skip


def _tiny_swin(**kwargs):
    return build_two_step_swin(
        16, 16, embed_dim=8, depths=(1, 1), num_heads=(1, 2), window_size=4, patch_size=2, **kwargs
    )


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _weights(model, name):
    return [np.asarray(w, "float64") for w in model.get_layer(name).get_weights()]


# ---- step 1: the slice CNN --------------------------------------------------------------------


def test_slice_embedder_computes_linear_embedding_then_sigmoid():
    model = _small_cnn()
    x = RNG.uniform(0, 255, (5, 32, 32, 3)).astype("float32")
    features = np.asarray(model.get_layer("small_cnn").predict(x / 255.0, verbose=0), "float64")
    w1, b1 = _weights(model, "slice_embedder_embedding")
    w2, b2 = _weights(model, "slice_embedder_output")
    embedding = features @ w1 + b1  # linear: no activation between the two dense layers
    np.testing.assert_allclose(
        slice_embedding_model(model).predict(x, verbose=0), embedding, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        model.predict(x, verbose=0), _sigmoid(embedding @ w2 + b2), rtol=1e-4, atol=1e-6
    )
    assert model.get_layer("slice_embedder_dropout").rate == pytest.approx(0.3)


def test_embedding_model_shares_weights_with_the_classifier():
    model = _small_cnn()
    embedder = slice_embedding_model(model)
    layer = model.get_layer("slice_embedder_embedding")
    layer.set_weights([np.ones_like(w) for w in layer.get_weights()])
    x = RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    features = model.get_layer("small_cnn").predict(x / 255.0, verbose=0)
    expected = np.repeat(features.sum(1, keepdims=True) + 1.0, 8, axis=1)
    np.testing.assert_allclose(embedder.predict(x, verbose=0), expected, rtol=1e-4)
    with pytest.raises(ValueError, match="layer_name='missing'"):
        slice_embedding_model(model, "missing")


def test_efficientnet_b3_embedder_has_the_paper_head():
    model = build_slice_embedder(input_shape=(32, 32, 3))  # EfficientNetB3 takes >= 32 px
    b3 = model.get_layer("efficientnetb3")  # keras.applications.EfficientNetB3, pooled
    assert b3.output_shape == (None, 1536) and isinstance(b3.layers[1], keras.layers.Rescaling)
    head = 1536 * 224 + 224 + 224 + 1  # Linear(1536, 224), Linear(224, 1)
    assert model.count_params() == b3.count_params() + head
    assert model.output_shape == (None, 1)
    assert slice_embedding_model(model).output_shape == (None, 224)


def test_slice_embedder_trains_on_window_batches_with_adam_l2():
    model = _small_cnn(channels=3)
    model.compile(AdamL2(learning_rate=1e-3, weight_decay=5e-4), "binary_crossentropy")
    volumes = [RNG.uniform(0, 255, (n, 32, 32)).astype("float32") for n in (30, 12, 25)]
    data = WindowSliceDataset(volumes, [(5, 25), (2, 8), (0, 10)], [1, 0, 1], scans_per_batch=2,
                              channels=3)  # fmt: skip
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert int(model.optimizer.iterations) == len(data) == 2


# ---- step 1 inference: embeddings, scan predictions, Mean-N --------------------------------


def test_embed_scans_matches_one_predict_per_scan():
    embedder = slice_embedding_model(_small_cnn(channels=3))
    volumes = [RNG.uniform(0, 255, (n, 32, 32)).astype("float32") for n in (7, 1, 12)]
    got = embed_scans(embedder, volumes, batch_size=5, progress=False)  # 20 slices: 4 batches
    assert [g.shape for g in got] == [(7, 8), (1, 8), (12, 8)]
    for g, volume in zip(got, volumes):
        x = np.repeat(volume[..., None], 3, axis=-1)
        np.testing.assert_allclose(g, embedder.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match=r"volumes\[1\]\.shape=\(3, 16, 16\)"):
        embed_scans(embedder, [volumes[0], np.zeros((3, 16, 16))], progress=False)


def _scans():
    # scans whose slices differ, so that different draws give different probabilities
    return [RNG.uniform(0, 255, (n, 32, 32, 1)).astype("float32") for n in (40, 15, 26)]


def test_predict_scans_is_the_mean_of_16_sampled_slices():
    model = _small_cnn(channels=1)
    scans, windows = _scans(), [(10, 30), (2, 9), (3, 16)]
    result = predict_scans(model, scans, windows, num_draws=4, seed=7, batch_size=16)
    assert result.per_draw.shape == (4, 3) and result.mean.shape == (3,)
    for d in range(4):
        for i, (scan, window) in enumerate(zip(scans, windows)):
            idx = sample_window_slices(len(scan), window, np.random.default_rng([7, d, i]))
            expected = model.predict(scan[idx], verbose=0).mean()
            assert result.per_draw[d, i] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(result.mean, result.per_draw.mean(axis=0))
    assert np.ptp(result.per_draw, axis=0).max() > 0  # the single draws spread
    single = predict_scans(model, scans, windows, num_draws=1, seed=7)
    np.testing.assert_allclose(single.per_draw[0], result.per_draw[0], rtol=1e-5)  # draw 0 = draw 0
    with pytest.raises(ValueError, match="one entry per scan"):
        predict_scans(model, scans, windows[:2])


def test_ensemble_is_the_mean_of_the_heads():
    a, b, c = RNG.uniform(size=(3, 6))
    np.testing.assert_allclose(ensemble_probabilities(a, b, c), (a + b + c) / 3)
    np.testing.assert_allclose(ensemble_probabilities(a, b, weights=[3, 1]), 0.75 * a + 0.25 * b)
    with pytest.raises(ValueError, match="same shape"):
        ensemble_probabilities(a, b[:3])
    with pytest.raises(ValueError, match="weights"):
        ensemble_probabilities(a, b, weights=[1, -1])


# ---- step 2: the BiLSTM head ------------------------------------------------------------------


def _lstm_numpy(x, kernel, recurrent, bias, reverse=False):
    """Keras's LSTM (gates i, f, c, o; sigmoid / tanh), one sequence (T, D) -> outputs (T, U)."""
    units = recurrent.shape[0]
    h, c, outputs = np.zeros(units), np.zeros(units), []
    steps = range(len(x) - 1, -1, -1) if reverse else range(len(x))
    for t in steps:
        z = x[t] @ kernel + h @ recurrent + bias
        i, f, g, o = (z[k * units : (k + 1) * units] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        outputs.append(h)
    outputs = np.array(outputs[::-1] if reverse else outputs)
    return outputs, h


def _two_step_lstm_numpy(model, x, num_layers):
    results = []
    for sequence in x.astype("float64"):
        for layer in range(1, num_layers + 1):
            w = _weights(model, f"two_step_lstm_bilstm{layer}")
            forward, h_forward = _lstm_numpy(sequence, *w[:3])
            backward, h_backward = _lstm_numpy(sequence, *w[3:], reverse=True)
            sequence = np.concatenate([forward, backward], axis=1)
        hidden = np.concatenate([h_forward, h_backward]) @ _weights(model, "two_step_lstm_dense")[0]
        hidden = hidden + _weights(model, "two_step_lstm_dense")[1]
        gamma, beta = _weights(model, "two_step_lstm_norm")
        hidden = (hidden - hidden.mean()) / np.sqrt(hidden.var() + 1e-5) * gamma + beta
        w, b = _weights(model, "two_step_lstm_output")
        results.append(_sigmoid(np.maximum(hidden, 0.0) @ w + b))
    return np.array(results)


def test_two_step_lstm_matches_a_numpy_bilstm_and_the_authors_head():
    model = build_two_step_lstm(sequence_length=8, embedding_dim=6, units=3, head_units=5)
    assert model.get_layer("two_step_lstm_states").output.shape == (None, 6)  # 2 x units
    assert model.get_layer("two_step_lstm_dropout1").rate == pytest.approx(0.1)
    assert model.get_layer("two_step_lstm_dropout2").rate == pytest.approx(0.15)
    for layer in model.layers:  # non-zero biases and LayerNorm parameters, so they are checked
        if layer.weights and not layer.name.startswith("two_step_lstm_input"):
            layer.set_weights([RNG.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])
    x = RNG.normal(size=(3, 8, 6)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), _two_step_lstm_numpy(model, x, 4), rtol=1e-4, atol=1e-6
    )


def test_two_step_lstm_paper_sizes():
    model = build_two_step_lstm()
    assert model.input_shape == (None, 120, 224) and model.output_shape == (None, 1)
    lstm = 4 * (128 * (224 + 128) + 128) * 2 + 3 * 4 * (128 * (256 + 128) + 128) * 2
    head = 256 * 64 + 64 + 2 * 64 + 64 + 1
    assert model.count_params() == lstm + head
    variable = build_two_step_lstm(sequence_length=None, embedding_dim=4, units=2, num_layers=1)
    assert variable.predict(np.zeros((1, 11, 4)), verbose=0).shape == (1, 1)


def test_two_step_lstm_trains_on_fresh_draws():
    embeddings = [RNG.normal(size=(n, 6)).astype("float32") for n in (5, 14, 9, 20)]
    data = EmbeddingSequenceDataset(embeddings, [0, 1, 0, 1], num_slices=8, batch_size=2)
    model = build_two_step_lstm(sequence_length=8, embedding_dim=6, units=3, num_layers=1)
    model.compile(keras.optimizers.AdamW(3e-5, weight_decay=1e-3), "binary_crossentropy")
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and int(model.optimizer.iterations) == 2


# ---- step 2: the Swin head --------------------------------------------------------------------


def test_two_step_swin_is_pooled_backbone_then_sigmoid():
    model = _tiny_swin()
    backbone = model.get_layer("two_step_swin_backbone")
    assert backbone.output_shape == (None, 16, 16)  # (8 x 8 patches -> 4 x 4 tokens, width 16)
    x = RNG.normal(size=(3, 16, 16)).astype("float32")
    tokens = np.asarray(backbone.predict(x[..., None], verbose=0), "float64")
    w, b = _weights(model, "two_step_swin_output")
    expected = _sigmoid(tokens.mean(axis=1) @ w + b)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    assert model.count_params() == backbone.count_params() + 16 + 1


def test_two_step_swin_arguments_are_checked():
    with pytest.raises(ValueError, match="num_slices=20"):
        build_two_step_swin(20, 16, embed_dim=8, depths=(1, 1), num_heads=(1, 2), patch_size=4)
    with pytest.raises(ValueError, match="num_heads"):
        build_two_step_swin(16, 16, embed_dim=8, depths=(1, 1), num_heads=(3, 2), patch_size=2)
    with pytest.raises(ValueError, match="preset='large'"):
        build_two_step_swin(preset="large")
    with pytest.raises(ValueError, match=r"valid ones are \['depths'.*Received: windows=4"):
        build_two_step_swin(16, 16, windows=4)  # a misspelt size names the valid ones


def test_two_step_swin_quick_preset_at_224():
    model = build_two_step_swin()
    assert model.input_shape == (None, 224, 224) and model.output_shape == (None, 1)
    backbone = model.get_layer("two_step_swin_backbone")
    assert backbone.output_shape == (None, 28 * 28, 64)  # 56 x 56 patches, one merge


# ---- .keras round trips -----------------------------------------------------------------------


def test_keras_file_round_trips():
    assert_keras_file_roundtrip(_small_cnn(), RNG.uniform(0, 255, (2, 32, 32, 3)).astype("float32"))
    lstm = build_two_step_lstm(sequence_length=8, embedding_dim=6, units=3, head_units=5)
    assert_keras_file_roundtrip(lstm, RNG.normal(size=(2, 8, 6)).astype("float32"))
    assert_keras_file_roundtrip(_tiny_swin(), RNG.normal(size=(2, 16, 16)).astype("float32"))
