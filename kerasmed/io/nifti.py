"""Reading a NIfTI file into a (Z, Y, X) `Volume` in canonical RAS+ orientation."""

import os
import warnings

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

    Voxels that are NaN or infinite are kept (some tools write NaN backgrounds), counted in
    `Volume.notes` and warned about, with the file's name; `kerasmed.preprocessing.zscore_nonzero`
    refuses them.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the file cannot be read as NIfTI (empty, truncated, not NIfTI: the message
            names it and gives nibabel's reason), the image is not 3D, or its affine holds a
            NaN / infinite value or is singular (an axis of zero length), or its voxel sizes
            are not positive.

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
    try:
        image = nibabel.load(path)
    except Exception as error:  # nibabel's ImageFileError, gzip / OS errors
        raise _unreadable(path, error) from error
    if image.ndim == 4 and image.shape[3] == 1:
        image = image.slicer[..., 0]
    if image.ndim != 3:
        raise ValueError(
            f"read_nifti reads 3D images; {path} has shape {image.shape}. Received: path={path!r}"
        )
    matrix = np.asarray(image.affine, dtype=np.float64)
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
        raise ValueError(
            f"{path} has a degenerate affine (NaN / infinite values, or an axis of zero length), "
            f"so its voxels have no position. Received: affine={np.round(matrix, 4).tolist()}"
        )
    canonical = nibabel.as_closest_canonical(image)
    try:
        data = canonical.get_fdata(dtype=np.float32)
    except Exception as error:  # truncated data, bad compression
        raise _unreadable(path, error) from error
    array = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))
    zooms = [float(z) for z in canonical.header.get_zooms()[:3]]
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        raise ValueError(
            f"{path} has voxel sizes that are not positive (pixdim). Received: zooms={zooms}"
        )
    notes = []
    bad = int(data.size - np.isfinite(data).sum())
    if bad:
        notes.append(f"{bad} voxel(s) of {path} are NaN or infinite")
        warnings.warn(notes[-1], stacklevel=2)
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
        notes=notes,
    )


def _unreadable(path, error):
    return ValueError(
        f"cannot read the NIfTI file {path} ({type(error).__name__}: {error}). "
        f"Received: path={path!r}"
    )
