"""Tests of the wrapper layers (FrameWise, Remat, SliceEncoder) and their one mechanism."""

from pathlib import Path

import keras
import numpy as np
import pytest
from layer_checks import assert_keras_file_roundtrip, check_layer

from kerasmed.layers import FrameWise, Remat, SliceEncoder, fold_time, run_in_chunks, unfold_time

DATA = Path(__file__).parent / "data"


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def frame_cnn(shape=(8, 8, 1), filters=3, batch_norm=True):
    """A small functional frame model: conv (+ batch norm) + pooling + dense."""
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv")(inputs)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(4, name="dense")(x)
    return keras.Model(inputs, x, name="frame_cnn")


def test_fold_and_unfold_time_are_inverse(rng):
    x = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    frames, leading = fold_time(x)
    assert tuple(frames.shape) == (6, 4, 5)
    np.testing.assert_array_equal(to_numpy(frames)[4], x[1, 1])
    np.testing.assert_array_equal(to_numpy(unfold_time(frames, leading)), x)
    pair, _ = fold_time([x, x[..., :2]])
    assert [tuple(p.shape) for p in pair] == [(6, 4, 5), (6, 4, 2)]


def test_framewise_equals_the_model_on_each_frame(rng):
    x = rng.normal(size=(2, 5, 8, 8, 1)).astype("float32")
    model = frame_cnn(batch_norm=False)
    expected = np.stack([to_numpy(model(x[:, t])) for t in range(5)], axis=1)
    for options in ({}, {"chunk_size": 3}, {"chunk_size": 4, "loop": "scan"}, {"remat": True}):
        got = to_numpy(FrameWise(model, **options)(x))
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=str(options))


@pytest.mark.parametrize(
    "options, batch_norm",
    [({}, True), ({"chunk_size": 3}, False), ({"chunk_size": 3, "remat": True}, False),
     ({"remat": True}, True), ({"remat": True, "chunk_size": 10}, True)],
    ids=["plain", "chunks", "chunks-remat", "remat", "one-chunk-remat"],
)  # fmt: skip
def test_run_in_chunks_gives_the_plain_outputs_gradients_and_statistics(rng, options, batch_norm):
    """Outputs, gradients (one SGD step with rate 1) and batch-norm statistics all match (with
    batch normalization only where one call sees all frames: a chunk is normalized by its own
    batch statistics)."""
    x = rng.normal(size=(2, 5, 8, 8, 1)).astype("float32")
    y = rng.normal(size=(2, 5, 4)).astype("float32")
    keras.utils.set_random_seed(0)
    weights = frame_cnn(batch_norm=batch_norm).get_weights()
    models = []
    for wrapper_options in ({}, options):
        cnn = frame_cnn(batch_norm=batch_norm)
        cnn.set_weights(weights)
        inputs = keras.Input((5, 8, 8, 1))
        model = keras.Model(inputs, FrameWise(cnn, **wrapper_options)(inputs))
        model.compile(keras.optimizers.SGD(learning_rate=1.0), "mse")
        model.train_on_batch(x, y)
        models.append(model)
    moved = [w - np.asarray(v) for w, v in zip(weights, models[0].weights)]
    assert max(np.abs(m).max() for m in moved) > 1e-4  # the gradients are not zero
    for reference, got in zip(models[0].weights, models[1].weights):
        np.testing.assert_allclose(np.asarray(got), np.asarray(reference), atol=1e-5)
    np.testing.assert_allclose(
        models[1].predict(x, verbose=0), models[0].predict(x, verbose=0), atol=1e-5
    )


def test_framewise_passes_several_inputs_and_the_mask(rng):
    a = keras.Input((3, 4))
    b = keras.Input((3, 2))
    merged = FrameWise(keras.layers.Concatenate())([a, b])
    assert tuple(merged.shape) == (None, 3, 6)
    layer = FrameWise(keras.layers.Dense(2))
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    mask = np.array([[True, True, False], [True, False, False]])
    assert layer.compute_mask(x, mask) is mask


@pytest.mark.parametrize(
    "cls, kwargs, input_shape, output_shape",
    [
        (FrameWise, {"chunk_size": 2}, (2, 3, 8, 8, 1), (2, 3, 4)),
        (Remat, {}, (2, 8, 8, 1), (2, 4)),
        (
            SliceEncoder,
            {"slice_chunk": 2, "remat": True, "split_layer": "pool"},
            (2, 3, 8, 8, 1),
            (2, 3, 4),
        ),
    ],
    ids=["FrameWise", "Remat", "SliceEncoder"],
)
def test_keras_layer_checks(cls, kwargs, input_shape, output_shape):
    model = frame_cnn(batch_norm=False)
    argument = "slice_model" if cls is SliceEncoder else "layer"
    check_layer(
        cls,
        {argument: model, **kwargs},
        input_shape=input_shape,
        expected_output_shape=output_shape,
        expected_num_trainable_weights=4,
        run_mixed_precision_check=False,
    )


def test_keras_file_round_trip_keeps_the_options(rng):
    x = rng.normal(size=(1, 4, 8, 8, 1)).astype("float32")
    inputs = keras.Input((None, 8, 8, 1))
    wrapper = FrameWise(frame_cnn(), chunk_size=3, remat=True, split_layer="pool", name="frames")
    model = keras.Model(inputs, Remat(keras.layers.Dense(2), name="head")(wrapper(inputs)))
    loaded = assert_keras_file_roundtrip(model, x, atol=1e-5)
    frames = loaded.get_layer("frames")
    assert isinstance(frames, FrameWise) and isinstance(loaded.get_layer("head"), Remat)
    assert (frames.chunk_size, frames.remat, frames.split_layer, frames.loop) == (
        3,
        True,
        "pool",
        "auto",
    )


@pytest.mark.parametrize(
    "name, cls", [("slice_encoder", SliceEncoder), ("framewise", FrameWise), ("remat", Remat)]
)
def test_files_saved_with_the_registered_names_still_load(name, cls):
    """``.keras`` files saved when the wrappers lived in kerasmed.models (same registered names
    ``kerasmed>SliceEncoder``, ``kerasmed>FrameWise``, ``kerasmed>Remat``) load and predict the
    outputs they were saved with."""
    arrays = np.load(DATA / "saved_wrappers.npz")
    model = keras.saving.load_model(DATA / f"{name}.keras")
    assert any(isinstance(layer, cls) for layer in model.layers)
    got = model.predict(arrays[f"{name}_x"], verbose=0)
    np.testing.assert_allclose(got, arrays[f"{name}_y"], atol=1e-5)


def test_bad_arguments_are_refused():
    cnn = frame_cnn(batch_norm=False)
    with pytest.raises(ValueError, match="Received: chunk_size=0"):
        FrameWise(cnn, chunk_size=0)
    with pytest.raises(ValueError, match="Received: loop='unrolled'"):
        FrameWise(cnn, loop="unrolled")
    with pytest.raises(ValueError, match="Received: split_layer='nope'"):
        FrameWise(cnn, split_layer="nope")
    with pytest.raises(ValueError, match="must hold no random state"):
        FrameWise(keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5)]), chunk_size=2)
    with pytest.raises(ValueError, match="needs a single input tensor"):
        run_in_chunks(keras.layers.Concatenate(), [np.ones((2, 1)), np.ones((2, 1))], chunk_size=1)
    with pytest.raises(ValueError, match="expected ndim=5, found ndim=4"):
        SliceEncoder(cnn)(np.zeros((2, 8, 8, 1), "float32"))
