"""Time-modulated LSTM (tLSTM) for irregularly spaced sequences of exams.

The tLSTM unit of Santeramo et al. reads, at each step, the image features X̂_t, the labels of the
previous exam l_{t-1} and the time lapse δ_t since the previous exam. Its gates do not read the
previous output, so the cell-state recurrence ``h_t = f_t * h_{t-1} + u_t`` is linear with
coefficients that depend only on the inputs: `TimeModulatedLSTM` computes all gates with one matmul
and then solves only that elementwise recurrence (``implementation="scan"``) instead of running
the whole cell step by step.
"""

import keras
from keras import ops

from kerasmed.layers import _cells, _checks
from kerasmed.layers.linear_scan import linear_scan
from kerasmed.layers.time_modulated_lstm_cell import TimeModulatedLSTMCell

__all__ = ["TimeModulatedLSTM", "TimeModulatedLSTMCell"]

# Gradient entries below this magnitude are zeroed by `_flush_tiny_gradient`.
_GRADIENT_FLOOR = 1e-30


@ops.custom_gradient
def _flush_tiny_gradient(x):
    """Identity whose gradient has its entries below `_GRADIENT_FLOOR` in magnitude set to 0.

    Far from the loss, the gradient of the cell state is a product of many forget gates and
    decays towards the subnormal float32 range (below 1.2e-38) on long sequences; its products
    with the inputs in the kernel-gradient matmul land there too. CPUs handle subnormals up to
    ~100x slower: on torch (which, unlike XLA and TensorFlow, does not flush them to zero) that
    ``(features, batch * time) x (batch * time, 4 * units)`` matmul took 0.7 s instead of
    13 ms at T=256. Entries below 1e-30 cannot change a float32 weight update (they are below
    the rounding error of any term of normal size and below any optimizer's epsilon).
    """

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        tiny = ops.abs(upstream) < _GRADIENT_FLOOR
        return ops.where(tiny, ops.zeros_like(upstream), upstream)

    return x, grad


_IMPLEMENTATIONS = ("auto", "scan", "loop")


def _first_mask(mask):
    """The time mask of a (possibly list) input: the first non-`None` entry."""
    if isinstance(mask, (list, tuple)):
        mask = next((m for m in mask if m is not None), None)
    return mask


@keras.saving.register_keras_serializable(package="kerasmed")
class TimeModulatedLSTM(keras.layers.RNN):
    """Time-modulated LSTM layer (tLSTM) over a sequence of irregularly spaced exams.

    Runs `TimeModulatedLSTMCell` (Eq. 1 for ``version=1``, Eq. 2 for ``version=2``) over the
    time axis. Each step reads the image features X̂_t, the previous exam's labels l_{t-1} and
    the time lapse δ_t since the previous exam (δ_1 = 0, l_0 = 0 for the first exam, as in the
    paper). The layer takes either the list ``[features, previous_labels, time_deltas]`` (it
    concatenates them) or the concatenated tensor.

    Implementations:

    - ``"scan"``: the gates do not depend on the previous output, so all gates of all steps
      are one matmul, and the cell-state recurrence ``h_t = f_t * h_{t-1} + u_t`` is linear:
      only this elementwise recurrence remains: a compiled ``ops.scan`` on JAX, a chunk-parallel
      scan on TensorFlow and torch (products and sums only, see `_blocked_scan`). Same
      outputs and gradients as the loop. ``unroll`` has no effect on it.
    - ``"loop"``: the step-by-step `keras.layers.RNN` machinery over the cell.
    - ``"auto"``: ``"scan"`` unless ``recurrent=True`` (the recurrent extension needs the loop).

    Masks: right-padded batches of variable length (e.g. from `keras.layers.Masking` or
    ``mask=``). At a masked step the cell state is carried (``f = 1, u = 0``) and the output
    repeats the previous output, as in Keras; a sequence's last real output therefore equals
    the output of the unpadded sequence. Padded steps must hold finite values (zeros). If an
    ``initial_state`` is given and the *first* steps are masked, the output there is the initial
    output state (as Keras's JAX loop does; its TensorFlow and torch loops give zeros).

    ``go_backwards=True`` (and so the backward half of `keras.layers.Bidirectional`) keeps δ
    meaningful: when the exams are processed from the last to the first, the lapse to the
    previous exam *in processing order* is the lapse to the next exam in time. The layer
    therefore shifts the time block one step before reversing: original step ``t`` receives the
    time block of step ``t + 1``, and the first processed step (the last real step, or the last
    step without a mask) receives zeros (δ = 0). The whole time block is shifted, so for
    ``time_features > 1`` the encoded lapse moves with it and the first processed step gets an
    all-zero block (not necessarily the encoding of a zero lapse). Features and previous labels
    are not shifted.

    Time lapses must be finite and non-negative. An eager call refuses non-finite ones (one
    reduction over the time block per call); a compiled graph (``fit``, ``predict`` on
    TensorFlow and JAX) cannot raise on values, and negative lapses are not checked (an
    encoding may be negative): validate them in the data pipeline. A list input must agree in
    batch and time sizes, and a built layer refuses a feature width other than its own.

    Args:
        units: Positive integer, dimensionality of the output space.
        num_labels: Non-negative integer, number of label columns (width of previous_labels).
        version: 1 (Eq. 1) or 2 (Eq. 2).
        recurrent: Boolean. If `True`, the gates also read the previous output (extension; a
            conventional LSTM plus time modulation); requires the loop implementation.
        time_features: Positive integer, width of the time block: 1 for raw δ_t, more for an
            encoding of δ_t made elsewhere.
        implementation: ``"auto"``, ``"scan"`` or ``"loop"`` (see above).
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
        unit_forget_bias, kernel_regularizer, recurrent_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, recurrent_constraint, bias_constraint,
        dropout, recurrent_dropout, seed: as in `keras.layers.LSTM` (see
            `TimeModulatedLSTMCell`; ``recurrent_dropout`` requires ``recurrent=True``).
        return_sequences: Boolean, return the full output sequence instead of the last output.
        return_state: Boolean, also return the final states ``[y, h]`` (output, cell state).
        go_backwards: Boolean, process the sequence backwards (time block shifted, see above)
            and return the reversed sequence.
        stateful: Boolean, reuse the last states of a batch as the next batch's initial states.
        unroll: Boolean, unroll the loop implementation.

    Call arguments:
        sequences: A list ``[features (batch, time, F), previous_labels (batch, time,
            num_labels), time_deltas (batch, time, time_features)]`` or their concatenation
            ``(batch, time, F + num_labels + time_features)``.
        initial_state: Optional list ``[y_0, h_0]`` of ``(batch, units)`` tensors.
        mask: Optional boolean ``(batch, time)`` tensor, `True` at real steps.
        training: Python boolean, whether dropout applies.

    Returns:
        ``(batch, units)``, or ``(batch, time, units)`` with ``return_sequences``; with
        ``return_state`` followed by the final output state ``y`` and cell state ``h``.

    Example:

    >>> features = np.random.rand(2, 6, 8).astype("float32")
    >>> labels = np.zeros((2, 6, 3), "float32")
    >>> deltas = np.random.rand(2, 6, 1).astype("float32")
    >>> layer = TimeModulatedLSTM(4, num_labels=3)
    >>> tuple(layer([features, labels, deltas]).shape)
    (2, 4)

    Reference:
        Santeramo, Withey, Montana, DLMIA 2018, Section 3 (see `TimeModulatedLSTMCell`).
    """

    def __init__(self, *args, **kwargs):
        arguments, cell, rnn_kwargs = _cells.rnn_layer_arguments(
            TimeModulatedLSTM, self, args, kwargs
        )
        implementation = arguments["implementation"]
        if implementation not in _IMPLEMENTATIONS:
            raise ValueError(
                f"`implementation` must be one of {_IMPLEMENTATIONS}. "
                f"Received: implementation={implementation!r}"
            )
        if implementation == "scan" and cell.recurrent:
            raise ValueError(
                "`implementation='scan'` needs `recurrent=False`: with the recurrent extension "
                "the gates read the previous output and the recurrence is not linear. "
                f"Received: implementation={implementation!r}"
            )
        super().__init__(cell, **rnn_kwargs)
        self.implementation = implementation

    @property
    def uses_scan(self):
        """Whether the scan implementation (rather than the step loop) runs the sequence."""
        return self.implementation == "scan" or (
            self.implementation == "auto" and not self.cell.recurrent
        )

    # ----------------------------------------------------------------- inputs
    def _merged_shape(self, shape):
        """Shape of the concatenated input for a shape or a list of 3 shapes (validated)."""
        cell = self.cell
        if _checks.is_shape_list(shape):
            if len(shape) != 3:
                raise ValueError(
                    "A list input must be [features, previous_labels, time_deltas]. "
                    f"Received: len(sequences)={len(shape)}"
                )
            names = ("features", "previous_labels", "time_deltas")
            shapes = [tuple(s) for s in shape]
            for name, s in zip(names, shapes):
                if len(s) != 3:
                    raise ValueError(
                        f"`{name}` must have rank 3 (batch, time, width). "
                        f"Received: {name}.shape={s}"
                    )
            for name, s, width in zip(names[1:], shapes[1:], (cell.num_labels, cell.time_features)):
                if s[-1] != width:
                    option = "num_labels" if name == "previous_labels" else "time_features"
                    raise ValueError(
                        f"`{name}` must have {width} columns ({option}={width}). "
                        f"Received: {name}.shape={s}"
                    )
            _checks.check_same_sizes(dict(zip(names, shapes)), axes=(0, 1))
            steps = {s[1] for s in shapes if s[1] is not None}
            features = shapes[0]
            if features[-1] == 0:
                raise ValueError(
                    f"`features` must not be empty. Received: features.shape={features}"
                )
            if cell.built:
                _checks.check_built_axes("features", features, {2: self._built_width("features")})
            width = None if features[-1] is None else features[-1] + sum(s[-1] for s in shapes[1:])
            shape = (features[0], next(iter(steps), None), width)
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                f"`sequences` must have rank 3 (batch, time, width). Received: sequences.shape={shape}"
            )
        _checks.check_steps("sequences", shape)
        if shape[-1] is not None:
            cell.check_input_dim(shape[-1], received=f"sequences.shape={shape}")
        if cell.built:
            _checks.check_built_axes("sequences", shape, {2: self._built_width("sequences")})
        return shape

    def _built_width(self, argument):
        """The width of `features` or of the concatenated `sequences` the cell was built for."""
        width = self.cell.kernel.shape[0]  # features and labels
        if argument == "features":
            return width - self.cell.num_labels
        return width + self.cell.time_features

    def _check_call(self, sequences, merged, initial_state, mask):
        """Checks of a call that `_merged_shape` cannot make: the mask, the initial state and
        (on eager calls) finite time lapses."""
        shape = tuple(merged.shape)
        _checks.check_mask(mask, shape)
        units = self.cell.units
        _checks.check_states(initial_state, [(shape[0], units), (shape[0], units)])
        if isinstance(sequences, (list, tuple)):
            _checks.check_finite("time_deltas", sequences[2])
        else:
            _checks.check_finite(
                "sequences[..., -time_features:] (the time lapses)",
                merged[..., shape[-1] - self.cell.time_features :],
            )

    def _merge_inputs(self, sequences):
        if isinstance(sequences, (list, tuple)):
            self._merged_shape([tuple(x.shape) for x in sequences])
            sequences = [ops.cast(x, self.compute_dtype) for x in sequences]
            return ops.concatenate(sequences, axis=-1)
        self._merged_shape(tuple(sequences.shape))
        return sequences

    def build(self, sequences_shape, initial_state_shape=None):
        # No `InputSpec`: the layer takes one tensor or a list of three, in any call, which one
        # spec cannot express (Keras counts the flattened inputs); `_merged_shape` checks both.
        super().build(self._merged_shape(sequences_shape), initial_state_shape)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        return super().compute_output_shape(
            self._merged_shape(sequences_shape), initial_state_shape
        )

    def compute_mask(self, inputs, mask):
        return super().compute_mask(inputs, _first_mask(mask))

    def call(self, sequences, initial_state=None, mask=None, training=False):
        merged = self._merge_inputs(sequences)
        mask = _first_mask(mask)
        self._check_call(sequences, merged, initial_state, mask)
        return super().call(merged, initial_state=initial_state, mask=mask, training=training)

    # ------------------------------------------------------------------- loop
    def _next_exam_time(self, sequences, mask):
        """Replaces step t's time block by step t+1's (0 past the last real step)."""
        width = sequences.shape[-1] - self.cell.time_features
        time = sequences[..., width:]
        following = ops.concatenate([time[:, 1:], ops.zeros_like(time[:, :1])], axis=1)
        if mask is not None:
            mask = ops.cast(mask, "bool")
            real_next = ops.concatenate([mask[:, 1:], ops.zeros_like(mask[:, :1])], axis=1)
            following = ops.where(real_next[..., None], following, ops.zeros_like(following))
        return ops.concatenate([sequences[..., :width], following], axis=-1)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        mask = _first_mask(mask)
        if self.go_backwards:
            sequences = self._next_exam_time(sequences, mask)
        if not self.uses_scan:
            return super().inner_loop(sequences, initial_state, mask=mask, training=training)
        return self._scan(sequences, initial_state, mask, training)

    def _scan(self, sequences, initial_state, mask, training):
        """The whole sequence at once: one matmul for the gates, a linear scan for h."""
        cell = self.cell
        y0, h0 = initial_state[0], initial_state[1]
        if training and 0.0 < cell.dropout < 1.0:
            dropout_mask = cell.get_dropout_mask(sequences[:, 0, :])
            sequences = sequences * ops.expand_dims(dropout_mask, 1)
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
            mask = None if mask is None else ops.flip(mask, axis=1)
        z, time_term = cell.project_inputs(sequences)
        z = _flush_tiny_gradient(z)
        if time_term is not None:
            time_term = _flush_tiny_gradient(time_term)
        f, u, o = cell.gates_to_state(z, time_term)
        if mask is None:
            h = linear_scan(f, u, h0)
            y = o * ops.tanh(h)
            last = y[:, -1]
            return last, y, [last, h[:, -1]]

        real = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, time, 1)
        f = ops.where(real, f, ops.ones_like(f))
        u = ops.where(real, u, ops.zeros_like(u))
        h = linear_scan(f, u, h0)
        y = o * ops.tanh(h)
        # Output state: y at the last real step (y_0 when no step is real).
        steps = ops.shape(y)[1]
        position = ops.expand_dims(ops.arange(1, steps + 1, dtype="int32"), 0)
        last_real = ops.max(ops.where(real[..., 0], position, 0), axis=1)  # 1-based, 0 = none
        at_last = ops.expand_dims(ops.equal(position, ops.expand_dims(last_real, 1)), -1)
        y_last = ops.sum(ops.where(at_last, y, ops.zeros_like(y)), axis=1)
        y_state = ops.where(ops.expand_dims(last_real > 0, 1), y_last, y0)
        states = [y_state, h[:, -1]]
        if self.zero_output_for_mask:
            outputs = ops.where(real, y, ops.zeros_like(y))
            return outputs[:, -1], outputs, states
        if not self.return_sequences:
            return y_state, ops.expand_dims(y_state, 1), states
        # Masked steps repeat the previous output: y'_t = (1 - m_t) y'_{t-1} + m_t y_t.
        keep = ops.cast(ops.logical_not(real), y.dtype)
        outputs = linear_scan(keep, ops.where(real, y, ops.zeros_like(y)), y0)
        return y_state, outputs, states

    def get_config(self):
        return _cells.rnn_layer_config(
            self, super().get_config(), implementation=self.implementation
        )

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# The signature: the cell's arguments, `implementation` and RNN's (with `unroll`, as `LSTM`);
# `layer.units`, `layer.num_labels`, ... read the cell's.
_cells.declare_rnn_layer(
    TimeModulatedLSTM,
    TimeModulatedLSTMCell,
    "time_modulated_lstm_cell",
    inserted={"time_features": (("implementation", "auto"),)},
    trailing=_cells.RNN_ARGUMENTS + (("unroll", False),),
)
