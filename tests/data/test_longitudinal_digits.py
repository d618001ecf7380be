import numpy as np
import pytest

from kerasmed.data.longitudinal_digits import (
    ALLOWED_DELTAS,
    LABEL_NAMES,
    TRANSITION_TABLE,
    allowed_next_digits,
    longitudinal_inputs,
    parse_delta_set,
    simulate_longitudinal_digits,
)
from kerasmed.io.sequences import LongitudinalSequences


def r(a, b):
    return set(range(a, b + 1))


# Table 2 of the paper, every cell expanded by hand (rows: S_t, columns: S_t+1).
HAND_TABLE = {
    "0": {"0": r(7, 10), "6": {5}, "8": {3, 7}, "3": {1, 2, 7}, "9": set(), "null": r(1, 6)},
    "6": {"0": {1, 2}, "6": r(1, 3) | r(5, 9), "8": {3, 6}, "3": {5}, "9": set(), "null": {4, 10}},
    "8": {"0": {1}, "6": {1, 2, 10}, "8": r(2, 7), "3": {3, 5}, "9": set(), "null": r(8, 10)},
    "3": {
        "0": set(),
        "6": r(1, 5),
        "8": r(6, 10),
        "3": {1, 2, 6, 7, 8},
        "9": set(),
        "null": r(1, 10),
    },
    "9": {"0": set(), "6": {1, 2, 3}, "8": {5, 6, 7}, "3": set(), "9": r(1, 9), "null": {10}},
    "null": {"0": {3, 4}, "6": {5}, "8": {10}, "3": set(), "9": {6, 7}, "null": {1, 2, 3, 8, 9}},
}


def hand_allowed(present, delta):
    """The documented reading, written against HAND_TABLE: 9 on its own, others by union."""
    rows = [d for d in present if d != "9"] or ["null"]
    allowed = {d for d in "0683" if any(delta in HAND_TABLE[row][d] for row in rows)}
    if delta in HAND_TABLE["9" if "9" in present else "null"]["9"]:
        allowed.add("9")
    return allowed


def test_parse_delta_set():
    assert parse_delta_set("7:10") == {7, 8, 9, 10}
    assert parse_delta_set("1:3,5:9") == {1, 2, 3, 5, 6, 7, 8, 9}
    assert parse_delta_set("1,2,6:8") == {1, 2, 6, 7, 8}
    assert parse_delta_set("5") == {5}
    assert parse_delta_set("-") == frozenset()
    for bad in ("3:1", "a:b", "1;2"):
        with pytest.raises(ValueError, match="Received: text="):
            parse_delta_set(bad)


def test_table_matches_the_paper_cell_by_cell():
    assert set(TRANSITION_TABLE) == set(HAND_TABLE)
    for row, cells in HAND_TABLE.items():
        assert list(TRANSITION_TABLE[row]) == ["0", "6", "8", "3", "9", "null"]
        for col, expected in cells.items():
            assert ALLOWED_DELTAS[row][col] == expected, (row, col)


def test_allowed_next_digits_hand_cases():
    assert allowed_next_digits(set(), 1) == ()
    assert allowed_next_digits(set(), 3) == ("0",)
    assert allowed_next_digits(set(), 5) == ("6",)
    assert allowed_next_digits(set(), 6) == ("9",)
    assert allowed_next_digits(set(), 10) == ("8",)
    # 9 alone: the others follow the null row (8 at delta 10); 9 stays for 1..9 only.
    assert allowed_next_digits({"9"}, 10) == ("8",)
    assert allowed_next_digits({"9"}, 4) == ("0", "9")
    # union of the 6 and 8 rows at delta 10: only 8 -> 6.
    assert allowed_next_digits({"6", "8"}, 10) == ("6",)
    assert allowed_next_digits({"3", "9"}, 7) == ("8", "3", "9")
    for present in (set(), {"0"}, {"6", "3"}, {"8", "9"}, set(LABEL_NAMES)):
        for delta in range(1, 11):
            assert set(allowed_next_digits(present, delta)) == hand_allowed(present, delta)
    with pytest.raises(ValueError, match="present"):
        allowed_next_digits({"7"}, 3)


def test_simulation_structure_and_table_transitions():
    data = simulate_longitudinal_digits(40, image_size=16, seed=3)
    assert isinstance(data, LongitudinalSequences)
    assert data.label_names == ("0", "6", "8", "3", "9") and data.delta_unit == "steps"
    assert len(data) == 40 and len(data.lengths) == 40
    transitions = 0
    for x, y, d in zip(data.images, data.labels, data.deltas):
        t = len(x)
        assert 10 <= t <= 100
        assert x.shape == (t, 16, 16) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.shape == (t, 5) and set(np.unique(y)) <= {0.0, 1.0}
        assert d[0] == 0 and not y[0].any()  # S0: no digit, no lapse
        assert set(np.unique(d[1:])) <= set(range(1, 11))
        for k in range(1, t):
            present = {LABEL_NAMES[i] for i in np.flatnonzero(y[k - 1])}
            drawn = {LABEL_NAMES[i] for i in np.flatnonzero(y[k])}
            assert drawn <= hand_allowed(present, int(d[k]))
            transitions += 1
    assert transitions > 300


def test_probability_one_draws_every_allowed_digit_and_zero_none():
    data = simulate_longitudinal_digits(8, image_size=16, digit_probabilities=[1.0] * 5, seed=1)
    for y, d in zip(data.labels, data.deltas):
        for k in range(1, len(y)):
            present = {LABEL_NAMES[i] for i in np.flatnonzero(y[k - 1])}
            assert {LABEL_NAMES[i] for i in np.flatnonzero(y[k])} == hand_allowed(
                present, int(d[k])
            )
    none = simulate_longitudinal_digits(
        4, image_size=16, digit_probabilities={d: 0.0 for d in LABEL_NAMES}
    )
    assert not any(y.any() for y in none.labels)


def test_digit_frequencies_follow_probabilities_and_deltas_are_uniform():
    probs = {"0": 0.2, "6": 0.9, "8": 0.5, "3": 0.7, "9": 0.9}
    data = simulate_longitudinal_digits(150, image_size=12, digit_probabilities=probs, seed=0)
    hits, chances = np.zeros(5), np.zeros(5)
    for y, d in zip(data.labels, data.deltas):
        for k in range(1, len(y)):
            present = {LABEL_NAMES[i] for i in np.flatnonzero(y[k - 1])}
            allowed = hand_allowed(present, int(d[k]))
            for i, name in enumerate(LABEL_NAMES):
                if name in allowed:
                    chances[i] += 1
                    hits[i] += y[k, i]
    np.testing.assert_allclose(hits / chances, [probs[d] for d in LABEL_NAMES], atol=0.06)
    deltas = np.concatenate([d[1:] for d in data.deltas])
    np.testing.assert_allclose(
        np.bincount(deltas.astype(int), minlength=11)[1:] / len(deltas), 0.1, atol=0.02
    )
    # lengths: 10 + geometric with mean 10 (sd ~10.5; 150 sequences -> standard error ~0.9)
    assert abs(data.lengths.mean() - 20.0) < 3.0


def test_same_seed_same_data_and_prefix_stable():
    a = simulate_longitudinal_digits(5, image_size=16, seed=7)
    b = simulate_longitudinal_digits(5, image_size=16, seed=7)
    c = simulate_longitudinal_digits(3, image_size=16, seed=7)
    d = simulate_longitudinal_digits(5, image_size=16, seed=8)
    for i in range(5):
        np.testing.assert_array_equal(a.images[i], b.images[i])
        np.testing.assert_array_equal(a.labels[i], b.labels[i])
        np.testing.assert_array_equal(a.deltas[i], b.deltas[i])
    for i in range(3):
        np.testing.assert_array_equal(a.images[i], c.images[i])
    assert not all(len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a.images, d.images))


def test_custom_glyphs_without_noise_show_exactly_the_labels():
    square = np.ones((6, 6), dtype="float32")
    glyphs = {int(d): [square] for d in LABEL_NAMES}
    data = simulate_longitudinal_digits(
        3,
        image_size=30,
        noise=0.0,
        glyphs=glyphs,
        background=0.2,
        contrast=0.5,
        max_rotation=0.0,
        seed=2,
    )
    for x, y in zip(data.images, data.labels):
        for image, labels in zip(x, y):
            if labels.any():
                # an axis-aligned square of side >= 8 px keeps full intensity in its interior
                np.testing.assert_allclose(image.max(), 0.7, atol=1e-5)
            else:
                np.testing.assert_allclose(image, 0.2, atol=1e-6)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="missing"):
        simulate_longitudinal_digits(1, glyphs={0: [np.ones((4, 4))]})
    with pytest.raises(ValueError, match="digit_probabilities"):
        simulate_longitudinal_digits(1, digit_probabilities=[0.5, 0.5])
    with pytest.raises(ValueError, match="digit_probabilities"):
        simulate_longitudinal_digits(1, digit_probabilities=[0.5, 0.5, 0.5, 0.5, 1.5])
    with pytest.raises(ValueError, match="mean_length=5"):
        simulate_longitudinal_digits(1, min_length=10, mean_length=5)
    with pytest.raises(ValueError, match="num_sequences=0"):
        simulate_longitudinal_digits(0)


def test_longitudinal_inputs_previous_labels_and_encoded_time():
    data = simulate_longitudinal_digits(3, image_size=16, min_length=4, mean_length=6, seed=4)
    inputs, targets = longitudinal_inputs(data, "one_hot", max_delta=10)
    for i in range(3):
        t = data.lengths[i]
        assert inputs["images"][i].shape == (t, 16, 16, 1)
        np.testing.assert_array_equal(inputs["previous_labels"][i][0], 0.0)
        np.testing.assert_array_equal(inputs["previous_labels"][i][1:], data.labels[i][:-1])
        np.testing.assert_array_equal(inputs["time"][i].argmax(-1), data.deltas[i].astype(int))
        assert inputs["time"][i].shape == (t, 11)
        np.testing.assert_array_equal(targets[i], data.labels[i])
    raw, _ = longitudinal_inputs(data, channel_axis=False)
    np.testing.assert_array_equal(raw["time"][0][:, 0], data.deltas[0])
    assert raw["images"][0].ndim == 3
