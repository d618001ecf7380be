"""Radiograph preprocessing of Nkwentsha et al. (paper 004): padding, resizing, CLAHE, NL-means.

Every function takes and returns NumPy arrays and calls OpenCV underneath, with the paper's
parameters as defaults. Images are grey ``(H, W)`` arrays (``(H, W, C)`` where a function says
so); sizes are given in NumPy order, ``(height, width)``, and turned into OpenCV's
``(width, height)`` here.

The paper's chain for one radiograph (`prepare_radiograph` runs it):

1. `pad_to_square`: zeros (``BORDER_CONSTANT``) or the image's own repetition (``BORDER_WRAP``)
   around the image, to a square of the longer side; or no padding (the paper's "resize" rows);
2. `resize_image` to 512 x 512 with nearest-neighbour interpolation;
3. `layer_channels`: three channels, either the same grey image three times or
   ``(original, NL-means, CLAHE)`` (`nl_means`, `clahe`).

Dtypes are never changed by accident. CLAHE and NL-means exist in OpenCV for 8- and 16-bit
images only, so they refuse everything else; a float image is turned into one with
`rescale_to_uint`, which says how (the intensity range and the bit depth). The paper's CLAHE clip
limit and NL-means strength are values for 8-bit images; for 16-bit images they are scaled so
that the filters do the same thing (see `clahe` and `nl_means`, both measured in the tests).

Reference: X. Nkwentsha, A. Hounkanrin, F. Nicolls, *Automatic classification of medical X-ray
images with convolutional neural networks* (ImageCLEF 2009), Section III-B; the channel order
follows Pelka et al. (2018), whose pipeline the paper follows.
"""

from __future__ import annotations

import numbers

import cv2
import numpy as np

from kerasmed.validation import check_int_tuple, check_one_of, check_positive_int

__all__ = [
    "pad_to_square",
    "resize_image",
    "to_grey",
    "rescale_to_uint",
    "clahe",
    "nl_means",
    "layer_channels",
    "prepare_radiograph",
]

# Depths that every OpenCV call used here keeps as they are (int64, uint32, bool are not).
_CV_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
_INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "nearest_exact": cv2.INTER_NEAREST_EXACT,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
_BORDERS = {"constant": cv2.BORDER_CONSTANT, "wrap": cv2.BORDER_WRAP}


def _image(image, name="image", dtypes=_CV_DTYPES, channels=True):
    """`image` as an array of an accepted dtype and rank, or a ValueError naming what is wrong."""
    image = np.asarray(image)
    ranks = (2, 3) if channels else (2,)
    if image.ndim not in ranks or 0 in image.shape:
        shape = "(H, W) or (H, W, C)" if channels else "(H, W)"
        raise ValueError(
            f"`{name}` must be a non-empty {shape} array. Received: {name}.shape={image.shape}"
        )
    if image.dtype.type not in dtypes:
        names = ", ".join(np.dtype(d).name for d in dtypes)
        raise ValueError(
            f"`{name}` must have dtype {names}. Received: {name}.dtype={image.dtype.name}"
        )
    return image


def _keep_channel_axis(result, image):
    """OpenCV returns (H, W) for (H, W, 1) input; put the channel axis back."""
    return result[..., None] if image.ndim == 3 and result.ndim == 2 else result


def _grey_uint(image, name="image"):
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype.type not in (np.uint8, np.uint16) and image.ndim in (2, 3):
        raise ValueError(
            f"`{name}` must be an 8-bit (uint8) or 16-bit (uint16) image: OpenCV's CLAHE and "
            f"NL-means take no other dtype. Convert it explicitly, e.g. with "
            f"rescale_to_uint(image, bit_depth=8, in_range=(low, high)). "
            f"Received: {name}.dtype={image.dtype.name}"
        )
    return _image(image, name, dtypes=(np.uint8, np.uint16), channels=False)


def pad_to_square(image, mode="constant"):
    """Pads an image to a square whose side is its longer side, the image centred and unchanged.

    ``mode="constant"`` fills the border with zeros (OpenCV's ``BORDER_CONSTANT``, the paper's
    constant padding); ``mode="wrap"`` with the image's own repetition (``BORDER_WRAP``, the
    paper's repetitive padding): the square is a window of the image tiled periodically, so the
    rows above the image are its last rows, and a pad larger than the image repeats it several
    times. OpenCV does this right for any pad size (the tests compare it with
    ``np.pad(mode="wrap")`` for pads up to 1000 times the image). When the difference of the two
    sides is odd, the extra row (column) goes below (to the right of) the image.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array of dtype uint8, uint16, int16, float32 or
            float64 (the depths OpenCV keeps).
        mode: ``"constant"`` (zeros) or ``"wrap"``.

    Returns:
        ``(S, S)`` or ``(S, S, C)`` array of the same dtype, ``S = max(H, W)``; the input sits at
        rows ``(S - H) // 2 ...`` and columns ``(S - W) // 2 ...``.

    Example:

    >>> pad_to_square(np.array([[1, 2, 3]], np.uint8))
    array([[0, 0, 0],
           [1, 2, 3],
           [0, 0, 0]], dtype=uint8)
    >>> pad_to_square(np.array([[1, 2, 3], [4, 5, 6]], np.uint8), mode="wrap")
    array([[1, 2, 3],
           [4, 5, 6],
           [1, 2, 3]], dtype=uint8)

    Reference: Nkwentsha et al., Section III-B1 (Figures 3 and 4).
    """
    image = _image(image)
    border = _BORDERS[check_one_of(mode, "mode", tuple(_BORDERS))]
    height, width = image.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    bottom, right = side - height - top, side - width - left
    if top == bottom == left == right == 0:
        return image.copy()
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, border, value=0)
    return _keep_channel_axis(padded, image)


def resize_image(image, size=(512, 512), interpolation="nearest"):
    """Resizes an image to ``size = (height, width)`` with OpenCV (``cv2.resize``).

    ``"nearest"`` is OpenCV's ``INTER_NEAREST`` (the paper's choice): output pixel ``(i, j)``
    takes input pixel ``(floor(i * H / height), floor(j * W / width))``, so no new intensity is
    made. ``"nearest_exact"`` samples at pixel centres instead (``floor((i + 0.5) * H / height)``,
    as PIL and scikit-image do); ``"linear"``, ``"area"``, ``"cubic"``, ``"lanczos"`` are OpenCV's
    interpolations of those names.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` array (uint8, uint16, int16, float32, float64).
        size: ``(height, width)`` of the output, or one int for a square.
        interpolation: one of ``"nearest"``, ``"nearest_exact"``, ``"linear"``, ``"area"``,
            ``"cubic"``, ``"lanczos"``.

    Returns:
        ``(height, width)`` or ``(height, width, C)`` array of the same dtype.

    Example:

    >>> resize_image(np.array([[1, 2], [3, 4]], np.uint8), (4, 4))
    array([[1, 1, 2, 2],
           [1, 1, 2, 2],
           [3, 3, 4, 4],
           [3, 3, 4, 4]], dtype=uint8)

    Reference: Nkwentsha et al., Section III-B2.
    """
    image = _image(image)
    height, width = check_int_tuple(size, "size", 2)
    flag = _INTERPOLATIONS[check_one_of(interpolation, "interpolation", tuple(_INTERPOLATIONS))]
    resized = cv2.resize(image, (width, height), interpolation=flag)
    return _keep_channel_axis(resized, image)


def to_grey(image, channel_order="bgr", return_note=False):
    """Converts a colour image to grey (``cv2.cvtColor``, ITU-R BT.601 weights).

    ImageCLEF radiographs are grey, but a few files of any collection are stored as RGB(A).
    A grey image comes back unchanged: ``(H, W)``, ``(H, W, 1)`` (squeezed) and ``(H, W, 3)`` /
    ``(H, W, 4)`` whose colour channels are all equal (then channel 0 is returned, exactly).
    Otherwise the channels are weighted ``0.299 R + 0.587 G + 0.114 B`` (alpha dropped).

    Args:
        image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` array of dtype uint8,
            uint16 or float32 (the depths ``cvtColor`` takes).
        channel_order: ``"bgr"`` (what ``cv2.imread`` returns) or ``"rgb"`` (PIL, matplotlib).
        return_note: also return a note for a load report: ``None`` when the image was already
            grey, else a sentence saying what was converted and how.

    Returns:
        The ``(H, W)`` grey image (same dtype), or ``(grey, note)`` with `return_note`.

    Example:

    >>> colour = np.zeros((1, 2, 3), np.uint8); colour[..., 2] = 100  # red in BGR order
    >>> grey, note = to_grey(colour, return_note=True)
    >>> grey, note
    (array([[30, 30]], dtype=uint8), 'converted 3-channel bgr colour to grey (0.299 R + 0.587 G + 0.114 B)')
    >>> to_grey(np.full((2, 2, 3), 7, np.uint8), return_note=True)[1] is None
    True
    """
    image = _image(image, dtypes=(np.uint8, np.uint16, np.float32))
    order = check_one_of(channel_order, "channel_order", ("bgr", "rgb"))
    note = None
    if image.ndim == 2:
        grey = image
    elif image.shape[-1] == 1:
        grey = image[..., 0]
    elif image.shape[-1] in (3, 4):
        colour = image[..., :3]
        if np.array_equal(colour, np.repeat(colour[..., :1], 3, axis=-1)):
            grey = colour[..., 0].copy()
        else:
            code = cv2.COLOR_BGR2GRAY if order == "bgr" else cv2.COLOR_RGB2GRAY
            grey = cv2.cvtColor(np.ascontiguousarray(colour), code)
            note = (
                f"converted {image.shape[-1]}-channel {order} colour to grey "
                "(0.299 R + 0.587 G + 0.114 B)"
            )
    else:
        raise ValueError(
            f"`image` must have 1, 3 or 4 channels. Received: image.shape={image.shape}"
        )
    return (grey, note) if return_note else grey


def rescale_to_uint(image, bit_depth=8, in_range=None):
    """Maps intensities linearly to unsigned integers of `bit_depth` bits (the explicit step
    that turns a float or signed image into one CLAHE and NL-means take).

    ``in_range = (low, high)`` goes to ``(0, 2**bit_depth - 1)``; values outside are clipped,
    the result rounded to the nearest integer. The dtype is uint8 up to 8 bits, uint16 above
    (12-bit data thus stays 12-bit in a uint16 array: pass ``bit_depth=12`` to `nl_means` too).

    Args:
        image: array of any real dtype.
        bit_depth: 1 ... 16.
        in_range: ``(low, high)`` with ``low < high``; ``None`` uses the image's minimum and
            maximum (a constant image gives zeros).

    Returns:
        uint8 or uint16 array of the same shape.

    Example:

    >>> rescale_to_uint(np.array([0.0, 0.5, 1.0, 2.0]), in_range=(0.0, 1.0))
    array([  0, 128, 255, 255], dtype=uint8)
    """
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise ValueError(f"`image` must be real-valued. Received: image.dtype={image.dtype.name}")
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, numbers.Integral):
        bit_depth = -1
    if not 1 <= bit_depth <= 16:
        raise ValueError(f"`bit_depth` must be an int in 1 ... 16. Received: bit_depth={bit_depth}")
    values = image.astype(np.float64)
    if in_range is None:
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    else:
        try:
            low, high = (float(v) for v in in_range)
        except (TypeError, ValueError):
            low = high = float("nan")
        if not low < high:
            raise ValueError(
                f"`in_range` must be (low, high) with low < high. Received: in_range={in_range}"
            )
    top = 2**bit_depth - 1
    scaled = (values - low) / (high - low) * top if high > low else np.zeros_like(values)
    dtype = np.uint8 if bit_depth <= 8 else np.uint16
    return np.rint(np.clip(scaled, 0, top)).astype(dtype)


def clahe(image, clip_limit=2.55, tile_grid_size=(8, 8), scale_clip_limit=True):
    """Contrast Limited Adaptive Histogram Equalization (OpenCV's ``createCLAHE(...).apply``).

    The image is cut into ``rows x columns`` tiles (`tile_grid_size`, in NumPy order); each tile's
    histogram is clipped at `clip_limit` times its mean bin count, the excess spread over all
    bins, and the pixels are mapped through the tiles' equalized cumulative histograms
    (bilinearly between tile centres). The output spans the dtype's full range.

    16-bit images: OpenCV's histogram has 65536 bins there, and the clip limit is relative to
    the mean count of *those* bins, ``clip_limit * tile_area / 65536``, rounded down and at least
    1. For a 512 x 512 image with 8 x 8 tiles that is 1 count for the paper's 2.55, and CLAHE
    does almost nothing (a 512 x 512 8-bit test image times 257: mean change 0.7 grey levels
    of 255, against 11 for the same image in 8 bits). With ``scale_clip_limit=True`` (default) the limit
    of a uint16 image is multiplied by ``65536 / 256 = 256``, i.e. it is read, like the paper's
    value, relative to a 256-bin histogram: clipping then cuts the same counts as in 8 bits, and
    ``clahe(image8.astype(uint16) * 257) / 257`` differs from ``clahe(image8)`` by 0.6 grey
    levels on average, 2.9 at most (the same 512 x 512 image; tested at 256 x 256). ``False`` passes `clip_limit` unchanged.

    Args:
        image: ``(H, W)`` or ``(H, W, 1)`` uint8 or uint16 array. Other dtypes are refused; see
            `rescale_to_uint`.
        clip_limit: contrast limit (paper: 2.55); ``0`` disables clipping (plain AHE).
        tile_grid_size: ``(rows, columns)`` of tiles, or one int (paper: (8, 8)).
        scale_clip_limit: scale the limit of 16-bit images to 256 bins (above).

    Returns:
        ``(H, W)`` array of the input dtype.

    Example:

    >>> image = np.tile(np.arange(100, 116, dtype=np.uint8), (64, 4))  # 16 grey levels
    >>> [round(float(x.std()), 1) for x in (image, clahe(image), clahe(image, clip_limit=0))]
    [4.6, 10.9, 58.5]

    Reference: Nkwentsha et al., Section III-B3 (clipLimit 2.55, tileGridSize (8, 8)).
    """
    image = _grey_uint(image)
    rows, columns = check_int_tuple(tile_grid_size, "tile_grid_size", 2)
    if isinstance(clip_limit, bool) or not isinstance(clip_limit, numbers.Real) or clip_limit < 0:
        raise ValueError(f"`clip_limit` must be a number >= 0. Received: clip_limit={clip_limit}")
    limit = float(clip_limit)
    if image.dtype == np.uint16 and scale_clip_limit:
        limit *= 65536 / 256
    return cv2.createCLAHE(clipLimit=limit, tileGridSize=(columns, rows)).apply(image)


def nl_means(image, h=2.0, template_window_size=4, search_window_size=4, norm=None, bit_depth=None):
    """Non-local means denoising (OpenCV's ``fastNlMeansDenoising``).

    Every pixel becomes a weighted mean of the pixels of its ``search`` window, weighted by how
    alike their ``template`` patches are: ``w = exp(-d**2 / h**2)`` with ``d`` the mean absolute
    difference of the two patches (``norm="l1"``), or ``w = exp(-d / h**2)`` with ``d`` their
    mean squared difference (``"l2"``); weights below 0.001 are dropped.

    Window sizes: OpenCV uses ``2 * (size // 2) + 1`` pixels, so an even size is rounded up
    (the paper's 4 and 4 run as 5 x 5 patches in a 5 x 5 search window; the output is identical
    to 5 / 5, tested). Pelka et al.'s MATLAB filter, which the paper follows, took these numbers
    as radii (9 x 9); pass 9 and 9 for that reading.

    Bit depth and `h`: `h` is on the 8-bit scale (0-255), as the paper's ``h = 2``. OpenCV
    filters 16-bit images only with the L1 norm, so a uint16 image uses ``norm="l1"`` and
    ``h * (2**bit_depth - 1) / 255`` (``257 h`` for 16 bits): ``d`` grows by the same factor as
    the intensities, so the weights are those of the image on the 8-bit scale, without its
    rounding (the 16-bit result is within 0.01-0.015 grey levels of 255 of a float NumPy
    NL-means in the tests; the 8-bit one within 1). For 8-bit images the default is OpenCV's default, ``"l2"`` (the paper's call);
    ``"l1"`` weights more neighbours for the same `h` (``mean(x)**2 <= mean(x**2)``).

    Args:
        image: ``(H, W)`` or ``(H, W, 1)`` uint8 or uint16 array; other dtypes are refused (see
            `rescale_to_uint`).
        h: filter strength on the 8-bit scale, > 0 (paper: 2).
        template_window_size: patch size in pixels (paper: 4, used as 5).
        search_window_size: search window size in pixels (paper: 4, used as 5).
        norm: ``"l2"`` or ``"l1"``; default ``"l2"`` for uint8 and ``"l1"`` (the only one OpenCV
            has) for uint16.
        bit_depth: bits used by a uint16 image (default 16; 12 for 12-bit data stored in 16
            bits); must be 8 or ``None`` for uint8.

    Returns:
        ``(H, W)`` array of the input dtype.

    Example:

    >>> image = np.random.default_rng(0).integers(100, 110, (32, 32)).astype(np.uint8)
    >>> bool(np.array_equal(nl_means(image, 2, 4, 4), nl_means(image, 2, 5, 5)))
    True
    >>> float(nl_means(image, h=10).std()) < float(image.std())
    True

    Reference: Nkwentsha et al., Section III-B4 (filter strength 2, windows 4 and 4).
    """
    image = _grey_uint(image)
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or not h > 0:
        raise ValueError(f"`h` must be a positive number. Received: h={h}")
    template = check_positive_int(template_window_size, "template_window_size")
    search = check_positive_int(search_window_size, "search_window_size")
    sixteen = image.dtype == np.uint16
    norm = check_one_of(norm, "norm", (None, "l1", "l2"))
    if sixteen and norm == "l2":
        raise ValueError(
            "OpenCV filters 16-bit images with the L1 norm only; use norm='l1' (or None). "
            f"Received: norm={norm!r}"
        )
    if bit_depth is None:
        bit_depth = 16 if sixteen else 8
    elif not sixteen and bit_depth != 8:
        raise ValueError(f"A uint8 image has bit_depth 8. Received: bit_depth={bit_depth}")
    elif (
        isinstance(bit_depth, bool)
        or not isinstance(bit_depth, numbers.Integral)
        or not (9 <= bit_depth <= 16)
    ):
        raise ValueError(
            f"`bit_depth` of a uint16 image must be an int in 9 ... 16. Received: bit_depth={bit_depth}"
        )
    strength = float(h) * (2**bit_depth - 1) / 255
    if norm is None:
        norm = "l1" if sixteen else "l2"
    return cv2.fastNlMeansDenoising(
        image,
        h=[strength],
        templateWindowSize=template,
        searchWindowSize=search,
        normType=cv2.NORM_L1 if norm == "l1" else cv2.NORM_L2,
    )


def layer_channels(
    image,
    mode="enhanced",
    clip_limit=2.55,
    tile_grid_size=(8, 8),
    h=2.0,
    template_window_size=4,
    search_window_size=4,
    bit_depth=None,
):
    """Turns a grey radiograph into the three channels an ImageNet CNN takes.

    ``mode="grey"``: the image three times. ``mode="enhanced"``: channel 0 the original,
    channel 1 its `nl_means`, channel 2 its `clahe`. That is the order of Pelka et al.'s code,
    ``cat(3, im, nlMeans, clahe)``, which the paper says it follows (its text lists the layers
    in another order; the authors' code is the reference here).

    Args:
        image: ``(H, W)`` or ``(H, W, 1)`` grey image; uint8 or uint16 for ``"enhanced"``, any
            dtype for ``"grey"``.
        mode: ``"enhanced"`` or ``"grey"``.
        clip_limit, tile_grid_size: as in `clahe`.
        h, template_window_size, search_window_size, bit_depth: as in `nl_means`.

    Returns:
        ``(H, W, 3)`` array of the input dtype.

    Example:

    >>> image = np.random.default_rng(0).integers(0, 256, (16, 16)).astype(np.uint8)
    >>> layered = layer_channels(image)
    >>> layered.shape, bool(np.array_equal(layered[..., 0], image))
    ((16, 16, 3), True)
    >>> bool(np.array_equal(layered[..., 2], clahe(image)))
    True

    Reference: Nkwentsha et al., Section III-B5; Pelka et al. (2018), channel order.
    """
    mode = check_one_of(mode, "mode", ("enhanced", "grey"))
    if mode == "grey":
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.ndim != 2 or 0 in image.shape:
            raise ValueError(
                f"`image` must be a non-empty (H, W) grey image. Received: image.shape={image.shape}"
            )
        return np.repeat(image[..., None], 3, axis=-1)
    image = _grey_uint(image)
    denoised = nl_means(image, h, template_window_size, search_window_size, bit_depth=bit_depth)
    equalized = clahe(image, clip_limit, tile_grid_size)
    return np.stack([image, denoised, equalized], axis=-1)


def prepare_radiograph(
    image,
    padding="constant",
    size=(512, 512),
    enhanced=False,
    interpolation="nearest",
    **enhancement,
):
    """The paper's chain for one grey radiograph: pad, resize, then three channels.

    The six configurations of the paper's Tables I and II are ``padding`` in ``(None,
    "wrap", "constant")`` ("resize", "repetitive", "constant") times ``enhanced`` in ``(False,
    True)``.

    Args:
        image: ``(H, W)`` grey image (uint8 or uint16 when `enhanced`).
        padding: ``"constant"``, ``"wrap"`` (`pad_to_square`) or ``None`` (plain resize, the
            aspect ratio is not kept).
        size: ``(height, width)`` after resizing (paper: 512 x 512).
        enhanced: ``True`` for ``(original, NL-means, CLAHE)``, ``False`` for grey x 3.
        interpolation: as in `resize_image` (paper: nearest).
        **enhancement: `clip_limit`, `tile_grid_size`, `h`, `template_window_size`,
            `search_window_size`, `bit_depth` of `layer_channels`.

    Returns:
        ``(height, width, 3)`` array of the input dtype.

    Example:

    >>> image = np.full((40, 20), 200, np.uint8)
    >>> out = prepare_radiograph(image, padding="constant", size=(8, 8))
    >>> out.shape, out[4, :, 0].tolist()
    ((8, 8, 3), [0, 0, 200, 200, 200, 200, 0, 0])

    Reference: Nkwentsha et al., Sections III-B and V.
    """
    padding = check_one_of(padding, "padding", (None, "constant", "wrap"))
    if padding is not None:
        image = pad_to_square(image, padding)
    image = resize_image(image, size, interpolation)
    return layer_channels(image, "enhanced" if enhanced else "grey", **enhancement)
