"""A synthetic chest CT with ground-glass opacities: the embedded default data of paper 003.

`simulate_chest_ct` draws scans in Hounsfield units that look like coarse chest CTs as
COV19-CT-DB holds them: air (-1000 HU) around an elliptical body of soft tissue (0 to 40 HU)
with a thin fat layer (-100 HU), two lungs (about -850 HU, a smooth texture) whose cross-section
rises and falls along z -- no lung in the first and last slices (neck, abdomen), the largest in
between, at a random height and with a random skew -- small vessels in the lungs, a faint
denser band in the dependent (posterior) lung (-760 to -660 HU, as atelectasis and gravity
give), small single-slice GGO-like mimics (hazy patches one slice thick, as motion and the
partial volume of fissures and of the diaphragm give), a scanner table under the body, a slight
blur and Gaussian noise. The scans have 50 to 300 slices (the spacing along z follows: the
chest is about 300 mm long).

Nothing but the lesions depends on the label: scan ``i``'s anatomy, slice count, densities,
mimics, table and noise come from one random stream seeded by ``(seed, i)``, its lesions from
another, so the same scan with and without GGO differs only around the lesions, and body or
lung density cannot tell the classes apart (``tests/data/test_chest_ct_phantom.py`` checks it).

Positive scans carry two to five ground-glass opacities (GGO, -450 to -300 HU, inside the
-700 ... -300 HU range): 3D blobs in one lung, each over 16 to 32 % of the scan's slices. In
most scans they lie in the lungs' central part, where the lung is at least 60 % of its widest,
which the lung-area window (`kerasmed.preprocessing.select_lung_slices`) covers, as COVID-19's
GGOs fill much of the lungs; in 15 % of the positive scans they lie only in the bases and
apices (lung under 40 % of its widest), mostly outside that window. That makes the three ways
of reading a scan differ: one random slice (a third of the slices are outside the lungs) often
misses the lesions; the window sees them in most scans; all slices see every lesion. With the
pooled fraction of lung pixels in -700 ... -300 HU and the lung's mean HU, a cross-validated
logistic regression on 64 scans (seeds 0, 1, 2; ``tests/data/test_chest_ct_phantom.py``) gives
AUC 0.75-0.77 (one random slice), 0.97-0.98 (lung window), 0.98-1.00 (all slices). These
features use the true lung mask; a CNN that has to find the lesions in the 8-bit slices does
worse (experiment ``two-step``).

A few scans (`mixed_size_fraction`) have one slice of another size (the last one, reconstructed
on a 1.25 x larger matrix), as some COV19-CT-DB scans do; these scans are lists of 2D arrays
(``mixed_size[i]`` is ``True``), the others ``(n, H, W)`` arrays.

Selecting slices on these 64 x 64 slices needs smaller filters than the authors' (5 and 10,
for 512 x 512): ``select_lung_slices(volume, filter_size=1, crop_filter_size=2)``.

Reference: the task of Hsu et al., *Spatiotemporal feature learning based on two-step LSTM and
Transformer for CT scans* (COV19-CT-DB); the phantom is ours.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.ndimage

from kerasmed.preprocessing.ct import window_hu
from kerasmed.validation import check_non_negative_int, check_one_of, check_positive_int, check_rate

__all__ = ["ChestCTPhantom", "simulate_chest_ct", "to_8bit_slices"]

AIR_HU, TISSUE_HU, FAT_HU, LUNG_HU, TABLE_HU = -1000.0, 20.0, -100.0, -850.0, 100.0
GGO_HU = (-700.0, -300.0)
FIELD_OF_VIEW_MM, CHEST_LENGTH_MM = 350.0, 300.0
ODD_SLICE_SCALE = 1.25
MIMIC_RATE = 0.05  # chance of a single-slice mimic on a lung slice (both classes)
MIMIC_RADIUS = (0.25, 0.45)  # of the lung's half-axes
# Lesions of the positive scans (a scan's lesion draws come from their own random stream).
LESIONS = (2, 5)  # per positive scan
LESION_HU = (-450.0, -300.0)  # inside GGO_HU
LESION_RADIUS = (0.5, 0.8)  # in-plane, of the lung's half-axes, at the lesion's centre
LESION_HALF_EXTENT = (0.08, 0.16)  # along z, of the scan's slices
CENTRAL_PROFILE = 0.6  # lesions centred where the lung is >= 60 % of its widest ...
OUTSIDE_WINDOW_FRACTION = 0.15  # ... except in these scans: where it is < 40 % (bases, apices)
OUTSIDE_PROFILE = 0.4


@dataclasses.dataclass
class ChestCTPhantom:
    """Synthetic chest CTs from `simulate_chest_ct`.

    Attributes:
        volumes: per scan, a ``(n_i, H, W)`` array in HU (float32 or int16), or a list of
            ``n_i`` 2D arrays when the scan has slices of different sizes (`mixed_size`).
        labels: ``(num_scans,)`` int array, 1 for scans with ground-glass opacities.
        slice_labels: per scan, ``(n_i,)`` int array, 1 on slices with GGO voxels.
        lesion_masks: per scan, the GGO voxels (bool, shaped as the volume: an array or a list).
        lung_masks: per scan, the lung voxels (bool, shaped as the volume), GGO included.
        lung_areas: per scan, ``(n_i,)`` int array, the true lung pixels of every slice.
        mixed_size: ``(num_scans,)`` bool array: the scan's last slice has another size.
        spacing: ``(num_scans, 3)`` float array, voxel size (z, y, x) in mm (of the common size).
    """

    volumes: list
    labels: np.ndarray
    slice_labels: list
    lesion_masks: list
    lung_masks: list
    lung_areas: list
    mixed_size: np.ndarray
    spacing: np.ndarray

    def __len__(self):
        return len(self.volumes)


def _smooth_noise(rng, shape, sigma):
    """Gaussian noise blurred in-plane by `sigma` pixels, scaled to unit standard deviation."""
    field = scipy.ndimage.gaussian_filter(
        rng.standard_normal(size=shape, dtype=np.float32), (0, sigma, sigma)
    )
    return field / (field.std() + 1e-6)


def _anatomy(rng, size, n):
    """Everything but the lesions, from `rng` alone: the same for both classes (see the module)."""
    s = size / 64.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    t = (np.arange(n, dtype=np.float32) + 0.5) / n  # 0 = neck, 1 = abdomen

    # Body: an ellipse, slightly larger towards the abdomen.
    cy, cx = size * 0.47 + rng.uniform(-1, 1) * s, size / 2 + rng.uniform(-1.5, 1.5) * s
    ry, rx = size * rng.uniform(0.28, 0.32), size * rng.uniform(0.40, 0.44)
    grow = (0.92 + 0.08 * t)[:, None, None]
    body_d = np.sqrt(((yy - cy) / (ry * grow)) ** 2 + ((xx - cx) / (rx * grow)) ** 2)
    body = body_d < 1.0
    volume = np.full((n, size, size), AIR_HU, np.float32)
    texture = _smooth_noise(rng, (n, size, size), 1.2 * s)
    tissue = TISSUE_HU + rng.uniform(-15, 15) + 8 * texture
    volume = np.where(body, tissue, volume)
    volume[body & (body_d > 1.0 - 0.07)] = FAT_HU + rng.uniform(-20, 20)

    # Lungs: two ellipses whose size follows a skewed bump over the lung's z-range.
    top, bottom = rng.uniform(0.04, 0.25), rng.uniform(0.72, 0.96)
    u = np.clip((t - top) / (bottom - top), 0, 1)
    profile = np.sin(np.pi * u ** rng.uniform(0.6, 1.4)) * ((u > 0) & (u < 1))
    scale = np.sqrt(np.clip(profile, 0, None))[:, None, None]
    lung = np.zeros((n, size, size), bool)
    lung_local = []
    for side in (-1.0, 1.0):
        ly, lx = 0.62 * ry * scale + 1e-3, (0.34 + rng.uniform(-0.02, 0.02)) * rx * scale + 1e-3
        ly_c, lx_c = cy - 0.03 * ry, cx + side * 0.48 * rx
        dy, dx = (yy - ly_c) / ly, (xx - lx_c) / lx
        one = (dy**2 + dx**2 < 1.0) & (scale > 0.08)
        lung |= one
        lung_local.append((one, dy, dx))
    parenchyma = rng.uniform(-880, -820) + 15 * texture
    volume = np.where(lung, parenchyma, volume)

    # Dependent density (both classes): the posterior part of each lung is denser.
    depth = rng.uniform(0.0, 0.1)
    density = rng.uniform(-760, -660)
    for one, dy, _ in lung_local:
        band = one & (dy > 1.0 - 2 * depth)
        volume[band] = density + 20 * texture[band]

    # Vessels (both classes): small dense dots in the lungs.
    seeds = lung & (rng.uniform(size=lung.shape) < 0.012 / s**2)
    dots = scipy.ndimage.maximum_filter(
        seeds, size=(1, max(1, round(1.2 * s)), max(1, round(1.2 * s)))
    )
    volume = np.where(dots & lung, rng.uniform(-50, 40), volume).astype(np.float32)

    # Single-slice mimics (both classes): small hazy patches one slice thick (motion, partial
    # volume of fissures and of the diaphragm) -- GGO-like on one slice, not across slices.
    for k in np.flatnonzero((scale[:, 0, 0] > 0.2) & (rng.uniform(size=n) < MIMIC_RATE)):
        one, dy, dx = lung_local[rng.integers(2)]
        r, theta = 0.55 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        patch = ((dy[k] - r * np.sin(theta)) ** 2 + (dx[k] - r * np.cos(theta)) ** 2) < (
            rng.uniform(*MIMIC_RADIUS) ** 2
        )
        patch &= one[k]
        volume[k][patch] = rng.uniform(-650, -500) + 30 * texture[k][patch]

    # Scanner table under the body: a plate, a gap of air above it.
    table_top = int(np.ceil(cy + ry * grow.max())) + max(2, int(round(2 * s)))
    thickness = max(2, int(round(2.5 * s)))
    if table_top + thickness <= size:
        volume[:, table_top : table_top + thickness, int(0.08 * size) : int(0.92 * size)] = (
            TABLE_HU + rng.uniform(-40, 40)
        )
    noise = rng.standard_normal(size=volume.shape, dtype=np.float32)
    return volume, lung, lung_local, texture, profile, noise


def _add_lesions(rng, volume, lung_local, texture, profile):
    """Ground-glass opacities: 3D blobs in one lung over a few contiguous slices (in place).

    Most scans have them in the lungs' central part, which the lung-area window covers
    (`CENTRAL_PROFILE`: the slices whose lung is at least that fraction of its widest); a few
    (`OUTSIDE_WINDOW_FRACTION`) only in the bases or apices, outside that window.
    """
    n = len(volume)
    lesions = np.zeros(volume.shape, bool)
    central = np.flatnonzero(profile >= CENTRAL_PROFILE)
    outside = np.flatnonzero((profile > 0.1) & (profile < OUTSIDE_PROFILE))
    where = outside if rng.uniform() < OUTSIDE_WINDOW_FRACTION and len(outside) else central
    for _ in range(rng.integers(LESIONS[0], LESIONS[1] + 1)):
        zc = int(rng.choice(where))
        half = max(1.5, rng.uniform(*LESION_HALF_EXTENT) * n)
        dz = (np.arange(n) - zc) / half
        z_profile = np.sqrt(np.clip(1 - dz**2, 0, None))[:, None, None]
        one, dy, dx = lung_local[rng.integers(2)]
        r = 0.5 * np.sqrt(rng.uniform())
        theta = rng.uniform(0, 2 * np.pi)
        radius = rng.uniform(*LESION_RADIUS) * np.sqrt(z_profile) + 1e-3
        blob = ((dy - r * np.sin(theta)) ** 2 + (dx - r * np.cos(theta)) ** 2) < radius**2
        blob &= one
        hu = rng.uniform(*LESION_HU)
        volume[blob] = hu + 25 * texture[blob]
        lesions |= blob
    return lesions


def _simulate_scan(rng, lesion_rng, size, n, positive, noise_std):
    volume, lung, lung_local, texture, profile, noise = _anatomy(rng, size, n)
    lesions = np.zeros(volume.shape, bool)
    if positive:
        lesions = _add_lesions(lesion_rng, volume, lung_local, texture, profile)
    s = size / 64.0
    volume = scipy.ndimage.gaussian_filter(volume, (0, 0.5 * s, 0.5 * s))
    volume += np.float32(noise_std) * noise
    spacing = (CHEST_LENGTH_MM / n, FIELD_OF_VIEW_MM / size, FIELD_OF_VIEW_MM / size)
    return volume.astype(np.float32), lesions, lung, spacing


def _odd_last_slice(volume, lesions, lung):
    """The scan as lists of 2D arrays whose last slice is on a 1.25 x larger matrix."""
    factor = ODD_SLICE_SCALE
    last = scipy.ndimage.zoom(volume[-1], factor, order=1, mode="nearest").astype(volume.dtype)
    return (
        [*volume[:-1], last],
        [*lesions[:-1], scipy.ndimage.zoom(lesions[-1], factor, order=0)],
        [*lung[:-1], scipy.ndimage.zoom(lung[-1], factor, order=0)],
    )


def simulate_chest_ct(
    num_scans,
    slice_size=64,
    min_slices=50,
    max_slices=300,
    positive_fraction=0.5,
    mixed_size_fraction=0.05,
    noise_std=25.0,
    seed=0,
    dtype="float32",
):
    """Simulates `num_scans` chest CTs with and without ground-glass opacities (HU).

    See the module docstring for the anatomy and for what makes one slice, the lung window and
    the whole scan differ.

    Args:
        num_scans: number of scans.
        slice_size: H = W of the slices (>= 32); the field of view is 350 mm.
        min_slices, max_slices: each scan has a number of slices drawn uniformly in
            ``[min_slices, max_slices]`` (>= 4).
        positive_fraction: fraction of scans with GGO (rounded to whole scans, at random
            positions).
        mixed_size_fraction: fraction of scans (rounded) whose last slice has another size.
        noise_std: standard deviation of the Gaussian noise, in HU (>= 0).
        seed: the scans depend only on `seed` and their index (and the label draw).
        dtype: ``"float32"`` or ``"int16"`` (rounded HU, as DICOM stores them).

    Returns:
        A `ChestCTPhantom` (``.volumes``, ``.labels``, ``.slice_labels``, ``.lesion_masks``,
        ``.lung_masks``, ``.lung_areas``, ``.mixed_size``, ``.spacing``).

    Example:

    >>> data = simulate_chest_ct(4, min_slices=20, max_slices=30, mixed_size_fraction=0.25)
    >>> len(data), data.labels.tolist(), data.mixed_size.tolist()
    (4, [0, 0, 1, 1], [False, False, True, False])
    >>> data.volumes[0].shape, data.volumes[0].dtype, type(data.volumes[2]).__name__
    ((29, 64, 64), dtype('float32'), 'list')
    """
    num_scans = check_positive_int(num_scans, "num_scans")
    for name, value, low in (("slice_size", slice_size, 32), ("min_slices", min_slices, 4)):
        if check_positive_int(value, name) < low:
            raise ValueError(f"`{name}` must be an integer >= {low}. Received: {name}={value}")
    if check_positive_int(max_slices, "max_slices") < min_slices:
        raise ValueError(
            f"`max_slices` must be >= min_slices = {min_slices}. Received: max_slices={max_slices}"
        )
    positive_fraction = check_rate(positive_fraction, "positive_fraction")
    mixed_size_fraction = check_rate(mixed_size_fraction, "mixed_size_fraction")
    if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float)) or not noise_std >= 0:
        raise ValueError(f"`noise_std` must be a number >= 0. Received: noise_std={noise_std!r}")
    dtype = check_one_of(dtype, "dtype", ("float32", "int16"))
    check_non_negative_int(seed, "seed")

    label_rng = np.random.default_rng([seed, 2**31])
    labels = np.zeros(num_scans, int)
    labels[label_rng.permutation(num_scans)[: int(round(positive_fraction * num_scans))]] = 1
    mixed = np.zeros(num_scans, bool)
    mixed[label_rng.permutation(num_scans)[: int(round(mixed_size_fraction * num_scans))]] = True

    out = {k: [] for k in ("volumes", "slice_labels", "lesion_masks", "lung_masks", "lung_areas")}
    spacing = []
    for i in range(num_scans):
        rng = np.random.default_rng([seed, i])  # anatomy, noise: the same for both labels
        n = int(rng.integers(min_slices, max_slices + 1))
        volume, lesions, lung, voxel = _simulate_scan(
            rng, np.random.default_rng([seed, i, 1]), slice_size, n, bool(labels[i]), noise_std
        )
        if dtype == "int16":
            volume = np.rint(volume).astype(np.int16)
        if mixed[i]:
            volume, lesions, lung = _odd_last_slice(volume, lesions, lung)
        out["volumes"].append(volume)
        out["lesion_masks"].append(lesions)
        out["lung_masks"].append(lung)
        out["slice_labels"].append(np.array([int(m.any()) for m in lesions]))
        out["lung_areas"].append(np.array([int(np.count_nonzero(m)) for m in lung]))
        spacing.append(voxel)
    return ChestCTPhantom(labels=labels, mixed_size=mixed, spacing=np.array(spacing), **out)


def to_8bit_slices(volume, center=-600.0, width=1500.0):
    """Windows HU slices to ``uint8``, like COV19-CT-DB's JPEG slices (lung window by default).

    Args:
        volume: an array in HU (any shape), or a list of 2D slices (a mixed-size scan).
        center: window center in HU (-600, the lung window).
        width: window width in HU (1500).

    Returns:
        ``uint8`` array(s) of the same shape(s): ``center - width / 2`` and below -> 0,
        ``center + width / 2`` and above -> 255, rounded in between.

    Example:

    >>> to_8bit_slices(np.array([-1350.0, -850.0, -600.0, 150.0])).tolist()
    [0, 85, 128, 255]
    """
    if isinstance(volume, (list, tuple)):
        return [to_8bit_slices(s, center, width) for s in volume]
    return np.rint(window_hu(volume, center, width) * 255.0).astype(np.uint8)
