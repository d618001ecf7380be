import collections

import numpy as np
import pytest

from kerasmed.preprocessing.augmentation import (
    PAPER_OPS,
    augment_paper,
    mirror_image,
    rotate_image,
    shift_image,
)


@pytest.fixture
def image():
    return np.random.default_rng(1).normal(size=(9, 11)).astype("float32")


def test_mirror_twice_is_identity_and_flips_columns(image):
    np.testing.assert_array_equal(mirror_image(mirror_image(image)), image)
    np.testing.assert_array_equal(mirror_image(image), image[:, ::-1])
    rgb = np.stack([image, 2 * image], axis=-1)
    np.testing.assert_array_equal(mirror_image(rgb, axis=-2), rgb[:, ::-1, :])


def test_rotation_by_zero_is_identity_and_by_90_is_rot90(image):
    np.testing.assert_allclose(rotate_image(image, 0.0), image, atol=1e-6)
    square = image[:9, :9]
    np.testing.assert_allclose(rotate_image(square, 90.0), np.rot90(square), atol=1e-5)
    even = image[:8, :8]
    np.testing.assert_allclose(rotate_image(even, -90.0), np.rot90(even, k=-1), atol=1e-5)


def test_integer_shift_matches_roll_on_the_interior(image):
    shifted = shift_image(image, (2, -3))
    rolled = np.roll(image, (2, -3), axis=(0, 1))
    np.testing.assert_allclose(shifted[2:, :-3], rolled[2:, :-3], atol=1e-6)
    # Outside the image: nearest edge value by default, cval with mode="constant".
    np.testing.assert_allclose(shifted[0], shifted[2], atol=1e-6)
    constant = shift_image(image, (2, -3), mode="constant", cval=-7.0)
    assert np.all(constant[:2] == -7.0) and np.all(constant[:, -3:] == -7.0)


def test_volume_ops_equal_the_slice_ops_applied_per_slice():
    volume = np.random.default_rng(2).normal(size=(3, 10, 12))
    cases = [
        (lambda a: rotate_image(a, 17.0), "rotate"),
        (lambda a: shift_image(a, (4, -5)), "shift"),
        (lambda a: shift_image(a, (1.5, 0.25), order=1), "subvoxel shift"),
        (mirror_image, "mirror"),
    ]
    for op, name in cases:
        per_slice = np.stack([op(s) for s in volume])
        np.testing.assert_allclose(op(volume), per_slice, atol=1e-6, err_msg=name)


def test_channels_last_uses_axes():
    rng = np.random.default_rng(3)
    hwc = rng.normal(size=(10, 12, 2))
    rotated = rotate_image(hwc, 25.0, axes=(-3, -2))
    for c in range(2):
        np.testing.assert_allclose(rotated[..., c], rotate_image(hwc[..., c], 25.0), atol=1e-6)
    shifted = shift_image(hwc, (3, 1), axes=(0, 1))
    np.testing.assert_allclose(shifted[..., 1], shift_image(hwc[..., 1], (3, 1)), atol=1e-6)


def test_op_frequencies_are_a_quarter_each():
    rng = np.random.default_rng(0)
    tiny = np.arange(9.0).reshape(3, 3)
    counts = collections.Counter(augment_paper(tiny, rng)[1] for _ in range(4000))
    assert set(counts) == set(PAPER_OPS)
    for op in PAPER_OPS:
        assert abs(counts[op] / 4000 - 0.25) < 0.03, counts


def test_each_op_is_the_named_transform():
    rng = np.random.default_rng(5)
    image = np.random.default_rng(4).normal(size=(20, 20))
    seen = set()
    for _ in range(40):
        out, op = augment_paper(image, rng)
        seen.add(op)
        if op == "none":
            np.testing.assert_array_equal(out, image)
            assert out is not image
        elif op == "mirror":
            np.testing.assert_array_equal(out, image[:, ::-1])
        else:
            assert out.shape == image.shape and not np.allclose(out, image)
    assert seen == set(PAPER_OPS)


def test_shift_and_rotation_ranges():
    rng = np.random.default_rng(6)
    image = np.zeros((41, 41))
    image[20, 20] = 1.0
    shifts, angles = [], []
    for _ in range(400):
        out, op = augment_paper(image, rng, mode="constant")
        if op == "shift":
            ((y, x),) = np.argwhere(out > 0.5)
            shifts += [y - 20, x - 20]
    assert min(shifts) == -15 and max(shifts) == 15
    arm = np.zeros((41, 41))
    arm[20, 20:36] = 1.0  # a horizontal bar from the center to the right
    for _ in range(200):
        out, op = augment_paper(arm, rng, mode="constant")
        if op == "rotate":
            ys, xs = np.nonzero(out > 0.05)
            weights = out[ys, xs]
            angle = np.degrees(np.arctan2(-(ys - 20) @ weights, (xs - 20) @ weights))
            angles.append(angle)
    assert max(np.abs(angles)) <= 25.5 and max(np.abs(angles)) > 20


def test_seeded_reproducible():
    volume = np.random.default_rng(7).normal(size=(6, 8, 8))
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(11)
        runs.append([augment_paper(volume, rng) for _ in range(12)])
    for (a, op_a), (b, op_b) in zip(*runs):
        assert op_a == op_b
        np.testing.assert_array_equal(a, b)
    assert len({op for _, op in runs[0]}) > 1


def test_volume_shift_in_all_directions():
    volume = np.random.default_rng(7).normal(size=(6, 8, 8))
    rng = np.random.default_rng(0)
    offsets = [(dz, dy, dx) for dz in range(-2, 3) for dy in range(-2, 3) for dx in range(-2, 3)]
    found = []
    for _ in range(40):
        out, op = augment_paper(volume, rng, max_shift=2, shift_axes=(0, 1, 2))
        if op == "shift":
            matches = [
                o for o in offsets if np.allclose(out, shift_image(volume, o, axes=(0, 1, 2)))
            ]
            assert matches  # one integer 3D shift shared by every slice
            found.append(matches[0])
    assert any(dz != 0 for dz, _, _ in found)


def test_rotation_planes_choose_the_rotation_axes():
    zy = np.random.default_rng(8).normal(size=(10, 10, 1))
    constant_along_x = np.repeat(zy, 6, axis=2)
    rng = np.random.default_rng(1)
    rotated = [
        out
        for out, op in (
            augment_paper(constant_along_x, rng, rotation_planes=[(0, 1)]) for _ in range(20)
        )
        if op == "rotate"
    ]
    assert rotated
    for out in rotated:  # a rotation in the (z, y) plane keeps every x column identical
        assert not np.allclose(out, constant_along_x)
        np.testing.assert_allclose(out, out[:, :, :1].repeat(6, axis=2), atol=1e-6)
    in_plane = rotate_image(constant_along_x, 20.0)  # default: (y, x) plane
    assert not np.allclose(in_plane, in_plane[:, :, :1].repeat(6, axis=2))


def test_validation():
    with pytest.raises(ValueError, match="Received: rng=0"):
        augment_paper(np.zeros((3, 3)), 0)
    with pytest.raises(ValueError, match=r"Received: axes=\(0, 5\)"):
        rotate_image(np.zeros((3, 3)), 10.0, axes=(0, 5))
    with pytest.raises(ValueError, match="Received: shift="):
        shift_image(np.zeros((3, 3)), (1, 2, 3))
