"""A synthetic longitudinal infant brain MRI (T1w + T2w, first year): the default data of paper 002.

`simulate_infant_brain` draws, for every subject, one (or a few) axial slices scanned at
``num_timepoints`` ages spread over the first year (0, 3, 6, 9, 12 months for 5 time points, as
the BRIC data of the paper), with a label map per time point: 0 background (air, scalp, skull),
1 CSF, 2 gray matter (GM), 3 white matter (WM).

Anatomy (per subject: random size, eccentricity, position, tilt, GM thickness, ventricles and
fold pattern): an elliptical brain whose pial surface is indented by 12-17 narrow sulci of random
depth and by the interhemispheric fissure, all filled with CSF; a cortical GM ribbon of constant
thickness follows the folds (the brain pixels within that distance of the pial surface, computed
with a distance transform, so the sulcal banks are lined with GM too); WM inside it, with two
deep-GM nuclei and two CSF lateral ventricles; around the brain a rim of extra-cerebral CSF, the
skull and the scalp. The brain grows by 6-10% in diameter over the year and its sulci deepen, so
the GM area grows faster than the WM area (by about a third against a few percent).

Contrast (what makes it a *sequence* problem): myelination inverts the WM/GM contrast during the
first year. At birth WM is darker than GM on T1w and brighter on T2w; at 12 months it is the
reverse; around 6 months (the middle time point) WM and GM are nearly isointense on both, as in
the paper's 6-month scans. Each subject myelinates on its own schedule (onset 6 ± 0.6 months,
central WM earlier than subcortical WM), so at 6 months the residual WM/GM contrast is small and
of either sign, below the noise and the bias field: a single time point -- especially the middle
one -- leaves WM vs GM ambiguous, while the intensity *trajectory* over the time points separates
them. CSF (dark T1w, bright T2w) and the background stay easy at every age.

Image formation: the tissue map is drawn on a 3x finer grid and averaged to ``size x size``
(partial volume); a Gaussian point spread (sigma 0.5 pixel); a smooth multiplicative bias field
and a global gain, new for every scan and channel; Rician noise (the magnitude of complex
Gaussian noise of standard deviation `noise_std`). Intensities are on a 0-1 scale (CSF on T2w
about 0.9). The scans of a subject share the head's centre and orientation (as if rigidly
registered), but the growth moves the cortex by 1-2 pixels between the first and the last scan
(at ``size=64``).

Reference: Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical image
segmentation", ISBI 2018 (the task and the BRIC design; the phantom is ours).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.ndimage

from kerasmed.validation import check_whole_number

__all__ = ["CLASS_NAMES", "CHANNEL_NAMES", "InfantBrainPhantom", "simulate_infant_brain"]

CLASS_NAMES = ("background", "CSF", "gray matter", "white matter")
CHANNEL_NAMES = ("T1w", "T2w")
MAX_AGE_MONTHS = 12.0
_SUPERSAMPLE = 3
# Tissues of the fine grid (the first three are label 0).
_AIR, _SCALP, _SKULL, _CSF, _GM, _WM = range(6)
_TISSUE_LABEL = np.array([0, 0, 0, 1, 2, 3])


@dataclasses.dataclass
class InfantBrainPhantom:
    """Synthetic longitudinal infant brain slices from `simulate_infant_brain`.

    Attributes:
        images: ``(N, T, H, W, 2)`` float32, channels T1w and T2w (`CHANNEL_NAMES`).
        labels: ``(N, T, H, W)`` int32, 0 background, 1 CSF, 2 GM, 3 WM (`CLASS_NAMES`).
        ages: ``(N, T)`` float32, age at each scan in months.
        subjects: ``(N,)`` int, the subject of each sample (split by subject, not by sample).
        slice_positions: ``(N,)`` float32, height of the slice in the brain (-1 bottom, 1 top).
        class_names: names of the 4 classes.
        channel_names: names of the 2 channels.
    """

    images: np.ndarray
    labels: np.ndarray
    ages: np.ndarray
    subjects: np.ndarray
    slice_positions: np.ndarray
    class_names: tuple = CLASS_NAMES
    channel_names: tuple = CHANNEL_NAMES

    def __len__(self):
        return len(self.images)


def _mirrored_ellipses(rng, cu, cv, su, sv):
    """A left and a right ellipse ``(cu, cv, su, sv)`` (center and size along u and v), each
    value drawn uniformly in its ``(low, high)`` range, ``cu`` mirrored to the left side."""
    return [
        (side * rng.uniform(*cu), rng.uniform(*cv), rng.uniform(*su), rng.uniform(*sv))
        for side in (-1.0, 1.0)
    ]


def _subject(rng):
    """The subject's anatomy and maturation, in brain-radius units where possible."""
    num_sulci = int(rng.integers(12, 18))
    spacing = 2 * np.pi / num_sulci
    angles = np.arange(num_sulci) * spacing + rng.uniform(0, 2 * np.pi)
    return {
        "center": rng.uniform(-1.5, 1.5, size=2) / 64,  # fraction of the field of view
        "angle": rng.uniform(-0.15, 0.15),
        "radii": np.array([rng.uniform(0.30, 0.335), rng.uniform(0.255, 0.29)]),  # (y, x) at 6 mo
        "growth": rng.uniform(0.06, 0.10),  # relative diameter increase over the year
        "csf_gap": rng.uniform(0.05, 0.08),
        "skull": rng.uniform(0.04, 0.06),
        "scalp": rng.uniform(0.06, 0.09),
        "thickness": rng.uniform(0.10, 0.13),  # GM ribbon, fraction of the mean brain radius
        "sulcus_angle": angles + rng.normal(0, 0.2 * spacing, num_sulci),
        "sulcus_drift": rng.normal(0, 1.0, num_sulci),  # angle change per unit slice height
        "sulcus_depth": rng.uniform(0.1, 0.25, num_sulci),
        "sulcus_width": rng.uniform(0.035, 0.06, num_sulci),
        "fissure_depth": rng.uniform(0.3, 0.45),
        "fissure_width": rng.uniform(0.012, 0.02),
        "ventricle": _mirrored_ellipses(
            rng, (0.1, 0.16), (-0.12, 0.02), (0.07, 0.11), (0.28, 0.38)
        ),
        "ventricle_level": rng.uniform(-0.05, 0.1),
        "deep_gm": _mirrored_ellipses(rng, (0.26, 0.32), (-0.05, 0.1), (0.1, 0.14), (0.15, 0.21)),
        "myelination_onset": float(np.clip(rng.normal(6.0, 0.6), 4.8, 7.2)),  # months
        "myelination_width": rng.uniform(1.6, 2.2),  # months
        "myelination_gradient": rng.uniform(0.5, 1.5),  # months later per unit radius
        "contrast": rng.uniform(0.14, 0.18, size=2),  # |WM - GM| when fully (un)myelinated
        "tissue_offset": rng.normal(0, 0.015, size=(6, 2)),
    }


def _wrap(angle):
    """Angle wrapped to [-pi, pi)."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _tissues(subject, size, age, z):
    """Tissue map and normalized radius on the fine grid, for one age and slice height."""
    fine = size * _SUPERSAMPLE
    coords = ((np.arange(fine) + 0.5) / fine - 0.5).astype(np.float32)  # field of view [-.5, .5]
    yy = (coords - np.float32(subject["center"][0]))[:, None]
    xx = (coords - np.float32(subject["center"][1]))[None, :]
    cos, sin = np.float32(np.cos(subject["angle"])), np.float32(np.sin(subject["angle"]))
    scale = (1 + subject["growth"] * (age - 6.0) / MAX_AGE_MONTHS) * np.sqrt(1 - z**2)
    ry, rx = (subject["radii"] * scale).astype(np.float32)
    u = (xx * cos + yy * sin) / rx  # left-right
    v = (yy * cos - xx * sin) / ry  # posterior-anterior
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)

    # Pial surface: the sulci (deepening with age) and the interhemispheric fissure.
    # The indentation depends on the angle only: tabulate it on a fine 1D grid, then interpolate.
    deepening = 0.85 + 0.3 * age / MAX_AGE_MONTHS
    grid = np.linspace(-np.pi, np.pi, 2048, endpoint=False)
    offsets = _wrap(grid[:, None] - subject["sulcus_angle"] - subject["sulcus_drift"] * z)
    profile = subject["sulcus_depth"] * np.exp(-((offsets / subject["sulcus_width"]) ** 2))
    indent = np.interp(theta, grid, profile.max(axis=1), period=2 * np.pi).astype(np.float32)
    brain = rho < 1.0 - deepening * indent
    fissure = (np.abs(u) * rx < subject["fissure_width"]) & (
        np.abs(v) > 1.0 - deepening * subject["fissure_depth"]
    )
    brain &= ~fissure

    # Cortex: brain pixels within the GM thickness of the pial surface.
    mean_radius_px = 0.5 * (rx + ry) * fine
    depth_px = scipy.ndimage.distance_transform_edt(brain)
    tissue = np.full(rho.shape, _AIR, np.int8)
    outer = 1.0 + subject["csf_gap"]
    tissue[rho < outer + subject["skull"] + subject["scalp"]] = _SCALP
    tissue[rho < outer + subject["skull"]] = _SKULL
    tissue[rho < outer] = _CSF
    tissue[brain] = _WM
    tissue[brain & (depth_px <= subject["thickness"] * mean_radius_px)] = _GM

    # Deep GM nuclei and lateral ventricles, near the ventricles' level.
    level = np.clip(1.0 - ((z - subject["ventricle_level"]) / 0.3) ** 2, 0.0, None)
    if level > 0:
        for (cu, cv, su, sv), kind in [(p, _GM) for p in subject["deep_gm"]] + [
            (p, _CSF) for p in subject["ventricle"]
        ]:
            s = np.sqrt(level)
            inside = ((u - cu) / (su * s)) ** 2 + ((v - cv) / (sv * s)) ** 2 < 1.0
            tissue[inside & brain & (depth_px > subject["thickness"] * mean_radius_px)] = kind
    return tissue, rho


def _intensities(subject, tissue, rho, age):
    """T1w and T2w intensities of the fine grid, ``(fine, fine, 2)``."""
    a = age / MAX_AGE_MONTHS
    gm = np.array([0.42 + 0.06 * a, 0.56 - 0.05 * a])
    table = (
        np.array([[0.0, 0.0], [0.70, 0.45], [0.06, 0.06], [0.12, 0.90], gm, gm])
        + subject["tissue_offset"]
    )
    table[_AIR] = 0.0
    image = table.astype(np.float32)[tissue]  # (fine, fine, 2)
    wm = tissue == _WM
    onset = subject["myelination_onset"] + subject["myelination_gradient"] * (rho[wm] - 0.55)
    myelination = 1.0 / (1.0 + np.exp(-(age - onset) / subject["myelination_width"]))
    sign = np.array([1.0, -1.0])  # T1w: WM brightens with myelin; T2w: WM darkens
    image[wm] += ((2 * myelination[:, None] - 1) * subject["contrast"] * sign).astype(np.float32)
    return image


def _bias_field(rng, size, strength):
    """Smooth multiplicative field: exp of a random quadratic polynomial, plus a global gain."""
    c = np.linspace(-1.0, 1.0, size)
    yy, xx = np.meshgrid(c, c, indexing="ij")
    basis = np.stack([yy, xx, yy * xx, yy**2 - 1 / 3, xx**2 - 1 / 3])
    coefficients = rng.normal(0.0, strength / 2, size=5)
    gain = rng.uniform(1 - strength / 2, 1 + strength / 2)
    return gain * np.exp(np.tensordot(coefficients, basis, axes=1))


def _scan(rng, subject, size, age, z, noise_std, bias_strength):
    tissue, rho = _tissues(subject, size, age, z)
    fine = _intensities(subject, tissue, rho, age)
    k = _SUPERSAMPLE
    image = fine.reshape(size, k, size, k, 2).mean(axis=(1, 3))
    one_hot = _TISSUE_LABEL[tissue][..., None] == np.arange(4, dtype=np.int8)
    counts = one_hot.reshape(size, k, size, k, 4).sum(axis=(1, 3), dtype=np.int16)
    labels = np.argmax(counts, axis=-1)  # the majority class of the fine pixels (ties: lower)
    image = scipy.ndimage.gaussian_filter(image, sigma=(0.5, 0.5, 0))
    for channel in range(2):
        image[..., channel] *= _bias_field(rng, size, bias_strength)
    real = image + rng.normal(0.0, noise_std, size=image.shape)
    imaginary = rng.normal(0.0, noise_std, size=image.shape)
    return np.hypot(real, imaginary).astype(np.float32), labels.astype(np.int32)


def simulate_infant_brain(
    num_subjects,
    num_timepoints=5,
    size=64,
    num_slices=1,
    seed=0,
    noise_std=0.03,
    bias_strength=0.15,
):
    """Simulates longitudinal T1w/T2w infant brain slices with GM/WM contrast inversion.

    See the module docstring for the anatomy, the myelination contrast and the image formation.
    Each sample is one axial slice of one subject at every time point: a ``(T, H, W, 2)`` input
    sequence of the FCSLSTM with its ``(T, H, W)`` labels. With ``num_slices > 1`` each subject
    gives `num_slices` samples at different heights (bottom to top), flattened subject by
    subject: sample ``i`` belongs to subject ``subjects[i] = i // num_slices``. Slices of one
    subject share its anatomy: split training and test sets by subject.

    The paper's BRIC design (train on time points 1, 2, 4, 5, test on time point 3) is a matter of
    setting the other time points' labels to an ignore label (e.g. -1) in the training targets.

    Args:
        num_subjects: number of subjects.
        num_timepoints: number of scans per subject, at ages ``linspace(0, 12, T)`` months
            (each jittered by up to +-0.4 month, ages stay >= 0).
        size: H = W of the slices (>= 32). The head fills about 85% of the field of view.
        num_slices: axial slices per subject. One slice is taken near the ventricles' level
            (as the paper's one labelled slice per volume); several span heights -0.3 to 0.3.
        seed: the data depend only on `seed` and the subject index (subject ``i`` is the same
            for any `num_subjects` > i with the other arguments equal).
        noise_std: standard deviation of the complex Gaussian noise (Rician magnitude noise).
        bias_strength: size of the multiplicative bias field and of the per-scan gain (0 for
            none): the gain is in ``1 +- bias_strength / 2`` and the log-field's polynomial
            coefficients have standard deviation ``bias_strength / 2``.

    Returns:
        An `InfantBrainPhantom` (``.images``, ``.labels``, ``.ages``, ``.subjects``,
        ``.slice_positions``, ``.class_names``, ``.channel_names``).

    Example:

    >>> data = simulate_infant_brain(2, size=32)
    >>> data.images.shape, data.labels.shape, data.ages[0].round().tolist()
    ((2, 5, 32, 32, 2), (2, 5, 32, 32), [0.0, 3.0, 6.0, 9.0, 12.0])

    Reference: Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical
    image segmentation", ISBI 2018, Section 3 and Fig. 4.
    """
    num_subjects = check_whole_number(num_subjects, "num_subjects")
    num_timepoints = check_whole_number(num_timepoints, "num_timepoints")
    size = check_whole_number(size, "size", minimum=32)
    num_slices = check_whole_number(num_slices, "num_slices")
    if not (noise_std >= 0 and 0 <= bias_strength < 1):
        raise ValueError(
            "`noise_std` must be >= 0 and `bias_strength` in [0, 1). "
            f"Received: noise_std={noise_std}, bias_strength={bias_strength}"
        )
    nominal = np.linspace(0.0, MAX_AGE_MONTHS, num_timepoints) if num_timepoints > 1 else [6.0]
    images, labels, ages, subjects, positions = [], [], [], [], []
    for s in range(num_subjects):
        rng = np.random.default_rng([seed, s])
        subject = _subject(rng)
        scan_ages = np.clip(nominal + rng.uniform(-0.4, 0.4, num_timepoints), 0.0, None)
        if num_slices == 1:
            heights = np.array([rng.uniform(-0.05, 0.1)])
        else:
            heights = np.linspace(-0.3, 0.3, num_slices) + rng.uniform(-0.03, 0.03, num_slices)
        for z in heights:
            scans = [
                _scan(rng, subject, size, age, z, noise_std, bias_strength) for age in scan_ages
            ]
            images.append(np.stack([image for image, _ in scans]))
            labels.append(np.stack([label for _, label in scans]))
            ages.append(scan_ages)
            subjects.append(s)
            positions.append(z)
    return InfantBrainPhantom(
        images=np.stack(images).astype(np.float32),
        labels=np.stack(labels).astype(np.int32),
        ages=np.array(ages, np.float32),
        subjects=np.array(subjects),
        slice_positions=np.array(positions, np.float32),
    )
