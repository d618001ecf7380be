"""Lung-area slice selection of Hsu et al. (paper 003): the contiguous slices with the most lung.

A chest CT holds slices above and below the lungs (neck, abdomen) that carry no sign of a lung
disease. The paper trains its 2D model on the window of contiguous slices with the largest summed
lung area (Section 2.1, Eq. 1-4). Per slice, as the authors' code does it:

1. crop the background: minimum filter of size `crop_filter_size` (10), threshold, keep the
   longest run of non-empty rows and the longest run of non-empty columns (this drops the scanner
   table, separated from the body by air, and bright specks in the air);
2. minimum filter of size `filter_size` (5) on the cropped slice (Eq. 1: removes thin bright
   structures and noise inside the lungs);
3. threshold (Eq. 2): ``mask = filtered >= threshold`` (body), lung and air below;
4. fill the holes of the body mask (``scipy.ndimage.binary_fill_holes``; the paper's text says
   "binary dilation", the authors' code fills holes) and take ``area = sum(filled - mask)``
   (Eq. 3): the dark pixels enclosed by the body, i.e. the lungs (and the airways);

then, over the scan, the window of ``k`` contiguous slices (``num_slices``, or
``ceil(fraction * n)``, the authors' 0.5) whose areas sum highest (Eq. 4), found in O(n) with a
cumulative sum; on ties the first (lowest) start wins, as the authors' strict ``>`` scan.

Speed: a minimum filter followed by a threshold equals a binary erosion of the thresholded image
(``min(window) >= t`` exactly when every pixel in it is ``>= t``), so steps 1-3 run on ``uint8``
masks with ``cv2.erode``, and step 4 fills the background from the border with
``cv2.floodFill`` (4-connected, the structure of ``binary_fill_holes``). The per-slice work is
these OpenCV calls; thresholds, crop boxes and the window are NumPy over the whole stack.
The SciPy way, ``(1, k, k)`` filters and ``binary_fill_holes`` with a ``(1, 3, 3)`` structure on
the whole stack, gives the same areas but takes seconds for a 300 x 512 x 512 scan
(``benchmarks/lung_selection.py`` compares the three). `lung_area_steps` runs the steps on one
slice with SciPy and returns the images of the paper's Fig. 1 (a)-(f); the tests check that both
give the same areas.

Two input kinds, one function:

- ``kind="hu"``: Hounsfield units. Default threshold -400 HU: aerated lung is about -900 to
  -700 HU, soft tissue 0 to 60, fat -120 to -80, so -400 (about halfway between lung and soft
  tissue, the usual starting point of threshold lung segmentation) keeps fat and muscle in the
  body and counts ground-glass opacities up to -400 HU as lung; consolidation (> -100 HU) is
  body, as it is in the authors' 8-bit masks.
- ``kind="8bit"``: 8-bit slices as COV19-CT-DB ships them (JPEG, 0-255), threshold 100 as the
  authors. Under a lung window (center -600, width 1500, `kerasmed.data.to_8bit_slices`) 100
  is -762 HU, so the 8-bit rule counts less of a dense (diseased) lung than the HU default.

Decisions on the edge cases (each reported in the result, never silently):

- no lung in any slice (every area 0): the authors return ``(0, k)``; so does this function, with
  ``found=False``, ``rule="no_lung"`` and a `reason`;
- fewer slices than ``num_slices``: the whole scan, with a note;
- slices of different sizes in one scan (a list of 2D arrays): the authors keep the last slice
  only (in COV19-CT-DB such scans have one axial slice, the last); so does this function, with
  ``rule="last_slice"`` and a note naming the sizes; every slice's area is still computed.

The crop's filter erodes the body by about ``crop_filter_size / 2`` pixels, so the crop cuts
into the chest wall: a lung closer than that (plus ``filter_size / 2``) to the body's outline
touches the crop's edge, is no hole, and counts 0, as in the authors' code (a thin patient, or
lungs drawn too close to the skin in a phantom).

Small images: the filter sizes are the authors' for 512 x 512 slices. On 64 x 64 slices (the
phantom's default) use ``filter_size=1, crop_filter_size=2`` (a 5 x 5 filter closes 64-pixel
lungs' thin walls and fills small lungs with body).

Reference: C.-C. Hsu, C.-H. Tsai, G.-L. Chen, S.-D. Ma, S.-C. Tai, *Spatiotemporal feature
learning based on two-step LSTM and Transformer for CT scans* (COV19-CT-DB), Section 2.1; the
steps' details from the authors' code (``jesse1029/CT-COVID19-Classification``).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import numbers

import cv2
import numpy as np
import scipy.ndimage

from kerasmed.validation import check_one_of, check_positive_int, check_rate

__all__ = [
    "DEFAULT_LUNG_THRESHOLDS",
    "LungAreaSteps",
    "LungSliceSelection",
    "lung_area_steps",
    "select_lung_slices",
]

DEFAULT_LUNG_THRESHOLDS = {"hu": -400, "8bit": 100}
_RULES = ("lung_area", "no_lung", "last_slice")


@dataclasses.dataclass(frozen=True)
class LungSliceSelection:
    """The window chosen by `select_lung_slices`.

    Attributes:
        start: first slice of the window.
        stop: one past its last slice (``volume[start:stop]`` is the window).
        num_slices: ``stop - start``.
        areas: ``(n,)`` int64 array, the lung area (pixels) of every slice.
        crop_box: ``(n, 4)`` int array, per slice ``(row_start, row_stop, col_start, col_stop)``
            of the background crop (each slice is cropped on its own, as the authors do).
        found: whether any slice of the window candidates has lung (an area > 0).
        rule: ``"lung_area"`` (Eq. 4), ``"no_lung"`` (every area 0: the authors' ``(0, k)``)
            or ``"last_slice"`` (slices of different sizes: the last slice only).
        notes: what else the caller should know (window longer than the scan, ...).
        kind: ``"hu"`` or ``"8bit"``.
        threshold: the threshold used.
    """

    start: int
    stop: int
    num_slices: int
    areas: np.ndarray
    crop_box: np.ndarray
    found: bool
    rule: str
    notes: tuple = ()
    kind: str = "hu"
    threshold: float = DEFAULT_LUNG_THRESHOLDS["hu"]

    @property
    def reason(self):
        """Why the window is not a lung-area window (``None`` when it is one)."""
        if self.rule == "lung_area":
            return None
        if self.rule == "no_lung":
            return (
                f"no lung found: every slice's lung area is 0 at threshold {self.threshold} "
                f"(kind={self.kind!r}); slices {self.start}-{self.stop - 1} are the authors' "
                "default window, not a lung window"
            )
        text = "slices of different sizes: only the last slice is kept, as the authors' code does"
        if not self.found:
            text += f"; it has no lung at threshold {self.threshold} (kind={self.kind!r})"
        return text

    @property
    def slice(self):
        """``slice(start, stop)``, to index the volume."""
        return slice(self.start, self.stop)


@dataclasses.dataclass(frozen=True)
class LungAreaSteps:
    """The images of the lung-area steps on one slice (the paper's Fig. 1 a-f).

    Attributes:
        original: (a) the input slice.
        cropped: (b) the slice inside `crop_box`.
        filtered: (c) the minimum filter of the cropped slice.
        mask: (d) ``filtered >= threshold`` (bool): the body.
        filled: (e) `mask` with its holes filled (bool).
        lung: (f) ``filled & ~mask`` (bool): the lung estimate; ``area`` is its pixel count.
        crop_box: ``(row_start, row_stop, col_start, col_stop)`` of the crop in `original`.
        threshold: the threshold used.
    """

    original: np.ndarray
    cropped: np.ndarray
    filtered: np.ndarray
    mask: np.ndarray
    filled: np.ndarray
    lung: np.ndarray
    crop_box: tuple
    threshold: float

    @property
    def area(self):
        """The lung area (Eq. 3) in pixels."""
        return int(np.count_nonzero(self.lung))


def _check_threshold(threshold, kind):
    if threshold is None:
        return DEFAULT_LUNG_THRESHOLDS[kind]
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not math.isfinite(threshold)
    ):
        raise ValueError(
            f"`threshold` must be a finite number or None. Received: threshold={threshold!r}"
        )
    return threshold


def _check_slice_values(array, kind, name):
    """Refuses arrays that cannot be CT slices of `kind` (NaN, bools, HU given as 8-bit ...)."""
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(
            f"`{name}` must hold real numbers (HU or 8-bit values). Received: {name}.dtype={array.dtype}"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"`{name}` must be finite (no NaN or inf). Received: {name} with NaN/inf")
    if kind == "hu" and array.dtype == np.uint8:
        raise ValueError(
            f"`{name}` is uint8, which holds no Hounsfield units; pass kind='8bit' for 8-bit "
            f"slices. Received: {name}.dtype=uint8, kind='hu'"
        )
    if kind == "8bit" and array.dtype != np.uint8 and array.size:
        low, high = array.min(), array.max()
        if low < 0 or high > 255:
            raise ValueError(
                f"`{name}` must hold values in [0, 255] for kind='8bit' (HU volumes take "
                f"kind='hu'). Received: {name} values in [{low}, {high}]"
            )


def _as_slices(volume, kind):
    """Returns ``(stack, None)`` for a ``(n, H, W)`` scan, ``(None, list)`` for mixed sizes."""
    if isinstance(volume, (list, tuple)):
        if not volume:
            raise ValueError("`volume` must hold at least one slice. Received: volume=[]")
        slices = [np.asarray(s) for s in volume]
        for i, s in enumerate(slices):
            if s.ndim != 2 or 0 in s.shape:
                raise ValueError(
                    f"`volume` as a list must hold non-empty 2D slices. "
                    f"Received: volume[{i}].shape={s.shape}"
                )
            _check_slice_values(s, kind, f"volume[{i}]")
        if len({s.shape for s in slices}) == 1:
            return np.stack(slices), None
        return None, slices
    stack = np.asarray(volume)
    if stack.ndim != 3 or 0 in stack.shape:
        raise ValueError(
            "`volume` must be a (num_slices, height, width) array with every size >= 1, or a "
            "list of 2D slices (a 2D slice is volume[None]; for an RGB 8-bit stack pass "
            f"volume[..., 0]). Received: volume.shape={stack.shape}"
        )
    _check_slice_values(stack, kind, "volume")
    return stack, None


def _longest_runs(nonempty):
    """First longest run of True per row of an ``(n, L)`` bool array -> (start, stop) arrays.

    A row without any True gets ``(0, L)``: the authors leave such a slice uncropped.
    """
    n, length = nonempty.shape
    count = np.cumsum(nonempty, axis=1, dtype=np.int64)
    last_reset = np.maximum.accumulate(np.where(nonempty, 0, count), axis=1)
    run = count - last_reset  # length of the run of True ending at each position
    end = run.argmax(axis=1)  # first maximum: the first of equally long runs
    best = run[np.arange(n), end]
    start = np.where(best > 0, end - best + 1, 0)
    stop = np.where(best > 0, end + 1, length)
    return start, stop


def _crop_boxes(body, crop_filter_size):
    """Per-slice crop boxes ``(n, 4)`` of a thresholded ``uint8`` stack (1 = above threshold)."""
    n, height, width = body.shape
    rows = np.empty((n, height), bool)
    cols = np.empty((n, width), bool)
    kernel = np.ones((crop_filter_size, crop_filter_size), np.uint8)
    for i, image in enumerate(body):
        eroded = cv2.erode(image, kernel) if crop_filter_size > 1 else image
        rows[i] = eroded.any(axis=1)
        cols[i] = eroded.any(axis=0)
    r0, r1 = _longest_runs(rows)
    c0, c1 = _longest_runs(cols)
    # The authors crop only when both runs exist; a slice without any body keeps its full size.
    empty = ~rows.any(axis=1)
    r0[empty], r1[empty], c0[empty], c1[empty] = 0, height, 0, width
    return np.stack([r0, r1, c0, c1], axis=1)


def _hole_areas(body, boxes, filter_size):
    """Lung area per slice: pixels below threshold enclosed by the body, inside the crop box."""
    kernel = np.ones((filter_size, filter_size), np.uint8)
    areas = np.empty(len(body), np.int64)
    for i, (image, (r0, r1, c0, c1)) in enumerate(zip(body, boxes)):
        cropped = image[r0:r1, c0:c1]
        mask = cv2.erode(cropped, kernel) if filter_size > 1 else cropped
        # A frame of background around the crop, filled from its corner (4-connected, as
        # binary_fill_holes): what stays 0 afterwards is a hole of the body mask.
        padded = np.zeros((r1 - r0 + 2, c1 - c0 + 2), np.uint8)
        padded[1:-1, 1:-1] = mask
        cv2.floodFill(padded, None, (0, 0), 1, flags=4)
        areas[i] = padded.size - np.count_nonzero(padded)
    return areas


def _stack_areas(stack, threshold, filter_size, crop_filter_size):
    body = np.ascontiguousarray(stack >= threshold).view(np.uint8)
    boxes = _crop_boxes(body, crop_filter_size)
    return _hole_areas(body, boxes, filter_size), boxes


def _best_window(areas, k):
    """First start of the k contiguous slices with the largest summed area (Eq. 4), O(n)."""
    cumulative = np.concatenate([[0], np.cumsum(areas, dtype=np.int64)])
    sums = cumulative[k:] - cumulative[:-k]
    return int(np.argmax(sums))


def select_lung_slices(
    volume,
    num_slices=None,
    fraction=0.5,
    threshold=None,
    *,
    kind="hu",
    filter_size=5,
    crop_filter_size=10,
):
    """Chooses the contiguous slices with the largest lung area (the paper's Eq. 1-4).

    Args:
        volume: a ``(n, H, W)`` scan (HU or 8-bit, see `kind`), or a list of ``n`` 2D slices
            (which may differ in size: then only the last slice is kept, as the authors).
        num_slices: window length ``k``; ``None`` takes ``ceil(fraction * n)``.
        fraction: window length as a fraction of the scan, in (0, 1]; the authors' 0.5.
        threshold: body/lung threshold in the units of `kind`; ``None`` takes
            ``DEFAULT_LUNG_THRESHOLDS[kind]`` (-400 HU, or 100 for 8-bit slices).
        kind: ``"hu"`` (Hounsfield units) or ``"8bit"`` (0-255 slices, as COV19-CT-DB ships).
        filter_size: minimum filter before the threshold (the authors' 5; 1 for none).
        crop_filter_size: minimum filter of the background crop (the authors' 10).

    Returns:
        A `LungSliceSelection`: ``volume[result.slice]`` is the window; ``result.areas`` the
        per-slice lung areas; ``result.found``, ``result.rule``, ``result.reason`` and
        ``result.notes`` say how the window was chosen.

    Example:

    >>> yy, xx = np.mgrid[:48, :48]
    >>> body = ((yy - 24) / 20) ** 2 + ((xx - 24) / 22) ** 2 < 1
    >>> scan = np.where(body, 40, -1000)[None].repeat(6, axis=0).astype(np.int16)
    >>> for z, r in enumerate([0, 3, 6, 8, 5, 2]):
    ...     for cx in (14, 34):
    ...         scan[z][(yy - 24) ** 2 + (xx - cx) ** 2 < r * r] = -850
    >>> result = select_lung_slices(scan, filter_size=1, crop_filter_size=2)
    >>> result.start, result.stop, result.rule, result.found
    (2, 5, 'lung_area', True)
    >>> result.areas.tolist()
    [0, 50, 218, 386, 138, 18]
    """
    kind = check_one_of(kind, "kind", ("hu", "8bit"))
    num_slices = check_positive_int(num_slices, "num_slices", allow_none=True)
    fraction = check_rate(fraction, "fraction")
    if fraction == 0.0:
        raise ValueError(f"`fraction` must be a number in (0, 1]. Received: fraction={fraction}")
    threshold = _check_threshold(threshold, kind)
    filter_size = check_positive_int(filter_size, "filter_size")
    crop_filter_size = check_positive_int(crop_filter_size, "crop_filter_size")

    stack, mixed = _as_slices(volume, kind)
    common = {"kind": kind, "threshold": threshold}
    if mixed is not None:
        per_slice = [_stack_areas(s[None], threshold, filter_size, crop_filter_size) for s in mixed]
        areas = np.concatenate([a for a, _ in per_slice])
        boxes = np.concatenate([b for _, b in per_slice])
        n = len(mixed)
        sizes = collections.Counter(s.shape for s in mixed)
        listed = ", ".join(f"{h}x{w}: {c}" for (h, w), c in sizes.items())
        note = (
            f"slices of different sizes ({listed}; the last is {mixed[-1].shape[0]}x"
            f"{mixed[-1].shape[1]}): only the last slice ({n - 1}) is kept, as the authors' code"
        )
        return LungSliceSelection(
            n - 1, n, 1, areas, boxes, bool(areas[-1] > 0), "last_slice", (note,), **common
        )

    n = stack.shape[0]
    areas, boxes = _stack_areas(stack, threshold, filter_size, crop_filter_size)
    notes = []
    k = num_slices if num_slices is not None else math.ceil(fraction * n)
    if k > n:
        notes.append(f"num_slices={k} exceeds the scan's {n} slices: the whole scan is the window")
        k = n
    if n == 1:
        notes.append("a single-slice scan: the window is that slice")
    if not areas.any():
        return LungSliceSelection(0, k, k, areas, boxes, False, "no_lung", tuple(notes), **common)
    start = _best_window(areas, k)
    return LungSliceSelection(
        start, start + k, k, areas, boxes, True, "lung_area", tuple(notes), **common
    )


def lung_area_steps(slice2d, kind="hu", threshold=None, filter_size=5, crop_filter_size=10):
    """The lung-area steps on one slice, image by image (for the paper's Fig. 1 a-f).

    The same steps as `select_lung_slices`, written with SciPy on the grey image (crop, minimum
    filter, threshold, ``binary_fill_holes``, difference), for plotting and as a cross-check.

    Args:
        slice2d: a 2D slice in HU (``kind="hu"``) or 8-bit values (``kind="8bit"``).
        kind: ``"hu"`` or ``"8bit"``.
        threshold: ``None`` takes ``DEFAULT_LUNG_THRESHOLDS[kind]``.
        filter_size: minimum filter before the threshold (the authors' 5).
        crop_filter_size: minimum filter of the background crop (the authors' 10).

    Returns:
        A `LungAreaSteps` with ``original, cropped, filtered, mask, filled, lung`` and ``area``.

    Example:

    >>> yy, xx = np.mgrid[:40, :40]
    >>> image = np.where(((yy - 20) / 16) ** 2 + ((xx - 20) / 18) ** 2 < 1, 30, -1000)
    >>> image[(yy - 20) ** 2 + (xx - 20) ** 2 < 36] = -850
    >>> steps = lung_area_steps(image, filter_size=1, crop_filter_size=2)
    >>> steps.cropped.shape, steps.area, int(((yy - 20) ** 2 + (xx - 20) ** 2 < 36).sum())
    ((30, 34), 109, 109)
    """
    kind = check_one_of(kind, "kind", ("hu", "8bit"))
    threshold = _check_threshold(threshold, kind)
    filter_size = check_positive_int(filter_size, "filter_size")
    crop_filter_size = check_positive_int(crop_filter_size, "crop_filter_size")
    original = np.asarray(slice2d)
    if original.ndim != 2 or 0 in original.shape:
        raise ValueError(
            f"`slice2d` must be a non-empty 2D array. Received: slice2d.shape={original.shape}"
        )
    _check_slice_values(original, kind, "slice2d")
    body = scipy.ndimage.minimum_filter(original, size=crop_filter_size) >= threshold
    r0, r1 = (int(v[0]) for v in _longest_runs(body.any(axis=1)[None]))
    c0, c1 = (int(v[0]) for v in _longest_runs(body.any(axis=0)[None]))
    if not body.any():
        r0, r1, c0, c1 = 0, original.shape[0], 0, original.shape[1]
    cropped = original[r0:r1, c0:c1]
    filtered = scipy.ndimage.minimum_filter(cropped, size=filter_size)
    mask = filtered >= threshold
    filled = scipy.ndimage.binary_fill_holes(mask)
    return LungAreaSteps(
        original, cropped, filtered, mask, filled, filled & ~mask, (r0, r1, c0, c1), threshold
    )
