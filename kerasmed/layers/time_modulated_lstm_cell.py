"""The cell of `TimeModulatedLSTM` (paper 000): one step of Eq. 1 (v1) or Eq. 2 (v2).

`TimeModulatedLSTMCell` reads the step's features, previous labels and time columns; its
`project_inputs` / `gates_to_state` are also used by the layer's scan implementation, which
computes all steps' gates at once (``time_modulated_lstm.py``). Kept in its own module as Keras
keeps ``LSTMCell`` beside ``LSTM``; both names are exported from `kerasmed.layers`.
"""

import keras
from keras import ops
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from kerasmed.layers._cells import (
    LSTM_ARGUMENTS,
    REQUIRED,
    bind_arguments,
    define_arguments,
    lstm_bias_initializer,
    lstm_config,
    set_lstm_arguments,
)
from kerasmed.validation import (
    check_non_negative_int,
    check_one_of,
    check_positive_int,
    check_rate,
)


def _check_init_args(arguments):
    check_positive_int(arguments["units"], "units")
    check_positive_int(arguments["time_features"], "time_features")
    check_non_negative_int(arguments["num_labels"], "num_labels")
    check_one_of(arguments["version"], "version", (1, 2))
    check_rate(arguments["dropout"], "dropout")
    check_rate(arguments["recurrent_dropout"], "recurrent_dropout")
    if arguments["recurrent_dropout"] and not arguments["recurrent"]:
        raise ValueError(
            "`recurrent_dropout` needs `recurrent=True` (without it the gates do not read "
            f"the previous output). Received: recurrent_dropout={arguments['recurrent_dropout']}"
        )


@keras.saving.register_keras_serializable(package="kerasmed")
class TimeModulatedLSTMCell(keras.layers.Layer, DropoutRNNCell):
    """One step of the time-modulated LSTM (tLSTM), Eq. (1) or Eq. (2) of the paper.

    Version 1 (Eq. 1): the time lapse δ_t enters every gate and the candidate::

        f_t = σ(W_fl l_{t-1} + W_fx X̂_t + W_fj δ_t + b_f)      (i_t, o_t alike)
        c_t = tanh(W_cl l_{t-1} + W_cx X̂_t + W_cj δ_t + b_c)
        h_t = f_t * h_{t-1} + i_t * c_t
        y_t = o_t * tanh(h_t)

    Version 2 (Eq. 2): the gates do not read δ_t; it is added to the cell state,
    ``h_t = f_t * h_{t-1} + i_t * c_t + W_tj δ_t``.

    As in the paper, the gates read only X̂_t, l_{t-1} and δ_t, not the previous output.
    ``recurrent=True`` (an extension) adds the usual ``recurrent_kernel`` applied to y_{t-1}:
    a conventional LSTM plus time modulation.

    Weights, laid out like `keras.layers.LSTMCell` (gate columns in the order i, f, c, o):
    ``kernel`` ``(features + num_labels, 4 * units)`` (rows: features first, then labels),
    ``time_kernel`` ``(time_features, 4 * units)`` for version 1 or ``(time_features, units)``
    for version 2 (initialized, regularized and constrained like ``kernel``),
    ``recurrent_kernel`` ``(units, 4 * units)`` only when ``recurrent=True``, ``bias``
    ``(4 * units,)``.

    States: ``[y, h]``, the output and the cell state (``state_size = [units, units]``), in the
    order of Keras's LSTM (output first, then the carry).

    Args:
        units: Positive integer, dimensionality of the output and of the cell state.
        num_labels: Non-negative integer, width of the previous-labels block of the step input.
        version: 1 (Eq. 1, δ in the gates) or 2 (Eq. 2, δ added to the cell state).
        recurrent: Boolean. If `True`, the gates also read the previous output (extension).
        time_features: Positive integer, width of the time block: 1 for the paper's raw δ_t,
            more for an encoding of δ_t (one-hot buckets etc.) made by the data pipeline.
        use_bias: Boolean, whether the gates use a bias vector.
        kernel_initializer: Initializer for ``kernel`` and ``time_kernel``.
        recurrent_initializer: Initializer for ``recurrent_kernel``.
        bias_initializer: Initializer for the bias vector.
        unit_forget_bias: Boolean. If `True`, add 1 to the forget-gate bias at initialization.
        kernel_regularizer: Regularizer for ``kernel`` and ``time_kernel``.
        recurrent_regularizer: Regularizer for ``recurrent_kernel``.
        bias_regularizer: Regularizer for the bias vector.
        kernel_constraint: Constraint for ``kernel`` and ``time_kernel``.
        recurrent_constraint: Constraint for ``recurrent_kernel``.
        bias_constraint: Constraint for the bias vector.
        dropout: Float in [0, 1], fraction of the step input (the whole concatenation) to drop;
            the same mask is used at every step, as in Keras.
        recurrent_dropout: Float in [0, 1], fraction of y_{t-1} to drop before
            ``recurrent_kernel``; requires ``recurrent=True``.
        seed: Random seed for dropout.

    Call arguments:
        inputs: ``(batch, features + num_labels + time_features)``, the concatenation
            ``[features, previous_labels, time]`` of one step.
        states: ``[y_{t-1}, h_{t-1}]``, each ``(batch, units)``.
        training: Python boolean, whether dropout applies.

    Returns:
        ``(y_t, [y_t, h_t])``.

    Example:

    >>> cell = TimeModulatedLSTMCell(4, num_labels=3)
    >>> rnn = keras.layers.RNN(cell)
    >>> tuple(rnn(np.zeros((2, 5, 8 + 3 + 1), "float32")).shape)
    (2, 4)

    Reference:
        R. Santeramo, S. Withey, G. Montana. "Longitudinal detection of radiological
        abnormalities with time-modulated LSTM", DLMIA workshop, MICCAI 2018, Section 3.
    """

    def __init__(self, *args, **kwargs):
        arguments, kwargs = bind_arguments(TimeModulatedLSTMCell, self, args, kwargs)
        _check_init_args(arguments)
        super().__init__(**kwargs)
        for name in _OWN_ARGUMENTS:
            setattr(self, name, arguments[name])
        self.recurrent = bool(self.recurrent)
        set_lstm_arguments(self, arguments)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def check_input_dim(self, input_dim, received=None):
        """Raises unless a step input of width `input_dim` holds features, labels and time."""
        minimum = self.num_labels + self.time_features + 1
        if input_dim is None or input_dim < minimum:
            raise ValueError(
                "The last axis of the input must hold features (at least 1), "
                f"previous_labels ({self.num_labels}) and time ({self.time_features}) columns, "
                f"i.e. at least {minimum}. Received: {received or f'input_dim={input_dim}'}"
            )

    def build(self, input_shape):
        self.check_input_dim(input_shape[-1])
        width = input_shape[-1] - self.time_features
        self.kernel = self.add_weight(
            shape=(width, 4 * self.units),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        time_units = 4 * self.units if self.version == 1 else self.units
        self.time_kernel = self.add_weight(
            shape=(self.time_features, time_units),
            name="time_kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.recurrent:
            self.recurrent_kernel = self.add_weight(
                shape=(self.units, 4 * self.units),
                name="recurrent_kernel",
                initializer=self.recurrent_initializer,
                regularizer=self.recurrent_regularizer,
                constraint=self.recurrent_constraint,
            )
        else:
            self.recurrent_kernel = None
        if self.use_bias:
            bias_initializer = lstm_bias_initializer(self, self.units)
            self.bias = self.add_weight(
                shape=(4 * self.units,),
                name="bias",
                initializer=bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None

    def project_inputs(self, inputs):
        """Input part of the gate pre-activations, for one step or a whole sequence.

        Args:
            inputs: ``(..., features + num_labels + time_features)``.

        Returns:
            ``(z, z_time)``: ``z`` ``(..., 4 * units)`` holds the kernel, bias and (version 1)
            time terms; ``z_time`` ``(..., units)`` is ``W_tj δ_t`` for version 2, else `None`.
        """
        width = inputs.shape[-1] - self.time_features
        z = ops.matmul(inputs[..., :width], self.kernel)
        time_term = ops.matmul(inputs[..., width:], self.time_kernel)
        if self.version == 1:
            z = z + time_term
            time_term = None
        if self.use_bias:
            z = z + self.bias
        return z, time_term

    def gates_to_state(self, z, time_term):
        """Activations and the cell-state input: returns ``(f, u, o)``, ``h = f * h_{t-1} + u``."""
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        u = ops.sigmoid(z_i) * ops.tanh(z_c)
        if time_term is not None:
            u = u + time_term
        return ops.sigmoid(z_f), u, ops.sigmoid(z_o)

    def call(self, inputs, states, training=False):
        y_tm1, h_tm1 = states[0], states[1]
        if training and 0.0 < self.dropout < 1.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        z, time_term = self.project_inputs(inputs)
        if self.recurrent:
            if training and 0.0 < self.recurrent_dropout < 1.0:
                y_tm1 = y_tm1 * self.get_recurrent_dropout_mask(y_tm1)
            z = z + ops.matmul(y_tm1, self.recurrent_kernel)
        f, u, o = self.gates_to_state(z, time_term)
        h = f * h_tm1 + u
        y = o * ops.tanh(h)
        return y, [y, h]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    def get_config(self):
        config = {name: getattr(self, name) for name in _OWN_ARGUMENTS}
        return {**super().get_config(), **config, **lstm_config(self)}


_OWN_ARGUMENTS = ("units", "num_labels", "version", "recurrent", "time_features")
define_arguments(
    TimeModulatedLSTMCell,
    (("units", REQUIRED), ("num_labels", REQUIRED), ("version", 1), ("recurrent", False))
    + (("time_features", 1),)
    + LSTM_ARGUMENTS,
)
