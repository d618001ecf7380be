"""Model of paper 004: an ImageNet InceptionV3 with a new head classifies radiographs by IRMA code.

Nkwentsha et al. remove InceptionV3's classification layer and add global average pooling,
``Dense(1024, relu)`` and ``Dense(num_classes, softmax)``, then fine-tune the whole network on
512 x 512 three-channel radiographs (Section III-C) with SGD, learning rate 0.01 and Keras 2's
``decay=1e-6``, batch 16, 25 epochs, categorical cross-entropy (Section IV-A).

- `build_inception_classifier`: that model, through `kerasmed.models.backbones.get_backbone`
  (``weights="imagenet"`` downloads once; offline, the error names the way out);
- `xray_optimizer`: the paper's SGD with the decay as a schedule
  (`kerasmed.schedules.legacy_decay_schedule`);
- `compile_xray_classifier`: compiles a model with that optimizer and the paper's loss.

For a CPU, ``backbone="small_cnn"`` swaps InceptionV3 for the project's small CNN under the
same head, and InceptionV3 itself takes inputs down to 75 x 75 (``benchmarks/xray_train_step.py``
measures a training step of each).

Reference: X. Nkwentsha, A. Hounkanrin, F. Nicolls, *Automatic classification of medical X-ray
images with convolutional neural networks*, Sections III-C and IV-A; C. Szegedy et al.,
*Rethinking the Inception architecture for computer vision*, CVPR 2016 (InceptionV3).
"""

from __future__ import annotations

import keras
from keras import layers

from kerasmed.models.backbones import get_backbone
from kerasmed.schedules import legacy_decay_schedule
from kerasmed.validation import check_positive_int

__all__ = [
    "PAPER_BATCH_SIZE",
    "PAPER_EPOCHS",
    "build_inception_classifier",
    "xray_optimizer",
    "compile_xray_classifier",
]

PAPER_BATCH_SIZE = 16
PAPER_EPOCHS = 25


def build_inception_classifier(
    num_classes,
    input_shape=(512, 512, 3),
    weights="imagenet",
    backbone="inception_v3",
    dense_units=1024,
    input_max=255.0,
    name="xray_classifier",
    **backbone_kwargs,
):
    """InceptionV3 without its top, global average pooling, Dense(1024, ReLU), Dense(softmax).

    The model takes images with intensities in ``[0, input_max]`` (the output of
    `kerasmed.preprocessing.prepare_radiograph`, cast to float) and maps them to ``[-1, 1]``
    with a ``Rescaling`` layer, the scaling InceptionV3's ImageNet weights were trained with
    (``keras.applications.inception_v3.preprocess_input``). The backbone's global average
    pooling is the paper's pooling layer (``get_backbone(..., pooling="avg")``).

    Layers: ``f"{name}_input"``, ``f"{name}_rescale"``, the backbone (a nested model named after
    it, e.g. ``"inception_v3"``), ``f"{name}_dense"``, ``f"{name}_predictions"``.

    Args:
        num_classes: number of IRMA classes (193 in ImageCLEF 2009).
        input_shape: ``(H, W, 3)``; InceptionV3 needs H, W >= 75 (paper: 512 x 512).
        weights: ``"imagenet"`` (the paper), ``None`` (random initialisation), or the path of a
            weights file for the backbone (keras.applications' ``*_notop.h5``).
        backbone: ``"inception_v3"`` (the paper), ``"small_cnn"`` (for CPU runs) or any name
            `get_backbone` takes.
        dense_units: units of the hidden dense layer (paper: 1024).
        input_max: the largest input intensity: 255 for 8-bit images, 65535 for 16-bit ones.
        name: name of the model and prefix of its layer names.
        **backbone_kwargs: passed to `get_backbone` (e.g. ``filters=(16, 32, 64)``,
            ``feature_dim=128`` for ``"small_cnn"``).

    Returns:
        A ``keras.Model`` mapping ``(B, H, W, 3)`` images to ``(B, num_classes)`` probabilities.

    Example:

    >>> model = build_inception_classifier(6, (75, 75, 3), weights=None)
    >>> model.output_shape, model.get_layer("inception_v3").output_shape
    ((None, 6), (None, 2048))

    Reference: Nkwentsha et al., Section III-C.
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    dense_units = check_positive_int(dense_units, "dense_units")
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (H, W, C). Received: input_shape={input_shape}")
    if not input_max > 0:
        raise ValueError(f"`input_max` must be positive. Received: input_max={input_max}")
    features = get_backbone(backbone, tuple(input_shape), weights=weights, **backbone_kwargs)
    inputs = keras.Input(tuple(input_shape), name=f"{name}_input")
    x = layers.Rescaling(2.0 / float(input_max), offset=-1.0, name=f"{name}_rescale")(inputs)
    x = features(x)
    x = layers.Dense(dense_units, activation="relu", name=f"{name}_dense")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=f"{name}_predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def xray_optimizer(learning_rate=0.01, decay=1e-6, momentum=0.0):
    """The paper's optimizer: SGD, learning rate 0.01, Keras 2's ``decay=1e-6``.

    Update ``t`` (0, 1, ...) uses ``learning_rate / (1 + decay * t)``, as Keras 2's SGD did
    (`kerasmed.schedules.legacy_decay_schedule`). The paper names no momentum; Keras 2's SGD
    default was 0.

    Args:
        learning_rate: initial learning rate.
        decay: Keras 2's per-update decay.
        momentum: SGD momentum.

    Returns:
        A ``keras.optimizers.SGD``.

    Example:

    >>> optimizer = xray_optimizer()
    >>> round(float(optimizer.learning_rate), 6), optimizer.momentum
    (0.01, 0.0)

    Reference: Nkwentsha et al., Section IV-A.
    """
    schedule = legacy_decay_schedule(learning_rate, decay)
    return keras.optimizers.SGD(learning_rate=schedule, momentum=momentum)


def compile_xray_classifier(model, optimizer=None, metrics=("accuracy",), **compile_kwargs):
    """Compiles `model` as the paper trains it: categorical cross-entropy, `xray_optimizer`.

    Labels are one-hot (``keras.utils.to_categorical``). The paper's batch size and epochs are
    `PAPER_BATCH_SIZE` (16) and `PAPER_EPOCHS` (25), for ``fit``.

    Args:
        model: a model from `build_inception_classifier`.
        optimizer: default `xray_optimizer()`.
        metrics: metrics to report (default accuracy, the paper's Table I).
        **compile_kwargs: passed to ``model.compile`` (e.g. ``jit_compile``).

    Returns:
        `model`, compiled.

    Example:

    >>> model = build_inception_classifier(3, (32, 32, 3), weights=None, backbone="small_cnn")
    >>> compile_xray_classifier(model).loss
    'categorical_crossentropy'

    Reference: Nkwentsha et al., Section IV-A.
    """
    model.compile(
        optimizer=optimizer if optimizer is not None else xray_optimizer(),
        loss="categorical_crossentropy",
        metrics=list(metrics),
        **compile_kwargs,
    )
    return model
