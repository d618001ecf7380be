"""CT intensity windowing and the max-filter downsampling of Patel et al. (2019)."""

import numpy as np

from kerasmed.preprocessing.intensity import check_finite

__all__ = ["WINDOWS", "window_hu", "max_filter_downsample"]

# Common CT display windows, in Hounsfield units: `window_hu(volume, **WINDOWS["subdural"])`.
WINDOWS = {
    "brain": {"center": 40.0, "width": 80.0},
    "subdural": {"center": 80.0, "width": 200.0},
    "stroke": {"center": 40.0, "width": 40.0},
    "bone": {"center": 600.0, "width": 2800.0},
    "lung": {"center": -600.0, "width": 1500.0},
    "soft_tissue": {"center": 50.0, "width": 350.0},
}


def window_hu(volume, center=40.0, width=80.0, out_range=(0.0, 1.0)):
    """Clips Hounsfield units to a display window and rescales them linearly.

    Values below `center - width / 2` map to `out_range[0]`, values above `center + width / 2` to
    `out_range[1]`, and values in between linearly. (This is the plain linear window, not DICOM's
    VOI LUT variant with its half-unit offsets.) Presets are in `WINDOWS`.

    Args:
        volume: array of any shape, in HU.
        center: window center (level) in HU. Default 40 (brain window).
        width: window width in HU, > 0. Default 80 (brain window).
        out_range: (low, high) output values, low < high.

    Raises:
        ValueError: `volume` holds NaN or infinite values, or `center` / `width` is not finite.

    Returns:
        float32 array of the same shape, in `out_range`.

    Example:

    >>> window_hu(np.array([-100.0, 0.0, 40.0, 80.0, 1000.0]))
    array([0. , 0. , 0.5, 1. , 1. ], dtype=float32)
    >>> window_hu(np.array([-1000.0, 600.0]), **WINDOWS["bone"], out_range=(-1, 1))
    array([-1.,  0.], dtype=float32)
    """
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"`width` must be positive and finite. Received: width={width}")
    if not np.isfinite(center):
        raise ValueError(f"`center` must be finite. Received: center={center}")
    low, high = (float(v) for v in out_range)
    if not low < high:
        raise ValueError(
            f"`out_range` must be (low, high) with low < high. Received: out_range={out_range}"
        )
    volume = np.asarray(volume, dtype=np.float32)
    check_finite(volume, "volume", "the windowed output (NaN is no window value)")
    lower = center - width / 2.0
    scaled = (volume - np.float32(lower)) / np.float32(width)
    return (np.clip(scaled, 0.0, 1.0) * (high - low) + low).astype(np.float32)


def max_filter_downsample(array, factor=2, odd="pad"):
    """Downsamples by the maximum over non-overlapping blocks (the paper's "maximum filter").

    Patel et al. apply a 2x2 maximum filter to each 512x512 slice to obtain 256x256 inputs, and a
    2x2x2 one to whole volumes, "to reduce the dimensionality whilst retaining high intensity
    hemorrhagic regions". That is non-overlapping max pooling with stride equal to the kernel,
    which this function computes with a reshape and `max`. A 2D array gets a 2x2 filter and a 3D
    one 2x2x2 by default; pass a tuple to choose per axis, e.g. `factor=(1, 2, 2)` for a 2x2 filter
    on every slice of a (Z, Y, X) volume, or `(2, 2, 1)` for an (H, W, C) image.

    Args:
        array: NumPy array.
        factor: int (the same block size on every axis) or a tuple with one int per axis.
        odd: what to do when an axis length is not a multiple of its factor. `"pad"` (default)
            keeps the trailing partial block (output length `ceil(n / f)`; like Keras pooling
            with `padding="same"`), so no voxel, and no bright spot, is lost; `"crop"` drops the
            trailing remainder (output `n // f`; like `padding="valid"`).

    Returns:
        array of the same dtype, each axis divided by its factor.

    Example:

    >>> max_filter_downsample(np.array([[1, 2, 0, 0], [3, 4, 0, 9]]))
    array([[4, 9]])
    >>> max_filter_downsample(np.arange(5), odd="pad"), max_filter_downsample(np.arange(5), odd="crop")
    (array([1, 3, 4]), array([1, 3]))

    Reference:
        Patel et al., "Intracerebral Haemorrhage Segmentation in Non-Contrast CT", IEEE Access
        2019, Sections III-C1 and III-C2.
    """
    array = np.asarray(array)
    factors = (factor,) * array.ndim if np.isscalar(factor) else tuple(factor)
    if len(factors) != array.ndim or any(int(f) != f or f < 1 for f in factors):
        raise ValueError(
            f"`factor` must be a positive int or one positive int per axis of the "
            f"{array.ndim}D array. Received: factor={factor}"
        )
    if odd not in ("pad", "crop"):
        raise ValueError(f"`odd` must be 'pad' or 'crop'. Received: odd={odd!r}")
    factors = tuple(int(f) for f in factors)
    if odd == "crop":
        array = array[tuple(slice(0, (n // f) * f) for n, f in zip(array.shape, factors))]
    else:
        # Repeating the edge keeps each partial block's maximum equal to that of its real voxels.
        widths = [(0, -n % f) for n, f in zip(array.shape, factors)]
        if any(w for _, w in widths):
            array = np.pad(array, widths, mode="edge")
    blocks = []
    for n, f in zip(array.shape, factors):
        blocks.extend((n // f, f))
    return array.reshape(blocks).max(axis=tuple(range(1, 2 * array.ndim, 2)))
