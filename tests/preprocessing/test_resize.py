import numpy as np
import pytest

from kerasmed.preprocessing import resize_slices


def test_area_shrink_is_the_block_mean_and_nearest_repeats():
    slices = np.arange(2 * 4 * 6, dtype="float32").reshape(2, 4, 6)
    area = resize_slices(slices, (2, 3), "area")
    np.testing.assert_allclose(area, slices.reshape(2, 2, 2, 3, 2).mean(axis=(2, 4)), atol=1e-5)
    labels = np.array([[[0, 1], [2, 3]]], dtype="int16")
    up = resize_slices(labels, 4, "nearest")
    np.testing.assert_array_equal(up[0], np.repeat(np.repeat(labels[0], 2, 0), 2, 1))
    assert up.dtype == np.int16 and area.dtype == np.float32


def test_linear_samples_at_pixel_centres():
    # width 2 -> 4: output centres fall at source x = -0.25, 0.25, 0.75, 1.25 (edges clamped)
    out = resize_slices(np.array([[[0.0, 2.0]]]), (1, 4), "linear")
    np.testing.assert_allclose(out[0, 0], [0.0, 0.5, 1.5, 2.0])
    ramp = np.tile(np.arange(4, dtype="float64"), (3, 4, 1))  # (3, 4, 4), columns 0..3
    np.testing.assert_allclose(resize_slices(ramp, (4, 4), "linear"), ramp)  # same size
    wide = resize_slices(np.full((1, 3, 3), 5.0, "float32"), (7, 2))
    np.testing.assert_allclose(wide, 5.0)
    assert wide.shape == (1, 7, 2)


def test_channels_last_are_resized_independently(rng):
    images = rng.random((3, 6, 8, 2)).astype("float32")
    both = resize_slices(images, (3, 4), "area")
    assert both.shape == (3, 3, 4, 2)
    for c in range(2):
        one = resize_slices(images[..., c], (3, 4), "area")
        np.testing.assert_allclose(both[..., c], one, rtol=1e-6)
    one = resize_slices(images[..., :1], (3, 4), "area")  # a single channel keeps its axis
    assert one.shape == (3, 3, 4, 1)
    np.testing.assert_allclose(one[..., 0], both[..., 0], rtol=1e-6)
    assert resize_slices(np.zeros((0, 6, 8), "float32"), 2).shape == (0, 2, 2)


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"Received: size=0"):
        resize_slices(np.zeros((1, 4, 4), "float32"), 0)
    with pytest.raises(ValueError, match=r"Received: interpolation='cubic'"):
        resize_slices(np.zeros((1, 4, 4), "float32"), 2, "cubic")
    with pytest.raises(ValueError, match=r"Received: slices.shape=\(4, 4\)"):
        resize_slices(np.zeros((4, 4), "float32"), 2)
    with pytest.raises(ValueError, match=r"Received: slices.dtype=int64"):
        resize_slices(np.zeros((1, 4, 4), "int64"), 2, "nearest")
