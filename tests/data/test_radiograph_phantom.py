"""kerasmed.data.radiograph_phantom: synthetic radiographs of six body regions (paper 004)."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kerasmed.data import RADIOGRAPH_CLASSES, simulate_radiographs
from kerasmed.io import IrmaLabelMap, parse_irma_code
from kerasmed.preprocessing import pad_to_square, resize_image


@pytest.fixture(scope="module")
def phantom():
    return simulate_radiographs(480, seed=0)


def test_same_seed_same_images():
    a = simulate_radiographs(12, min_size=64, max_size=96, seed=3)
    b = simulate_radiographs(12, min_size=64, max_size=96, seed=3)
    c = simulate_radiographs(12, min_size=64, max_size=96, seed=4)
    np.testing.assert_array_equal(a.labels, b.labels)
    for x, y in zip(a.images, b.images):
        np.testing.assert_array_equal(x, y)
    assert any(x.shape != z.shape or not np.array_equal(x, z) for x, z in zip(a.images, c.images))


def test_class_counts_follow_the_imbalance(phantom):
    fractions = np.array([f for _, _, f in RADIOGRAPH_CLASSES])
    counts = np.bincount(phantom.labels, minlength=6)
    assert counts.sum() == 480 and np.all(np.abs(counts - fractions * 480) < 1)
    assert counts.max() / counts.min() > 6  # 36% chests, 5% pelves
    custom = simulate_radiographs(10, min_size=32, max_size=48, class_fractions=[1, 0, 1, 0, 0, 2])
    np.testing.assert_array_equal(np.bincount(custom.labels, minlength=6), [3, 0, 2, 0, 0, 5])
    # largest remainders: 3.33 / 3.33 / 3.33 -> one of them gets the leftover image
    even = simulate_radiographs(10, min_size=32, max_size=48, class_fractions=[1, 1, 1, 0, 0, 0])
    assert sorted(np.bincount(even.labels, minlength=6)[:3]) == [3, 3, 4]


def test_codes_parse_and_labels_are_the_label_maps(phantom):
    assert phantom.class_names == ("skull", "spine", "hand", "pelvis", "knee", "chest")
    for code in phantom.class_codes:
        parse_irma_code(code)
    anatomy = [parse_irma_code(c).anatomical[0] for c in phantom.class_codes]
    assert anatomy == ["2", "3", "4", "8", "9", "5"]  # cranium, spine, arm, pelvis, leg, chest
    np.testing.assert_array_equal(IrmaLabelMap(phantom.codes).encode(phantom.codes), phantom.labels)
    assert phantom.codes[0] == phantom.class_codes[phantom.labels[0]]


@pytest.mark.parametrize("bit_depth, dtype", [(8, np.uint8), (12, np.uint16), (16, np.uint16)])
def test_bit_depths(bit_depth, dtype):
    data = simulate_radiographs(12, min_size=48, max_size=64, bit_depth=bit_depth, seed=1)
    assert data.bit_depth == bit_depth
    assert all(image.dtype == dtype for image in data.images)
    top = max(int(image.max()) for image in data.images)
    assert 2 ** (bit_depth - 2) < top <= 2**bit_depth - 1
    # the same anatomy at every depth: 8-bit and 16-bit images agree to a grey level
    if bit_depth == 16:
        eight = simulate_radiographs(12, min_size=48, max_size=64, bit_depth=8, seed=1)
        for a, b in zip(eight.images, data.images):
            assert np.abs(b / 65535.0 * 255.0 - a).max() <= 0.51


def test_sizes_and_aspect_ratios_vary(phantom):
    heights, widths = phantom.sizes.T
    longer, shorter = np.maximum(heights, widths), np.minimum(heights, widths)
    assert longer.min() >= 128 and longer.max() <= 256 and np.all(shorter >= 0.5 * longer - 1)
    aspect = heights / widths
    assert aspect.min() < 0.6 and aspect.max() > 1.7
    assert 0.35 < np.mean(aspect > 1) < 0.65  # portrait and landscape alike
    assert len({tuple(s) for s in phantom.sizes}) > 400


def test_low_uneven_contrast_and_noise(phantom):
    spans = [np.percentile(im, 99) - np.percentile(im, 1) for im in phantom.images]
    assert np.median(spans) < 0.5 * 255  # the anatomy uses less than half the range
    # noise: neighbouring pixels of the flat background differ by about sqrt(2) * 0.01 * 255
    corner = np.stack([im[:6, :6].astype(float) for im in phantom.images[:50]])
    assert 1.5 < np.median(np.abs(np.diff(corner, axis=-1))) < 6


def _balanced_accuracy(features, labels):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return cross_val_score(model, features, labels, cv=folds, scoring="balanced_accuracy").mean()


def test_classes_differ_by_structure_not_by_size(phantom):
    heights, widths = phantom.sizes.T.astype(float)
    by_size = np.stack([heights, widths, heights / widths, np.log(heights * widths)], axis=1)
    pixels = []
    for image in phantom.images:
        small = resize_image(pad_to_square(image, "wrap"), 8, "area").astype(float)
        pixels.append(((small - small.mean()) / (small.std() + 1e-6)).ravel())
    size_score = _balanced_accuracy(by_size, phantom.labels)
    pixel_score = _balanced_accuracy(np.array(pixels), phantom.labels)
    # chance is 1 / 6 = 0.167; measured (seeds 0, 1): 0.165 from size, 0.69-0.71 from 8 x 8 pixels
    assert size_score < 0.25
    assert pixel_score > 0.55 and pixel_score > 2.5 * size_score


def test_argument_checks():
    with pytest.raises(ValueError, match="Received: num_images=0"):
        simulate_radiographs(0)
    with pytest.raises(ValueError, match="Received: min_size=8, max_size=64"):
        simulate_radiographs(2, min_size=8, max_size=64)
    with pytest.raises(ValueError, match="Received: bit_depth=10"):
        simulate_radiographs(2, bit_depth=10)
    with pytest.raises(ValueError, match=r"Received: class_fractions=\[1, 2\]"):
        simulate_radiographs(2, class_fractions=[1, 2])
    with pytest.raises(ValueError, match="Received: noise_std=2"):
        simulate_radiographs(2, noise_std=2)
