"""Wrapper layers that run an inner model on the frames of a sequence, in chunks, rematerialized.

The three registered wrappers share one mechanism, `FrameWise`:

1. fold time into batch: ``(B, T, ...)`` inputs become ``(B * T, ...)`` frames, and the output
   gets its ``(B, T)`` axes back (`fold_time` / `unfold_time`);
2. run the inner layer on the frames all at once or `chunk_size` frames at a time
   (`run_in_chunks`);
3. optionally recompute the inner activations in the backward pass (``keras.remat``).

- `FrameWise(layer)`: steps 1 and 2 with all frames at once; used by the FCSLSTM (paper 002) to
  run its FCN on every time point;
- `Remat(layer)`: step 3 alone (no time axis), for one layer of a model;
- `SliceEncoder(slice_model, slice_chunk, remat)`: all three, for the ICH slice CNN (paper 001);
  kept with its own argument names and saved configuration.

Unlike ``keras.layers.TimeDistributed`` (a Python loop over T, or ``vectorized_map`` when T is
unknown), the frames go through the model in one call (or one call per chunk), several inputs
are supported, and T may be unknown.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from kerasmed.layers import _checks
from kerasmed.validation import check_one_of, check_positive_int

__all__ = ["FrameWise", "Remat", "SliceEncoder", "fold_time", "unfold_time", "run_in_chunks"]

_LOOPS = ("auto", "python", "scan")


def fold_time(inputs):
    """``(B, T, ...)`` tensor(s) -> ``(B * T, ...)`` frames, and the ``(B, T)`` leading shape.

    >>> frames, leading = fold_time(np.zeros((2, 3, 4, 5), "float32"))
    >>> tuple(frames.shape)
    (6, 4, 5)
    """
    flat = keras.tree.flatten(inputs)
    leading = ops.shape(flat[0])[:2]
    frames = [ops.reshape(x, (-1, *tuple(x.shape[2:]))) for x in flat]
    return (frames if isinstance(inputs, (list, tuple)) else frames[0]), leading


def unfold_time(outputs, leading):
    """``(B * T, ...)`` output(s) -> ``(B, T, ...)``: the inverse of `fold_time`."""
    return keras.tree.map_structure(
        lambda y: ops.reshape(y, (*leading, *tuple(y.shape[1:]))), outputs
    )


def _updatable_state(layer):
    """Non-trainable variables that a training call may update: those of trainable leaf layers
    (a frozen Keras layer, e.g. batch normalization, runs in inference mode)."""
    sublayers = getattr(layer, "layers", None)
    if sublayers:
        return [v for sublayer in sublayers for v in _updatable_state(sublayer)]
    return layer.non_trainable_variables if layer.trainable else []


def _seeded_layers(layer):
    """Names of the (top-level) layers of `layer` that hold random state (dropout seeds)."""
    return [sub.name for sub in getattr(layer, "layers", None) or [layer] if sub._seed_generators]


def _stateless_call(model, flat, chunk, remat, loop, training):
    """`model` on ``flat`` through ``stateless_call``: at once (``chunk=None``; `flat` may be a
    list) or `chunk` rows at a time (one tensor), each call rematerialized with `remat`."""
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    # State a call may update (batch-norm statistics of trainable layers) is carried from chunk
    # to chunk; weights, frozen ones included, are constants of the loop.
    state_ids = {id(v) for v in _updatable_state(model)}
    stateful = [i for i, v in enumerate(model.non_trainable_variables) if id(v) in state_ids]
    constant = [i for i in range(len(non_trainable)) if i not in stateful]
    num_trainable = len(trainable)
    call_kwargs = {"training": training} if model._call_has_training_arg else {}

    def run(state, rows):
        def forward(weights, inputs):
            # Weights (trainable and frozen) are arguments, not captured tensors: TensorFlow
            # cannot differentiate a rematerialized function inside a loop that captures
            # tensors from outside it. The carried state is captured (a loop variable).
            current = [None] * len(non_trainable)
            for i, value in zip(constant, weights[num_trainable:]):
                current[i] = value
            for i, value in zip(stateful, state):
                current[i] = value
            return model.stateless_call(weights[:num_trainable], current, inputs, **call_kwargs)

        if remat and trainable:  # nothing to recompute when no gradient reaches it
            forward = keras.remat(forward)
        outputs, updated = forward(trainable + [non_trainable[i] for i in constant], rows)
        return outputs, [updated[i] for i in stateful]

    state = [non_trainable[i] for i in stateful]
    if chunk is None:
        outputs, state = run(state, flat)
        for i, value in zip(stateful, state):
            model.non_trainable_variables[i].assign(value)
        return outputs
    row_shape = tuple(flat.shape[1:])
    total = ops.shape(flat)[0]
    if isinstance(total, int) and total == 0:  # no frames (length 0): the model on no rows
        outputs, state = run(state, flat)
    elif isinstance(total, int) and (loop == "python" or (loop == "auto" and not remat)):
        pieces = []
        for start in range(0, total, chunk):
            piece, state = run(state, flat[start : start + chunk])
            pieces.append(piece)
        outputs = ops.concatenate(pieces, axis=0)
    else:
        padding = (chunk - total % chunk) % chunk
        flat = ops.concatenate([flat, ops.zeros((padding, *row_shape), flat.dtype)], 0)
        chunks = ops.reshape(flat, (-1, chunk, *row_shape))
        spec = model.compute_output_spec(keras.KerasTensor((chunk, *row_shape), flat.dtype))

        def step(carry, rows):
            outputs, new_state = run(carry[:-1], rows)
            # keras.ops.scan on TensorFlow stacks outputs shaped like the carry, so the carry
            # holds a placeholder of the chunk's outputs next to the state.
            result = [*new_state, outputs]
            return result, result

        carry, stacked = ops.scan(step, [*state, ops.zeros(spec.shape, spec.dtype)], chunks)
        state = carry[:-1]
        outputs = ops.reshape(stacked[-1], (-1, *spec.shape[1:]))[:total]
    for i, value in zip(stateful, state):
        model.non_trainable_variables[i].assign(value)
    return outputs


def run_in_chunks(layer, inputs, chunk_size=None, remat=False, loop="auto", training=None):
    """Runs `layer` on batch-first `inputs`: all rows at once or `chunk_size` rows at a time.

    - ``chunk_size=None, remat=False``: ``layer(inputs)``;
    - ``chunk_size=None, remat=True``: ``layer.stateless_call`` under ``keras.remat``
      (``tf.recompute_grad``, ``jax.checkpoint``, ``torch.utils.checkpoint``): only the inputs
      and outputs are kept for the backward pass, the inner activations are recomputed. Only
      tensors (weights, inputs) are arguments of the recomputed function, not the call's Python
      arguments such as ``training``, and state a training call updates (batch-norm statistics)
      is returned by it and assigned once, not once per recomputation;
    - `chunk_size` set: the rows go through `layer` (a Keras layer or model holding no random
      state) `chunk_size` at a time in a loop, each chunk rematerialized with `remat`; state a
      training call updates (batch-norm statistics) is carried from chunk to chunk
      (batch normalization then normalizes each chunk by its own statistics). `loop`:
      ``"python"`` (unrolled in a compiled graph; needs a static row count, else falls back to
      the scan), ``"scan"`` (``keras.ops.scan``) or ``"auto"`` (scan with `remat`, Python loop
      without: see `SliceEncoder`).

    Outputs and gradients equal those of ``layer(inputs)``.

    Args:
        layer: a Keras layer or model.
        inputs: a tensor (or, without `chunk_size`, a list of tensors), batch axis first.
        chunk_size: ``None`` or the number of rows per chunk.
        remat: recompute the activations in the backward pass.
        loop: ``"auto"``, ``"python"`` or ``"scan"``.
        training: passed to `layer`.

    Returns:
        `layer`'s output.

    Example:

    >>> dense = keras.layers.Dense(3)
    >>> tuple(run_in_chunks(dense, np.ones((10, 4), "float32"), chunk_size=4).shape)
    (10, 3)
    """
    if chunk_size is None and not remat:
        return layer(inputs, training=training)
    if chunk_size is not None and isinstance(inputs, (list, tuple)):
        raise ValueError(
            f"`chunk_size` needs a single input tensor. Received: {len(inputs)} inputs"
        )
    if not layer.built:
        layer.build(keras.tree.map_structure(lambda x: tuple(x.shape), inputs))
    return _stateless_call(layer, inputs, chunk_size, remat, loop, training)


@keras.saving.register_keras_serializable(package="kerasmed")
class FrameWise(layers.Wrapper):
    """Applies a frame model to every time point, with the time axis folded into the batch.

    ``(B, T, ...)`` inputs (one tensor or a list) are reshaped to ``(B * T, ...)``, passed to
    `layer` (all at once, or `chunk_size` frames at a time, see `run_in_chunks`), and its output
    is reshaped back to ``(B, T, ...)``. T may be unknown. The input mask (that of the first
    input) is passed through.

    The inputs are checked against the wrapped layer's `InputSpec` in every path (the chunked
    and rematerialized ones call it through ``stateless_call``, which skips that check), with
    the axis of the ``(B, T, ...)`` input named; a list input must agree in B and T. Zero time
    steps give a ``(B, 0, ...)`` output.

    Only the part of `layer` up to `split_layer` (a layer name of a functional model) runs in
    chunks; the layers after it run once on the intermediate outputs of all frames (cheap dense
    layers, or layers with random state such as dropout, which the chunk loop cannot hold).

    Args:
        layer: a Keras layer or model mapping ``(N, ...)`` frame tensors to ``(N, ...)``.
        chunk_size: ``None`` (all frames at once) or the number of frames per chunk.
        remat: recompute the inner activations in the backward pass (``keras.remat``).
        split_layer: name of the layer of `layer` whose output ends the chunked part;
            ``None``: the whole model.
        loop: ``"auto"``, ``"python"`` or ``"scan"`` (see `run_in_chunks`).
        fold: fold a time axis into the batch (``False``: `layer` gets the inputs as they are).
        **kwargs: `keras.layers.Layer` arguments (``name``, ``dtype`` ...).

    Call arguments:
        inputs: a ``(B, T, ...)`` tensor or a list of them (same B and T).
        training: passed to `layer`.
        mask: optional; returned unchanged as the output mask.

    Returns:
        `layer`'s output(s) with the ``(B, T)`` leading axes.

    Example:

    >>> framewise = FrameWise(keras.layers.Conv2D(2, 3, padding="same"))
    >>> tuple(framewise(np.zeros((1, 4, 8, 8, 1), "float32")).shape)
    (1, 4, 8, 8, 2)
    """

    def __init__(
        self, layer, chunk_size=None, remat=False, split_layer=None, loop="auto", fold=True,
        **kwargs,
    ):  # fmt: skip
        super().__init__(layer, **kwargs)
        check_positive_int(chunk_size, "chunk_size", allow_none=True)
        check_one_of(loop, "loop", _LOOPS)
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        self.remat = bool(remat)
        self.split_layer = split_layer
        self.loop = loop
        self.fold = bool(fold)
        self.supports_masking = True
        self._looped, self._rest = layer, None
        if split_layer is not None:
            try:
                middle = layer.get_layer(split_layer).output
            except (AttributeError, ValueError) as error:
                raise ValueError(
                    f"`{self._layer_argument}` has no layer {split_layer!r}. Received: "
                    f"split_layer={split_layer!r}"
                ) from error
            self._looped = keras.Model(layer.inputs, middle)
            self._rest = keras.Model(middle, layer.outputs)
        if self.chunk_size is not None or self.remat:
            seeded = _seeded_layers(self._looped)
            if seeded:
                raise ValueError(
                    f"The chunked or rematerialized part of `{self._layer_argument}` must hold no "
                    "random state; "
                    f"split it before layers {seeded}. Received: split_layer={split_layer!r}"
                )

    _layer_argument = "layer"

    def _frame_shapes(self, input_shape):
        if not self.fold:
            return input_shape
        if _checks.is_shape_list(input_shape):
            return [(None, *tuple(s)[2:]) for s in input_shape]
        return (None, *tuple(input_shape)[2:])

    def build(self, input_shape):
        self._check_inputs(input_shape)
        if not self.layer.built:
            self.layer.build(self._frame_shapes(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape):
        self._check_inputs(input_shape)
        frame_output = self.layer.compute_output_shape(self._frame_shapes(input_shape))
        if not self.fold:
            return frame_output
        first = input_shape[0] if _checks.is_shape_list(input_shape) else input_shape
        return keras.tree.map_shape_structure(
            lambda s: (first[0], first[1], *tuple(s)[1:]), frame_output
        )

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            return mask[0] if mask else None
        return mask

    def _check_inputs(self, input_shape):
        """Same batch and time sizes across a list input, and the checks of the wrapped
        layer's `InputSpec` in every path (a chunked or rematerialized ``stateless_call`` skips
        them), named in this layer's terms."""
        shapes = [tuple(s) for s in input_shape] if _checks.is_shape_list(input_shape) else None
        shapes = shapes or [tuple(input_shape)]
        if self.fold:
            for shape in shapes:
                if len(shape) < 2:
                    raise ValueError(
                        f"`inputs` must have a batch and a time axis. Received: inputs.shape={shape}"
                    )
            if len(shapes) > 1:
                names = [f"inputs[{i}]" for i in range(len(shapes))]
                _checks.check_same_sizes(dict(zip(names, shapes)), axes=(0, 1))
        frames = [(None, *s[2:]) for s in shapes] if self.fold else shapes
        _checks.check_inner_input("inputs", self._looped, frames, shapes, int(self.fold))

    def call(self, inputs, training=None, mask=None):
        self._check_inputs(keras.tree.map_structure(lambda x: tuple(x.shape), inputs))
        if self.fold:
            frames, leading = fold_time(inputs)
        else:
            frames = inputs
        outputs = run_in_chunks(
            self._looped, frames, self.chunk_size, self.remat, self.loop, training=training
        )
        if self._rest is not None:
            outputs = self._rest(outputs, training=training)
        return unfold_time(outputs, leading) if self.fold else outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "chunk_size": self.chunk_size,
                "remat": self.remat,
                "split_layer": self.split_layer,
                "loop": self.loop,
                "fold": self.fold,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kerasmed")
class Remat(FrameWise):
    """Rematerializes a layer: its inner activations are recomputed in the backward pass.

    ``FrameWise(layer, remat=True, fold=False)``. A training step then stores only the wrapped
    layer's inputs and outputs; the layer runs a second time during back-propagation
    (``keras.remat``: ``tf.recompute_grad``, ``jax.checkpoint``, ``torch.utils.checkpoint``).
    Outputs and gradients are unchanged. ``keras.RematScope`` does the same per layer, but on
    JAX (Keras 3.15) it passes the call's Python arguments (``training=False``) through
    ``jax.checkpoint`` as traced values, which breaks any layer branching on them (``LSTM``,
    ``Dropout``: "Attempted boolean conversion of tracer"); here only the tensors are arguments
    of the rematerialized function. The wrapper is saved with the model.

    What it saves depends on the backend and on the layer. For the FCSLSTM (one training step,
    T = 5, 256x256, half width, batch 1; ``benchmarks/fcslstm_memory.py``, outputs in
    ``benchmarks/outputs/``) the memory a step adds to the process fell by about a third on
    TensorFlow (0.84 -> 0.55 GB, bidirectional 1.51 -> 1.07 GB) and on torch (1.03 -> 0.82 GB,
    2.13 -> 1.47 GB), while on JAX XLA's temporary buffers grew slightly (0.67 -> 0.72 GB, 1.30
    -> 1.40 GB): its compiled step (unrolled loops) plans its buffers anyway. The peak is set by
    the largest layer (conv1's activations at full resolution for all T frames), which is
    still computed whole when it is recomputed.

    Args:
        layer: the Keras layer (or model) to rematerialize; it must hold no random state
            used in training (no dropout).
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: the wrapped layer's input (a tensor or a list of tensors).
        training: passed to the wrapped layer.

    Returns:
        The wrapped layer's output.

    Example:

    >>> layer = Remat(keras.layers.Dense(2))
    >>> tuple(layer(np.ones((3, 4), "float32")).shape)
    (3, 2)
    """

    def __init__(self, layer, **kwargs):
        for key in ("chunk_size", "remat", "split_layer", "loop", "fold"):
            kwargs.pop(key, None)
        super().__init__(layer, remat=True, fold=False, **kwargs)
        self.supports_masking = False

    def get_config(self):
        config = super().get_config()
        for key in ("chunk_size", "remat", "split_layer", "loop", "fold"):
            config.pop(key)
        return config


@keras.saving.register_keras_serializable(package="kerasmed")
class SliceEncoder(FrameWise):
    """Applies a slice model to every slice of a volume: ``(B, N, H, W, C) -> (B, N, D)``.

    ``FrameWise(slice_model, chunk_size=slice_chunk, remat=remat, ...)`` with the ICH model's
    argument names. Without `slice_chunk` and `remat` this is
    ``keras.layers.TimeDistributed(slice_model)``: the ``B * N`` slices go through the CNN as
    one batch. A training step then keeps the activations of every slice for the backward
    pass: with the paper's CNN and 256x256 slices, TensorFlow's peak resident memory was 3.1 GB
    for 64 slices and 4.0 GB for 128 (a 320-slice volume would not fit next to other jobs on a
    23 GB machine). Two options bound it:

    - `slice_chunk`: the slices are processed `slice_chunk` at a time in a loop, so a forward
      pass never holds more than one chunk's activations;
    - `remat`: each chunk (or the whole stack) is wrapped in ``keras.remat`` (gradient
      checkpointing): only the chunk's input slices and output vectors are kept, and the
      chunk's activations are recomputed during the backward pass (one extra forward pass).

    Together, the memory of a training step grows with the N input slices and feature vectors
    only, not with the activations of N slices (TensorFlow, chunks of 16: 1.8, 1.9 and 2.1 GB
    peak for 64, 128 and 320 slices; see ``benchmarks/ich_volume.py``).

    The loop (`loop`): ``"scan"`` is ``keras.ops.scan`` (a ``tf.while_loop`` / ``lax.scan`` /
    Python loop on torch); ``"python"`` is a Python loop over the chunks, unrolled in a
    compiled graph, which needs the number of slices to be known when the layer runs (always
    on JAX and torch; not in a TensorFlow graph traced for any N, which then falls back to
    the scan). ``"auto"`` scans with `remat` and loops in Python without it: XLA hoists the
    recomputation of unrolled chunks and so keeps all their activations (measured on JAX: no
    memory saved), whereas inside a scan remat works (3.7x less for 32 slices in chunks of
    8); but XLA on CPU runs the convolutions of a scan body about 20 times slower, so on a
    JAX CPU setup remat buys memory with a much slower slice CNN (TensorFlow's while loop
    and torch do not have that cost; on a GPU it is the usual remat overhead). Outputs and
    gradients equal those of the plain path. (``keras.RematScope(mode="full")``
    rematerializes each *layer* separately, which still stores every layer's output, so it is
    not used here.)

    Only the part of the slice model up to `split_layer` runs in the loop; the layers after it
    run once on the intermediate vectors of all slices. The looped part runs through
    ``stateless_call`` and must not hold random state (dropout seeds; integer state cannot
    flow through a rematerialized TensorFlow loop), so put `split_layer` before the first
    dropout: `build_cnn_bilstm` splits its slice CNN at the last pooling. Other state
    (batch-normalization statistics) is carried from chunk to chunk.

    Args:
        slice_model: a functional `keras.Model` mapping ``(B, H, W, C)`` to ``(B, D)``.
        slice_chunk: ``None`` (all slices at once) or the number of slices per chunk.
        remat: recompute the looped part's activations in the backward pass.
        split_layer: name of the layer of `slice_model` whose output ends the looped part;
            ``None``: the whole model is looped.
        loop: ``"auto"``, ``"python"`` or ``"scan"`` (see above).
        **kwargs: `keras.layers.Layer` arguments (``name``, ``dtype``...).

    Call arguments:
        inputs: ``(B, N, H, W, C)`` volumes; N may differ between calls.
        training: passed to the slice model.
        mask: optional ``(B, N)`` mask; returned unchanged as the output mask.

    Returns:
        ``(B, N, D)`` slice features.

    Example:

    >>> from kerasmed.models.ich import build_slice_cnn
    >>> cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=8)
    >>> encoder = SliceEncoder(cnn, slice_chunk=4, split_layer="slice_cnn_pool6")
    >>> tuple(encoder(np.zeros((1, 6, 32, 32, 1), "float32")).shape)
    (1, 6, 8)
    """

    _layer_argument = "slice_model"

    def __init__(
        self, slice_model, slice_chunk=None, remat=False, split_layer=None, loop="auto", **kwargs
    ):
        check_positive_int(slice_chunk, "slice_chunk", allow_none=True)
        super().__init__(
            slice_model, chunk_size=slice_chunk, remat=remat, split_layer=split_layer,
            loop=loop, **kwargs,
        )  # fmt: skip
        self.input_spec = keras.InputSpec(ndim=5)

    @property
    def slice_model(self):
        """The wrapped slice model."""
        return self.layer

    @property
    def slice_chunk(self):
        """Slices per chunk (``None``: all at once)."""
        return self.chunk_size

    def get_config(self):
        config = layers.Layer.get_config(self)
        config.update(
            {
                "slice_model": keras.saving.serialize_keras_object(self.layer),
                "slice_chunk": self.chunk_size,
                "remat": self.remat,
                "split_layer": self.split_layer,
                "loop": self.loop,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["slice_model"] = keras.saving.deserialize_keras_object(config["slice_model"])
        return cls(**config)
