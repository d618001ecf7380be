"""Models of paper 002: the concise FCN, a reference U-Net and the FCSLSTM.

Gao et al. segment every time point of a longitudinal MRI series. The spatial model is a
*concise* fully convolutional network (Section 2.1, Fig. 1, Table 1): the five convolution
blocks of VGG-16 with fewer channels and no fully connected layers (the front-end), then five
2x upsampling deconvolutions fused with front-end feature maps and one convolution with as
many output channels as classes (the back-end), cropped to the input size. The FCSLSTM
(Section 2.3, Fig. 3) replaces each front-end block by a structured convolutional LSTM whose
input operator Ψ_x *is* that block (conv + ReLU ... + pooling), so the recurrent states live at
the block outputs, and runs the back-end on the LSTM outputs of every time point.

- `conv_block`, `block_filters`: the front-end blocks ``conv1`` ... ``conv5`` (sub-models);
- `build_fcn_backend`: the back-end ``deconv6`` ... ``deconv10`` + fusion + conv + softmax;
- `build_concise_fcn`: the concise FCN, for single images or, frame by frame, for sequences;
- `build_unet`: a standard U-Net, the paper's size reference ("20 times smaller than u-net");
- `build_fcslstm`: the (bidirectional) FCSLSTM, with the operator grouping of Section 2.2 and
  rematerialization options.

`FrameWise` (the FCN on every time point, time folded into the batch) and `Remat` live in
`kerasmed.layers.wrappers` and are re-exported here.

Reference: Y. Gao, J. M. Phillips, Y. Zheng, R. Min, P. T. Fletcher, G. Gerig, *Fully
convolutional structured LSTM networks for joint 4D medical image segmentation*, ISBI 2018.
"""

from __future__ import annotations

import keras
from keras import layers

from kerasmed.layers.structured_conv_lstm import StructuredConvLSTM2D
from kerasmed.layers.wrappers import FrameWise, Remat
from kerasmed.models import fcn
from kerasmed.models.fcn import *  # noqa: F403 (the concise FCN's public names, re-exported)
from kerasmed.validation import check_positive_int

__all__ = [*fcn.__all__, "FrameWise", "Remat", "build_fcslstm"]


def _check_groups(operator_groups):
    groups = tuple(operator_groups)
    if (
        not groups
        or any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in groups)
        or sum(groups) != fcn._NUM_BLOCKS
    ):
        raise ValueError(
            "`operator_groups` must be positive ints summing to 5 (consecutive blocks per "
            f"structured LSTM layer). Received: operator_groups={operator_groups!r}"
        )
    return groups


def build_fcslstm(
    input_shape,
    num_classes,
    bidirectional=False,
    width_divisor=2,
    fuse_level=4,
    fuse_mode="concat",
    operator_groups=(1, 1, 1, 1, 1),
    merge_mode="concat",
    input_kernel_size=1,
    recurrent_kernel_size=3,
    kernel_initializer="he_normal",
    lstm_kernel_initializer="glorot_uniform",
    recurrent_initializer="orthogonal",
    remat=False,
    unroll=False,
    name="fcslstm",
):
    """The fully convolutional structured LSTM (FCSLSTM) of Gao et al. (2018), Fig. 3.

    Five stacked `StructuredConvLSTM2D` layers (``return_sequences=True``, ``f"{name}_lstm1"``
    ... ``f"{name}_lstm5"``): the input operator Ψ_x of layer k is the concise FCN's block
    conv-k (`conv_block`, named ``f"{name}_conv{k}"``: its convolutions + ReLU *and* its
    pooling, so the state of layer k has the size of conv-k's output), and the hidden-state
    operator Ψ_h is a convolution (`recurrent_kernel_size`, 3x3 by default). Layer k has as
    many filters as block k has channels, so layer k+1's block reads layer k's hidden states
    the way the FCN's block reads the previous block. The gate convolution that follows Ψ_x
    inside the layer is 1x1 by default (`input_kernel_size`): a per-pixel linear map of the
    block's features to the four gates, the least the structured LSTM adds to the block. The
    back-end of the concise FCN (`build_fcn_backend`, deconv6 ... deconv10 fused with the
    LSTM outputs of the fused levels, softmax) runs on every time point (`FrameWise`, layer
    ``f"{name}_frames"``).

    - `bidirectional`: each stacked layer is ``keras.layers.Bidirectional`` (a forward and a
      backward copy, each with its own operator weights; layer ``f"{name}_bilstm{k}"``), the
      two directions merged with `merge_mode`: ``"concat"`` by default, as in a BRNN [20]
      where both hidden layers feed the next layer (here the next block and the back-end)
      with their own weights; ``"sum"``/``"ave"`` keep the FCN's channel counts.
    - `operator_groups` (Section 2.2): how many consecutive blocks form the operator of each
      stacked layer. ``(1, 1, 1, 1, 1)`` is the paper's FCSLSTM; e.g. ``(2, 3)`` gives two
      layers with operators conv1+conv2 and conv3+conv4+conv5 (``f"{name}_conv1_to_2"``...):
      only the groups' outputs are LSTM states kept over time (fewer stored states in
      back-propagation through time, and fewer parameters), and the back-end can only fuse the
      groups' outputs (here conv2's), the features inside a group not being kept.
    - `remat`: each stacked layer and the back-end are wrapped in `Remat` (named
      ``f"{name}_lstm{k}_remat"``, ``f"{name}_frames_remat"``): a training step stores their
      inputs and outputs and recomputes their insides (operator activations, gates of every
      time step) in the backward pass. Same outputs and gradients; the memory saved is
      moderate (see `Remat`), and `operator_groups` saves as much on TensorFlow.
    - `unroll`: ``keras.layers.RNN``'s unroll, for a known, short T. On JAX (XLA on CPU)
      the backward pass of a looped convolutional LSTM is very slow, so unroll there.

    Args:
        input_shape: ``(T, H, W, C)``; T may be ``None`` (then `unroll` must be False).
        num_classes: number of classes c.
        bidirectional: use bidirectional layers.
        width_divisor: divisor of VGG-16's channels (2 or 4 in the paper).
        fuse_level: 0 ... 4, fused front-end levels (see `build_fcn_backend`).
        fuse_mode: ``"concat"`` or ``"sum"``.
        operator_groups: blocks per stacked layer, positive ints summing to 5.
        merge_mode: merge of the two directions (``keras.layers.Bidirectional``'s
            ``"concat"``, ``"sum"``, ``"mul"`` or ``"ave"``).
        input_kernel_size: kernel of the gate convolution applied to Ψ_x(x_t).
        recurrent_kernel_size: kernel of Ψ_h.
        kernel_initializer: initializer of the blocks' and the back-end's kernels (the
            paper: Kaiming).
        lstm_kernel_initializer, recurrent_initializer: initializers of the LSTM gate kernels
            applied to Ψ_x(x_t) and of Ψ_h; Keras's LSTM defaults (Glorot uniform,
            orthogonal), suited to the sigmoid and tanh gates.
        remat: wrap the stacked layers and the back-end in `Remat`.
        unroll: unroll the time loops.
        name: model name and prefix of the layer names.

    Returns:
        A `keras.Model` mapping ``(B, T, H, W, C)`` to ``(B, T, H, W, c)`` probabilities.

    Example:

    >>> model = build_fcslstm((None, 40, 40, 2), num_classes=4, width_divisor=16)
    >>> model.output_shape
    (None, None, 40, 40, 4)
    >>> tuple(model(np.zeros((1, 2, 40, 40, 2), "float32")).shape)
    (1, 2, 40, 40, 4)

    Reference:
        Gao et al., ISBI 2018, Eq. (1), Sections 2.2 and 2.3, Fig. 3.
    """
    shape = fcn._check_image_shape(input_shape, 4, "(T, H, W, C)")
    filters = fcn.block_filters(width_divisor)
    check_positive_int(num_classes, "num_classes")
    fcn._check_fuse(fuse_level, fuse_mode)
    groups = _check_groups(operator_groups)
    if merge_mode not in ("concat", "sum", "mul", "ave"):
        raise ValueError(
            f'`merge_mode` must be "concat", "sum", "mul" or "ave". Received: merge_mode={merge_mode!r}'
        )
    if unroll and shape[0] is None:
        raise ValueError(
            f"`unroll=True` needs a known number of time points. Received: input_shape={shape}"
        )
    inputs = keras.Input(shape, name=f"{name}_input")
    x, features, first = inputs, {}, 1
    for g, size in enumerate(groups, start=1):
        last = first + size - 1
        blocks = [
            fcn.conv_block(k, filters[k - 1], fcn.VGG16_BLOCKS[k - 1][0], kernel_initializer, name)
            for k in range(first, last + 1)
        ]
        operator = (
            blocks[0]
            if size == 1
            else keras.Sequential(blocks, name=f"{name}_conv{first}_to_{last}")
        )
        lstm = StructuredConvLSTM2D(
            filters[last - 1],
            input_kernel_size,
            input_operator=operator,
            recurrent_kernel_size=recurrent_kernel_size,
            kernel_initializer=lstm_kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            return_sequences=True,
            unroll=unroll,
            name=f"{name}_lstm{g}",
        )
        if bidirectional:
            lstm = layers.Bidirectional(lstm, merge_mode=merge_mode, name=f"{name}_bilstm{g}")
        x = fcn._maybe_remat(lstm, remat)(x)
        features[last] = x
        first = last + 1
    channels = {k: f.shape[-1] for k, f in features.items()}
    backend = fcn.build_fcn_backend(
        shape[1:3], channels, num_classes, fuse_level, fuse_mode, kernel_initializer, name
    )
    fused = [features[k] for k in backend.fused_blocks]
    frames = FrameWise(backend, name=f"{name}_frames")
    outputs = fcn._maybe_remat(frames, remat)(fused if len(fused) > 1 else fused[0])
    return keras.Model(inputs, outputs, name=name)
