"""Hostile command lines for the ``data_prep/`` scripts: non-positive sizes and counts.

Every size or count option is parsed by `kerasmed.io.prep_runner.positive_int` (or
`non_negative_int` where 0 means "keep" / "in this process"), so a bad value is argparse's exit 2
with a message naming the option and the value, before any file is read.

| group | cases |
|---|---|
| size or count of 0 where >= 1 is needed | 8 |
| negative where 0 means "keep" / "in this process" | 2 |
| not an integer | 3 |
| accepted boundary values (parsed as ints) | 4 |
"""

import pytest

from tests.data_prep_scripts import load_data_prep_script

CQ500 = ["cq500", "--out", "o", "--root", "r", "--reads", "reads.csv"]
RSNA = ["rsna", "--out", "o", "--dicom-dir", "d", "--labels", "l.csv"]
MANIFEST = ["m.csv", "--out", "o"]
XRAY = ["--data-dir", "d", "--out", "o"]

# script -> (the required arguments, [(option, bad value), ...])
BAD = {
    "head_ct_ich.py": (CQ500, [("--min-slices", "0"), ("--max-studies", "0"), ("--slice-size", "-1")]),
    "head_ct_ich.py rsna": (RSNA, [("--max-series", "0"), ("--max-series", "1e3")]),
    "longitudinal_manifest.py": (MANIFEST, [("--image-size", "0"), ("--min-exams", "0"), ("--image-size", "big")]),
    "longitudinal_segmentation.py": (MANIFEST, [("--image-size", "-4")]),
    "xray_preprocess.py": (XRAY, [("--size", "0"), ("--size", "-512"), ("--workers", "-1"), ("--size", "2.5")]),
}  # fmt: skip
REFUSED = [
    (script.split()[0], argv, option, value)
    for script, (argv, cases) in BAD.items()
    for option, value in cases
]

ACCEPTED = [
    ("head_ct_ich.py", CQ500, "--slice-size", "0", "slice_size", 0),
    ("head_ct_ich.py", CQ500, "--min-slices", "1", "min_slices", 1),
    ("xray_preprocess.py", XRAY, "--workers", "0", "workers", 0),
    ("longitudinal_manifest.py", MANIFEST, "--image-size", "64", "image_size", [64]),
]


@pytest.mark.parametrize(
    "script, argv, option, value", REFUSED, ids=[f"{c[0]}{c[2]}={c[3]}" for c in REFUSED]
)
def test_bad_size_is_an_argparse_error_naming_option_and_value(script, argv, option, value, capsys):
    module = load_data_prep_script(script)
    with pytest.raises(SystemExit) as stop:
        module.parse_args([*argv, option, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and repr(value) in err, err


@pytest.mark.parametrize(
    "script, argv, option, value, attribute, expected",
    ACCEPTED,
    ids=[f"{c[0]}{c[2]}={c[3]}" for c in ACCEPTED],
)
def test_boundary_values_are_accepted(script, argv, option, value, attribute, expected):
    args = load_data_prep_script(script).parse_args([*argv, option, value])
    assert getattr(args, attribute) == expected
