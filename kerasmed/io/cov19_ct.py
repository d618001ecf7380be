"""COV19-CT-DB: chest CT scans as folders of 8-bit JPEG slices (paper 003, Hsu et al.).

Layout, as the challenge ships it (Kollias et al.; the authors' ``train_code/`` reads the same)::

    <root>/<split>/<covid | non-covid>/<scan_id>/<n>.jpg

``<split>`` is ``train`` or ``validation`` (any folder name may be asked for), the class folder
gives the label (``covid`` = 1, ``non-covid`` = 0; case-insensitive), ``<scan_id>`` is e.g.
``ct_scan_12`` and ``<n>`` the slice number: slices are ordered by that number, so ``10.jpg``
comes after ``9.jpg``. Each slice is read as 8-bit greyscale with OpenCV.

A scan folder may instead hold one NIfTI volume (``.nii`` / ``.nii.gz``, `read_nifti`) or one
DICOM series (``.dcm`` files, `read_dicom_series`): its array is then in Hounsfield units
(``kind="hu"``) rather than 8-bit (``kind="8bit"``), the two kinds of
`kerasmed.preprocessing.select_lung_slices`.

Reported, never dropped silently (the strict rule of `kerasmed.io.report`): slices that cannot
be read (zero-byte, truncated JPEG without its end-of-image marker, not an image), slice files
whose name is not a number, two files with one number, scan folders without slices; these are
problems (``strict=True``, the default, raises one `LoadError` listing all of them;
``strict=False`` skips them). Slices of another size than the scan's last slice are left out
and listed (the authors keep the last slice of such scans; its size is the common axial one,
the paper's Section 3), as are folders that are not a class folder and stray files: these are
``report.ignored`` and never raise. A missing root or split folder is a ``FileNotFoundError``.

Example:

>>> import os, tempfile, cv2
>>> root = tempfile.mkdtemp()
>>> os.makedirs(os.path.join(root, "train", "non-covid"))  # no scan of that class here
>>> for n in range(12):
...     folder = os.path.join(root, "train", "covid", "ct_scan_0")
...     os.makedirs(folder, exist_ok=True)
...     _ = cv2.imwrite(os.path.join(folder, f"{n}.jpg"), np.full((8, 8), 20 * n, np.uint8))
>>> data = read_cov19_ct(root, splits=("train",))
>>> scan = data.scans[0]
>>> scan.scan_id, scan.label, scan.kind, scan.array.shape, os.path.basename(scan.files[10])
('ct_scan_0', 1, '8bit', (12, 8, 8), '10.jpg')
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings

import cv2
import numpy as np

from kerasmed.io.dicom import read_dicom_series
from kerasmed.io.nifti import read_nifti
from kerasmed.io.report import LoadReport

__all__ = [
    "COV19_CLASSES",
    "COV19_SPLITS",
    "Cov19Dataset",
    "Cov19Entry",
    "Cov19Scan",
    "index_cov19_ct",
    "read_cov19_ct",
    "read_cov19_scan",
]

COV19_CLASSES = {"covid": 1, "non-covid": 0}
COV19_SPLITS = ("train", "validation")
SLICE_SUFFIXES = (".jpg", ".jpeg", ".png")
_NUMBER = re.compile(r"^\d+$")
_JPEG_END = b"\xff\xd9"


@dataclasses.dataclass(frozen=True)
class Cov19Entry:
    """One scan folder of the index: its split, label, id and path."""

    split: str
    label: int
    scan_id: str
    folder: str


@dataclasses.dataclass
class Cov19Scan:
    """One scan.

    Attributes:
        split, label, scan_id, folder: as its `Cov19Entry`.
        array: ``(n, H, W)``: uint8 slices (``kind="8bit"``) or float32 HU (``kind="hu"``).
        kind: ``"8bit"`` (JPEG/PNG slices) or ``"hu"`` (NIfTI or DICOM).
        files: the files of the slices, in slice order (one path for NIfTI).
        report: the scan folder's `LoadReport` (slices not used and why).
    """

    split: str
    label: int
    scan_id: str
    folder: str
    array: np.ndarray
    kind: str
    files: list
    report: LoadReport


@dataclasses.dataclass
class Cov19Dataset:
    """Every scan read by `read_cov19_ct` (index order) and one `LoadReport` of them all."""

    scans: list
    report: LoadReport

    @property
    def labels(self) -> np.ndarray:
        return np.array([scan.label for scan in self.scans], dtype=np.int64)


def _listdir(folder):
    return sorted(os.listdir(folder))


def index_cov19_ct(root, splits=COV19_SPLITS):
    """Lists the scan folders of a COV19-CT-DB tree without reading any slice.

    Args:
        root: the folder holding the split folders.
        splits: split folder names to read, in order.

    Returns:
        ``(entries, report)``: a list of `Cov19Entry` (split, then class as in
        `COV19_CLASSES`, then scan id) and a `LoadReport` of what was ignored (other folders,
        stray files) and of the empty scan folders (problems).

    Raises:
        FileNotFoundError: `root` or a split folder is missing.
    """
    root = os.fspath(root)
    if isinstance(splits, str):
        splits = (splits,)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"COV19-CT-DB folder not found: {root}")
    report = LoadReport(root, unit="scan folders")
    entries = []
    for split in splits:
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            found = [n for n in _listdir(root) if os.path.isdir(os.path.join(root, n))]
            raise FileNotFoundError(
                f"COV19-CT-DB split folder not found: {split_dir} (folders there: {found}). "
                f"Received: splits={tuple(splits)!r}"
            )
        classes = {}
        for name in _listdir(split_dir):
            path = os.path.join(split_dir, name)
            if name.lower() in COV19_CLASSES and os.path.isdir(path):
                classes[name.lower()] = path
            else:
                report.ignore(
                    f"not a class folder (expected {' or '.join(COV19_CLASSES)})", path=path
                )
        for cls, label in COV19_CLASSES.items():
            if cls not in classes:
                report.ignore(f"no {cls!r} folder in split {split!r}", path=split_dir)
                continue
            for scan_id in _listdir(classes[cls]):
                folder = os.path.join(classes[cls], scan_id)
                if not os.path.isdir(folder):
                    report.ignore("a file where a scan folder was expected", path=folder)
                    continue
                report.num_rows += 1
                if not _listdir(folder):
                    report.add("empty scan folder: no slices", path=folder, item=scan_id)
                    continue
                entries.append(Cov19Entry(split, label, scan_id, folder))
    return entries, report


def _read_slice(path):
    """``(image, None)`` or ``(None, reason)`` for one 8-bit slice file."""
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        return None, "empty (zero-byte) slice file"
    jpeg = data.startswith(b"\xff\xd8")
    if jpeg and not data.rstrip(b"\x00").endswith(_JPEG_END):  # OpenCV decodes part of it
        return None, "truncated JPEG (no end-of-image marker)"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        return None, "not a readable image (OpenCV cannot decode it)"
    return image, None


def _read_jpeg_scan(entry, names, report):
    numbered = {}
    for name in names:
        path = os.path.join(entry.folder, name)
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in SLICE_SUFFIXES:
            report.ignore("not a slice file (.jpg, .jpeg or .png)", path=path)
        elif not _NUMBER.match(stem):
            report.add(f"slice file name is not a number: {name!r}", path=path, item=entry.scan_id)
        elif int(stem) in numbered:
            first = os.path.basename(numbered[int(stem)])
            report.add(f"slice number {int(stem)} twice (also {first})", path=path)
        else:
            numbered[int(stem)] = path
    slices, files = [], []
    for number in sorted(numbered):
        image, reason = _read_slice(numbered[number])
        if image is None:
            report.add(reason, path=numbered[number], item=entry.scan_id)
        else:
            slices.append(image)
            files.append(numbered[number])
    if slices and len({s.shape for s in slices}) > 1:
        size = slices[-1].shape
        for image, path in zip(slices, files):
            if image.shape != size:
                reason = (
                    f"slice of size {image.shape[0]}x{image.shape[1]}, not the last slice's "
                    f"{size[0]}x{size[1]} (mixed sizes: the last slice's size is kept)"
                )
                report.ignore(reason, path=path, item=entry.scan_id)
        keep = [k for k, image in enumerate(slices) if image.shape == size]
        slices, files = [slices[k] for k in keep], [files[k] for k in keep]
    if not slices:
        report.add("no readable slice in the scan folder", path=entry.folder, item=entry.scan_id)
        return np.zeros((0, 0, 0), np.uint8), files
    return np.stack(slices), files


def read_cov19_scan(entry, strict=True):
    """Reads one scan folder (a `Cov19Entry`) into a `Cov19Scan`.

    JPEG/PNG slices (ordered by number), else one NIfTI file, else a DICOM series. With
    ``strict=False`` a scan without any usable slice has an empty ``array`` (its report says
    why).

    Raises:
        LoadError: ``strict`` and a slice or the scan cannot be used (all listed).
    """
    scan = _read_scan(entry)
    scan.report.raise_or_warn(strict, "slice(s)")
    return scan


def _read_scan(entry):
    names = _listdir(entry.folder)
    report = LoadReport(entry.folder, num_rows=len(names), unit="files")
    lower = [n.lower() for n in names]
    nifti = [n for n, low in zip(names, lower) if low.endswith((".nii", ".nii.gz"))]
    has_slices = any(low.endswith(SLICE_SUFFIXES) for low in lower)
    if nifti and not has_slices:
        for name in nifti[1:]:
            report.ignore("second NIfTI file in the scan folder", path=entry.folder + "/" + name)
        volume = read_nifti(os.path.join(entry.folder, nifti[0]))
        array, kind, files = volume.array, "hu", list(volume.files)
    elif not has_slices and any(low.endswith(".dcm") for low in lower):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its report is kept below
            volume = read_dicom_series(entry.folder, allow_nonuniform=True, strict=False)
        report.problems += volume.report.problems
        report.ignored += volume.report.ignored
        array, kind, files = volume.array, "hu", list(volume.files)
    else:
        array, files = _read_jpeg_scan(entry, names, report)
        kind = "8bit"
    return Cov19Scan(entry.split, entry.label, entry.scan_id, entry.folder, array, kind, files,
                     report)  # fmt: skip


def read_cov19_ct(root, splits=COV19_SPLITS, strict=True):
    """Reads every scan of a COV19-CT-DB tree (module docstring); returns a `Cov19Dataset`.

    Args:
        root: the folder holding the split folders.
        splits: split folder names, e.g. ``("train", "validation")``.
        strict: if True (default), unreadable or misnamed slices and empty scans raise one
            `LoadError` listing every one; if False they are skipped and warned about (the
            returned ``report`` lists them).

    Raises:
        FileNotFoundError: `root` or a split folder is missing.
        LoadError: ``strict`` and some input cannot be used.
    """
    entries, report = index_cov19_ct(root, splits)
    scans = []
    for entry in entries:
        scan = _read_scan(entry)
        report.problems += scan.report.problems
        report.ignored += scan.report.ignored
        if len(scan.array):
            scans.append(scan)
    report.raise_or_warn(strict, "slice(s) or scan(s)")
    return Cov19Dataset(scans, report)
