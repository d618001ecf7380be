"""kerasmed.io.irma: IRMA code parsing, hierarchy levels, label maps and the imbalance report."""

import json

import numpy as np
import pytest

from kerasmed.io import (
    IRMA_AXES,
    IrmaCode,
    IrmaLabelMap,
    class_imbalance_report,
    parse_irma_code,
)

# codes of the ImageCLEF 2009 classes, with letters on three of the axes
CLEF_2009 = [
    "1121-127-732-500",
    "1121-120-91a-700",
    "1121-120-91b-700",
    "1121-12f-466-700",
    "1121-129-750-400",
    "1121-4a0-914-700",
    "1121-4b0-233-700",
    "112d-121-500-000",
    "1123-110-500-000",
    "1124-410-620-625",
    "1121-125-110-000",
]


@pytest.mark.parametrize("text", CLEF_2009)
def test_real_codes_parse_and_print_back(text):
    code = parse_irma_code(text)
    assert str(code) == text
    assert "-".join(code.axes()) == text
    assert [len(a) for a in code.axes()] == list(IRMA_AXES.values()) == [4, 3, 3, 3]
    assert parse_irma_code(code) is code


def test_axes_of_the_papers_example():
    code = parse_irma_code("1121-127-732-500")
    assert (code.technical, code.directional, code.anatomical, code.biological) == (
        "1121",
        "127",
        "732",
        "500",
    )
    assert [code.depth(axis) for axis in IRMA_AXES] == [4, 3, 3, 1]
    assert parse_irma_code("1121-4a0-914-700").depth("directional") == 2
    assert parse_irma_code("1123-110-500-000").depth("biological") == 0
    with pytest.raises(ValueError, match="Received: axis='A'"):
        code.depth("A")


@pytest.mark.parametrize(
    "text",
    [
        "1121-127-73-500",  # short axis
        "1121-127-7321-500",  # long axis
        "11211275732500",  # no dashes
        "1121_127_732_500",
        "1121-127-732-500 ",  # whitespace
        " 1121-127-732-500",
        "1121-127-732-50O",  # letter O, not zero
        "1121-4A0-914-700",  # uppercase
        "1121-1*0-914-700",  # the evaluation's "don't know" is not part of a code
        "1121-127-732-500-1",
        "",
    ],
)
def test_malformed_codes_name_the_code(text):
    with pytest.raises(ValueError, match=f"Received: code={text!r}".replace("*", r"\*")):
        parse_irma_code(text)


def test_non_strings_are_refused():
    for value in (1121127732500, None, b"1121-127-732-500"):
        with pytest.raises(ValueError, match="Received: code="):
            parse_irma_code(value)
    with pytest.raises(ValueError, match="Received: anatomical='73'"):
        IrmaCode("1121", "127", "73", "500")


def test_hierarchy_has_no_child_under_unspecified():
    for text, axis in [
        ("1121-102-732-500", "directional"),
        ("1021-127-732-500", "technical"),
        ("1121-127-702-500", "anatomical"),
        ("1121-127-732-050", "biological"),
    ]:
        with pytest.raises(ValueError, match=f"The {axis} axis .*Received: code='{text}'"):
            parse_irma_code(text)
        assert str(parse_irma_code(text, strict_hierarchy=False)) == text


def test_truncate_keeps_the_first_characters_of_each_axis():
    code = parse_irma_code("1121-127-732-500")
    assert str(code.truncate(anatomical=1)) == "1121-127-700-500"
    assert str(code.truncate(anatomical=2)) == "1121-127-730-500"
    assert str(code.truncate(anatomical=3)) == str(code.truncate()) == str(code)
    assert str(code.truncate(0, 0, 0, 0)) == "0000-000-000-000"
    assert str(code.truncate(technical=2, directional=1)) == "1100-100-732-500"
    letters = parse_irma_code("1121-4a0-91a-700").truncate(directional=1, anatomical=2)
    assert str(letters) == "1121-400-910-700"
    # a truncated code is still a valid code, and coarser codes merge classes
    assert all(
        parse_irma_code(str(c.truncate(anatomical=1))) for c in map(parse_irma_code, CLEF_2009)
    )
    assert len({str(parse_irma_code(c).truncate(1, 1, 1, 1)) for c in CLEF_2009}) < len(CLEF_2009)
    with pytest.raises(ValueError, match="Received: anatomical=4"):
        code.truncate(anatomical=4)
    with pytest.raises(ValueError, match="Received: technical=-1"):
        code.truncate(technical=-1)


def test_codes_sort_and_compare_as_strings():
    codes = [parse_irma_code(c) for c in CLEF_2009]
    assert [str(c) for c in sorted(codes)] == sorted(CLEF_2009)
    assert parse_irma_code("1121-129-750-400") < parse_irma_code("1121-12f-466-700")
    assert parse_irma_code("1121-127-732-500") == parse_irma_code("1121-127-732-500")
    assert len({parse_irma_code(c) for c in CLEF_2009 + CLEF_2009}) == len(CLEF_2009)  # hashable


def test_label_map_is_sorted_and_independent_of_order():
    rng = np.random.default_rng(0)
    codes = list(rng.choice(CLEF_2009, size=200))
    forward = IrmaLabelMap(codes)
    backward = IrmaLabelMap(codes[::-1] + [parse_irma_code(CLEF_2009[0])])
    assert forward == backward and forward.num_classes == len(set(codes)) == len(forward)
    assert list(forward.codes) == sorted(set(codes))
    # Pelka et al.'s 2009 label list puts digits before letters: ...-129-... < ...-12f-...
    pelka_order = ["1121-127-800-700", "1121-129-700-400", "1121-129-750-400", "1121-12f-466-700",
                   "1121-200-300-700", "1121-4a0-310-700", "1121-4b0-233-700", "112d-110-414-700"]  # fmt: skip
    assert list(IrmaLabelMap(pelka_order[::-1]).codes) == pelka_order
    labels = forward.encode(codes)
    assert labels.dtype == np.int64 and labels.shape == (200,)
    assert forward.decode(labels) == codes
    np.testing.assert_array_equal(labels, [forward.codes.index(c) for c in codes])
    config = json.loads(json.dumps(forward.get_config()))
    assert IrmaLabelMap(**config) == forward
    assert "1121-127-732-500" in IrmaLabelMap(CLEF_2009)


def test_label_map_errors():
    labels = IrmaLabelMap(CLEF_2009[:3])
    with pytest.raises(ValueError, match="'1123-110-500-000' is not one of the 3 classes"):
        labels.encode(["1123-110-500-000"])
    with pytest.raises(ValueError, match=r"Received: labels=\[0, 3\]"):
        labels.decode([0, 3])
    with pytest.raises(ValueError, match=r"Received: labels=\[0.5\]"):
        labels.decode([0.5])
    with pytest.raises(ValueError, match=r"Received: codes=\[\]"):
        IrmaLabelMap([])
    with pytest.raises(ValueError, match="Received: code='bad'"):
        IrmaLabelMap(["bad"])


def test_class_imbalance_report_counts():
    rng = np.random.default_rng(1)
    common, rare, absent = CLEF_2009[0], CLEF_2009[1], CLEF_2009[2]
    others = CLEF_2009[3:6]
    train = [common] * 50 + [rare] * 3 + list(rng.choice(others, size=30))
    test = [common] * 5 + [rare] * 4 + [absent] * 6 + [others[0]] * 2
    report = class_imbalance_report(train, test, rare_threshold=5)
    train_counts = {c: train.count(c) for c in set(train) | set(test)}
    assert report.train_counts == train_counts
    assert report.test_counts == {c: test.count(c) for c in train_counts}
    assert report.codes == tuple(sorted(train_counts))
    assert report.absent_in_train == (absent,) and report.rare_in_train == (rare,)
    assert report.test_images_absent == 6 and report.test_images_rare == 4
    present = [n for n in train_counts.values() if n]
    assert report.imbalance_ratio == max(present) / min(present)
    assert (report.num_train, report.num_test) == (83, 17)
    text = str(report)
    assert "test classes absent from training: 1 (6 test images, 35.3%)" in text
    assert f"{absent:<18}{0:>7}{6:>7}  absent in training" in text
    assert f"{rare:<18}{3:>7}{4:>7}  rare in training" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["train_counts"][common] == 50 and data["absent_in_train"] == [absent]
    # a class rare in training but absent from test is not listed as a test difficulty
    assert class_imbalance_report([common] * 12 + [rare], [common]).rare_in_train == ()
    with pytest.raises(ValueError, match="Received: code='1121'"):
        class_imbalance_report(["1121"], [])
