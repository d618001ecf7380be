"""Structured convolutional LSTM (FCSLSTM, paper 002): a ConvLSTM whose input goes through Ψ_x.

Eq. (1) of the paper generalizes the convolutional LSTM: every gate reads ``Ψ_x(x_t)`` and
``Ψ_h(h_{t-1})`` for arbitrary operators Ψ. Here Ψ_x is ``input_operator`` (any Keras layer or
model, e.g. conv+ReLU+conv+ReLU as the paper's "conv1" block) followed by the gate convolution,
and Ψ_h is a convolution with ``recurrent_kernel_size``. With ``input_operator=None`` the layer is
``keras.layers.ConvLSTM2D``: same weights, same order, same outputs.

The structure follows ``keras/src/layers/rnn/conv_lstm.py``. Two private Keras symbols are used,
as Keras's own recurrent layers do: ``DropoutRNNCell`` (dropout masks that are drawn once per
sequence, before the time loop, which JAX needs) and ``backend.rnn`` (the per-backend time loop).
The Keras minor version is pinned in ``requirements.txt``.
"""

import keras
from keras import ops
from keras.src import backend as keras_backend

from kerasmed import backend_policy
from kerasmed.layers import _cells, _checks
from kerasmed.layers.structured_conv_lstm_cell import StructuredConvLSTM2DCell

__all__ = ["StructuredConvLSTM2D", "StructuredConvLSTM2DCell"]


@keras.saving.register_keras_serializable(package="kerasmed")
class StructuredConvLSTM2D(keras.layers.RNN):
    """Structured convolutional LSTM over a sequence of images (the FCSLSTM block).

    Eq. (1) of the paper with Ψ_x = gate convolution ∘ `input_operator` and Ψ_h = convolution:

        i_t = σ(W_i * Ψ(x_t) + U_i * h_{t-1} + b_i),   f_t, o_t likewise,
        c_t = f_t ∘ c_{t-1} + i_t ∘ tanh(W_c * Ψ(x_t) + U_c * h_{t-1} + b_c),
        h_t = o_t ∘ tanh(c_t).

    Only the feature map of the operator's output is carried through time (the paper stores
    "conv1" features, not every internal sub-layer). With `input_operator=None` this is
    `keras.layers.ConvLSTM2D` (same weights `kernel, recurrent_kernel, bias` in the same order,
    same outputs), except that `padding` defaults to `"same"`. Masked time steps carry the
    state over, as in Keras. The operator is applied to the `batch * steps` frames at once, so a
    per-frame operator (convolutions, pooling, activations) gives the same result as a per-step
    call; batch statistics of a `BatchNormalization` inside it cover all frames.

    A built layer keeps its frame size: another channel count is refused by its `InputSpec`
    (as `ConvLSTM2D` does; it must not run as a grouped convolution), another spatial size
    too unless an `initial_state` of that size is given. Sequences of length 0, masks that
    are not `(batch, time)` and initial states of another shape are refused with a
    `ValueError` naming the argument, the axis and both sizes.

    Args:
        filters: int, number of channels of the hidden and cell states.
        kernel_size: int or pair of ints, window of the gate convolution applied to Ψ_x(x_t).
        input_operator: `None`, or a Keras layer/model applied to every frame x_t before the
            gate convolution, mapping 4D to 4D (e.g. `Sequential([Conv2D, ReLU, Conv2D, ReLU,
            MaxPooling2D])`). The state's spatial size follows its output. Its weights are
            weights of this layer; it is saved inside the layer config, and every layer built
            from that config (e.g. the backward copy made by `Bidirectional`) gets its own.
        recurrent_kernel_size: int or pair of ints, window of Ψ_h (defaults to `kernel_size`).
        strides, padding, dilation_rate: of the gate convolution, as in `ConvLSTM2D`
            (`padding` is `"same"` or `"valid"`, default `"same"`).
        data_format: `"channels_last"` (`(batch, time, rows, cols, channels)`) or
            `"channels_first"` (`(batch, time, channels, rows, cols)`); the operator must use
            the same layout.
        activation, recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, unit_forget_bias, kernel_regularizer, recurrent_regularizer,
        bias_regularizer, activity_regularizer, kernel_constraint, recurrent_constraint,
        bias_constraint, dropout, recurrent_dropout, seed: as in `keras.layers.ConvLSTM2D`
            (`dropout` applies to Ψ_x(x_t)).
        return_sequences: return the whole output sequence, not only the last output.
        return_state: also return the last `h` and `c`.
        go_backwards: process the sequence backwards (and return the reversed sequence).
        stateful: carry the last state of each batch into the next one.
        **kwargs: other `keras.layers.RNN` arguments, e.g. `unroll=True`: on JAX on CPU, XLA
            runs convolutions inside the backward pass of a loop very slowly (batch 2, 5 steps
            of 64x64x16, 32 filters: a train step takes 2.0 s looped, 0.13 s unrolled; the
            same for `keras.layers.ConvLSTM2D`, 2.7 s / 0.11 s), so unroll short sequences
            there (`benchmarks/structured_conv_lstm.py --unroll`).

    Call arguments:
        sequences: a 5D tensor.
        initial_state: optional `[h_0, c_0]`.
        mask: optional boolean `(batch, time)` tensor; masked steps carry the state over.
        training: whether dropout (and the operator's training behaviour) is active.

    Returns:
        `h_T` of shape `(batch, rows', cols', filters)`, or `(batch, time, rows', cols',
        filters)` with `return_sequences`; plus `h_T, c_T` with `return_state`.

    Example:

    >>> operator = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same",
    ...     activation="relu"), keras.layers.MaxPooling2D(2)])
    >>> layer = StructuredConvLSTM2D(2, 3, input_operator=operator, return_sequences=True)
    >>> tuple(layer(np.ones((1, 3, 8, 8, 1), "float32")).shape)
    (1, 3, 4, 4, 2)

    Reference:
        Gao, Phillips, Zheng, Min, Fletcher, Gerig, "Fully convolutional structured LSTM
        networks for joint 4D medical image segmentation", ISBI 2018, Eq. (1) and Section 2.
    """

    def __init__(self, *args, **kwargs):
        _, cell, rnn_kwargs = _cells.rnn_layer_arguments(StructuredConvLSTM2D, self, args, kwargs)
        super().__init__(cell, **rnn_kwargs)
        self.input_spec = keras.InputSpec(ndim=5)

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        # As `ConvLSTM2D` (which fixes the whole frame shape): the channel count is the
        # kernel's, and a different one must not become a grouped convolution.
        channel_axis = 4 if self.cell.data_format == "channels_last" else 2
        self.input_spec = keras.InputSpec(
            ndim=5, axes={channel_axis: sequences_shape[channel_axis]}
        )

    def _check_sequences(self, sequences_shape, initial_state_shape):
        """Checks that an `InputSpec` cannot make: at least one time step, and, where the zero
        initial state (of the size the layer was built for) is used, the frame size."""
        _checks.check_steps("sequences", sequences_shape)
        if self.built and initial_state_shape is None:
            spatial = (2, 3) if self.cell.data_format == "channels_last" else (3, 4)
            frame = self.cell._frame_shape
            _checks.check_built_axes(
                "sequences",
                sequences_shape,
                {axis: frame[axis - 1] for axis in spatial},
                hint=" (pass an `initial_state` of the new size to run it on other frames)",
            )

    def call(self, sequences, initial_state=None, mask=None, training=False):
        shape = tuple(sequences.shape)
        states_shape = None if initial_state is None else [s.shape for s in initial_state]
        self._check_sequences(shape, None if self.stateful else states_shape)
        mask = keras.tree.flatten(mask)[0] if isinstance(mask, (list, tuple)) else mask
        _checks.check_mask(mask, shape)
        if initial_state is not None:
            state = self.cell.compute_output_shape((shape[0],) + shape[2:])[0]
            _checks.check_states(initial_state, [state, state])
        return super().call(sequences, initial_state, mask=mask, training=training)

    def _project_per_step(self, training):
        """Whether the input convolution runs inside the time loop rather than before it
        (`kerasmed.backend_policy.conv_lstm_project_per_step`)."""
        return backend_policy.conv_lstm_project_per_step(
            training, has_operator=self.cell.input_operator is not None
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        # Time-major throughout: only the narrow input is transposed, not the 4-gate projection.
        cell = self.cell
        per_step = self._project_per_step(training)
        inputs = ops.transpose(sequences, (1, 0, 2, 3, 4))
        if not per_step:
            inputs = cell.project_inputs(inputs, training=training, time_major=True)
        # The channel axis of a time-major (T, B, ...) tensor; `cell.channel_axis` is a frame's.
        channel_axis = cell.channel_axis + 1 if cell.channel_axis >= 0 else cell.channel_axis
        width = inputs.shape[channel_axis]
        states = list(initial_state)
        if mask is not None:
            # Masking is done here, not by `backend.rnn`, whose JAX version only broadcasts the
            # mask over 2D states. A masked step keeps (h, c) and repeats the previous output
            # (zeros with `zero_output_for_mask`), as Keras's RNN does. The mask travels as one
            # extra channel of the step inputs (a nested input would need a static length).
            keep = ops.transpose(ops.cast(mask, inputs.dtype), (1, 0))
            keep = ops.reshape(keep, tuple(ops.shape(keep)) + (1, 1, 1))
            keep_shape = list(ops.shape(inputs))
            keep_shape[channel_axis] = 1
            inputs = ops.concatenate(
                [inputs, ops.broadcast_to(keep, keep_shape)], axis=channel_axis
            )
            states.append(ops.zeros_like(states[0]))  # the previous output

        def step(step_inputs, states):
            if keras.backend.backend() == "torch" and self.stateful:
                states = [ops.copy(s) for s in states]  # keep autograd away from in-place updates
            if mask is not None:
                step_inputs, keep = ops.split(step_inputs, [width], axis=cell.channel_axis)
            if per_step:
                step_inputs = cell._input_conv(step_inputs, cell.kernel)
            if mask is None:
                return cell.recurrent_step(step_inputs, states, training=training)
            keep = keep > 0.5
            h, (_, c) = cell.recurrent_step(step_inputs, states, training=training)
            h_new, c_new = ops.where(keep, h, states[0]), ops.where(keep, c, states[1])
            carried = ops.zeros_like(h) if self.zero_output_for_mask else states[2]
            output = ops.where(keep, h, carried)
            return output, [h_new, c_new, output]

        last_output, outputs, states = keras_backend.rnn(
            step,
            inputs,
            states,
            go_backwards=self.go_backwards,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            time_major=True,
            return_all_outputs=self.return_sequences,
        )
        if self.return_sequences:
            outputs = ops.transpose(outputs, (1, 0, 2, 3, 4))
        return last_output, outputs, states[:2]

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        self._check_sequences(tuple(sequences_shape), initial_state_shape)
        batch_size, steps = sequences_shape[0], sequences_shape[1]
        state_shape = self.cell.compute_output_shape((batch_size,) + tuple(sequences_shape[2:]))[0]
        output_shape = (
            (batch_size, steps) + state_shape[1:] if self.return_sequences else state_shape
        )
        if self.return_state:
            return output_shape, state_shape, state_shape
        return output_shape

    def compute_mask(self, _, mask):
        mask = keras.tree.flatten(mask)[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask, None, None]
        return output_mask

    def get_initial_state(self, batch_size):
        """Zero `[h_0, c_0]` for `batch_size` sequences (the layer must be built)."""
        return self.cell.get_initial_state(batch_size=batch_size)

    def get_config(self):
        return _cells.rnn_layer_config(self, super().get_config())

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# The signature: the cell's arguments and RNN's; `layer.filters`, ... read the cell's.
_cells.declare_rnn_layer(
    StructuredConvLSTM2D, StructuredConvLSTM2DCell, "structured_conv_lstm_cell"
)
