"""The spatial models of paper 002: the concise FCN (front-end blocks + back-end) and a U-Net.

Gao et al.'s concise FCN (Section 2.1, Fig. 1, Table 1): the five convolution blocks of VGG-16
with fewer channels (`conv_block`, `block_filters`), five 2x upsampling deconvolutions fused with
front-end feature maps and one convolution (`build_fcn_backend`), cropped to the input size
(`build_concise_fcn`); `build_unet` is the paper's size reference. The FCSLSTM
(`kerasmed.models.fcslstm`) reuses the blocks as input operators of its LSTMs and the back-end on
every time point; every name here is re-exported from there.
"""

from __future__ import annotations

import keras
from keras import layers

from kerasmed.layers.wrappers import FrameWise, Remat
from kerasmed.validation import check_positive_int

__all__ = [
    "VGG16_BLOCKS",
    "block_filters",
    "level_sizes",
    "conv_block",
    "build_fcn_backend",
    "build_concise_fcn",
    "build_unet",
]

# (number of 3x3 convolutions, output channels) of the five VGG-16 blocks conv1 ... conv5.
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
_NUM_BLOCKS = len(VGG16_BLOCKS)
_FUSE_MODES = ("concat", "sum")


def _check_image_shape(input_shape, rank, what):
    shape = tuple(input_shape)
    if len(shape) != rank or any(
        d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1) for d in shape
    ):
        raise ValueError(f"`input_shape` must be {what}. Received: input_shape={input_shape!r}")
    if any(d is None for d in shape[-3:]):
        raise ValueError(
            "The rows, columns and channels of `input_shape` must be known (the crops of the "
            f"back-end and the LSTM states are sized from them). Received: input_shape={shape}"
        )
    return shape


def block_filters(width_divisor=2):
    """Output channels of conv1 ... conv5: VGG-16's 64, 128, 256, 512, 512 over `width_divisor`.

    Args:
        width_divisor: positive int dividing 64; the paper tests 2 and 4 (1 is VGG-16).

    Returns:
        A tuple of 5 ints.

    Example:

    >>> block_filters(4)
    (16, 32, 64, 128, 128)
    """
    check_positive_int(width_divisor, "width_divisor")
    if 64 % width_divisor:
        raise ValueError(
            f"`width_divisor` must divide 64 (VGG-16's narrowest block). "
            f"Received: width_divisor={width_divisor}"
        )
    return tuple(filters // width_divisor for _, filters in VGG16_BLOCKS)


def level_sizes(size, levels=_NUM_BLOCKS):
    """Spatial sizes after each 2x2 max pooling with ``"same"`` padding: ``ceil(n / 2**k)``.

    Args:
        size: ``(rows, cols)`` of the input.
        levels: number of poolings.

    Returns:
        A list of ``levels + 1`` pairs; entry ``k`` is the size after block ``k`` (entry 0 is
        the input).

    Example:

    >>> level_sizes((40, 40))
    [(40, 40), (20, 20), (10, 10), (5, 5), (3, 3), (2, 2)]
    """
    sizes = [tuple(size)]
    for _ in range(levels):
        sizes.append(tuple(-(-n // 2) for n in sizes[-1]))
    return sizes


def conv_block(index, filters, num_convs, kernel_initializer="he_normal", name="fcn"):
    """One front-end block ``conv{index}``: `num_convs` x (3x3 conv + ReLU), 2x2 max pooling.

    The convolutions keep the spatial size (``"same"`` padding); the pooling (stride 2,
    ``"same"`` padding) halves it, rounding up, so that any input size works: the back-end
    crops its upsampled maps back to these sizes. The block is a `keras.Sequential` without an
    input shape, so that the same function gives the FCN's block and the FCSLSTM's input
    operator Ψ_x (which must hold the pooling, so that the LSTM state has the block's output
    size).

    Args:
        index: block number 1 ... 5.
        filters: output channels of every convolution of the block.
        num_convs: number of convolutions (2 for conv1, conv2; 3 for conv3 ... conv5).
        kernel_initializer: initializer of the convolution kernels (the paper: Kaiming).
        name: prefix of the names: the block is ``f"{name}_conv{index}"``, its layers
            ``f"{name}_conv{index}_{j}"`` (ReLU fused) and ``f"{name}_pool{index}"``.

    Returns:
        A `keras.Sequential`.

    Example:

    >>> block = conv_block(1, 8, 2)
    >>> tuple(block(np.zeros((1, 5, 6, 2), "float32")).shape)
    (1, 3, 3, 8)
    """
    check_positive_int(filters, "filters")
    check_positive_int(num_convs, "num_convs")
    convs = [
        layers.Conv2D(
            filters,
            3,
            padding="same",
            activation="relu",
            kernel_initializer=kernel_initializer,
            name=f"{name}_conv{index}_{j + 1}",
        )
        for j in range(num_convs)
    ]
    pool = layers.MaxPooling2D(2, strides=2, padding="same", name=f"{name}_pool{index}")
    return keras.Sequential(convs + [pool], name=f"{name}_conv{index}")


def _fused_levels(fuse_level, available):
    """Front-end blocks whose outputs the back-end fuses: conv4, conv3 ... (fuse_level of them)."""
    return [k for k in range(_NUM_BLOCKS - 1, _NUM_BLOCKS - 1 - fuse_level, -1) if k in available]


def _check_fuse(fuse_level, fuse_mode):
    if isinstance(fuse_level, bool) or not isinstance(fuse_level, int):
        raise ValueError(
            f"`fuse_level` must be an int in [0, 4]. Received: fuse_level={fuse_level!r}"
        )
    if not 0 <= fuse_level <= _NUM_BLOCKS - 1:
        raise ValueError(
            f"`fuse_level` must be an int in [0, 4]. Received: fuse_level={fuse_level}"
        )
    if fuse_mode not in _FUSE_MODES:
        raise ValueError(
            f'`fuse_mode` must be "concat" or "sum". Received: fuse_mode={fuse_mode!r}'
        )


def build_fcn_backend(
    image_size,
    feature_channels,
    num_classes,
    fuse_level=4,
    fuse_mode="concat",
    kernel_initializer="he_normal",
    name="fcn",
):
    """The back-end of the concise FCN: deconv6 ... deconv10, fusion, one conv, crop, softmax.

    Starting from the conv5 features (1/32 of the input), each ``deconv{k}`` (k = 6 ... 10) is a
    4x4 transposed convolution with stride 2 (FCN's 2x upsampling) and `num_classes` output
    channels (the paper's observation 1: back-end convolutions have as many channels as
    classes); its output is cropped (``f"{name}_crop{k}"``) to the size of front-end level
    ``10 - k`` (conv4's output after deconv6, ..., the input size after deconv10), so that odd
    sizes work. With fuse level L the outputs of deconv6 ... deconv(5+L) are fused with the
    features of conv4 ... conv(5-L) (``f"{name}_fuse{k}"``):

    - ``fuse_mode="concat"`` (default): channel concatenation; the next deconvolution reads
      both. No extra convolution, so the back-end has a single convolution as Section 2.1 says;
    - ``fuse_mode="sum"``: FCN [6]'s fusion: a 1x1 "score" convolution
      (``f"{name}_score{s}"``) maps the conv-s features to `num_classes` channels, added to the
      upsampled map.

    Then ``f"{name}_conv_out"`` (3x3, `num_classes` channels) and a per-pixel softmax
    (``f"{name}_softmax"``). Like FCN's, the back-end is linear up to the softmax (the paper
    names no activation there); its layers use `kernel_initializer`. Features of blocks not in
    `feature_channels` (those inside an operator group of the FCSLSTM) are skipped.

    Args:
        image_size: ``(rows, cols)`` of the input image.
        feature_channels: dict ``{block index (1-5): channels}`` of the available front-end
            feature maps; block 5 must be there.
        num_classes: number of classes c.
        fuse_level: 0 ... 4, how many front-end maps (conv4, conv3, conv2, conv1) are fused.
        fuse_mode: ``"concat"`` or ``"sum"``.
        kernel_initializer: initializer of the deconvolution and convolution kernels.
        name: model name ``f"{name}_backend"`` and prefix of the layer names.

    Returns:
        A `keras.Model` whose inputs are the feature maps of the fused blocks, deepest first
        (conv5, then conv4, conv3, ... as fused; input ``f"{name}_feature{k}"`` has the size
        of level k), and whose output is ``(B, rows, cols, num_classes)`` probabilities.
        ``model.fused_blocks`` lists the block indices of the inputs, in order.

    Example:

    >>> backend = build_fcn_backend((40, 40), {k: 4 for k in range(1, 6)}, 3)
    >>> backend.fused_blocks
    [5, 4, 3, 2, 1]
    >>> backend.output_shape
    (None, 40, 40, 3)
    """
    check_positive_int(num_classes, "num_classes")
    _check_fuse(fuse_level, fuse_mode)
    if _NUM_BLOCKS not in feature_channels:
        raise ValueError(
            "The back-end needs the conv5 features. "
            f"Received: feature_channels={feature_channels!r}"
        )
    sizes = level_sizes(image_size)
    fused = _fused_levels(fuse_level, feature_channels)
    order = [_NUM_BLOCKS] + fused
    inputs = {
        k: keras.Input((*sizes[k], feature_channels[k]), name=f"{name}_feature{k}") for k in order
    }
    x = inputs[_NUM_BLOCKS]
    for k in range(_NUM_BLOCKS + 1, 2 * _NUM_BLOCKS + 1):  # deconv6 ... deconv10
        level = 2 * _NUM_BLOCKS - k  # 4 ... 0: the front-end level of the upsampled map
        x = layers.Conv2DTranspose(
            num_classes, 4, strides=2, padding="same",
            kernel_initializer=kernel_initializer, name=f"{name}_deconv{k}",
        )(x)  # fmt: skip
        rows, cols = sizes[level]
        up_rows, up_cols = 2 * sizes[level + 1][0], 2 * sizes[level + 1][1]
        x = layers.Cropping2D(((0, up_rows - rows), (0, up_cols - cols)), name=f"{name}_crop{k}")(x)
        if level in fused:
            skip = inputs[level]
            if fuse_mode == "concat":
                x = layers.Concatenate(name=f"{name}_fuse{k}")([x, skip])
            else:
                score = layers.Conv2D(
                    num_classes, 1, kernel_initializer=kernel_initializer,
                    name=f"{name}_score{level}",
                )(skip)  # fmt: skip
                x = layers.Add(name=f"{name}_fuse{k}")([x, score])
    x = layers.Conv2D(
        num_classes, 3, padding="same", kernel_initializer=kernel_initializer,
        name=f"{name}_conv_out",
    )(x)  # fmt: skip
    outputs = layers.Softmax(axis=-1, dtype="float32", name=f"{name}_softmax")(x)
    model = keras.Model([inputs[k] for k in order], outputs, name=f"{name}_backend")
    model.fused_blocks = order
    return model


def _maybe_remat(layer, remat):
    return Remat(layer, name=f"{layer.name}_remat") if remat else layer


def build_concise_fcn(
    input_shape,
    num_classes,
    width_divisor=2,
    fuse_level=4,
    fuse_mode="concat",
    kernel_initializer="he_normal",
    remat=False,
    name="fcn",
):
    """The concise FCN of Gao et al. (2018), Section 2.1 and Fig. 1: image -> class map.

    Front-end: the VGG-16 blocks conv1 ... conv5 (2, 2, 3, 3, 3 convolutions 3x3 + ReLU, each
    block ending with a 2x2 max pooling), with 64, 128, 256, 512, 512 channels divided by
    `width_divisor` (the paper shrinks them by 2 and 4), and **no** fully connected layers
    (observation 2). Back-end (`build_fcn_backend`): deconv6 ... deconv10 (2x each), fused
    with the front-end maps of conv4 ... conv1 up to `fuse_level` (observation 3: a high fuse
    level refines the result; default 4, all of them), one convolution with `num_classes`
    channels (observation 1), cropped to the input size, and a per-pixel softmax.

    The text of the paper does not give Table 1's numbers; choices where it is silent: 3x3
    convolutions as in VGG-16, ``"same"`` padding and ceil-mode pooling (any input size; the
    crops realign the maps), 4x4 stride-2 deconvolutions with c channels (FCN's), fusion by
    concatenation (no extra convolution; ``fuse_mode="sum"`` gives FCN's score-and-add),
    a 3x3 output convolution, no activation in the back-end, Kaiming-normal kernels (the
    paper's initialization) and zero biases.

    Size: with 2 input channels and 4 classes the concise FCN has 3.73 M parameters at half
    width and 0.95 M at a quarter, against 31.0 M for `build_unet`: 8.3 and 32.8 times fewer
    (the paper: "20 times smaller than u-net").

    With a 4D `input_shape` ``(T, H, W, C)`` the model takes sequences and segments every
    time point independently (the paper's "FCN only" baseline of Fig. 4): the 2D FCN
    (``model.get_layer(f"{name}_frames").layer``) runs on the frames through `FrameWise`.

    Args:
        input_shape: ``(H, W, C)``, or ``(T, H, W, C)`` with T possibly ``None``.
        num_classes: number of classes c.
        width_divisor: divisor of VGG-16's channels (2 or 4 in the paper; any divisor of 64).
        fuse_level: 0 ... 4 (see `build_fcn_backend`).
        fuse_mode: ``"concat"`` or ``"sum"``.
        kernel_initializer: initializer of every kernel.
        remat: wrap each block and the back-end in `Remat` (their activations are recomputed
            in the backward pass; see `Remat` for what it saves).
        name: model name and prefix: blocks ``f"{name}_conv1"`` ... ``f"{name}_conv5"``
            (sub-models, see `conv_block`; inside ``f"{name}_conv1_remat"`` ... with `remat`),
            back-end ``f"{name}_backend"`` (`build_fcn_backend`).

    Returns:
        A `keras.Model` mapping ``(B, H, W, C)`` to ``(B, H, W, c)`` probabilities (or
        ``(B, T, H, W, C)`` to ``(B, T, H, W, c)``).

    Example:

    >>> fcn = build_concise_fcn((40, 40, 2), num_classes=4, width_divisor=16)
    >>> fcn.output_shape
    (None, 40, 40, 4)

    Reference:
        Gao et al., ISBI 2018, Section 2.1, Fig. 1 and Table 1.
    """
    if len(tuple(input_shape)) == 4:
        shape = _check_image_shape(input_shape, 4, "(T, H, W, C) or (H, W, C)")
        frame_model = build_concise_fcn(
            shape[1:], num_classes, width_divisor, fuse_level, fuse_mode,
            kernel_initializer, remat, name,
        )  # fmt: skip
        inputs = keras.Input(shape, name=f"{name}_input")
        outputs = FrameWise(frame_model, name=f"{name}_frames")(inputs)
        return keras.Model(inputs, outputs, name=f"{name}_sequence")
    shape = _check_image_shape(input_shape, 3, "(H, W, C) or (T, H, W, C)")
    filters = block_filters(width_divisor)
    check_positive_int(num_classes, "num_classes")
    _check_fuse(fuse_level, fuse_mode)
    inputs = keras.Input(shape, name=f"{name}_input")
    x, features = inputs, {}
    for k, ((num_convs, _), f) in enumerate(zip(VGG16_BLOCKS, filters), start=1):
        x = _maybe_remat(conv_block(k, f, num_convs, kernel_initializer, name), remat)(x)
        features[k] = x
    backend = build_fcn_backend(
        shape[:2], dict(zip(range(1, _NUM_BLOCKS + 1), filters)), num_classes,
        fuse_level, fuse_mode, kernel_initializer, name,
    )  # fmt: skip
    fused = [features[k] for k in backend.fused_blocks]
    outputs = _maybe_remat(backend, remat)(fused if len(fused) > 1 else fused[0])
    return keras.Model(inputs, outputs, name=name)


def build_unet(
    input_shape,
    num_classes,
    base_filters=64,
    depth=4,
    kernel_initializer="he_normal",
    name="unet",
):
    """A standard U-Net (Ronneberger et al. 2015), the paper's reference for model size.

    Contracting path: `depth` + 1 levels of two 3x3 convolutions + ReLU with
    ``base_filters * 2**level`` channels (64 ... 1024 by default), a 2x2 max pooling between
    levels. Expanding path: per level a 2x2 stride-2 transposed convolution halving the
    channels (``f"{name}_up{level}"``), cropped to the skip map and concatenated with it, two
    3x3 convolutions + ReLU; then a 1x1 convolution to `num_classes` channels and a per-pixel
    softmax. Unlike the original (``"valid"`` convolutions, output smaller than the input),
    convolutions use ``"same"`` padding and poolings round up, as in `build_concise_fcn`, so the
    output has the input size; the number of parameters is the original's (31.0 M for one
    input channel and two classes).

    Args:
        input_shape: ``(H, W, C)``.
        num_classes: number of classes.
        base_filters: channels of the first level (64 in the U-Net paper).
        depth: number of poolings (4 in the U-Net paper).
        kernel_initializer: initializer of every kernel.
        name: model name and prefix of the layer names (``f"{name}_down{level}_{j}"``,
            ``f"{name}_up{level}"``, ``f"{name}_up{level}_{j}"``, ``f"{name}_conv_out"``).

    Returns:
        A `keras.Model` mapping ``(B, H, W, C)`` to ``(B, H, W, num_classes)`` probabilities.

    Example:

    >>> unet = build_unet((40, 40, 1), 2, base_filters=4, depth=3)
    >>> unet.output_shape
    (None, 40, 40, 2)

    Reference:
        O. Ronneberger, P. Fischer, T. Brox, *U-Net: convolutional networks for biomedical
        image segmentation*, MICCAI 2015 (reference [7] of Gao et al., ISBI 2018).
    """
    shape = _check_image_shape(input_shape, 3, "(H, W, C)")
    check_positive_int(num_classes, "num_classes")
    check_positive_int(base_filters, "base_filters")
    check_positive_int(depth, "depth")
    sizes = level_sizes(shape[:2], depth)

    def double_conv(x, filters, prefix):
        for j in (1, 2):
            x = layers.Conv2D(
                filters, 3, padding="same", activation="relu",
                kernel_initializer=kernel_initializer, name=f"{prefix}_{j}",
            )(x)  # fmt: skip
        return x

    inputs = keras.Input(shape, name=f"{name}_input")
    x, skips = inputs, []
    for level in range(depth + 1):
        x = double_conv(x, base_filters * 2**level, f"{name}_down{level}")
        if level < depth:
            skips.append(x)
            x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool{level}")(x)
    for level in range(depth - 1, -1, -1):
        x = layers.Conv2DTranspose(
            base_filters * 2**level, 2, strides=2,
            kernel_initializer=kernel_initializer, name=f"{name}_up{level}",
        )(x)  # fmt: skip
        rows, cols = sizes[level]
        extra = (2 * sizes[level + 1][0] - rows, 2 * sizes[level + 1][1] - cols)
        x = layers.Cropping2D(((0, extra[0]), (0, extra[1])), name=f"{name}_crop{level}")(x)
        x = layers.Concatenate(name=f"{name}_concat{level}")([skips[level], x])
        x = double_conv(x, base_filters * 2**level, f"{name}_up{level}")
    x = layers.Conv2D(
        num_classes, 1, kernel_initializer=kernel_initializer, name=f"{name}_conv_out"
    )(x)
    outputs = layers.Softmax(axis=-1, dtype="float32", name=f"{name}_softmax")(x)
    return keras.Model(inputs, outputs, name=name)
