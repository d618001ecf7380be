"""Models of paper 000: single-image CNN, LSTM and time-modulated LSTM over a patient's exams.

Every sequence model reads a dict of right-padded inputs (the keys `kerasmed.data` batches use):

- ``"images"`` ``(B, T, H, W, C)`` (end to end) *or* ``"features"`` ``(B, T, D)`` (two-stage:
  features precomputed by a frozen backbone, as the paper does);
- ``"previous_labels"`` ``(B, T, L)``: the labels of the previous exam, zeros at the first exam;
- ``"time"`` ``(B, T, K)``: the time lapse since the previous exam, raw (K = 1, the paper's) or
  encoded (see ``kerasmed.preprocessing.encode_time_deltas``);
- ``"mask"`` ``(B, T)`` bool: True on real exams.

and predicts the labels of the last real exam ``(B, L)``, or of every exam ``(B, T, L)`` with
``return_sequences=True`` (supervising every step; evaluate on the last one).

Reference: R. Santeramo, S. Withey, G. Montana, *Longitudinal detection of radiological
abnormalities with time-modulated LSTM*, 2018.
"""

from __future__ import annotations

import keras
from keras import layers

from kerasmed.layers.time_modulated_lstm import TimeModulatedLSTM
from kerasmed.models.backbones import get_backbone


def _check_source(feature_dim, image_shape):
    if (feature_dim is None) == (image_shape is None):
        raise ValueError(
            "Pass exactly one of `feature_dim` (precomputed features) or `image_shape` (end to "
            f"end). Received: feature_dim={feature_dim}, image_shape={image_shape}"
        )


def _sequence_inputs(
    num_labels, feature_dim, image_shape, time_features, backbone, backbone_kwargs, name
):
    """Builds the input dict and returns (inputs, per-step features, previous labels, time, mask)."""
    _check_source(feature_dim, image_shape)
    if num_labels < 1:
        raise ValueError(f"`num_labels` must be >= 1. Received: num_labels={num_labels}")
    inputs = {}
    if feature_dim is not None:
        inputs["features"] = keras.Input((None, feature_dim), name="features")
        features = inputs["features"]
    else:
        inputs["images"] = keras.Input((None, *image_shape), name="images")
        cnn = backbone
        if not isinstance(cnn, keras.Model):
            cnn = get_backbone(backbone, tuple(image_shape), **(backbone_kwargs or {}))
        features = layers.TimeDistributed(cnn, name=f"{name}_backbone")(inputs["images"])
    inputs["previous_labels"] = keras.Input((None, num_labels), name="previous_labels")
    inputs["time"] = keras.Input((None, time_features), name="time")
    inputs["mask"] = keras.Input((None,), dtype="bool", name="mask")
    return inputs, features, inputs["previous_labels"], inputs["time"], inputs["mask"]


def _head(x, num_labels, dropout, name):
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(num_labels, activation="sigmoid", name=f"{name}_labels")(x)


def build_tlstm_model(
    num_labels,
    units=64,
    version=1,
    feature_dim=None,
    image_shape=None,
    time_features=1,
    recurrent=False,
    return_sequences=False,
    implementation="auto",
    dropout=0.0,
    backbone="small_cnn",
    backbone_kwargs=None,
    name="tlstm",
):
    """Backbone per exam -> `TimeModulatedLSTM` -> ``Dense(num_labels, sigmoid)``.

    Args:
        num_labels: number of labels L (multi-label, one sigmoid each).
        units: tLSTM units.
        version: 1 (Eq. 1: the time lapse modulates every gate) or 2 (Eq. 2: it is added to the
            cell state).
        feature_dim: width D of precomputed per-exam features (two-stage training), or
        image_shape: ``(H, W, C)`` of the exams, to train the backbone end to end.
        time_features: width K of the ``"time"`` input (1: the paper's raw lapse).
        recurrent: also feed the previous output back into the gates (our extension).
        return_sequences: predict every exam (per-step supervision) instead of the last.
        implementation: ``"auto"``, ``"scan"`` or ``"loop"`` (see `TimeModulatedLSTM`).
        dropout: dropout before the output layer.
        backbone: a ``keras.Model`` or a `get_backbone` name, used with `image_shape`.
        backbone_kwargs: extra arguments of `get_backbone` (``weights``, ``feature_dim``...).
        name: model name, prefix of its layer names.

    Returns:
        A ``keras.Model`` taking the dict described in the module docstring.

    Example:

    >>> model = build_tlstm_model(num_labels=5, units=8, feature_dim=16)
    >>> model.output_shape
    (None, 5)

    Reference: Santeramo et al., 2018, Eq. (1) and (2).
    """
    inputs, features, labels, time, mask = _sequence_inputs(
        num_labels, feature_dim, image_shape, time_features, backbone, backbone_kwargs, name
    )
    rnn = TimeModulatedLSTM(
        units,
        num_labels=num_labels,
        version=version,
        time_features=time_features,
        recurrent=recurrent,
        implementation=implementation,
        return_sequences=return_sequences,
        name=f"{name}_tlstm",
    )
    x = rnn([features, labels, time], mask=mask)
    return keras.Model(inputs, _head(x, num_labels, dropout, name), name=name)


def build_lstm_model(
    num_labels,
    units=64,
    feature_dim=None,
    image_shape=None,
    time_features=1,
    use_time=False,
    return_sequences=False,
    dropout=0.0,
    backbone="small_cnn",
    backbone_kwargs=None,
    name="lstm",
):
    """The paper's LSTM baseline: ``keras.layers.LSTM`` over ``[features, previous labels]``.

    With ``use_time=True`` the (encoded) time lapse is concatenated to the LSTM input as one more
    feature: this separates what time itself brings from what the tLSTM structure brings.

    Args:
        num_labels: number of labels L.
        units: LSTM units.
        feature_dim: width of precomputed features, or
        image_shape: ``(H, W, C)`` for end-to-end training.
        time_features: width of the ``"time"`` input (always an input, used only if `use_time`).
        use_time: concatenate the time input to the LSTM input.
        return_sequences: predict every exam instead of the last.
        dropout: dropout before the output layer.
        backbone: a ``keras.Model`` or a `get_backbone` name, used with `image_shape`.
        backbone_kwargs: extra arguments of `get_backbone`.
        name: model name.

    Returns:
        A ``keras.Model`` with the same inputs as `build_tlstm_model`.

    Example:

    >>> model = build_lstm_model(num_labels=5, units=8, feature_dim=16)
    >>> model.output_shape
    (None, 5)
    """
    inputs, features, labels, time, mask = _sequence_inputs(
        num_labels, feature_dim, image_shape, time_features, backbone, backbone_kwargs, name
    )
    parts = [features, labels, time] if use_time else [features, labels]
    x = layers.Concatenate(name=f"{name}_concat")(parts)
    x = layers.LSTM(units, return_sequences=return_sequences, name=f"{name}_lstm")(x, mask=mask)
    return keras.Model(inputs, _head(x, num_labels, dropout, name), name=name)


def build_single_image_model(
    num_labels,
    image_shape,
    backbone="small_cnn",
    backbone_kwargs=None,
    dropout=0.0,
    name="single_image",
):
    """The single-image baseline: the CNN on the current exam only, ``Dense(num_labels, sigmoid)``.

    Args:
        num_labels: number of labels L.
        image_shape: ``(H, W, C)``.
        backbone: a ``keras.Model`` or a `get_backbone` name.
        backbone_kwargs: extra arguments of `get_backbone`.
        dropout: dropout before the output layer.
        name: model name.

    Returns:
        A ``keras.Model`` mapping ``(B, H, W, C)`` to ``(B, L)``; its backbone is
        ``model.layers[1]`` (reuse it to precompute features for the sequence models).

    Example:

    >>> model = build_single_image_model(5, (32, 32, 1), backbone_kwargs={"feature_dim": 8})
    >>> model.output_shape
    (None, 5)
    """
    cnn = backbone
    if not isinstance(cnn, keras.Model):
        cnn = get_backbone(backbone, tuple(image_shape), **(backbone_kwargs or {}))
    inputs = keras.Input(tuple(image_shape), name="image")
    return keras.Model(inputs, _head(cnn(inputs), num_labels, dropout, name), name=name)
