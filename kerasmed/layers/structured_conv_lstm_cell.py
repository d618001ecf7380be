"""The cell of `StructuredConvLSTM2D` (paper 002): one step of the structured ConvLSTM.

`StructuredConvLSTM2DCell` computes the gates of Eq. (1) from Ψ_x(x_t) (``input_operator`` then
the gate convolution) and Ψ_h(h_{t-1}); `StructuredConvLSTM2D` (in ``structured_conv_lstm.py``)
runs it over time. Kept in its own module as Keras keeps ``ConvLSTMCell`` beside ``ConvLSTM``;
both names are exported from `kerasmed.layers`.
"""

import keras
from keras import activations, ops
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from kerasmed.backend_policy import conv_channels_last_only
from kerasmed.layers._cells import (
    LSTM_ARGUMENTS,
    REQUIRED,
    argument_names,
    bind_arguments,
    define_arguments,
    lstm_bias_initializer,
    lstm_config,
    set_lstm_arguments,
)
from kerasmed.validation import check_int_tuple, check_positive_int, check_rate

_GATES = 4  # input, forget, cell candidate, output: Keras's order


def _conv_output_length(length, kernel, padding, stride, dilation):
    if padding == "same":
        return -(-length // stride)
    return (length - dilation * (kernel - 1) - 1) // stride + 1


def _deserialize_operator(operator):
    if isinstance(operator, dict):
        operator = keras.saving.deserialize_keras_object(operator)
    if operator is not None and not isinstance(operator, keras.layers.Layer):
        raise ValueError(
            "`input_operator` must be a Keras layer or model (or its serialized config), or None. "
            f"Received: input_operator={operator!r}"
        )
    return operator


@keras.saving.register_keras_serializable(package="kerasmed")
class StructuredConvLSTM2DCell(keras.layers.Layer, DropoutRNNCell):
    """Cell of the structured convolutional LSTM: one step of Eq. (1).

    The gates are ``σ(conv(Ψ_x(x_t), W) + conv_h(h_{t-1}, U) + b)`` with the cell candidate
    under ``activation``; ``Ψ_x`` is ``input_operator`` (identity when None). Meant to be run by
    `StructuredConvLSTM2D`, which applies the operator and the input convolution to all time
    steps at once and loops only over the recurrent part.

    Args:
        filters: int, number of channels of the hidden and cell states.
        kernel_size: int or pair of ints, window of the gate convolution applied to Ψ_x(x_t).
        input_operator: `None`, or a Keras layer/model mapping a 4D frame batch to a 4D feature
            map (any spatial size: the state takes the operator's output size). Its weights
            are weights of the cell. A serialized layer config is accepted too.
        recurrent_kernel_size: int or pair of ints, window of the hidden-state convolution
            Ψ_h (always `"same"` padding, stride 1). Defaults to `kernel_size`.
        strides: int or pair of ints, strides of the gate convolution.
        padding: `"same"` or `"valid"`, padding of the gate convolution.
        data_format: `"channels_last"` or `"channels_first"`; the operator must use the same
            layout. Defaults to `keras.config.image_data_format()`.
        dilation_rate: int or pair of ints, dilation of the gate convolution.
        activation: activation of the cell candidate and of the output.
        recurrent_activation: activation of the gates.
        use_bias: whether the gates have a bias.
        kernel_initializer: initializer of `kernel` (gate convolution).
        recurrent_initializer: initializer of `recurrent_kernel` (Ψ_h).
        bias_initializer: initializer of `bias`.
        unit_forget_bias: add 1 to the forget-gate bias at initialization.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: weight regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: weight constraints.
        dropout: fraction of Ψ_x(x_t) dropped (one mask per gate, fixed over time).
        recurrent_dropout: fraction of h_{t-1} dropped (one mask per gate, fixed over time).
        seed: random seed for dropout.

    Call arguments:
        inputs: a 4D tensor, the frame x_t.
        states: `[h_{t-1}, c_{t-1}]`.
        training: whether dropout is active (also passed to the operator).

    Returns:
        `(h_t, [h_t, c_t])`.

    Example:

    >>> cell = StructuredConvLSTM2DCell(2, 3)
    >>> cell.build((None, 8, 8, 1))
    >>> h, (h, c) = cell(np.ones((1, 8, 8, 1), "float32"), cell.get_initial_state(1))
    >>> tuple(h.shape)
    (1, 8, 8, 2)

    Reference:
        Gao, Phillips, Zheng, Min, Fletcher, Gerig, "Fully convolutional structured LSTM
        networks for joint 4D medical image segmentation", ISBI 2018, Eq. (1).
    """

    def __init__(self, *args, **kwargs):
        arguments, kwargs = bind_arguments(StructuredConvLSTM2DCell, self, args, kwargs)
        super().__init__(**kwargs)
        filters, kernel_size = arguments["filters"], arguments["kernel_size"]
        recurrent_kernel_size = arguments["recurrent_kernel_size"]
        strides, padding = arguments["strides"], arguments["padding"]
        data_format, dilation_rate = arguments["data_format"], arguments["dilation_rate"]
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = check_int_tuple(kernel_size, "kernel_size", 2)
        self.recurrent_kernel_size = check_int_tuple(
            self.kernel_size if recurrent_kernel_size is None else recurrent_kernel_size,
            "recurrent_kernel_size",
            2,
        )
        self.strides = check_int_tuple(strides, "strides", 2)
        self.dilation_rate = check_int_tuple(dilation_rate, "dilation_rate", 2)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` is not compatible with `dilation_rate > 1`. "
                f"Received: strides={self.strides}, dilation_rate={self.dilation_rate}"
            )
        if not isinstance(padding, str) or padding.lower() not in ("same", "valid"):
            raise ValueError(f'`padding` must be "same" or "valid". Received: padding={padding}')
        self.padding = padding.lower()
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                '`data_format` must be "channels_last" or "channels_first". '
                f"Received: data_format={data_format}"
            )
        self.data_format = data_format
        check_rate(arguments["dropout"], "dropout")
        check_rate(arguments["recurrent_dropout"], "recurrent_dropout")
        self.input_operator = _deserialize_operator(arguments["input_operator"])
        self.activation = activations.get(arguments["activation"])
        self.recurrent_activation = activations.get(arguments["recurrent_activation"])
        set_lstm_arguments(self, arguments)
        self.dropout_mask_count = _GATES
        self.channel_axis = -1 if data_format == "channels_last" else 1
        self.state_size = -1  # spatial states: shapes come from `state_shape` after `build`.

    # ----------------------------------------------------------------- shapes
    def _operator_output_shape(self, frame_shape):
        """Shape of Ψ_x(x_t) for a frame batch of shape `frame_shape` (4D)."""
        operator = self.input_operator
        if operator is None:
            return tuple(frame_shape)
        if self.built and tuple(frame_shape[1:]) == self._frame_shape[1:]:
            return (frame_shape[0],) + self._gate_input_shape[1:]
        if not operator.built:
            operator.build(tuple(frame_shape))
        try:
            shape = operator.compute_output_shape(tuple(frame_shape))
        except NotImplementedError:
            shape = operator.compute_output_spec(keras.KerasTensor(frame_shape)).shape
        shape = tuple(shape)
        if len(shape) != 4:
            raise ValueError(
                "`input_operator` must map a 4D frame batch to a 4D feature map; for frames of "
                f"shape {tuple(frame_shape)} it gives shape {shape}. "
                f"Received: input_operator={operator.name}"
            )
        return shape

    def _state_shape(self, gate_input_shape):
        if self.data_format == "channels_last":
            spatial = gate_input_shape[1:3]
        else:
            spatial = gate_input_shape[2:4]
        spatial = tuple(
            _conv_output_length(n, k, self.padding, s, d)
            for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate)
        )
        if min(spatial) <= 0:
            raise ValueError(
                f"The gate convolution leaves no pixels of the {gate_input_shape} feature map "
                f"(use padding='same' or a smaller kernel). Received: padding={self.padding}"
            )
        if self.data_format == "channels_last":
            return (gate_input_shape[0],) + spatial + (self.filters,)
        return (gate_input_shape[0], self.filters) + spatial

    def build(self, input_shape, states_shape=None):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                "StructuredConvLSTM2DCell expects 4D frames (batch, rows, cols, channels) or "
                f"(batch, channels, rows, cols). Received: input_shape={input_shape}"
            )
        if any(d is None for d in input_shape[1:]):
            raise ValueError(
                "The spatial and channel sizes of the frames must be known. "
                f"Received: input_shape={input_shape}"
            )
        gate_input_shape = self._operator_output_shape(input_shape)
        if any(d is None for d in gate_input_shape[1:]):
            raise ValueError(
                "`input_operator` must give a feature map of known size; it gives "
                f"{gate_input_shape}. Received: input_operator={self.input_operator.name}"
            )
        self._frame_shape = input_shape
        self._gate_input_shape = gate_input_shape
        self.state_shape = self._state_shape(gate_input_shape)
        input_dim = gate_input_shape[self.channel_axis]
        self.kernel = self.add_weight(
            shape=self.kernel_size + (input_dim, self.filters * _GATES),
            initializer=self.kernel_initializer,
            name="kernel",
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=self.recurrent_kernel_size + (self.filters, self.filters * _GATES),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            bias_initializer = lstm_bias_initializer(self, self.filters)
            self.bias = self.add_weight(
                shape=(self.filters * _GATES,),
                name="bias",
                initializer=bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.built = True

    def compute_output_shape(self, inputs_shape, states_shape=None):
        state_shape = self._state_shape(self._operator_output_shape(inputs_shape))
        return state_shape, [state_shape, state_shape]

    def get_initial_state(self, batch_size=None):
        """Zero `[h_0, c_0]` of shape `(batch_size,) + state_shape[1:]` (the cell must be built)."""
        shape = (batch_size,) + tuple(self.state_shape[1:])
        return [ops.zeros(shape, dtype=self.compute_dtype) for _ in range(2)]

    def get_dropout_mask(self, step_input):
        """Per-gate dropout masks on Ψ_x(x_t) (not on x_t), drawn once per sequence."""
        if getattr(self, "_dropout_mask", None) is None and self.dropout > 0:
            shape = (ops.shape(step_input)[0],) + tuple(self._gate_input_shape[1:])
            self._dropout_mask = self._create_dropout_mask(
                ops.ones(shape, dtype=self.compute_dtype), self.dropout
            )
        return getattr(self, "_dropout_mask", None)

    # ------------------------------------------------------------ computation
    def _gate_conv(self, x, kernel, padding, strides, dilation_rate):
        transpose = self.data_format == "channels_first" and conv_channels_last_only()
        if transpose:  # TensorFlow's CPU kernel may take NHWC only (kerasmed.backend_policy)
            x = ops.transpose(x, (0, 2, 3, 1))
        y = ops.conv(
            x,
            kernel,
            strides=strides,
            padding=padding,
            data_format="channels_last" if transpose else self.data_format,
            dilation_rate=dilation_rate,
        )
        return ops.transpose(y, (0, 3, 1, 2)) if transpose else y

    def _input_conv(self, x, kernel):
        """The gate convolution of Ψ_x(x_t): the layer's padding, strides and dilation."""
        return self._gate_conv(x, kernel, self.padding, self.strides, self.dilation_rate)

    def project_inputs(self, sequences, training=False, time_major=False):
        """`conv(Ψ_x(x_t), W)` for every time step: `(B, T, ...)` -> `(B, T, ..., 4 filters)`.

        Ψ_x and the input convolution do not depend on the recurrence, so they run on the
        `B*T` frames at once (like `TimeDistributed`); only `recurrent_step` loops over time.
        With `time_major`, `sequences` and the result are `(T, B, ...)`.
        """
        time_axis = 0 if time_major else 1
        steps = sequences.shape[time_axis]
        steps = ops.shape(sequences)[time_axis] if steps is None else steps
        # The static batch size where known: with -1, a TF graph traced for an unknown T loses
        # the batch size and its while_loop then rejects the (known-batch) initial state.
        batch = sequences.shape[1 - time_axis]
        batch = -1 if batch is None else batch
        lead = (steps, batch) if time_major else (batch, steps)
        frames = ops.reshape(sequences, (-1,) + tuple(sequences.shape[2:]))
        if self.input_operator is not None:
            frames = self.input_operator(frames, training=training)
            frames = ops.cast(frames, self.compute_dtype)
        conv = self._input_conv
        if training and 0.0 < self.dropout < 1.0:
            masks = self.get_dropout_mask(sequences[0] if time_major else sequences[:, 0])
            psi = ops.reshape(frames, lead + tuple(frames.shape[1:]))
            kernels = ops.split(self.kernel, _GATES, axis=-1)
            projected = [
                conv(
                    ops.reshape(psi * ops.expand_dims(m, time_axis), (-1,) + tuple(psi.shape[2:])),
                    w,
                )
                for m, w in zip(masks, kernels)
            ]
            projected = ops.concatenate(projected, axis=self.channel_axis)
        else:
            projected = conv(frames, self.kernel)
        return ops.reshape(projected, lead + tuple(projected.shape[1:]))

    def recurrent_step(self, projected, states, training=False):
        """One step of Eq. (1) given the projected input `conv(Ψ_x(x_t), W)` (`project_inputs`)."""
        h_tm1, c_tm1 = states[0], states[1]
        conv = lambda x, w: self._gate_conv(x, w, "same", 1, 1)  # noqa: E731
        if training and 0.0 < self.recurrent_dropout < 1.0:
            masks = self.get_recurrent_dropout_mask(h_tm1)
            kernels = ops.split(self.recurrent_kernel, _GATES, axis=-1)
            recurrent = ops.concatenate(
                [conv(h_tm1 * m, w) for m, w in zip(masks, kernels)], axis=self.channel_axis
            )
        else:
            recurrent = conv(h_tm1, self.recurrent_kernel)
        z = projected + recurrent
        if self.use_bias:
            # Added here, on one step's gates, rather than to the projection of the whole
            # sequence: one pass less over a (T, B, H, W, 4 filters) tensor (on JAX/XLA on a
            # CPU, that pass cost as much as the input convolution itself).
            shape = [1] * 4
            shape[self.channel_axis] = self.filters * _GATES
            z = z + ops.reshape(self.bias, shape)
        z_i, z_f, z_c, z_o = ops.split(z, _GATES, axis=self.channel_axis)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o)
        h = o * self.activation(c)
        return h, [h, c]

    def call(self, inputs, states, training=False):
        projected = self.project_inputs(ops.expand_dims(inputs, 1), training=training)
        return self.recurrent_step(projected[:, 0], states, training=training)

    def get_config(self):
        operator = self.input_operator
        config = {
            name: getattr(self, name) for name in argument_names(StructuredConvLSTM2DCell)[:8]
        }
        config["input_operator"] = (
            None if operator is None else keras.saving.serialize_keras_object(operator)
        )
        config["activation"] = activations.serialize(self.activation)
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return {**super().get_config(), **config, **lstm_config(self)}


define_arguments(
    StructuredConvLSTM2DCell,
    (
        ("filters", REQUIRED),
        ("kernel_size", REQUIRED),
        ("input_operator", None),
        ("recurrent_kernel_size", None),
        ("strides", 1),
        ("padding", "same"),
        ("data_format", None),
        ("dilation_rate", 1),
        ("activation", "tanh"),
        ("recurrent_activation", "sigmoid"),
    )
    + LSTM_ARGUMENTS,
)
