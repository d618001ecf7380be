"""kerasmed.data.chest_ct_phantom: the synthetic chest CT with ground-glass opacities."""

import numpy as np
import pytest
import scipy.ndimage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from kerasmed.data import simulate_chest_ct, to_8bit_slices
from kerasmed.preprocessing import select_lung_slices

SMALL = {"filter_size": 1, "crop_filter_size": 2}  # filters for 64 x 64 slices


@pytest.fixture(scope="module")
def phantom():
    return simulate_chest_ct(12, min_slices=30, max_slices=60, mixed_size_fraction=0.2, seed=1)


def test_same_seed_gives_the_same_scans():
    a = simulate_chest_ct(3, min_slices=20, max_slices=30, seed=5)
    b = simulate_chest_ct(3, min_slices=20, max_slices=30, seed=5)
    c = simulate_chest_ct(3, min_slices=20, max_slices=30, seed=6)
    for va, vb, ma, mb in zip(a.volumes, b.volumes, a.lesion_masks, b.lesion_masks):
        np.testing.assert_array_equal(va, vb)
        np.testing.assert_array_equal(ma, mb)
    assert any(
        va.shape != vc.shape or not np.array_equal(va, vc) for va, vc in zip(a.volumes, c.volumes)
    )


def test_nothing_but_the_lesions_depends_on_the_label():
    # The same scans drawn all negative and all positive: same slice counts, and the same voxels
    # everywhere but around the lesions (the blur reaches 2 pixels), so neither body nor lung
    # density can tell the classes apart.
    args = {"num_scans": 4, "min_slices": 20, "max_slices": 40, "mixed_size_fraction": 0.0}
    negative = simulate_chest_ct(positive_fraction=0.0, seed=3, **args)
    positive = simulate_chest_ct(positive_fraction=1.0, seed=3, **args)
    assert negative.labels.tolist() == [0] * 4 and positive.labels.tolist() == [1] * 4
    for a, b, lesions in zip(negative.volumes, positive.volumes, positive.lesion_masks):
        assert a.shape == b.shape and lesions.any()
        near = scipy.ndimage.binary_dilation(lesions, np.ones((1, 3, 3), bool), iterations=3)
        np.testing.assert_array_equal(a[~near], b[~near])
        assert b[lesions].mean() > a[lesions].mean() + 200  # GGO is denser than the lung
    for a, b in zip(negative.lung_masks, positive.lung_masks):
        np.testing.assert_array_equal(a, b)


def test_lesions_are_visible_and_mostly_in_the_lung_window():
    data = simulate_chest_ct(16, min_slices=30, max_slices=60, mixed_size_fraction=0.0, seed=2)
    inside, total = 0, 0
    for volume, lesions, lung, labels, label in zip(
        data.volumes, data.lesion_masks, data.lung_masks, data.slice_labels, data.labels
    ):
        if not label:
            assert not lesions.any()
            continue
        window = select_lung_slices(volume, **SMALL)
        inside += labels[window.slice].sum()
        total += labels.sum()
        # visible on 64 x 64 slices: half the lesion slices show >= 30 GGO pixels, 300 HU
        # and more above the lung around them
        assert np.median(lesions.sum(axis=(1, 2))[labels == 1]) >= 30
        assert np.median(volume[lesions]) > np.median(volume[lung & ~lesions]) + 300
    assert inside / total > 0.7  # most lesion slices lie in the area-selected window


def test_shapes_labels_masks_and_mixed_sizes(phantom):
    assert len(phantom) == 12 and phantom.labels.sum() == 6
    assert phantom.mixed_size.sum() == round(0.2 * 12) and phantom.spacing.shape == (12, 3)
    for i, volume in enumerate(phantom.volumes):
        n = len(volume)
        assert 30 <= n <= 60
        assert phantom.spacing[i, 0] == pytest.approx(300.0 / n)
        if phantom.mixed_size[i]:
            assert isinstance(volume, list)
            assert {s.shape for s in volume[:-1]} == {(64, 64)} and volume[-1].shape == (80, 80)
        else:
            assert volume.shape == (n, 64, 64) and volume.dtype == np.float32
        lesions, lung = phantom.lesion_masks[i], phantom.lung_masks[i]
        labels = phantom.slice_labels[i]
        np.testing.assert_array_equal(labels, [int(m.any()) for m in lesions])
        np.testing.assert_array_equal(phantom.lung_areas[i], [int(m.sum()) for m in lung])
        assert labels.any() == bool(phantom.labels[i])
        assert all(not (les & ~lu).any() for les, lu in zip(lesions, lung))  # GGO in the lungs
        areas = phantom.lung_areas[i]
        assert areas[0] == 0 and areas[-1] == 0 and areas.max() > 300  # no lung at both ends


def test_intensities_are_those_of_a_chest_ct(phantom):
    volume, lung = phantom.volumes[0], phantom.lung_masks[0]
    lesions = phantom.lesion_masks[0]
    assert volume[:, 0, :].mean() == pytest.approx(-1000, abs=10)  # air at the top
    inner = lung & ~lesions
    assert -900 < np.median(volume[inner]) < -780
    positive = int(np.flatnonzero(phantom.labels)[0])
    ggo = np.concatenate(
        [v[m] for v, m in zip(phantom.volumes[positive], phantom.lesion_masks[positive])]
    )
    assert -750 < np.median(ggo) < -250
    # the scanner table: a bright plate under the body, with air between
    rows = (volume[len(volume) // 2] > -400).any(axis=1)
    runs = np.flatnonzero(np.diff(rows.astype(int)) != 0)
    assert len(runs) >= 4  # body rows, air, table rows


def test_int16_and_8bit_slices():
    data = simulate_chest_ct(
        2, min_slices=20, max_slices=24, dtype="int16", mixed_size_fraction=0.5
    )
    assert all(s.dtype == np.int16 for v in data.volumes for s in v)
    hu = np.array([-1350.0, -1000.0, -850.0, -600.0, 150.0, 400.0])
    expected = np.rint(np.clip((hu + 1350) / 1500, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(to_8bit_slices(hu), expected)
    mixed = data.volumes[int(np.flatnonzero(data.mixed_size)[0])]
    eight = to_8bit_slices(mixed)
    assert isinstance(eight, list) and eight[-1].shape == mixed[-1].shape
    assert all(s.dtype == np.uint8 for s in eight)


def test_the_lung_window_follows_the_true_lung_area(phantom):
    for i, volume in enumerate(phantom.volumes):
        result = select_lung_slices(volume, **SMALL)
        true = phantom.lung_areas[i]
        if phantom.mixed_size[i]:
            assert result.rule == "last_slice" and result.start == len(volume) - 1
            continue
        assert result.rule == "lung_area" and result.found
        assert result.start <= int(np.argmax(true)) < result.stop
        assert np.corrcoef(result.areas, true)[0, 1] > 0.95
        # the same window, or nearly, from the 8-bit slices with the authors' threshold 100
        eight = select_lung_slices(to_8bit_slices(volume), kind="8bit", **SMALL)
        assert abs(eight.start - result.start) <= 0.1 * len(volume)


def _features(volume, lung, slices):
    ggo = ((volume >= -700) & (volume <= -300) & lung)[slices].sum()
    pixels = max(int(lung[slices].sum()), 1)
    return [ggo / pixels, float(np.where(lung, volume, 0)[slices].sum()) / pixels]


def test_one_slice_is_worse_than_the_window_and_the_window_not_better_than_all_slices():
    # Per scan, the fraction of lung pixels in the GGO range (-700 ... -300 HU) and the mean HU
    # of the lung, pooled over one random slice, over the lung window, or over every slice;
    # a logistic regression on these two numbers, cross-validated AUC. Measured (seeds 0, 1,
    # 2): random slice 0.765 / 0.760 / 0.745, window 0.976 / 0.979 / 0.973, all slices
    # 0.997 / 0.994 / 0.979.
    data = simulate_chest_ct(64, min_slices=30, max_slices=70, mixed_size_fraction=0.0, seed=0)
    rng = np.random.default_rng(0)
    features = {"random_slice": [], "lung_window": [], "all_slices": []}
    for volume, lung in zip(data.volumes, data.lung_masks):
        window = select_lung_slices(volume, **SMALL).slice
        features["random_slice"].append(_features(volume, lung, [rng.integers(len(volume))]))
        features["lung_window"].append(_features(volume, lung, window))
        features["all_slices"].append(_features(volume, lung, slice(None)))
    auc = {}
    for name, x in features.items():
        x = np.array(x)
        x = (x - x.mean(0)) / (x.std(0) + 1e-12)
        p = cross_val_predict(LogisticRegression(), x, data.labels, cv=5, method="predict_proba")
        auc[name] = roc_auc_score(data.labels, p[:, 1])
    print("AUC", {k: round(v, 3) for k, v in auc.items()})
    assert auc["random_slice"] + 0.1 < auc["lung_window"]
    assert auc["lung_window"] < auc["all_slices"]
    assert auc["random_slice"] < 0.85  # one slice is not enough


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_scans": 0}, "num_scans"),
        ({"slice_size": 16}, "slice_size"),
        ({"min_slices": 3}, "min_slices"),
        ({"min_slices": 40, "max_slices": 30}, "max_slices"),
        ({"positive_fraction": 1.5}, "positive_fraction"),
        ({"mixed_size_fraction": -0.1}, "mixed_size_fraction"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"dtype": "uint8"}, "dtype"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    args = {"num_scans": 2, "min_slices": 10, "max_slices": 12, **kwargs}
    with pytest.raises(ValueError, match=f"{match}.*Received"):
        simulate_chest_ct(**args)
