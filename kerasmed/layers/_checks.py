"""Input checks shared by kerasmed's layers, done once per call or build (never per time step).

A layer checks with ``keras.InputSpec`` where Keras's own layers do (the channel axis of
`StructuredConvLSTM2D`); what a spec cannot say (sizes that must agree between inputs, masks,
initial states, sizes fixed at build next to inputs that may be lists, non-finite values) is
checked here. Every check raises a `ValueError` that names the argument and the axis, the size
expected and the size received, and ends with ``Received: argument.shape=...``. Shapes are the
static ones: an axis whose size is unknown (``None``, in a traced graph) is not checked.
"""

import keras
from keras import ops
from keras.src.layers import input_spec

_MASK_DTYPES = ("bool", "int", "uint", "float")


def is_shape_list(shape):
    """Whether `shape` is a list of shapes (that of a list input), not one shape."""
    return isinstance(shape, (list, tuple)) and bool(shape) and isinstance(shape[0], (list, tuple))


def static_shape(x):
    """The static shape of a tensor (or array) as a tuple."""
    return tuple(x.shape)


def check_steps(argument, shape, axis=1):
    """Refuses a sequence with no time steps (size 0 on `axis`)."""
    if shape[axis] == 0:
        raise ValueError(
            f"`{argument}` must have at least one time step (axis {axis} has size 0). "
            f"Received: {argument}.shape={tuple(shape)}"
        )


def check_built_axes(argument, shape, expected, hint=""):
    """Refuses `shape` unless ``shape[axis] == size`` for each ``axis: size`` of `expected`
    (the sizes the layer was built for)."""
    for axis, size in expected.items():
        got = shape[axis]
        if got is not None and size is not None and got != size:
            raise ValueError(
                f"`{argument}` has size {got} on axis {axis}, but the layer was built for "
                f"size {size} there{hint}. Received: {argument}.shape={tuple(shape)}"
            )


def check_same_sizes(shapes, axes, what=("batch", "time")):
    """Refuses inputs whose sizes on `axes` differ: `shapes` maps argument names to shapes."""
    for axis, name in zip(axes, what):
        known = {arg: s[axis] for arg, s in shapes.items() if s[axis] is not None}
        if len(set(known.values())) > 1:
            sizes = ", ".join(f"{arg}={size}" for arg, size in known.items())
            received = ", ".join(f"{arg}.shape={tuple(s)}" for arg, s in shapes.items())
            raise ValueError(
                f"The inputs must have the same {name} size (axis {axis}); they have {sizes}. "
                f"Received: {received}"
            )


def check_mask(mask, sequences_shape, argument="mask"):
    """Refuses a mask that is not ``(batch, time)`` for `sequences_shape`, or not boolean or
    numeric (a float 0/1 mask is accepted, as Keras's RNN layers accept it)."""
    if mask is None:
        return
    shape = static_shape(mask)
    if len(shape) != 2:
        raise ValueError(
            f"`{argument}` must have rank 2 (batch, time), not {len(shape)}. "
            f"Received: {argument}.shape={shape}"
        )
    for axis, name in ((0, "batch"), (1, "time")):
        expected, got = sequences_shape[axis], shape[axis]
        if expected is not None and got is not None and expected != got:
            raise ValueError(
                f"`{argument}` has size {got} on axis {axis} ({name}), but the sequences have "
                f"{expected}. Received: {argument}.shape={shape}, "
                f"sequences.shape={tuple(sequences_shape)}"
            )
    dtype = keras.backend.standardize_dtype(mask.dtype)
    if not dtype.startswith(_MASK_DTYPES):
        raise ValueError(
            f"`{argument}` must be boolean (True at real steps) or 0/1 numbers. "
            f"Received: {argument}.dtype={dtype}"
        )


def check_states(states, expected_shapes, argument="initial_state"):
    """Refuses initial states that are not as many as, or not shaped as, `expected_shapes`
    (``None`` entries are not checked)."""
    if states is None:
        return
    states = list(states) if isinstance(states, (list, tuple)) else [states]
    if len(states) != len(expected_shapes):
        raise ValueError(
            f"`{argument}` must be a list of {len(expected_shapes)} tensors. "
            f"Received: len({argument})={len(states)}"
        )
    for index, (state, expected) in enumerate(zip(states, expected_shapes)):
        shape = static_shape(state)
        name = f"{argument}[{index}]"
        if len(shape) != len(expected):
            raise ValueError(
                f"`{name}` must have rank {len(expected)} (shape {tuple(expected)}). "
                f"Received: {name}.shape={shape}"
            )
        for axis, (want, got) in enumerate(zip(expected, shape)):
            if want is not None and got is not None and want != got:
                raise ValueError(
                    f"`{name}` has size {got} on axis {axis}, but {want} is expected "
                    f"(shape {tuple(expected)}). Received: {name}.shape={shape}"
                )


def is_concrete(x):
    """Whether `x` holds values now (an eager call), not a symbol of a graph being traced."""
    if isinstance(x, keras.KerasTensor):
        return False
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly()
    if backend == "jax":
        import jax

        return not isinstance(x, jax.core.Tracer)
    if backend == "torch":
        import torch

        return not torch.compiler.is_compiling()
    return True


def check_finite(argument, x):
    """Refuses NaN or infinite values in `x`, on eager calls only (a compiled graph cannot
    raise on values; one reduction over `x` per call)."""
    if not is_concrete(x):
        return
    if not bool(ops.convert_to_numpy(ops.all(ops.isfinite(x)))):
        bad = int(
            ops.convert_to_numpy(ops.sum(ops.cast(ops.logical_not(ops.isfinite(x)), "int32")))
        )
        raise ValueError(
            f"`{argument}` must be finite; {bad} of its values are NaN or infinite. "
            f"Received: {argument}.shape={static_shape(x)}"
        )


def _spec_sizes(spec, rank):
    """The ``axis: size`` a Keras `InputSpec` fixes for an input of rank `rank` (its `shape`
    without the batch axis, and its `axes`); ``{}`` where the rank does not fit the spec."""
    sizes = {}
    if spec.ndim is not None and spec.ndim != rank and not spec.allow_last_axis_squeeze:
        return sizes  # a wrong rank: Keras's own message says so
    if (spec.min_ndim or 0) > rank or (spec.max_ndim is not None and spec.max_ndim < rank):
        return sizes
    if spec.shape is not None and len(spec.shape) == rank:
        sizes.update({axis: size for axis, size in enumerate(spec.shape) if axis and size})
    for axis, size in (spec.axes or {}).items():
        if size is not None and -rank <= axis < rank:
            sizes[axis % rank] = size
    return sizes


def check_inner_input(argument, layer, frame_shapes, input_shapes, offset):
    """Checks the inputs of a wrapper against the `InputSpec` of the `layer` it wraps, in the
    wrapper's terms: frame axis ``k`` is axis ``k + offset`` of `argument` (``offset=1`` where
    time is folded into the batch). The same checks as calling `layer` directly (which a
    ``stateless_call`` does not make), with the wrapper's argument, axis and shape named."""
    specs = layer.input_spec
    if specs is None or isinstance(specs, dict):
        return
    specs = list(specs) if isinstance(specs, (list, tuple)) else [specs]
    if len(specs) != len(frame_shapes):
        return  # Keras's own check (inside the layer) reports a wrong number of inputs
    many = len(frame_shapes) > 1
    for index, (spec, frame, shape) in enumerate(zip(specs, frame_shapes, input_shapes)):
        if spec is None:
            continue
        name = f"{argument}[{index}]" if many else argument
        for axis, size in sorted(_spec_sizes(spec, len(frame)).items()):
            if frame[axis] is not None and frame[axis] != size:
                raise ValueError(
                    f"`{name}` has size {frame[axis]} on axis {axis + offset}, but "
                    f"`{layer.name}` was built for size {size} there. "
                    f"Received: {name}.shape={tuple(shape)}"
                )
        try:
            input_spec.assert_input_compatibility(
                spec, keras.KerasTensor(frame), layer_name=layer.name
            )
        except ValueError as error:
            raise ValueError(
                f"`{name}` does not fit `{layer.name}` (axis k of its frames is axis "
                f"k + {offset} of `{name}`): {error} Received: {name}.shape={tuple(shape)}"
            ) from None
