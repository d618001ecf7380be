"""Hostile values for the preprocessing functions (issue 13, group 3: non-finite values).

| group                                              | cases |
| -------------------------------------------------- | ----- |
| NaN / inf inside an array where it would spread    | 2 x 5 functions |
| non-finite scalar arguments                        | 7     |
| finite inputs still work, NaN in integers absent   | 2     |
"""

import numpy as np
import pytest

from kerasmed.preprocessing import (
    augment_paper,
    resize_slices,
    rotate_image,
    shift_image,
    window_hu,
    zscore_nonzero,
)
from kerasmed.preprocessing.intensity import check_finite

SPREADERS = {
    "zscore_nonzero": (zscore_nonzero, "volume"),
    "window_hu": (window_hu, "volume"),
    "resize_slices": (lambda a: resize_slices(a, 4), "slices"),
    "rotate_image": (lambda a: rotate_image(a, 10), "array"),
    "shift_image": (lambda a: shift_image(a, (1, 1)), "array"),
}


@pytest.mark.parametrize("value", [np.nan, -np.inf])
@pytest.mark.parametrize("name", sorted(SPREADERS))
def test_non_finite_voxels_are_refused_with_their_count(name, value):
    function, argument = SPREADERS[name]
    volume = np.zeros((2, 8, 8), np.float32)
    volume[1, 3, 3:5] = value
    with pytest.raises(
        ValueError, match=rf"`{argument}` holds NaN.*2 non-finite value\(s\) of 128"
    ):
        function(volume)


SCALARS = {
    "window_center_nan": (lambda: window_hu(np.zeros(3), center=np.nan), "center=nan"),
    "window_width_inf": (lambda: window_hu(np.zeros(3), width=np.inf), "width=inf"),
    "window_width_nan": (lambda: window_hu(np.zeros(3), width=np.nan), "width=nan"),
    "rotate_angle_nan": (lambda: rotate_image(np.zeros((4, 4)), np.nan), "angle=nan"),
    "shift_nan": (lambda: shift_image(np.zeros((4, 4)), (np.nan, 0)), r"shift=\[nan, 0.0\]"),
    "augment_max_angle_nan": (
        lambda: augment_paper(np.zeros((4, 4)), np.random.default_rng(0), max_angle=np.nan),
        "max_angle=nan",
    ),
    "zscore_strings": (lambda: zscore_nonzero(np.array(["a", "b"])), "volume.dtype=<U1"),
}


@pytest.mark.parametrize("case", sorted(SCALARS))
def test_non_finite_arguments_are_refused(case):
    call, received = SCALARS[case]
    with pytest.raises(ValueError, match=rf"Received: .*{received}"):
        call()


def test_finite_input_is_unchanged_by_the_checks():
    volume = np.array([[[0.0, 1.0], [3.0, 0.0]]], np.float32)
    np.testing.assert_array_equal(zscore_nonzero(volume), [[[0.0, -1.0], [1.0, 0.0]]])
    np.testing.assert_allclose(window_hu(np.array([0.0, 40.0, 80.0])), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(shift_image(volume[0], (0, 0)), volume[0])


def test_integer_arrays_pass_the_finite_check():
    check_finite(np.array([1, 2], np.int16), "labels")  # no error: integers are finite
    with pytest.raises(ValueError, match=r"`labels` holds NaN.*1 non-finite value\(s\) of 2"):
        check_finite(np.array([1.0, np.inf]), "labels")
