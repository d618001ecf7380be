"""kerasmed.preprocessing.xray: padding, resizing, CLAHE, NL-means and layering of paper 004."""

import cv2
import numpy as np
import pytest

from kerasmed.preprocessing import xray


def _radiograph(shape=(128, 96), seed=0, low=60, high=110):
    """A smooth, low-contrast 8-bit test image with a bright blob and a gradient, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    blob = np.exp(-((yy - 0.5 * shape[0]) ** 2 + (xx - 0.4 * shape[1]) ** 2) / (0.05 * yy.size))
    image = low + (high - low) * (0.6 * blob + 0.4 * xx / shape[1]) + rng.normal(0, 2.5, shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _nl_means_reference(image, h, size, norm):
    """NL-means as its equation: float arithmetic, odd `size` x `size` patches and search window,
    mirrored borders (OpenCV's BORDER_REFLECT_101), weights below 0.001 dropped."""
    image = image.astype(np.float64)
    rows, cols = image.shape
    r = size // 2
    padded = np.pad(image, 2 * r, mode="reflect")
    total, weights = np.zeros_like(image), np.zeros_like(image)
    centre = padded[r : r + rows + 2 * r, r : r + cols + 2 * r]
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            shifted = padded[r + dy : r + dy + rows + 2 * r, r + dx : r + dx + cols + 2 * r]
            diff = np.abs(centre - shifted) if norm == "l1" else (centre - shifted) ** 2
            # mean over the patch around every pixel
            window = np.lib.stride_tricks.sliding_window_view(diff, (size, size)).mean(
                axis=(-2, -1)
            )
            distance = window**2 if norm == "l1" else window
            w = np.exp(-distance / h**2)
            w[w < 0.001] = 0.0
            total += w * padded[2 * r + dy : 2 * r + dy + rows, 2 * r + dx : 2 * r + dx + cols]
            weights += w
    return total / weights


# ---------------------------------------------------------------- padding


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 2), (2, 1), (3, 8), (8, 3), (4, 9), (9, 4), (5, 5), (1, 1000), (700, 2)]
)
@pytest.mark.parametrize("mode", ["constant", "wrap"])
def test_pad_to_square_centres_the_image_and_fills_like_np_pad(shape, mode):
    image = np.random.default_rng(1).integers(1, 256, shape).astype(np.uint8)
    out = xray.pad_to_square(image, mode)
    side = max(shape)
    top, left = (side - shape[0]) // 2, (side - shape[1]) // 2
    assert out.shape == (side, side) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[top : top + shape[0], left : left + shape[1]], image)
    widths = ((top, side - shape[0] - top), (left, side - shape[1] - left))
    np.testing.assert_array_equal(out, np.pad(image, widths, mode=mode))
    border = np.ones(out.shape, bool)
    border[top : top + shape[0], left : left + shape[1]] = False
    if mode == "constant":
        assert (out[border] == 0).all()
    elif border.any():
        # wrap: the rows above the image are its last rows (cyclic continuation)
        rows, cols = (np.arange(side) - top) % shape[0], (np.arange(side) - left) % shape[1]
        np.testing.assert_array_equal(out, image[np.ix_(rows, cols)])


def test_wrap_pad_many_times_larger_than_the_image_with_channels():
    image = np.random.default_rng(2).integers(0, 65536, (2, 3001, 3)).astype(np.uint16)
    out = xray.pad_to_square(image, "wrap")
    assert out.shape == (3001, 3001, 3) and out.dtype == np.uint16
    np.testing.assert_array_equal(out, np.pad(image, ((1499, 1500), (0, 0), (0, 0)), mode="wrap"))
    # every row of the square is one of the two image rows, alternating
    assert all(np.array_equal(out[i], image[(i - 1499) % 2]) for i in (0, 1, 1498, 1499, 3000))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_pad_keeps_dtype_and_single_channel_axis(dtype):
    image = np.arange(6, dtype=dtype).reshape(2, 3, 1) + 1
    out = xray.pad_to_square(image)
    assert out.shape == (3, 3, 1) and out.dtype == dtype
    np.testing.assert_array_equal(out[:2, :, 0], image[..., 0])
    assert (out[2] == 0).all()  # the odd extra row goes below


def test_pad_of_a_square_is_a_copy():
    image = np.ones((4, 4), np.uint8)
    out = xray.pad_to_square(image, "wrap")
    np.testing.assert_array_equal(out, image)
    out[0, 0] = 9
    assert image[0, 0] == 1


@pytest.mark.parametrize("dtype", [np.int64, np.uint32, np.int8, bool])
def test_unsupported_dtypes_are_refused_not_cast(dtype):
    with pytest.raises(ValueError, match=rf"Received: image.dtype={np.dtype(dtype).name}"):
        xray.pad_to_square(np.ones((2, 3), dtype))
    with pytest.raises(ValueError, match="Received: image.dtype"):
        xray.resize_image(np.ones((2, 3), dtype), 4)


def test_bad_shapes_and_modes():
    with pytest.raises(ValueError, match=r"Received: image.shape=\(3,\)"):
        xray.pad_to_square(np.ones(3, np.uint8))
    with pytest.raises(ValueError, match=r"Received: image.shape=\(0, 3\)"):
        xray.pad_to_square(np.ones((0, 3), np.uint8))
    with pytest.raises(ValueError, match="Received: mode='reflect'"):
        xray.pad_to_square(np.ones((2, 3), np.uint8), "reflect")


# ---------------------------------------------------------------- resizing


@pytest.mark.parametrize("src", [(1, 1), (3, 7), (100, 37), (513, 600), (1, 1000)])
@pytest.mark.parametrize("dst", [(512, 512), (5, 3), (1, 1)])
def test_nearest_resize_picks_floor_indices(src, dst):
    image = np.random.default_rng(3).integers(0, 65536, src).astype(np.uint16)
    rows = np.minimum(np.arange(dst[0]) * src[0] // dst[0], src[0] - 1)
    cols = np.minimum(np.arange(dst[1]) * src[1] // dst[1], src[1] - 1)
    np.testing.assert_array_equal(xray.resize_image(image, dst), image[rows][:, cols])
    centre_rows = np.minimum(((np.arange(dst[0]) + 0.5) * src[0] / dst[0]).astype(int), src[0] - 1)
    centre_cols = np.minimum(((np.arange(dst[1]) + 0.5) * src[1] / dst[1]).astype(int), src[1] - 1)
    np.testing.assert_array_equal(
        xray.resize_image(image, dst, "nearest_exact"), image[centre_rows][:, centre_cols]
    )


def test_resize_size_order_channels_and_linear():
    image = np.zeros((4, 8, 1), np.float32)
    image[:, 4:] = 1.0
    out = xray.resize_image(image, (2, 4), "linear")
    assert out.shape == (2, 4, 1) and out.dtype == np.float32  # (height, width), channel kept
    np.testing.assert_allclose(out[0, :, 0], [0, 0, 1, 1])
    assert xray.resize_image(np.ones((3, 3, 3), np.uint8), 5).shape == (5, 5, 3)
    with pytest.raises(ValueError, match="Received: interpolation='bilinear'"):
        xray.resize_image(image, 4, "bilinear")
    with pytest.raises(ValueError, match=r"Received: size=\(0, 4\)"):
        xray.resize_image(image, (0, 4))


# ---------------------------------------------------------------- colour and bit depth


def test_to_grey_weights_orders_and_notes():
    rng = np.random.default_rng(4)
    colour = rng.integers(0, 256, (6, 5, 3)).astype(np.uint8)
    b, g, r = (colour[..., i].astype(float) for i in range(3))
    expected = 0.299 * r + 0.587 * g + 0.114 * b
    grey, note = xray.to_grey(colour, return_note=True)
    assert np.abs(grey - expected).max() <= 0.5 + 1e-9 and "bgr" in note
    np.testing.assert_array_equal(xray.to_grey(colour[..., ::-1], channel_order="rgb"), grey)
    with_alpha = np.concatenate([colour, np.full((6, 5, 1), 255, np.uint8)], axis=-1)
    np.testing.assert_array_equal(xray.to_grey(with_alpha), grey)
    # grey stored as 3 equal channels comes back exactly, with no note (16-bit too)
    plane = rng.integers(0, 65536, (6, 5)).astype(np.uint16)
    out, note = xray.to_grey(np.stack([plane] * 3, axis=-1), return_note=True)
    np.testing.assert_array_equal(out, plane)
    assert note is None and xray.to_grey(plane[..., None]).shape == (6, 5)
    with pytest.raises(ValueError, match=r"Received: image.shape=\(6, 5, 2\)"):
        xray.to_grey(np.ones((6, 5, 2), np.uint8))


def test_rescale_to_uint():
    values = np.array([-1.0, 0.0, 0.25, 1.0, 3.0])
    np.testing.assert_array_equal(xray.rescale_to_uint(values, 8, (0.0, 1.0)), [0, 0, 64, 255, 255])
    np.testing.assert_array_equal(
        xray.rescale_to_uint(values, 12, (0, 1)), [0, 0, 1024, 4095, 4095]
    )
    out = xray.rescale_to_uint(values, 16)  # the image's own range, -1 ... 3
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, np.rint((values + 1) / 4 * 65535))
    np.testing.assert_array_equal(xray.rescale_to_uint(np.full(3, 7.0)), [0, 0, 0])
    with pytest.raises(ValueError, match=r"Received: in_range=\(1, 1\)"):
        xray.rescale_to_uint(values, 8, (1, 1))
    with pytest.raises(ValueError, match="Received: bit_depth=17"):
        xray.rescale_to_uint(values, 17)


# ---------------------------------------------------------------- CLAHE


def test_clahe_is_opencvs_with_numpy_ordered_tiles():
    image = _radiograph((96, 160))
    np.testing.assert_array_equal(
        xray.clahe(image), cv2.createCLAHE(clipLimit=2.55, tileGridSize=(8, 8)).apply(image)
    )
    # (rows, columns) = (2, 4) is OpenCV's Size(width=4, height=2)
    np.testing.assert_array_equal(
        xray.clahe(image, 3.0, (2, 4)),
        cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 2)).apply(image),
    )
    assert not np.array_equal(xray.clahe(image, 3.0, (2, 4)), xray.clahe(image, 3.0, (4, 2)))


def test_clahe_raises_local_contrast():
    image = _radiograph((256, 256))
    out = xray.clahe(image)

    def local_std(x):  # mean standard deviation over 32 x 32 blocks
        blocks = x.astype(float).reshape(8, 32, 8, 32).transpose(0, 2, 1, 3).reshape(64, -1)
        return blocks.std(axis=1).mean()

    # measured: std 8.4 -> 12.2; mean 32 x 32 block std 3.1 -> 8.7 (5.6 at clip 1, 60 at 0)
    assert image.std() < 10 and out.std() > 1.3 * image.std()
    assert local_std(out) > 2.5 * local_std(image)
    # a higher clip limit equalizes more; 0 means no clipping (plain adaptive equalization)
    assert local_std(xray.clahe(image, 1.0)) < local_std(out) < local_std(xray.clahe(image, 0))


def test_clahe_16_bit_clip_limit_is_scaled_to_256_bins():
    image8 = _radiograph((256, 256))
    image16 = image8.astype(np.uint16) * 257
    reference = xray.clahe(image8).astype(float)
    scaled = xray.clahe(image16) / 257.0
    native = xray.clahe(image16, scale_clip_limit=False) / 257.0
    np.testing.assert_array_equal(
        xray.clahe(image16, scale_clip_limit=False),
        cv2.createCLAHE(clipLimit=2.55, tileGridSize=(8, 8)).apply(image16),
    )
    # OpenCV's own 16-bit limit (1 count per bin here) leaves the image almost as it was ...
    assert np.abs(native - image8).mean() < 2.0 and np.abs(reference - image8).mean() > 8.0
    # ... the scaled limit does what the 8-bit CLAHE does
    assert np.abs(scaled - reference).mean() < 3.0
    assert np.abs(scaled - reference).mean() < 0.3 * np.abs(native - reference).mean()
    assert xray.clahe(image16).dtype == np.uint16


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (3, 2), (2, 1000), (7, 9, 1)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_clahe_and_nl_means_on_tiny_and_thin_images(shape, dtype):
    image = np.random.default_rng(5).integers(0, 200, shape).astype(dtype)
    for out in (xray.clahe(image), xray.nl_means(image)):
        assert out.shape == shape[:2] and out.dtype == dtype
    constant = np.full(shape[:2], 50, dtype)
    np.testing.assert_array_equal(xray.nl_means(constant), constant)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int8, np.int64])
def test_clahe_and_nl_means_refuse_other_dtypes(dtype):
    image = np.ones((16, 16), dtype)
    for function in (xray.clahe, xray.nl_means):
        with pytest.raises(ValueError, match=rf"rescale_to_uint.*Received: image.dtype={np.dtype(dtype).name}"):  # fmt: skip
            function(image)
    with pytest.raises(ValueError, match=r"Received: image.shape=\(16, 16, 3\)"):
        xray.clahe(np.ones((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="Received: clip_limit=-1"):
        xray.clahe(np.ones((16, 16), np.uint8), clip_limit=-1)


# ---------------------------------------------------------------- NL-means


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_even_window_sizes_are_rounded_up(dtype):
    image = _radiograph((64, 72)).astype(dtype) * (257 if dtype == np.uint16 else 1)
    np.testing.assert_array_equal(xray.nl_means(image, 2, 4, 4), xray.nl_means(image, 2, 5, 5))
    np.testing.assert_array_equal(xray.nl_means(image, 10, 2, 6), xray.nl_means(image, 10, 3, 7))
    assert not np.array_equal(xray.nl_means(image, 10, 3, 7), xray.nl_means(image, 10, 5, 7))


def test_8_bit_nl_means_matches_the_equation():
    image = _radiograph((48, 56), seed=6)
    for h in (2.0, 10.0):
        ours = xray.nl_means(image, h, 5, 5).astype(float)
        reference = _nl_means_reference(image, h, 5, "l2")
        assert np.abs(ours - reference).max() <= 1.0  # OpenCV rounds distances and output
        assert np.abs(ours - reference).mean() < 0.35
    # h = 2 barely changes an 8-bit image: under one grey level on average
    assert 0 < np.abs(xray.nl_means(image).astype(float) - image).mean() < 1.0


@pytest.mark.parametrize("bit_depth, tolerance", [(16, 0.03), (12, 0.25)])
def test_16_bit_nl_means_scales_h_to_the_bit_depth(bit_depth, tolerance):
    image8 = _radiograph((48, 56), seed=7)
    factor = (2**bit_depth - 1) / 255
    image16 = np.rint(image8 * factor).astype(np.uint16)
    for h in (2.0, 10.0):
        # the 8-bit image's NL-means (L1 norm, h on the 8-bit scale), without rounding
        reference = _nl_means_reference(image16 / factor, h, 5, "l1")
        ours = xray.nl_means(image16, h, 4, 4, bit_depth=bit_depth) / factor
        # in grey levels of 255; measured max 0.010 (16 bits), 0.16 (12 bits: coarser steps)
        assert np.abs(ours - reference).max() < tolerance
        # unscaled h (h grey levels of 65535) would hardly filter at all
        unscaled = cv2.fastNlMeansDenoising(image16, h=[h], templateWindowSize=5,
                                            searchWindowSize=5, normType=cv2.NORM_L1)  # fmt: skip
        assert np.abs(unscaled / factor - reference).mean() > 10 * np.abs(ours - reference).mean()


def test_nl_means_argument_checks():
    image8, image16 = np.ones((8, 8), np.uint8), np.ones((8, 8), np.uint16)
    with pytest.raises(ValueError, match="Received: norm='l2'"):
        xray.nl_means(image16, norm="l2")
    with pytest.raises(ValueError, match="Received: bit_depth=16"):
        xray.nl_means(image8, bit_depth=16)
    with pytest.raises(ValueError, match="Received: bit_depth=8"):
        xray.nl_means(image16, bit_depth=8)
    with pytest.raises(ValueError, match="Received: h=0"):
        xray.nl_means(image8, h=0)
    with pytest.raises(ValueError, match="Received: template_window_size=0"):
        xray.nl_means(image8, template_window_size=0)
    l1 = xray.nl_means(_radiograph((32, 32)), 5, norm="l1")
    assert not np.array_equal(l1, xray.nl_means(_radiograph((32, 32)), 5))


# ---------------------------------------------------------------- layering and the chain


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_layer_channels_orders_original_nl_means_clahe(dtype):
    image = _radiograph((40, 48)).astype(dtype) * (257 if dtype == np.uint16 else 1)
    layered = xray.layer_channels(image[..., None], clip_limit=3.0, h=5.0)
    assert layered.shape == (40, 48, 3) and layered.dtype == dtype
    np.testing.assert_array_equal(layered[..., 0], image)
    np.testing.assert_array_equal(layered[..., 1], xray.nl_means(image, 5.0))
    np.testing.assert_array_equal(layered[..., 2], xray.clahe(image, 3.0))
    grey = xray.layer_channels(image, "grey")
    np.testing.assert_array_equal(grey, np.dstack([image, image, image]))


def test_grey_layering_takes_any_dtype_but_enhanced_does_not():
    image = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(xray.layer_channels(image, "grey")[..., 2], image)
    with pytest.raises(ValueError, match="Received: image.dtype=float32"):
        xray.layer_channels(image, "enhanced")
    with pytest.raises(ValueError, match="Received: mode='rgb'"):
        xray.layer_channels(image, "rgb")


def test_prepare_radiograph_grid():
    image = np.full((30, 10), 200, np.uint8)
    image[0] = 100  # the first row marks the top
    constant = xray.prepare_radiograph(image, "constant", (30, 30))
    wrap = xray.prepare_radiograph(image, "wrap", (30, 30))
    resized = xray.prepare_radiograph(image, None, (30, 30))
    assert (constant[:, :10] == 0).all() and (constant[:, 20:] == 0).all()
    np.testing.assert_array_equal(constant[:, 10:20, 1], image)
    np.testing.assert_array_equal(wrap[..., 0], np.tile(image, (1, 3)))  # repeats sideways
    np.testing.assert_array_equal(resized[..., 0], np.repeat(image, 3, axis=1))  # stretched
    enhanced = xray.prepare_radiograph(_radiograph((300, 120)), "constant", (64, 64), enhanced=True)
    assert enhanced.shape == (64, 64, 3)
    assert not np.array_equal(enhanced[..., 0], enhanced[..., 2])


def test_huge_aspect_ratio_through_the_chain():
    image = np.random.default_rng(8).integers(1, 255, (3, 2400)).astype(np.uint8)
    for padding in ("constant", "wrap"):
        out = xray.prepare_radiograph(image, padding, (512, 512), enhanced=True)
        assert out.shape == (512, 512, 3)
        # the image fills 3 / 2400 of the height: at most one output row in 160 holds it
        rows_with_image = np.flatnonzero((out[..., 0] != 0).any(axis=1))
        if padding == "constant":
            assert 0 < len(rows_with_image) <= 2
        else:
            assert len(rows_with_image) == 512
