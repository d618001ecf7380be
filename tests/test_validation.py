import numpy as np
import pytest

from kerasmed.validation import (
    check_binary_array,
    check_each_one_of,
    check_finite_array,
    check_finite_number,
    check_int_tuple,
    check_non_negative_int,
    check_one_of,
    check_positive_int,
    check_rate,
    check_size_range,
    check_whole_number,
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


@pytest.mark.parametrize("value, expected", [(3, 3), (3.0, 3), (np.int64(2), 2)])
def test_whole_number_accepts_integral_values(value, expected):
    result = check_whole_number(value, "batch_size")
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value", [0, 1.5, float("nan"), float("inf"), True, "2"])
def test_whole_number_refuses_with_the_value(value):
    with pytest.raises(ValueError, match=rf"Received: batch_size={value!r}$"):
        check_whole_number(value, "batch_size")


def test_whole_number_minimum_and_none():
    assert check_whole_number(None, "n", allow_none=True) is None
    with pytest.raises(ValueError, match=r"an integer >= 2\. Received: n=1"):
        check_whole_number(1, "n", minimum=2)


def test_size_range_names_both_bounds():
    assert check_size_range(16.0, 32, "min_size", "max_size", 16) == (16, 32)
    with pytest.raises(ValueError, match=r"16 <= min_size <= max_size\. Received: min_size=8"):
        check_size_range(8, 64, "min_size", "max_size", 16)
    with pytest.raises(ValueError, match="Received: min_size=nan, max_size=4"):
        check_size_range(float("nan"), 4, "min_size", "max_size")


def test_finite_number_and_each_one_of():
    assert check_finite_number(np.float32(0.5), "t") == 0.5
    with pytest.raises(ValueError, match="finite number. Received: t=inf"):
        check_finite_number(float("inf"), "t")
    assert check_each_one_of(["a", "b"], "models", ("a", "b")) == ("a", "b")
    with pytest.raises(ValueError, match="Received: models='c'"):
        check_each_one_of(["a", "c"], "models", ("a", "b"))


def test_array_checks_name_the_first_bad_entry():
    np.testing.assert_array_equal(check_finite_array([1, 2], "x"), [1, 2])
    with pytest.raises(ValueError, match=r"2 of 4 values are not\. Received: x\[0, 1\]=nan$"):
        check_finite_array([[0.0, np.nan], [np.inf, 1.0]], "x")
    with pytest.raises(ValueError, match=r"must hold numbers\. Received: x with dtype <U1"):
        check_finite_array(["a"], "x")
    with pytest.raises(ValueError, match=r"must not be empty\. Received: x\.shape=\(0,\)"):
        check_finite_array([], "x", allow_empty=False)
    assert check_binary_array([True, False], "y").dtype == bool
    with pytest.raises(ValueError, match=r"binary 0/1 labels .* Received: y\[2\]=-1$"):
        check_binary_array([0, 1, -1], "y")
