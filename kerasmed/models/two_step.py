"""Models of paper 003: a 2D slice CNN whose 224-d embeddings feed a BiLSTM or a Swin head.

Hsu et al. classify CT scans (COVID-19 or not) in two steps. Step 1 trains a 2D CNN on single
slices drawn from each scan's lung window; its 224-d pre-logit layer then embeds every slice of
every scan. Step 2 classifies the sorted sequence of a scan's sampled slice embeddings with a
bidirectional LSTM, or reads the 224 x 224 matrix of them as a one-channel image with a Swin
Transformer; the final submission averages the heads' probabilities.

- `build_slice_embedder`: backbone (EfficientNetB3 in the paper) -> global average pooling ->
  Dropout -> Dense(224) (linear: the embedding) -> Dense(1, sigmoid); `slice_embedding_model`
  cuts it at the embedding;
- `build_two_step_lstm`: four stacked ``Bidirectional(LSTM(128))``, the last layer's final
  states concatenated, then the authors' head (Dropout 0.1, Dense 64, LayerNorm, ReLU,
  Dropout 0.15, Dense 1);
- `build_two_step_swin`: ``keras_hub.models.SwinTransformerBackbone`` on the embedding matrix,
  average pooling and Dense(1, sigmoid).

Embedding extraction, scan predictions (Mean-N) and the ensemble are in
`kerasmed.models.two_step_inference`; the sampling rules in `kerasmed.data.slice_sampling`;
the optimizer of the slice CNN (torch's Adam with coupled L2) is `kerasmed.optimizers.AdamL2`.

Reference: C.-C. Hsu, C.-H. Tsai, G.-L. Chen, S.-D. Ma, S.-C. Tai, *Spatiotemporal feature
learning based on two-step LSTM and Transformer for CT scans*, Sections 2.2 and 3.1, and the
authors' code (``train_code/``).
"""

from __future__ import annotations

import keras
from keras import layers

from kerasmed.models.backbones import get_backbone, layer_output_model
from kerasmed.validation import check_one_of, check_positive_int, check_rate

__all__ = [
    "SWIN_PRESETS",
    "build_slice_embedder",
    "slice_embedding_model",
    "build_two_step_lstm",
    "build_two_step_swin",
]

# Swin configurations: "paper" is the size of the authors' timm `swinv2_cr_base_224`.
SWIN_PRESETS = {
    "quick": dict(embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=7, patch_size=4),
    "paper": dict(
        embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=7, patch_size=4
    ),
}


def build_slice_embedder(
    backbone="efficientnet_b3",
    input_shape=(256, 256, 3),
    embedding_dim=224,
    weights=None,
    dropout=0.3,
    name="slice_embedder",
    **backbone_kwargs,
):
    """The step-1 slice CNN: backbone, pooling, linear 224-d embedding, sigmoid output.

    As the authors' code: ``efficientnet_b3a`` -> global average pooling -> (dropout 0.3) ->
    ``Linear(1536, 224)`` -> ``Linear(224, 1)`` with no activation between, trained with binary
    cross-entropy on single slices. Keras's EfficientNetB3 starts with its own rescaling and
    normalization, so it takes intensities 0-255 (the challenge's 8-bit slices) and has
    drop-connect 0.2 (the authors' drop-path 0.2). ``backbone="small_cnn"`` (the project's small
    CNN, for CPU runs) gets a ``Rescaling(1 / 255)`` in front so both take the same input.

    Layers: ``f"{name}_input"``, the backbone (a nested model, e.g. ``"efficientnetb3"``),
    ``f"{name}_dropout"``, ``f"{name}_embedding"``, ``f"{name}_output"``.

    Args:
        backbone: ``"efficientnet_b3"`` (the paper), ``"small_cnn"`` or any `get_backbone` name.
        input_shape: ``(H, W, C)``; the paper's 256 x 256 RGB.
        embedding_dim: width of the embedding (the paper's 224).
        weights: backbone weights: ``None`` (random), ``"imagenet"`` (the paper; downloads
            once) or a local weights file.
        dropout: dropout rate after pooling (the authors' 0.3).
        name: model name and prefix of its layers.
        **backbone_kwargs: passed to `get_backbone` (``filters``, ``feature_dim`` of
            ``"small_cnn"``).

    Returns:
        A ``keras.Model`` mapping ``(B, H, W, C)`` slices to ``(B, 1)`` probabilities.

    Example:

    >>> model = build_slice_embedder("small_cnn", (32, 32, 3), embedding_dim=8,
    ...                              filters=(4, 8), feature_dim=16)
    >>> model.output_shape, slice_embedding_model(model).output_shape
    ((None, 1), (None, 8))

    Reference: Hsu et al., Section 3.1 ("2D CNN model").
    """
    embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
    dropout = check_rate(dropout, "dropout")
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (H, W, C). Received: input_shape={input_shape}")
    features = get_backbone(backbone, tuple(input_shape), weights=weights, **backbone_kwargs)
    inputs = keras.Input(tuple(input_shape), name=f"{name}_input")
    x = inputs
    if backbone == "small_cnn":
        x = layers.Rescaling(1.0 / 255.0, name=f"{name}_rescale")(x)
    x = features(x)
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = layers.Dense(embedding_dim, name=f"{name}_embedding")(x)
    outputs = layers.Dense(1, activation="sigmoid", name=f"{name}_output")(x)
    return keras.Model(inputs, outputs, name=name)


def slice_embedding_model(model, layer_name=None):
    """The sub-model of `build_slice_embedder`'s model that outputs the slice embedding.

    It shares its layers (and weights) with `model`: train `model`, then embed with this.

    Args:
        model: a model from `build_slice_embedder`.
        layer_name: the embedding layer; default ``f"{model.name}_embedding"``.

    Returns:
        A ``keras.Model`` mapping ``(B, H, W, C)`` slices to ``(B, embedding_dim)``.

    Example:

    >>> model = build_slice_embedder("small_cnn", (32, 32, 1), embedding_dim=6, filters=(4,))
    >>> slice_embedding_model(model).output_shape
    (None, 6)
    """
    layer_name = layer_name or f"{model.name}_embedding"
    return layer_output_model(
        model, layer_name, hint="; pass the embedding layer's name", name=f"{model.name}_embeddings"
    )


def build_two_step_lstm(
    sequence_length=120,
    embedding_dim=224,
    units=128,
    num_layers=4,
    head_units=64,
    dropout=0.1,
    head_dropout=0.15,
    name="two_step_lstm",
):
    """The step-2 BiLSTM head on a sequence of slice embeddings.

    As the authors' code: a 4-layer bidirectional ``LSTM(224 -> 128)``; the forward and
    backward final hidden states of the last layer, concatenated (256) -> Dropout 0.1 ->
    Linear 64 -> LayerNorm -> ReLU -> Dropout 0.15 -> Linear 1 (here with the sigmoid, for
    binary cross-entropy on probabilities). LayerNorm uses torch's epsilon 1e-5. The authors
    train it with AdamW (lr 3e-5, weight decay 1e-3; Keras's ``AdamW`` is the same decoupled
    rule), batch 32, 50 epochs, cosine schedule with 10 % warm-up.

    Layers: ``f"{name}_input"``, ``f"{name}_bilstm{i}"`` (i = 1 ... num_layers),
    ``f"{name}_states"``, ``f"{name}_dropout1"``, ``f"{name}_dense"``, ``f"{name}_norm"``,
    ``f"{name}_relu"``, ``f"{name}_dropout2"``, ``f"{name}_output"``.

    Args:
        sequence_length: slices per sequence (the paper's 120); ``None`` for any length.
        embedding_dim: width of the slice embeddings (224).
        units: LSTM units per direction (128).
        num_layers: stacked bidirectional layers (4).
        head_units: width of the head's hidden layer (64).
        dropout: dropout on the concatenated states (0.1).
        head_dropout: dropout before the output layer (0.15).
        name: model name and prefix of its layers.

    Returns:
        A ``keras.Model`` mapping ``(B, sequence_length, embedding_dim)`` to ``(B, 1)``.

    Example:

    >>> model = build_two_step_lstm(sequence_length=8, embedding_dim=6, units=4, head_units=5)
    >>> model.output_shape, model.get_layer("two_step_lstm_states").output.shape
    ((None, 1), (None, 8))

    Reference: Hsu et al., Section 3.1 ("LSTM model").
    """
    sequence_length = check_positive_int(sequence_length, "sequence_length", allow_none=True)
    embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
    units = check_positive_int(units, "units")
    num_layers = check_positive_int(num_layers, "num_layers")
    head_units = check_positive_int(head_units, "head_units")
    dropout, head_dropout = check_rate(dropout, "dropout"), check_rate(head_dropout, "head_dropout")
    inputs = keras.Input((sequence_length, embedding_dim), name=f"{name}_input")
    x = inputs
    for i in range(1, num_layers):
        x = layers.Bidirectional(
            layers.LSTM(units, return_sequences=True), name=f"{name}_bilstm{i}"
        )(x)
    last = layers.Bidirectional(
        layers.LSTM(units, return_state=True), name=f"{name}_bilstm{num_layers}"
    )
    _, forward_h, _, backward_h, _ = last(x)
    x = layers.Concatenate(name=f"{name}_states")([forward_h, backward_h])
    x = layers.Dropout(dropout, name=f"{name}_dropout1")(x)
    x = layers.Dense(head_units, name=f"{name}_dense")(x)
    x = layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.Dropout(head_dropout, name=f"{name}_dropout2")(x)
    outputs = layers.Dense(1, activation="sigmoid", name=f"{name}_output")(x)
    return keras.Model(inputs, outputs, name=name)


def _swin_config(preset, overrides, num_slices, embedding_dim):
    """`preset`'s Swin sizes with `overrides` (``None`` keeps the preset's), checked."""
    config = dict(SWIN_PRESETS[check_one_of(preset, "preset", tuple(SWIN_PRESETS))])
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(
            f"Unknown Swin size argument(s) {unknown}; the valid ones are {sorted(config)}. "
            f"Received: {', '.join(f'{k}={overrides[k]!r}' for k in unknown)}"
        )
    config.update({k: v for k, v in overrides.items() if v is not None})
    config["embed_dim"] = check_positive_int(config["embed_dim"], "embed_dim")
    config["window_size"] = check_positive_int(config["window_size"], "window_size")
    config["patch_size"] = check_positive_int(config["patch_size"], "patch_size")
    depths, heads = tuple(config["depths"]), tuple(config["num_heads"])
    if not depths or len(depths) != len(heads):
        raise ValueError(
            "`depths` and `num_heads` need one entry per stage. "
            f"Received: depths={depths}, num_heads={heads}"
        )
    for i, h in enumerate(heads):
        if check_positive_int(h, "num_heads") and (config["embed_dim"] * 2**i) % h:
            raise ValueError(
                f"Stage {i} has width embed_dim * 2**{i} = {config['embed_dim'] * 2**i}, which "
                f"its heads must divide. Received: num_heads={heads}"
            )
    config["depths"] = tuple(check_positive_int(d, "depths") for d in depths)
    config["num_heads"] = heads
    # patches, then a 2 x 2 patch merging between stages: the sides must divide evenly
    factor = config["patch_size"] * 2 ** (len(depths) - 1)
    for side, arg in ((num_slices, "num_slices"), (embedding_dim, "embedding_dim")):
        if side % factor:
            raise ValueError(
                f"`{arg}` must be a multiple of patch_size * 2**(stages - 1) = {factor}. "
                f"Received: {arg}={side}"
            )
    return config


def build_two_step_swin(
    num_slices=224,
    embedding_dim=224,
    preset="quick",
    mlp_ratio=4.0,
    drop_path=0.0,
    dropout=0.0,
    name="two_step_swin",
    **sizes,
):
    """The step-2 Swin head: the ``num_slices x embedding_dim`` embedding matrix as an image.

    Rows are the sorted sampled slices (`kerasmed.data.sample_sequence_slices`), columns the
    embedding; the matrix becomes a one-channel image for
    ``keras_hub.models.SwinTransformerBackbone`` (random initialisation, nothing downloaded),
    then global average pooling over the tokens and ``Dense(1, sigmoid)``.

    Not the authors' exact network: they used timm's ``swinv2_cr_base_224`` (Swin
    Transformer V2, "CR" variant: scaled cosine attention, post-norm, log-spaced continuous
    position bias); keras-hub 0.32 has Swin v1 only, which this builds with the same sizes.
    The ``"paper"`` preset has their size (embed 128, depths 2-2-18-2, heads 4-8-16-32, patch
    4, window 7: 86.7 M parameters); ``"quick"`` is a 2-stage 32-wide model for CPU runs.
    They trained with SGD (momentum 0.9, lr 0.05, weight decay 2e-5), cosine schedule with 3
    warm-up epochs, 20 epochs, batch 16, label smoothing 0.1.

    keras_hub is imported here, not at ``import kerasmed``. A saved model holds the keras-hub
    backbone: ``import keras_hub`` before ``keras.saving.load_model``.

    Layers: ``f"{name}_input"``, ``f"{name}_image"`` (reshape to one channel),
    ``f"{name}_backbone"``, ``f"{name}_pool"``, ``f"{name}_output"``.

    Args:
        num_slices: rows of the matrix (the paper's 224 sampled slices).
        embedding_dim: columns (the 224-d embedding).
        preset: ``"quick"`` or ``"paper"`` (`SWIN_PRESETS`): the sizes that `sizes` does not
            give.
        mlp_ratio: MLP width / stage width.
        drop_path: stochastic depth rate (timm's default 0).
        dropout: dropout rate after the patch embedding and in the MLPs.
        name: model name and prefix of its layers.
        **sizes: any of the preset's sizes, ``None`` keeping the preset's: ``embed_dim``
            (width of the first stage), ``depths`` (transformer blocks per stage),
            ``num_heads`` (attention heads per stage), ``window_size`` (attention window, in
            tokens) and ``patch_size`` (side of the patches). Another name is a
            ``ValueError`` listing these.

    Returns:
        A ``keras.Model`` mapping ``(B, num_slices, embedding_dim)`` to ``(B, 1)``.

    Example:

    >>> model = build_two_step_swin(16, 16, embed_dim=8, depths=(1, 1), num_heads=(1, 2),
    ...                             window_size=4, patch_size=2)
    >>> model.output_shape
    (None, 1)

    Reference: Hsu et al., Section 3.1 ("Swin model"); Z. Liu et al., *Swin Transformer:
    hierarchical vision Transformer using shifted windows*, ICCV 2021.
    """
    import keras_hub  # imported here only: import kerasmed stays light

    num_slices = check_positive_int(num_slices, "num_slices")
    embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
    config = _swin_config(preset, sizes, num_slices, embedding_dim)
    backbone = keras_hub.models.SwinTransformerBackbone(
        image_shape=(num_slices, embedding_dim, 1),
        mlp_ratio=float(mlp_ratio),
        drop_path=check_rate(drop_path, "drop_path"),
        dropout_rate=check_rate(dropout, "dropout"),
        name=f"{name}_backbone",
        **config,
    )
    inputs = keras.Input((num_slices, embedding_dim), name=f"{name}_input")
    x = layers.Reshape((num_slices, embedding_dim, 1), name=f"{name}_image")(inputs)
    x = backbone(x)
    x = layers.GlobalAveragePooling1D(name=f"{name}_pool")(x)
    outputs = layers.Dense(1, activation="sigmoid", name=f"{name}_output")(x)
    return keras.Model(inputs, outputs, name=name)
