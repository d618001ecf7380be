"""CQ500 and RSNA 2019 head CTs as volumes (paper 001): label files, study folders, one volume each.

The data-set steps of ``data_prep/head_ct_ich.py`` (its docstring describes both data sets and
the rules):

- `read_cq500_reads` / `find_cq500_studies`: CQ500's ``reads.csv`` (volume label = majority of
  three reads) and its study folders;
- `read_rsna_labels`: the ``_any`` rows of RSNA's ``stage_2_train.csv``;
- `HeadCTReport`: what a run wrote and skipped (``prepare_report.txt``, ``sources.csv``);
- `scan_study_headers` / `scan_header_files`: the work of one header task (a CQ500 study, a
  chunk of RSNA's files): the headers, grouped by series, as a JSON record;
- `prepare_cq500_study` / `prepare_rsna_series`: the work of one `kerasmed.io.prep_runner` task:
  read the series, build the HU volume, write ``volumes/<volume_id>.npz`` atomically
  (`kerasmed.io.volume_writer.write_volume_file`) and return the task's record (its
  ``labels.csv`` row, its ``sources.csv`` row and the notes), or why it was skipped.

Example:

>>> import tempfile
>>> from kerasmed.io.report import LoadReport
>>> folder = tempfile.mkdtemp()
>>> reads, train = os.path.join(folder, "reads.csv"), os.path.join(folder, "stage_2_train.csv")
>>> _ = open(reads, "w").write("name,Category,R1:ICH,R2:ICH,R3:ICH\\nCQ500-CT-7,B1,1,0,1\\n")
>>> _ = open(train, "w").write("ID,Label\\nID_a_any,1\\nID_a_epidural,1\\nID_b_any,0\\n")
>>> read_cq500_reads(reads, LoadReport(reads)), read_rsna_labels(train, LoadReport(train))
({7: ('CQ500-CT-7', 'B1', 1)}, {'ID_a': 1, 'ID_b': 0})
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np

from kerasmed.io.head_ct_series import (
    fix_12bit_slice,
    group_study_series,
    needs_12bit_fix,
    read_header,
    read_series_files,
    resize_volume,
)
from kerasmed.io.prep_runner import write_text_atomic
from kerasmed.io.report import LoadError, LoadReport, write_prepare_report
from kerasmed.io.volume_writer import write_volume_file
from kerasmed.io.volumes import VOLUMES_DIR

__all__ = [
    "HeadCTReport",
    "READER_COLUMNS",
    "find_cq500_studies",
    "prepare_cq500_study",
    "prepare_rsna_series",
    "read_cq500_reads",
    "read_rsna_labels",
    "scan_header_files",
    "scan_study_headers",
]

READER_COLUMNS = ("R1:ICH", "R2:ICH", "R3:ICH")
CQ500_FOLDER = re.compile(r"^cq500[\s_-]*ct[\s_-]*(\d+)", re.IGNORECASE)


# ---------------------------------------------------------------- label files and folders


def read_cq500_reads(path, report):
    """``{study number: (name, category, label)}`` from CQ500's ``reads.csv`` (majority of 3).

    Args:
        path: ``reads.csv`` (columns ``name`` = ``CQ500-CT-<n>``, ``Category``, ``R1:ICH``,
            ``R2:ICH``, ``R3:ICH``, others ignored).
        report: a `kerasmed.io.LoadReport` that gets a problem per unusable row.

    Raises:
        ValueError: a column is missing (naming the file and the header).
    """
    reads = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in ("name", *READER_COLUMNS) if c not in header]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}. Received: header={header}")
        reader.fieldnames = header
        for record in reader:
            row, report.num_rows = reader.line_num, report.num_rows + 1
            name = (record.get("name") or "").strip()
            match = CQ500_FOLDER.match(name)
            if not match:
                report.add("name is not CQ500-CT-<number>", row=row, value=name, column="name")
                continue
            votes = []
            for column in READER_COLUMNS:
                value = (record.get(column) or "").strip()
                try:
                    vote = float(value)
                except ValueError:
                    vote = None
                if vote not in (0.0, 1.0):
                    report.add(f"{column}={value!r} is not 0/1", row=row, item=name)
                    break
                votes.append(int(vote))
            else:
                number = int(match.group(1))
                if number in reads:
                    report.add("duplicate study name", row=row, item=name)
                    continue
                label = int(sum(votes) >= 2)
                reads[number] = (name, (record.get("Category") or "").strip(), label)
    return reads


def find_cq500_studies(root, report):
    """``{study number: folder}``: the outermost folders named ``CQ500CT<n>``/``CQ500-CT-<n>``.

    A second folder of one study number is a problem of `report` (a `kerasmed.io.LoadReport`).

    Example:

    >>> import tempfile
    >>> from kerasmed.io.report import LoadReport
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "CQ500-CT-3", "CQ500CT3 CQ500CT3", "Unknown Study"))
    >>> {n: os.path.relpath(f, root) for n, f in find_cq500_studies(root, LoadReport(root)).items()}
    {3: 'CQ500-CT-3'}
    """
    studies = {}
    for folder, dirs, _ in os.walk(root):
        dirs.sort()
        keep = []
        for name in dirs:
            match = CQ500_FOLDER.match(name)
            if not match:
                keep.append(name)
                continue
            number, path = int(match.group(1)), os.path.join(folder, name)
            if number in studies:
                reason = f"second folder for study {number} (using {studies[number]})"
                report.add(reason, path=path)
            else:
                studies[number] = path
        dirs[:] = keep  # do not descend into a study: its files are read as one study
    return studies


def read_rsna_labels(path, report):
    """``{sop id: 0/1}`` from the ``_any`` rows of ``stage_2_train.csv`` (conflicts dropped).

    Rows that cannot be used (not two fields, a label other than 0/1, an ``_any`` label that
    contradicts an earlier row of the same slice) are problems of `report` (a
    `kerasmed.io.LoadReport`); both rows of a conflict leave the slice unlabelled. The
    module's example reads one.
    """
    labels, conflicts = {}, set()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["ID", "Label"]:
            raise ValueError(f"{path}: expected the header ID,Label. Received: header={header}")
        for fields in reader:
            if not fields:
                continue
            report.num_rows += 1
            row = reader.line_num
            if len(fields) != 2:
                report.add(f"{len(fields)} fields, expected 2", row=row)
                continue
            key, value = fields[0].strip(), fields[1].strip()
            sop, _, kind = key.rpartition("_")
            if kind != "any":
                continue
            if value not in ("0", "1"):
                report.add(f"label {value!r} is not 0/1", row=row, item=key)
                continue
            if sop in labels and labels[sop] != int(value):
                conflicts.add(sop)
                report.add("conflicts with an earlier row", row=row, item=key)
            labels[sop] = int(value)
    for sop in conflicts:
        del labels[sop]
    return labels


# ---------------------------------------------------------------- the report of a run


class HeadCTReport:
    """What a run of ``data_prep/head_ct_ich.py`` wrote and did not, printed and saved as
    ``prepare_report.txt`` (with ``sources.csv``).

    ``labels`` (a `kerasmed.io.LoadReport`) reports the rows of the label file (CQ500's
    ``reads.csv``, RSNA's ``stage_2_train.csv``), ``inputs`` the study folders, series and DICOM
    files; `add_record` takes in the record of each volume task; ``run`` counts the tasks
    computed now and resumed.

    Example:

    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> report = HeadCTReport("cq500", out, "reads.csv", "cq500")
    >>> report.add_record({"skipped": "no usable series: no DICOM images"}, "CQ500-CT-9")
    >>> report.add_record({"row": ["CQ500-CT-1", 1, 30], "notes": [], "source": {"a": 1}}, "x")
    >>> summary = report.finish()  # doctest: +ELLIPSIS
    {...
      "volumes_written": 1,
      "positives": 1,
    ...
      CQ500-CT-9: no usable series: no DICOM images
    ...
    >>> open(os.path.join(out, "sources.csv")).read()
    'a\\n1\\n'
    """

    def __init__(self, dataset, out, labels_path, source):
        self.dataset, self.out = dataset, Path(out)
        self.labels = LoadReport(os.fspath(labels_path))
        self.inputs = LoadReport(os.fspath(source), unit="files")
        self.written, self.notes, self.sources, self.rows = [], [], [], []
        self.run = {"computed": 0, "resumed": 0, "workers": 0}
        self.fixed = 0  # slices corrected by the RSNA 12-bit fix

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

    def add_record(self, record, item):
        """Takes in the record of one volume task (`prepare_cq500_study`,
        `prepare_rsna_series`): a volume written, or an input skipped (`item`) and why."""
        if "skipped" in record:
            self.inputs.ignore(record["skipped"], item=item)
            return
        volume_id, label, _ = record["row"]
        self.rows.append(record["row"])
        self.written.append((volume_id, label))
        self.notes.extend((volume_id, note) for note in record["notes"])
        self.sources.append(record["source"])
        self.fixed += record.get("fixed", 0)

    def summary(self):
        """Counts of what was written and skipped, and of the tasks (a JSON-friendly dict)."""
        labels = [label for _, label in self.written]
        return {
            "dataset": self.dataset,
            "out": str(self.out),
            "volumes_written": len(self.written),
            "positives": int(sum(labels)),
            "negatives": int(len(labels) - sum(labels)),
            "skipped": len(self.labels.skipped) + len(self.inputs.skipped),
            "notes": len(self.notes),
            **self.run,
        }

    def finish(self):
        """Writes ``sources.csv`` and ``prepare_report.txt`` (printed); returns the summary."""
        summary = self.summary()
        notes = [f"Notes ({len(self.notes)}):"]
        notes += [f"  {what}: {note}" for what, note in self.notes] or ["  none"]
        if self.sources:
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(self.sources[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.sources)
            write_text_atomic(self.out / "sources.csv", text.getvalue())
        write_prepare_report(self.out, summary, self.labels, self.inputs, "\n".join(notes))
        return summary


# ---------------------------------------------------------------- headers (in a worker)


def scan_study_headers(folder):
    """Work of one CQ500 header task: the study's series (`group_study_series`); its record.

    Returns:
        ``{"outputs": [], "series": [...], "unreadable": [[path, reason], ...]}``.

    Example:

    >>> import tempfile
    >>> scan_study_headers(tempfile.mkdtemp())
    {'outputs': [], 'series': [], 'unreadable': []}
    """
    series, unreadable = group_study_series(folder)
    return {"outputs": [], "series": series, "unreadable": [list(item) for item in unreadable]}


def scan_header_files(task):
    """Work of one RSNA header task: the header of each file ``(folder, names)``; its record.

    Returns:
        ``{"outputs": [], "files": [[name, series_uid, fix, reason], ...]}`` in the order of
        `names`: ``series_uid`` (None when `read_header` refused the file, ``reason`` then says
        why) and ``fix``, ``[intercept, slope]`` when the slice needs the RSNA 12-bit fix
        (`needs_12bit_fix`), else None.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, "README.txt"), "w").write("not dicom")
    >>> scan_header_files((folder, ["README.txt"]))
    {'outputs': [], 'files': [['README.txt', None, None, 'not a DICOM file']]}
    """
    folder, names = task
    files = []
    for name in names:
        ds, reason = read_header(os.path.join(folder, name))
        if ds is None:
            files.append([name, None, None, reason])
            continue
        fix = None
        if needs_12bit_fix(ds):
            fix = [float(ds.RescaleIntercept), float(ds.get("RescaleSlope", 1.0) or 1.0)]
        files.append([name, str(ds.SeriesInstanceUID), fix, None])
    return {"outputs": [], "files": files}


# ---------------------------------------------------------------- one volume (in a worker)


def _write_volume(task, volume, label, slice_labels, source):
    """Resizes and writes one volume; returns its record (row, notes, ``sources.csv`` row)."""
    options, volume_id = task["options"], task["volume_id"]
    hu, spacing, used = resize_volume(
        volume.array, volume.spacing, options["slice_size"], options["resize"]
    )
    _, row = write_volume_file(
        task["out"], volume_id, hu, label, spacing, slice_labels, options["hu_dtype"]
    )
    source = {
        "volume_id": volume_id,
        "label": label,
        "num_slices": len(hu),
        "original_size": f"{volume.array.shape[1]}x{volume.array.shape[2]}",
        "resize": used,
        "spacing_z": round(float(spacing[0]), 4),
        "series_uid": volume.series_uid,
        **source,
    }
    return {
        "outputs": [f"{VOLUMES_DIR}/{volume_id}.npz"],
        "row": list(row),
        "notes": list(volume.notes),
        "source": source,
    }


def prepare_cq500_study(task):
    """Work of one CQ500 study: the best readable ranked series, written; returns its record.

    `task` holds ``out``, ``volume_id``, ``name``, ``category``, ``label``, ``ranked`` and
    ``rejected`` (`select_series`) and ``options``. A study without a readable series gives
    ``{"outputs": [], "skipped": reason}``.
    """
    options, failures = task["options"], []
    rejected = [f"{d!r} ({r})" for _, d, r in task["rejected"]]
    for info in task["ranked"]:
        try:
            volume = read_series_files(
                info["files"], options["allow_nonuniform"], options["strict"]
            )
        except Exception as error:  # a series read_dicom_series refuses: the next one
            failures.append(f"{info['description']!r}: {type(error).__name__}: {error}")
            continue
        others = rejected + [
            f"{o['description']!r} (ranked lower)" for o in task["ranked"] if o is not info
        ]
        source = {
            "source": task["name"],
            "category": task["category"],
            "series_description": info["description"],
            "slice_thickness": info["thickness"],
            "other_series": "; ".join(failures + others),
        }
        return _write_volume(task, volume, task["label"], None, source)
    reasons = failures + [f"{d!r}: {r}" for _, d, r in task["rejected"]]
    return {
        "outputs": [],
        "skipped": "no usable series: " + ("; ".join(reasons) or "no DICOM images"),
    }


def prepare_rsna_series(task):
    """Work of one RSNA series: read, 12-bit fix, written; returns its record.

    `task` holds ``out``, ``volume_id``, ``uid``, ``files``, ``labels`` (the ``_any`` label of
    each file, -1 = none), ``fix`` (``file -> (intercept, slope)`` of the slices to correct)
    and ``options``. A series `kerasmed.io.read_dicom_series` refuses gives
    ``{"outputs": [], "skipped": reason}``.
    """
    options = task["options"]
    try:
        volume = read_series_files(task["files"], options["allow_nonuniform"], options["strict"])
    except Exception as error:
        return {"outputs": [], "skipped": f"{type(error).__name__}: {error}"}
    fixed = 0
    for k, path in enumerate(volume.files):
        if path in task["fix"]:
            volume.array[k] = fix_12bit_slice(volume.array[k], *task["fix"][path])
            fixed += 1
    labels = dict(zip(task["files"], task["labels"]))
    slice_labels = np.array([labels[path] for path in volume.files], np.int8)
    source = {
        "source": "RSNA 2019",
        "first_slice": Path(volume.files[0]).name,
        "unlabelled_slices": int((slice_labels < 0).sum()),
    }
    record = _write_volume(task, volume, int(slice_labels.max()), slice_labels, source)
    return {**record, "fixed": fixed}
