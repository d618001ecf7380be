import keras
import numpy as np
import pytest

from kerasmed.data.sequences import SequenceDataset, pad_to_batch


def _seqs(lengths, trailing=(2,), offset=0.0):
    return [np.full((n, *trailing), i + 1 + offset, dtype="float32") for i, n in enumerate(lengths)]


def test_pad_to_batch_values_mask_and_trailing_dims():
    arrays = [np.arange(6).reshape(3, 2, 1), np.arange(2).reshape(1, 2, 1) + 10]
    padded, mask = pad_to_batch(arrays, value=-1)
    assert padded.shape == (2, 3, 2, 1) and padded.dtype == arrays[0].dtype
    np.testing.assert_array_equal(padded[0], arrays[0])
    np.testing.assert_array_equal(padded[1, 0], arrays[1][0])
    np.testing.assert_array_equal(padded[1, 1:], -1)
    np.testing.assert_array_equal(mask, [[True, True, True], [True, False, False]])


def test_pad_to_batch_max_length_keeps_last_steps():
    a = np.arange(5, dtype="float32")[:, None]
    padded, mask = pad_to_batch([a, a[:2]], max_length=3)
    np.testing.assert_array_equal(padded[0, :, 0], [2, 3, 4])
    np.testing.assert_array_equal(padded[1, :, 0], [0, 1, 0])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 1, 0]])
    padded, mask = pad_to_batch([a[:2]], max_length=4, dtype="float16")
    assert padded.shape == (1, 4, 1) and padded.dtype == np.float16 and mask.sum() == 2


def test_pad_to_batch_errors():
    with pytest.raises(ValueError, match=r"arrays\[1\].shape=\(2, 3\)"):
        pad_to_batch([np.zeros((2, 2)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match="max_length=0"):
        pad_to_batch([np.zeros((2, 2))], max_length=0)


def test_dict_inputs_last_target_from_per_step_targets():
    lengths = [3, 1, 4, 2]
    inputs = {"a": _seqs(lengths), "b": _seqs(lengths, trailing=(), offset=10)}
    targets = [np.arange(n, dtype="float32")[:, None] + 100 * i for i, n in enumerate(lengths)]
    data = SequenceDataset(inputs, targets, batch_size=3, shuffle=False)
    assert len(data) == 2 and data.targets_per_step
    x, y = data[0]
    assert set(x) == {"a", "b", "mask"}
    assert x["a"].shape == (3, 4, 2) and x["b"].shape == (3, 4) and x["mask"].dtype == bool
    np.testing.assert_array_equal(x["mask"].sum(1), [3, 1, 4])
    np.testing.assert_array_equal(x["a"][0, :3], 1.0)
    np.testing.assert_array_equal(x["a"][0, 3], 0.0)
    np.testing.assert_array_equal(x["b"][1], [12, 0, 0, 0])
    np.testing.assert_array_equal(y[:, 0], [2, 100, 203])  # each sequence's last real step
    x, y = data[1]
    assert x["a"].shape == (1, 2, 2) and y.tolist() == [[301.0]]
    with pytest.raises(IndexError):
        data[2]


def test_per_sequence_targets_and_weights():
    lengths = [2, 5, 3]
    labels = np.eye(3, dtype="float32")
    data = SequenceDataset(
        _seqs(lengths), labels, batch_size=3, shuffle=False, sample_weights=[1.0, 2.0, 3.0]
    )
    (padded, mask), y, w = data[0]
    assert not data.targets_per_step
    assert padded.shape == (3, 5, 2)
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(w, [1, 2, 3])
    np.testing.assert_array_equal(mask.sum(1), lengths)


def test_target_all_gives_per_step_targets_and_mask_weights():
    lengths = [2, 4]
    targets = [np.ones((n, 3), dtype="float32") * (i + 1) for i, n in enumerate(lengths)]
    data = SequenceDataset(
        {"x": _seqs(lengths)},
        targets,
        batch_size=2,
        shuffle=False,
        target="all",
        sample_weights=[1.0, 0.5],
    )
    x, y, w = data[0]
    assert y.shape == (2, 4, 3)
    np.testing.assert_array_equal(y[0, :, 0], [1, 1, 0, 0])
    np.testing.assert_array_equal(w, [[1, 1, 0, 0], [0.5, 0.5, 0.5, 0.5]])
    per_step = [np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0, 6.0])]
    _, _, w = SequenceDataset(
        {"x": _seqs(lengths)}, targets, shuffle=False, target="all", sample_weights=per_step
    )[0]
    np.testing.assert_array_equal(w, [[1, 2, 0, 0], [3, 4, 5, 6]])


def test_mismatched_lengths_name_the_sequence():
    with pytest.raises(ValueError, match=r"Sequence 1 has 3 steps in input 'a' but 2 in input 'b'"):
        SequenceDataset({"a": _seqs([2, 3]), "b": _seqs([2, 2])})
    with pytest.raises(ValueError, match=r"targets\[1\].shape=\(4, 1\)"):
        SequenceDataset(_seqs([2, 3]), [np.zeros((2, 1)), np.zeros((4, 1))], targets_per_step=True)
    with pytest.raises(ValueError, match="target='all'"):
        SequenceDataset(_seqs([2, 3]), np.zeros((2, 5)), target="all")
    with pytest.raises(ValueError, match="len\\(targets\\)=1"):
        SequenceDataset(_seqs([2, 3]), np.zeros((1, 5)))
    with pytest.raises(ValueError, match="mask_name='mask'"):
        SequenceDataset({"mask": _seqs([2])})
    with pytest.raises(ValueError, match="target='first'"):
        SequenceDataset(_seqs([2]), target="first")


def _epoch_order(data):
    return np.concatenate([data[i][1][:, 0] for i in range(len(data))])


@pytest.mark.parametrize("bucket", [False, True])
def test_shuffle_is_deterministic_and_a_permutation(bucket):
    lengths = list(np.random.default_rng(0).integers(1, 30, size=50))
    targets = np.arange(50, dtype="float32")[:, None]

    def make():
        return SequenceDataset(
            _seqs(lengths), targets, batch_size=4, seed=3, bucket_by_length=bucket
        )

    a, b = make(), make()
    first = _epoch_order(a)
    np.testing.assert_array_equal(first, _epoch_order(b))
    np.testing.assert_array_equal(np.sort(first), np.arange(50))
    assert not np.array_equal(first, np.arange(50))
    a.on_epoch_end()
    second = _epoch_order(a)
    np.testing.assert_array_equal(np.sort(second), np.arange(50))
    assert not np.array_equal(first, second)
    b.on_epoch_end()
    np.testing.assert_array_equal(second, _epoch_order(b))
    if (
        bucket
    ):  # sorted within chunks of 80 >= 50 sequences: each batch is a run of the sorted lengths
        spans = [np.ptp(np.array(lengths)[a[i][1][:, 0].astype(int)]) for i in range(len(a))]
        sorted_lengths = np.sort(lengths)
        assert sum(spans) == sum(np.ptp(sorted_lengths[i : i + 4]) for i in range(0, 50, 4))


def test_masked_lstm_on_padded_batches_matches_unpadded_sequences():
    """Right padding + the mask input give each sequence's own LSTM output, on every backend."""
    rng = np.random.default_rng(0)
    lengths = [5, 2, 3]
    feats = [rng.normal(size=(n, 3)).astype("float32") for n in lengths]
    x_in = keras.Input((None, 3), name="x")
    m_in = keras.Input((None,), dtype="bool", name="mask")
    out = keras.layers.Dense(1)(keras.layers.LSTM(4)(x_in, mask=m_in))
    model = keras.Model({"x": x_in, "mask": m_in}, out)
    data = SequenceDataset(
        {"x": feats}, np.zeros((3, 1), "float32"), batch_size=3, shuffle=False, pad_value=9.0
    )
    batched = model.predict(data, verbose=0)
    for i, f in enumerate(feats):
        single = model.predict({"x": f[None], "mask": np.ones((1, len(f)), bool)}, verbose=0)
        np.testing.assert_allclose(batched[i], single[0], rtol=1e-5, atol=1e-5)
    model.compile("sgd", "mse")
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


class _CountedItem:
    """A sequence read only when NumPy asks for it (as `kerasmed.data.streaming` items are);
    counts its reads. With `described`, it tells ``ndim``/``dtype``/``shape`` without a read."""

    def __init__(self, reads, index, length, described):
        self.reads, self.index, self.length = reads, index, length
        if described:
            self.ndim, self.dtype, self.shape = 2, np.dtype("float32"), (length, 2)

    def __len__(self):
        return self.length

    def __array__(self, dtype=None, copy=None):
        self.reads[self.index] += 1
        array = np.full((self.length, 2), self.index + 0.5, "float32")
        return array if dtype is None else array.astype(dtype)


@pytest.mark.parametrize("described", [False, True])
def test_each_sequence_is_read_once_to_build_and_once_per_epoch(described):
    lengths, targets = [2, 3, 1, 4, 2], np.arange(5, dtype="float32")
    reads = [0] * len(lengths)
    items = [_CountedItem(reads, k, n, described) for k, n in enumerate(lengths)]
    data = SequenceDataset({"x": items}, targets, batch_size=2, seed=1)
    assert reads == [1] * 5  # the NaN check
    batches = [data[i] for i in range(len(data))]
    assert reads == [2] * 5  # one read per sequence per epoch, the first of a batch too
    arrays = [np.asarray(item) for item in items]
    same = SequenceDataset({"x": arrays}, targets, batch_size=2, seed=1)
    for (x, y), (x_same, y_same) in zip(batches, [same[i] for i in range(len(same))]):
        assert x["x"].dtype == x_same["x"].dtype == np.float32
        np.testing.assert_array_equal(x["x"], x_same["x"])
        np.testing.assert_array_equal(x["mask"], x_same["mask"])
        np.testing.assert_array_equal(y, y_same)
