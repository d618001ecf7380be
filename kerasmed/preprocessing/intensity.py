"""Intensity normalisation of MR images: the z-score over the brain (nonzero) voxels.

Reference: Gao, Phillips, Zheng, Min, Fletcher, Gerig, "Fully convolutional structured LSTM
networks for joint 4D medical image segmentation", ISBI 2018 (each modality of each time point
is standardised before it enters the network).
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_finite", "zscore_nonzero"]


def check_finite(array, name, spread="every voxel"):
    """Raises ``ValueError`` when the float `array` holds NaN or infinite values.

    Used where a NaN would spread (a mean over a volume, an interpolation) rather than stay
    in its voxel.

    Args:
        array: a NumPy array (integer arrays are always finite).
        name: the argument's name, for the message.
        spread: what the NaN would reach, for the message.

    Example:

    >>> check_finite(np.array([0.0, np.nan]), "volume")
    Traceback (most recent call last):
    ...
    ValueError: `volume` holds NaN or infinite values, which would spread to every voxel. Received: volume with 1 non-finite value(s) of 2
    """
    if array.dtype.kind in "fc":
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(
                f"`{name}` holds NaN or infinite values, which would spread to {spread}. "
                f"Received: {name} with {bad} non-finite value(s) of {array.size}"
            )


def zscore_nonzero(volume):
    """Standardises a skull-stripped image over its nonzero voxels; zero voxels stay 0.

    The nonzero voxels are taken as the brain: they become ``(v - mean) / std`` (mean and
    standard deviation over those voxels, computed in float64), and the zero voxels
    (background) stay exactly 0. A constant brain (``std == 0``) becomes 0 minus its mean,
    i.e. all zeros.

    Args:
        volume: array of any shape (a 3D volume, a 2D slice).

    Returns:
        A float32 array of the same shape.

    Raises:
        ValueError: `volume` holds NaN or infinite values (they would spread to every voxel).

    Example:

    >>> zscore_nonzero(np.array([0.0, 1.0, 3.0, 0.0])).tolist()  # brain: mean 2, std 1
    [0.0, -1.0, 1.0, 0.0]
    """
    volume = np.asarray(volume)
    if volume.dtype.kind not in "biufc":
        raise ValueError(f"`volume` must be numeric. Received: volume.dtype={volume.dtype}")
    check_finite(volume, "volume")
    mask = volume != 0
    out = np.zeros(volume.shape, dtype="float32")
    if mask.any():
        values = volume[mask].astype("float64")
        std = values.std()
        out[mask] = (values - values.mean()) / (std if std > 0 else 1.0)
    return out
