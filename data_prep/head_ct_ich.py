"""Prepare public head CTs for ``kerasmed reproduce ich --data-dir`` (paper 001, Patel et al. 2019).

The output folder (``--out``) is a volume set (`kerasmed.io.volumes`): ``labels.csv``
(``volume_id,label,num_slices``) and ``volumes/<volume_id>.npz`` holding each volume in
Hounsfield units (``hu``, slice 0 = lowest position along the slice normal, i.e. the skull base
side), its voxel size (``spacing``, mm) and per-slice labels (``slice_labels``, -1 = unknown).
``sources.csv`` says where each volume comes from, ``prepare_report.txt`` (also printed) lists
every row, study, series or file that was not used and why (`kerasmed.io.LoadReport`).

The label file and the DICOM headers are read first. With ``--strict`` (the default, the rule
of `kerasmed.io.report`) unusable rows of the label file and DICOM files that cannot be read
stop the script before anything is written, all of them listed; ``--no-strict`` skips them.
Studies and series left out by the rules below (no usable series, unknown volume label, a
series `kerasmed.io.read_dicom_series` refuses) are listed and never stop it. Slices are resized to ``--slice-size`` (default 256,
the paper's input): by the paper's maximum filter when the size divides the DICOM size (512 ->
256 is a 2x2 maximum filter), otherwise by OpenCV area interpolation (``--resize`` chooses).

Two public data sets (downloaded by the user; nothing is fetched here):

``cq500``: CQ500 (qure.ai, http://headctstudy.qure.ai/dataset): 491 head CTs, each a folder
``CQ500CT<n> CQ500CT<n>/Unknown Study/<series>/CT*.dcm`` (the zip files may add an outer
``CQ500-CT-<n>`` folder) holding several series, and ``reads.csv`` with three radiologists' reads
(columns ``name`` = ``CQ500-CT-<n>``, ``Category``, ``R1:ICH``, ``R2:ICH``, ``R3:ICH``...).
Volume label = majority of the three ``ICH`` reads; slice labels unknown. One series per study
is chosen by this rule (every choice, and why the others lost, goes to ``sources.csv``):

1. candidates: series (SeriesInstanceUID) with at least ``--min-slices`` images, Modality CT,
   axial (slice normal within 45 degrees of the body axis; gantry tilt is fine), and a
   SeriesDescription (or folder name) that does not match ``--exclude-pattern`` (bone and lung
   kernels, contrast-enhanced, reformats, localizers; ``PRE CONTRAST`` is kept);
2. ranked by: description matches ``--series-pattern`` (default: plain, pre-contrast or 5 mm)
   first; then SliceThickness closest to ``--target-thickness`` (default 5 mm, the common
   ``CT 5mm``/``CT Plain``/``CT PRE CONTRAST 5MM STD`` series of ~30 slices; pass 0.625 for the
   thin series closer to the paper's 0.5 mm); then more slices; then SeriesInstanceUID;
3. the best candidate that `kerasmed.io.read_dicom_series` reads is kept.

``rsna``: RSNA 2019 Intracranial Hemorrhage Detection (Kaggle): one DICOM file per slice,
``stage_2_train/ID_<sop>.dcm``, and ``stage_2_train.csv`` with rows ``ID_<sop>_<subtype>,0/1``.
Slices are grouped by SeriesInstanceUID (headers read with ``stop_before_pixels``), ordered
along the slice normal by `kerasmed.io.read_dicom_series`; slice label = the ``_any`` row,
volume label = maximum of the slice labels. A series with unlabelled slices is kept only if a
labelled slice is positive (its label is then certain); the unlabelled slices get -1. Slices
with the known RSNA 12-bit pixel-representation error (BitsStored 12, PixelRepresentation 0,
RescaleIntercept > -100) are corrected as in the competition's public fix (J. Howard, "Cleaning
the data for rapid prototyping"): ``stored + 1000``, values >= 4096 wrapped, intercept -1000
(``--no-fix-12bit`` turns this off; the count is reported).

Example::

    python data_prep/head_ct_ich.py cq500 --root ~/data/cq500 --reads ~/data/cq500/reads.csv \\
        --out data/ich_cq500
    python data_prep/head_ct_ich.py rsna --dicom-dir ~/rsna/stage_2_train \\
        --labels ~/rsna/stage_2_train.csv --out data/ich_rsna --max-series 500
    kerasmed reproduce ich --data-dir data/ich_cq500
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from tqdm.auto import tqdm

from kerasmed.io import LoadError, LoadReport, VolumeSetWriter, read_dicom_series
from kerasmed.io.prep_runner import non_negative_int, positive_int, run_script
from kerasmed.io.report import add_strict_argument, write_prepare_report
from kerasmed.preprocessing import max_filter_downsample, resize_slices

SERIES_PATTERN = r"plain|pre[\s_-]*contrast|\b5\s*mm"
EXCLUDE_PATTERN = (
    r"bone|lung|\bpost\b|(?<!pre )(?<!pre)contrast|\bc\b|cect|\d\s*cc\b|d3d|oral|\biv\b|"
    r"locali[sz]er|scout|topo|sag|\bcor|mpr|mip|3d|hrct|orbit"
)
READER_COLUMNS = ("R1:ICH", "R2:ICH", "R3:ICH")
_CQ500_FOLDER = re.compile(r"^cq500[\s_-]*ct[\s_-]*(\d+)", re.IGNORECASE)
# RSNA's anonymised UIDs ("ID_0a1b2c...") are not valid DICOM UIDs; pydicom warns once per value.
_UID_WARNING = "Invalid value for VR UI"
_HEADER_TAGS = [
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
_NOT_AN_IMAGE = ("not a DICOM file", "DICOM file without an image")  # ignored, not problems


# ---------------------------------------------------------------- shared steps


def read_header(path):
    """Header of one DICOM file (no pixel data); returns ``(dataset, None)`` or ``(None, reason)``."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_UID_WARNING)
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
            uid = ds.get("SeriesInstanceUID")  # validated (and warned about) when first read
    except InvalidDicomError:
        return None, "not a DICOM file"
    except Exception as error:  # truncated or corrupt file
        return None, f"unreadable DICOM file ({type(error).__name__}: {error})"
    if "Rows" not in ds:
        return None, "DICOM file without an image"
    if not uid:
        return None, "DICOM image without SeriesInstanceUID"
    return ds, None


def read_series_files(paths, allow_nonuniform=True, strict=True):
    """Reads the DICOM files `paths` (one series) with `read_dicom_series`.

    `read_dicom_series` reads a folder, so the files are linked (or copied where links are not
    allowed) into a temporary folder first. ``volume.files`` and ``volume.report`` are mapped
    back to `paths`, and the warnings raised while reading are recorded in ``volume.notes``
    instead of printed.

    Returns:
        The `kerasmed.io.Volume`; its ``notes`` also hold the warnings raised while reading and
        the files not used.
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
            warnings.filterwarnings("ignore", message=_UID_WARNING)
            volume = read_dicom_series(tmp, allow_nonuniform=allow_nonuniform, strict=strict)
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


def resize_volume(hu, spacing, slice_size, method="auto"):
    """Resizes every slice of `hu` to ``slice_size x slice_size``; scales the in-plane spacing.

    ``method="max"`` is the paper's maximum filter (non-overlapping blocks; the DICOM size must
    be a multiple of `slice_size`), ``"area"``/``"linear"`` OpenCV interpolation
    (`kerasmed.preprocessing.resize_slices`), ``"auto"`` the maximum filter when the size is a
    multiple, else area interpolation to shrink and linear interpolation to enlarge.

    Returns:
        ``(hu, spacing, used)``: resized float32 volume, new spacing, the method used.
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
    """A volume id (file name) made of ``A-Z a-z 0-9 . _ -`` from any string."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text).strip()).strip("._-")
    return text or "volume"


class Report:
    """What was written and what was not, printed and saved as ``prepare_report.txt``.

    ``labels`` reports the rows of the label file (CQ500's ``reads.csv``, RSNA's
    ``stage_2_train.csv``), ``inputs`` the study folders, series and DICOM files.
    """

    def __init__(self, dataset, out, labels_path, source):
        self.dataset, self.out = dataset, Path(out)
        self.labels = LoadReport(os.fspath(labels_path))
        self.inputs = LoadReport(os.fspath(source), unit="files")
        self.written, self.notes, self.sources = [], [], []

    def check(self):
        """Raises one `kerasmed.io.LoadError` listing the problems of both reports, if any."""
        errors = []
        for part, what in ((self.labels, "row(s)"), (self.inputs, "file(s) or folder(s)")):
            try:
                part.check(what)
            except LoadError as error:
                errors.append(error)
        if errors:
            raise LoadError("\n".join(map(str, errors)), errors[0].report)

    def summary(self):
        labels = [label for _, label in self.written]
        return {
            "dataset": self.dataset,
            "out": str(self.out),
            "volumes_written": len(self.written),
            "positives": int(sum(labels)),
            "negatives": int(len(labels) - sum(labels)),
            "skipped": len(self.labels.skipped) + len(self.inputs.skipped),
            "notes": len(self.notes),
        }

    def finish(self):
        summary = self.summary()
        notes = [f"Notes ({len(self.notes)}):"]
        notes += [f"  {what}: {note}" for what, note in self.notes] or ["  none"]
        if self.sources:
            with open(self.out / "sources.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(self.sources[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(self.sources)
        write_prepare_report(self.out, summary, self.labels, self.inputs, "\n".join(notes))
        return summary


def _write_volume(writer, report, volume_id, volume, label, slice_labels, args, source):
    hu, spacing, used = resize_volume(volume.array, volume.spacing, args.slice_size, args.resize)
    writer.add(volume_id, hu, label, spacing, slice_labels)
    report.written.append((volume_id, label))
    report.notes.extend((volume_id, note) for note in volume.notes)
    report.sources.append(
        {
            "volume_id": volume_id,
            "label": label,
            "num_slices": len(hu),
            "original_size": f"{volume.array.shape[1]}x{volume.array.shape[2]}",
            "resize": used,
            "spacing_z": round(float(spacing[0]), 4),
            "series_uid": volume.series_uid,
            **source,
        }
    )


# ---------------------------------------------------------------- CQ500


def read_cq500_reads(path, report):
    """``{study number: (name, category, label)}`` from CQ500's ``reads.csv`` (majority of 3)."""
    reads = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in ("name", *READER_COLUMNS) if c not in header]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}. Received: header={header}")
        reader.fieldnames = header
        for record in reader:
            row, report.labels.num_rows = reader.line_num, report.labels.num_rows + 1
            name = (record.get("name") or "").strip()
            match = _CQ500_FOLDER.match(name)
            if not match:
                report.labels.add("name is not CQ500-CT-<number>", row=row, value=name,
                                  column="name")  # fmt: skip
                continue
            votes = []
            for column in READER_COLUMNS:
                value = (record.get(column) or "").strip()
                try:
                    vote = float(value)
                except ValueError:
                    vote = None
                if vote not in (0.0, 1.0):
                    report.labels.add(f"{column}={value!r} is not 0/1", row=row, item=name)
                    break
                votes.append(int(vote))
            else:
                number = int(match.group(1))
                if number in reads:
                    report.labels.add("duplicate study name", row=row, item=name)
                    continue
                label = int(sum(votes) >= 2)
                reads[number] = (name, (record.get("Category") or "").strip(), label)
    return reads


def find_cq500_studies(root, report):
    """``{study number: folder}``: the outermost folders named ``CQ500CT<n>``/``CQ500-CT-<n>``."""
    studies = {}
    for folder, dirs, _ in os.walk(root):
        dirs.sort()
        keep = []
        for name in dirs:
            match = _CQ500_FOLDER.match(name)
            if not match:
                keep.append(name)
                continue
            number, path = int(match.group(1)), os.path.join(folder, name)
            if number in studies:
                reason = f"second folder for study {number} (using {studies[number]})"
                report.inputs.add(reason, path=path)
            else:
                studies[number] = path
        dirs[:] = keep  # do not descend into a study: its files are read as one study
    return studies


def _series_candidates(study):
    """Groups a study's DICOM files by series and describes each series."""
    groups, unreadable = {}, []
    for folder, dirs, names in os.walk(study):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            ds, reason = read_header(path)
            if ds is None:
                unreadable.append((path, reason))
                continue
            info = groups.setdefault(
                str(ds.SeriesInstanceUID),
                {
                    "uid": str(ds.SeriesInstanceUID),
                    "description": str(ds.get("SeriesDescription", "") or "").strip(),
                    "folder": os.path.basename(folder),
                    "modality": str(ds.get("Modality", "") or ""),
                    "thickness": ds.get("SliceThickness"),
                    "orientation": ds.get("ImageOrientationPatient"),
                    "files": [],
                },
            )
            info["files"].append(path)
    return list(groups.values()), unreadable


def select_series(series, series_pattern, exclude_pattern, target_thickness, min_slices):
    """Ranks a study's series by the rule in the module docstring.

    Args:
        series: list of dicts with ``uid``, ``description``, ``folder``, ``modality``,
            ``thickness`` (mm or None), ``orientation`` (6 direction cosines or None), ``files``.
        series_pattern, exclude_pattern: regular expressions (case-insensitive) matched against
            ``"<description> <folder>"``.
        target_thickness: preferred slice thickness in mm.
        min_slices: fewest images a candidate may have.

    Returns:
        ``(ranked, rejected)``: candidate dicts best first (each with ``matches`` and
        ``thickness`` added), and ``(uid, description, reason)`` of every rejected series.
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


def scan_cq500(args, report):
    """Reads ``reads.csv``, finds the studies and groups each one's files by series.

    Returns ``{study number: (name, category, label, series)}`` of the studies to prepare.
    """
    reads = read_cq500_reads(args.reads, report)
    studies = find_cq500_studies(args.root, report)
    for number in sorted(set(studies) - set(reads)):
        report.inputs.ignore("no row in reads.csv", path=studies[number])
    for number in sorted(set(reads) - set(studies)):
        report.inputs.ignore(f"no study folder under {args.root}", item=reads[number][0])
    numbers = sorted(set(reads) & set(studies))[: args.max_studies or None]
    scanned = {}
    for number in tqdm(numbers, desc="CQ500 headers", unit="study"):
        name = reads[number][0]
        series, unreadable = _series_candidates(studies[number])
        report.inputs.num_rows += sum(len(info["files"]) for info in series) + len(unreadable)
        other = [path for path, reason in unreadable if reason == "not a DICOM file"]
        if other:
            report.notes.append((name, f"{len(other)} non-DICOM file(s) ignored, e.g. {other[0]}"))
        for path, reason in unreadable:
            if path not in other:
                (report.inputs.ignore if reason in _NOT_AN_IMAGE else report.inputs.add)(
                    reason, path=path, item=name
                )
        scanned[number] = (*reads[number], series)
    return scanned


def prepare_cq500(args, writer, report, scanned):
    for name, category, label, series in tqdm(scanned.values(), desc="CQ500 studies"):
        ranked, rejected = select_series(
            series,
            args.series_pattern,
            args.exclude_pattern,
            args.target_thickness,
            args.min_slices,
        )
        failures = []
        for info in ranked:
            try:
                volume = read_series_files(info["files"], args.allow_nonuniform, args.strict)
            except Exception as error:
                failures.append(f"{info['description']!r}: {type(error).__name__}: {error}")
                continue
            others = [f"{d!r} ({r})" for _, d, r in rejected] + [
                f"{o['description']!r} (ranked lower)" for o in ranked if o is not info
            ]
            source = {
                "source": name,
                "category": category,
                "series_description": info["description"],
                "slice_thickness": info["thickness"],
                "other_series": "; ".join(failures + others),
            }
            _write_volume(writer, report, safe_id(name), volume, label, None, args, source)
            break
        else:
            reasons = failures + [f"{d!r}: {r}" for _, d, r in rejected]
            reason = "no usable series: " + ("; ".join(reasons) or "no DICOM images")
            report.inputs.ignore(reason, item=name)


# ---------------------------------------------------------------- RSNA 2019


def read_rsna_labels(path, report):
    """``{sop id: 0/1}`` from the ``_any`` rows of ``stage_2_train.csv`` (conflicts dropped)."""
    labels, conflicts = {}, set()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["ID", "Label"]:
            raise ValueError(f"{path}: expected the header ID,Label. Received: header={header}")
        for fields in reader:
            if not fields:
                continue
            report.labels.num_rows += 1
            row = reader.line_num
            if len(fields) != 2:
                report.labels.add(f"{len(fields)} fields, expected 2", row=row)
                continue
            key, value = fields[0].strip(), fields[1].strip()
            sop, _, kind = key.rpartition("_")
            if kind != "any":
                continue
            if value not in ("0", "1"):
                report.labels.add(f"label {value!r} is not 0/1", row=row, item=key)
                continue
            if sop in labels and labels[sop] != int(value):
                conflicts.add(sop)
                report.labels.add("conflicts with an earlier row", row=row, item=key)
            labels[sop] = int(value)
    for sop in conflicts:
        del labels[sop]
    return labels


def _needs_12bit_fix(ds):
    try:
        return (
            int(ds.BitsStored) == 12
            and int(ds.PixelRepresentation) == 0
            and float(ds.RescaleIntercept) > -100
        )
    except (AttributeError, TypeError, ValueError):
        return False


def fix_12bit_slice(hu, intercept, slope):
    """The RSNA 2019 fix for one slice in HU: stored + 1000, wrap >= 4096, intercept -1000."""
    stored = np.rint((hu - intercept) / slope) + 1000.0
    stored[stored >= 4096] -= 4096
    return (stored * slope - 1000.0).astype(np.float32)


def scan_rsna(args, report):
    """Reads ``stage_2_train.csv`` and every file's header; returns ``(labels, series, headers)``.

    ``series`` maps a SeriesInstanceUID to its files, ``headers`` a file to its header.
    """
    labels = read_rsna_labels(args.labels, report)
    paths = sorted(
        os.path.join(args.dicom_dir, name)
        for name in os.listdir(args.dicom_dir)
        if os.path.isfile(os.path.join(args.dicom_dir, name))
    )
    series, headers = {}, {}
    for path in tqdm(paths, desc="RSNA headers", unit="file"):
        report.inputs.num_rows += 1
        ds, reason = read_header(path)
        if ds is None:
            (report.inputs.ignore if reason in _NOT_AN_IMAGE else report.inputs.add)(
                reason, path=path
            )
            continue
        series.setdefault(str(ds.SeriesInstanceUID), []).append(path)
        headers[path] = ds
    return labels, series, headers


def prepare_rsna(args, writer, report, labels, series, headers):
    fixed = 0
    progress = tqdm(sorted(series), desc="RSNA series", unit="series")
    for uid in progress:
        if args.max_series and len(report.written) >= args.max_series:
            progress.close()
            break
        files = series[uid]
        sops = {path: Path(path).stem for path in files}
        known = [labels[sops[p]] for p in files if sops[p] in labels]
        if not known:
            report.inputs.ignore("no `_any` label for any of its slices", item=f"series {uid}")
            continue
        if len(known) < len(files) and max(known) == 0:
            reason = (
                f"{len(files) - len(known)} of {len(files)} slices have no `_any` label and no "
                "labelled slice is positive, so the volume label is unknown"
            )
            report.inputs.ignore(reason, item=f"series {uid}")
            continue
        try:
            volume = read_series_files(files, args.allow_nonuniform, args.strict)
        except Exception as error:
            report.inputs.ignore(f"{type(error).__name__}: {error}", item=f"series {uid}")
            continue
        if args.fix_12bit:
            for k, path in enumerate(volume.files):
                ds = headers[path]
                if _needs_12bit_fix(ds):
                    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
                    volume.array[k] = fix_12bit_slice(
                        volume.array[k], float(ds.RescaleIntercept), slope
                    )
                    fixed += 1
        slice_labels = np.array([labels.get(sops[p], -1) for p in volume.files], np.int8)
        source = {
            "source": "RSNA 2019",
            "first_slice": Path(volume.files[0]).name,
            "unlabelled_slices": int((slice_labels < 0).sum()),
        }
        label = int(slice_labels.max())
        _write_volume(writer, report, safe_id(uid), volume, label, slice_labels, args, source)
    if fixed:
        report.notes.append(("RSNA 12-bit fix", f"{fixed} slice(s) corrected"))


# ---------------------------------------------------------------- command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="output folder (labels.csv + volumes/)")
    common.add_argument(
        "--slice-size",
        type=non_negative_int,
        default=256,
        help="H = W of the output slices (paper: 256; 0 = keep)",
    )
    common.add_argument(
        "--resize",
        choices=("auto", "max", "area", "linear"),
        default="auto",
        help="auto: the paper's maximum filter when the size divides, else area (shrink) or "
        "linear (enlarge) interpolation",
    )
    common.add_argument(
        "--hu-dtype",
        choices=("int16", "float32"),
        default="int16",
        help="on-disk HU type (int16: rounded to 1 HU, half the size)",
    )
    common.add_argument(
        "--allow-nonuniform",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep series with irregular slice gaps (noted in the report)",
    )
    add_strict_argument(common)
    common.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a volume set already in --out (its labels.csv and volumes/*.npz)",
    )

    cq = sub.add_parser("cq500", parents=[common], help="CQ500 (qure.ai)")
    cq.add_argument("--root", required=True, help="folder holding the extracted CQ500 studies")
    cq.add_argument("--reads", required=True, help="CQ500's reads.csv")
    cq.add_argument("--series-pattern", default=SERIES_PATTERN, help="preferred series (regex)")
    cq.add_argument("--exclude-pattern", default=EXCLUDE_PATTERN, help="series never used (regex)")
    cq.add_argument("--target-thickness", type=float, default=5.0, help="preferred thickness, mm")
    cq.add_argument("--min-slices", type=positive_int, default=10, help="fewest images in a series")
    cq.add_argument(
        "--max-studies", type=positive_int, default=None, help="prepare only the first N"
    )

    rs = sub.add_parser("rsna", parents=[common], help="RSNA 2019 intracranial hemorrhage")
    rs.add_argument("--dicom-dir", required=True, help="folder of ID_*.dcm files")
    rs.add_argument("--labels", required=True, help="stage_2_train.csv (ID,Label)")
    rs.add_argument(
        "--max-series", type=positive_int, default=None, help="stop after N volumes (UID order)"
    )
    rs.add_argument(
        "--fix-12bit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="correct the known 12-bit pixel-representation error of some RSNA slices",
    )
    return parser.parse_args(argv)


def main(argv=None):
    """Runs one subcommand; returns the summary dict that it prints.

    Raises:
        kerasmed.io.LoadError: with ``--strict``, unusable label rows or unreadable DICOM
            files (found before anything is written).
    """
    args = parse_args(argv)
    out = Path(args.out)
    cq500 = args.dataset == "cq500"
    source = Path(args.root if cq500 else args.dicom_dir)
    if not source.is_dir():
        sys.exit(f"Not a folder: {source}")
    if (out / "labels.csv").exists() and not args.overwrite:
        sys.exit(f"{out / 'labels.csv'} already exists (--overwrite replaces it)")
    report = Report(args.dataset, out, args.reads if cq500 else args.labels, source)
    scanned = scan_cq500(args, report) if cq500 else scan_rsna(args, report)
    if args.strict:
        report.check()
    writer = VolumeSetWriter(out, hu_dtype=args.hu_dtype, overwrite=args.overwrite)
    if args.overwrite:  # the old set's volumes go too, so none is left unlisted
        for old in (out / "volumes").glob("*.npz"):
            old.unlink()
    if cq500:
        prepare_cq500(args, writer, report, scanned)
    else:
        prepare_rsna(args, writer, report, *scanned)
    if not report.written:
        report.finish()
        sys.exit(f"No volume could be prepared from {source}; see {out / 'prepare_report.txt'}.")
    writer.close()
    return report.finish()


if __name__ == "__main__":
    run_script(main)
