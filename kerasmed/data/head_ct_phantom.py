"""A synthetic head CT with intracranial hemorrhages: the embedded default data of paper 001.

`simulate_head_ct` draws volumes in Hounsfield units that look like coarse non-contrast head
CTs -- air, a bone skull around an ellipsoidal head whose cross-section shrinks towards the skull
base and the vertex, brain parenchyma with a gray/white texture, CSF in the ventricles and along
the inner table, quantum noise -- and puts one to three hyperdense hemorrhages (60-90 HU) in the
positive volumes. Each hemorrhage is a 3D object spanning several contiguous slices: an
intraparenchymal ellipsoid (sometimes two overlapping ones, for an irregular shape) or an
extra-axial crescent along the inner table of the skull.

What makes it a *sequence* problem (the reason for the paper's LSTM): every volume, positive or
negative, also holds **single-slice hyperdense mimics** -- spots with the in-plane size and the
HU range of a bleed, but only one slice thick, as partial-volume effects, small calcifications
and beam-hardening streaks are. On one slice a mimic cannot be told from the cross-section of a
hemorrhage; across slices it can, because a hemorrhage persists over 3 or more contiguous
slices. So a slice classifier pooled by the maximum over slices (the paper's baseline) is
fooled by the mimics, while a model that reads the slices in order can learn the 3D extent.
The skull-base slices add dense partial-volume bone and bright/dark streaks in both classes.

Slice labels follow the paper's reference standard: a slice is positive when it contains
hemorrhage voxels; every slice of a negative volume is negative.

Reference: A. Patel et al., *Image level training and prediction: intracranial hemorrhage
identification in 3D non-contrast CT*, IEEE Access, 2019 (the task; the phantom is ours).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.ndimage

from kerasmed.validation import check_rate, check_size_range, check_whole_number

__all__ = ["HeadCTPhantom", "simulate_head_ct"]

AIR_HU, BONE_HU, BRAIN_HU, CSF_HU = -1000.0, 1000.0, 35.0, 5.0
BLEED_HU = (60.0, 90.0)
FIELD_OF_VIEW_MM = 220.0
HEAD_HEIGHT_MM = 140.0


@dataclasses.dataclass
class HeadCTPhantom:
    """Synthetic head CTs from `simulate_head_ct`.

    Attributes:
        volumes: list of ``(N_i, H, W)`` float32 arrays in HU (slice 0 is the most caudal).
        labels: ``(num_volumes,)`` int array, 1 for ICH.
        slice_labels: list of ``(N_i,)`` int arrays, 1 on slices that contain hemorrhage
            (only in positive volumes).
        hemorrhage_masks: list of ``(N_i, H, W)`` bool arrays, the hemorrhage voxels.
        mimic_slices: list of ``(N_i,)`` int arrays, the number of single-slice hyperdense
            mimics on each slice.
        spacing: ``(num_volumes, 3)`` float array, voxel size (z, y, x) in mm.
    """

    volumes: list
    labels: np.ndarray
    slice_labels: list
    hemorrhage_masks: list
    mimic_slices: list
    spacing: np.ndarray

    def __len__(self):
        return len(self.volumes)


def _ellipse_distance(yy, xx, center, radii, angle):
    """Normalized elliptical distance (1 on the boundary) of every pixel, for each slice."""
    cos, sin = np.cos(angle), np.sin(angle)
    dy, dx = yy - center[0], xx - center[1]
    u = (dx * cos + dy * sin) / radii[1]
    v = (-dx * sin + dy * cos) / radii[0]
    return np.sqrt(u * u + v * v)


def _point_in_brain(rng, head_radii, scale, head_center, head_angle, max_radius=0.7):
    """A random in-plane point inside the brain, as (row, column)."""
    r = max_radius * np.sqrt(rng.uniform())
    theta = rng.uniform(0, 2 * np.pi)
    u, v = r * np.cos(theta) * head_radii[1] * scale, r * np.sin(theta) * head_radii[0] * scale
    cos, sin = np.cos(head_angle), np.sin(head_angle)
    return head_center[0] + u * sin + v * cos, head_center[1] + u * cos - v * sin


def _hemorrhage(rng, head, n, size):
    """Voxels of one hemorrhage: an ellipsoid pair or a crescent over 3-8 contiguous slices."""
    yy, xx, s = head["yy"], head["xx"], head["s"]
    half = rng.uniform(1.5, 4.0)  # z semi-axis in slices
    zc = rng.uniform(0.2 * n + half, 0.95 * n - half) if n > 2 * half + 4 else n / 2
    dz = (np.arange(n, dtype=np.float32) - zc) / half
    profile = np.sqrt(np.clip(1 - dz**2, 0, None))[:, None, None]
    if rng.uniform() < 0.7:  # intraparenchymal: one or two overlapping ellipsoids
        shape = np.zeros((n, size, size), bool)
        scale = head["scale"][int(zc)][0, 0]
        py, px = _point_in_brain(rng, head["radii"], scale, head["center"], head["angle"], 0.55)
        for _ in range(rng.integers(1, 3)):
            r = rng.uniform(2.0, 6.0, size=2) * s
            c = (py + rng.uniform(-1.5, 1.5) * s, px + rng.uniform(-1.5, 1.5) * s)
            radii = (r[0] * profile + 1e-3, r[1] * profile + 1e-3)
            shape |= _ellipse_distance(yy, xx, c, radii, rng.uniform(0, np.pi)) < 1.0
        return shape
    # extra-axial: a crescent along the inner table of the skull
    theta0, width = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.2)
    theta = np.arctan2(yy - head["center"][0], xx - head["center"][1])
    sector = np.abs(np.angle(np.exp(1j * (theta - theta0)))) < width * profile
    depth = rng.uniform(0.08, 0.16) * profile
    return sector & (head["outer"] > 1.0 - head["skull"] - depth)


def _simulate_volume(rng, size, num_slices, positive, mimic_rate, noise_std):
    n = num_slices
    s = size / 64.0  # pixel scale relative to a 64x64 slice
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = yy[None], xx[None]

    # Head: an ellipsoid; slice k sits at height t_k in (-1, 1) of its vertical semi-axis.
    t = np.linspace(rng.uniform(-0.8, -0.65), rng.uniform(0.8, 0.9), n, dtype=np.float32)
    scale = np.sqrt(np.clip(1.0 - t**2, 0.05, None))[:, None, None]
    radii = (size * rng.uniform(0.4, 0.46), size * rng.uniform(0.33, 0.4))
    center = (size / 2 + rng.uniform(-2, 2) * s, size / 2 + rng.uniform(-2, 2) * s)
    angle = rng.uniform(-0.2, 0.2)
    outer = _ellipse_distance(yy, xx, center, (radii[0] * scale, radii[1] * scale), angle)
    skull = rng.uniform(2.0, 3.5) * s / (min(radii) * scale)  # thickness in normalized units
    inner = outer < 1.0 - skull
    head = {"yy": yy, "xx": xx, "s": s, "radii": radii, "scale": scale, "center": center,
            "angle": angle, "outer": outer, "skull": skull}  # fmt: skip

    # Brain with a smooth gray/white texture, CSF along the inner table and in the ventricles.
    texture = scipy.ndimage.gaussian_filter(rng.normal(size=(n, size, size)), (1.0, 2 * s, 2 * s))
    texture *= 4.0 / (texture.std() + 1e-6)
    volume = np.full((n, size, size), AIR_HU, np.float32)
    volume[outer < 1.0] = BONE_HU + rng.uniform(-150, 150)
    brain = BRAIN_HU + rng.uniform(-4, 4) + texture
    volume = np.where(inner, brain, volume).astype(np.float32)
    rim = inner & (outer > 1.0 - skull - 0.05)
    volume[rim] = CSF_HU + rng.uniform(0, 6)
    ventricle_level = rng.uniform(0.0, 0.35)
    ventricle_scale = np.clip(1.0 - ((t - ventricle_level) / 0.25) ** 2, 0, None)[:, None, None]
    for side in (-1.0, 1.0):
        offset = side * rng.uniform(0.12, 0.18) * radii[1]
        vent = _ellipse_distance(
            yy, xx, (center[0] - 0.05 * radii[0], center[1] + offset),
            (0.3 * radii[0] * ventricle_scale + 1e-3, 0.08 * radii[1] * ventricle_scale + 1e-3),
            angle,
        )  # fmt: skip
        volume[(vent < 1.0) & inner] = CSF_HU + rng.uniform(-3, 3)

    # Skull base (caudal slices, both classes): dense partial-volume bone and streaks.
    base = t < -0.45
    for _ in range(rng.integers(2, 5)):
        py, px = _point_in_brain(rng, radii, 1.0, center, angle, max_radius=0.6)
        bone = _ellipse_distance(yy, xx, (py, px), (rng.uniform(2, 5) * s,) * 2, 0.0)
        density = np.clip(1.2 - bone, 0, 1) * rng.uniform(150, 500)
        volume += np.where(base[:, None, None] & inner, density, 0).astype(np.float32)
    for k in np.flatnonzero(base):
        theta = rng.uniform(0, np.pi)
        line = np.abs((yy[0] - center[0]) * np.cos(theta) - (xx[0] - center[1]) * np.sin(theta))
        volume[k] += (np.exp(-((line / (0.8 * s)) ** 2)) * rng.choice([-40.0, 40.0])) * inner[k]

    # Hemorrhages (positives): 3D objects over several contiguous slices.
    mask = np.zeros((n, size, size), bool)
    num_bleeds = rng.choice([1, 1, 2, 3]) if positive else 0
    while num_bleeds > 0 or (positive and not mask.any()):  # a positive has >= 1 bleed voxel
        num_bleeds -= 1
        shape = _hemorrhage(rng, head, n, size) & inner
        mask |= shape
        hu = rng.uniform(*BLEED_HU)
        volume = np.where(shape, hu + rng.normal(0, 3, size=shape.shape), volume)

    # Single-slice hyperdense mimics (both classes): in-plane like a bleed, one slice thick.
    mimics = np.zeros(n, int)
    for _ in range(rng.poisson(mimic_rate)):
        k = rng.integers(int(0.15 * n), n)
        py, px = _point_in_brain(rng, radii, scale[k][0, 0], center, angle, 0.7)
        r = rng.uniform(2.0, 6.0, size=2) * s
        spot = _ellipse_distance(yy[0], xx[0], (py, px), r, rng.uniform(0, np.pi)) < 1.0
        spot &= inner[k] & ~mask[k]
        volume[k] = np.where(spot, rng.uniform(60.0, 100.0), volume[k])
        mimics[k] += 1

    volume = volume + rng.normal(0, noise_std, size=volume.shape)
    slice_labels = mask.any(axis=(1, 2)).astype(int)
    spacing = (HEAD_HEIGHT_MM / n, FIELD_OF_VIEW_MM / size, FIELD_OF_VIEW_MM / size)
    return volume.astype(np.float32), mask, slice_labels, mimics, spacing


def simulate_head_ct(
    num_volumes,
    slice_size=64,
    min_slices=24,
    max_slices=40,
    positive_fraction=0.5,
    mimic_rate=2.0,
    noise_std=5.0,
    seed=0,
):
    """Simulates `num_volumes` head CTs with and without intracranial hemorrhage (HU).

    See the module docstring for the anatomy, the hemorrhages and the single-slice mimics that
    make a slice-wise maximum a poor volume classifier.

    Args:
        num_volumes: number of volumes.
        slice_size: H = W of every slice (>= 32). The head fills about 80% of the field of view
            (220 mm), so the pixel size is ``220 / slice_size`` mm.
        min_slices, max_slices: each volume has a number of slices drawn uniformly in
            ``[min_slices, max_slices]`` (>= 8); the head spans them, so thinner slices for more.
        positive_fraction: fraction of volumes with hemorrhage (rounded to whole volumes; the
            positives are at random positions).
        mimic_rate: mean (Poisson) number of single-slice hyperdense mimics per volume, in both
            classes. 0 makes the task easy for a slice classifier.
        noise_std: standard deviation of the Gaussian noise, in HU.
        seed: the volumes depend only on `seed` and their index (volume ``i`` is the same for
            any `num_volumes` >= i + 1 with the same labels).

    Returns:
        A `HeadCTPhantom` (``.volumes``, ``.labels``, ``.slice_labels``, ``.hemorrhage_masks``,
        ``.mimic_slices``, ``.spacing``).

    Example:

    >>> data = simulate_head_ct(4, slice_size=32, min_slices=10, max_slices=12)
    >>> len(data.volumes), data.labels.tolist(), data.volumes[0].shape[1:]
    (4, [0, 0, 1, 1], (32, 32))
    """
    num_volumes = check_whole_number(num_volumes, "num_volumes")
    slice_size = check_whole_number(slice_size, "slice_size", minimum=32)
    min_slices, max_slices = check_size_range(min_slices, max_slices, "min_slices", "max_slices", 8)
    positive_fraction = check_rate(positive_fraction, "positive_fraction")
    if mimic_rate < 0 or noise_std < 0:
        raise ValueError(
            "`mimic_rate` and `noise_std` must be >= 0. "
            f"Received: mimic_rate={mimic_rate}, noise_std={noise_std}"
        )
    labels = np.zeros(num_volumes, int)
    positives = int(round(positive_fraction * num_volumes))
    labels[np.random.default_rng([seed, 2**31]).permutation(num_volumes)[:positives]] = 1
    volumes, slice_labels, masks, mimics, spacing = [], [], [], [], []
    for i in range(num_volumes):
        rng = np.random.default_rng([seed, i])
        num_slices = int(rng.integers(min_slices, max_slices + 1))
        volume, mask, labelled, mimic, voxel = _simulate_volume(
            rng, slice_size, num_slices, bool(labels[i]), mimic_rate, noise_std
        )
        volumes.append(volume)
        masks.append(mask)
        slice_labels.append(labelled)
        mimics.append(mimic)
        spacing.append(voxel)
    return HeadCTPhantom(volumes, labels, slice_labels, masks, mimics, np.array(spacing))
