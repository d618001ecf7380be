import numpy as np
import pytest

from kerasmed.preprocessing import zscore_nonzero


def test_zscore_nonzero_by_hand():
    # brain values 1, 2, 3: mean 2, population std sqrt(2/3)
    out = zscore_nonzero(np.array([[0.0, 1.0], [2.0, 3.0]]))
    s = np.sqrt(2.0 / 3.0)
    np.testing.assert_allclose(out, [[0.0, -1.0 / s], [0.0, 1.0 / s]], rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == (2, 2)


def test_zscore_nonzero_keeps_background_and_standardises_the_brain(rng):
    volume = rng.normal(300.0, 40.0, (4, 5, 6))
    volume[:, 0] = 0.0  # background
    out = zscore_nonzero(volume.astype("float32"))
    assert np.all(out[:, 0] == 0)
    brain = out[:, 1:]
    assert abs(brain.mean()) < 1e-5 and abs(brain.std() - 1.0) < 1e-5
    expected = (volume[:, 1:] - volume[:, 1:].mean()) / volume[:, 1:].std()
    np.testing.assert_allclose(brain, expected, rtol=1e-4, atol=1e-5)


def test_zscore_nonzero_degenerate_inputs():
    np.testing.assert_array_equal(zscore_nonzero(np.zeros((2, 3))), np.zeros((2, 3)))
    np.testing.assert_array_equal(zscore_nonzero(np.full((2, 3), 7.0)), np.zeros((2, 3)))
    np.testing.assert_array_equal(zscore_nonzero(np.array([0, 5, 0], "int16")), [0, 0, 0])
    with pytest.raises(ValueError, match=r"NaN or infinite(.|\n)*Received: volume with 2 "):
        zscore_nonzero(np.array([1.0, np.nan, np.inf, 2.0]))
