"""Synthetic radiographs of six body regions: the embedded default data of paper 004.

`simulate_radiographs` draws grey x-ray-like images of a skull, a lumbar spine, a hand, a
pelvis, a knee and a chest with OpenCV's drawing functions. Bone is bright, soft tissue grey,
air (and the lungs) dark, as on a radiograph:

- skull: the calvarium as a thick bright ring, the orbits and the nasal cavity dark, the
  mandible as a bright arch with a row of teeth;
- spine: five vertebral bodies stacked with dark disc spaces, pedicles and spinous processes;
- hand: metacarpals and three phalanges per finger (two for the thumb) separated by joint
  spaces, carpal bones, the ends of radius and ulna;
- pelvis: the iliac wings, the sacrum, the pubic rami around two dark obturator foramina, the
  femoral heads and necks;
- knee: femur and tibia meeting at a joint space, the condyles, the fibula and the patella;
- chest: two dark lung fields crossed by curved ribs, the spine, the heart shadow, clavicles.

What the paper's preprocessing acts on is built in: the image **size and aspect ratio are drawn
independently of the class** (long side uniform in ``[min_size, max_size]``, short side 0.5 to
1 times it, portrait or landscape), and each body part keeps its own proportions inside the
canvas, so padding keeps the anatomy undistorted while a plain resize stretches it; the
**contrast is low and uneven** (the anatomy spans 15-40% of the intensity range, on an offset,
times a smooth illumination ramp), so CLAHE has work to do; there is Gaussian noise, a blur of
the edges, a random position, scale, rotation and left-right flip. The classes are **imbalanced**
(default: 36% chests down to 5% pelves), and each carries an IRMA code (`RADIOGRAPH_CLASSES`).
Images are 8-bit (uint8) or 12/16-bit (uint16).

The codes are codes of ImageCLEF 2009 classes whose anatomical axis names the drawn region
(first character: 2 cranium, 3 spine, 4 upper extremity, 8 pelvis, 9 lower extremity, 5 chest);
the phantom draws the region, not the finer sub-region or the view the other characters give.

Reference: X. Nkwentsha et al., *Automatic classification of medical X-ray images with
convolutional neural networks* (the task, ImageCLEF 2009); the phantom is ours.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from kerasmed.io.irma import parse_irma_code
from kerasmed.validation import check_positive_int, check_size_range

__all__ = ["RADIOGRAPH_CLASSES", "RadiographPhantom", "simulate_radiographs"]

# (name, IRMA code, default fraction), in sorted code order = the labels of IrmaLabelMap.
RADIOGRAPH_CLASSES = (
    ("skull", "1121-120-200-700", 0.16),
    ("spine", "1121-120-330-700", 0.08),
    ("hand", "1121-120-413-700", 0.22),
    ("pelvis", "1121-120-800-700", 0.05),
    ("knee", "1121-120-942-700", 0.13),
    ("chest", "1123-110-500-000", 0.36),
)
# height / width of the box each body part is drawn in
_ASPECT = {"skull": 1.1, "spine": 1.7, "hand": 1.3, "pelvis": 0.65, "knee": 1.6, "chest": 0.9}


@dataclasses.dataclass
class RadiographPhantom:
    """Synthetic radiographs from `simulate_radiographs`.

    Attributes:
        images: list of ``(H_i, W_i)`` uint8 or uint16 arrays (sizes differ).
        labels: ``(num_images,)`` int array, indices into `class_names` / `class_codes`.
        class_names: the body regions, ``("skull", "spine", "hand", "pelvis", "knee", "chest")``.
        class_codes: their IRMA codes, in sorted order (the order of ``IrmaLabelMap``).
        bit_depth: bits of the intensities (8, 12 or 16).
    """

    images: list
    labels: np.ndarray
    class_names: tuple
    class_codes: tuple
    bit_depth: int

    def __len__(self):
        return len(self.images)

    @property
    def codes(self):
        """The IRMA code of every image."""
        return [self.class_codes[label] for label in self.labels]

    @property
    def sizes(self):
        """``(num_images, 2)`` int array of (height, width)."""
        return np.array([image.shape for image in self.images], dtype=int)


class _Canvas:
    """A float image and a map from the unit box of a body part to its pixels (scale, rotation,
    flip, placement); values drawn are attenuations (air 0, soft tissue ~0.3, bone ~0.7)."""

    def __init__(self, rng, height, width, aspect):
        self.image = np.zeros((height, width), np.float32)
        fill = rng.uniform(0.75, 0.95)
        box_h = min(height * fill, width * fill * aspect)
        box_w = box_h / aspect
        self.scale = np.array([box_w, box_h])
        self.centre = np.array([
            width / 2 + rng.uniform(-0.5, 0.5) * (width - box_w) * 0.8,
            height / 2 + rng.uniform(-0.5, 0.5) * (height - box_h) * 0.8,
        ])  # fmt: skip
        self.angle = np.deg2rad(rng.uniform(-12, 12))
        self.flip = rng.uniform() < 0.5
        self.unit = min(box_w, box_h)  # lengths given in units of the box's shorter side

    def points(self, uv):
        uv = np.atleast_2d(np.asarray(uv, np.float64)) - 0.5
        if self.flip:
            uv[:, 0] = -uv[:, 0]
        xy = uv * self.scale
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        xy = xy @ np.array([[cos, sin], [-sin, cos]]) + self.centre
        return np.rint(xy * 16).astype(np.int32)  # 4 bits of sub-pixel precision

    def length(self, fraction):
        return max(1, int(round(fraction * self.unit * 16)))

    def ellipse(self, centre, axes, value, angle=0.0, thickness=-1, arc=(0, 360)):
        (x, y), (a, b) = self.points(centre)[0], axes
        degrees = np.rad2deg(self.angle) + (-angle if self.flip else angle)
        cv2.ellipse(self.image, (int(x), int(y)), (self.length(a), self.length(b)), degrees,
                    arc[0], arc[1], float(value), -1 if thickness < 0 else
                    max(1, int(thickness * self.unit)), cv2.LINE_8, 4)  # fmt: skip

    def polygon(self, uv, value):
        cv2.fillPoly(self.image, [self.points(uv)], float(value), cv2.LINE_8, 4)

    def bar(self, start, end, width, value):
        """A bone shaft: a thick line with round ends."""
        (x0, y0), (x1, y1) = self.points([start, end])
        cv2.line(self.image, (int(x0), int(y0)), (int(x1), int(y1)), float(value),
                 max(1, int(width * self.unit)), cv2.LINE_8, 4)  # fmt: skip


def _draw_skull(c, rng, bone, soft):
    cx, cy = 0.5 + rng.uniform(-0.02, 0.02), 0.44
    c.ellipse((cx, cy), (0.47, 0.42), bone)
    c.ellipse((cx, cy), (0.47 - rng.uniform(0.05, 0.08), 0.42 - 0.06), soft * 1.1)
    for side in (-1, 1):  # orbits
        c.ellipse((cx + side * 0.17, 0.58), (0.1, 0.08), soft * 0.5, angle=side * 10)
    c.polygon([(cx - 0.05, 0.72), (cx + 0.05, 0.72), (cx, 0.6)], soft * 0.4)  # nasal cavity
    c.ellipse((cx, 0.78), (0.33, 0.2), bone, thickness=0.06, arc=(10, 170))  # mandible
    for k in range(-4, 5):  # teeth
        c.ellipse((cx + 0.055 * k, 0.83), (0.02, 0.035), bone * 1.1)


def _draw_spine(c, rng, bone, soft):
    c.polygon([(0.15, 0.0), (0.85, 0.0), (0.85, 1.0), (0.15, 1.0)], soft)
    n = 5
    gap = rng.uniform(0.025, 0.045)
    height = (1.0 - (n + 1) * gap) / n
    for k in range(n):
        top = gap + k * (height + gap)
        width = rng.uniform(0.4, 0.5) * (1 + 0.03 * k)
        c.polygon([(0.5 - width / 2, top), (0.5 + width / 2, top),
                   (0.5 + width / 2 * 1.05, top + height), (0.5 - width / 2 * 1.05, top + height)],
                  bone * 0.85)  # fmt: skip
        for side in (-1, 1):
            c.ellipse((0.5 + side * width * 0.32, top + height * 0.35), (0.05, 0.04), bone * 1.15)
            c.bar((0.5 + side * width / 2, top + height * 0.4),
                  (0.5 + side * (width / 2 + 0.12), top + height * 0.45), 0.04, bone * 0.8)  # fmt: skip
        c.ellipse((0.5, top + height * 0.6), (0.03, 0.07), bone * 1.15)  # spinous process


def _draw_hand(c, rng, bone, soft):
    c.polygon([(0.22, 0.58), (0.78, 0.55), (0.8, 1.0), (0.25, 1.0)], soft)  # palm and wrist
    c.bar((0.38, 0.98), (0.4, 0.88), 0.09, bone)  # ulna
    c.bar((0.6, 0.98), (0.58, 0.88), 0.12, bone)  # radius
    for k in range(7):  # carpal bones
        c.ellipse((0.4 + 0.05 * (k % 4) + rng.uniform(-0.01, 0.01), 0.8 + 0.04 * (k // 4)),
                  (0.04, 0.03), bone * 1.05)  # fmt: skip
    spread = rng.uniform(0.7, 1.3)
    for k, (base, length) in enumerate([(0.3, 0.42), (0.43, 0.5), (0.56, 0.47), (0.68, 0.38)]):
        angle = (k - 1.5) * 0.12 * spread
        tip = (base + np.sin(angle) * length, 0.6 - np.cos(angle) * length)
        c.bar((base, 0.6), tip, 0.1, soft)  # finger soft tissue
        c.bar((0.44 + 0.05 * k, 0.76), (base, 0.6), 0.055, bone)  # metacarpal
        for j, (f0, f1) in enumerate([(0.04, 0.4), (0.46, 0.72), (0.78, 0.96)]):
            p0 = (base + (tip[0] - base) * f0, 0.6 + (tip[1] - 0.6) * f0)
            p1 = (base + (tip[0] - base) * f1, 0.6 + (tip[1] - 0.6) * f1)
            c.bar(p0, p1, 0.05 - 0.008 * j, bone)  # phalanges with joint spaces between
    thumb = rng.uniform(0.5, 0.8)
    c.bar((0.25, 0.78), (0.25 - 0.25 * thumb, 0.55), 0.1, soft)
    c.bar((0.36, 0.8), (0.22 - 0.05 * thumb, 0.66), 0.055, bone)
    c.bar((0.2 - 0.05 * thumb, 0.63), (0.1 - 0.12 * thumb, 0.54), 0.05, bone)


def _draw_pelvis(c, rng, bone, soft):
    c.polygon([(0.02, 0.1), (0.98, 0.1), (0.98, 1.0), (0.02, 1.0)], soft)
    for side in (-1, 1):
        c.ellipse((0.5 + side * 0.25, 0.32), (0.2, 0.14), bone * 0.8, angle=side * 25)  # ilium
        c.ellipse((0.5 + side * 0.18, 0.72), (0.07, 0.05), soft * 0.6)  # obturator foramen
        c.ellipse((0.5 + side * 0.18, 0.72), (0.1, 0.08), bone, thickness=0.03)  # pubic rami
        c.ellipse((0.5 + side * 0.33, 0.6), (0.07, 0.07), bone * 1.1)  # femoral head
        c.bar((0.5 + side * 0.35, 0.62), (0.5 + side * 0.42, 0.95), 0.1, bone)  # neck and shaft
    c.polygon([(0.42, 0.25), (0.58, 0.25), (0.5, 0.58)], bone * 0.9)  # sacrum


def _draw_knee(c, rng, bone, soft):
    c.polygon([(0.12, 0.0), (0.88, 0.0), (0.8, 1.0), (0.2, 1.0)], soft)
    joint = rng.uniform(0.47, 0.53)
    gap = rng.uniform(0.02, 0.035)
    c.bar((0.5, 0.0), (0.5, joint - 0.12), 0.28, bone)  # femur shaft
    for side in (-1, 1):
        c.ellipse((0.5 + side * 0.14, joint - 0.09), (0.14, 0.09), bone)  # condyles
    c.polygon([(0.24, joint + gap), (0.76, joint + gap), (0.66, joint + 0.2),
               (0.34, joint + 0.2)], bone)  # fmt: skip  # tibial plateau
    c.bar((0.5, joint + 0.15), (0.5, 1.0), 0.26, bone)  # tibia shaft
    c.bar((0.78, joint + 0.1), (0.75, 1.0), 0.07, bone * 0.9)  # fibula
    c.ellipse((0.5, joint - 0.16), (0.1, 0.13), bone * 1.15)  # patella, seen through the femur


def _draw_chest(c, rng, bone, soft):
    c.ellipse((0.5, 0.55), (0.5, 0.5), soft)  # trunk
    for side in (-1, 1):
        c.ellipse((0.5 + side * 0.21, 0.52), (0.17, 0.36), soft * 0.25)  # lungs
    c.ellipse((0.56, 0.7), (0.13, 0.12), soft * 1.2)  # heart shadow
    c.bar((0.5, 0.05), (0.5, 1.0), 0.07, bone * 0.9)  # spine
    for side in (-1, 1):
        c.bar((0.5 + side * 0.06, 0.13), (0.5 + side * 0.4, 0.1), 0.04, bone)  # clavicle
        for k in range(7):  # ribs: arcs from the spine outwards and down
            y = 0.18 + 0.09 * k + rng.uniform(-0.01, 0.01)
            arc = (180, 290) if side < 0 else (250, 360)
            c.ellipse((0.5 + side * 0.02, y + 0.1), (0.38, 0.12), bone * 0.8,
                      angle=side * 8, thickness=0.018, arc=arc)  # fmt: skip


_DRAW = {
    "skull": _draw_skull,
    "spine": _draw_spine,
    "hand": _draw_hand,
    "pelvis": _draw_pelvis,
    "knee": _draw_knee,
    "chest": _draw_chest,
}


def _radiograph(rng, name, min_size, max_size, bit_depth, noise_std, contrast):
    long = int(rng.integers(min_size, max_size + 1))
    short = max(8, int(round(long * rng.uniform(0.5, 1.0))))
    height, width = (long, short) if rng.uniform() < 0.5 else (short, long)
    canvas = _Canvas(rng, height, width, _ASPECT[name])
    bone, soft = rng.uniform(0.6, 0.8), rng.uniform(0.25, 0.35)
    _DRAW[name](canvas, rng, bone, soft)
    image = cv2.GaussianBlur(canvas.image, (0, 0), rng.uniform(0.6, 1.2) * max(1.0, long / 200))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = rng.uniform(-1, 1, 2) * 0.35
    illumination = 1.0 + ramp[0] * (yy / height - 0.5) + ramp[1] * (xx / width - 0.5)
    span, offset = rng.uniform(*contrast), rng.uniform(0.05, 0.35)
    image = offset + span * image * illumination
    image += rng.normal(0.0, noise_std, image.shape).astype(np.float32)
    top = 2**bit_depth - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.rint(np.clip(image, 0.0, 1.0) * top).astype(dtype)


def simulate_radiographs(
    num_images,
    min_size=128,
    max_size=256,
    bit_depth=8,
    class_fractions=None,
    noise_std=0.01,
    contrast=(0.15, 0.4),
    seed=0,
):
    """Simulates `num_images` radiographs of six body regions, of varying size and contrast.

    See the module docstring for the anatomy and what varies. Class counts are the fractions
    times `num_images`, rounded by largest remainder (so they sum to `num_images`), at random
    positions.

    Args:
        num_images: number of images.
        min_size, max_size: range of the longer side in pixels (>= 16); the shorter side is 0.5
            to 1 times the longer, and either side may be the longer one, whatever the class.
        bit_depth: 8 (uint8), 12 or 16 (uint16).
        class_fractions: 6 non-negative weights in the order of `RADIOGRAPH_CLASSES` (skull,
            spine, hand, pelvis, knee, chest); default 0.16, 0.08, 0.22, 0.05, 0.13, 0.36.
        noise_std: standard deviation of the Gaussian noise, as a fraction of the full range.
        contrast: range of the fraction of the intensity range the anatomy spans.
        seed: the images depend only on `seed`, their index and their class.

    Returns:
        A `RadiographPhantom` (``.images``, ``.labels``, ``.class_names``, ``.class_codes``,
        ``.codes``, ``.sizes``, ``.bit_depth``).

    Example:

    >>> data = simulate_radiographs(20, min_size=64, max_size=96, seed=0)
    >>> len(data), np.bincount(data.labels, minlength=6).tolist()
    (20, [3, 2, 4, 1, 3, 7])
    >>> data.class_names[5], data.class_codes[5], data.images[0].dtype
    ('chest', '1123-110-500-000', dtype('uint8'))
    """
    num_images = check_positive_int(num_images, "num_images")
    min_size, max_size = check_size_range(min_size, max_size, "min_size", "max_size", 16)
    if bit_depth not in (8, 12, 16) or isinstance(bit_depth, bool):
        raise ValueError(f"`bit_depth` must be 8, 12 or 16. Received: bit_depth={bit_depth}")
    names = tuple(name for name, _, _ in RADIOGRAPH_CLASSES)
    codes = tuple(str(parse_irma_code(code)) for _, code, _ in RADIOGRAPH_CLASSES)
    if class_fractions is None:
        class_fractions = [fraction for _, _, fraction in RADIOGRAPH_CLASSES]
    weights = np.asarray(class_fractions, dtype=np.float64)
    if weights.shape != (len(names),) or not np.all(weights >= 0) or not weights.sum() > 0:
        raise ValueError(
            f"`class_fractions` must be {len(names)} non-negative numbers, not all 0 "
            f"({', '.join(names)}). Received: class_fractions={class_fractions}"
        )
    if not (0 <= noise_std < 1) or not (0 < contrast[0] <= contrast[1] <= 1):
        raise ValueError(
            "`noise_std` must be in [0, 1) and `contrast` (low, high) with 0 < low <= high <= 1. "
            f"Received: noise_std={noise_std}, contrast={contrast}"
        )
    expected = weights / weights.sum() * num_images
    counts = np.floor(expected).astype(int)
    remainder = num_images - counts.sum()
    counts[np.argsort(-(expected - counts), kind="stable")[:remainder]] += 1
    labels = np.repeat(np.arange(len(names)), counts)
    labels = labels[np.random.default_rng([seed, 2**31]).permutation(num_images)]
    images = [
        _radiograph(np.random.default_rng([seed, i]), names[label], min_size, max_size,
                    bit_depth, noise_std, contrast)
        for i, label in enumerate(labels)
    ]  # fmt: skip
    return RadiographPhantom(images, labels, names, codes, int(bit_depth))
