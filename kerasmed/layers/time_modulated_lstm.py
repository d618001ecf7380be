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
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from kerasmed.validation import (
    check_non_negative_int,
    check_one_of,
    check_positive_int,
    check_rate,
)

# Steps per chunk of `_blocked_scan` when the length is not static.
_CHUNK = 16


def _check_init_args(units, num_labels, version, time_features, dropout, recurrent_dropout):
    check_positive_int(units, "units")
    check_positive_int(time_features, "time_features")
    check_non_negative_int(num_labels, "num_labels")
    check_one_of(version, "version", (1, 2))
    check_rate(dropout, "dropout")
    check_rate(recurrent_dropout, "recurrent_dropout")


def _pad_time(x, pad, fill):
    """Appends `pad` (int or scalar tensor) steps of `fill` to axis 1 of ``x``."""
    shape = ops.shape(x)
    block = ops.full((shape[0], pad, shape[2]), fill, dtype=x.dtype)
    return ops.concatenate([x, block], axis=1)


def _sequential_scan(a, b, h0):
    """``h_t = a_t * h_{t-1} + b_t`` one step at a time with `keras.ops.scan` (static length).

    Each step is one multiply-add on a ``(batch, units)`` slice. Fastest under JAX, where
    ``ops.scan`` is a compiled ``lax.scan``; a Python loop on torch, a ``while_loop`` on TF.
    """

    def step(h, coefficients):
        h = coefficients[0] * h + coefficients[1]
        return h, h

    coefficients = ops.moveaxis(ops.stack([a * ops.ones_like(b), b], axis=0), 2, 0)
    _, states = ops.scan(step, h0, coefficients)
    return ops.moveaxis(states, 0, 1)


def _chunk_size(steps):
    """A power of two near ``sqrt(steps)`` in [4, 64]: balances in-chunk and cross-chunk steps."""
    if steps is None:
        return _CHUNK
    size = 4
    while size < 64 and size * size * 2 < steps:
        size *= 2
    return size


def _states_before_dynamic(h0, a, b):
    """States before each step of ``h = a * h + b`` along axis 1, whose length is not static.

    Only reached when the time axis is unknown while tracing (TensorFlow graphs fed batches of
    several lengths). A ``while_loop`` bounded by ``maximum_iterations`` (as Keras's own RNN
    loop on TensorFlow) so that XLA (``jit_compile=True``) can compile it and its gradient;
    the states are gathered into a preallocated tensor with a one-hot update.
    """
    steps = ops.shape(b)[1]
    a = ops.moveaxis(a * ops.ones_like(b), 1, 0)
    b = ops.moveaxis(b, 1, 0)
    index = ops.arange(steps, dtype="int32")

    def body(i, h, states):
        here = ops.cast(ops.equal(index, i), h.dtype)[:, None, None]
        states = states + here * h[None]
        h = ops.take(a, i, axis=0) * h + ops.take(b, i, axis=0)
        return i + 1, h, states

    _, _, states = ops.while_loop(
        lambda i, h, states: i < steps,
        body,
        (ops.convert_to_tensor(0, "int32"), h0, ops.zeros_like(b)),
        maximum_iterations=steps,
    )
    return ops.moveaxis(states, 0, 1)


def _blocked_scan(a, b, h0, chunk=None):
    """``h_t = a_t * h_{t-1} + b_t`` solved chunk-parallel.

    The time axis is cut into chunks of `chunk` steps. A loop over the `chunk` positions runs the
    recurrence in all chunks at once from a zero state, keeping the running product of ``a``;
    a loop over the chunks (`_states_before_dynamic` when their number is not static) carries
    the true state from chunk to chunk; one multiply-add combines them:
    ``h = local + prod(a) * state_before_chunk``. About ``chunk + steps / chunk`` small ops
    instead of ``steps``, only products and sums (no division or logarithm, so products that
    underflow to 0 are harmless), and gradients equal those of the step-by-step recurrence.

    Args:
        a: coefficients, ``(batch, time, units)`` or ``(batch, time, 1)``.
        b: inputs, ``(batch, time, units)``.
        h0: initial state ``(batch, units)``.
        chunk: steps per chunk (default: `_chunk_size` of the static length).

    Returns:
        ``h`` with the shape of `b`.
    """
    units = b.shape[-1]
    steps = b.shape[1]
    chunk = _chunk_size(steps) if chunk is None else chunk
    if steps is not None:
        chunk = max(1, min(chunk, steps))
        n_chunks = -(-steps // chunk)
        pad = n_chunks * chunk - steps
    else:
        steps = ops.shape(b)[1]
        n_chunks = None
        pad = (chunk - steps % chunk) % chunk
    if n_chunks is None or pad:
        a = _pad_time(a, pad, 1.0)
        b = _pad_time(b, pad, 0.0)
    batch = ops.shape(b)[0]
    n = -1 if n_chunks is None else n_chunks
    a = ops.unstack(ops.reshape(a, (batch, n, chunk, a.shape[-1])), axis=2)
    b = ops.unstack(ops.reshape(b, (batch, n, chunk, units)), axis=2)
    local, prod = [b[0]], [a[0]]
    for k in range(1, chunk):
        local.append(a[k] * local[-1] + b[k])
        prod.append(prod[-1] * a[k])
    if n_chunks == 1:
        starts = h0[:, None, :]
    elif n_chunks is not None:
        starts, h = [h0], h0
        ends = zip(ops.unstack(prod[-1], axis=1), ops.unstack(local[-1], axis=1))
        for _, (a_c, b_c) in zip(range(n_chunks - 1), ends):
            h = a_c * h + b_c
            starts.append(h)
        starts = ops.stack(starts, axis=1)
    else:
        starts = _states_before_dynamic(h0, prod[-1], local[-1])
    h = ops.stack(local, axis=2) + ops.stack(prod, axis=2) * starts[:, :, None, :]
    h = ops.reshape(h, (batch, -1, units))
    return h[:, :steps] if (n_chunks is None or pad) else h


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


def _linear_scan(a, b, h0):
    """Solves ``h_t = a_t * h_{t-1} + b_t`` along axis 1 with the fastest path of the backend.

    JAX compiles `_sequential_scan` into one ``lax.scan``; torch (eager) and TensorFlow pay per
    op, so they use `_blocked_scan`. Both are plain `keras.ops` and are tested on every backend.
    """
    if keras.backend.backend() == "jax":
        return _sequential_scan(a, b, h0)
    return _blocked_scan(a, b, h0)


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

    def __init__(
        self,
        units,
        num_labels,
        version=1,
        recurrent=False,
        time_features=1,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        _check_init_args(units, num_labels, version, time_features, dropout, recurrent_dropout)
        if recurrent_dropout and not recurrent:
            raise ValueError(
                "`recurrent_dropout` needs `recurrent=True` (without it the gates do not read "
                f"the previous output). Received: recurrent_dropout={recurrent_dropout}"
            )
        super().__init__(**kwargs)
        self.units = units
        self.num_labels = num_labels
        self.version = version
        self.recurrent = bool(recurrent)
        self.time_features = time_features
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = [units, units]
        self.output_size = units

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
            if self.unit_forget_bias:

                def bias_initializer(_, *args, **kwargs):
                    units = self.units
                    return ops.concatenate(
                        [
                            self.bias_initializer((units,), *args, **kwargs),
                            keras.initializers.get("ones")((units,), *args, **kwargs),
                            self.bias_initializer((2 * units,), *args, **kwargs),
                        ]
                    )

            else:
                bias_initializer = self.bias_initializer
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
        config = {
            "units": self.units,
            "num_labels": self.num_labels,
            "version": self.version,
            "recurrent": self.recurrent,
            "time_features": self.time_features,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": keras.constraints.serialize(self.recurrent_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


_IMPLEMENTATIONS = ("auto", "scan", "loop")


def _first_mask(mask):
    """The time mask of a (possibly list) input: the first non-`None` entry."""
    if isinstance(mask, (list, tuple)):
        mask = next((m for m in mask if m is not None), None)
    return mask


def _is_shape_list(shape):
    return (
        isinstance(shape, (list, tuple)) and len(shape) > 0 and isinstance(shape[0], (list, tuple))
    )


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

    Time lapses must be finite and non-negative; they are not checked here (a compiled graph
    cannot check them cheaply): validate them in the data pipeline.

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
        R. Santeramo, S. Withey, G. Montana. "Longitudinal detection of radiological
        abnormalities with time-modulated LSTM", DLMIA workshop, MICCAI 2018, Section 3.
    """

    def __init__(
        self,
        units,
        num_labels,
        version=1,
        recurrent=False,
        time_features=1,
        implementation="auto",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        **kwargs,
    ):
        if implementation not in _IMPLEMENTATIONS:
            raise ValueError(
                f"`implementation` must be one of {_IMPLEMENTATIONS}. "
                f"Received: implementation={implementation!r}"
            )
        if implementation == "scan" and recurrent:
            raise ValueError(
                "`implementation='scan'` needs `recurrent=False`: with the recurrent extension "
                "the gates read the previous output and the recurrence is not linear. "
                f"Received: implementation={implementation!r}"
            )
        cell = TimeModulatedLSTMCell(
            units,
            num_labels,
            version=version,
            recurrent=recurrent,
            time_features=time_features,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            dtype=kwargs.get("dtype", None),
            trainable=kwargs.get("trainable", True),
            name="time_modulated_lstm_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
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
        if _is_shape_list(shape):
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
            steps = {s[1] for s in shapes if s[1] is not None}
            if len(steps) > 1:
                raise ValueError(
                    "`features`, `previous_labels` and `time_deltas` must have the same number "
                    f"of time steps. Received: shapes={shapes}"
                )
            features = shapes[0]
            if features[-1] == 0:
                raise ValueError(
                    f"`features` must not be empty. Received: features.shape={features}"
                )
            width = None if features[-1] is None else features[-1] + sum(s[-1] for s in shapes[1:])
            shape = (features[0], next(iter(steps), None), width)
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                f"`sequences` must have rank 3 (batch, time, width). Received: sequences.shape={shape}"
            )
        if shape[1] == 0:
            raise ValueError(
                f"`sequences` must have at least one time step. Received: sequences.shape={shape}"
            )
        if shape[-1] is not None:
            cell.check_input_dim(shape[-1], received=f"sequences.shape={shape}")
        return shape

    def _merge_inputs(self, sequences):
        if isinstance(sequences, (list, tuple)):
            self._merged_shape([tuple(x.shape) for x in sequences])
            sequences = [ops.cast(x, self.compute_dtype) for x in sequences]
            return ops.concatenate(sequences, axis=-1)
        self._merged_shape(tuple(sequences.shape))
        return sequences

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(self._merged_shape(sequences_shape), initial_state_shape)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        return super().compute_output_shape(
            self._merged_shape(sequences_shape), initial_state_shape
        )

    def compute_mask(self, inputs, mask):
        return super().compute_mask(inputs, _first_mask(mask))

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences = self._merge_inputs(sequences)
        return super().call(
            sequences, initial_state=initial_state, mask=_first_mask(mask), training=training
        )

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
            h = _linear_scan(f, u, h0)
            y = o * ops.tanh(h)
            last = y[:, -1]
            return last, y, [last, h[:, -1]]

        real = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, time, 1)
        f = ops.where(real, f, ops.ones_like(f))
        u = ops.where(real, u, ops.zeros_like(u))
        h = _linear_scan(f, u, h0)
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
        outputs = _linear_scan(keep, ops.where(real, y, ops.zeros_like(y)), y0)
        return y_state, outputs, states

    # ------------------------------------------------------------- properties
    @property
    def units(self):
        return self.cell.units

    @property
    def num_labels(self):
        return self.cell.num_labels

    @property
    def version(self):
        return self.cell.version

    @property
    def recurrent(self):
        return self.cell.recurrent

    @property
    def time_features(self):
        return self.cell.time_features

    @property
    def dropout(self):
        return self.cell.dropout

    @property
    def recurrent_dropout(self):
        return self.cell.recurrent_dropout

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {
            key: cell_config[key]
            for key in (
                "units",
                "num_labels",
                "version",
                "recurrent",
                "time_features",
                "use_bias",
                "kernel_initializer",
                "recurrent_initializer",
                "bias_initializer",
                "unit_forget_bias",
                "kernel_regularizer",
                "recurrent_regularizer",
                "bias_regularizer",
                "kernel_constraint",
                "recurrent_constraint",
                "bias_constraint",
                "dropout",
                "recurrent_dropout",
                "seed",
            )
        }
        config["implementation"] = self.implementation
        config["activity_regularizer"] = keras.regularizers.serialize(self.activity_regularizer)
        base_config = super().get_config()
        del base_config["cell"]
        return {**base_config, **config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
