"""Linear recurrences ``h_t = a_t * h_{t-1} + b_t`` along the time axis, solved as scans.

The recurrence of `TimeModulatedLSTM` (its gates do not read the previous output) and the
masked-output repetition both have this form. Three solvers, plain `keras.ops` on every backend,
with the same outputs and gradients as the step-by-step loop:

- `sequential_scan`: one `keras.ops.scan` step per time step (static length);
- `blocked_scan`: chunk-parallel, about ``chunk + steps / chunk`` small ops;
- `linear_scan`: picks one (`kerasmed.backend_policy.linear_scan_method`).

Example:

>>> a = np.full((1, 4, 2), 0.5, "float32")
>>> b = np.ones((1, 4, 2), "float32")
>>> h = linear_scan(a, b, np.zeros((1, 2), "float32"))
>>> np.round(keras.ops.convert_to_numpy(h)[0, :, 0], 4).tolist()
[1.0, 1.5, 1.75, 1.875]
"""

from keras import ops

from kerasmed import backend_policy
from kerasmed.validation import check_one_of

__all__ = ["linear_scan", "sequential_scan", "blocked_scan", "SCAN_METHODS"]

SCAN_METHODS = ("sequential", "blocked")

# Steps per chunk of `blocked_scan` when the length is not static.
_CHUNK = 16


def _pad_time(x, pad, fill):
    """Appends `pad` (int or scalar tensor) steps of `fill` to axis 1 of ``x``."""
    shape = ops.shape(x)
    block = ops.full((shape[0], pad, shape[2]), fill, dtype=x.dtype)
    return ops.concatenate([x, block], axis=1)


def sequential_scan(a, b, h0):
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


def states_before_dynamic(h0, a, b):
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


def blocked_scan(a, b, h0, chunk=None):
    """``h_t = a_t * h_{t-1} + b_t`` solved chunk-parallel.

    The time axis is cut into chunks of `chunk` steps. A loop over the `chunk` positions runs the
    recurrence in all chunks at once from a zero state, keeping the running product of ``a``;
    a loop over the chunks (`states_before_dynamic` when their number is not static) carries
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
        starts = states_before_dynamic(h0, prod[-1], local[-1])
    h = ops.stack(local, axis=2) + ops.stack(prod, axis=2) * starts[:, :, None, :]
    h = ops.reshape(h, (batch, -1, units))
    return h[:, :steps] if (n_chunks is None or pad) else h


def linear_scan(a, b, h0, method=None):
    """Solves ``h_t = a_t * h_{t-1} + b_t`` along axis 1.

    Args:
        a: coefficients, ``(batch, time, units)`` or ``(batch, time, 1)``.
        b: inputs, ``(batch, time, units)``.
        h0: initial state ``(batch, units)``.
        method: ``"sequential"`` (`sequential_scan`), ``"blocked"`` (`blocked_scan`) or
            ``None``: the backend's default (`kerasmed.backend_policy.linear_scan_method`:
            sequential on JAX on a CPU, where it compiles into one ``lax.scan``; blocked
            elsewhere, as torch and TensorFlow pay per op).

    Returns:
        ``h`` with the shape of `b`.
    """
    method = backend_policy.linear_scan_method() if method is None else method
    check_one_of(method, "method", SCAN_METHODS)
    a, b, h0 = (ops.convert_to_tensor(x) for x in (a, b, h0))
    if method == "sequential" and b.shape[1] is not None:
        return sequential_scan(a, b, h0)
    return blocked_scan(a, b, h0)
