"""kerasmed.data.samplers: balanced slice and volume draws, padding, order."""

import numpy as np
import pytest

from kerasmed.data import BalancedSliceDataset, BalancedVolumeDataset


def _coded_volumes():
    """Slice k of volume v holds the value 100 v + k everywhere (to identify a drawn slice)."""
    lengths, labels = [5, 4, 6, 3], [1, 0, 1, 0]
    volumes = [
        np.stack([np.full((4, 4), 100.0 * v + k) for k in range(n)]) for v, n in enumerate(lengths)
    ]
    slice_labels = [
        np.array([0, 1, 1, 0, 0]),
        np.zeros(4),
        np.array([0, 0, 0, 1, 1, 1]),
        np.zeros(3),
    ]
    return volumes, slice_labels, labels


def test_balanced_slice_dataset_draws_equal_classes_from_allowed_slices():
    volumes, slice_labels, labels = _coded_volumes()
    data = BalancedSliceDataset(
        volumes, slice_labels, labels, batch_size=10, steps_per_epoch=3, seed=1
    )
    allowed = {1: {1, 2, 203, 204, 205}, 0: {100, 101, 102, 103, 300, 301, 302}}
    assert len(data) == 3
    for index in range(len(data)):
        x, y = data[index]
        assert x.shape == (10, 4, 4, 1) and x.dtype == np.float32 and y.shape == (10, 2)
        np.testing.assert_array_equal(y.sum(axis=0), [5, 5])  # as many positives as negatives
        for image, target in zip(x, y):
            code = int(image[0, 0, 0])
            assert np.all(image == code)
            assert code in allowed[int(target[1])]  # negatives only from negative volumes
    again = BalancedSliceDataset(
        volumes, slice_labels, labels, batch_size=10, steps_per_epoch=3, seed=1
    )
    np.testing.assert_array_equal(again[2][0], data[2][0])
    data.on_epoch_end()
    assert not np.array_equal(again[2][0], data[2][0])
    shifted = BalancedSliceDataset(
        volumes, slice_labels, labels, batch_size=4, augment=lambda image, rng: image + 1000.0
    )
    assert shifted[0][0].min() >= 1000.0
    with pytest.raises(ValueError, match=r"Received: volume_labels\[2\]=0"):
        BalancedSliceDataset(volumes, slice_labels, [1, 0, 0, 0], batch_size=4)


def test_balanced_volume_dataset_balance_padding_and_order():
    volumes = [np.full((n, 4, 4), float(i)) for i, n in enumerate([3, 5, 4, 6, 2])]
    labels = [1, 0, 0, 0, 0]  # one positive among five
    data = BalancedVolumeDataset(volumes, labels, samples_per_epoch=10, seed=2)
    drawn = [data[i] for i in range(len(data))]
    assert len(drawn) == 10
    assert sum(int(y[0, 1]) for _, y in drawn) == 5
    for x, y in drawn:
        index = int(x[0, 0, 0, 0, 0])
        assert x.shape == (1, len(volumes[index]), 4, 4, 1) and y[0, 1] == labels[index]
    padded = BalancedVolumeDataset(volumes, labels, batch_size=2, pad_multiple=4, shuffle=False)
    (x, mask), y = padded[1]  # volumes 2 and 3: 4 and 6 slices, padded to 8
    assert x.shape == (2, 8, 4, 4, 1)
    np.testing.assert_array_equal(mask.sum(axis=1), [4, 6])
    np.testing.assert_array_equal(y[:, 1], [0, 0])
    assert len(padded) == 3
    # Keras on TensorFlow fixes the dimensions equal in the first two batches: they differ
    for seed in range(5):
        data = BalancedVolumeDataset(volumes, labels, samples_per_epoch=6, seed=seed)
        assert data[0][0].shape[1] != data[1][0].shape[1]
