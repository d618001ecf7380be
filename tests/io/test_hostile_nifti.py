"""Hostile NIfTI files for `kerasmed.io.read_nifti` (issue 13, groups 1-3).

| group                              | cases |
| ---------------------------------- | ----- |
| 1 unreadable file                  | 5     |
| 2 degenerate affine (sform)        | 4     |
| 3 non-finite voxels (noted)        | 2     |
"""

import os

import nibabel
import numpy as np
import pytest

from kerasmed.io import read_nifti


def _nii(folder, name="x.nii", data=None):
    path = os.path.join(folder, name)
    data = np.zeros((8, 8, 3), np.float32) if data is None else data
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), path)
    return path


def _with_sform(path, affine):
    """Writes `affine` into the header's sform (sform_code 1, qform_code 0) as stored bytes,
    which nibabel's writer would refuse to decompose."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[252:256] = np.array([0, 1], np.int16).tobytes()  # qform_code, sform_code
    data[280:328] = np.asarray(affine, np.float32)[:3].tobytes()  # srow_x, srow_y, srow_z
    with open(path, "wb") as f:
        f.write(bytes(data))


def _cut(size):
    def damage(path):
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:size])

    return damage


UNREADABLE = {
    "empty": ("x.nii", _cut(0), "Empty file"),
    "voxels_cut": ("x.nii", _cut(400), "Expected 768 bytes"),
    "gzip_cut": ("x.nii.gz", _cut(40), "cannot read the NIfTI file"),
    "text": ("x.nii.gz", lambda p: open(p, "w").write("hello"), "not a gzip file"),
    "header_cut": ("x.nii", _cut(100), "cannot read the NIfTI file"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_file_is_a_value_error_naming_it(tmp_path, case):
    name, damage, message = UNREADABLE[case]
    path = _nii(tmp_path, name)
    damage(path)
    with pytest.raises(ValueError, match=message) as info:
        read_nifti(path)
    assert f"Received: path={path!r}" in str(info.value)


AFFINES = {
    "nan": np.diag([1.0, 1.0, np.nan, 1.0]),
    "inf": np.diag([1.0, np.inf, 1.0, 1.0]),
    "zero_axis": np.diag([1.0, 1.0, 0.0, 1.0]),
    "parallel_axes": np.array([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
}


@pytest.mark.parametrize("case", sorted(AFFINES))
def test_degenerate_affine_is_refused(tmp_path, case):
    path = _nii(tmp_path)
    _with_sform(path, AFFINES[case])
    with pytest.raises(ValueError, match=r"x.nii has a degenerate affine.*Received: affine="):
        read_nifti(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_voxels_are_kept_and_noted(tmp_path, value):
    data = np.zeros((8, 8, 3), np.float32)
    data[0, 0, :2] = value
    path = _nii(tmp_path, data=data)
    with pytest.warns(UserWarning, match=r"2 voxel\(s\) of .*x.nii are NaN or infinite"):
        volume = read_nifti(path)
    assert np.count_nonzero(~np.isfinite(volume.array)) == 2
    assert volume.notes == [f"2 voxel(s) of {path} are NaN or infinite"]
