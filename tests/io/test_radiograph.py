"""Tests of `kerasmed.io.read_radiograph` on files written here and pydicom's test files."""

import shutil

import cv2
import numpy as np
import pydicom
import pytest
from io_dicom_files import image_dataset  # tests/io/io_dicom_files.py
from pydicom.data import get_testdata_file

from kerasmed.io import read_radiograph

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage


def _existing(name):
    path = get_testdata_file(name)  # None for the files pydicom would download
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return path


def write_cr(path, pixels, photometric="MONOCHROME1", bits_stored=12, slope=None, intercept=None):
    """Writes a computed-radiography DICOM file with unsigned pixels."""
    pixels = np.asarray(pixels, dtype=np.uint16)
    ds = image_dataset(CR_STORAGE, "CR", pixels, photometric, bits_stored)
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "US"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_8_and_16_bit_files_keep_their_values(tmp_path, rng, dtype, suffix):
    image = rng.integers(0, np.iinfo(dtype).max, (23, 41), endpoint=True).astype(dtype)
    image[0, 0], image[-1, -1] = 0, np.iinfo(dtype).max
    path = tmp_path / f"x{suffix}"
    assert cv2.imwrite(str(path), image)
    read, notes = read_radiograph(path, return_notes=True)
    assert read.dtype == dtype and notes == []
    np.testing.assert_array_equal(read, image)


def test_jpeg_is_read_as_grey_uint8(tmp_path):
    image = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (16, 1))
    cv2.imwrite(str(tmp_path / "x.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    read = read_radiograph(tmp_path / "x.jpg")
    assert read.dtype == np.uint8 and read.shape == (16, 32)
    assert np.abs(read.astype(int) - image).max() <= 2  # JPEG is lossy, but barely at q=100


def test_colour_is_converted_with_a_note_or_refused(tmp_path, rng):
    bgr = rng.integers(0, 256, (9, 7, 3)).astype(np.uint8)
    path = tmp_path / "colour.png"
    cv2.imwrite(str(path), bgr)
    grey, notes = read_radiograph(path, return_notes=True)
    b, g, r = (bgr[..., k].astype(float) for k in range(3))
    reference = 0.299 * r + 0.587 * g + 0.114 * b  # ITU-R BT.601
    assert grey.dtype == np.uint8 and np.abs(grey - reference).max() <= 0.51
    assert len(notes) == 1 and "converted 3-channel bgr colour to grey" in notes[0]
    with pytest.raises(ValueError, match="colour.png is a colour image.*Received: colour='error'"):
        read_radiograph(path, colour="error")
    # A colour file whose channels are equal is a grey image stored as RGB: taken exactly.
    equal = np.repeat(bgr[..., :1], 3, axis=-1)
    cv2.imwrite(str(tmp_path / "equal.png"), equal)
    grey, notes = read_radiograph(tmp_path / "equal.png", colour="error", return_notes=True)
    np.testing.assert_array_equal(grey, bgr[..., 0])
    assert notes == ["3-channel file with equal colour channels read as grey"]
    # 16-bit RGBA: alpha dropped, depth kept.
    rgba = rng.integers(0, 65536, (5, 6, 4)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    grey = read_radiograph(tmp_path / "rgba.png")
    assert grey.dtype == np.uint16 and grey.shape == (5, 6)
    np.testing.assert_array_equal(grey, cv2.cvtColor(rgba[..., :3], cv2.COLOR_BGR2GRAY))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such radiograph file: .*nothere.png"):
        read_radiograph(tmp_path / "nothere.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"cannot read the radiograph .*text.png: OpenCV"):
        read_radiograph(tmp_path / "text.png")
    image = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    cv2.imwrite(str(tmp_path / "full.png"), image)
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="truncated.png"):
        read_radiograph(tmp_path / "truncated.png")
    (tmp_path / "fake.dcm").write_bytes(b"\0" * 200)
    with pytest.raises(ValueError, match=r"cannot read the radiograph .*fake.dcm: not a DICOM"):
        read_radiograph(tmp_path / "fake.dcm")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png"):
        read_radiograph(tmp_path / "empty.png")


def test_pydicom_mr_is_returned_as_stored(tmp_path):
    path = _existing("MR_small.dcm")
    expected = pydicom.dcmread(path).pixel_array
    image, notes = read_radiograph(path, return_notes=True)
    assert image.dtype == expected.dtype == np.int16 and notes == []
    np.testing.assert_array_equal(image, expected)
    # Recognised by its DICM marker without a .dcm suffix.
    shutil.copyfile(path, tmp_path / "mr_without_suffix")
    np.testing.assert_array_equal(read_radiograph(tmp_path / "mr_without_suffix"), expected)


def test_pydicom_ct_gets_its_rescale_intercept():
    path = _existing("CT_small.dcm")
    ds = pydicom.dcmread(path)
    image, notes = read_radiograph(path, return_notes=True)
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    np.testing.assert_array_equal(image, expected)
    # int16 stored values - 1024 span -33792 ... 31743: the smallest integer type is int32
    assert image.dtype == np.int32
    assert notes == ["modality LUT applied (RescaleSlope 1, RescaleIntercept -1024)"]


def test_monochrome1_is_inverted_within_the_stored_range(tmp_path, rng):
    pixels = rng.integers(0, 4096, (12, 10)).astype(np.uint16)
    path = write_cr(tmp_path / "cr.dcm", pixels, "MONOCHROME1", bits_stored=12)
    image, notes = read_radiograph(path, return_notes=True)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, 4095 - pixels.astype(int))
    assert notes == ["MONOCHROME1 inverted (0 + 4095 - value)"]
    # The same pixels as MONOCHROME2 come back unchanged.
    plain = write_cr(tmp_path / "cr2.dcm", pixels, "MONOCHROME2", bits_stored=12)
    np.testing.assert_array_equal(read_radiograph(plain), pixels)
    # With a rescale: values 2 v + 10 in 10 ... 8200, inverted within that range.
    scaled = write_cr(tmp_path / "cr3.dcm", pixels, "MONOCHROME1", 12, slope=2, intercept=10)
    image = read_radiograph(scaled)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, (10 + 8200) - (2 * pixels.astype(int) + 10))
    # A fractional slope gives float32 values.
    frac = write_cr(tmp_path / "cr4.dcm", pixels, "MONOCHROME2", 12, slope=0.5, intercept=0)
    image = read_radiograph(frac)
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, pixels * np.float32(0.5))


def test_monochrome1_made_from_a_pydicom_file(tmp_path):
    ds = pydicom.dcmread(_existing("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "mono1.dcm")
    stored = ds.pixel_array.astype(np.int64)
    image = read_radiograph(tmp_path / "mono1.dcm")
    # signed 16-bit: -32768 + 32767 - value = -1 - value
    np.testing.assert_array_equal(image, -1 - stored)
    assert image.dtype == np.int16
