"""kerasmed.data.slice_sampling: the two-step CT sampling rules and their PyDatasets."""

from types import SimpleNamespace

import numpy as np
import pytest

from kerasmed.data import EmbeddingSequenceDataset, WindowSliceDataset, as_slice_batch
from kerasmed.data.slice_sampling import sample_sequence_slices, sample_window_slices, window_bounds


def _draws(fn, repeats=200, seed=0):
    rng = np.random.default_rng(seed)
    return [fn(rng) for _ in range(repeats)]


def test_window_longer_than_16_gives_16_distinct_window_slices():
    for idx in _draws(lambda rng: sample_window_slices(120, (30, 47), rng)):  # 17 slices
        assert len(idx) == 16 and len(np.unique(idx)) == 16
        assert idx.min() >= 30 and idx.max() < 47 and np.all(np.diff(idx) > 0)


def test_short_window_of_a_long_scan_draws_from_the_window_with_replacement():
    draws = _draws(lambda rng: sample_window_slices(21, (5, 16), rng))  # n = 21 > 20, 11 slices
    for idx in draws:
        assert len(idx) == 16 and idx.min() >= 5 and idx.max() < 16 and np.all(np.diff(idx) >= 0)
    # 16 draws from 11 slices always repeat; over many draws every window slice shows up
    assert all(len(np.unique(idx)) < 16 for idx in draws)
    assert set(np.concatenate(draws).tolist()) == set(range(5, 16))
    # a window of exactly 16 slices is not "longer than 16": drawn with replacement too
    assert any(
        len(np.unique(idx)) < 16 for idx in _draws(lambda r: sample_window_slices(40, (0, 16), r))
    )


def test_small_scan_draws_from_all_slices():
    draws = _draws(lambda rng: sample_window_slices(20, (7, 17), rng))  # n = 20: all slices
    assert set(np.concatenate(draws).tolist()) == set(range(20))  # outside the window too
    assert all(len(np.unique(idx)) == 16 for idx in draws)  # 20 >= 16: no repeats
    tiny = _draws(lambda rng: sample_window_slices(5, (1, 4), rng))
    assert all(len(idx) == 16 and set(idx.tolist()) <= set(range(5)) for idx in tiny)
    assert sample_window_slices(1, (0, 1), np.random.default_rng(0)).tolist() == [0] * 16


def test_window_accepts_selection_results_and_checks_bounds():
    result = SimpleNamespace(start=3, stop=9, areas=None)
    assert window_bounds(result, 10) == (3, 9)
    with pytest.raises(ValueError, match=r"window=\(3, 12\)"):
        window_bounds((3, 12), 10)
    with pytest.raises(ValueError, match="window"):
        sample_window_slices(10, (4, 4), np.random.default_rng(0))


def test_sequence_sampling_repeats_only_when_fewer_and_keeps_order():
    for idx in _draws(lambda rng: sample_sequence_slices(300, 224, rng), repeats=50):
        assert len(idx) == 224 and np.all(np.diff(idx) > 0)  # no replacement, sorted
    for idx in _draws(lambda rng: sample_sequence_slices(224, 224, rng), repeats=5):
        assert idx.tolist() == list(range(224))
    for idx in _draws(lambda rng: sample_sequence_slices(50, 120, rng), repeats=50):
        counts = np.bincount(idx, minlength=50)
        assert len(idx) == 120 and np.all(np.diff(idx) >= 0)
        assert counts.min() >= 1 and counts.sum() == 120  # every slice kept, 70 repeats
    # the draws without replacement are uniform: each of 10 slices is kept half the time
    kept = np.zeros(10)
    for idx in _draws(lambda rng: sample_sequence_slices(10, 5, rng), repeats=2000):
        kept[idx] += 1
    np.testing.assert_allclose(kept / 2000, 0.5, atol=0.05)


def test_as_slice_batch_repeats_grey_channels():
    x = as_slice_batch(np.arange(8.0).reshape(2, 2, 2), channels=3)
    assert x.dtype == np.float32 and x.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(x[..., 2], np.arange(8.0).reshape(2, 2, 2))
    with pytest.raises(ValueError, match="channels=1"):
        as_slice_batch(np.zeros((2, 4, 4, 3)), channels=1)


def _volumes():
    # slice k of scan i holds the value 1000 * i + k, so a batch tells which slices it drew
    sizes = [40, 18, 60, 25, 33]
    return [
        np.full((n, 4, 4), 1000.0 * i) + np.arange(n)[:, None, None] for i, n in enumerate(sizes)
    ]


def test_window_slice_dataset_batches_follow_the_windows():
    volumes = _volumes()
    windows = [(10, 30), (4, 13), (0, 30), (5, 18), (10, 27)]
    labels = [1, 0, 1, 0, 1]
    data = WindowSliceDataset(volumes, windows, labels, scans_per_batch=2, channels=3, seed=3)
    assert len(data) == 3
    seen = set()
    for b in range(len(data)):
        x, y = data[b]
        assert x.shape[1:] == (4, 4, 3) and x.shape[0] == len(y) and len(y) in (32, 16)
        values = x[:, 0, 0, 0].reshape(-1, 16)
        for row, target in zip(values, y.reshape(-1, 16)):
            scan, slices = int(row[0] // 1000), row % 1000
            seen.add(scan)
            assert np.all(row // 1000 == scan) and np.all(target == labels[scan])
            start, stop = windows[scan]
            if len(volumes[scan]) > 20:
                assert slices.min() >= start and slices.max() < stop
            assert np.all(np.diff(slices) >= 0)
    assert seen == set(range(5))  # one epoch visits every scan once
    again = WindowSliceDataset(volumes, windows, labels, scans_per_batch=2, channels=3, seed=3)
    np.testing.assert_array_equal(again[1][0], data[1][0])  # reproducible
    first = data[0][0]
    data.on_epoch_end()
    assert not np.array_equal(data[0][0], first)  # a new epoch, new order and draws


def test_window_slice_dataset_augments_and_checks_lengths():
    volumes = _volumes()
    flipped = WindowSliceDataset(
        volumes, [(0, 10)] * 5, [0] * 5, scans_per_batch=5, augment=lambda s, rng: -s, shuffle=False
    )
    plain = WindowSliceDataset(volumes, [(0, 10)] * 5, [0] * 5, scans_per_batch=5, shuffle=False)
    np.testing.assert_array_equal(flipped[0][0], -plain[0][0])
    with pytest.raises(ValueError, match="one entry per scan"):
        WindowSliceDataset(volumes, [(0, 10)] * 4, [0] * 5)


def test_embedding_sequences_fresh_or_fixed_draws():
    sizes = [7, 300, 120, 64]
    embeddings = [np.repeat(np.arange(n, dtype="float32")[:, None], 3, axis=1) for n in sizes]
    labels = [0, 1, 1, 0]
    fresh = EmbeddingSequenceDataset(
        embeddings, labels, num_slices=120, batch_size=4, shuffle=False
    )
    fixed = EmbeddingSequenceDataset(
        embeddings, labels, num_slices=120, batch_size=4, shuffle=False, fixed_draws=True
    )
    x, y = fresh[0]
    assert x.shape == (4, 120, 3) and y.tolist() == labels
    for row, n in zip(x[..., 0], sizes):
        assert np.all(np.diff(row) >= 0) and row.max() < n  # slice order, from that scan
        assert (len(np.unique(row)) == 120) == (n >= 120)  # repeats only when fewer
        if n < 120:
            assert len(np.unique(row)) == n  # every slice kept
    fixed_first = fixed[0][0]
    fresh.on_epoch_end()
    fixed.on_epoch_end()
    assert not np.array_equal(fresh[0][0][1], x[1])  # scan of 300 slices: a new draw
    np.testing.assert_array_equal(fixed[0][0], fixed_first)  # the authors' fixed draws
    np.testing.assert_array_equal(fixed.sample_indices(1), fixed_first[1, :, 0].astype(int))
    (inputs,) = EmbeddingSequenceDataset(embeddings, num_slices=8, batch_size=3, shuffle=False)[1]
    assert inputs.shape == (1, 8, 3)


def test_embedding_sequences_shuffle_and_checks():
    embeddings = [np.full((5, 2), float(i)) for i in range(6)]
    data = EmbeddingSequenceDataset(
        embeddings, np.arange(6) % 2, num_slices=4, batch_size=6, seed=1
    )
    x, y = data[0]
    np.testing.assert_array_equal(x[:, 0, 0] % 2, y)  # labels follow their scans
    assert sorted(x[:, 0, 0].tolist()) == list(range(6))
    with pytest.raises(ValueError, match="one width"):
        EmbeddingSequenceDataset([np.zeros((5, 2)), np.zeros((5, 3))])
    with pytest.raises(ValueError, match="num_slices=0"):
        EmbeddingSequenceDataset(embeddings, num_slices=0)
