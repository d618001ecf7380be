"""Reading a DICOM series into a (Z, Y, X) volume in Hounsfield units.

Slices are ordered by their position along the slice normal (never by file name), every file that is
not part of the volume is reported (`kerasmed.io.LoadReport`, with the strict rule of
`kerasmed.io.report` for the files that cannot be read), and the checks a radiologist's viewer would do (one series, one
orientation, one size, no duplicate slices, uniform spacing) raise errors that say what was found.
"""

import dataclasses
import os
import warnings

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from kerasmed.io._dicom_tags import decode_all, geometry_problem, has_rescale, numbers
from kerasmed.io.report import LoadReport
from kerasmed.validation import check_one_of

__all__ = ["Volume", "read_dicom_series"]

# Tolerances in millimetres / direction-cosine units.
_POSITION_ATOL = 1e-3
_ORIENTATION_ATOL = 1e-4
_SPACING_RTOL = 1e-2


@dataclasses.dataclass
class Volume:
    """A 3D image with its geometry, as returned by `read_dicom_series` and `read_nifti`.

    Attributes:
        array: float32 array of shape (Z, Y, X). For CT read from DICOM, values are Hounsfield
            units (the modality LUT, i.e. RescaleSlope/RescaleIntercept, is applied).
        spacing: voxel size (z, y, x) in millimetres.
        positions: (Z,) slice positions in millimetres along the slice normal, increasing.
            When a DICOM series has no ImagePositionPatient and `missing_positions="instance_number"`
            was chosen, these are the InstanceNumbers instead (see `notes`).
        series_uid: the DICOM SeriesInstanceUID (None for NIfTI).
        files: the files the slices come from, in slice order (one path for NIfTI).
        report: for DICOM, the `kerasmed.io.LoadReport` of the folder: ``report.ignored``
            lists the files that are not part of the volume (not DICOM, no pixel data, other
            series), ``report.problems`` the DICOM files that could not be read (only with
            ``strict=False``); None for NIfTI.
        affine: 4x4 matrix mapping (x, y, z, 1) voxel indices (i.e. `array[z, y, x]`) to world
            millimetres: DICOM patient coordinates (LPS) for DICOM, RAS+ for NIfTI.
        modality: the DICOM Modality (e.g. "CT"), None for NIfTI.
        notes: what was reported while reading (fallbacks, non-uniform spacing), also warned.
    """

    array: np.ndarray
    spacing: tuple
    positions: np.ndarray
    series_uid: str | None = None
    files: list = dataclasses.field(default_factory=list)
    report: LoadReport | None = None
    affine: np.ndarray | None = None
    modality: str | None = None
    notes: list = dataclasses.field(default_factory=list)

    @property
    def shape(self):
        return self.array.shape


def _list_files(directory, recursive):
    if recursive:
        paths = []
        for root, dirs, names in os.walk(directory):
            dirs.sort()
            paths.extend(os.path.join(root, name) for name in sorted(names))
        return paths
    return [
        os.path.join(directory, name)
        for name in sorted(os.listdir(directory))
        if os.path.isfile(os.path.join(directory, name))
    ]


def _read_headers(paths, report):
    """Reads every file's header (pixel data deferred); returns the ``(path, dataset)`` pairs.

    Files that are not DICOM images go to ``report.ignored``, DICOM files that cannot be read
    or lack their SeriesInstanceUID to ``report.problems``.
    """
    datasets = []
    for path in paths:
        report.num_rows += 1
        if os.path.getsize(path) == 0:
            report.add("empty file (0 bytes)", path=path)
            continue
        try:
            ds = pydicom.dcmread(path, defer_size="64 KB")
        except InvalidDicomError:
            if path.lower().endswith((".dcm", ".dicom")):
                report.add("named as DICOM but not a DICOM file", path=path)
            else:
                report.ignore("not a DICOM file", path=path)
            continue
        except Exception as error:  # truncated or corrupt file
            reason = f"unreadable DICOM file ({type(error).__name__}: {error})"
            report.add(reason, path=path)
            continue
        if "PixelData" not in ds:
            sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", {}).get(
                "MediaStorageSOPClassUID"
            )
            kind = getattr(sop, "name", sop) if sop else "unknown SOP class"
            if "Rows" in ds or "Columns" in ds or not sop or str(kind).endswith("Image Storage"):
                report.add(f"an image ({kind}) without pixel data: truncated?", path=path)
                continue
            report.ignore(f"DICOM file without pixel data ({kind})", path=path)
            continue
        if "SeriesInstanceUID" not in ds:
            report.add("DICOM image without SeriesInstanceUID", path=path)
            continue
        reason = geometry_problem(ds)
        if reason is None and ("Rows" not in ds or "Columns" not in ds):
            reason = "DICOM image without Rows/Columns"
        if reason:
            report.add(reason, path=path)
            continue
        datasets.append((path, ds))
    return datasets


def _describe_series(groups):
    lines = []
    for uid, items in groups.items():
        ds = items[0][1]
        lines.append(
            f"  {uid}  modality={ds.get('Modality', '?')}  files={len(items)}  "
            f"description={str(ds.get('SeriesDescription', '')).strip()!r}"
        )
    return "\n".join(lines)


def _orientation(items):
    """Returns the common (row cosine, column cosine, normal), or None if no file has one."""
    iops = [ds.get("ImageOrientationPatient") for _, ds in items]
    if all(iop is None for iop in iops):
        return None
    if any(iop is None for iop in iops):
        missing = [path for (path, _), iop in zip(items, iops) if iop is None]
        raise ValueError(
            "Some files of the series have no ImageOrientationPatient, so it is not one volume. "
            f"Received: {len(missing)} file(s) without it: {missing[:5]}"
        )
    iops = np.asarray(iops, dtype=np.float64)
    if not np.allclose(iops, iops[0], atol=_ORIENTATION_ATOL):
        distinct = np.unique(np.round(iops, 4), axis=0)
        raise ValueError(
            "The series mixes slice orientations (e.g. a localizer), so it is not one volume. "
            f"Received: ImageOrientationPatient values {distinct.tolist()}"
        )
    row, col = iops[0, :3], iops[0, 3:]
    normal = np.cross(row, col)
    return row, col, normal / np.linalg.norm(normal)


def _slice_spacing_tag(ds):
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(keyword)
        if value not in (None, "") and np.isfinite(float(value)) and float(value) > 0:
            return float(value), keyword
    return 1.0, None


def _pixel_spacing(ds):
    values = numbers(ds, "PixelSpacing", 2)[0]
    return None if values is None else tuple(float(v) for v in values)


def _common(items, keyword, read, what):
    """The one value of `read(ds)` over the series; ValueError listing the values if several."""
    found = {}
    for path, ds in items:
        found.setdefault(read(ds), []).append(path)
    if len(found) > 1:
        listed = ", ".join(f"{v} ({len(p)} files, e.g. {p[0]})" for v, p in found.items())
        raise ValueError(
            f"The series mixes {what}, so it is not one volume. Received: {keyword} {listed}"
        )
    return next(iter(found))


def _rescale_notes(items, modality, missing_rescale):
    """Refuses (or notes, with ``missing_rescale='identity'``) CT files without a modality LUT."""
    bare = [path for path, ds in items if not has_rescale(ds)]
    if modality != "CT" or not bare:
        return []
    if missing_rescale == "error":
        raise ValueError(
            f"{len(bare)} CT file(s) have no RescaleSlope/RescaleIntercept (Type 1 in the CT "
            f"Image Module), so their stored values are not known to be Hounsfield units, e.g. "
            f"{bare[:3]}. Pass missing_rescale='identity' to read the stored values as HU "
            "(slope 1, intercept 0). Received: missing_rescale='error'"
        )
    return [
        f"RescaleSlope/RescaleIntercept missing in {len(bare)} CT file(s): stored values "
        "taken as HU (slope 1, intercept 0)"
    ]


def read_dicom_series(
    directory,
    series_uid=None,
    recursive=False,
    allow_nonuniform=False,
    missing_positions="instance_number",
    strict=True,
    missing_rescale="error",
):
    """Reads one DICOM series from a folder into a `Volume` of shape (Z, Y, X) in HU.

    Slices are sorted by increasing position along the slice normal: the dot product of
    ImagePositionPatient with the cross product of the two direction cosines of
    ImageOrientationPatient (so oblique series sort correctly; file names are never used).
    The modality LUT (RescaleSlope/RescaleIntercept) is applied, so CT values are Hounsfield units.

    Files that are not DICOM images (other files, DICOMDIR, reports without pixel data) and the
    files of other series are left out, listed in ``Volume.report.ignored`` and warned about.
    DICOM files that cannot be read (truncated, corrupt, no SeriesInstanceUID) may be slices
    of the volume, so they follow the strict rule of `kerasmed.io.report` (see `strict`).

    Args:
        directory: folder holding the series' files.
        series_uid: the SeriesInstanceUID to read when the folder holds several series. If None
            and several series are found, a `ValueError` lists them (UID, modality, number of
            files, description).
        recursive: whether to also read the files in sub-folders.
        allow_nonuniform: if False (default), slices whose gaps differ by more than 1% raise a
            `ValueError`; if True the volume is returned with the median gap as z spacing and the
            irregularity is warned and recorded in `Volume.notes`.
        missing_positions: what to do when ImagePositionPatient/ImageOrientationPatient is
            missing: `"instance_number"` (default) orders slices by InstanceNumber, warns, and
            takes the z spacing from SpacingBetweenSlices or SliceThickness (1 mm if neither);
            `"error"` raises a `ValueError`. InstanceNumbers that are not evenly spaced (a
            slice may be missing) follow `allow_nonuniform`, as position gaps do.
        strict: if True (default), DICOM files that cannot be read raise a
            `kerasmed.io.LoadError` (a ``ValueError``) listing every one; if False they are
            left out, warned about and listed in ``Volume.report.problems``. Such files are:
            empty, truncated (image attributes without pixel data, or pixel data shorter than
            Rows x Columns), a ``.dcm`` file that is not DICOM, malformed or degenerate
            geometry (an ImageOrientationPatient that is not two unit vectors at right angles,
            NaN in ImagePositionPatient, a PixelSpacing that is not two positive numbers), a
            RescaleSlope of 0 or a non-finite rescale value. A slice left out leaves a gap
            that the spacing check reports.
        missing_rescale: what to do with CT files without RescaleSlope/RescaleIntercept (Type 1
            in the CT Image Module, so their stored values are not known to be HU): ``"error"``
            (default) raises a ``ValueError`` naming them; ``"identity"`` reads the stored
            values as HU (slope 1, intercept 0) and says so in `Volume.notes`. Other
            modalities (MR...) without them get the standard's identity, without a note.

    Returns:
        A `Volume` with `array` (Z, Y, X) float32, `spacing` (z, y, x) in mm, `positions`,
        `series_uid`, `files` (in slice order), `report`, `affine` (voxel (x, y, z) to LPS mm),
        `modality` and `notes`.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: no DICOM image, several series without `series_uid`, an unknown `series_uid`,
            mixed image sizes or orientations, duplicate slice positions, non-uniform spacing,
            or (``strict``) DICOM files that cannot be read.
        RuntimeError: compressed pixel data that no installed plugin can decode (the message
            names the package to install, e.g. `pip install pylibjpeg pylibjpeg-libjpeg`).

    Example:

    >>> import os
    >>> from pydicom.data import get_testdata_file
    >>> folder = os.path.dirname(get_testdata_file("dicomdirtests/98892001/CT5N/2062"))
    >>> volume = read_dicom_series(folder)
    >>> volume.array.shape, volume.spacing
    ((5, 16, 16), (2.5, 0.488281, 0.488281))

    Reference:
        DICOM PS3.3 C.7.6.2 (Image Plane Module); Patel et al., "Intracerebral Haemorrhage
        Segmentation in Non-Contrast CT", IEEE Access 2019 (the volumes read here).
    """
    check_one_of(missing_rescale, "missing_rescale", ("error", "identity"))
    if missing_positions not in ("instance_number", "error"):
        raise ValueError(
            "`missing_positions` must be 'instance_number' or 'error'. "
            f"Received: missing_positions={missing_positions!r}"
        )
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise FileNotFoundError(f"DICOM folder not found: {directory}")
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"Expected a folder of DICOM files, got a file: {directory}")

    report = LoadReport(directory, unit="files")
    datasets = _read_headers(_list_files(directory, recursive), report)
    if not datasets:
        report.raise_or_warn(strict, "file(s)")
        raise ValueError(f"No DICOM image files found. Received: directory={directory!r}")

    groups = {}
    for path, ds in datasets:
        groups.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
    if series_uid is None:
        if len(groups) > 1:
            raise ValueError(
                f"The folder holds {len(groups)} series; pass `series_uid` to choose one:\n"
                f"{_describe_series(groups)}\nReceived: series_uid=None"
            )
        series_uid = next(iter(groups))
    elif series_uid not in groups:
        raise ValueError(
            f"Series not found in {directory}. Series found:\n{_describe_series(groups)}\n"
            f"Received: series_uid={series_uid!r}"
        )
    items = groups[series_uid]
    for uid, others in groups.items():
        if uid != series_uid:
            for path, _ in others:
                report.ignore(f"other series {uid}", path=path)
    if strict:
        report.check("file(s)")  # before any pixel data is decoded

    _common(items, "rows x columns", lambda ds: f"{int(ds.Rows)}x{int(ds.Columns)}", "image sizes")

    first = items[0][1]
    spacing_values = _common(items, "PixelSpacing", _pixel_spacing, "pixel spacings")
    notes = _rescale_notes(items, first.get("Modality"), missing_rescale)
    arrays = decode_all(items, report)
    if strict:
        report.check("file(s)")
    items = [(path, ds) for path, ds in items if path in arrays]
    if not items:
        report.warn("file(s)", stacklevel=2)
        raise ValueError(
            f"No DICOM slice of the series could be decoded. Received: directory={directory!r}"
        )
    if str(first.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        notes.append(
            "PhotometricInterpretation MONOCHROME1: values are the modality LUT's output, not "
            "inverted (MONOCHROME1 only says how to display them)"
        )
    geometry = _orientation(items)
    has_positions = geometry is not None and all(
        ds.get("ImagePositionPatient") is not None for _, ds in items
    )
    if has_positions:
        row, col, normal = geometry
        origins = np.asarray([ds.ImagePositionPatient for _, ds in items], dtype=np.float64)
        positions = origins @ normal
    else:
        if missing_positions == "error":
            raise ValueError(
                "The series has no ImagePositionPatient/ImageOrientationPatient, so slices cannot "
                "be ordered in space. Pass missing_positions='instance_number' to order them by "
                "InstanceNumber. Received: missing_positions='error'"
            )
        if any(ds.get("InstanceNumber") is None for _, ds in items):
            raise ValueError(
                "The series has neither ImagePositionPatient nor InstanceNumber on every file; "
                "the slice order cannot be determined. Received: files without InstanceNumber "
                f"{[path for path, ds in items if ds.get('InstanceNumber') is None][:5]}"
            )
        positions = np.asarray([float(ds.InstanceNumber) for _, ds in items])
        note = (
            "ImagePositionPatient/ImageOrientationPatient missing: slices ordered by "
            "InstanceNumber; `positions` are instance numbers, not millimetres"
        )
        notes.append(note)
        warnings.warn(note, stacklevel=2)

    order = np.argsort(positions, kind="stable")
    positions = positions[order]
    items = [items[i] for i in order]
    files = [path for path, _ in items]

    gaps = np.diff(positions)
    duplicates = np.flatnonzero(np.abs(gaps) <= _POSITION_ATOL)
    if duplicates.size:
        pairs = [f"{files[i]} and {files[i + 1]} at {positions[i]:g}" for i in duplicates]
        raise ValueError(
            "Duplicate slice positions in the series, so it is not one volume. "
            f"Received: {'; '.join(pairs)}"
        )

    first = items[0][1]
    dy, dx = spacing_values if spacing_values else (1.0, 1.0)
    if not spacing_values:
        notes.append("PixelSpacing missing: in-plane spacing set to 1 mm")
    if gaps.size:
        median = float(np.median(gaps))
        if not np.allclose(gaps, median, rtol=_SPACING_RTOL, atol=_POSITION_ATOL):
            where = "mm" if has_positions else "(InstanceNumbers: slices may be missing)"
            description = (
                f"non-uniform slice spacing: gaps range {gaps.min():g}-{gaps.max():g} {where} "
                f"(median {median:g}) between positions {np.round(positions, 3).tolist()}"
            )
            if not allow_nonuniform:
                raise ValueError(
                    f"The series has {description}. Pass allow_nonuniform=True to read it anyway "
                    "(z spacing = median gap). Received: allow_nonuniform=False"
                )
            notes.append(description)
            warnings.warn(f"Series {series_uid}: {description}", stacklevel=2)
    if has_positions and gaps.size:
        dz = median
    else:
        dz, keyword = _slice_spacing_tag(first)
        if keyword is None:
            notes.append(
                "z spacing unknown (no positive SpacingBetweenSlices/SliceThickness): set to 1 mm"
            )

    array = np.stack([arrays[path] for path in files])

    affine = None
    if has_positions:
        affine = np.eye(4)
        affine[:3, 0] = row * dx
        affine[:3, 1] = col * dy
        affine[:3, 2] = normal * dz
        affine[:3, 3] = origins[order[0]]

    report.warn("file(s)", stacklevel=2)
    return Volume(
        array=array,
        spacing=(dz, dy, dx),
        positions=positions,
        series_uid=series_uid,
        files=files,
        report=report,
        affine=affine,
        modality=first.get("Modality"),
        notes=notes,
    )
