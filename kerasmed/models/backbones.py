"""Image backbones shared by the paper models: ``keras.applications`` and small CNNs for CPU runs."""

from __future__ import annotations

import os

import keras
from keras import layers

# Small CNNs defined here (name -> builder); every other name is looked up in keras.applications.
_SMALL = ("small_cnn",)


def _application(name):
    wanted = name.lower().replace("_", "").replace("-", "")
    for attr in dir(keras.applications):
        if attr[0].isupper() and attr.lower() == wanted:
            return getattr(keras.applications, attr)
    return None


def backbone_names():
    """The names `get_backbone` accepts: the small CNNs and every ``keras.applications`` model."""
    apps = [a for a in dir(keras.applications) if a[0].isupper()]
    return list(_SMALL) + apps


def build_small_cnn(
    input_shape, filters=(16, 32, 64, 128), feature_dim=128, dropout=0.0, name="small_cnn"
):
    """An AlexNet-like CNN for small images: conv-BN-ReLU-pool blocks, then a dense feature layer.

    BatchNorm after every convolution makes it train reliably with batch 32 on the simulated exams
    (without it, large batches stalled at predicting every label absent).

    Args:
        input_shape: ``(H, W, C)``.
        filters: filters of each conv block (each block halves the spatial size).
        feature_dim: width of the output feature vector (ReLU).
        dropout: dropout rate before the feature layer.
        name: model name; layers are named ``f"{name}_conv{i}"`` etc.

    Returns:
        A ``keras.Model`` mapping ``(B, H, W, C)`` images to ``(B, feature_dim)`` features.

    Example:

    >>> cnn = build_small_cnn((32, 32, 1), filters=(8, 16), feature_dim=32)
    >>> cnn.output_shape
    (None, 32)
    """
    if not filters:
        raise ValueError(f"`filters` must name at least one block. Received: filters={filters}")
    inputs = keras.Input(input_shape, name=f"{name}_input")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"{name}_pool{i}")(x)
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Dense(feature_dim, activation="relu", name=f"{name}_features")(x)
    return keras.Model(inputs, x, name=name)


def get_backbone(name, input_shape, weights=None, pooling="avg", trainable=True, **kwargs):
    """Returns an image backbone mapping ``(B, H, W, C)`` images to ``(B, D)`` feature vectors.

    Args:
        name: ``"small_cnn"`` (the AlexNet-like CNN used on the simulated data), or any
            ``keras.applications`` model, by class name or snake case (``"inception_v3"``,
            ``"InceptionV3"``, ``"resnet50"``, ...). The paper's x-ray model is ``"inception_v3"``
            (2048-d pooled features).
        input_shape: ``(H, W, C)``.
        weights: ``None`` (random initialisation), ``"imagenet"`` (downloads once into
            ``KERAS_HOME``), or the path of a local weights file.
        pooling: global pooling of ``keras.applications`` models (``"avg"`` or ``"max"``).
        trainable: set ``False`` to freeze the backbone (feature extraction).
        **kwargs: passed to `build_small_cnn` (``filters``, ``feature_dim``, ``dropout``).

    Returns:
        A ``keras.Model``.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: `weights` is a path that does not exist.
        RuntimeError: ImageNet weights could not be downloaded (the message names the way out).

    Example:

    >>> cnn = get_backbone("small_cnn", (32, 32, 1), feature_dim=16)
    >>> cnn.output_shape
    (None, 16)
    """
    if name in _SMALL:
        if weights not in (None, "none"):
            if not os.path.exists(str(weights)):
                raise FileNotFoundError(
                    f"{name} has no pretrained weights; pass weights=None or a local file. "
                    f"Received: weights={weights!r}"
                )
        model = build_small_cnn(input_shape, **kwargs)
        if weights not in (None, "none"):
            model.load_weights(weights)
    else:
        app = _application(name)
        if app is None:
            raise ValueError(
                f"Unknown backbone. Valid: small_cnn or a keras.applications model "
                f"({', '.join(backbone_names()[1:6])}, ...). Received: name={name!r}"
            )
        if weights not in (None, "imagenet") and not os.path.exists(str(weights)):
            raise FileNotFoundError(f"Weights file not found. Received: weights={weights!r}")
        try:
            model = app(
                include_top=False, weights=weights, input_shape=input_shape, pooling=pooling
            )
        except Exception as error:
            if weights != "imagenet" or isinstance(error, ValueError):
                raise
            raise RuntimeError(
                f"Could not download ImageNet weights for {name} ({type(error).__name__}: {error}). "
                f"Use weights=None to train from scratch, or pass weights='/path/to/file.h5' "
                f"with a weights file downloaded elsewhere (keras.applications' *_notop.h5)."
            ) from error
    model.trainable = trainable
    return model


def layer_output_model(model, layer_name, argument="model", hint="", name=None):
    """A model from `model`'s input(s) to the output of its layer `layer_name` (shared weights).

    Used for the feature / embedding sub-model of a classifier (`slice_feature_model` of paper
    001, `slice_embedding_model` of paper 003).

    Args:
        model: a functional `keras.Model`.
        layer_name: the name of the layer whose output ends the sub-model.
        argument: the argument name the error message uses for `model`.
        hint: a sentence appended to the error message.
        name: the sub-model's name.

    Returns:
        A `keras.Model` sharing `model`'s weights.

    Example:

    >>> cnn = build_small_cnn((16, 16, 1), filters=(2,), feature_dim=3, name="cnn")
    >>> layer_output_model(cnn, cnn.layers[-2].name).output_shape[0] is None
    True
    """
    try:
        layer = model.get_layer(layer_name)
    except ValueError as error:
        raise ValueError(
            f"`{argument}` has no layer {layer_name!r}{hint}. Received: layer_name={layer_name!r}"
        ) from error
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, layer.output, name=name)
