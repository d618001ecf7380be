"""Reading a CSV manifest of longitudinal exams (one row per image) into per-patient sequences.

The manifest is a CSV file with a header row and at least the columns ``patient_id``,
``study_date`` and ``image_path``, then one column per label (``1``/``0``, ``true``/``false``,
``yes``/``no``). An optional ``split`` column (``train``/``test``) is kept per patient::

    patient_id,study_date,image_path,cardiomegaly,consolidation,split
    p001,2012-03-04,p001/2012-03-04.png,0,1,train
    p001,2012-09-30,p001/2012-09-30.png,1,1,train

Rows that cannot be used (empty cell, unparsable date, missing image file, invalid label value,
wrong number of fields) are never dropped silently: each becomes a `ManifestProblem` naming its
line in the CSV file (the header is line 1), the list is returned in ``manifest.report``, a
warning lists them, and ``strict=True`` raises instead.

``data_prep/longitudinal_manifest.py`` turns a manifest into the ``.npz`` files that
``kerasmed reproduce tlstm --data-dir`` reads (see `kerasmed.io.sequences`).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import os
import warnings

import cv2
import numpy as np

from kerasmed.io.sequences import (  # noqa: F401  (re-exported: the manifest's output format)
    LongitudinalSequences,
    load_longitudinal_npz,
    save_longitudinal_npz,
)

DEFAULT_LABEL_MAP = {
    "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0,
    "true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0,
}  # fmt: skip
_SECONDS_PER_DAY = 86400.0
_MAX_LISTED = 20
_EXTRA = "\0extra"  # DictReader key of the fields beyond the header


@dataclasses.dataclass(frozen=True)
class ManifestProblem:
    """One unusable manifest row (or image): its CSV line, the column and value at fault."""

    row: int
    message: str
    column: str | None = None
    value: str | None = None

    def __str__(self):
        where = f" [{self.column}={self.value!r}]" if self.column is not None else ""
        return f"row {self.row}: {self.message}{where}"


@dataclasses.dataclass
class ManifestReport:
    """What happened to the rows of a manifest.

    Attributes:
        path: the CSV file.
        num_rows: data rows read (header excluded).
        problems: one `ManifestProblem` per fault; a row with any fault is skipped.
    """

    path: str
    num_rows: int = 0
    problems: list = dataclasses.field(default_factory=list)

    @property
    def skipped_rows(self) -> list:
        """CSV line numbers of the skipped rows, sorted."""
        return sorted({p.row for p in self.problems})

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self):
        head = f"{self.path}: {self.num_rows} rows, {len(self.skipped_rows)} skipped"
        lines = [str(p) for p in self.problems[:_MAX_LISTED]]
        if len(self.problems) > _MAX_LISTED:
            lines.append(f"... and {len(self.problems) - _MAX_LISTED} more problems")
        return "\n  ".join([head, *lines])


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
        report: the `ManifestReport`.
    """

    ids: tuple
    image_paths: list
    dates: list
    labels: list
    deltas: list
    rows: list
    label_names: tuple
    splits: tuple | None
    report: ManifestReport

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
    return parsed.replace(tzinfo=None)


def _problems_error(report, strict):
    if report.problems:
        text = f"Unusable manifest rows (skipped):\n  {report}"
        if strict:
            raise ValueError(text + "\nReceived: strict=True")
        warnings.warn(text, stacklevel=3)


def read_longitudinal_manifest(
    csv_path,
    label_columns=None,
    image_root=None,
    date_format=None,
    strict=False,
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
            ISO 8601 dates (``2012-03-04``, ``2012-03-04T10:30``) and DICOM ``20120304``.
        strict: raise ``ValueError`` listing every unusable row instead of skipping them.
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
        ValueError: if a required column is missing from the header, or (``strict=True``) if
            any row is unusable.

    Example:

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.csv").write_text(
    ...     "patient_id,study_date,image_path,effusion\\n"
    ...     "p1,2012-03-10,b.png,1\\np1,2012-03-01,a.png,0\\np2,2013-01-01,c.png,maybe\\n")
    >>> m = read_longitudinal_manifest(folder / "m.csv", check_files=False)
    >>> m.ids, m.deltas[0].tolist(), m.report.skipped_rows
    (('p1',), [0.0, 9.0], [4])
    """
    csv_path = os.fspath(csv_path)
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"No such manifest file: {csv_path}")
    root = os.fspath(image_root) if image_root is not None else os.path.dirname(csv_path)
    label_map = DEFAULT_LABEL_MAP if label_map is None else label_map
    label_map = {str(k).strip().lower(): float(v) for k, v in label_map.items()}
    report = ManifestReport(path=csv_path)
    exams = {}  # patient -> list of (date, row, path, labels)
    splits = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, restkey=_EXTRA)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        required = [patient_column, date_column, image_column]
        if label_columns is None:
            skip = {*required, split_column}
            label_columns = [h for h in header if h not in skip]
        label_columns = [str(c) for c in label_columns]
        missing = [c for c in [*required, *label_columns] if c not in header]
        if missing or not label_columns:
            raise ValueError(
                f"{csv_path} (row 1, header): missing columns {missing or 'for labels'}; need "
                f"{required} plus at least one label column. Received: header={header}"
            )
        has_split = split_column in header
        for record in reader:
            row, faults = reader.line_num, []
            report.num_rows += 1
            if _EXTRA in record:
                count = len(header) + len(record[_EXTRA])
                faults.append((f"{count} fields, the header has {len(header)}", None, None))
            cells = {c: (record.get(c) or "").strip() for c in header}
            for c in required + ([split_column] if has_split else []):
                if not cells[c]:
                    faults.append(("missing value", c, record.get(c)))
            date = path = None
            if cells[date_column]:
                try:
                    date = _parse_date(cells[date_column], date_format)
                except ValueError:
                    faults.append(("unparsable date", date_column, cells[date_column]))
            if cells[image_column]:
                path = os.path.normpath(os.path.join(root, cells[image_column]))
                if check_files and not os.path.isfile(path):
                    faults.append(
                        (f"image file not found: {path}", image_column, cells[image_column])
                    )
            values = []
            for c in label_columns:
                value = label_map.get(cells[c].lower())
                if value is None:
                    faults.append(("invalid label value", c, record.get(c)))
                values.append(value)
            patient = cells[patient_column]
            if has_split and cells[split_column] and patient in splits:
                if cells[split_column] != splits[patient]:
                    faults.append(
                        (
                            f"patient {patient!r} is already in split {splits[patient]!r}",
                            split_column,
                            cells[split_column],
                        )
                    )
            if faults:
                report.problems.extend(ManifestProblem(row, *fault) for fault in faults)
                continue
            if has_split:
                splits.setdefault(patient, cells[split_column])
            exams.setdefault(patient, []).append((np.datetime64(date, "s"), row, path, values))
    _problems_error(report, strict)
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


def read_exam_image(path, image_size=None):
    """Reads one exam as a grey-level float32 image in ``[0, 1]``, optionally resized.

    PNG/JPEG/TIFF are read with OpenCV (colour is converted to grey; 8- and 16-bit values are
    divided by their maximum). ``.dcm`` files are read with pydicom: the modality and VOI LUTs
    (rescale slope/intercept, window centre/width) are applied, ``MONOCHROME1`` is inverted,
    and the result is min-max scaled.

    Args:
        path: the image file.
        image_size: ``(height, width)`` or an int for a square; ``None`` keeps the size.
            Resizing uses ``cv2.INTER_AREA``.

    Returns:
        A ``(H, W)`` float32 array.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file cannot be decoded as a 2-D image.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such image file: {path}")
    if path.lower().endswith(".dcm"):
        import pydicom
        from pydicom.pixels import apply_modality_lut, apply_voi_lut

        ds = pydicom.dcmread(path)
        image = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype("float32")
        if image.ndim != 2:
            raise ValueError(
                f"Expected a single-frame grey DICOM image. Received: shape={image.shape} in {path}"
            )
        if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
            image = image.max() - image
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    else:
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"OpenCV cannot decode the image file {path}")
        if raw.ndim == 3:
            raw = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2GRAY)
        scale = np.iinfo(raw.dtype).max if np.issubdtype(raw.dtype, np.integer) else 1.0
        image = raw.astype("float32") / np.float32(scale)
    if image_size is not None:
        height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
        image = cv2.resize(image, (int(width), int(height)), interpolation=cv2.INTER_AREA)
    return np.clip(image, 0.0, 1.0).astype("float32")


def load_manifest_images(manifest: LongitudinalManifest, image_size=(299, 299), strict=False):
    """Loads and resizes every image of a manifest into a `LongitudinalSequences`.

    Exams whose image cannot be read are skipped and reported (``manifest.report`` gains a
    `ManifestProblem` per image, with its CSV line); the time lapses of that patient are
    recomputed from the remaining dates. A patient left with no exam is dropped (and reported).

    Args:
        manifest: a `LongitudinalManifest` from `read_longitudinal_manifest`.
        image_size: ``(height, width)`` or an int; every image is resized to it.
        strict: raise ``ValueError`` on the first unreadable image instead.

    Returns:
        A `LongitudinalSequences` (``delta_unit="days"``, ``ids`` = the patients kept).
    """
    images, labels, deltas, ids = [], [], [], []
    problems_before = len(manifest.report.problems)
    for i, patient in enumerate(manifest.ids):
        keep, stack = [], []
        for j, path in enumerate(manifest.image_paths[i]):
            try:
                stack.append(read_exam_image(path, image_size))
                keep.append(j)
            except (OSError, ValueError) as error:
                row = int(manifest.rows[i][j])
                if strict:
                    raise ValueError(f"row {row}: cannot read image {path}: {error}") from error
                manifest.report.problems.append(
                    ManifestProblem(row, f"cannot read image: {error}", "image_path", path)
                )
        if not keep:
            continue
        ids.append(patient)
        images.append(np.stack(stack))
        labels.append(manifest.labels[i][keep])
        deltas.append(_deltas_in_days(manifest.dates[i][keep]))
    new = manifest.report.problems[problems_before:]
    if new:
        warnings.warn(
            "Unreadable images (exams skipped):\n  " + "\n  ".join(map(str, new[:_MAX_LISTED])),
            stacklevel=2,
        )
    return LongitudinalSequences(
        images=images,
        labels=labels,
        deltas=deltas,
        label_names=manifest.label_names,
        ids=tuple(ids),
        delta_unit="days",
    )
