"""Hostile inputs to the sequence datasets of `kerasmed.data` (issue 13, group 3).

`SequenceDataset` refuses NaN/inf in an input (a time lapse, an image), a target or a sample
weight when it is built, naming the input, the sequence and the step (`longitudinal_inputs`
names the sequence's index and id of a NaN lapse); the balanced samplers
check their labels up front and each slice/volume when it is drawn. Every case asserts the
exception type and the ``Received: ...`` part of the message (argument, index and value).

| group                                                | cases |
| ---------------------------------------------------- | ----- |
| SequenceDataset: non-finite inputs, targets, weights | 7     |
| longitudinal_inputs: non-finite time lapses          | 2     |
| SequenceDataset / pad_to_batch: bad counts, shapes   | 6     |
| BalancedSliceDataset: labels, lengths, NaN slices    | 6     |
| BalancedVolumeDataset: labels, counts, NaN volumes   | 7     |
| finite inputs are unchanged                          | 2     |
| total                                                | 30    |
"""

import numpy as np
import pytest

from kerasmed.data import (
    BalancedSliceDataset,
    BalancedVolumeDataset,
    SequenceDataset,
    longitudinal_inputs,
    pad_to_batch,
    simulate_longitudinal_digits,
)

NAN, INF = float("nan"), float("inf")


def _images():
    return [np.ones((2, 3)), np.ones((3, 3))]


def _times(bad_value=None, sequence=1, step=2):
    times = [np.zeros((2, 1)), np.array([[0.0], [1.0], [3.0]])]
    if bad_value is not None:
        times[sequence][step, 0] = bad_value
    return times


SEQUENCE_NON_FINITE = [
    (
        "nan time lapse",
        lambda: SequenceDataset({"x": _images(), "time": _times(NAN)}, [0, 1]),
        "inputs['time'][1][2, 0]=nan",
    ),
    (
        "inf time lapse",
        lambda: SequenceDataset({"x": _images(), "time": _times(INF, 0, 1)}, [0, 1]),
        "inputs['time'][0][1, 0]=inf",
    ),
    (
        "nan in a list input",
        lambda: SequenceDataset([np.ones((2, 1)), np.array([[1.0], [NAN]])]),
        "inputs[1][1, 0]=nan",
    ),
    ("nan per-sequence target", lambda: SequenceDataset(_images(), [0.0, NAN]), "targets[1]=nan"),
    (
        "inf per-step target",
        lambda: SequenceDataset(_images(), [np.zeros(2), np.array([0.0, INF, 1.0])], target="all"),
        "targets[1][1]=inf",
    ),
    (
        "nan sequence weight",
        lambda: SequenceDataset(_images(), [0, 1], sample_weights=[1.0, NAN]),
        "sample_weights[1]=nan",
    ),
    (
        "nan step weight",
        lambda: SequenceDataset(
            _images(),
            [np.zeros(2), np.zeros(3)],
            target="all",
            sample_weights=[np.ones(2), np.array([1.0, NAN, 1.0])],
        ),
        "sample_weights[1][1]=nan",
    ),
]


@pytest.mark.parametrize(
    "case, build, received", SEQUENCE_NON_FINITE, ids=[c[0] for c in SEQUENCE_NON_FINITE]
)
def test_sequence_dataset_refuses_non_finite_values_naming_the_item(case, build, received):
    with pytest.raises(ValueError, match="must hold finite numbers") as info:
        build()
    assert f"Received: {received}" in str(info.value)


SEQUENCE_BAD_ARGUMENTS = [
    ("batch_size nan", lambda: SequenceDataset(_images(), batch_size=NAN), "batch_size=nan"),
    ("batch_size fraction", lambda: SequenceDataset(_images(), batch_size=1.5), "batch_size=1.5"),
    ("max_length nan", lambda: SequenceDataset(_images(), max_length=NAN), "max_length=nan"),
    (
        "pad_to_batch max_length inf",
        lambda: pad_to_batch(_images(), max_length=INF),
        "max_length=inf",
    ),
    (
        "scalar sequence",
        lambda: SequenceDataset([np.float32(1.0), np.ones(2)]),
        "inputs[0].shape=()",
    ),
    (
        "string time lapses",
        lambda: SequenceDataset(
            {"x": _images(), "time": [np.array(["0", "1"]), np.array(["0", "1", "2"])]}
        ),
        "inputs['time'][0] with dtype <U1",
    ),
]


def _volumes(bad=None):
    volumes = [np.zeros((2, 4, 4)), np.ones((3, 4, 4))]
    if bad is not None:
        volumes[bad][1, 2, 3] = NAN
    return volumes


SLICE_CASES = [
    (
        "nan slice label",
        lambda: BalancedSliceDataset(
            _volumes(), [np.array([0.0, NAN]), np.zeros(3)], [1, 0], batch_size=2
        ),
        "slice_labels[0][1]=nan",
    ),
    (
        "slice label 2",
        lambda: BalancedSliceDataset(
            _volumes(), [np.array([0, 2]), np.zeros(3)], [1, 0], batch_size=2
        ),
        "slice_labels[0][1]=2",
    ),
    (
        "volume label 2",
        lambda: BalancedSliceDataset(
            _volumes(), [np.array([0, 1]), np.zeros(3)], [2, 0], batch_size=2
        ),
        "volume_labels[0]=2",
    ),
    (
        "slice labels longer than the volume",
        lambda: BalancedSliceDataset(
            _volumes(), [np.array([0, 1, 1]), np.zeros(3)], [1, 0], batch_size=2
        ),
        "slice_labels[0].shape=(3,)",
    ),
    (
        "steps_per_epoch 0",
        lambda: BalancedSliceDataset(
            _volumes(), [np.array([0, 1]), np.zeros(3)], [1, 0], batch_size=2, steps_per_epoch=0
        ),
        "steps_per_epoch=0",
    ),
    (
        "nan slice drawn",
        lambda: [
            b
            for b in BalancedSliceDataset(
                _volumes(bad=0), [np.array([0, 1]), np.zeros(3)], [1, 0], batch_size=2
            )
        ],
        "volumes[0][1][2, 3]=nan",
    ),
]


VOLUME_CASES = [
    ("nan label", lambda: BalancedVolumeDataset(_volumes(), [0, NAN]), "labels[1]=nan"),
    ("label 2 with two classes", lambda: BalancedVolumeDataset(_volumes(), [0, 2]), "labels[1]=2"),
    (
        "label 2 with balance",
        lambda: BalancedVolumeDataset(_volumes(), [0, 2], num_classes=3),
        "labels[1]=2",
    ),
    (
        "fractional label",
        lambda: BalancedVolumeDataset(_volumes(), [0, 0.5], balance=False),
        "labels[1]=0.5",
    ),
    (
        "pad_multiple 0",
        lambda: BalancedVolumeDataset(_volumes(), [0, 1], pad_multiple=0),
        "pad_multiple=0",
    ),
    (
        "samples_per_epoch 0",
        lambda: BalancedVolumeDataset(_volumes(), [0, 1], samples_per_epoch=0),
        "samples_per_epoch=0",
    ),
    (
        "nan volume drawn",
        lambda: [b for b in BalancedVolumeDataset(_volumes(bad=1), [0, 1], shuffle=False)],
        "volumes[1][1, 2, 3]=nan",
    ),
]


BAD_INPUTS = SEQUENCE_BAD_ARGUMENTS + SLICE_CASES + VOLUME_CASES


@pytest.mark.parametrize("case, build, received", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_arguments_and_labels_are_refused_with_the_item(case, build, received):
    with pytest.raises(ValueError) as info:
        build()
    assert f"Received: {received}" in str(info.value)


@pytest.mark.parametrize("bad_value", [NAN, INF])
def test_longitudinal_inputs_name_the_sequence_of_a_non_finite_lapse(bad_value):
    data = simulate_longitudinal_digits(3, image_size=16, min_length=2, mean_length=3)
    data.deltas[2][1] = bad_value
    with pytest.raises(ValueError, match=r"Sequence 2 \(id 'sim00002'\)") as info:
        longitudinal_inputs(data, "one_hot", max_delta=10)
    assert str(info.value).endswith(f"Received: deltas[2][1]={bad_value!r}")


def test_finite_time_lapses_pass_through_unchanged():
    data = SequenceDataset({"x": _images(), "time": _times()}, [0, 1], batch_size=2, shuffle=False)
    x, y = data[0]
    np.testing.assert_array_equal(x["time"][1, :, 0], [0.0, 1.0, 3.0])
    np.testing.assert_array_equal(x["mask"].sum(axis=1), [2, 3])


def test_three_classes_without_balance_still_work():
    data = BalancedVolumeDataset(_volumes(), [0, 2], balance=False, shuffle=False, num_classes=3)
    assert [int(np.argmax(data[i][1])) for i in range(len(data))] == [0, 2]
