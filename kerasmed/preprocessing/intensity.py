"""Intensity normalisation of MR images: the z-score over the brain (nonzero) voxels.

Reference: Gao, Phillips, Zheng, Min, Fletcher, Gerig, "Fully convolutional structured LSTM
networks for joint 4D medical image segmentation", ISBI 2018 (each modality of each time point
is standardised before it enters the network).
"""

from __future__ import annotations

import numpy as np

__all__ = ["zscore_nonzero"]


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
    finite = np.isfinite(volume)
    if not finite.all():
        raise ValueError(
            "`volume` holds NaN or infinite values, which would spread to every voxel. "
            f"Received: volume with {int(volume.size - finite.sum())} non-finite voxel(s)"
        )
    mask = volume != 0
    out = np.zeros(volume.shape, dtype="float32")
    if mask.any():
        values = volume[mask].astype("float64")
        std = values.std()
        out[mask] = (values - values.mean()) / (std if std > 0 else 1.0)
    return out
