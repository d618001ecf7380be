"""Reading one radiograph file into a 2-D array, at the bit depth it was stored with.

`read_radiograph` reads the files of paper 004's data (ImageCLEF 2009 ships 8-bit PNGs) and the
radiographs a user may have in other formats:

- PNG, JPEG, TIFF, BMP... through OpenCV (``cv2.imread(path, cv2.IMREAD_UNCHANGED)``): 8-bit
  files come back as uint8, 16-bit PNG/TIFF as uint16 (never scaled to 8 bits, as OpenCV's
  default flag would), float TIFFs as float32;
- DICOM through pydicom: the stored pixels, ``MONOCHROME1`` inverted so that bone is bright as
  in ``MONOCHROME2``, and the modality LUT (RescaleSlope/RescaleIntercept) applied when it is not
  the identity. The window (VOI LUT) is a display setting and is not applied. A file is read
  as DICOM when its name ends in ``.dcm``/``.dicom`` or it has the ``DICM`` marker at byte 128.

Colour files (a few in any collection of radiographs) are converted to grey with
`kerasmed.preprocessing.to_grey` and a note saying so (``colour="error"`` refuses them).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from kerasmed.io._dicom_tags import rescale
from kerasmed.validation import check_one_of

__all__ = ["read_radiograph"]

_DICOM_SUFFIXES = (".dcm", ".dicom")


def _is_dicom(path):
    if path.lower().endswith(_DICOM_SUFFIXES):
        return True
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def _unreadable(path, why):
    return ValueError(f"cannot read the radiograph {path}: {why}. Received: path={path!r}")


def _check_finite(image, path):
    """Refuses an image with NaN or infinite pixels (float TIFF, DICOM float pixel data)."""
    if image.dtype.kind == "f":
        bad = int(image.size - np.isfinite(image).sum())
        if bad:
            raise _unreadable(path, f"{bad} pixel(s) are NaN or infinite")


def _smallest_integer_dtype(low, high):
    for dtype in (np.uint8, np.uint16, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype
    return None


def _read_dicom(path, notes):
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except InvalidDicomError as error:
        raise _unreadable(path, f"not a DICOM file ({error})") from error
    except Exception as error:  # truncated file, no pixel data, missing decoder plugin
        raise _unreadable(path, f"{type(error).__name__}: {error}") from error
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise _unreadable(
            path, f"a multi-frame DICOM image (shape {pixels.shape}), not one radiograph"
        )
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        return pixels, "rgb", notes  # pydicom returns RGB (YBR converted)
    bits = int(ds.get("BitsStored", pixels.dtype.itemsize * 8))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    try:
        slope, intercept = rescale(ds)  # the standard's 1 and 0 when absent; 0 is refused
    except ValueError as error:
        raise _unreadable(path, error) from error
    identity = slope == 1 and intercept == 0 and "ModalityLUTSequence" not in ds
    if identity:
        image = pixels
    else:
        image = apply_modality_lut(pixels, ds).astype(np.float64)
        if "ModalityLUTSequence" in ds:
            low, high = float(image.min()), float(image.max())
        else:
            low, high = sorted((slope * low + intercept, slope * high + intercept))
        notes.append(
            f"modality LUT applied (RescaleSlope {slope:g}, RescaleIntercept {intercept:g})"
        )
    if photometric == "MONOCHROME1":
        # the range of possible values mapped onto itself, reversed: bright = dense
        image = (low + high) - image.astype(np.float64 if not identity else np.int64)
        notes.append(f"MONOCHROME1 inverted ({low:g} + {high:g} - value)")
    if not identity or photometric == "MONOCHROME1":
        integral = np.all(np.mod(image, 1) == 0) and float(low).is_integer()
        dtype = _smallest_integer_dtype(low, high) if integral else None
        if dtype is None and identity:
            dtype = pixels.dtype.type
        image = image.astype(dtype if dtype is not None else np.float32)
    return image, "grey", notes


def read_radiograph(path, colour="grey", return_notes=False):
    """Reads one radiograph file as a 2-D array, keeping its bit depth.

    Args:
        path: the image file: PNG, JPEG, TIFF... (OpenCV) or DICOM (pydicom).
        colour: what to do with a colour image: ``"grey"`` (default) converts it with
            `kerasmed.preprocessing.to_grey` (0.299 R + 0.587 G + 0.114 B, alpha dropped; an
            image whose colour channels are equal is taken as grey, exactly) and says so in
            the notes; ``"error"`` raises a ValueError.
        return_notes: also return a list of sentences saying what was done to the stored
            pixels (colour converted, MONOCHROME1 inverted, modality LUT applied); empty
            when the pixels are returned as stored.

    Returns:
        The ``(H, W)`` image: uint8 for 8-bit files, uint16 for 16-bit PNG/TIFF; for DICOM the
        stored dtype (uint16 holding e.g. 12-bit values up to 4095: pass ``bit_depth=12`` to
        `kerasmed.preprocessing.nl_means`), or, when a modality LUT is applied, the smallest
        of uint8, uint16, int16, int32 that holds every possible value when they are integers,
        else float32. With `return_notes`, ``(image, notes)``.

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: the file cannot be decoded (the message names it and says why), is not
            a single 2-D image, has NaN or infinite pixels, a RescaleSlope of 0 or a
            non-finite rescale value, or is colour with ``colour="error"``.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> _ = cv2.imwrite(path, np.array([[0, 1000], [40000, 65535]], np.uint16))
    >>> image = read_radiograph(path)
    >>> image.dtype, image.tolist()
    (dtype('uint16'), [[0, 1000], [40000, 65535]])
    """
    colour = check_one_of(colour, "colour", ("grey", "error"))
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such radiograph file: {path}")
    notes = []
    if _is_dicom(path):
        image, order, notes = _read_dicom(path, notes)
    else:
        image, order = cv2.imread(path, cv2.IMREAD_UNCHANGED), "bgr"
        if image is None:
            raise _unreadable(path, "OpenCV cannot decode it (not an image, or truncated)")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        if image.shape[-1] not in (3, 4):
            raise _unreadable(path, f"an image of shape {image.shape}, not (H, W) or (H, W, 3|4)")
        from kerasmed.preprocessing.xray import to_grey

        grey_already = np.array_equal(image[..., :3], np.repeat(image[..., :1], 3, axis=-1))
        if colour == "error" and not grey_already:
            raise ValueError(
                f"{path} is a colour image ({image.shape[-1]} channels) and colour='error'; pass "
                f"colour='grey' to convert it. Received: colour={colour!r}"
            )
        channels = image.shape[-1]
        image, note = to_grey(image, channel_order=order, return_note=True)
        if note is None:
            note = f"{channels}-channel file with equal colour channels read as grey"
        notes.append(note)
    if image.ndim != 2 or 0 in image.shape:
        raise _unreadable(path, f"an image of shape {image.shape}, not a 2-D radiograph")
    _check_finite(image, path)
    return (image, notes) if return_notes else image
