"""Resizing the 2D slices of a stack (a volume, a sequence) with OpenCV."""

from __future__ import annotations

import cv2
import numpy as np

from kerasmed.preprocessing.intensity import check_finite
from kerasmed.validation import check_int_tuple, check_one_of

__all__ = ["INTERPOLATIONS", "resize_slices"]

INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
_DTYPES = ("uint8", "uint16", "int16", "float32", "float64")  # OpenCV's, with every interpolation


def resize_slices(slices, size, interpolation="linear"):
    """Resizes every slice ``slices[i]`` of a stack to ``size`` with ``cv2.resize``.

    Use ``"linear"`` (bilinear) or ``"area"`` (the mean over the covered pixels; the better
    choice to shrink) for intensities and ``"nearest"`` for label maps, whose values must stay
    classes.

    Args:
        slices: ``(N, H, W)`` or ``(N, H, W, C)`` array (channels last), of type uint8,
            uint16, int16, float32 or float64 (the types OpenCV resizes with every
            interpolation; convert other types first).
        size: output ``(height, width)``, or an int for a square.
        interpolation: ``"linear"`` (default), ``"area"`` or ``"nearest"``.

    Returns:
        ``(N, height, width)`` or ``(N, height, width, C)``, of the input's type.

    Raises:
        ValueError: a bad `size` or `interpolation`, another shape or type, or NaN / infinite
            values (the interpolation would spread them to their neighbours).

    Example:

    >>> labels = np.array([[[0, 1], [2, 3]]], dtype="int16")  # one 2x2 slice
    >>> resize_slices(labels, (2, 4), "nearest")[0].tolist()
    [[0, 0, 1, 1], [2, 2, 3, 3]]
    >>> resize_slices(np.ones((3, 8, 8, 2), "float32"), 4, "area").shape
    (3, 4, 4, 2)
    """
    height, width = check_int_tuple(size, "size", 2)
    flag = INTERPOLATIONS[check_one_of(interpolation, "interpolation", tuple(INTERPOLATIONS))]
    slices = np.asarray(slices)
    if slices.ndim not in (3, 4):
        raise ValueError(
            f"`slices` must be (N, H, W) or (N, H, W, C). Received: slices.shape={slices.shape}"
        )
    if slices.dtype.name not in _DTYPES:
        raise ValueError(
            f"`slices` must be of type {', '.join(_DTYPES)} (OpenCV). "
            f"Received: slices.dtype={slices.dtype}"
        )
    check_finite(slices, "slices", "the neighbouring pixels of each resized slice")
    out = np.empty((len(slices), height, width, *slices.shape[3:]), dtype=slices.dtype)
    for i, image in enumerate(slices):
        out[i] = cv2.resize(image, (width, height), interpolation=flag).reshape(out.shape[1:])
    return out
