"""Head-CT DICOM series for the ICH volume sets (paper 001): headers, series choice, 12-bit fix.

The steps of ``data_prep/head_ct_ich.py`` that are not tied to one data set's folder layout:

- `read_header`: one file's header without its pixels (what a study's or a folder's files are
  grouped by), or the reason it is not a usable DICOM image (a file cut short before its
  image attributes is a problem, not a file without an image);
- `group_study_series`: a study folder's DICOM images grouped by SeriesInstanceUID, each group
  described by the fields `select_series` ranks;
- `select_series`: CQ500's rule for the one series of a study (candidates, then ranking);
- `read_series_files`: `kerasmed.io.read_dicom_series` on a list of files (not a folder);
- `needs_12bit_fix` / `fix_12bit_slice`: the RSNA 2019 correction of slices stored with the
  wrong pixel representation (J. Howard, "Cleaning the data for rapid prototyping");
- `resize_volume`: the paper's maximum filter (or OpenCV interpolation) to the slice size;
- `safe_id`: a volume id (a file name) from a study name or a UID.

Example:

>>> series = [
...     {"uid": "1.1", "description": "CT 5mm", "folder": "CT 5mm", "modality": "CT",
...      "thickness": 5.0, "orientation": None, "files": ["a.dcm"] * 30},
...     {"uid": "1.2", "description": "CT BONE", "folder": "CT BONE", "modality": "CT",
...      "thickness": 5.0, "orientation": None, "files": ["b.dcm"] * 30},
... ]
>>> ranked, rejected = select_series(series)
>>> [info["uid"] for info in ranked], rejected[0][2]
(['1.1'], "matches --exclude-pattern ('BONE')")
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import tempfile
import warnings

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.uid import DeflatedExplicitVRLittleEndian

from kerasmed.io.dicom import read_dicom_series
from kerasmed.preprocessing.ct import max_filter_downsample
from kerasmed.preprocessing.resize import resize_slices

__all__ = [
    "EXCLUDE_PATTERN",
    "NOT_AN_IMAGE",
    "SERIES_PATTERN",
    "fix_12bit_slice",
    "group_study_series",
    "needs_12bit_fix",
    "read_header",
    "read_series_files",
    "resize_volume",
    "safe_id",
    "select_series",
]

SERIES_PATTERN = r"plain|pre[\s_-]*contrast|\b5\s*mm"
EXCLUDE_PATTERN = (
    r"bone|lung|\bpost\b|(?<!pre )(?<!pre)contrast|\bc\b|cect|\d\s*cc\b|d3d|oral|\biv\b|"
    r"locali[sz]er|scout|topo|sag|\bcor|mpr|mip|3d|hrct|orbit"
)
# RSNA's anonymised UIDs ("ID_0a1b2c...") are not valid DICOM UIDs; pydicom warns once per value.
UID_WARNING = "Invalid value for VR UI"
HEADER_TAGS = [
    "SOPClassUID",
    "Modality",
    "SeriesInstanceUID",
    "SeriesDescription",
    "SliceThickness",
    "ImageOrientationPatient",
    "Rows",
    "Columns",
    "BitsStored",
    "PixelRepresentation",
    "RescaleIntercept",
    "RescaleSlope",
]
# reasons of `read_header` for files that are left out without being a problem
NOT_AN_IMAGE = ("not a DICOM file", "DICOM file without an image")


def read_header(path):
    """Header of one DICOM file (no pixel data); returns ``(dataset, None)`` or ``(None, reason)``.

    Only `HEADER_TAGS` are read. The reason is one of `NOT_AN_IMAGE` (a file to leave out
    quietly: not DICOM, or a complete DICOM object of a SOP class that is not an image, e.g. a
    DICOMDIR or a structured report), ``"unreadable DICOM file (...)"`` (corrupt, or truncated:
    it ends inside a data element, which pydicom reads without a word by dropping that element),
    ``"DICOM image (<SOP class>) without Rows: truncated?"`` (an image SOP class, or none, and
    no Rows) or ``"DICOM image without SeriesInstanceUID"``.

    Example:

    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "notes.txt")
    >>> _ = open(path, "w").write("not dicom")
    >>> read_header(path)
    (None, 'not a DICOM file')
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=UID_WARNING)
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=HEADER_TAGS)
            uid = ds.get("SeriesInstanceUID")  # validated (and warned about) when first read
    except InvalidDicomError:
        return None, "not a DICOM file"
    except Exception as error:  # truncated or corrupt file
        return None, f"unreadable DICOM file ({type(error).__name__}: {error})"
    if "Rows" not in ds:
        return None, _without_rows(path, ds)
    if not uid:
        return None, "DICOM image without SeriesInstanceUID"
    return ds, None


def _without_rows(path, ds):
    """`read_header`'s reason for the file `path` (header `ds`) that has no Rows."""
    cut = _cut_short(path, ds)
    if cut:
        return f"unreadable DICOM file (truncated: {cut}, before Rows)"
    sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID")
    kind = str(getattr(sop, "name", sop)) if sop else "unknown SOP class"
    if not sop or "Image Storage" in kind:  # as `kerasmed.io.read_dicom_series` judges it
        return f"DICOM image ({kind}) without Rows: truncated?"
    return "DICOM file without an image"


def _cut_short(path, ds):
    """How the DICOM file `path` (header `ds`) was cut short, or None if it ends where its last
    data element does (or that cannot be told: an undefined-length last element, deflate).

    pydicom reads a file that ends inside a data element without a word: the partial element
    is dropped. Here the file is read again (values skipped) and each top-level element's end
    is compared with the file's size.
    """
    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    if syntax == DeflatedExplicitVRLittleEndian:  # read from a decompressed copy
        return None
    size = os.path.getsize(path)
    ends = []
    with open(path, "rb") as fp:

        def element_end(tag, vr, length):  # called with `fp` at the element's value
            ends.append(None if length == 0xFFFFFFFF else fp.tell() + length)
            return False

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the first read warned already
                read_partial(fp, stop_when=element_end, defer_size=0)
        except Exception as error:  # e.g. a sequence without its end
            return f"{type(error).__name__}: {error}"
    if not ends:
        return "no data element after its file meta information"
    if ends[-1] is not None and ends[-1] != size:
        return "it ends inside a data element"
    return None


def _floats(value, count):
    """`value` as `count` floats (None for a missing or malformed value)."""
    if value is None:
        return None
    try:
        values = [float(v) for v in (value if count > 1 else [value])]
    except (TypeError, ValueError):
        return None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        return None
    return values if count > 1 else values[0]


def group_study_series(study):
    """Groups the DICOM images under the folder `study` by SeriesInstanceUID.

    Returns:
        ``(series, unreadable)``: a list of dicts (in the order first found, folders and files
        sorted) with ``uid``, ``description`` (SeriesDescription), ``folder`` (the name of the
        folder of its first file), ``modality``, ``thickness`` (SliceThickness in mm, or None),
        ``orientation`` (6 direction cosines, or None) and ``files`` (paths), the input of
        `select_series`; and ``(path, reason)`` of every file `read_header` refused.

    Example:

    >>> group_study_series(tempfile.mkdtemp())
    ([], [])
    """
    groups, unreadable = {}, []
    for folder, dirs, names in os.walk(study):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            ds, reason = read_header(path)
            if ds is None:
                unreadable.append((path, reason))
                continue
            uid = str(ds.SeriesInstanceUID)
            if uid not in groups:
                groups[uid] = {
                    "uid": uid,
                    "description": str(ds.get("SeriesDescription", "") or "").strip(),
                    "folder": os.path.basename(folder),
                    "modality": str(ds.get("Modality", "") or ""),
                    "thickness": _floats(ds.get("SliceThickness"), 1),
                    "orientation": _floats(ds.get("ImageOrientationPatient"), 6),
                    "files": [],
                }
            groups[uid]["files"].append(path)
    return list(groups.values()), unreadable


def select_series(
    series,
    series_pattern=SERIES_PATTERN,
    exclude_pattern=EXCLUDE_PATTERN,
    target_thickness=5.0,
    min_slices=10,
):
    """Ranks a study's series by CQ500's rule (``data_prep/head_ct_ich.py`` describes it).

    Candidates: Modality CT (or none), at least `min_slices` images, ``"<description>
    <folder>"`` not matching `exclude_pattern`, axial (slice normal within 45 degrees of the
    body axis). Ranked by: matches `series_pattern` first; then SliceThickness closest to
    `target_thickness`; then more images; then SeriesInstanceUID.

    Args:
        series: list of dicts with ``uid``, ``description``, ``folder``, ``modality``,
            ``thickness`` (mm or None), ``orientation`` (6 direction cosines or None), ``files``
            (`group_study_series` returns them).
        series_pattern, exclude_pattern: regular expressions (case-insensitive) matched against
            ``"<description> <folder>"``; empty: none.
        target_thickness: preferred slice thickness in mm.
        min_slices: fewest images a candidate may have.

    Returns:
        ``(ranked, rejected)``: candidate dicts best first (each with ``matches`` and
        ``thickness`` (float, NaN if unknown) added), and ``(uid, description, reason)`` of every
        rejected series.

    Example:

    >>> thin = {"uid": "2.1", "description": "CT PLAIN THIN", "folder": "", "modality": "CT",
    ...         "thickness": 0.625, "orientation": None, "files": ["x"] * 200}
    >>> thick = dict(thin, uid="2.2", description="CT Plain", thickness=5.0, files=["y"] * 30)
    >>> [s["description"] for s in select_series([thin, thick])[0]]
    ['CT Plain', 'CT PLAIN THIN']
    >>> [s["description"] for s in select_series([thin, thick], target_thickness=0.625)[0]]
    ['CT PLAIN THIN', 'CT Plain']
    """
    prefer = re.compile(series_pattern, re.IGNORECASE) if series_pattern else None
    exclude = re.compile(exclude_pattern, re.IGNORECASE) if exclude_pattern else None
    ranked, rejected = [], []
    for info in series:
        text = f"{info['description']} {info['folder']}"
        reason = None
        if info["modality"] and info["modality"].upper() != "CT":
            reason = f"modality {info['modality']}"
        elif len(info["files"]) < min_slices:
            reason = f"{len(info['files'])} images < --min-slices {min_slices}"
        elif exclude is not None and exclude.search(text):
            reason = f"matches --exclude-pattern ({exclude.search(text).group(0)!r})"
        elif info["orientation"] is not None:
            cosines = np.asarray(info["orientation"], dtype=np.float64)
            normal = np.cross(cosines[:3], cosines[3:])
            if abs(normal[2]) < np.cos(np.pi / 4) * np.linalg.norm(normal):
                reason = "not axial (slice normal more than 45 degrees from the body axis)"
        if reason:
            rejected.append((info["uid"], info["description"], reason))
            continue
        try:
            thickness = float(info["thickness"])
        except (TypeError, ValueError):
            thickness = math.nan
        ranked.append(
            {**info, "matches": bool(prefer and prefer.search(text)), "thickness": thickness}
        )

    def key(info):
        gap = abs(info["thickness"] - target_thickness)
        return (not info["matches"], math.inf if math.isnan(gap) else gap,
                -len(info["files"]), info["uid"])  # fmt: skip

    return sorted(ranked, key=key), rejected


def read_series_files(paths, allow_nonuniform=True, strict=True):
    """Reads the DICOM files `paths` (one series) with `kerasmed.io.read_dicom_series`.

    `read_dicom_series` reads a folder, so the files are linked (or copied where links are not
    allowed) into a temporary folder first. ``volume.files`` and ``volume.report`` are mapped
    back to `paths`, and the warnings raised while reading are recorded in ``volume.notes``
    instead of printed.

    Returns:
        The `kerasmed.io.Volume`; its ``notes`` also hold the warnings raised while reading and
        the files not used.

    Raises:
        Whatever `read_dicom_series` raises for a series it refuses (e.g. a `ValueError` for
        two slices at one position), its message naming the files of `paths`.

    Example:

    >>> from pydicom.data import get_testdata_file
    >>> volume = read_series_files([get_testdata_file("CT_small.dcm")])
    >>> volume.array.shape, os.path.basename(volume.files[0])
    ((1, 128, 128), 'CT_small.dcm')
    """
    with tempfile.TemporaryDirectory(prefix="kerasmed-series-") as tmp:
        links = {}
        for k, path in enumerate(paths):
            link = os.path.join(tmp, f"{k:06d}.dcm")
            try:
                os.symlink(os.path.abspath(path), link)
            except OSError:
                shutil.copyfile(path, link)
            links[link] = path
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", message=UID_WARNING)
            try:
                volume = read_dicom_series(tmp, allow_nonuniform=allow_nonuniform, strict=strict)
            except Exception as error:  # its message names the links: name the files instead
                if len(error.args) == 1 and isinstance(error.args[0], str):
                    error.args = (_named_back(error.args[0], links),)
                raise
    volume.files = [links[f] for f in volume.files]
    back = [dataclasses.replace(p, path=links.get(p.path, p.path)) for p in volume.report.skipped]
    problems, ignored = back[: len(volume.report.problems)], back[len(volume.report.problems) :]
    volume.report = dataclasses.replace(volume.report, problems=problems, ignored=ignored)
    notes = list(volume.notes)
    caught = [str(w.message) for w in caught if tmp not in str(w.message)]  # not the report's
    notes += [message for message in caught if not any(n in message for n in notes)]
    notes += [str(p) for p in volume.report.skipped]
    volume.notes = notes
    return volume


def _named_back(text, links):
    """`text` with each link of `read_series_files` replaced by the file it stands for."""
    for link in sorted(links, reverse=True):
        text = text.replace(link, os.fspath(links[link]))
    return text


def needs_12bit_fix(ds):
    """Whether a slice header shows RSNA 2019's 12-bit error: BitsStored 12, PixelRepresentation
    0 and RescaleIntercept > -100 (a header without these fields: False).

    Example:

    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset()
    >>> ds.BitsStored, ds.PixelRepresentation, ds.RescaleIntercept = 12, 0, 0.0
    >>> needs_12bit_fix(ds), needs_12bit_fix(Dataset())
    (True, False)
    """
    try:
        return (
            int(ds.BitsStored) == 12
            and int(ds.PixelRepresentation) == 0
            and float(ds.RescaleIntercept) > -100
        )
    except (AttributeError, TypeError, ValueError):
        return False


def fix_12bit_slice(hu, intercept, slope):
    """The RSNA 2019 fix for one slice in HU: stored + 1000, wrap >= 4096, intercept -1000.

    Args:
        hu: the slice in HU as read (``stored * slope + intercept``).
        intercept, slope: the slice's RescaleIntercept and RescaleSlope.

    Returns:
        The corrected slice (float32).

    Example:

    >>> fix_12bit_slice(np.array([[100.0, 3500.0]]), 0.0, 1.0)
    array([[ 100., -596.]], dtype=float32)
    """
    stored = np.rint((np.asarray(hu, dtype=np.float64) - intercept) / slope) + 1000.0
    stored[stored >= 4096] -= 4096
    return (stored * slope - 1000.0).astype(np.float32)


def resize_volume(hu, spacing, slice_size, method="auto"):
    """Resizes every slice of `hu` to ``slice_size x slice_size``; scales the in-plane spacing.

    ``method="max"`` is the paper's maximum filter (non-overlapping blocks; the DICOM size must
    be a multiple of `slice_size`), ``"area"``/``"linear"`` OpenCV interpolation
    (`kerasmed.preprocessing.resize_slices`), ``"auto"`` the maximum filter when the size is a
    multiple, else area interpolation to shrink and linear interpolation to enlarge.
    ``slice_size`` 0 or None keeps the size.

    Returns:
        ``(hu, spacing, used)``: resized float32 volume, new spacing, the method used
        (``"none"`` when the size is kept).

    Example:

    >>> hu = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    >>> small, spacing, used = resize_volume(hu, (5.0, 0.5, 0.5), 2)
    >>> small[0].tolist(), spacing.tolist(), used
    ([[5.0, 7.0], [13.0, 15.0]], [5.0, 1.0, 1.0], 'max')
    """
    n, h, w = hu.shape
    spacing = np.asarray(spacing, dtype=np.float64)
    if not slice_size or (h, w) == (slice_size, slice_size):
        return hu, spacing, "none"
    multiple = h % slice_size == 0 and w % slice_size == 0
    if method == "max" and not multiple:
        raise ValueError(
            f"--resize max needs a slice size that divides the image size; {h}x{w} is not a "
            f"multiple of {slice_size}. Received: slice_size={slice_size}"
        )
    if method == "max" or (method == "auto" and multiple):
        hu = max_filter_downsample(hu, (1, h // slice_size, w // slice_size))
        used = "max"
    else:
        used = method if method != "auto" else ("area" if slice_size < max(h, w) else "linear")
        hu = resize_slices(hu.astype(np.float32, copy=False), slice_size, used)
    spacing = spacing * [1.0, h / slice_size, w / slice_size]
    return hu.astype(np.float32, copy=False), spacing, used


def safe_id(text):
    """A volume id (file name) made of ``A-Z a-z 0-9 . _ -`` from any string.

    Example:

    >>> safe_id(" 1.2.3/4 "), safe_id("CQ500-CT-7"), safe_id("///")
    ('1.2.3_4', 'CQ500-CT-7', 'volume')
    """
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text).strip()).strip("._-")
    return text or "volume"
