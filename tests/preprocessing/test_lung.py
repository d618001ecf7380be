"""kerasmed.preprocessing.lung: lung-area slice selection (paper 003, Eq. 1-4)."""

import dataclasses
import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from kerasmed.preprocessing import (
    DEFAULT_LUNG_THRESHOLDS,
    lung_area_steps,
    select_lung_slices,
)

SIZE = 128


def _authors_area(image, threshold, filter_size, crop_filter_size):
    """The authors' per-slice steps, transcribed with SciPy (crop, filter, threshold, fill)."""
    binary = np.where(ndi.minimum_filter(image, size=crop_filter_size) < threshold, 0, 255)
    bounds = []
    for axis in (1, 0):
        sums = np.concatenate(([0], binary.sum(axis=axis), [0]))
        zeros = np.where(sums == 0)[0]
        gap = np.argmax(zeros[1:] - zeros[:-1])
        bounds.append((zeros[gap], zeros[gap + 1] - 1))
    (r0, r1), (c0, c1) = bounds
    if r0 != r1 and c0 != c1:
        image = image[r0:r1, c0:c1]
    mask = np.where(ndi.minimum_filter(image, size=filter_size) < threshold, 0, 255)
    filled = ndi.binary_fill_holes(mask)
    return int((filled * 255 - mask).sum() // 255)


def _authors_window(areas, k):
    """The authors' window search: every start, strict ``>`` (first maximum; (0, k) if all 0)."""
    best, start = 0, 0
    for i in range(len(areas) - k + 1):
        if np.sum(areas[i : i + k]) > best:
            best, start = np.sum(areas[i : i + k]), i
    return start, start + k


def _chest(radii, size=SIZE, table=False, lungs=True, dtype=np.int16):
    """A body ellipse (30 HU) with two lung discs (-850 HU) of the given radius per slice."""
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    body = ((yy - c) / (0.36 * size)) ** 2 + ((xx - c) / (0.44 * size)) ** 2 < 1
    volume = np.full((len(radii), size, size), -1000, dtype)
    volume[:, body] = 30
    if lungs:
        for z, r in enumerate(radii):
            for cx in (c - 0.2 * size, c + 0.2 * size):
                volume[z][(yy - c) ** 2 + (xx - cx) ** 2 < r * r] = -850
    if table:
        # A hollow table (5-pixel walls, air inside) under the body, 4 rows of air between.
        top = int(c + 0.36 * size) + 4
        left, right = int(0.1 * size), int(0.9 * size)
        volume[:, top : top + 14, left:right] = 200
        volume[:, top + 5 : top + 9, left + 5 : right - 5] = -1000
    return volume


RADII = [0, 0, 4, 8, 11, 14, 18, 16, 13, 10, 6, 2]


def test_window_is_where_the_lungs_are_largest_and_matches_the_authors_code():
    volume = _chest(RADII)
    result = select_lung_slices(volume)
    reference = [_authors_area(s, -400, 5, 10) for s in volume]
    np.testing.assert_array_equal(result.areas, reference)
    k = math.ceil(0.5 * len(RADII))
    assert (result.start, result.stop) == _authors_window(result.areas, k)
    assert result.num_slices == k == result.stop - result.start
    assert np.argmax(RADII) in range(result.start, result.stop)
    # the lung area grows with the disc radius and is zero without lungs
    order = np.argsort(RADII, kind="stable")
    assert np.all(np.diff(result.areas[order]) >= 0)
    assert result.areas[0] == 0 and result.areas[6] > 2 * np.pi * 18**2 * 0.9
    assert (result.found, result.rule, result.reason, result.notes) == (True, "lung_area", None, ())
    assert result.slice == slice(result.start, result.stop)
    assert result.kind == "hu" and result.threshold == DEFAULT_LUNG_THRESHOLDS["hu"] == -400


def test_num_slices_and_fraction():
    volume = _chest(RADII)
    assert (select_lung_slices(volume, num_slices=1).start, 1) == (6, 1)
    r = select_lung_slices(volume, num_slices=3)
    assert (r.start, r.stop) == _authors_window(r.areas, 3) and r.start <= 6 < r.stop
    r = select_lung_slices(volume, fraction=0.25)  # ceil(3.0) = 3
    assert r.num_slices == 3
    r = select_lung_slices(volume, fraction=1.0)
    assert (r.start, r.stop) == (0, len(RADII))


def test_ties_go_to_the_first_window():
    volume = _chest([12, 12, 0, 0, 12, 12])
    result = select_lung_slices(volume, num_slices=2)
    assert result.areas[0] == result.areas[4] > 0
    assert (result.start, result.stop) == (0, 2) == _authors_window(result.areas, 2)
    volume = _chest([0, 12, 0, 0, 12, 12, 0])
    # windows of 3 at starts 3 and 4 both hold slices 4 and 5: the first one wins
    result = select_lung_slices(volume, num_slices=3)
    assert (result.start, result.stop) == (3, 6) == _authors_window(result.areas, 3)


@pytest.mark.parametrize("filter_size, crop_filter_size", [(5, 10), (3, 4)])
def test_the_crop_keeps_a_hollow_scanner_table_out_of_the_lung_area(filter_size, crop_filter_size):
    # With (5, 10) the filters erase the table's walls; with (3, 4) they survive the crop's
    # filter, and the longest run of rows (the body, not the table) keeps it out.
    sizes = {"filter_size": filter_size, "crop_filter_size": crop_filter_size}
    plain = select_lung_slices(_chest(RADII), **sizes)
    with_table = _chest(RADII, table=True)
    result = select_lung_slices(with_table, **sizes)
    np.testing.assert_array_equal(result.areas, plain.areas)
    assert (result.start, result.stop) == (plain.start, plain.stop)
    # the crop box ends above the table on every slice
    assert np.all(result.crop_box[:, 1] <= int(SIZE / 2 + 0.36 * SIZE) + 1)
    expected = [_authors_area(s, -400, filter_size, crop_filter_size) for s in with_table]
    np.testing.assert_array_equal(result.areas, expected)
    if filter_size == 3:
        # without the crop, the air inside the table would count as lung on every slice
        uncropped = [
            int((ndi.binary_fill_holes(m) & ~m).sum())
            for m in ndi.minimum_filter(with_table, size=(1, 3, 3)) >= -400
        ]
        assert np.all(np.array(uncropped) - result.areas > 100)


def test_noise_and_bright_specks_barely_change_the_areas():
    clean = _chest(RADII, dtype=np.float32)
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 25, clean.shape).astype(np.float32)
    specks = rng.uniform(size=clean.shape) < 0.01
    noisy[specks] += 1500  # isolated bright pixels in air and lung: the filters remove them
    a, b = select_lung_slices(clean), select_lung_slices(noisy)
    assert (a.start, a.stop) == (b.start, b.stop)
    np.testing.assert_allclose(b.areas, a.areas, rtol=0.03, atol=5)
    # without the minimum filter the specks punch holes into the lung area
    c = select_lung_slices(noisy, filter_size=1)
    assert np.all(c.areas[3:10] < b.areas[3:10] * 0.98)


def test_no_lung_returns_the_authors_default_window_and_says_so():
    for volume in (_chest(RADII, lungs=False), np.full((12, 40, 40), -1000, np.int16)):
        result = select_lung_slices(volume)
        assert (result.start, result.stop, result.num_slices) == (0, 6, 6)
        assert not result.found and result.rule == "no_lung"
        assert "no lung" in result.reason and "-400" in result.reason
        assert not result.areas.any()


def test_fewer_slices_than_the_window_and_a_single_slice():
    volume = _chest([10, 16, 10, 0])
    result = select_lung_slices(volume, num_slices=10)
    assert (result.start, result.stop, result.num_slices, result.found) == (0, 4, 4, True)
    assert len(result.notes) == 1 and "num_slices=10" in result.notes[0]
    one = select_lung_slices(volume[1:2])
    assert (one.start, one.stop, one.rule, one.found) == (0, 1, "lung_area", True)
    assert any("single-slice" in note for note in one.notes)
    assert one.areas.tolist() == [result.areas[1]]


def test_slices_of_different_sizes_keep_the_last_slice():
    volume = _chest(RADII)
    slices = list(volume[:-1]) + [_chest([20], size=160)[0]]
    result = select_lung_slices(slices)
    n = len(slices)
    assert (result.start, result.stop, result.num_slices) == (n - 1, n, 1)
    assert result.rule == "last_slice" and result.found
    assert "128x128: 11" in result.notes[0] and "160x160: 1" in result.notes[0]
    assert "last slice" in result.reason
    np.testing.assert_array_equal(result.areas[:-1], select_lung_slices(volume[:-1]).areas)
    assert result.areas[-1] == lung_area_steps(slices[-1]).area > 0
    assert result.crop_box.shape == (n, 4)
    # a list of equally sized slices is one scan
    same = select_lung_slices(list(volume))
    np.testing.assert_array_equal(same.areas, select_lung_slices(volume).areas)
    assert same.rule == "lung_area"
    # the last slice without lung: kept all the same, and said
    slices[-1] = _chest([0], size=160, lungs=False)[0]
    result = select_lung_slices(slices)
    assert result.rule == "last_slice" and not result.found and "no lung" in result.reason


def test_random_blobs_match_the_authors_steps():
    # Blobby bodies with holes touching the crop edges, several runs of rows: every branch.
    rng = np.random.default_rng(1)
    field = ndi.gaussian_filter(rng.normal(size=(6, 70, 90)), (0, 4, 4))
    volume = np.where(field > np.quantile(field, 0.4), 40.0, -900.0).astype(np.float32)
    volume[:, :, 60:62] = -1000  # an empty column splits the columns into two runs
    for fs, cfs in ((5, 10), (1, 2), (3, 1)):
        result = select_lung_slices(volume, filter_size=fs, crop_filter_size=cfs)
        expected = [_authors_area(s, -400, fs, cfs) for s in volume]
        np.testing.assert_array_equal(result.areas, expected)
        assert [lung_area_steps(s, filter_size=fs, crop_filter_size=cfs).area for s in volume] == (
            expected
        )


def test_8bit_slices_use_threshold_100():
    hu = _chest(RADII)
    eight_bit = np.clip((hu + 1350) / 1500 * 255, 0, 255).astype(np.uint8)  # lung window
    result = select_lung_slices(eight_bit, kind="8bit")
    assert result.threshold == 100 and result.kind == "8bit"
    expected = [_authors_area(s, 100, 5, 10) for s in eight_bit]
    np.testing.assert_array_equal(result.areas, expected)
    assert (result.start, result.stop) == select_lung_slices(hu).slice.indices(len(hu))[:2]
    # integer 0-255 values in another dtype are 8-bit slices too
    np.testing.assert_array_equal(
        select_lung_slices(eight_bit.astype(np.int32), kind="8bit").areas, result.areas
    )


def test_lung_area_steps_are_the_figure_1_images():
    image = _chest([16])[0]
    steps = lung_area_steps(image)
    r0, r1, c0, c1 = steps.crop_box
    np.testing.assert_array_equal(steps.cropped, image[r0:r1, c0:c1])
    np.testing.assert_array_equal(steps.filtered, ndi.minimum_filter(steps.cropped, 5))
    np.testing.assert_array_equal(steps.mask, steps.filtered >= -400)
    np.testing.assert_array_equal(steps.lung, steps.filled & ~steps.mask)
    assert steps.original is image or np.array_equal(steps.original, image)
    assert steps.cropped.shape[0] < image.shape[0] and steps.cropped.shape[1] < image.shape[1]
    assert steps.area == select_lung_slices(image[None]).areas[0] > 0


def test_the_result_is_frozen():
    result = select_lung_slices(_chest([10, 10]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.start = 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "jpeg"}, "kind"),
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"num_slices": 0}, "num_slices"),
        ({"num_slices": 2.0}, "num_slices"),
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": "low"}, "threshold"),
        ({"filter_size": 0}, "filter_size"),
        ({"crop_filter_size": -1}, "crop_filter_size"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=f"{match}.*Received"):
        select_lung_slices(_chest([10, 10]), **kwargs)


@pytest.mark.parametrize(
    "volume, kind, match",
    [
        (np.zeros((8, 8)), "hu", "volume.shape"),
        (np.zeros((0, 8, 8)), "hu", "volume.shape"),
        (np.zeros((2, 8, 8, 3)), "hu", "volume.shape"),
        ([], "hu", "at least one slice"),
        ([np.zeros((8, 8)), np.zeros(8)], "hu", r"volume\[1\].shape"),
        (np.full((2, 8, 8), np.nan), "hu", "finite"),
        (np.zeros((2, 8, 8), bool), "hu", "dtype"),
        (np.zeros((2, 8, 8), np.uint8), "hu", "kind='8bit'"),
        (np.full((2, 8, 8), -1000.0), "8bit", r"\[0, 255\]"),
    ],
)
def test_bad_volumes_are_named(volume, kind, match):
    with pytest.raises(ValueError, match=match):
        select_lung_slices(volume, kind=kind)
    if isinstance(volume, np.ndarray) and volume.ndim == 3 and 0 not in volume.shape:
        with pytest.raises(ValueError, match="slice2d"):
            lung_area_steps(volume[0], kind=kind)
