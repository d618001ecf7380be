"""Checks of the DICOM tags the readers rely on, and decoding a slice (shared by the readers).

Each check returns a reason (a sentence naming the tag and its value) or raises ``ValueError``
with one, so that the caller can name the file and follow the strict rule of
`kerasmed.io.report`. The defaults applied are those of the standard:

- RescaleSlope / RescaleIntercept (PS3.3 C.11.1, Modality LUT Module; Type 1 in the CT Image
  Module C.8.2.1): when both are absent (and there is no Modality LUT Sequence) the stored
  values are the output (slope 1, intercept 0). A slope of 0 or a non-finite value is refused.
- ImageOrientationPatient: six finite numbers, two unit vectors at right angles.
- ImagePositionPatient: three finite numbers.
- PixelSpacing: two positive finite numbers (row spacing, column spacing).
"""

from __future__ import annotations

import numpy as np
import pydicom
import pydicom.pixels

# Which pip packages decode which compressed transfer syntaxes (pydicom's pixel data handlers).
_PLUGIN_HINTS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg pylibjpeg-libjpeg",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg pylibjpeg-libjpeg",  # JPEG Extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg pylibjpeg-libjpeg",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70": "pylibjpeg pylibjpeg-libjpeg",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg pylibjpeg-openjpeg",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg pylibjpeg-openjpeg",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": "pylibjpeg pylibjpeg-openjpeg",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": "pylibjpeg pylibjpeg-openjpeg",  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg pylibjpeg-rle",  # RLE Lossless
}


# A direction cosine stored with a few decimals is still a unit vector to this tolerance.
_UNIT_ATOL = 1e-2


def numbers(ds, keyword, count):
    """The tag's values as ``(count,)`` floats and None; ``(None, reason)`` when malformed,
    ``(None, None)`` when absent."""
    value = ds.get(keyword)
    if value is None or value == "":
        return None, None
    try:
        values = np.asarray(list(value), dtype=float)
    except (TypeError, ValueError):
        values = None
    if values is None or values.shape != (count,):
        return None, f"{keyword} must hold {count} numbers, found {value!r}"
    if not np.isfinite(values).all():
        return None, f"{keyword} holds a non-finite value: {values.tolist()}"
    return values, None


def geometry_problem(ds):
    """Why one file's ImageOrientationPatient, ImagePositionPatient or PixelSpacing is unusable
    (present but malformed, non-finite or degenerate); None when each is absent or usable."""
    iop, reason = numbers(ds, "ImageOrientationPatient", 6)
    if reason:
        return reason
    if iop is not None:
        row, col = iop[:3], iop[3:]
        norms = np.linalg.norm(row), np.linalg.norm(col)
        if not all(abs(n - 1.0) <= _UNIT_ATOL for n in norms):
            return (
                "ImageOrientationPatient must hold two unit vectors, found lengths "
                f"{norms[0]:.4g} and {norms[1]:.4g} in {iop.tolist()}"
            )
        if abs(float(row @ col)) > _UNIT_ATOL:
            return f"ImageOrientationPatient's two vectors are not at right angles: {iop.tolist()}"
    _, reason = numbers(ds, "ImagePositionPatient", 3)
    if reason:
        return reason
    spacing, reason = numbers(ds, "PixelSpacing", 2)
    if reason:
        return reason
    if spacing is not None and not (spacing > 0).all():
        return f"PixelSpacing must be positive, found {spacing.tolist()}"
    return None


def has_rescale(ds):
    """Whether the file carries a modality LUT (RescaleSlope/Intercept or a LUT sequence)."""
    return "ModalityLUTSequence" in ds or any(
        ds.get(k) not in (None, "") for k in ("RescaleSlope", "RescaleIntercept")
    )


def rescale(ds):
    """``(slope, intercept)`` with the standard's defaults (1, 0) for absent tags.

    Raises:
        ValueError: a slope of 0 (every pixel would map to the intercept) or a non-finite
            slope or intercept; the message names the tag and its value.
    """
    values = []
    for keyword, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        raw = ds.get(keyword)
        try:
            value = default if raw in (None, "") else float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{keyword} must be a number, found {raw!r}") from None
        if not np.isfinite(value):
            raise ValueError(f"{keyword} must be finite, found {raw!r}")
        values.append(value)
    if values[0] == 0:
        raise ValueError("RescaleSlope is 0: every pixel would map to the intercept")
    return tuple(values)


def modality_lut(pixels, ds):
    """The stored `pixels` through the file's modality LUT (checked with `rescale`), float.

    Raises:
        ValueError: see `rescale`; or the LUT gives non-finite values.
    """
    rescale(ds)
    values = pydicom.pixels.apply_modality_lut(pixels, ds)
    finite = np.isfinite(values)
    if not finite.all():
        raise ValueError(f"{int(values.size - finite.sum())} pixel value(s) are NaN or infinite")
    return values


def _decode(path, ds):
    """Pixel array of one file with the modality LUT applied, as float32."""
    tsyntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    try:
        pixels = ds.pixel_array
    except Exception as error:
        if tsyntax is not None and tsyntax.is_compressed:
            install = _PLUGIN_HINTS.get(str(tsyntax), "pylibjpeg pylibjpeg-libjpeg")
            try:
                missing = pydicom.pixels.get_decoder(tsyntax).missing_dependencies
            except Exception:  # no decoder at all for this syntax
                missing = []
            detail = f" pydicom's plugins that are not installed: {missing}." if missing else ""
            raise RuntimeError(
                f"Cannot decode the pixel data of {path}: its transfer syntax is compressed "
                f"({tsyntax.name}, {tsyntax}) and no installed pydicom plugin decoded it. "
                f"Install a decoder, e.g. `pip install {install}` or `pip install python-gdcm`."
                f"{detail} pydicom said: {error}"
            ) from error
        raise ValueError(
            f"cannot decode the pixel data ({type(error).__name__}: {error})"
        ) from error
    if pixels.ndim != 2:
        raise ValueError(
            f"Only single-frame grayscale images can be stacked into a volume; {path} holds pixel "
            f"data of another shape (multi-frame or color). Received: shape={pixels.shape}"
        )
    return modality_lut(pixels, ds).astype(np.float32)


def decode_all(items, report):
    """Decodes every slice; a file whose pixel data is unusable is a problem in `report`."""
    arrays = {}
    for path, ds in items:
        try:
            arrays[path] = _decode(path, ds)
        except ValueError as error:
            report.add(str(error), path=path)
    return arrays
