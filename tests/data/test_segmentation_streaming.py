"""`kerasmed.data.segmentation_streaming`: frame and sequence batches from a mapped segmentation.npz."""

import pickle

import numpy as np
import pytest

from kerasmed.data.segmentation_streaming import (
    SegmentationFrameDataset,
    SegmentationSequenceDataset,
    labelled_frames,
    sequence_frames,
)
from kerasmed.io import SegmentationSequences, load_segmentation_npz, save_segmentation_npz


@pytest.fixture
def written(tmp_path):
    """A segmentation.npz of 4 sequences x 3 time points (time point 1 unlabelled), mapped."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 3, 5, 6, 2)).astype("float32")
    labels = rng.integers(0, 3, size=(4, 3, 5, 6)).astype("int8")
    labels[:, 1] = -1
    labels[2, 2] = -1  # one more unlabelled frame
    seqs = SegmentationSequences(
        images, labels, ["a", "a", "b", "b"], [0, 1, 0, 1], [[0, 6, 12]] * 4, ("t1w", "t2w")
    )
    save_segmentation_npz(tmp_path / "segmentation.npz", seqs)
    return load_segmentation_npz(tmp_path), load_segmentation_npz(tmp_path, mmap=False)


def _batches(data):
    return [data[i] for i in range(len(data))]


def _assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for x, y in zip(a, b) if isinstance(a, tuple) else [(a, b)]:
            assert x.dtype == y.dtype and type(x) is np.ndarray
            np.testing.assert_array_equal(x, y)


def test_mapped_and_in_memory_files_give_the_same_batches(written):
    mapped, loaded = written
    assert isinstance(mapped.images, np.memmap) and not isinstance(loaded.images, np.memmap)
    for make in (
        lambda s: SegmentationFrameDataset(
            s.images, s.labels, labelled_frames(s.labels, [0, 2, 3]), 3, shuffle=True, seed=4
        ),
        lambda s: SegmentationSequenceDataset(s.images, s.labels, None, 3, shuffle=True, seed=4),
        lambda s: SegmentationFrameDataset(s.images, None, batch_size=3),
    ):
        first, second = make(mapped), make(loaded)
        for _ in range(2):  # the next epoch's order too
            _assert_same_batches(_batches(first), _batches(second))
            first.on_epoch_end(), second.on_epoch_end()


def test_an_epoch_holds_the_frames_and_sequences_of_the_in_memory_path(written):
    mapped, loaded = written
    seen = np.array([True, False, True, True])
    # the FCN's training set in memory: images[seen][keep] (row-major, `training_frames`)
    keep = np.any(loaded.labels[seen] != -1, axis=(2, 3))
    expected_x, expected_y = loaded.images[seen][keep], loaded.labels[seen][keep]
    frames = labelled_frames(mapped.labels, seen)
    assert frames.tolist() == [[0, 0], [0, 2], [2, 0], [3, 0], [3, 2]]
    ordered = SegmentationFrameDataset(mapped.images, mapped.labels, frames, batch_size=2)
    x, y = (np.concatenate(parts) for parts in zip(*_batches(ordered)))
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y, expected_y)
    assert y.dtype == np.int32 and [len(b[0]) for b in _batches(ordered)] == [2, 2, 1]
    # shuffled: the same frames, in the order of default_rng([seed, epoch])
    shuffled = SegmentationFrameDataset(mapped.images, mapped.labels, frames, 2, True, seed=1)
    order = np.random.default_rng([1, 0]).permutation(5)
    x = np.concatenate([b[0] for b in _batches(shuffled)])
    np.testing.assert_array_equal(x, expected_x[order])
    # the sequence models' training set: images[seen], labels[seen]
    sequences = SegmentationSequenceDataset(mapped.images, mapped.labels, seen, batch_size=2)
    x, y = (np.concatenate(parts) for parts in zip(*_batches(sequences)))
    np.testing.assert_array_equal(x, loaded.images[seen])
    np.testing.assert_array_equal(y, loaded.labels[seen])


def test_a_pickled_dataset_maps_the_file_again(written):
    mapped, _ = written
    data = SegmentationSequenceDataset(mapped.images, mapped.labels, batch_size=2, workers=2)
    payload = pickle.dumps(data)
    assert len(payload) < mapped.images.nbytes  # the file's name, not its bytes
    again = pickle.loads(payload)
    assert isinstance(again.images, np.memmap) and again.images.filename == mapped.images.filename
    _assert_same_batches(_batches(again), _batches(data))
    assert again.workers == 2


def test_sequence_frames_and_bad_arguments(written):
    mapped, _ = written
    assert sequence_frames(2, [3, 1]).tolist() == [[3, 0], [3, 1], [1, 0], [1, 1]]
    with pytest.raises(ValueError, match=r"Received: frames.shape=\(3,\)"):
        SegmentationFrameDataset(mapped.images, frames=[0, 1, 2])
    with pytest.raises(ValueError, match=r"Received: frames.min=0, frames.max\(axis=0\)=\[4, 0\]"):
        SegmentationFrameDataset(mapped.images, frames=[[4, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"Received: sequences=\[5\]"):
        SegmentationSequenceDataset(mapped.images, sequences=[5])
    with pytest.raises(ValueError, match=r"Received: labels.shape=\(4, 3, 5\)"):
        SegmentationSequenceDataset(mapped.images, mapped.labels[..., 0])
    with pytest.raises(ValueError, match=r"Received: 0 items"):
        SegmentationSequenceDataset(mapped.images, sequences=np.zeros(4, bool))
    with pytest.raises(IndexError):
        SegmentationSequenceDataset(mapped.images)[4]
    bad = np.array(mapped.images)
    bad[2, 1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"sequences \[2\] hold NaN"):
        SegmentationFrameDataset(bad, frames=[[0, 0], [2, 1]], batch_size=2)[0]
