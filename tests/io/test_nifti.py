import nibabel
import numpy as np
import pytest

from kerasmed.io.nifti import read_nifti


def world(affine, index):
    return (affine @ np.r_[index, 1.0])[:3]


def check_same_world_positions(original, volume):
    """Every voxel value sits at the same world coordinate before and after reading."""
    data = np.asarray(original.dataobj)
    for i, j, k in np.ndindex(data.shape):
        value = data[i, j, k]
        z, y, x = np.argwhere(volume.array == value)[0]  # values are unique
        np.testing.assert_allclose(
            world(volume.affine, [x, y, z]), world(original.affine, [i, j, k]), atol=1e-5
        )


def test_flipped_axis_becomes_ras_and_zyx(tmp_path):
    data = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)  # (i, j, k)
    affine = np.array(
        [[-0.5, 0, 0, 10.0], [0, 0.75, 0, -20.0], [0, 0, 2.0, 30.0], [0, 0, 0, 1]]
    )  # i runs towards Left: canonical orientation flips it
    path = tmp_path / "flipped.nii.gz"
    image = nibabel.Nifti1Image(data, affine)
    nibabel.save(image, path)
    volume = read_nifti(path)
    np.testing.assert_array_equal(volume.array, data[::-1].transpose(2, 1, 0))
    assert volume.array.shape == (2, 3, 4) and volume.array.dtype == np.float32
    assert volume.spacing == (2.0, 0.75, 0.5)
    np.testing.assert_allclose(volume.positions, [30.0, 32.0])
    assert np.all(np.diag(volume.affine)[:3] > 0)  # RAS+
    assert volume.files == [str(path)] and volume.series_uid is None
    check_same_world_positions(image, volume)


def test_permuted_axes(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    # i -> Superior (2 mm), j -> Right (0.5 mm), k -> Posterior (0.8 mm).
    affine = np.array([[0, 0.5, 0, 1.0], [0, 0, -0.8, 2.0], [2.0, 0, 0, 3.0], [0, 0, 0, 1]])
    path = tmp_path / "permuted.nii"
    image = nibabel.Nifti1Image(data, affine)
    nibabel.save(image, path)
    volume = read_nifti(path)
    # canonical (R, A, S) = (j, flipped k, i) -> (Z, Y, X) = (i, flipped k, j)
    np.testing.assert_array_equal(volume.array, data[:, :, ::-1].transpose(0, 2, 1))
    np.testing.assert_allclose(volume.spacing, (2.0, 0.8, 0.5), rtol=1e-6)
    check_same_world_positions(image, volume)


def test_intensity_scaling_and_singleton_4d(tmp_path):
    raw = np.arange(8, dtype=np.int16).reshape(2, 2, 2, 1)
    image = nibabel.Nifti1Image(raw, np.eye(4))
    image.header.set_slope_inter(2.0, -10.0)
    path = tmp_path / "scaled.nii.gz"
    nibabel.save(image, path)
    volume = read_nifti(path)
    np.testing.assert_array_equal(volume.array, (raw[..., 0] * 2.0 - 10.0).transpose(2, 1, 0))


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii"):
        read_nifti(tmp_path / "missing.nii")
    path = tmp_path / "4d.nii"
    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)), path)
    with pytest.raises(ValueError, match=r"\(2, 2, 2, 3\)"):
        read_nifti(path)
