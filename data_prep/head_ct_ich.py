"""Prepare public head CTs for ``kerasmed reproduce ich --data-dir`` (paper 001, Patel et al. 2019).

The output folder (``--out``) is a volume set (`kerasmed.io.volumes`): ``labels.csv``
(``volume_id,label,num_slices``) and ``volumes/<volume_id>.npz`` holding each volume in
Hounsfield units (``hu``, slice 0 = lowest position along the slice normal, i.e. the skull base
side), its voxel size (``spacing``, mm) and per-slice labels (``slice_labels``, -1 = unknown).
``sources.csv`` says where each volume comes from, ``prepare_report.txt`` (also printed) lists
every row, study, series or file that was not used and why (`kerasmed.io.LoadReport`).

The label file and the DICOM headers are read first. With ``--strict`` (the default, the rule
of `kerasmed.io.report`) unusable rows of the label file stop the script before anything is
written, DICOM files that cannot be read before any volume is written, all of them listed;
``--no-strict`` skips them.
Studies and series left out by the rules below (no usable series, unknown volume label, a
series `kerasmed.io.read_dicom_series` refuses) are listed and never stop it. A volume that
cannot be written (e.g. HU outside int16) is a problem: ``--strict`` lists them after the others
were written, without writing ``labels.csv`` (a rerun tries them again), ``--no-strict`` leaves
them out. Slices are resized to ``--slice-size`` (default 256, the paper's input): by the
paper's maximum filter when the size divides the DICOM size (512 -> 256 is a 2x2 maximum
filter), otherwise by OpenCV area interpolation (``--resize`` chooses).

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

Both steps run on `kerasmed.io.prep_runner` in ``--workers`` processes (default: every core),
with a progress bar and its ETA: the headers of each CQ500 study or of each 1,000 RSNA files
(journaled in ``OUT/.prep/headers/``, keyed by the files read), then each study (CQ500) or
series (RSNA), which reads its DICOM files and writes ``volumes/<volume_id>.npz`` atomically (a
temporary file, then a rename) and leaves a record in ``OUT/.prep/``. Both records hold the
size and modification time of every file the task read, so a file changed in place (same
name) has its headers and its volume made again; the others come from the journal.
``labels.csv`` and ``sources.csv`` are written at the end from the records, in study /
SeriesInstanceUID order. An interrupted run started again with the same arguments
(``--workers`` aside) does only the rest; ``--overwrite`` starts over, and is needed to write
into a folder holding a set made with other settings (or another label file).
The steps live in `kerasmed.io.head_ct_series` (headers, series choice, 12-bit fix, resize) and
`kerasmed.io.head_ct_datasets` (label files, study folders, the work of one volume).

Example::

    python data_prep/head_ct_ich.py cq500 --root ~/data/cq500 --reads ~/data/cq500/reads.csv \\
        --out data/ich_cq500
    python data_prep/head_ct_ich.py rsna --dicom-dir ~/rsna/stage_2_train \\
        --labels ~/rsna/stage_2_train.csv --out data/ich_rsna --max-series 500
    kerasmed reproduce ich --data-dir data/ich_cq500
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

from kerasmed.io.head_ct_datasets import (
    HeadCTReport,
    find_cq500_studies,
    prepare_cq500_study,
    prepare_rsna_series,
    read_cq500_reads,
    read_rsna_labels,
    scan_header_files,
    scan_study_headers,
)
from kerasmed.io.head_ct_series import (
    EXCLUDE_PATTERN,
    NOT_AN_IMAGE,
    SERIES_PATTERN,
    safe_id,
    select_series,
)
from kerasmed.io.prep_runner import (
    PrepTask,
    add_prep_arguments,
    non_negative_int,
    positive_int,
    run_prep,
    run_script,
    write_text_atomic,
)
from kerasmed.io.volume_writer import write_labels_csv
from kerasmed.io.volumes import LABELS_FILE, VOLUMES_DIR

STATE_DIR = ".prep"  # the journal of `run_prep`, in --out
SETTINGS_FILE = ".settings.json"  # in STATE_DIR; a task key never starts with "."
HEADER_CHUNK = 1000  # RSNA files per header task
# fewer headers are read in this process: starting a pool (spawning, importing kerasmed.io) took
# 3 s on 2 busy cores, where a header took 1.5 ms, so 2 workers gain from about 4,000 headers
MIN_POOL_HEADERS = 5000


def _options(args):
    return {
        "slice_size": args.slice_size,
        "resize": args.resize,
        "hu_dtype": args.hu_dtype,
        "allow_nonuniform": args.allow_nonuniform,
        "strict": args.strict,
    }


# ---------------------------------------------------------------- CQ500


def scan_cq500(args, report):
    """Reads ``reads.csv``, finds the studies and groups each one's files by series.

    Returns ``{study number: (name, category, label, series, folder)}`` of the studies to
    prepare.
    """
    reads = read_cq500_reads(args.reads, report.labels)
    studies = find_cq500_studies(args.root, report.inputs)
    for number in sorted(set(studies) - set(reads)):
        report.inputs.ignore("no row in reads.csv", path=studies[number])
    for number in sorted(set(reads) - set(studies)):
        report.inputs.ignore(f"no study folder under {args.root}", item=reads[number][0])
    numbers = sorted(set(reads) & set(studies))[: args.max_studies or None]
    tasks, files = [], 0
    for number in numbers:
        folder = studies[number]
        names = sorted(os.path.join(f, n) for f, _, ns in os.walk(folder) for n in ns)
        stamp = {"files": _files_stamp((name, _size_mtime(name)) for name in names)}
        key = _header_key(f"study{number}", names)
        tasks.append(PrepTask(key, folder, source=folder, settings=stamp))
        files += len(names)
    records = scan_headers(args, report, tasks, scan_study_headers, "CQ500 headers", "study", files)
    scanned = {}
    for number, task in zip(numbers, tasks):
        if task.key not in records:
            continue  # a failed task: a problem of the report
        name, record = reads[number][0], records[task.key]
        series, unreadable = record["series"], record["unreadable"]
        report.inputs.num_rows += sum(len(info["files"]) for info in series) + len(unreadable)
        other = [path for path, reason in unreadable if reason == "not a DICOM file"]
        if other:
            report.notes.append((name, f"{len(other)} non-DICOM file(s) ignored, e.g. {other[0]}"))
        for path, reason in unreadable:
            if path not in other:
                (report.inputs.ignore if reason in NOT_AN_IMAGE else report.inputs.add)(
                    reason, path=path, item=name
                )
        scanned[number] = (*reads[number], series, task.source, task.settings)
    return scanned


def cq500_tasks(args, scanned):
    """One `PrepTask` per study (series chosen here, read by `prepare_cq500_study`)."""
    tasks = []
    for name, category, label, series, folder, stamp in scanned.values():
        ranked, rejected = select_series(
            series, args.series_pattern, args.exclude_pattern, args.target_thickness,
            args.min_slices,
        )  # fmt: skip
        volume_id = safe_id(name)
        work = {
            "out": os.fspath(args.out), "volume_id": volume_id, "name": name,
            "category": category, "label": label, "ranked": ranked, "rejected": rejected,
            "options": _options(args),
        }  # fmt: skip
        # the study's files as its header task read them: a change makes the volume again
        tasks.append(PrepTask(volume_id, work, source=folder, settings=stamp))
    return tasks


# ---------------------------------------------------------------- RSNA 2019


def scan_rsna(args, report):
    """Reads ``stage_2_train.csv`` and every file's header; returns ``(labels, series, fix,
    stamps)``.

    ``series`` maps a SeriesInstanceUID to its files, ``fix`` a file needing the 12-bit fix
    (`kerasmed.io.head_ct_series.needs_12bit_fix`) to its ``(intercept, slope)``, ``stamps``
    a file name to its ``[size, mtime_ns]``.
    """
    labels = read_rsna_labels(args.labels, report.labels)
    folder = os.fspath(args.dicom_dir)
    with os.scandir(folder) as entries:  # is_file() from the listing; one stat per file
        stamps = {e.name: _size_mtime(e) for e in entries if e.is_file()}
    names = sorted(stamps)
    chunks = [names[k : k + HEADER_CHUNK] for k in range(0, len(names), HEADER_CHUNK)]
    tasks = [
        PrepTask(_header_key(f"files{k}", c), (folder, c), folder,
                 settings={"files": _files_stamp((name, stamps[name]) for name in c)})
        for k, c in enumerate(chunks)
    ]  # fmt: skip
    records = scan_headers(
        args, report, tasks, scan_header_files, "RSNA headers", "chunk", len(names)
    )
    series, fix = {}, {}
    for task in tasks:
        for name, uid, fixes, reason in records.get(task.key, {"files": []})["files"]:
            path = os.path.join(folder, name)
            report.inputs.num_rows += 1
            if uid is None:
                (report.inputs.ignore if reason in NOT_AN_IMAGE else report.inputs.add)(
                    reason, path=path
                )
                continue
            series.setdefault(uid, []).append(path)
            if fixes is not None:
                fix[path] = tuple(fixes)
    return labels, series, fix, stamps


def rsna_tasks(args, report, labels, series, fix, stamps):
    """One `PrepTask` per series with a known volume label, in SeriesInstanceUID order."""
    tasks = []
    for uid in sorted(series):
        files = series[uid]
        sops = [Path(path).stem for path in files]
        known = [labels[sop] for sop in sops if sop in labels]
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
        work = {
            "out": os.fspath(args.out), "volume_id": safe_id(uid), "uid": uid, "files": files,
            "labels": [labels.get(sop, -1) for sop in sops], "options": _options(args),
            "fix": {path: fix[path] for path in files if path in fix} if args.fix_12bit else {},
        }  # fmt: skip
        # its files' sizes and modification times: a file changed in place makes it again
        stamp = _files_stamp((name, stamps[name]) for name in map(os.path.basename, files))
        tasks.append(
            PrepTask(work["volume_id"], work, source=f"series {uid}", settings={"files": stamp})
        )
    return tasks


# ---------------------------------------------------------------- the run


def _settings(args):
    """What the outputs depend on (a journal record of other settings is not done)."""
    digest = hashlib.sha256()
    with open(args.reads if args.dataset == "cq500" else args.labels, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    keep = ["dataset", "slice_size", "resize", "hu_dtype", "allow_nonuniform", "strict"]
    keep += (
        ["series_pattern", "exclude_pattern", "target_thickness", "min_slices"]
        if args.dataset == "cq500"
        else ["fix_12bit"]
    )
    return json.loads(
        json.dumps({**{k: getattr(args, k) for k in keep}, "label_file": digest.hexdigest()})
    )


def check_out(out, settings, overwrite):
    """Exits if `out` holds a volume set (or part of one) made with other settings (or by
    something else), unless `overwrite`; a run with the same settings goes on (resumes)."""
    labels = out / LABELS_FILE
    try:
        with open(out / STATE_DIR / SETTINGS_FILE, encoding="utf-8") as f:
            previous = json.load(f)
    except (OSError, ValueError):
        previous = None
    previous = previous if isinstance(previous, dict) else None
    if overwrite or previous == settings or (previous is None and not labels.exists()):
        return
    if previous is None:
        sys.exit(f"{labels} already exists (--overwrite replaces it)")
    changed = sorted(k for k in {*previous, *settings} if previous.get(k) != settings.get(k))
    where = labels if labels.exists() else out / VOLUMES_DIR
    sys.exit(
        f"{where} already exists, made with other settings ({', '.join(changed)}); "
        "--overwrite replaces it"
    )


def clear_out(out, overwrite):
    """Removes what a previous run left: with `overwrite` the whole set and its journal,
    otherwise only temporary files of an interrupted write."""
    volumes = out / VOLUMES_DIR
    if overwrite:
        for name in (LABELS_FILE, "sources.csv"):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / STATE_DIR, ignore_errors=True)
        old = list(volumes.glob("*.npz"))
    else:
        old = list(volumes.glob(".*.tmp.npz"))  # `atomic_path`'s temporary files
    for path in old:
        path.unlink()


def _header_key(prefix, names):
    """A header task's key: `prefix` and a digest of the files it reads, so that the record
    of a folder whose files changed (or moved) is not used."""
    digest = hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape"))
    return f"{prefix}-{digest.hexdigest()[:20]}"


def _size_mtime(entry):
    """``[size, mtime_ns]`` of a path or `os.DirEntry` (``[-1, -1]`` where it cannot be
    stat'ed: its header task then reports the file)."""
    try:
        info = os.stat(entry)
    except OSError:
        return [-1, -1]
    return [info.st_size, info.st_mtime_ns]


def _files_stamp(stamps):
    """A digest of ``(name, [size, mtime_ns])`` pairs: a task's ``settings``, so that the
    record of a task one of whose files was changed in place (same name) is not used."""
    digest = hashlib.sha256()
    for name, (size, mtime) in stamps:
        digest.update(f"{name}\t{size}\t{mtime}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def _run(args, tasks, work, state_dir, source, workers=None, **kwargs):
    """`run_prep` with the script's options; its failures go to the caller's report."""
    workers = args.workers if workers is None else workers
    with warnings.catch_warnings():  # not warned about: the report lists them
        warnings.filterwarnings("ignore", message=re.escape(f"{source}: "))
        return run_prep(
            tasks, work, state_dir, workers=workers, progress=not args.no_progress,
            strict=False, source=source, **kwargs,
        )  # fmt: skip


def scan_headers(args, report, tasks, work, desc, unit, files):
    """Runs the header tasks (journaled in ``OUT/.prep/headers``); returns their records.

    With ``--strict``, the problems of the label file (and of the study folders) stop the
    script first, before anything is written; ``--overwrite`` drops the old journal. Fewer
    than `MIN_POOL_HEADERS` `files` are read in this process.
    """
    if args.strict:
        report.check()
    out = Path(args.out)
    if args.overwrite:
        shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    workers = args.workers if files >= MIN_POOL_HEADERS else 0
    run = _run(args, tasks, work, out / STATE_DIR / "headers", os.fspath(report.inputs.source),
               workers, desc=desc, unit=unit, what="header task(s)")  # fmt: skip
    report.inputs.problems.extend(run.report.problems)
    return run.records


def run_tasks(args, report, tasks, work, settings, limit=None):
    """Runs `work` on the `tasks` not done yet; takes every record into `report`.

    With `limit`, stops once `limit` volumes are written (the next tasks run in further
    batches while some of the first ones were skipped).
    """
    out = Path(args.out)
    write_text_atomic(out / STATE_DIR / SETTINGS_FILE, json.dumps(settings, indent=1))
    pending, written = list(tasks), 0
    while pending:
        size = len(pending) if limit is None else limit - written
        batch, pending = pending[:size], pending[size:]
        run = _run(args, batch, work, out / STATE_DIR, os.fspath(out / VOLUMES_DIR),
                   settings=settings, desc=f"{args.dataset} volumes", unit="volume",
                   what="volume(s)")  # fmt: skip
        for key in ("computed", "resumed"):
            report.run[key] += len(getattr(run, key))
        report.run["workers"] = max(report.run["workers"], run.workers)
        report.inputs.problems.extend(run.report.problems)
        for task in batch:
            if task.key in run.records:
                record = run.records[task.key]
                report.add_record(record, task.args.get("name") or task.source)
                written += "row" in record
        if limit is not None and written >= limit:
            break


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
    add_prep_arguments(common)
    common.add_argument(
        "--overwrite",
        action="store_true",
        help="start over: replace a volume set (or an interrupted run) in --out",
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
        kerasmed.io.LoadError: with ``--strict``, unusable label rows (before anything is
            written), unreadable DICOM files (before any volume is written), or volumes that
            could not be written (after the others were; ``labels.csv`` is then not written).
    """
    args = parse_args(argv)
    out = Path(args.out)
    cq500 = args.dataset == "cq500"
    source = Path(args.root if cq500 else args.dicom_dir)
    if not source.is_dir():
        sys.exit(f"Not a folder: {source}")
    settings = _settings(args)
    check_out(out, settings, args.overwrite)
    report = HeadCTReport(args.dataset, out, args.reads if cq500 else args.labels, source)
    scanned = scan_cq500(args, report) if cq500 else scan_rsna(args, report)
    if args.strict:
        report.check()
    clear_out(out, args.overwrite)
    if cq500:
        run_tasks(args, report, cq500_tasks(args, scanned), prepare_cq500_study, settings)
    else:
        tasks = rsna_tasks(args, report, *scanned)
        run_tasks(args, report, tasks, prepare_rsna_series, settings, args.max_series)
        if report.fixed:
            report.notes.append(("RSNA 12-bit fix", f"{report.fixed} slice(s) corrected"))
    if args.strict and report.inputs.problems:
        report.finish()
        report.check()  # the volumes that failed; a rerun tries them again
    if not report.written:
        report.finish()
        sys.exit(f"No volume could be prepared from {source}; see {out / 'prepare_report.txt'}.")
    write_labels_csv(out, report.rows)
    return report.finish()


if __name__ == "__main__":
    run_script(main)
