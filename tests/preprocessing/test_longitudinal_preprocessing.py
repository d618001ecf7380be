import numpy as np
import pytest

from kerasmed.preprocessing.longitudinal import (
    encode_time_deltas,
    previous_labels,
    time_deltas,
    time_features_for,
)


def test_previous_labels_shifts_one_step_with_zeros_first():
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]], dtype="float32")
    expected = np.array([[0, 0, 0], [1, 0, 1], [0, 1, 0]], dtype="float32")
    np.testing.assert_array_equal(previous_labels(labels), expected)
    batch = np.stack([labels, labels[::-1]])
    out = previous_labels(batch)
    np.testing.assert_array_equal(out[0], expected)
    np.testing.assert_array_equal(out[1], [[0, 0, 0], [1, 1, 0], [0, 1, 0]])
    assert out.dtype == batch.dtype
    with pytest.raises(ValueError, match="labels.shape"):
        previous_labels(np.zeros(4))


def test_time_deltas_from_numbers_dates_and_strings():
    np.testing.assert_allclose(time_deltas([3.0, 10.0, 10.0, 40.0]), [0, 7, 0, 30])
    dates = ["2012-01-01", "2012-01-15", "2012-03-15", "2013-03-15"]
    # 2012 is a leap year: Jan 15 -> Mar 15 = 16 + 29 + 15 = 60 days; Mar 15 2012 -> 2013 = 365.
    np.testing.assert_allclose(time_deltas(dates), [0, 14, 60, 365])
    np.testing.assert_allclose(
        time_deltas(np.array(dates, dtype="datetime64[D]"), unit="weeks"),
        [0, 2, 60 / 7, 365 / 7],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        time_deltas(dates, unit="years"), [0, 14 / 365.25, 60 / 365.25, 365 / 365.25], rtol=1e-6
    )
    np.testing.assert_allclose(
        time_deltas(dates, unit="months"), np.array([0, 14, 60, 365]) * 12 / 365.25, rtol=1e-6
    )
    np.testing.assert_allclose(time_deltas([0, 12, 36], unit=12.0), [0, 1, 2])
    np.testing.assert_allclose(time_deltas(["2012-01-01T00:00", "2012-01-01T12:00"]), [0, 0.5])
    batch = time_deltas(np.array([[0, 1, 3], [5, 5, 9]]))
    np.testing.assert_allclose(batch, [[0, 1, 2], [0, 0, 4]])


def test_time_deltas_rejects_unsorted_and_bad_units():
    with pytest.raises(ValueError, match="sorted"):
        time_deltas([5, 3])
    with pytest.raises(ValueError, match="Received: unit='fortnights'"):
        time_deltas([0, 1], unit="fortnights")
    with pytest.raises(ValueError, match="unit=-1"):
        time_deltas([0, 1], unit=-1)
    with pytest.raises(ValueError, match="ISO"):
        time_deltas(["2012-01-01", "yesterday"])


def test_encode_raw_scaled_log():
    deltas = np.array([[0.0, 2.0, 30.0], [0.0, 9.0, 1.0]])
    raw = encode_time_deltas(deltas)
    assert raw.shape == (2, 3, 1) and raw.dtype == np.float32
    np.testing.assert_array_equal(raw[..., 0], deltas)
    np.testing.assert_allclose(
        encode_time_deltas(deltas, "scaled", scale=30.0)[..., 0], deltas / 30.0, rtol=1e-6
    )
    np.testing.assert_allclose(
        encode_time_deltas(deltas, "log")[..., 0], np.log(1.0 + deltas), rtol=1e-6
    )
    np.testing.assert_allclose(
        encode_time_deltas(deltas, "log", scale=2.0)[..., 0], np.log(1.0 + deltas / 2.0), rtol=1e-6
    )
    for encoding in ("raw", "scaled", "log"):
        assert time_features_for(encoding) == 1


def test_encode_one_hot_integer_columns_overflow_to_last():
    out = encode_time_deltas(np.array([0, 3, 10, 12]), "one_hot", max_delta=10)
    assert out.shape == (4, 11) and time_features_for("one_hot", max_delta=10) == 11
    expected = np.zeros((4, 11), dtype="float32")
    expected[[0, 1, 2, 3], [0, 3, 10, 10]] = 1.0
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match=r"deltas\[1\]=2.5"):
        encode_time_deltas(np.array([0.0, 2.5]), "one_hot", max_delta=10)


def test_encode_one_hot_buckets_and_bin_edges():
    # Equal-width buckets over [0, 100): edges 25, 50, 75; 100 and beyond go to the last one.
    out = encode_time_deltas(
        np.array([0.0, 24.9, 25.0, 60.0, 99.0, 400.0]), "one_hot", max_delta=100, num_buckets=4
    )
    np.testing.assert_array_equal(out.argmax(-1), [0, 0, 1, 2, 3, 3])
    np.testing.assert_array_equal(out.sum(-1), 1.0)
    assert time_features_for("one_hot", max_delta=100, num_buckets=4) == 4
    edges = [7, 30, 180]
    out = encode_time_deltas(
        np.array([0.0, 6.9, 7.0, 90.0, 180.0, 5000.0]), "one_hot", bin_edges=edges
    )
    np.testing.assert_array_equal(out.argmax(-1), [0, 0, 1, 2, 3, 3])
    assert out.shape == (6, 4) and time_features_for("one_hot", bin_edges=edges) == 4


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_encode_rejects_negative_nan_inf_naming_deltas(bad):
    with pytest.raises(
        ValueError, match=r"Received: deltas\[0, 2\]=" + str(bad).replace("-", r"\-")
    ):
        encode_time_deltas(np.array([[0.0, 1.0, bad]]), "raw")


def test_encode_rejects_unknown_encoding_and_bad_options():
    with pytest.raises(ValueError, match="encoding='sine'"):
        encode_time_deltas(np.zeros(3), "sine")
    with pytest.raises(ValueError, match="bin_edges"):
        encode_time_deltas(np.zeros(3), "one_hot", bin_edges=[5, 2])
    with pytest.raises(ValueError, match="max_delta=2.5"):
        encode_time_deltas(np.zeros(3), "one_hot", max_delta=2.5)
    with pytest.raises(ValueError, match="scale=0"):
        encode_time_deltas(np.zeros(3), "scaled", scale=0)
