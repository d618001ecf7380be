import keras
import numpy as np
import pytest

from kerasmed.preprocessing.ct import WINDOWS, max_filter_downsample, window_hu


def test_window_hu_brain_default_by_hand():
    hu = np.array([-1000.0, 0.0, 20.0, 40.0, 60.0, 80.0, 1000.0])
    np.testing.assert_allclose(window_hu(hu), [0, 0, 0.25, 0.5, 0.75, 1, 1])
    np.testing.assert_allclose(window_hu(hu, out_range=(-1, 1)), [-1, -1, -0.5, 0, 0.5, 1, 1])
    assert window_hu(hu).dtype == np.float32


def test_window_presets():
    assert WINDOWS["brain"] == {"center": 40.0, "width": 80.0}
    assert WINDOWS["subdural"] == {"center": 80.0, "width": 200.0}
    assert WINDOWS["bone"] == {"center": 600.0, "width": 2800.0}
    assert WINDOWS["lung"] == {"center": -600.0, "width": 1500.0}
    # bone: [-800, 2000] -> [0, 1]; 1300 is three quarters of the way.
    np.testing.assert_allclose(
        window_hu(np.array([-900.0, -800.0, 1300.0, 2500.0]), **WINDOWS["bone"]), [0, 0, 0.75, 1]
    )
    volume = np.full((2, 3, 3), -150.0)
    np.testing.assert_allclose(window_hu(volume, **WINDOWS["lung"]), 0.8)  # (-150 + 1350) / 1500


def test_window_validation():
    with pytest.raises(ValueError, match="Received: width=0"):
        window_hu(np.zeros(3), width=0)
    with pytest.raises(ValueError, match=r"Received: out_range=\(1, 0\)"):
        window_hu(np.zeros(3), out_range=(1, 0))


def test_max_filter_2d_by_hand():
    image = np.array(
        [
            [1, 5, 2, 0],
            [3, 4, 7, 1],
            [0, 0, 9, 8],
            [6, 2, 8, 9],
        ]
    )
    np.testing.assert_array_equal(max_filter_downsample(image), [[5, 7], [6, 9]])
    assert max_filter_downsample(np.zeros((512, 512), np.int16)).shape == (256, 256)
    assert max_filter_downsample(np.zeros((512, 512), np.int16)).dtype == np.int16


def test_max_filter_3d_by_hand():
    volume = np.zeros((2, 4, 4))
    volume[1, 0, 1] = 7.0  # block (0, 0, 0)
    volume[0, 3, 2] = 3.0  # block (0, 1, 1)
    volume[0, 2, 3] = -1.0
    expected = np.zeros((1, 2, 2))
    expected[0, 0, 0], expected[0, 1, 1] = 7.0, 3.0
    np.testing.assert_array_equal(max_filter_downsample(volume), expected)
    # (1, 2, 2): a 2x2 filter on every slice separately.
    per_slice = np.stack([max_filter_downsample(s) for s in volume])
    np.testing.assert_array_equal(max_filter_downsample(volume, (1, 2, 2)), per_slice)


def test_max_filter_odd_sizes_by_hand():
    image = np.array(
        [
            [1, 2, 3, 4, 5],
            [6, 7, 8, 9, 10],
            [11, 12, 13, 14, 15],
        ]
    )
    np.testing.assert_array_equal(
        max_filter_downsample(image, odd="pad"), [[7, 9, 10], [12, 14, 15]]
    )
    np.testing.assert_array_equal(max_filter_downsample(image, odd="crop"), [[7, 9]])
    negative = -image  # the partial blocks keep their own maximum, not a padding value
    np.testing.assert_array_equal(max_filter_downsample(negative), [[-1, -3, -5], [-11, -13, -15]])


def test_max_filter_equals_keras_max_pool():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(2, 6, 8, 1)).astype("float32")
    pooled = keras.ops.convert_to_numpy(keras.ops.max_pool(images, 2, strides=2, padding="valid"))
    ours = np.stack([max_filter_downsample(image, (2, 2, 1)) for image in images])
    np.testing.assert_array_equal(ours, pooled)


def test_max_filter_validation():
    with pytest.raises(ValueError, match=r"Received: factor=\(2, 2\)"):
        max_filter_downsample(np.zeros((4, 4, 4)), (2, 2))
    with pytest.raises(ValueError, match="Received: factor=0"):
        max_filter_downsample(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="Received: odd='floor'"):
        max_filter_downsample(np.zeros((4, 4)), odd="floor")
