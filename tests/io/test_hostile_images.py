"""Hostile image files for `kerasmed.io.read_radiograph`, `read_exam_image` and the manifest's
image loading (issue 13, groups 1 and 3).

| group                                          | cases |
| ---------------------------------------------- | ----- |
| 1 broken file, each reader                     | 5 x 2 |
| 2/3 rescale slope 0 / NaN, NaN float pixels    | 3 x 2 |
| 1 broken image inside a manifest (strict rule) | 2     |
"""

import cv2
import numpy as np
import pytest
from io_dicom_files import image_dataset  # tests/io/io_dicom_files.py

from kerasmed.io import load_manifest_images, read_longitudinal_manifest, read_radiograph
from kerasmed.io.manifest import read_exam_image

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
READERS = {"radiograph": read_radiograph, "exam": read_exam_image}


def _png(path):
    cv2.imwrite(str(path), np.arange(64, dtype=np.uint8).reshape(8, 8))
    return path


def _dcm(path, **tags):
    ds = image_dataset(CR_STORAGE, "CR", np.arange(64, dtype=np.uint16).reshape(8, 8))
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def _cut(make, size):
    def build(path):
        data = make(path).read_bytes()
        path.write_bytes(data[:size])
        return path

    return build


BROKEN = {
    "empty_png": ("x.png", lambda p: (p.write_bytes(b""), p)[1], "OpenCV cannot decode"),
    "cut_png": ("x.png", _cut(_png, 40), "OpenCV cannot decode"),
    "text_as_dcm": ("x.dcm", lambda p: (p.write_text("hello"), p)[1], "DICOM"),
    "cut_dcm_pixels": ("x.dcm", _cut(_dcm, -40), "x.dcm"),
    "cut_dcm_header": ("x.dcm", _cut(_dcm, 200), "x.dcm"),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_is_a_value_error_naming_it(tmp_path, reader, case):
    name, build, message = BROKEN[case]
    path = build(tmp_path / name)
    with pytest.raises(ValueError, match=message) as info:
        READERS[reader](path)
    assert str(path) in str(info.value)


BAD_VALUES = {
    "slope_zero": lambda p: _dcm(p, RescaleSlope=0, RescaleIntercept=0),
    "slope_nan": lambda p: _dcm(p, RescaleSlope="nan", RescaleIntercept=0),
    "nan_tiff": lambda p: (cv2.imwrite(str(p), np.full((8, 8), np.nan, np.float32)), p)[1],
}
MESSAGES = {"slope_zero": "RescaleSlope is 0", "slope_nan": "RescaleSlope must be finite",
            "nan_tiff": r"64 pixel\(s\) are NaN or infinite"}  # fmt: skip


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_degenerate_values_are_refused(tmp_path, reader, case):
    path = BAD_VALUES[case](tmp_path / ("x.tiff" if case == "nan_tiff" else "x.dcm"))
    with pytest.raises(ValueError, match=MESSAGES[case]):
        READERS[reader](path)


@pytest.mark.parametrize("strict", [True, False])
def test_an_unreadable_dicom_in_a_manifest_is_named_not_a_crash(tmp_path, strict):
    _png(tmp_path / "a.png")
    (tmp_path / "b.dcm").write_text("not dicom")
    (tmp_path / "m.csv").write_text(
        "patient_id,study_date,image_path,x\np,2012-01-01,a.png,1\np,2012-02-01,b.dcm,0\n"
    )
    manifest = read_longitudinal_manifest(tmp_path / "m.csv")
    if strict:
        with pytest.raises(ValueError, match=r"row 3: cannot read image: cannot read the DICOM"):
            load_manifest_images(manifest, image_size=8)
        return
    with pytest.warns(UserWarning, match="b.dcm"):
        sequences = load_manifest_images(manifest, image_size=8, strict=False)
    assert sequences.lengths.tolist() == [1] and sequences.report.skipped_rows == [3]
