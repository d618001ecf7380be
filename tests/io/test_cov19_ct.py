"""Tests of `kerasmed.io.cov19_ct` on small COV19-CT-DB trees written with OpenCV.

Hostile cases (17), by group:

- slice files (problems, strict raises): truncated JPEG, zero-byte file, non-numeric name,
  the same number twice (``3.jpg`` and ``003.jpg``), a text file named ``.jpg`` (5);
- scans: empty scan folder (problem), a scan whose every slice is unreadable (problem), mixed
  slice sizes (the last slice's size kept, the others listed), a stray non-slice file
  (listed) (4);
- tree: unknown class folder (listed), a file where a scan folder belongs (listed), a split
  without a ``non-covid`` folder (listed), a missing split and a missing root
  (``FileNotFoundError``) (5);
- order: numbers 1..12 (``10.jpg`` after ``9.jpg``), leading zeros and gaps (``007.jpg``) (2);
- other formats: a scan folder holding one NIfTI volume, and one holding a DICOM series (the
  existing readers, in HU) (counted once: 1).
"""

import os

import cv2
import nibabel
import numpy as np
import pytest
from test_dicom import write_slice  # tests/io/test_dicom.py

from kerasmed.io import LoadError, index_cov19_ct, read_cov19_ct, read_cov19_scan


def _slice(value, size=(10, 12)):
    image = np.full(size, value, np.uint8)
    image[0, 0] = 255 - value  # not constant: a real image to encode
    return image


def _scan(folder, numbers, size=(10, 12), value=lambda n: 20 * n):
    os.makedirs(folder, exist_ok=True)
    for n in numbers:
        name = n if isinstance(n, str) else f"{n}.jpg"
        number = int(os.path.splitext(name)[0])
        assert cv2.imwrite(os.path.join(folder, name), _slice(value(number), size))


def _means(array):
    return [int(np.rint(np.median(s) / 20)) for s in array]


def test_order_labels_and_values(tmp_path):
    _scan(tmp_path / "train" / "covid" / "ct_scan_3", [5, 1, 12, 9, 10, 2, 11, 3, 4, 6, 7, 8])
    _scan(tmp_path / "train" / "non-covid" / "ct_scan_1", ["007.jpg", 2, 11])
    _scan(tmp_path / "validation" / "Non-Covid" / "ct_scan_0", [0, 1])
    with pytest.warns(UserWarning, match="no 'covid' folder in split 'validation'"):
        data = read_cov19_ct(tmp_path)
    assert [(s.split, s.scan_id, s.label) for s in data.scans] == [
        ("train", "ct_scan_3", 1), ("train", "ct_scan_1", 0), ("validation", "ct_scan_0", 0),
    ]  # fmt: skip
    covid = data.scans[0]
    assert covid.array.dtype == np.uint8 and covid.array.shape == (12, 10, 12)
    assert [os.path.basename(f) for f in covid.files][8:11] == ["9.jpg", "10.jpg", "11.jpg"]
    assert _means(covid.array) == list(range(1, 13))  # the slice written as number n
    assert _means(data.scans[1].array) == [2, 7, 11]
    assert data.labels.tolist() == [1, 0, 0]
    # the validation split has no covid folder: listed, not raised
    assert "no 'covid' folder in split 'validation'" in str(data.report)
    with pytest.warns(UserWarning):
        only = read_cov19_ct(tmp_path, splits="validation")
    assert [s.scan_id for s in only.scans] == ["ct_scan_0"]


def test_hostile_slices_are_problems(tmp_path):
    scan = tmp_path / "train" / "covid" / "ct_scan_0"
    _scan(scan, [1, 2, 3, 4, 6])
    data = (scan / "4.jpg").read_bytes()
    (scan / "4.jpg").write_bytes(data[: len(data) // 2])  # truncated
    (scan / "5.jpg").write_bytes(b"")  # zero-byte
    _scan(scan, ["003.jpg"])  # number 3 twice
    cv2.imwrite(str(scan / "slice_a.jpg"), _slice(10))  # not a number
    (scan / "7.jpg").write_text("not an image")
    (scan / "notes.txt").write_text("stray file")
    dead = tmp_path / "train" / "covid" / "ct_scan_1"
    dead.mkdir()
    (dead / "0.jpg").write_bytes(b"")
    (tmp_path / "train" / "covid" / "ct_scan_2").mkdir()  # empty scan folder
    _scan(tmp_path / "train" / "non-covid" / "ct_scan_9", [0, 1])
    (tmp_path / "train" / "non-covid" / "ct_scan_9.zip").write_bytes(b"PK")
    _scan(tmp_path / "train" / "unknown" / "ct_scan_5", [0])
    (tmp_path / "validation" / "covid").mkdir(parents=True)
    (tmp_path / "validation" / "non-covid").mkdir()
    expected = [
        f"{scan}/slice_a.jpg: slice file name is not a number: 'slice_a.jpg'",
        f"{scan}/3.jpg: slice number 3 twice (also 003.jpg)",
        f"{scan}/4.jpg: truncated JPEG (no end-of-image marker)",
        f"{scan}/5.jpg: empty (zero-byte) slice file",
        f"{scan}/7.jpg: not a readable image (OpenCV cannot decode it)",
        f"{dead}/0.jpg: empty (zero-byte) slice file",
        f"{dead}: no readable slice in the scan folder",
        f"{tmp_path}/train/covid/ct_scan_2: empty scan folder: no slices",
    ]
    with pytest.raises(LoadError) as info:
        read_cov19_ct(tmp_path)
    for line in expected:
        assert line in str(info.value), line
    assert sorted(map(str, info.value.report.problems)) == sorted(expected)
    with pytest.warns(UserWarning, match="slice_a.jpg"):
        data = read_cov19_ct(tmp_path, strict=False)
    assert [s.scan_id for s in data.scans] == ["ct_scan_0", "ct_scan_9"]
    kept = data.scans[0]
    assert [os.path.basename(f) for f in kept.files] == ["1.jpg", "2.jpg", "003.jpg", "6.jpg"]
    assert _means(kept.array) == [1, 2, 3, 6]
    ignored = "\n".join(map(str, data.report.ignored))
    for line in (
        f"{scan}/notes.txt: not a slice file",
        f"{tmp_path}/train/unknown: not a class folder (expected covid or non-covid)",
        f"{tmp_path}/train/non-covid/ct_scan_9.zip: a file where a scan folder was expected",
    ):
        assert line in ignored, line
    with pytest.raises(LoadError, match="truncated JPEG"):
        read_cov19_scan(index_cov19_ct(tmp_path, ["train"])[0][0])


def test_mixed_sizes_keep_the_last_slice_size(tmp_path):
    scan = tmp_path / "train" / "covid" / "ct_scan_0"
    _scan(scan, [0, 1, 2], size=(16, 16))
    _scan(scan, [3], size=(10, 12))
    _scan(scan, [4, 5], size=(16, 16))
    with pytest.warns(UserWarning, match="mixed sizes"):
        data = read_cov19_ct(tmp_path, splits=["train"])  # listed, never raised
    assert data.scans[0].array.shape == (5, 16, 16)
    assert _means(data.scans[0].array) == [0, 1, 2, 4, 5]
    assert [str(p) for p in data.report.ignored if p.item] == [
        f"{scan}/3.jpg: slice of size 10x12, not the last slice's 16x16 (mixed sizes: the "
        "last slice's size is kept)"
    ]


def test_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="COV19-CT-DB folder not found"):
        read_cov19_ct(tmp_path / "nowhere")
    _scan(tmp_path / "train" / "covid" / "a", [0])
    with pytest.raises(FileNotFoundError, match=r"validation \(folders there: \['train'\]\)"):
        read_cov19_ct(tmp_path)


def test_nifti_and_dicom_scan_folders(tmp_path):
    hu = np.arange(3 * 4 * 5, dtype=np.float32).reshape(5, 4, 3) - 1000  # (x, y, z) stored
    nifti = tmp_path / "train" / "covid" / "ct_scan_n"
    nifti.mkdir(parents=True)
    nibabel.save(nibabel.Nifti1Image(hu, np.eye(4)), nifti / "scan.nii.gz")
    dicom = tmp_path / "train" / "non-covid" / "ct_scan_d"
    dicom.mkdir(parents=True)
    raw = [np.full((4, 4), 10 * k, np.int16) for k in range(3)]
    for k, z in enumerate([10.0, 0.0, 5.0]):
        write_slice(dicom / f"IM{k}.dcm", raw[k], (0.0, 0.0, z), instance=k + 1)
    data = read_cov19_ct(tmp_path, splits=["train"])
    volume, series = data.scans
    assert (volume.kind, volume.label, volume.array.shape) == ("hu", 1, (3, 4, 5))
    np.testing.assert_array_equal(volume.array, hu.transpose(2, 1, 0))  # (z, y, x)
    assert (series.kind, series.label) == ("hu", 0)
    # slices along z (0, 5, 10) = files IM1, IM2, IM0; HU = 2 * stored - 1000
    np.testing.assert_array_equal(series.array[:, 0, 0], [2 * 10 - 1000, 2 * 20 - 1000, -1000])
