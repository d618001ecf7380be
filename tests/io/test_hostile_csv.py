"""Hostile CSV manifests for the readers built on `kerasmed.io._csv` (issue 13, group 5).

| group                                         | cases |
| --------------------------------------------- | ----- |
| file-level: encoding, empty, header, columns  | 9 x 2 readers |
| BOM and blank lines still read                | 2     |
| duplicate study dates of a patient            | 2     |
| time-zone offsets compared in UTC             | 3     |
"""

import numpy as np
import pytest

from kerasmed.io import read_longitudinal_manifest, read_segmentation_manifest

LONGITUDINAL = "patient_id,study_date,image_path,a\n", "p,2012-01-01,x.png,1\n"
SEGMENTATION = "subject,timepoint,image,label\n", "s,0,x.nii,\n"


def _read(kind, path):
    if kind == "longitudinal":
        return read_longitudinal_manifest(path, check_files=False)
    return read_segmentation_manifest(path, check_files=False)


def _body(kind):
    return LONGITUDINAL if kind == "longitudinal" else SEGMENTATION


FILE_LEVEL = {  # name: (bytes from (header, row), message)
    "empty": (lambda h, r: b"", "is empty"),
    "blank_lines_only": (lambda h, r: b"\n\n  \n", "is empty"),
    "header_only": (lambda h, r: h.encode(), "has a header but no data rows"),
    "latin1": (
        lambda h, r: (h + "é" + r).encode("latin-1"),
        r"byte 0xe9 at offset \d+ \(line 2\)",
    ),
    "cp1252_quote": (
        lambda h, r: h.encode() + b"\x93" + r.encode(),
        r"byte 0x93 at offset \d+ \(line 2\)",
    ),
    "utf16": (lambda h, r: (h + r).encode("utf-16"), "is UTF-16 text"),
    "utf16_be": (lambda h, r: b"\xfe\xff" + (h + r).encode("utf-16-be"), "is UTF-16 text"),
    "duplicate_column": (
        lambda h, r: (
            (h.strip() + ",x\n" + r.strip() + ",1\n").replace(",x", "," + h.split(",")[0]).encode()
        ),
        r"appear more than once",
    ),
    "unterminated_quote": (lambda h, r: (h + '"' + r).encode(), None),
}


@pytest.mark.parametrize("kind", ["longitudinal", "segmentation"])
@pytest.mark.parametrize("case", sorted(FILE_LEVEL))
def test_file_level_problems_name_the_file(tmp_path, kind, case):
    make, message = FILE_LEVEL[case]
    path = tmp_path / "m.csv"
    path.write_bytes(make(*_body(kind)))
    if message is None:  # a quote left open swallows the rest: one field too many or a bad cell
        with pytest.raises(ValueError, match="m.csv"):
            _read(kind, path)
        return
    with pytest.raises(ValueError, match=message) as info:
        _read(kind, path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"\n\n"])
def test_bom_and_leading_blank_lines_are_read(tmp_path, prefix):
    header, row = LONGITUDINAL
    path = tmp_path / "m.csv"
    path.write_bytes(prefix + (header + row).encode())
    manifest = read_longitudinal_manifest(path, check_files=False)
    assert manifest.ids == ("p",) and manifest.label_names == ("a",)


@pytest.mark.parametrize("second", ["2012-01-01", "2012-01-01T00:00:00"])
def test_duplicate_study_date_of_one_patient_is_a_problem(tmp_path, second):
    header, row = LONGITUDINAL
    path = tmp_path / "m.csv"
    path.write_text(header + row + f"p,{second},y.png,0\nq,2012-01-01,z.png,0\n")
    with pytest.raises(
        ValueError, match=r"row 3: duplicate study_date of patient 'p' \(first at row 2\)"
    ):
        read_longitudinal_manifest(path, check_files=False)
    with pytest.warns(UserWarning, match="duplicate study_date"):
        manifest = read_longitudinal_manifest(path, check_files=False, strict=False)
    assert manifest.ids == ("p", "q") and manifest.report.skipped_rows == [3]


@pytest.mark.parametrize(
    "first, second, days",
    [
        ("2012-01-01T23:00+00:00", "2012-01-02T01:00+05:00", 3 / 24),  # the second is earlier
        ("2012-01-01T10:00Z", "2012-01-02T10:00-02:00", 1 + 2 / 24),
        ("2012-01-01T10:00+01:00", "2012-01-01T10:00+01:00", None),  # same instant: duplicate
    ],
)
def test_time_zone_offsets_are_compared_in_utc(tmp_path, first, second, days):
    header = LONGITUDINAL[0]
    path = tmp_path / "m.csv"
    path.write_text(header + f"p,{first},x.png,1\np,{second},y.png,0\n")
    if days is None:
        with pytest.raises(ValueError, match="duplicate study_date"):
            read_longitudinal_manifest(path, check_files=False)
        return
    manifest = read_longitudinal_manifest(path, check_files=False)
    np.testing.assert_allclose(manifest.deltas[0], [0.0, days], rtol=1e-5)
    expected_order = [3, 2] if first.startswith("2012-01-01T23") else [2, 3]
    assert manifest.rows[0].tolist() == expected_order
