"""Reading a NIfTI file into a (Z, Y, X) `Volume` in canonical RAS+ orientation."""

import os

import nibabel
import numpy as np

from kerasmed.io.dicom import Volume

__all__ = ["read_nifti"]


def read_nifti(path):
    """Reads a 3D NIfTI image (.nii or .nii.gz) into a `Volume` of shape (Z, Y, X).

    The image is first reoriented with `nibabel.as_closest_canonical`, so its voxel axes point (as
    closely as the affine allows, by axis permutations and flips only, without resampling) to
    Right, Anterior and Superior. The canonical (i, j, k) data array is then transposed to
    (Z, Y, X) = (k, j, i): `array[z, y, x]`, with z increasing towards Superior (the axial slice
    index), y towards Anterior and x towards the patient's Right.

    This differs from `read_dicom_series`, whose arrays follow DICOM's LPS patient axes (rows
    towards Posterior, columns towards Left for an axial series): flip axes 1 and 2 to go
    from one to the other for standard axial acquisitions.

    Intensity scaling (scl_slope/scl_inter) is applied by nibabel. A 4D image is accepted only if
    its fourth axis has length 1.

    Args:
        path: path to a .nii or .nii.gz file.

    Returns:
        A `Volume` with `array` (Z, Y, X) float32, `spacing` (z, y, x) in mm from the canonical
        header zooms, `positions` (Z,) in mm along the slice axis (world position of each slice's
        first voxel projected on that axis' unit vector), `files` = [path], `affine` (the
        canonical image's affine: voxel (x, y, z, 1) to RAS+ mm) and `series_uid=None`.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the image is not 3D.

    Example:

    >>> import os, tempfile, nibabel, numpy as np
    >>> data = np.zeros((4, 3, 2), dtype=np.float32)  # (i, j, k) = (x, y, z)
    >>> path = os.path.join(tempfile.mkdtemp(), "image.nii.gz")
    >>> nibabel.save(nibabel.Nifti1Image(data, np.diag([0.5, 0.75, 2.0, 1.0])), path)
    >>> volume = read_nifti(path)
    >>> volume.array.shape, volume.spacing
    ((2, 3, 4), (2.0, 0.75, 0.5))

    Reference:
        NIfTI-1 data format (nifti.nimh.nih.gov); nibabel's "Coordinate systems and affines".
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"NIfTI file not found: {path}")
    image = nibabel.load(path)
    if image.ndim == 4 and image.shape[3] == 1:
        image = image.slicer[..., 0]
    if image.ndim != 3:
        raise ValueError(
            f"read_nifti reads 3D images; {path} has shape {image.shape}. Received: path={path!r}"
        )
    canonical = nibabel.as_closest_canonical(image)
    data = canonical.get_fdata(dtype=np.float32)
    array = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))
    zooms = [float(z) for z in canonical.header.get_zooms()[:3]]
    affine = np.asarray(canonical.affine, dtype=np.float64)
    axis = affine[:3, 2]
    norm = np.linalg.norm(axis)
    k = np.arange(array.shape[0])
    origins = affine[:3, 3][None, :] + k[:, None] * axis[None, :]
    positions = origins @ (axis / norm) if norm > 0 else k.astype(np.float64)
    return Volume(
        array=array,
        spacing=(zooms[2], zooms[1], zooms[0]),
        positions=positions,
        series_uid=None,
        files=[path],
        affine=affine,
        modality=None,
        notes=[],
    )
