"""Streamed datasets: the same batches as the in-memory ones, with only the index in memory."""

import numpy as np
import pytest
from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

from kerasmed.data import (
    BalancedSliceDataset,
    BalancedVolumeDataset,
    SequenceDataset,
    StreamedSequenceDataset,
    StreamedSliceDataset,
    StreamedVolumeDataset,
    VolumeFiles,
    read_volume_index,
)
from kerasmed.experiments import get_config
from kerasmed.experiments import ich as exp
from kerasmed.io import VolumeSetWriter, load_volume_set


@pytest.fixture(scope="module")
def volume_set(tmp_path_factory):
    """Nine tiny head-CT-like volumes of 3 to 7 slices of 8 x 8, int16 HU, with slice labels."""
    folder = tmp_path_factory.mktemp("set")
    rng = np.random.default_rng(0)
    with VolumeSetWriter(folder, hu_dtype="int16") as writer:
        for i in range(9):
            n = 3 + i % 5
            label = i % 2
            slice_labels = np.zeros(n, "int8")
            slice_labels[1] = label
            hu = rng.integers(-100, 200, size=(n, 8, 8))
            writer.add(f"v{i}", hu, label=label, spacing=(5, 1, 1), slice_labels=slice_labels)
    return folder


def _assert_same(a, b):
    """Nested batches (tuples / dicts of arrays) are equal element for element."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def _arrays_held(obj, seen=None):
    """Every array that could hold voxels (floating, or 3+ axes) reachable from `obj`.

    Index arrays (labels, lengths, the slice samplers' ``(volume, slice)`` pairs) are
    integer arrays of one or two axes, so they do not count.
    """
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj.shape] if obj.ndim >= 3 or obj.dtype.kind == "f" else []
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        return []
    return [shape for child in children for shape in _arrays_held(child, seen)]


def test_index_reads_labels_and_lengths_without_voxels(volume_set):
    index = read_volume_index(volume_set)
    loaded = load_volume_set(volume_set)
    assert index.ids == loaded.ids
    np.testing.assert_array_equal(index.labels, loaded.labels)
    np.testing.assert_array_equal(index.lengths, loaded.lengths)
    for ours, theirs in zip(index.slice_labels, loaded.slice_labels, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    for i in range(len(index)):
        np.testing.assert_array_equal(index.files[i], loaded.volumes[i])
        assert index.files[i].dtype == np.float32
    assert index.float32_bytes() == int(loaded.lengths.sum()) * 8 * 8 * 4
    assert _arrays_held(index) == []


def test_streamed_volume_batches_equal_in_memory_batches(volume_set):
    index = read_volume_index(volume_set)
    volumes = load_volume_set(volume_set).volumes
    kwargs = dict(batch_size=2, samples_per_epoch=6, pad_multiple=4, augment="paper", seed=3)
    streamed = StreamedVolumeDataset(index.files, index.labels, **kwargs)
    in_memory = BalancedVolumeDataset(volumes, index.labels, **kwargs)
    assert _arrays_held(streamed) == []
    for _ in range(2):  # two epochs: the draws of on_epoch_end agree too
        assert len(streamed) == len(in_memory) == 3
        for i in range(len(streamed)):
            _assert_same(streamed[i], in_memory[i])
        streamed.on_epoch_end()
        in_memory.on_epoch_end()
    evaluation = dict(batch_size=3, shuffle=False, pad_multiple=8)
    streamed = StreamedVolumeDataset(index.files, index.labels, **evaluation)
    in_memory = BalancedVolumeDataset(volumes, index.labels, **evaluation)
    for i in range(len(streamed)):
        _assert_same(streamed[i], in_memory[i])


def test_streamed_slice_and_sequence_batches_equal_in_memory_batches(volume_set):
    index = read_volume_index(volume_set)
    volumes = load_volume_set(volume_set).volumes
    labels = [np.maximum(s, 0) for s in index.slice_labels]
    streamed = StreamedSliceDataset(index.files, labels, index.labels, batch_size=6, seed=1)
    in_memory = BalancedSliceDataset(volumes, labels, index.labels, batch_size=6, seed=1)
    assert _arrays_held(streamed) == [] and len(streamed) == len(in_memory)
    for i in range(len(streamed)):
        _assert_same(streamed[i], in_memory[i])
    kwargs = dict(batch_size=4, target="all", seed=2, bucket_by_length=True)
    streamed = StreamedSequenceDataset({"ct": index.files}, labels, **kwargs)
    in_memory = SequenceDataset({"ct": volumes}, labels, **kwargs)
    assert _arrays_held(streamed) == []
    for i in range(len(streamed)):
        _assert_same(streamed[i], in_memory[i])


def test_two_worker_threads_give_the_same_batches(volume_set):
    index = read_volume_index(volume_set)
    kwargs = dict(batch_size=2, samples_per_epoch=8, pad_multiple=4, seed=5)
    batches = []
    for workers in (1, 2):
        dataset = StreamedVolumeDataset(
            index.files, index.labels, workers=workers, use_multiprocessing=False, **kwargs
        )
        adapter = PyDatasetAdapter(dataset, shuffle=False)
        batches.append(list(adapter.get_numpy_iterator()))
        adapter.on_epoch_end()
    assert len(batches[0]) == len(batches[1]) == 4
    for one, two in zip(*batches):
        _assert_same(one, two)


def test_ich_streams_the_same_parts_as_it_loads(volume_set):
    config = get_config("ich", "quick", num_train=5, num_val=2, num_test=2, z_factor=2)
    loaded = exp.load_data(config, str(volume_set), verbose=False, stream=False)
    streamed = exp.load_data(config, str(volume_set), verbose=False, stream=True)
    assert isinstance(streamed["train"]["volumes"], VolumeFiles)
    assert not isinstance(loaded["train"]["volumes"], VolumeFiles)
    for part in loaded:
        np.testing.assert_array_equal(streamed[part]["labels"], loaded[part]["labels"])
        assert len(streamed[part]["volumes"]) == len(loaded[part]["volumes"])
        for ours, theirs in zip(streamed[part]["volumes"], loaded[part]["volumes"], strict=True):
            np.testing.assert_array_equal(ours, theirs)
        for ours, theirs in zip(
            streamed[part]["slice_labels"], loaded[part]["slice_labels"], strict=True
        ):
            np.testing.assert_array_equal(ours, theirs)
    # Small sets load by default (stream=None): they fit in memory many times over.
    assert isinstance(
        exp.load_data(config, str(volume_set), verbose=False)["test"]["volumes"], list
    )


def test_bad_rows_and_files_are_reported(tmp_path, volume_set):
    folder = tmp_path / "bad"
    (folder / "volumes").mkdir(parents=True)
    for name, source in (("v0", "v0"), ("v1", "v1"), ("v2", "v0")):
        (folder / "volumes" / f"{name}.npz").write_bytes(
            (volume_set / "volumes" / f"{source}.npz").read_bytes()
        )
    (folder / "labels.csv").write_text(
        "volume_id,label,num_slices\nv0,0,3\nv1,2,4\nv9,1,3\nv2,0,9\n"
    )
    with pytest.raises(ValueError, match="label must be 0 or 1") as error:
        read_volume_index(folder)
    assert "volume file not found" in str(error.value)
    assert "must be 9 integers" in str(error.value)
    with pytest.warns(UserWarning):
        index = read_volume_index(folder, strict=False)
    assert index.ids == ["v0"] and index.report.skipped_rows == [3, 4, 5]
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        read_volume_index(tmp_path)


def test_an_item_that_disagrees_with_its_index_names_its_file(volume_set):
    index = read_volume_index(volume_set)
    wrong = VolumeFiles(index.files.paths[:1], lengths=[99])
    with pytest.raises(ValueError, match=r"v0\.npz has 3 steps but the index says 99"):
        wrong[0]
    with pytest.raises(ValueError, match="must be a kerasmed.data.VolumeFiles"):
        StreamedVolumeDataset([np.zeros((3, 8, 8))], [0], balance=False)
    with pytest.raises(ValueError, match="one entry per path"):
        VolumeFiles(index.files.paths, lengths=[1])
