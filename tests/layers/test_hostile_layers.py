"""Hostile input to the layers: each bad input is refused with our `ValueError`, which names the
argument and axis and both sizes (or the value received), never a backend error.

| group                                   | cases |
| --------------------------------------- | ----- |
| channel count changed after build       | 14    |
| spatial size changed after build        | 7     |
| sequence length 0                       | 4     |
| batch / time mismatch between inputs    | 7     |
| mask shape or dtype                     | 9     |
| initial state count or shape            | 5     |
| rank                                    | 7     |
| non-finite time lapses (eager calls)    | 4     |
| refused in all: `test_refused`          | 57    |
| accepted and correct: `test_accepted`   | 6     |

A channel change in `StructuredConvLSTM2D` used to run as a grouped convolution on every
backend (no error, a wrong result); the wrappers refuse what the layer they wrap refuses in
every path (the chunked and rematerialized ones call it through ``stateless_call``, which
skips its input checks). Shapes are tiny; the whole module runs in seconds on each backend.
"""

import keras
import numpy as np
import pytest

from kerasmed.layers import FrameWise, Remat, SliceEncoder, StructuredConvLSTM2D, TimeModulatedLSTM


def _zeros(*shape, dtype="float32"):
    return np.zeros(shape, dtype)


def _built(layer, *shape):
    layer(_zeros(*shape))
    return layer


# ------------------------------------------------------------------------- builders
def _scl(data_format="channels_last", operator=None, frame=(8, 8, 1)):
    """A `StructuredConvLSTM2D` built on (2, 3) + `frame` sequences."""
    layer = StructuredConvLSTM2D(2, 3, input_operator=operator, data_format=data_format)
    return _built(layer, 2, 3, *frame)


def _pool():
    return keras.Sequential([keras.layers.MaxPooling2D(2)])


def _conv_operator():
    return keras.Sequential([keras.layers.Conv2D(2, 3, padding="same")])


def _tlstm(implementation="auto"):
    """A `TimeModulatedLSTM` (4 units, 2 labels) built on a list: 3 features, 5 steps."""
    layer = TimeModulatedLSTM(4, 2, implementation=implementation)
    layer([_zeros(2, 5, 3), _zeros(2, 5, 2), _zeros(2, 5, 1)])
    return layer


def _tlstm_inputs(batch=(2, 2, 2), steps=(5, 5, 5), widths=(3, 2, 1)):
    return [_zeros(b, t, w) for b, t, w in zip(batch, steps, widths)]


def _frame_model(channels=1, size=8):
    inputs = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    outputs = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, outputs)


def _framewise(layer=None, **kwargs):
    wrapper = FrameWise(_frame_model() if layer is None else layer, **kwargs)
    return _built(wrapper, 2, 3, 8, 8, 1)


def _slice_encoder(**kwargs):
    return _built(SliceEncoder(_frame_model(), **kwargs), 1, 4, 8, 8, 1)


def _two_inputs():
    a, b = keras.Input((4,)), keras.Input((2,))
    return keras.Model([a, b], keras.layers.Concatenate()([a, b]))


def _nan_at(shape, index, value=np.nan):
    x = _zeros(*shape)
    x[index] = value
    return x


def _symbolic(make_layer, shape):
    """A call of the layer `make_layer()` makes on a symbolic input of `shape` (no batch)."""
    return lambda: make_layer()(keras.Input(shape))


z = _zeros


def _mask(*shape, dtype=bool):
    return np.ones(shape, dtype)


# Each case: (id, a function that makes the hostile call, the parts of the message, "|"-separated).
# fmt: off
_CHANNELS = [
    ("scl-channels-last", lambda: _scl()(z(2, 3, 8, 8, 2)), "axis 4|value 1|(2, 3, 8, 8, 2)"),
    ("scl-channels-first", lambda: _scl("channels_first", frame=(1, 8, 8))(z(2, 3, 3, 8, 8)),
     "axis 2|value 1|(2, 3, 3, 8, 8)"),
    ("scl-pool-operator-no-grouped-conv", lambda: _scl(operator=_pool())(z(2, 3, 8, 8, 2)),
     "axis 4|value 1|(2, 3, 8, 8, 2)"),
    ("scl-conv-operator", lambda: _scl(operator=_conv_operator())(z(2, 3, 8, 8, 3)),
     "axis 4|value 1|(2, 3, 8, 8, 3)"),
    ("scl-channels-symbolic", _symbolic(_scl, (3, 8, 8, 2)), "axis 4|value 1|(None, 3, 8, 8, 2)"),
    ("scl-channels-fewer", lambda: _scl(frame=(8, 8, 3))(z(2, 3, 8, 8, 1)),
     "axis 4|value 3|(2, 3, 8, 8, 1)"),
    ("framewise-conv2d", lambda: _framewise(keras.layers.Conv2D(2, 3))(z(2, 3, 8, 8, 2)),
     "`inputs`|size 2 on axis 4|size 1"),
    ("framewise-model", lambda: _framewise()(z(2, 3, 8, 8, 2)), "`inputs`|size 2 on axis 4|size 1"),
    ("framewise-chunked", lambda: _framewise(chunk_size=2)(z(2, 3, 8, 8, 2)),
     "`inputs`|size 2 on axis 4|size 1"),
    ("framewise-remat", lambda: _framewise(remat=True)(z(2, 3, 8, 8, 2)),
     "`inputs`|size 2 on axis 4|size 1"),
    ("slice-encoder-chunked", lambda: _slice_encoder(slice_chunk=2)(z(1, 4, 8, 8, 3)),
     "`inputs`|size 3 on axis 4|size 1"),
    ("remat-conv2d", lambda: _built(Remat(keras.layers.Conv2D(2, 3)), 2, 8, 8, 1)(z(2, 8, 8, 3)),
     "`inputs`|size 3 on axis 3|size 1"),
    ("tlstm-features-width", lambda: _tlstm()(_tlstm_inputs(widths=(4, 2, 1))),
     "`features`|size 4 on axis 2|size 3"),
    ("tlstm-merged-width", lambda: _tlstm()(z(2, 5, 7)), "`sequences`|size 7 on axis 2|size 6"),
]

_SPATIAL = [
    ("scl-rows", lambda: _scl()(z(2, 3, 10, 8, 1)), "`sequences`|size 10 on axis 2|size 8"),
    ("scl-cols-channels-first",
     lambda: _scl("channels_first", frame=(1, 8, 8))(z(2, 3, 1, 8, 6)),
     "`sequences`|size 6 on axis 4|size 8"),
    ("scl-operator", lambda: _scl(operator=_pool())(z(2, 3, 12, 12, 1)),
     "`sequences`|size 12 on axis 2|size 8"),
    ("scl-symbolic", _symbolic(_scl, (3, 8, 10, 1)), "`sequences`|size 10 on axis 3|size 8"),
    ("framewise-model", lambda: _framewise()(z(2, 3, 10, 10, 1)),
     "`inputs`|size 10 on axis 2|size 8"),
    ("framewise-chunked", lambda: _framewise(chunk_size=2)(z(2, 3, 8, 12, 1)),
     "`inputs`|size 12 on axis 3|size 8"),
    ("slice-encoder-remat", lambda: _slice_encoder(slice_chunk=2, remat=True)(z(1, 4, 6, 8, 1)),
     "`inputs`|size 6 on axis 2|size 8"),
]

_EMPTY = [
    ("scl", lambda: StructuredConvLSTM2D(2, 3)(z(2, 0, 8, 8, 1)),
     "`sequences`|axis 1 has size 0|(2, 0, 8, 8, 1)"),
    ("scl-symbolic", _symbolic(lambda: StructuredConvLSTM2D(2, 3), (0, 8, 8, 1)),
     "`sequences`|axis 1 has size 0|(None, 0, 8, 8, 1)"),
    ("tlstm-tensor", lambda: TimeModulatedLSTM(4, 2)(z(2, 0, 6)),
     "`sequences`|axis 1 has size 0|(2, 0, 6)"),
    ("tlstm-list", lambda: TimeModulatedLSTM(4, 2)(_tlstm_inputs(steps=(0, 0, 0))),
     "`sequences`|axis 1 has size 0|(2, 0, 6)"),
]

_BATCH = [
    ("tlstm-time-deltas-batch", lambda: TimeModulatedLSTM(4, 2)(_tlstm_inputs(batch=(2, 2, 3))),
     "batch size (axis 0)|features=2|time_deltas=3"),
    ("tlstm-labels-batch", lambda: TimeModulatedLSTM(4, 2)(_tlstm_inputs(batch=(2, 1, 2))),
     "batch size (axis 0)|features=2|previous_labels=1"),
    ("tlstm-steps", lambda: TimeModulatedLSTM(4, 2)(_tlstm_inputs(steps=(5, 5, 4))),
     "time size (axis 1)|features=5|time_deltas=4"),
    ("tlstm-symbolic-batch",
     lambda: TimeModulatedLSTM(4, 2)([keras.Input((5, w), batch_size=b) for w, b in _WIDTH_BATCH]),
     "batch size (axis 0)|features=2|time_deltas=3"),
    ("framewise-list-batch", lambda: FrameWise(_two_inputs())([z(2, 3, 4), z(3, 3, 2)]),
     "batch size (axis 0)|inputs[0]=2|inputs[1]=3"),
    ("framewise-list-time", lambda: FrameWise(_two_inputs())([z(2, 3, 4), z(2, 4, 2)]),
     "time size (axis 1)|inputs[0]=3|inputs[1]=4"),
    ("framewise-list-symbolic-time",
     lambda: FrameWise(_two_inputs())([keras.Input((3, 4)), keras.Input((5, 2))]),
     "time size (axis 1)|inputs[0]=3|inputs[1]=5"),
]

_MASKS = [
    ("scl-steps", lambda: _scl()(z(2, 3, 8, 8, 1), mask=_mask(2, 4)),
     "`mask`|size 4 on axis 1|have 3"),
    ("scl-batch", lambda: _scl()(z(2, 3, 8, 8, 1), mask=_mask(3, 3)),
     "`mask`|size 3 on axis 0|have 2"),
    ("scl-rank", lambda: _scl()(z(2, 3, 8, 8, 1), mask=_mask(2, 3, 1)),
     "`mask`|rank 2|mask.shape=(2, 3, 1)"),
    ("scl-complex", lambda: _scl()(z(2, 3, 8, 8, 1), mask=_mask(2, 3, dtype=np.complex64)),
     "`mask`|boolean|mask.dtype=complex64"),
    ("tlstm-steps", lambda: _tlstm()(z(2, 5, 6), mask=_mask(2, 6)),
     "`mask`|size 6 on axis 1|have 5"),
    ("tlstm-batch", lambda: _tlstm()(z(2, 5, 6), mask=_mask(3, 5)),
     "`mask`|size 3 on axis 0|have 2"),
    ("tlstm-loop-batch", lambda: _tlstm("loop")(z(2, 5, 6), mask=_mask(1, 5)),
     "`mask`|size 1 on axis 0|have 2"),
    ("tlstm-rank", lambda: _tlstm()(_tlstm_inputs(), mask=_mask(2, 5, 1)),
     "`mask`|rank 2|mask.shape=(2, 5, 1)"),
    ("tlstm-complex", lambda: _tlstm()(z(2, 5, 6), mask=_mask(2, 5, dtype=np.complex64)),
     "`mask`|boolean|mask.dtype=complex64"),
]

_STATES = [
    ("scl-batch", lambda: _scl()(z(2, 3, 8, 8, 1), initial_state=[z(3, 8, 8, 2)] * 2),
     "`initial_state[0]`|size 3 on axis 0|2 is expected"),
    ("scl-filters", lambda: _scl()(z(2, 3, 8, 8, 1), initial_state=[z(2, 8, 8, 3)] * 2),
     "`initial_state[0]`|size 3 on axis 3|2 is expected"),
    ("tlstm-batch", lambda: _tlstm()(z(2, 5, 6), initial_state=[z(2, 4), z(3, 4)]),
     "`initial_state[1]`|size 3 on axis 0|2 is expected"),
    ("tlstm-units", lambda: _tlstm()(z(2, 5, 6), initial_state=[z(2, 5), z(2, 5)]),
     "`initial_state[0]`|size 5 on axis 1|4 is expected"),
    ("tlstm-count", lambda: _tlstm()(z(2, 5, 6), initial_state=[z(2, 4)]),
     "`initial_state`|list of 2|len(initial_state)=1"),
]

_RANKS = [
    ("scl-rank-4", lambda: StructuredConvLSTM2D(2, 3)(z(2, 8, 8, 1)), "ndim=5|ndim=4|(2, 8, 8, 1)"),
    ("scl-built-rank-6", lambda: _scl()(z(2, 3, 8, 8, 1, 1)), "ndim=5|ndim=6|(2, 3, 8, 8, 1, 1)"),
    ("tlstm-rank-4", lambda: TimeModulatedLSTM(4, 2)(z(2, 5, 6, 1)),
     "`sequences`|rank 3|(2, 5, 6, 1)"),
    ("tlstm-list-rank-2", lambda: TimeModulatedLSTM(4, 2)([z(2, 5, 3), z(2, 5, 2), z(2, 5)]),
     "`time_deltas`|rank 3|(2, 5)"),
    ("slice-encoder-rank-4", lambda: SliceEncoder(_frame_model())(z(4, 8, 8, 1)),
     "ndim=5|ndim=4|(4, 8, 8, 1)"),
    ("framewise-conv2d-rank-3", lambda: _framewise(keras.layers.Conv2D(2, 3))(z(2, 3, 8)),
     "`inputs`|min_ndim=4, found ndim=2|inputs.shape=(2, 3, 8)"),
    ("framewise-no-time-axis", lambda: FrameWise(keras.layers.Dense(2))(z(4)),
     "`inputs`|batch and a time axis|inputs.shape=(4,)"),
]

_NON_FINITE = [
    ("tlstm-nan-list", lambda: _tlstm()(_tlstm_inputs()[:2] + [_nan_at((2, 5, 1), (0, 2, 0))]),
     "`time_deltas`|finite|1 of its values"),
    ("tlstm-inf-list",
     lambda: _tlstm()(_tlstm_inputs()[:2] + [_nan_at((2, 5, 1), (1, 4, 0), np.inf)]),
     "`time_deltas`|finite|1 of its values"),
    ("tlstm-nan-tensor", lambda: _tlstm()(_nan_at((2, 5, 6), (1, 0, 5))),
     "time lapses|finite|1 of its values"),
    ("tlstm-neg-inf-padding",
     lambda: _tlstm()(_nan_at((2, 5, 6), (0, 4, 5), -np.inf), mask=np.arange(5) < [[4], [5]]),
     "time lapses|finite|1 of its values"),
]
# fmt: on
_WIDTH_BATCH = ((3, 2), (2, 2), (1, 3))  # features, previous_labels, time_deltas

_GROUPS = {
    "channels": _CHANNELS,
    "spatial": _SPATIAL,
    "empty": _EMPTY,
    "batch": _BATCH,
    "mask": _MASKS,
    "state": _STATES,
    "rank": _RANKS,
    "nonfinite": _NON_FINITE,
}
_CASES = [
    pytest.param(call, expected, id=f"{group}-{name}")
    for group, cases in _GROUPS.items()
    for name, call, expected in cases
]


@pytest.mark.parametrize("call, expected", _CASES)
def test_refused(call, expected):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    for part in expected.split("|"):
        assert part in message, f"{part!r} not in {message!r}"


def test_docstring_table_counts_the_cases():
    rows = [line.split("|")[1:3] for line in __doc__.splitlines() if line.startswith("| ")]
    table = {name.strip(): int(count) for name, count in rows[2:]}  # header, rule
    groups = [name for name in table if not name.startswith(("refused", "accepted"))]
    assert [table[name] for name in groups] == [len(cases) for cases in _GROUPS.values()]
    assert table["refused in all: `test_refused`"] == len(_CASES)
    assert table["accepted and correct: `test_accepted`"] == len(_ACCEPTED)


# --------------------------------------------------------- what must keep working
def _scl_new_size_with_state():
    layer = _scl()
    x = np.random.default_rng(0).normal(size=(2, 3, 10, 6, 1)).astype("float32")
    state = [_zeros(2, 10, 6, 2)] * 2
    # The same weights through `keras.layers.ConvLSTM2D` on the new frame size.
    reference = keras.layers.ConvLSTM2D(2, 3, padding="same")
    reference(x)
    reference.set_weights(layer.get_weights())
    return keras.ops.convert_to_numpy(layer(x, initial_state=state)), keras.ops.convert_to_numpy(
        reference(x)
    )


def _float_mask_equals_bool_mask(layer, x):
    mask = np.array([[True, True, False], [True, False, False]])
    return keras.ops.convert_to_numpy(
        layer(x, mask=mask.astype("float32"))
    ), keras.ops.convert_to_numpy(layer(x, mask=mask))


def _empty_through_framewise(**kwargs):
    wrapper = _framewise(**kwargs)
    got = keras.ops.convert_to_numpy(wrapper(_zeros(2, 0, 8, 8, 1)))
    return got.shape, (2, 0, 2)


_ACCEPTED = [
    pytest.param(_scl_new_size_with_state, id="scl-new-frame-size-with-initial-state"),
    pytest.param(
        lambda: _float_mask_equals_bool_mask(
            _scl(), np.random.default_rng(1).normal(size=(2, 3, 8, 8, 1)).astype("float32")
        ),
        id="scl-float-mask",
    ),
    pytest.param(
        lambda: _float_mask_equals_bool_mask(
            TimeModulatedLSTM(4, 2),
            np.random.default_rng(2).random((2, 3, 6)).astype("float32"),
        ),
        id="tlstm-float-mask",
    ),
    pytest.param(_empty_through_framewise, id="framewise-zero-frames"),
    pytest.param(
        lambda: _empty_through_framewise(chunk_size=2), id="framewise-chunked-zero-frames"
    ),
    pytest.param(
        lambda: _empty_through_framewise(chunk_size=2, remat=True, loop="python"),
        id="framewise-remat-zero-frames",
    ),
]


@pytest.mark.parametrize("make", _ACCEPTED)
def test_accepted(make):
    got, expected = make()
    np.testing.assert_allclose(got, expected, atol=1e-5)
