"""Models of paper 001: a VGG-like slice CNN and the CNN + 2 x bidirectional LSTM volume classifier.

Patel et al. classify a whole head CT as {no ICH, ICH}. A 2D CNN turns every axial slice into a
512-d feature vector; two bidirectional LSTM layers (512 units, the two directions *summed*) read
the N vectors of a volume, and a softmax gives the class probabilities. N is not fixed: the model
input is ``(batch, None, H, W, 1)``.

- `build_slice_cnn`: the slice CNN (with an optional softmax head for slice pre-training);
- `slice_feature_model`: the feature part of a slice CNN built with a head (shared weights);
- `SliceEncoder` (from `kerasmed.layers.wrappers`, re-exported here): applies a slice CNN to
  every slice of a volume, optionally a chunk of slices at a time and with rematerialization, so
  that a 320-slice 256x256 volume trains in a few GB;
- `build_cnn_bilstm`: the full model of Figure 2.

Reference: A. Patel, S. C. van de Leemput, M. Prokop, B. van Ginneken, R. Manniesing,
*Image level training and prediction: intracranial hemorrhage identification in 3D non-contrast
CT*, IEEE Access, 2019 (Sections III-B and III-C).
"""

from __future__ import annotations

import keras
from keras import layers

from kerasmed.layers.wrappers import SliceEncoder
from kerasmed.models.backbones import layer_output_model
from kerasmed.validation import check_positive_int

__all__ = ["build_slice_cnn", "slice_feature_model", "SliceEncoder", "build_cnn_bilstm"]

_NUM_POOLS = 5


def build_slice_cnn(
    input_shape=(256, 256, 1),
    base_filters=16,
    feature_dim=512,
    dropout=0.5,
    num_classes=None,
    kernel_initializer="glorot_uniform",
    name="slice_cnn",
):
    """The VGG-like slice CNN of Patel et al. (2019): 2D axial slice -> 512-d feature vector.

    Architecture (Section III-B; the text gives the structure, the per-layer filter counts are in
    Figure 2, whose labels are not in the text):

    - five units of two 3x3 convolutions + ReLU (``"same"`` padding) and a 2x2 max pooling with
      stride 2. The number of filters is doubled from unit to unit (before each pooling):
      ``base_filters * 2**k`` for unit ``k = 0..4``, i.e. 16, 32, 64, 128, 256 by default;
    - a sixth unit: one 3x3 convolution + ReLU with ``base_filters * 2**5`` filters (512 by
      default, which matches the 512-d feature vector) and a max pooling over the whole remaining
      map, down to 1x1. For a 256x256 input this is an 8x8 max pooling; for smaller inputs (the
      quick presets' 32x32 or 64x64) the same layer (``GlobalMaxPooling2D``) pools the 1x1 or 2x2
      map that is left, so the block adapts to any input of at least 32x32;
    - two fully connected ReLU layers of `feature_dim` units: the slice's feature vector
      (layer ``f"{name}_features"``);
    - with `num_classes`: an extra ``Dense(num_classes, softmax)`` head for slice pre-training
      (Section III-C1). Dropout (`dropout`, 50% in the paper) is applied "before the first and
      the last dense layer": before the first fully connected layer and before the head.

    Kernels use `kernel_initializer` (the paper does not name one for the CNN; Glorot uniform is
    the default of the Keras it was written with), biases start at zero.

    Args:
        input_shape: ``(H, W, C)`` of one slice; H and W must be at least 32.
        base_filters: filters of the first unit. Default 16.
        feature_dim: units of the two fully connected layers. Default 512.
        dropout: dropout rate before the first dense layer and before the head; 0 disables.
        num_classes: ``None`` (the model outputs the features) or the number of classes of a
            softmax head (2 for the paper's slice pre-training).
        kernel_initializer: initializer of the convolution and dense kernels, e.g.
            ``"glorot_uniform"`` or ``"he_normal"``.
        name: model name and prefix of the layer names: ``f"{name}_conv1"`` ...
            ``f"{name}_conv11"``, ``f"{name}_pool1"`` ... ``f"{name}_pool6"``,
            ``f"{name}_fc1"``, ``f"{name}_features"``, ``f"{name}_head"``.

    Returns:
        A `keras.Model` mapping ``(B, H, W, C)`` to ``(B, feature_dim)``, or to
        ``(B, num_classes)`` probabilities with a head.

    Example:

    >>> cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=8, num_classes=2)
    >>> cnn.output_shape
    (None, 2)

    Reference:
        Patel et al., IEEE Access 2019, Section III-B and Figure 2.
    """
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (H, W, C). Received: input_shape={input_shape}")
    minimum = 2**_NUM_POOLS
    if any(size is not None and size < minimum for size in input_shape[:2]):
        raise ValueError(
            f"Slices must be at least {minimum}x{minimum} (five 2x2 poolings). "
            f"Received: input_shape={input_shape}"
        )
    check_positive_int(base_filters, "base_filters")
    check_positive_int(feature_dim, "feature_dim")
    check_positive_int(num_classes, "num_classes", allow_none=True)
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")

    def conv(x, filters, index):
        return layers.Conv2D(
            filters, 3, padding="same", activation="relu",
            kernel_initializer=kernel_initializer, name=f"{name}_conv{index}",
        )(x)  # fmt: skip

    inputs = keras.Input(input_shape, name=f"{name}_input")
    x, index = inputs, 1
    for unit in range(_NUM_POOLS):
        for _ in range(2):
            x = conv(x, base_filters * 2**unit, index)
            index += 1
        x = layers.MaxPooling2D(2, strides=2, name=f"{name}_pool{unit + 1}")(x)
    x = conv(x, base_filters * 2**_NUM_POOLS, index)
    x = layers.GlobalMaxPooling2D(name=f"{name}_pool{_NUM_POOLS + 1}")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout1")(x)
    x = layers.Dense(
        feature_dim, activation="relu", kernel_initializer=kernel_initializer, name=f"{name}_fc1"
    )(x)
    x = layers.Dense(
        feature_dim, activation="relu", kernel_initializer=kernel_initializer,
        name=f"{name}_features",
    )(x)  # fmt: skip
    if num_classes is not None:
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dropout2")(x)
        x = layers.Dense(
            num_classes, activation="softmax", kernel_initializer=kernel_initializer,
            name=f"{name}_head",
        )(x)  # fmt: skip
    return keras.Model(inputs, x, name=name)


def slice_feature_model(slice_cnn, layer_name=None):
    """The feature part of a slice CNN built with a head, sharing its layers and weights.

    After slice pre-training (Section III-C1) the softmax head is dropped and the CNN produces
    the 512-d vector of each slice (Section IV-A); training the returned model trains the
    pre-trained layers.

    Args:
        slice_cnn: a model from `build_slice_cnn` (or any functional model).
        layer_name: the feature layer; default ``f"{slice_cnn.name}_features"``.

    Returns:
        A `keras.Model` from the slice to the feature layer's output.

    Example:

    >>> cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=8, num_classes=2)
    >>> slice_feature_model(cnn).output_shape
    (None, 8)
    """
    layer_name = layer_name or f"{slice_cnn.name}_features"
    return layer_output_model(slice_cnn, layer_name, "slice_cnn", name=f"{slice_cnn.name}_encoder")


def build_cnn_bilstm(
    slice_shape=(256, 256, 1),
    slice_cnn=None,
    lstm_units=512,
    num_lstm_layers=2,
    num_classes=2,
    slice_chunk=None,
    remat=False,
    use_mask=False,
    base_filters=16,
    feature_dim=512,
    dropout=0.5,
    name="ich",
):
    """The CNN + bidirectional LSTM volume classifier of Patel et al. (2019), Figure 2.

    Every axial slice of a volume with N slices goes through the slice CNN (a 512-d vector
    each), then `num_lstm_layers` ``Bidirectional(LSTM(lstm_units), merge_mode="sum")`` layers
    (the paper's summed directions, Section III-A) -- the last one returns only its final
    output -- and a ``Dense(num_classes, softmax)`` over {no ICH, ICH}. The LSTMs use Glorot
    uniform input kernels, orthogonal recurrent kernels, a forget-gate bias of one and zero
    other biases (Section III-C2).

    The paper trains with one volume per batch; with `use_mask` the model takes a second input
    ``mask`` ``(B, N)`` (True on real slices) so batches of right-padded volumes work (e.g. from
    `kerasmed.data.SequenceDataset`, whose ``(padded, mask)`` batches match the inputs).

    Args:
        slice_shape: ``(H, W, C)`` of a slice.
        slice_cnn: the slice model (``(B, H, W, C) -> (B, D)``); ``None`` builds one with
            `build_slice_cnn(slice_shape, base_filters, feature_dim, dropout)`. A pre-trained CNN
            with a softmax head can be passed through `slice_feature_model`.
        lstm_units: units of each LSTM. Default 512.
        num_lstm_layers: number of bidirectional LSTM layers (2 in the full model, 1 in the
            paper's ablation).
        num_classes: classes of the softmax. Default 2.
        slice_chunk: slices per chunk in the slice CNN (see `SliceEncoder`); ``None``: all.
        remat: recompute the slice CNN's activations in the backward pass.
        use_mask: add the ``mask`` input for padded batches.
        base_filters, feature_dim, dropout: passed to `build_slice_cnn` when `slice_cnn` is
            ``None``.
        name: model name and prefix of the layer names: ``f"{name}_slices"`` (the
            `SliceEncoder`), ``f"{name}_bilstm1"``..., ``f"{name}_output"``.

    Returns:
        A `keras.Model` from ``volume`` ``(B, N, H, W, C)`` (and ``mask`` ``(B, N)``) to
        ``(B, num_classes)`` probabilities.

    Example:

    >>> import numpy as np
    >>> model = build_cnn_bilstm((32, 32, 1), lstm_units=4, base_filters=2, feature_dim=8)
    >>> model.predict(np.zeros((1, 5, 32, 32, 1)), verbose=0).shape
    (1, 2)

    Reference:
        Patel et al., IEEE Access 2019, Sections III-A, III-B and III-C2.
    """
    check_positive_int(lstm_units, "lstm_units")
    check_positive_int(num_lstm_layers, "num_lstm_layers")
    check_positive_int(num_classes, "num_classes")
    check_positive_int(slice_chunk, "slice_chunk", allow_none=True)
    if slice_cnn is None:
        slice_cnn = build_slice_cnn(
            slice_shape, base_filters, feature_dim, dropout, name=f"{name}_cnn"
        )
    volume = keras.Input((None, *slice_shape), name="volume")
    inputs = [volume]
    mask = None
    if use_mask:
        mask = keras.Input((None,), dtype="bool", name="mask")
        inputs.append(mask)
    # Loop (chunk / remat) the slice CNN up to its first layer with random state (dropout).
    split_layer = None
    for previous, layer in zip(slice_cnn.layers, slice_cnn.layers[1:]):
        if layer._seed_generators:
            split_layer = previous.name
            break
    encoder = SliceEncoder(
        slice_cnn, slice_chunk=slice_chunk, remat=remat, split_layer=split_layer,
        name=f"{name}_slices",
    )  # fmt: skip
    x = encoder(volume)
    for i in range(num_lstm_layers):
        lstm = layers.LSTM(
            lstm_units,
            return_sequences=i < num_lstm_layers - 1,
            kernel_initializer="glorot_uniform",
            recurrent_initializer="orthogonal",
            bias_initializer="zeros",
            unit_forget_bias=True,
        )
        x = layers.Bidirectional(lstm, merge_mode="sum", name=f"{name}_bilstm{i + 1}")(x, mask=mask)
    outputs = layers.Dense(num_classes, activation="softmax", name=f"{name}_output")(x)
    return keras.Model(inputs if use_mask else volume, outputs, name=name)
