"""kerasmed.data.head_ct_phantom: the synthetic head CT with hemorrhages and single-slice mimics."""

import numpy as np
import pytest
import scipy.ndimage
from sklearn.metrics import roc_auc_score

from kerasmed.data import simulate_head_ct


@pytest.fixture(scope="module")
def phantom():
    return simulate_head_ct(24, slice_size=32, min_slices=10, max_slices=18, seed=3)


def test_same_seed_gives_the_same_volumes():
    a = simulate_head_ct(5, slice_size=32, min_slices=8, max_slices=12, seed=7)
    b = simulate_head_ct(5, slice_size=32, min_slices=8, max_slices=12, seed=7)
    c = simulate_head_ct(5, slice_size=32, min_slices=8, max_slices=12, seed=8)
    for va, vb, ma, mb in zip(a.volumes, b.volumes, a.hemorrhage_masks, b.hemorrhage_masks):
        np.testing.assert_array_equal(va, vb)
        np.testing.assert_array_equal(ma, mb)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert any(
        va.shape != vc.shape or not np.array_equal(va, vc) for va, vc in zip(a.volumes, c.volumes)
    )


def test_shapes_dtypes_counts_and_spacing(phantom):
    counts = [v.shape[0] for v in phantom.volumes]
    assert len(phantom) == 24 and min(counts) >= 10 and max(counts) <= 18
    assert len(set(counts)) > 3  # variable slice counts
    assert all(v.dtype == np.float32 and v.shape[1:] == (32, 32) for v in phantom.volumes)
    assert phantom.labels.sum() == 12  # positive_fraction=0.5
    for v, s, m, k in zip(
        phantom.volumes, phantom.slice_labels, phantom.hemorrhage_masks, phantom.mimic_slices
    ):
        assert s.shape == k.shape == (len(v),) and m.shape == v.shape
    # the head spans a fixed height, so thinner slices for more of them; 220 mm field of view
    np.testing.assert_allclose(phantom.spacing[:, 0] * counts, 140.0)
    np.testing.assert_allclose(phantom.spacing[:, 1:], 220.0 / 32)


def test_anatomy_intensities(phantom):
    volume = phantom.volumes[0]
    middle = volume[len(volume) // 2]
    assert middle[0, 0] < -900  # air in the corner
    assert np.percentile(middle, 99) > 700  # bone of the skull
    center = middle[12:20, 12:20]
    assert 0 < np.median(volume[len(volume) // 2, 8:24, 8:24]) < 60  # brain / CSF, not bone
    assert center.min() > -100


def test_labels_are_consistent_with_the_hemorrhages(phantom):
    for label, slices, mask, volume in zip(
        phantom.labels, phantom.slice_labels, phantom.hemorrhage_masks, phantom.volumes
    ):
        np.testing.assert_array_equal(slices, mask.any(axis=(1, 2)).astype(int))
        if not label:
            assert slices.sum() == 0 and not mask.any()
            continue
        # a hemorrhage spans at least 3 contiguous slices
        runs = scipy.ndimage.label(slices)[0]
        assert np.bincount(runs)[1:].max() >= 3
        for k in np.flatnonzero(slices):
            assert 55.0 <= np.median(volume[k][mask[k]]) <= 95.0  # hyperdense blood, 60-90 HU
        low, high = np.percentile(volume[mask], [1, 99])
        assert low > 40.0 and high < 110.0


def _rule_aucs(data):
    """ROC AUCs of two hand-made detectors built on the hyperdense (55-110 HU) blob area of
    each slice: its maximum over slices (a single-slice rule) and the longest run of
    consecutive slices holding a blob (a 3D rule)."""
    single, extent = [], []
    for volume in data.volumes:
        blobs = scipy.ndimage.binary_opening((volume > 55) & (volume < 110), np.ones((1, 3, 3)))
        area = blobs.sum(axis=(1, 2))
        single.append(area.max())
        runs = scipy.ndimage.label(area >= 4)[0]
        extent.append(np.bincount(runs)[1:].max() if runs.max() else 0)
    return roc_auc_score(data.labels, single), roc_auc_score(data.labels, extent)


def test_single_slice_maximum_is_fooled_by_mimics_but_3d_extent_is_not():
    data = simulate_head_ct(60, slice_size=64, min_slices=24, max_slices=32, seed=11)
    assert sum(int(k.sum()) for k in data.mimic_slices) > 60  # ~2 per volume, both classes
    auc_single, auc_extent = _rule_aucs(data)
    assert auc_extent > 0.9 and auc_extent - auc_single > 0.15
    # without the mimics the single-slice rule works as well as the 3D one
    easy = simulate_head_ct(60, slice_size=64, min_slices=24, max_slices=32, seed=11, mimic_rate=0)
    assert sum(int(k.sum()) for k in easy.mimic_slices) == 0
    auc_single, auc_extent = _rule_aucs(easy)
    assert auc_single > 0.95 and auc_extent > 0.95


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Received: slice_size=16"):
        simulate_head_ct(2, slice_size=16)
    with pytest.raises(ValueError, match="Received: min_slices=12, max_slices=10"):
        simulate_head_ct(2, min_slices=12, max_slices=10)
    with pytest.raises(ValueError, match="Received: positive_fraction=1.5"):
        simulate_head_ct(2, positive_fraction=1.5)
    with pytest.raises(ValueError, match="Received: num_volumes=0"):
        simulate_head_ct(0)
