"""The synthetic infant brain MRI of paper 002: arrays, determinism, anatomy and growth, the
WM/GM contrast inversion, noise level, and that the middle time point alone is ambiguous while
the sequence of time points is not (a per-pixel classifier)."""

import numpy as np
import pytest
import scipy.ndimage
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

from kerasmed.data import simulate_infant_brain
from kerasmed.data.infant_brain_phantom import CHANNEL_NAMES, CLASS_NAMES
from kerasmed.metrics import mean_pixel_accuracy

CSF, GM, WM = 1, 2, 3


@pytest.fixture(scope="module")
def clean():
    """8 subjects without noise and bias field, to measure the tissue contrasts."""
    return simulate_infant_brain(8, size=64, noise_std=0.0, bias_strength=0.0)


def test_arrays_and_ages():
    data = simulate_infant_brain(3, size=32)
    assert data.images.shape == (3, 5, 32, 32, 2) and data.images.dtype == np.float32
    assert data.labels.shape == (3, 5, 32, 32) and data.labels.dtype == np.int32
    assert len(data) == 3 and data.subjects.tolist() == [0, 1, 2]
    assert data.class_names == CLASS_NAMES and len(CLASS_NAMES) == 4
    assert data.channel_names == CHANNEL_NAMES == ("T1w", "T2w")
    # 0, 3, 6, 9, 12 months, each within 0.4 month
    assert np.abs(data.ages - [0, 3, 6, 9, 12]).max() <= 0.4 and data.ages.min() >= 0
    assert np.isfinite(data.images).all() and data.images.min() >= 0
    assert 0.8 < data.images.max() < 1.5  # 0-1 scale, easy to plot
    for t in range(5):  # every class at every time point of every subject
        for s in range(3):
            assert set(np.unique(data.labels[s, t])) == {0, 1, 2, 3}


def test_deterministic_per_subject():
    a = simulate_infant_brain(2, size=32, seed=3)
    b = simulate_infant_brain(3, size=32, seed=3)
    np.testing.assert_array_equal(a.images, b.images[:2])
    np.testing.assert_array_equal(a.labels, b.labels[:2])
    np.testing.assert_array_equal(a.ages, b.ages[:2])
    c = simulate_infant_brain(2, size=32, seed=4)
    assert not np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.labels[0], a.labels[1])  # subjects differ


def test_several_slices_per_subject():
    data = simulate_infant_brain(2, num_timepoints=3, size=32, num_slices=3)
    assert data.images.shape == (6, 3, 32, 32, 2)
    assert data.subjects.tolist() == [0, 0, 0, 1, 1, 1]
    z = data.slice_positions.reshape(2, 3)
    assert (np.diff(z, axis=1) > 0.2).all()  # bottom to top
    np.testing.assert_array_equal(data.ages[0], data.ages[2])  # one subject, same scan ages
    assert not np.array_equal(data.labels[0], data.labels[1])


def test_anatomy_and_growth(clean):
    labels = clean.labels  # (8, 5, 64, 64)
    fractions = np.stack([(labels == k).mean(axis=(2, 3)) for k in range(4)], -1)
    # the head in the field of view: WM, a GM ribbon and CSF, a background all around
    assert ((fractions[..., WM] > 0.1) & (fractions[..., WM] < 0.2)).all()
    assert ((fractions[..., GM] > 0.06) & (fractions[..., GM] < 0.15)).all()
    assert ((fractions[..., CSF] > 0.04) & (fractions[..., CSF] < 0.12)).all()
    assert (labels[..., 0, :] == 0).all() and (labels[..., :, 0] == 0).all()
    # the cortex thickens and folds more over the year: GM grows faster than WM
    assert (np.diff(fractions[..., GM], axis=1) > 0).all()
    brain = labels >= GM
    # the GM is a ribbon around the WM: every WM region touches GM or CSF only, never background
    wm_border = scipy.ndimage.binary_dilation(labels == WM, structure=np.ones((1, 1, 3, 3)))
    assert not (wm_border & (labels == 0)).any()
    # growth: the brain area increases over the year for every subject (by 8-28% in area)
    area = brain.sum(axis=(2, 3)).astype(float)
    growth = area[:, -1] / area[:, 0]
    assert ((growth > 1.05) & (growth < 1.3)).all()
    # ... while the brain's pixels of one scan mostly stay brain in the next one
    overlap = (brain[:, 1:] & brain[:, :-1]).sum(axis=(2, 3)) / brain[:, :-1].sum(axis=(2, 3))
    assert overlap.min() > 0.95


def pure_mean(image, labels, k):
    """Mean intensity of the pixels whose 3x3 neighbourhood is all class k (no partial volume)."""
    return image[scipy.ndimage.binary_erosion(labels == k)].mean()


def test_contrast_inverts_with_myelination(clean):
    """WM - GM: T1w negative at 0 months, positive at 12; T2w the reverse; ~0 at 6 months."""
    contrast = np.zeros((len(clean), 5, 2))  # (subjects, time points, channels)
    for s, t, c in np.ndindex(contrast.shape):
        image, labels = clean.images[s, t, ..., c], clean.labels[s, t]
        contrast[s, t, c] = pure_mean(image, labels, WM) - pure_mean(image, labels, GM)
    t1, t2 = contrast[..., 0], contrast[..., 1]
    assert (t1[:, 0] < -0.06).all() and (t1[:, 4] > 0.06).all()
    assert (t2[:, 0] > 0.06).all() and (t2[:, 4] < -0.06).all()
    assert (np.diff(t1, axis=1) > 0).all() and (np.diff(t2, axis=1) < 0).all()  # monotone
    middle = contrast[:, 2]  # 6 months: nearly isointense, the sign varies between subjects
    assert np.abs(middle).max() < 0.07
    assert np.abs(middle).mean() < 0.3 * np.abs(contrast[:, [0, 4]]).mean()
    assert (middle > 0).any() and (middle < 0).any()
    # CSF: dark on T1w, bright on T2w at every age
    for s in range(len(clean)):
        for t in range(5):
            image, labels = clean.images[s, t], clean.labels[s, t]
            assert (
                pure_mean(image[..., 0], labels, CSF) < pure_mean(image[..., 0], labels, GM) - 0.15
            )
            assert (
                pure_mean(image[..., 1], labels, CSF) > pure_mean(image[..., 1], labels, GM) + 0.2
            )


def test_rician_noise_level():
    clean = simulate_infant_brain(1, size=32, noise_std=0.0, bias_strength=0.0)
    assert (clean.images[0, :, :3, :3] == 0).all()  # air, away from the head
    noisy = simulate_infant_brain(1, size=32, noise_std=0.05, bias_strength=0.0)
    corners = noisy.images[0][:, [0, 0, -1, -1], [0, -1, 0, -1]]  # the 4 corner pixels
    air = np.concatenate([noisy.images[0, :, :4, :4], noisy.images[0, :, -4:, -4:]]).ravel()
    assert (clean.images[0][:, [0, 0, -1, -1], [0, -1, 0, -1]] == 0).all() and corners.all()
    # 4x4 corner patches, air only: Rayleigh-distributed, mean sigma sqrt(pi/2)
    assert air.mean() == pytest.approx(0.05 * np.sqrt(np.pi / 2), rel=0.08)


def test_middle_time_point_alone_is_ambiguous():
    """A per-pixel classifier (QDA on T1w/T2w intensities) of the 6-month labels, trained on 6
    subjects and tested on 3: from the 6-month scan alone it cannot tell WM from GM; from the
    same pixel in all 5 scans (the intensity trajectory) it can."""
    data = simulate_infant_brain(9, size=64, seed=1)
    train, test = slice(0, 6), slice(6, 9)
    target = data.labels[:, 2]

    def mpa(time_points):
        features = data.images[:, time_points].transpose(0, 2, 3, 1, 4).reshape(9, 64, 64, -1)
        classifier = QuadraticDiscriminantAnalysis(reg_param=1e-3)
        classifier.fit(features[train].reshape(-1, features.shape[-1]), target[train].ravel())
        predicted = classifier.predict(features[test].reshape(-1, features.shape[-1]))
        return mean_pixel_accuracy(target[test], predicted.reshape(3, 64, 64), 4)

    middle, first, last, sequence = mpa([2]), mpa([0]), mpa([4]), mpa([0, 1, 2, 3, 4])
    tissue = slice(GM, WM + 1)
    assert sequence.mean > middle.mean + 0.12  # measured: 0.96 vs 0.77
    assert sequence.per_class[tissue].mean() > 0.85
    assert middle.per_class[tissue].mean() < 0.65  # GM vs WM near chance at 6 months
    # the contrast exists at 0 and 12 months: the middle time point is the hard one
    assert min(first.mean, last.mean) > middle.mean


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Received: size=16"):
        simulate_infant_brain(1, size=16)
    with pytest.raises(ValueError, match="Received: num_subjects=0"):
        simulate_infant_brain(0)
    with pytest.raises(ValueError, match="Received: noise_std=-1"):
        simulate_infant_brain(1, noise_std=-1)
