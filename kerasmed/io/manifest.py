"""Reading a CSV manifest of longitudinal exams (one row per image) into per-patient sequences.

The manifest is a CSV file with a header row and at least the columns ``patient_id``,
``study_date`` and ``image_path``, then one column per label (``1``/``0``, ``true``/``false``,
``yes``/``no``). An optional ``split`` column (``train``/``test``) is kept per patient::

    patient_id,study_date,image_path,cardiomegaly,consolidation,split
    p001,2012-03-04,p001/2012-03-04.png,0,1,train
    p001,2012-09-30,p001/2012-09-30.png,1,1,train

Rows that cannot be used (empty cell, unparsable date, missing image file, invalid label value,
too many fields) and images that cannot be read are never dropped silently: each becomes a
`kerasmed.io.LoadProblem` naming its line in the CSV file (the header is line 1), and the
readers follow the strict rule of `kerasmed.io.report`: ``strict=True`` (default) raises one
error listing them all; ``strict=False`` skips them, warns, and lists them in
``manifest.report``.

``data_prep/longitudinal_manifest.py`` turns a manifest into the ``.npz`` files that
``kerasmed reproduce tlstm --data-dir`` reads (see `kerasmed.io.sequences`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re

import cv2
import numpy as np

from kerasmed.io._csv import check_columns, read_manifest_csv
from kerasmed.io._dicom_tags import modality_lut
from kerasmed.io._npz import NpzMember, load_npz
from kerasmed.io.prep_runner import save_npz_atomic
from kerasmed.io.radiograph import _check_finite
from kerasmed.io.report import LoadReport
from kerasmed.io.sequences import (  # noqa: F401  (re-exported: the manifest's output format)
    LongitudinalSequences,
    load_longitudinal_npz,
    save_longitudinal_npz,
)
from kerasmed.preprocessing.resize import resize_slices
from kerasmed.validation import check_int_tuple

DEFAULT_LABEL_MAP = {
    "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0,
    "true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0,
}  # fmt: skip
_SECONDS_PER_DAY = 86400.0


@dataclasses.dataclass
class LongitudinalManifest:
    """Per-patient sequences read from a manifest, sorted by date (images not loaded yet).

    Attributes:
        ids: patient ids, in order of first appearance in the CSV.
        image_paths: per patient, a tuple of resolved image paths.
        dates: per patient, ``(T_i,)`` ``datetime64[s]`` exam dates.
        labels: per patient, ``(T_i, L)`` float32 multi-hot labels.
        deltas: per patient, ``(T_i,)`` float32 days since the previous exam (0 first).
        rows: per patient, ``(T_i,)`` int64 CSV line numbers of the exams.
        label_names: the label columns.
        splits: per patient, the ``split`` column value, or ``None`` without that column.
        report: the `kerasmed.io.LoadReport` (what was not read, and why).
    """

    ids: tuple
    image_paths: list
    dates: list
    labels: list
    deltas: list
    rows: list
    label_names: tuple
    splits: tuple | None
    report: LoadReport

    def __len__(self):
        return len(self.ids)


def _deltas_in_days(dates):
    seconds = np.diff(dates.astype("datetime64[s]").astype("int64")).astype("float64")
    return np.concatenate([[0.0], seconds / _SECONDS_PER_DAY]).astype("float32")


def _parse_date(value, date_format):
    if date_format is not None:
        return datetime.datetime.strptime(value, date_format)
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        parsed = datetime.datetime.strptime(value, "%Y%m%d")  # DICOM StudyDate
    if parsed.tzinfo is not None:  # a time-zone offset: compare the exams in UTC
        parsed = parsed.astimezone(datetime.timezone.utc)
    return parsed.replace(tzinfo=None)


def _parse_exam(row, columns, label_columns, label_map, date_format, root, check_files):
    """Reads one manifest row; returns ``(date, image path, labels)`` and its problems.

    `columns` are the patient, date and image column names (then the split column, if any),
    which must not be empty; each problem is a ``(reason, where)`` pair, ``where`` holding the
    `kerasmed.io.LoadProblem` fields.
    """
    date_column, image_column = columns[1:3]
    cells, faults = row.cells, []
    for c in columns:
        if not cells[c]:
            faults.append(("missing value", {"column": c, "value": row.raw.get(c)}))
    date = path = None
    if cells[date_column]:
        try:
            date = np.datetime64(_parse_date(cells[date_column], date_format), "s")
        except ValueError:
            faults.append(("unparsable date", {"column": date_column, "value": cells[date_column]}))
    if cells[image_column]:
        path = os.path.normpath(os.path.join(root, cells[image_column]))
        if check_files and not os.path.isfile(path):
            where = {"path": path, "column": image_column, "value": cells[image_column]}
            faults.append((f"image file not found: {path}", where))
    values = []
    for c in label_columns:
        value = label_map.get(cells[c].lower())
        if value is None:
            faults.append(("invalid label value", {"column": c, "value": row.raw.get(c)}))
        values.append(value)
    return (date, path, values), faults


def read_longitudinal_manifest(
    csv_path,
    label_columns=None,
    image_root=None,
    date_format=None,
    strict=True,
    check_files=True,
    label_map=None,
    patient_column="patient_id",
    date_column="study_date",
    image_column="image_path",
    split_column="split",
) -> LongitudinalManifest:
    """Reads a manifest CSV into per-patient exam sequences sorted by date.

    Args:
        csv_path: the CSV file (UTF-8, header row; see the module docstring).
        label_columns: label column names, in output order; ``None`` uses every column except
            the patient, date, image and split columns, in header order.
        image_root: folder that relative image paths start from; ``None`` uses the CSV's folder.
        date_format: a ``datetime.strptime`` format such as ``"%d/%m/%Y"``; ``None`` accepts
            ISO 8601 dates (``2012-03-04``, ``2012-03-04T10:30``; with a time-zone offset,
            ``2012-03-04T10:30+02:00``, they are converted to UTC, dates without one are
            taken as they are) and DICOM ``20120304``. Two exams of one patient at the same
            date and time are a problem (the second names the first's row).
        strict: if True (default), any unusable row raises a `kerasmed.io.LoadError` (a
            ``ValueError``) listing every one; if False they are skipped, warned about and
            listed in ``manifest.report``.
        check_files: report rows whose image file does not exist.
        label_map: lower-case cell text -> label value; defaults to ``1/0``, ``1.0/0.0``,
            ``true/false`` and ``yes/no``. Pass e.g. ``{**DEFAULT_LABEL_MAP, "": 0.0}`` to read
            blank cells as negative. Any other text is a problem.
        patient_column: name of the patient id column.
        date_column: name of the exam date column.
        image_column: name of the image path column.
        split_column: name of the optional per-patient split column.

    Returns:
        A `LongitudinalManifest`; ``manifest.report`` lists the skipped rows with their
        CSV line numbers.

    Raises:
        FileNotFoundError: if `csv_path` does not exist.
        ValueError: if the file is not UTF-8 CSV, a required column is missing from the
            header, or (``strict=True``) any row is unusable.

    Example:

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.csv").write_text(
    ...     "patient_id,study_date,image_path,effusion\\n"
    ...     "p1,2012-03-10,b.png,1\\np1,2012-03-01,a.png,0\\np2,2013-01-01,c.png,maybe\\n")
    >>> m = read_longitudinal_manifest(folder / "m.csv", check_files=False, strict=False)
    >>> m.ids, m.deltas[0].tolist(), m.report.skipped_rows
    (('p1',), [0.0, 9.0], [4])
    """
    csv_path, header, csv_rows, root = read_manifest_csv(csv_path, image_root)
    label_map = DEFAULT_LABEL_MAP if label_map is None else label_map
    label_map = {str(k).strip().lower(): float(v) for k, v in label_map.items()}
    columns = [patient_column, date_column, image_column]
    if label_columns is None:
        label_columns = [h for h in header if h not in {*columns, split_column}]
    label_columns = [str(c) for c in label_columns]
    required = [*columns, *label_columns] + ([] if label_columns else ["<a label column>"])
    check_columns(csv_path, header, required, f"{columns} plus at least one label column")
    has_split = split_column in header
    if has_split:
        columns.append(split_column)
    report = LoadReport(source=csv_path)
    exams, splits = {}, {}  # patient -> list of (date, row, path, labels); patient -> split
    dates_seen = {}  # (patient, date) -> first row
    for row in csv_rows:
        report.num_rows += 1
        exam, faults = _parse_exam(
            row, columns, label_columns, label_map, date_format, root, check_files
        )
        reason = row.fields_reason(header)
        if reason:
            faults.insert(0, (reason, {}))
        patient, split = row.cells[patient_column], row.cells.get(split_column, "")
        if exam[0] is not None and patient:
            first = dates_seen.setdefault((patient, exam[0]), row.line)
            if first != row.line:
                reason = f"duplicate {date_column} of patient {patient!r} (first at row {first})"
                faults.append((reason, {"column": date_column, "value": row.cells[date_column]}))
        if split and patient in splits and split != splits[patient]:
            reason = f"patient {patient!r} is already in split {splits[patient]!r}"
            faults.append((reason, {"column": split_column, "value": split}))
        for reason, where in faults:
            report.add(reason, row=row.line, **where)
        if faults:
            continue
        if has_split:
            splits.setdefault(patient, split)
        exams.setdefault(patient, []).append((exam[0], row.line, *exam[1:]))
    report.raise_or_warn(strict, "row(s)")
    ids, paths, dates, labels, deltas, rows = [], [], [], [], [], []
    for patient, items in exams.items():
        items = sorted(items, key=lambda item: (item[0], item[1]))
        ids.append(patient)
        dates.append(np.array([item[0] for item in items], dtype="datetime64[s]"))
        rows.append(np.array([item[1] for item in items], dtype="int64"))
        paths.append(tuple(item[2] for item in items))
        labels.append(np.array([item[3] for item in items], dtype="float32"))
        deltas.append(_deltas_in_days(dates[-1]))
    return LongitudinalManifest(
        ids=tuple(ids),
        image_paths=paths,
        dates=dates,
        labels=labels,
        deltas=deltas,
        rows=rows,
        label_names=tuple(label_columns),
        splits=tuple(splits[p] for p in ids) if has_split else None,
        report=report,
    )


def _read_dicom_exam(path):
    """The modality and VOI LUTs of a single-frame DICOM file, float32, and its dataset."""
    import pydicom
    from pydicom.pixels import apply_voi_lut

    try:
        ds = pydicom.dcmread(path)
        image = apply_voi_lut(modality_lut(ds.pixel_array, ds), ds).astype("float32")
    except Exception as error:  # not DICOM, truncated, no pixel data, RescaleSlope 0...
        raise ValueError(
            f"cannot read the DICOM file {path} ({type(error).__name__}: {error}). "
            f"Received: path={path!r}"
        ) from error
    if image.ndim != 2:
        raise ValueError(
            f"Expected a single-frame grey DICOM image in {path}. Received: shape={image.shape}"
        )
    return image, ds


def read_exam_image(path, image_size=None):
    """Reads one exam as a grey-level float32 image in ``[0, 1]``, optionally resized.

    PNG/JPEG/TIFF are read with OpenCV (colour is converted to grey; 8- and 16-bit values are
    divided by their maximum). ``.dcm`` files are read with pydicom: the modality and VOI LUTs
    (rescale slope/intercept, window centre/width) are applied, ``MONOCHROME1`` is inverted,
    and the result is min-max scaled.

    Args:
        path: the image file.
        image_size: ``(height, width)`` or an int for a square; ``None`` keeps the size.
            Resizing uses `kerasmed.preprocessing.resize_slices` with ``"area"``.

    Returns:
        A ``(H, W)`` float32 array.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file cannot be decoded as a 2-D image (the message names it), or
            has NaN or infinite pixels.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such image file: {path}")
    if path.lower().endswith(".dcm"):
        image, ds = _read_dicom_exam(path)
        if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
            image = image.max() - image
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    else:
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"OpenCV cannot decode the image file {path}. Received: path={path!r}")
        if raw.ndim == 3:
            raw = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2GRAY)
        scale = np.iinfo(raw.dtype).max if np.issubdtype(raw.dtype, np.integer) else 1.0
        image = raw.astype("float32") / np.float32(scale)
        _check_finite(image, path)
    if image_size is not None:
        image = resize_slices(image[None], check_int_tuple(image_size, "image_size", 2), "area")[0]
    return np.clip(image, 0.0, 1.0).astype("float32")


def read_patient_exams(paths, image_size=(299, 299)):
    """Reads the exam images of one patient: the work of `load_manifest_images` per patient.

    Args:
        paths: the patient's image files, in exam order (``manifest.image_paths[i]``).
        image_size: ``(height, width)`` or an int; every image is resized to it (``None``
            keeps the sizes, which must then agree).

    Returns:
        ``(images, failures)``: the ``(K, H, W)`` float32 images of the ``K`` exams that could
        be read, in order, and a list of ``(position, reason)`` for the others (``reason``
        names the file).

    Example:

    >>> images, failures = read_patient_exams(["/no/such.png"], image_size=4)
    >>> images.shape, failures[0][0], failures[0][1].startswith("cannot read image: No such")
    ((0, 4, 4), 0, True)
    """
    size = None if image_size is None else check_int_tuple(image_size, "image_size", 2)
    stack, failures = [], []
    for j, path in enumerate(paths):
        try:
            stack.append(read_exam_image(path, size))
        except (OSError, ValueError) as error:
            failures.append((j, f"cannot read image: {error}"))
    images = np.stack(stack) if stack else np.zeros((0, *(size or (0, 0))), "float32")
    return images, failures


def save_patient_exams(args):
    """Reads one patient's exams (`read_patient_exams`) and saves the images to an ``.npz`` file.

    The work function of ``data_prep/longitudinal_manifest.py``, which
    `kerasmed.io.prep_runner.run_prep` runs in worker processes; `load_patient_exams` reads
    the result back.

    Args:
        args: ``(folder, name, paths, image_size)``: the file ``folder/name`` (written
            atomically, key ``images``), the patient's image paths and the size.

    Returns:
        The task's record, JSON-serialisable: ``{"outputs": [name], "failures": [[position,
        reason], ...]}``.
    """
    folder, name, paths, image_size = args
    images, failures = read_patient_exams(paths, image_size)
    save_npz_atomic(os.path.join(folder, name), images=images)
    return {"outputs": [name], "failures": [[int(j), str(reason)] for j, reason in failures]}


def load_patient_exams(folder, record, lazy=False):
    """``(images, failures)`` of a patient saved by `save_patient_exams` (from its record).

    With ``lazy=True`` the images stay in their file: they are a
    `kerasmed.io._npz.NpzMember` (shape and dtype known, read by ``np.asarray``), so that the
    parts of every patient can be gathered and written out one at a time
    (`save_longitudinal_npz`) without holding the whole set.
    """
    path = os.path.join(folder, record["outputs"][0])
    images = NpzMember(path, "images") if lazy else load_npz(path, ("images",), "patient")["images"]
    return images, [(int(j), reason) for j, reason in record["failures"]]


def sequences_from_exams(manifest: LongitudinalManifest, exams, strict=True):
    """Builds the `LongitudinalSequences` of `manifest` from each patient's read exams.

    Args:
        manifest: a `LongitudinalManifest` from `read_longitudinal_manifest`.
        exams: one ``(images, failures)`` per patient of `manifest`, as `read_patient_exams`
            returns them (read here, in worker processes, or earlier).
        strict: the strict rule of `kerasmed.io.report` for the failures (see
            `load_manifest_images`).

    Returns:
        A `LongitudinalSequences`, as `load_manifest_images` returns it.
    """
    sequences = _sequences_from_exams(manifest, exams)
    sequences.report.raise_or_warn(strict, "image(s)", since=manifest.report.mark())
    return sequences


def _sequences_from_exams(manifest, exams):
    if len(exams) != len(manifest):
        raise ValueError(
            f"`exams` must have one entry per patient ({len(manifest)}). "
            f"Received: len(exams)={len(exams)}"
        )
    images, labels, deltas, ids = [], [], [], []
    report = manifest.report.copy()
    for i, (patient, (stack, failures)) in enumerate(zip(manifest.ids, exams)):
        failed = set()
        for j, reason in failures:
            path = manifest.image_paths[i][j]
            where = {"path": path, "column": "image_path", "value": path}
            report.add(reason, row=int(manifest.rows[i][j]), **where)
            failed.add(int(j))
        keep = [j for j in range(len(manifest.image_paths[i])) if j not in failed]
        if len(keep) != len(stack):
            raise ValueError(
                f"Patient {patient!r}: {len(keep)} readable exams but {len(stack)} images. "
                f"Received: images.shape={np.shape(stack)}, failures={failures}"
            )
        if keep:
            ids.append(patient)
            images.append(stack if isinstance(stack, NpzMember) else np.asarray(stack))
            labels.append(manifest.labels[i][keep])
            deltas.append(_deltas_in_days(manifest.dates[i][keep]))
    return LongitudinalSequences(
        images=images,
        labels=labels,
        deltas=deltas,
        label_names=manifest.label_names,
        ids=tuple(ids),
        delta_unit="days",
        report=report,
    )


def load_manifest_images(manifest: LongitudinalManifest, image_size=(299, 299), strict=True):
    """Loads and resizes every image of a manifest into a `LongitudinalSequences`.

    Every image is read; one that cannot be read is a problem (a `kerasmed.io.LoadProblem`
    naming its CSV line and file), handled by the strict rule of `kerasmed.io.report`. Without
    strictness the exam is skipped and the time lapses of that patient are recomputed from the
    remaining dates; a patient left with no exam is dropped (its exams are listed).
    ``data_prep/longitudinal_manifest.py`` does the same in worker processes, one patient at a
    time (`read_patient_exams`, then `sequences_from_exams`).

    Args:
        manifest: a `LongitudinalManifest` from `read_longitudinal_manifest`.
        image_size: ``(height, width)`` or an int; every image is resized to it.
        strict: if True (default), any unreadable image raises a `kerasmed.io.LoadError` (a
            ``ValueError``) listing every one; if False they are skipped and warned about.

    Returns:
        A `LongitudinalSequences` (``delta_unit="days"``, ``ids`` = the patients kept) whose
        ``report`` is a copy of ``manifest.report`` extended with the images not read
        (``manifest.report`` itself is unchanged).
    """
    exams = [read_patient_exams(paths, image_size) for paths in manifest.image_paths]
    sequences = _sequences_from_exams(manifest, exams)
    sequences.report.raise_or_warn(strict, "image(s)", since=manifest.report.mark())
    return sequences


def item_key(name, files, details=None):
    """A journal key (`kerasmed.io.prep_runner.PrepTask`) for one item of a manifest.

    The key is `name` made file-safe, then a digest of `name`, `details` (JSON-serialisable:
    what else the item's output depends on) and the path, size and modification time of each
    of `files`: an item whose files or rows change gets another key, so a rerun of a
    ``data_prep/`` script prepares it again instead of resuming it.

    Example:

    >>> key = item_key("p/1", ["/no/such/file.png"])
    >>> key.startswith("p_1-"), len(key), key == item_key("p/1", ["/no/such/file.png"])
    (True, 20, True)
    """
    stats = []
    for path in files:
        path = os.fspath(path)
        try:
            info = os.stat(path)
            stats.append([path, info.st_size, info.st_mtime_ns])
        except OSError:
            stats.append([path, None, None])
    text = json.dumps([str(name), details, stats])
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", str(name))[:48]
    return f"{safe}-{digest}"
