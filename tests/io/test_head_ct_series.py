"""Tests of `kerasmed.io.head_ct_series` and the atomic writers of `kerasmed.io.volume_writer`."""

import os

import numpy as np
import pydicom
import pytest
from io_dicom_files import image_dataset
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import (
    BasicTextSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from test_dicom import write_slice  # tests/io/test_dicom.py

from kerasmed.io import VolumeSetWriter, load_volume_set
from kerasmed.io.head_ct_series import (
    NOT_AN_IMAGE,
    fix_12bit_slice,
    group_study_series,
    needs_12bit_fix,
    read_header,
    read_series_files,
)
from kerasmed.io.volume_writer import write_labels_csv, write_volume_file


def test_read_header_reasons(tmp_path):
    good = tmp_path / "good.dcm"
    write_slice(good, np.zeros((2, 2)), (0, 0, 0), series_uid="1.2.3")
    ds, reason = read_header(good)
    assert reason is None and ds.SeriesInstanceUID == "1.2.3" and "PixelData" not in ds
    (tmp_path / "text.dcm").write_text("hello")
    no_uid = tmp_path / "no_uid.dcm"
    write_slice(no_uid, np.zeros((2, 2)), (0, 0, 0), series_uid="")
    _report(tmp_path / "report.dcm")
    assert read_header(tmp_path / "text.dcm") == (None, "not a DICOM file")
    assert read_header(no_uid) == (None, "DICOM image without SeriesInstanceUID")
    assert read_header(tmp_path / "report.dcm") == (None, "DICOM file without an image")
    assert read_header(get_testdata_file("DICOMDIR")) == (None, "DICOM file without an image")


def _report(path, sop_class=BasicTextSRStorage):
    """A DICOM object of `sop_class` without an image (no Rows, no PixelData)."""
    report = image_dataset(sop_class, "SR", np.zeros((2, 2), np.int16))
    report.SeriesInstanceUID = "1.2.4"
    del report.Rows, report.Columns, report.PixelData
    report.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_read_header_reports_a_slice_cut_before_rows(tmp_path, syntax):
    whole = tmp_path / "whole.dcm"
    write_slice(whole, np.zeros((2, 2)), (0, 0, 0), series_uid="1.2.3", transfer_syntax=syntax)
    data = whole.read_bytes()
    header = pydicom.dcmread(whole)
    rows = header.get_item("Rows").value_tell - 8  # where the Rows element starts
    description = header.get_item("SeriesDescription").value_tell
    cut = tmp_path / "cut.dcm"
    reasons = {}
    for size in range(132, rows + 1):  # from just after "DICM" up to Rows itself
        cut.write_bytes(data[:size])
        ds, reasons[size] = read_header(cut)
        assert ds is None and reasons[size] not in NOT_AN_IMAGE, (size, reasons[size])
        assert reasons[size].startswith(("unreadable DICOM file", "DICOM image ")), reasons[size]
    truncated = "unreadable DICOM file (truncated: it ends inside a data element, before Rows)"
    assert reasons[description + 3] == reasons[description - 3] == truncated
    assert reasons[rows] == "DICOM image (CT Image Storage) without Rows: truncated?"
    # a non-image object cut short is not a complete non-image object either
    data = _report(tmp_path / "report.dcm").read_bytes()
    cut.write_bytes(data[:-3])
    assert read_header(cut) == (None, truncated)
    # an image without Rows that is not cut short: the same problem as a cut at Rows
    image = image_dataset(CTImageStorage, "CT", np.zeros((2, 2), np.int16))
    image.SeriesInstanceUID = "1.2.5"
    del image.Rows, image.Columns
    image.save_as(cut, enforce_file_format=True)
    assert read_header(cut) == (None, "DICOM image (CT Image Storage) without Rows: truncated?")


def test_group_study_series_by_uid(tmp_path):
    tilted = (1.0, 0.0, 0.0, 0.0, 0.96, 0.28)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    for k in range(3):
        write_slice(tmp_path / "b" / f"{k}.dcm", np.zeros((2, 2)), (0, 0, k), series_uid="1.2",
                    description=" CT 5mm ", orientation=tilted)  # fmt: skip
    write_slice(tmp_path / "a" / "x.dcm", np.zeros((2, 2)), None, series_uid="1.1")
    (tmp_path / "a" / "notes.txt").write_text("no")
    write_slice(tmp_path / "b" / "cut.dcm", np.zeros((2, 2)), (0, 0, 9), series_uid="1.2")
    data = (tmp_path / "b" / "cut.dcm").read_bytes()
    cut = pydicom.dcmread(tmp_path / "b" / "cut.dcm").get_item("SeriesDescription").value_tell
    (tmp_path / "b" / "cut.dcm").write_bytes(data[: cut + 3])  # cut short in transfer
    series, unreadable = group_study_series(tmp_path)
    assert [s["uid"] for s in series] == ["1.1", "1.2"]  # folders in name order
    first, second = series
    assert (first["folder"], first["orientation"], first["thickness"]) == ("a", None, 3.0)
    assert second["description"] == "CT 5mm" and second["modality"] == "CT"
    assert second["orientation"] == list(tilted)
    assert second["files"] == [str(tmp_path / "b" / f"{k}.dcm") for k in range(3)]
    assert unreadable == [
        (str(tmp_path / "a" / "notes.txt"), "not a DICOM file"),
        (str(tmp_path / "b" / "cut.dcm"), "unreadable DICOM file (truncated: it ends inside a "
         "data element, before Rows)"),
    ]  # fmt: skip


def test_read_series_files_names_the_files(tmp_path):
    paths = []
    for k, z in enumerate([10.0, 0.0, 5.0]):
        paths.append(tmp_path / f"slice{k}.dcm")
        write_slice(paths[-1], np.full((2, 2), k), (0, 0, z))
    volume = read_series_files(paths)
    assert volume.files == [paths[1], paths[2], paths[0]]  # in z order, the files given
    np.testing.assert_array_equal(volume.array[:, 0, 0], [2 - 1000, 4 - 1000, 0 - 1000])
    write_slice(paths[2], np.zeros((2, 2)), (0, 0, 0.0))  # two slices at z = 0
    with pytest.raises(ValueError, match="Duplicate slice positions") as info:
        read_series_files(paths)
    assert str(paths[1]) in str(info.value) and str(paths[2]) in str(info.value)
    assert "kerasmed-series-" not in str(info.value)


def test_12bit_fix_matches_the_stored_value_rule():
    ds = Dataset()
    ds.BitsStored, ds.PixelRepresentation, ds.RescaleIntercept = 12, 0, 0.0
    assert needs_12bit_fix(ds)
    ds.RescaleIntercept = -1024.0
    assert not needs_12bit_fix(ds)
    ds.RescaleIntercept, ds.PixelRepresentation = 0.0, 1
    assert not needs_12bit_fix(ds) and not needs_12bit_fix(Dataset())
    stored = np.array([[0, 50, 3095, 3096, 4000]], np.float64)
    slope, intercept = 2.0, 10.0
    shifted = stored + 1000
    shifted[shifted >= 4096] -= 4096
    fixed = fix_12bit_slice(stored * slope + intercept, intercept, slope)
    assert fixed.dtype == np.float32
    np.testing.assert_array_equal(fixed, shifted * slope - 1000)
    assert fixed[0, 3] == -1000.0  # 3096 + 1000 wraps to 0


def test_write_volume_file_is_the_writers_format_and_atomic(tmp_path):
    hu = np.arange(2 * 3 * 3, dtype=np.float64).reshape(2, 3, 3) * 10.4 - 100
    with VolumeSetWriter(tmp_path / "writer", hu_dtype="int16") as writer:
        writer.add("a-1", hu, 1, (5, 0.5, 0.5), [0, 1])
    path, row = write_volume_file(tmp_path / "file", "a-1", hu, 1, (5, 0.5, 0.5), [0, 1], "int16")
    assert row == ("a-1", 1, 2) and path == tmp_path / "file" / "volumes" / "a-1.npz"
    write_labels_csv(tmp_path / "file", [row])
    labels = [(tmp_path / folder / "labels.csv").read_bytes() for folder in ("file", "writer")]
    assert labels[0] == labels[1] == b"volume_id,label,num_slices\na-1,1,2\n"
    with np.load(path) as one, np.load(tmp_path / "writer" / "volumes" / "a-1.npz") as two:
        assert one.files == two.files
        for key in one.files:
            assert one[key].dtype == two[key].dtype
            np.testing.assert_array_equal(one[key], two[key])
    assert load_volume_set(tmp_path / "file").ids == ["a-1"]
    for bad, match in (
        (dict(volume_id="_x"), "Received: volume_id='_x'"),
        (dict(label=2), "Received: label=2"),
        (dict(hu=hu * 1e4), "do not fit in int16"),
    ):
        kwargs = dict(volume_id="b", hu=hu, label=0, spacing=(5, 1, 1), hu_dtype="int16")
        kwargs.update(bad)
        with pytest.raises(ValueError, match=match):
            write_volume_file(tmp_path / "file", **kwargs)
    assert sorted(os.listdir(tmp_path / "file" / "volumes")) == ["a-1.npz"]  # nothing partial
