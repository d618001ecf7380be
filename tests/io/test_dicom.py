import os
import warnings

import numpy as np
import pydicom
import pytest
from io_dicom_files import image_dataset  # tests/io/io_dicom_files.py
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
)

from kerasmed.io import LoadError
from kerasmed.io.dicom import Volume, read_dicom_series

CT5N = os.path.dirname(get_testdata_file("dicomdirtests/98892001/CT5N/2062"))
MR2 = os.path.dirname(get_testdata_file("dicomdirtests/98892003/MR2/4950"))
CT2_GAP = os.path.dirname(get_testdata_file("dicomdirtests/77654033/CT2/17106"))
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def write_slice(
    path,
    pixels,
    position=None,
    series_uid="1.2.3.4",
    orientation=AXIAL,
    instance=1,
    slope=2.0,
    intercept=-1000.0,
    transfer_syntax=ExplicitVRLittleEndian,
    description="test series",
):
    """Writes one CT slice (int16 pixels) with pydicom."""
    pixels = np.asarray(pixels, dtype=np.int16)
    ds = image_dataset(CTImageStorage, "CT", pixels, transfer_syntax=transfer_syntax)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = [0.5, 0.75]
    ds.SliceThickness = 3.0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    if transfer_syntax.is_compressed:
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3not really a jpeg\xff\xd9"])
    ds.save_as(path, enforce_file_format=True)


def slice_pixels(k, shape=(4, 3)):
    return np.arange(np.prod(shape), dtype=np.int16).reshape(shape) + 100 * k


def test_pydicom_ct_series_sorted_by_position_not_name():
    volume = read_dicom_series(CT5N)
    assert isinstance(volume, Volume)
    # Independent reference: read every file, apply slope/intercept, sort by z (axial series).
    datasets = [pydicom.dcmread(os.path.join(CT5N, name)) for name in os.listdir(CT5N)]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    expected = np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets]
    )
    assert volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array, expected)
    # File names increase while z decreases: the files come out in reverse name order.
    assert [os.path.basename(f) for f in volume.files] == ["3353", "3023", "2693", "2392", "2062"]
    np.testing.assert_allclose(volume.positions, [-1.2375, 1.2625, 3.7625, 6.2625, 8.7625])
    np.testing.assert_allclose(volume.spacing, (2.5, 0.488281, 0.488281))
    assert volume.series_uid == datasets[0].SeriesInstanceUID
    assert volume.modality == "CT" and volume.report.skipped == []
    assert volume.array.min() < -800  # air in HU after the -1024 intercept


def test_folder_with_several_series_lists_them():
    with pytest.raises(ValueError) as info:
        read_dicom_series(MR2)
    message = str(info.value)
    for uid in (
        "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.481",
        "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.136",
        "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.17",
    ):
        assert uid in message
    assert "holds 3 series" in message and "modality=MR" in message
    assert "files=3" in message and "FAST LOCALIZER" in message
    # The tri-planar localizer series mixes orientations: not a volume.
    with pytest.raises(ValueError, match="mixes slice orientations"):
        read_dicom_series(MR2, series_uid="1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.136")
    with pytest.warns(UserWarning, match=r"6 file\(s\) not loaded(.|\n)*other series"):
        single = read_dicom_series(
            MR2, series_uid="1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.481"
        )
    assert single.array.shape == (1, 16, 16)
    assert single.spacing[0] == 10.0  # one slice: SliceThickness
    ignored = single.report.ignored
    assert len(ignored) == 6 and all("other series" in p.reason for p in ignored)
    assert single.report.ok and single.report.num_rows == 7
    with pytest.raises(ValueError, match="Received: series_uid='9.9'"):
        read_dicom_series(MR2, series_uid="9.9")


def test_pydicom_series_with_gap_is_nonuniform():
    with pytest.raises(ValueError, match="non-uniform slice spacing.*allow_nonuniform=False"):
        read_dicom_series(CT2_GAP)
    with pytest.warns(UserWarning, match="non-uniform"):
        volume = read_dicom_series(CT2_GAP, allow_nonuniform=True)
    assert volume.array.shape == (4, 16, 16)
    assert volume.spacing[0] == pytest.approx(1.25, abs=1e-4)  # median gap
    assert any("non-uniform" in note for note in volume.notes)


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_written_series_shuffled_names_and_junk_file(tmp_path, syntax):
    z_values = [12.0, 9.0, 15.0, 6.0]  # written in this (unsorted) order
    names = ["b.dcm", "d.dcm", "a.dcm", "c.dcm"]
    for k, (z, name) in enumerate(zip(z_values, names)):
        write_slice(tmp_path / name, slice_pixels(k), (-10, -20, z), transfer_syntax=syntax)
    (tmp_path / "notes.txt").write_text("not dicom")
    with pytest.warns(UserWarning, match="notes.txt"):
        volume = read_dicom_series(tmp_path)
    order = np.argsort(z_values)
    expected = np.stack([slice_pixels(k) * 2.0 - 1000.0 for k in order])
    np.testing.assert_array_equal(volume.array, expected)
    assert [os.path.basename(f) for f in volume.files] == [names[k] for k in order]
    np.testing.assert_allclose(volume.positions, [6, 9, 12, 15])
    assert volume.spacing == (3.0, 0.5, 0.75)
    assert [(p.path, p.reason) for p in volume.report.skipped] == [
        (str(tmp_path / "notes.txt"), "not a DICOM file")
    ]
    assert volume.report.ok  # a file that is not DICOM is not a problem
    # affine: voxel (x, y, z) -> LPS mm.
    np.testing.assert_allclose(volume.affine @ [2, 1, 3, 1], [-10 + 2 * 0.75, -20 + 0.5, 15, 1])


def test_two_series_require_a_choice(tmp_path):
    for k in range(3):
        write_slice(
            tmp_path / f"a{k}", slice_pixels(k), (0, 0, k), series_uid="1.1", description="A"
        )
    for k in range(2):
        write_slice(
            tmp_path / f"b{k}", slice_pixels(k), (0, 0, k), series_uid="2.2", description="B"
        )
    with pytest.raises(ValueError, match=r"(?s)1\.1.*files=3.*'A'.*2\.2.*files=2.*'B'"):
        read_dicom_series(tmp_path)
    with pytest.warns(UserWarning, match=r"3 file\(s\) not loaded(.|\n)*other series 1\.1"):
        volume = read_dicom_series(tmp_path, series_uid="2.2")
    assert volume.array.shape == (2, 4, 3) and volume.series_uid == "2.2"
    assert sorted(os.path.basename(p.path) for p in volume.report.ignored) == ["a0", "a1", "a2"]


def test_duplicate_positions_name_the_files(tmp_path):
    for k, z in enumerate([0.0, 1.0, 1.0, 2.0]):
        write_slice(tmp_path / f"s{k}", slice_pixels(k), (0, 0, z))
    with pytest.raises(ValueError, match="Duplicate slice positions") as info:
        read_dicom_series(tmp_path)
    assert "s1" in str(info.value) and "s2" in str(info.value)


def test_nonuniform_written_gap(tmp_path):
    for k, z in enumerate([0.0, 2.0, 4.0, 7.0]):
        write_slice(tmp_path / f"s{k}", slice_pixels(k), (0, 0, z))
    with pytest.raises(ValueError, match="gaps range 2-3 mm"):
        read_dicom_series(tmp_path)
    with pytest.warns(UserWarning, match="non-uniform"):
        volume = read_dicom_series(tmp_path, allow_nonuniform=True)
    np.testing.assert_allclose(volume.positions, [0, 2, 4, 7])


def test_oblique_series_sorted_along_the_normal_not_z(tmp_path):
    cos, sin = np.cos(np.pi / 3), np.sin(np.pi / 3)
    row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, cos, sin])
    normal = np.cross(row, col)  # (0, -sin, cos)
    distances = [4.0, 0.0, 2.0]  # along the normal
    offsets = [-6.0, 0.0, -3.0]  # in-plane origin shifts along the column direction
    for k, (d, o) in enumerate(zip(distances, offsets)):
        write_slice(
            tmp_path / f"s{k}", slice_pixels(k), d * normal + o * col, orientation=(*row, *col)
        )
    z = [(d * normal + o * col)[2] for d, o in zip(distances, offsets)]
    assert np.argsort(z).tolist() != np.argsort(distances).tolist()  # z order is another order
    volume = read_dicom_series(tmp_path)
    np.testing.assert_allclose(volume.positions, [0.0, 2.0, 4.0], atol=1e-4)
    assert [os.path.basename(f) for f in volume.files] == ["s1", "s2", "s0"]
    assert volume.spacing[0] == pytest.approx(2.0, abs=1e-4)
    np.testing.assert_allclose(volume.affine[:3, 2], normal * volume.spacing[0], atol=1e-6)


def test_missing_positions_fall_back_to_instance_number(tmp_path):
    for k, instance in enumerate([3, 1, 2]):
        write_slice(tmp_path / f"s{k}", slice_pixels(k), None, instance=instance)
    with pytest.warns(UserWarning, match="InstanceNumber"):
        volume = read_dicom_series(tmp_path)
    assert [os.path.basename(f) for f in volume.files] == ["s1", "s2", "s0"]
    np.testing.assert_array_equal(volume.positions, [1, 2, 3])
    assert volume.spacing[0] == 3.0  # SliceThickness
    assert volume.affine is None and "instance numbers" in volume.notes[0]
    with pytest.raises(ValueError, match="Received: missing_positions='error'"):
        read_dicom_series(tmp_path, missing_positions="error")


def test_mixed_sizes_name_the_sizes(tmp_path):
    write_slice(tmp_path / "s0", slice_pixels(0, (4, 3)), (0, 0, 0))
    write_slice(tmp_path / "s1", slice_pixels(1, (5, 3)), (0, 0, 1))
    with pytest.raises(ValueError, match=r"mixes image sizes.*4x3.*5x3"):
        read_dicom_series(tmp_path)


def test_compressed_without_decoder_names_the_plugin(tmp_path):
    write_slice(tmp_path / "s0", slice_pixels(0), (0, 0, 0), transfer_syntax=JPEGLosslessSV1)
    with pytest.raises(RuntimeError) as info:
        read_dicom_series(tmp_path)
    message = str(info.value)
    assert "pip install pylibjpeg pylibjpeg-libjpeg" in message and "python-gdcm" in message
    assert "JPEG Lossless" in message and str(tmp_path / "s0") in message


def test_recursive_and_missing_folder(tmp_path):
    sub = tmp_path / "study" / "series"
    sub.mkdir(parents=True)
    for k in range(2):
        write_slice(sub / f"s{k}", slice_pixels(k), (0, 0, 2 * k))
    with pytest.raises(ValueError, match="No DICOM image files"):
        read_dicom_series(tmp_path)
    assert read_dicom_series(tmp_path, recursive=True).array.shape == (2, 4, 3)
    with pytest.raises(FileNotFoundError, match="nope"):
        read_dicom_series(tmp_path / "nope")
    with pytest.raises(ValueError, match="Received: missing_positions='x'"):
        read_dicom_series(sub, missing_positions="x")


def test_no_warning_for_a_clean_folder(tmp_path):
    for k in range(2):
        write_slice(tmp_path / f"s{k}", slice_pixels(k), (0, 0, k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        volume = read_dicom_series(tmp_path)
    assert volume.notes == [] and volume.report.skipped == []


def test_unreadable_dicom_file_follows_the_strict_rule(tmp_path):
    for k in range(3):
        write_slice(tmp_path / f"s{k}", slice_pixels(k), (0, 0, k))
    ds = pydicom.dcmread(tmp_path / "s1")
    del ds.SeriesInstanceUID  # an image that may be a slice of the series: a problem
    ds.save_as(tmp_path / "s1")
    (tmp_path / "DICOMDIR.txt").write_text("not dicom")  # not a problem
    with pytest.raises(LoadError) as info:
        read_dicom_series(tmp_path)  # strict by default
    message = str(info.value)
    assert f"{tmp_path / 's1'}: DICOM image without SeriesInstanceUID" in message
    assert "1 file(s) cannot be used" in message and "DICOMDIR" not in message
    with pytest.warns(UserWarning, match=r"2 file\(s\) not loaded"):
        volume = read_dicom_series(tmp_path, strict=False)
    assert [os.path.basename(f) for f in volume.files] == ["s0", "s2"]
    assert [p.path for p in volume.report.problems] == [str(tmp_path / "s1")]
    assert [p.path for p in volume.report.ignored] == [str(tmp_path / "DICOMDIR.txt")]
    np.testing.assert_array_equal(volume.positions, [0, 2])
