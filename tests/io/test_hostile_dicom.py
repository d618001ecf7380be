"""Hostile DICOM series for `kerasmed.io.read_dicom_series` (issue 13, groups 1-3).

| group                                         | cases |
| --------------------------------------------- | ----- |
| 1 broken file inside a series                 | 5 x 2 (strict, not strict) + 1 |
| 2 degenerate geometry of one file             | 7     |
| 2 rescale tags, spacing, gaps, MONOCHROME1    | 8     |
"""

import os

import numpy as np
import pytest
from io_dicom_files import image_dataset  # tests/io/io_dicom_files.py
from pydicom.uid import CTImageStorage, MRImageStorage

from kerasmed.io import LoadError, read_dicom_series


def _write(folder, n=3, edit=None, sop=CTImageStorage, modality="CT"):
    """`n` 8x8 axial slices 2 mm apart, slope 2 intercept -1000; `edit(ds, k)` changes slice k."""
    for k in range(n):
        ds = image_dataset(sop, modality, np.full((8, 8), 10 * k, np.int16))
        ds.SeriesInstanceUID, ds.InstanceNumber = "1.2.3", k + 1
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 2.0 * k], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 2.0
        ds.RescaleSlope, ds.RescaleIntercept = 2, -1000
        if edit:
            edit(ds, k)
        ds.save_as(os.path.join(folder, f"s{k}.dcm"), enforce_file_format=True)
    return folder


def _truncate(size):
    def damage(path):
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: size if size >= 0 else len(data) + size])

    return damage


def _overwrite(text):
    def damage(path):
        with open(path, "w") as f:
            f.write(text)

    return damage


BROKEN = {
    "empty": (_truncate(0), "empty file"),
    "header_only": (_truncate(300), "without pixel data"),
    "pixel_data_cut": (_truncate(-60), "cannot decode the pixel data"),
    "text_named_dcm": (_overwrite("not dicom"), "named as DICOM but not a DICOM file"),
    "garbage_after_preamble": (_overwrite("x" * 128 + "DICM" + "\x00" * 3), "s1.dcm"),
}


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_slice_is_named_and_its_gap_is_not_hidden(tmp_path, case, strict):
    damage, message = BROKEN[case]
    _write(tmp_path, n=4)
    damage(str(tmp_path / "s1.dcm"))
    if strict:
        with pytest.raises(LoadError, match=message) as info:
            read_dicom_series(tmp_path)
        assert [p.path for p in info.value.report.problems] == [str(tmp_path / "s1.dcm")]
    else:  # the slice is skipped and reported; the hole it leaves is a non-uniform gap
        with pytest.raises(ValueError, match=r"non-uniform slice spacing: gaps range 2-4 mm"):
            read_dicom_series(tmp_path, strict=False)
        with pytest.warns(UserWarning, match="s1.dcm"):
            volume = read_dicom_series(tmp_path, strict=False, allow_nonuniform=True)
        assert volume.positions.tolist() == [0.0, 4.0, 6.0]
        assert [p.path for p in volume.report.problems] == [str(tmp_path / "s1.dcm")]


def test_a_missing_rows_tag_is_a_problem(tmp_path):
    _write(tmp_path, edit=lambda ds, k: k == 1 and delattr(ds, "Rows"))
    with pytest.raises(LoadError, match=r"s1.dcm: DICOM image without Rows/Columns"):
        read_dicom_series(tmp_path)


GEOMETRY = {
    "zero_orientation": ("ImageOrientationPatient", [0, 0, 0, 0, 0, 0], "two unit vectors"),
    "nan_orientation": ("ImageOrientationPatient", ["nan", 0, 0, 0, 1, 0], "non-finite"),
    "five_cosines": ("ImageOrientationPatient", [1, 0, 0, 0, 1], "must hold 6 numbers"),
    "not_orthogonal": ("ImageOrientationPatient", [1, 0, 0, 1, 0, 0], "not at right angles"),
    "nan_position": ("ImagePositionPatient", [0, 0, "nan"], "non-finite"),
    "one_spacing_value": ("PixelSpacing", 0.5, "must hold 2 numbers"),
    "zero_spacing": ("PixelSpacing", [0, 0.5], "must be positive"),
}


@pytest.mark.parametrize("case", sorted(GEOMETRY))
def test_degenerate_geometry_of_one_file_is_named(tmp_path, case):
    keyword, value, message = GEOMETRY[case]
    _write(tmp_path, edit=lambda ds, k: k == 1 and setattr(ds, keyword, value))
    with pytest.raises(LoadError, match=rf"s1.dcm: {keyword} .*{message}|s1.dcm: .*{message}"):
        read_dicom_series(tmp_path)


def _no_rescale(ds, k):
    del ds.RescaleSlope, ds.RescaleIntercept


def test_ct_without_rescale_tags_is_refused_or_noted(tmp_path):
    _write(tmp_path, edit=_no_rescale)
    with pytest.raises(
        ValueError, match=r"3 CT file\(s\) have no RescaleSlope.*missing_rescale='error'"
    ):
        read_dicom_series(tmp_path)
    volume = read_dicom_series(tmp_path, missing_rescale="identity")
    assert volume.array[:, 0, 0].tolist() == [0.0, 10.0, 20.0]  # stored values, said so
    assert "stored values taken as HU" in volume.notes[0]
    with pytest.raises(ValueError, match="Received: missing_rescale='hu'"):
        read_dicom_series(tmp_path, missing_rescale="hu")


def test_mr_without_rescale_tags_gets_the_identity_silently(tmp_path):
    _write(tmp_path, edit=_no_rescale, sop=MRImageStorage, modality="MR")
    volume = read_dicom_series(tmp_path)
    assert volume.array[:, 0, 0].tolist() == [0.0, 10.0, 20.0] and volume.notes == []


@pytest.mark.parametrize("slope", ["0", "nan"])
def test_unusable_rescale_slope_is_a_problem(tmp_path, slope):
    _write(tmp_path, edit=lambda ds, k: setattr(ds, "RescaleSlope", slope))
    with pytest.raises(LoadError, match="RescaleSlope"):
        read_dicom_series(tmp_path)


def test_one_slice_with_another_pixel_spacing(tmp_path):
    _write(tmp_path, edit=lambda ds, k: k == 2 and setattr(ds, "PixelSpacing", [0.7, 0.7]))
    with pytest.raises(ValueError, match=r"mixes pixel spacings.*\(0.5, 0.5\).*\(0.7, 0.7\)"):
        read_dicom_series(tmp_path)


def _instances(numbers):
    def edit(ds, k):
        del ds.ImagePositionPatient, ds.ImageOrientationPatient
        ds.InstanceNumber = numbers[k]

    return edit


def test_a_gap_in_instance_numbers_is_not_hidden(tmp_path):
    _write(tmp_path, edit=_instances([1, 2, 4]))
    with pytest.raises(
        ValueError, match=r"InstanceNumbers: slices may be missing.*\[1.0, 2.0, 4.0\]"
    ):
        read_dicom_series(tmp_path)
    with pytest.warns(UserWarning, match="slices may be missing"):
        volume = read_dicom_series(tmp_path, allow_nonuniform=True)
    assert any("slices may be missing" in note for note in volume.notes)


def test_zero_slice_thickness_without_positions_falls_back_with_a_note(tmp_path):
    _write(
        tmp_path,
        edit=lambda ds, k: (_instances([1, 2, 3])(ds, k), setattr(ds, "SliceThickness", 0)),
    )
    with pytest.warns(UserWarning, match="InstanceNumber"):
        volume = read_dicom_series(tmp_path)
    assert volume.spacing[0] == 1.0 and any("z spacing unknown" in n for n in volume.notes)


def test_monochrome1_ct_keeps_hu_and_says_so(tmp_path):
    _write(tmp_path, edit=lambda ds, k: setattr(ds, "PhotometricInterpretation", "MONOCHROME1"))
    volume = read_dicom_series(tmp_path)
    assert volume.array[:, 0, 0].tolist() == [-1000.0, -980.0, -960.0]
    assert "not inverted" in volume.notes[0]
