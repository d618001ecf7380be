"""The data augmentation of Patel et al. (2019): rotation, left-right mirroring and shifts.

Every function works on a 2D slice (H, W), a channels-last slice (H, W, C), a volume (Z, Y, X) or
(Z, Y, X, C): `axes` names the (row, column) axes of the image plane. The default `(-2, -1)` fits
(H, W) slices and (Z, Y, X) volumes; pass `axes=(-3, -2)` for channels-last arrays. A volume is
transformed in-plane, i.e. the same 2D transform is applied to every slice.

Interpolation is linear (`order=1`) with `reshape=False` (the shape never changes). Voxels coming
from outside the image take the value of the nearest edge voxel (`mode="nearest"`) by default:
for CT the border of a slice is air, so this fills with air whatever the intensity scale (HU or
windowed), and it is the same for a volume and for each of its slices. Pass `mode="constant"`
with `cval` (e.g. -1024 HU, or 0 after windowing) for a fixed background instead.
"""

import numpy as np
import scipy.ndimage

from kerasmed.preprocessing.intensity import check_finite

__all__ = ["rotate_image", "mirror_image", "shift_image", "augment_paper", "PAPER_OPS"]

PAPER_OPS = ("none", "rotate", "mirror", "shift")


def _normalize_axes(axes, ndim, name="axes"):
    try:
        given = tuple(int(a) for a in axes)
    except (TypeError, ValueError):
        given = None
    normalized = () if given is None else tuple(a % ndim for a in given if -ndim <= a < ndim)
    if given is None or len(normalized) != len(given) or len(set(normalized)) != len(normalized):
        raise ValueError(
            f"`{name}` must hold distinct axes of the {ndim}D array. Received: {name}={axes}"
        )
    return normalized


def rotate_image(array, angle, axes=(-2, -1), order=1, mode="nearest", cval=0.0):
    """Rotates an image or volume in the plane of `axes` by `angle` degrees (shape preserved).

    Args:
        array: (H, W), (H, W, C), (Z, Y, X) or (Z, Y, X, C) array.
        angle: rotation angle in degrees (counter-clockwise as displayed with row 0 at the top,
            scipy's convention).
        axes: the two axes of the rotation plane. Default (-2, -1).
        order: spline interpolation order (1 = linear).
        mode: how points outside the input are filled, as in `scipy.ndimage.rotate`.
        cval: fill value when `mode="constant"`.

    Returns:
        The rotated array, same shape and dtype.

    Example:

    >>> image = np.zeros((3, 3)); image[0, 1] = 1.0
    >>> rotate_image(image, 90).round(6)
    array([[0., 0., 0.],
           [1., 0., 0.],
           [0., 0., 0.]])
    """
    array = np.asarray(array)
    plane = _normalize_axes(axes, array.ndim)
    if len(plane) != 2:
        raise ValueError(f"`axes` must name exactly two axes. Received: axes={axes}")
    if not np.isfinite(angle):
        raise ValueError(f"`angle` must be a finite number of degrees. Received: angle={angle}")
    check_finite(array, "array", "the neighbouring voxels of the rotated image")
    return scipy.ndimage.rotate(
        array, angle, axes=plane, reshape=False, order=order, mode=mode, cval=cval
    )


def mirror_image(array, axis=-1):
    """Mirrors over the vertical axis: flips left and right (the column axis).

    Args:
        array: (H, W), (Z, Y, X), ... array.
        axis: the column axis. Default -1; use -2 for channels-last arrays.

    Returns:
        The flipped array (a copy).

    Example:

    >>> mirror_image(np.array([[1, 2, 3], [4, 5, 6]]))
    array([[3, 2, 1],
           [6, 5, 4]])
    """
    array = np.asarray(array)
    (axis,) = _normalize_axes((axis,), array.ndim, name="axis")
    return np.flip(array, axis=axis).copy()


def shift_image(array, shift, axes=(-2, -1), order=1, mode="nearest", cval=0.0):
    """Translates an image or volume by `shift` voxels along `axes` (shape preserved).

    Args:
        array: (H, W), (H, W, C), (Z, Y, X) or (Z, Y, X, C) array.
        shift: one number per axis in `axes` (voxels; positive moves content to higher indices).
        axes: the axes to shift along. Default (-2, -1) (in-plane); e.g. (-3, -2, -1) also shifts
            a (Z, Y, X) volume along z.
        order: spline interpolation order (integer shifts are exact with any order).
        mode: how points outside the input are filled, as in `scipy.ndimage.shift`.
        cval: fill value when `mode="constant"`.

    Returns:
        The shifted array, same shape and dtype.

    Example:

    >>> shift_image(np.array([[1.0, 2.0, 3.0]]), (0, 1), mode="constant")
    array([[0., 1., 2.]])
    """
    array = np.asarray(array)
    axes = _normalize_axes(axes, array.ndim)
    shift = np.atleast_1d(np.asarray(shift, dtype=np.float64))
    if shift.shape != (len(axes),):
        raise ValueError(
            f"`shift` needs one value per axis in axes={axes}. Received: shift={shift.tolist()}"
        )
    if not np.isfinite(shift).all():
        raise ValueError(f"`shift` must be finite. Received: shift={shift.tolist()}")
    check_finite(array, "array", "the neighbouring voxels of the shifted image")
    full = np.zeros(array.ndim)
    full[list(axes)] = shift
    return scipy.ndimage.shift(array, full, order=order, mode=mode, cval=cval)


def augment_paper(
    array,
    rng,
    max_angle=25.0,
    max_shift=15,
    axes=(-2, -1),
    rotation_planes=None,
    shift_axes=None,
    order=1,
    mode="nearest",
    cval=0.0,
):
    """Applies the paper's augmentation: one of identity, rotation, mirroring or shift.

    Each call picks one of the four with equal probability (Patel et al.: "samples had equal
    probability of being used in their original form or as a rotated, mirrored or shifted
    variant"): a rotation by an angle uniform in [-max_angle, max_angle] degrees, a left-right
    flip, or a shift by integers uniform in [-max_shift, max_shift] voxels along each shift axis
    (integer shifts need no interpolation).

    The defaults follow Section III-C1 (2D slices: in-plane rotation, shifts in x and y). For the
    volumes of Section III-C2 ("rotations over a randomly selected axis", "shifting in all
    directions") pass `rotation_planes=[(0, 1), (0, 2), (1, 2)]` and `shift_axes=(0, 1, 2)`; by
    default a volume is rotated and shifted in-plane, the same for every slice.

    Args:
        array: (H, W), (H, W, C), (Z, Y, X) or (Z, Y, X, C) array.
        rng: a `numpy.random.Generator` (the only source of randomness).
        max_angle: maximum absolute rotation in degrees. Default 25.
        max_shift: maximum absolute shift in voxels. Default 15.
        axes: the (row, column) axes of the image plane; the mirror flips `axes[1]`.
        rotation_planes: list of axis pairs; each rotation picks one at random. Default: `[axes]`.
        shift_axes: axes to shift along. Default: `axes`.
        order, mode, cval: interpolation settings, see `rotate_image`.

    Returns:
        (augmented array, op name), the name being one of `PAPER_OPS`:
        "none", "rotate", "mirror", "shift".

    Example:

    >>> rng = np.random.default_rng(0)
    >>> image = np.arange(16.0).reshape(4, 4)
    >>> augmented, op = augment_paper(image, rng)
    >>> augmented.shape, op in PAPER_OPS
    ((4, 4), True)

    Reference:
        Patel et al., "Intracerebral Haemorrhage Segmentation in Non-Contrast CT", IEEE Access
        2019, Sections III-C1 and III-C2.
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"`rng` must be a numpy.random.Generator. Received: rng={rng!r}")
    if not (np.isfinite(max_angle) and np.isfinite(max_shift)) or max_angle < 0 or max_shift < 0:
        raise ValueError(
            f"`max_angle` and `max_shift` must be >= 0. Received: max_angle={max_angle}, "
            f"max_shift={max_shift}"
        )
    array = np.asarray(array)
    op = PAPER_OPS[int(rng.integers(len(PAPER_OPS)))]
    if op == "rotate":
        planes = [tuple(axes)] if rotation_planes is None else [tuple(p) for p in rotation_planes]
        plane = planes[int(rng.integers(len(planes)))]
        angle = rng.uniform(-max_angle, max_angle)
        return rotate_image(array, angle, axes=plane, order=order, mode=mode, cval=cval), op
    if op == "mirror":
        return mirror_image(array, axis=tuple(axes)[1]), op
    if op == "shift":
        shift_axes = tuple(axes) if shift_axes is None else tuple(shift_axes)
        shift = rng.integers(-int(max_shift), int(max_shift) + 1, size=len(shift_axes))
        return shift_image(array, shift, axes=shift_axes, order=order, mode=mode, cval=cval), op
    return array.copy(), op
