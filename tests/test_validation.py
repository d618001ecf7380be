import numpy as np
import pytest

from kerasmed.validation import (
    check_int_tuple,
    check_non_negative_int,
    check_one_of,
    check_positive_int,
    check_rate,
)


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_positive_int_accepts_integers_and_returns_python_int(value):
    result = check_positive_int(value, "units")
    assert result == value and type(result) is int


@pytest.mark.parametrize("value", [0, -2, 2.0, True, "3", None])
def test_positive_int_refuses_with_the_value(value):
    with pytest.raises(
        ValueError, match=rf"^`units` must be a positive integer\. Received: units={value!r}$"
    ):
        check_positive_int(value, "units")


def test_positive_int_allow_none():
    assert check_positive_int(None, "chunk", allow_none=True) is None
    with pytest.raises(ValueError, match="positive integer or None. Received: chunk=0"):
        check_positive_int(0, "chunk", allow_none=True)


def test_non_negative_int():
    assert check_non_negative_int(0, "num_labels") == 0
    with pytest.raises(ValueError, match="Received: num_labels=-1"):
        check_non_negative_int(-1, "num_labels")


@pytest.mark.parametrize("value", [0, 0.5, 1, 1.0])
def test_rate_accepts_unit_interval(value):
    assert check_rate(value, "dropout") == float(value)


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True, "0.1"])
def test_rate_refuses(value):
    with pytest.raises(
        ValueError, match=r"`dropout` must be a number in \[0, 1\]\. Received: dropout="
    ):
        check_rate(value, "dropout")


def test_one_of_keeps_bools_apart_from_ints():
    assert check_one_of(2, "version", (1, 2)) == 2
    with pytest.raises(ValueError, match=r"one of \(1, 2\)\. Received: version=True"):
        check_one_of(True, "version", (1, 2))


@pytest.mark.parametrize("value, expected", [(3, (3, 3)), ((2, 5), (2, 5)), ([1, 4], (1, 4))])
def test_int_tuple(value, expected):
    assert check_int_tuple(value, "kernel_size", 2) == expected


@pytest.mark.parametrize("value", [(3, 3, 3), 0, (2, 0), "33", 2.0])
def test_int_tuple_refuses(value):
    with pytest.raises(ValueError, match="Received: kernel_size="):
        check_int_tuple(value, "kernel_size", 2)
