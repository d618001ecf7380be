"""Experiment `two-step` on COV19-CT-DB: a real data folder into the parts `load_data` returns.

The paper trains on COV19-CT-DB's ``train`` split and reports Table 1 on its ``validation``
split; here they are the ``train`` and ``test`` parts. A ``--data-dir`` is one of two folders:

- a **prepared folder**, made by ``python data_prep/two_step_ct.py COV19-CT-DB --out DIR``:
  ``scans.csv`` (the index: ``scan_id, split, label, file, window_start, window_stop,
  n_slices, window_rule``), ``settings.json`` (the preset settings it was made with) and one
  ``scans/<split>/<covid|non-covid>/<scan_id>.npz`` per scan. `load_prepared_parts` reads only
  the index and each file's small arrays (the lung areas of its window); a scan's slices are
  read from its file each time a batch, a prediction or the embedding step needs them
  (`PreparedScan`), so the data set never has to fit in memory. The folder's settings must be
  the run's (slice size, window fraction, filter sizes): the message of a mismatch says which
  and how to fix it.
- the **COV19-CT-DB release** itself (``train/`` and ``validation/``), read by
  `kerasmed.io.read_cov19_ct` (slices in numeric order, labels from the class folders, the strict
  rule of `kerasmed.io.report`); each scan's window is selected in its own units (8-bit slices
  with the authors' threshold 100, HU for NIfTI / DICOM scan folders) and its slices are resized
  to the preset's ``slice_size``, every time the experiment runs, and every scan is held in
  memory (a few GB at 256 x 256 for the whole challenge set).

Both give the same windows and slices (`model_slices`, `select_windows`): the data_prep script
calls the same two functions with the same settings.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np

from kerasmed.io import read_cov19_ct
from kerasmed.io._csv import check_columns, read_csv_rows
from kerasmed.io._npz import load_npz
from kerasmed.io.report import LoadReport
from kerasmed.preprocessing import select_lung_slices
from kerasmed.preprocessing.lung import LungSliceSelection

__all__ = [
    "DATA_PREP",
    "INDEX_COLUMNS",
    "INDEX_FILE",
    "SETTINGS_FILE",
    "SPLITS",
    "PreparedScan",
    "load_cov19_parts",
    "load_data_dir",
    "load_prepared_parts",
    "model_slices",
    "prep_settings",
    "select_windows",
]

#: The experiment's part -> COV19-CT-DB split folder.
SPLITS = {"train": "train", "test": "validation"}
#: The index of a prepared folder (`kerasmed.experiments.registry`'s data file of ``two-step``).
INDEX_FILE = "scans.csv"
INDEX_COLUMNS = (
    "scan_id",
    "split",
    "label",
    "file",
    "window_start",
    "window_stop",
    "n_slices",
    "window_rule",
)
SETTINGS_FILE = "settings.json"
#: The config fields a prepared folder depends on (its ``settings.json``).
PREP_FIELDS = ("slice_size", "window_fraction", "filter_size", "crop_filter_size")
DATA_PREP = "python data_prep/two_step_ct.py COV19-CT-DB --out DIR"
_WINDOW_KEYS = ("areas", "crop_box", "found", "rule", "kind", "threshold", "notes")
_RULES = ("lung_area", "no_lung", "last_slice")


def model_slices(volume, size, kind="hu"):
    """A scan's slices as one ``(n, size, size)`` uint8 array (odd-sized slices resized).

    `volume` is in HU (windowed by `kerasmed.data.to_8bit_slices`), or already 8-bit with
    ``kind="8bit"``. Resizing is OpenCV's area interpolation.

    Example:

    >>> model_slices(np.full((3, 8, 8), 200, np.uint8), 4, kind="8bit").shape
    (3, 4, 4)
    """
    if kind == "8bit":
        slices = [np.asarray(s, np.uint8) for s in volume]
    else:
        from kerasmed.data import to_8bit_slices  # imports Keras: only for HU scans

        if isinstance(volume, (list, tuple)):
            slices = to_8bit_slices([np.asarray(s, "float32") for s in volume])
        else:
            slices = to_8bit_slices(volume)
    return np.stack(
        [
            s
            if s.shape == (size, size)
            else cv2.resize(s, (size, size), interpolation=cv2.INTER_AREA)
            for s in slices
        ]
    )


def select_windows(volumes, config, kind="hu"):
    """`select_lung_slices` on every scan (HU, or ``kind="8bit"``) with the config's filters."""
    return [
        select_lung_slices(
            v,
            fraction=config.window_fraction,
            filter_size=config.filter_size,
            crop_filter_size=config.crop_filter_size,
            kind=kind,
        )  # fmt: skip
        for v in volumes
    ]


def prep_settings(config):
    """``{field: value}`` of the config fields a prepared folder depends on (`PREP_FIELDS`)."""
    return {field: getattr(config, field) for field in PREP_FIELDS}


# ---------------------------------------------------------------- the release as distributed


def load_cov19_parts(config, data_dir, log, strict=True):
    """Reads `data_dir` (COV19-CT-DB's layout) into ``{"train" | "test": part}``.

    Args:
        config: the `TwoStepConfig` (window and slice-size settings).
        data_dir: the folder holding ``train/`` and ``validation/``.
        log: a ``print``-like function for the per-part counts.
        strict: the `kerasmed.io.report` rule (True: unreadable slices or empty scans raise one
            `LoadError` naming every file; False: they are skipped and warned about).

    Returns:
        The structure of `kerasmed.experiments.two_step.load_data` (``volumes`` are the scans as
        read: 8-bit or HU).
    """
    parts = {}
    for part, split in SPLITS.items():
        data = read_cov19_ct(data_dir, splits=(split,), strict=strict)
        if not data.scans:
            raise ValueError(
                f"COV19-CT-DB split {split!r} has no usable scan ({data.report}). "
                f"Received: data_dir={str(data_dir)!r}"
            )
        volumes = [scan.array for scan in data.scans]
        windows = [select_windows([scan.array], config, kind=scan.kind)[0] for scan in data.scans]
        slices = [model_slices(s.array, config.slice_size, kind=s.kind) for s in data.scans]
        labels = data.labels
        parts[part] = {"volumes": volumes, "slices": slices, "windows": windows, "labels": labels}
        counts = np.bincount(labels, minlength=2)
        log(f"{part} ({split}/): {len(labels)} scans ({counts[1]} covid, {counts[0]} non-covid)")
    return parts


# ---------------------------------------------------------------- a prepared folder


class PreparedScan:
    """One scan of a prepared folder: its length from the index, its slices read when asked.

    ``len(scan)`` and ``scan.shape`` open nothing; ``np.asarray(scan)`` (what the experiment's
    datasets and predictions call) and ``scan[k]`` read the ``slices`` array of its ``.npz``
    file, every time (nothing is cached).

    Args:
        path: the scan's ``.npz`` file.
        num_slices: its slice count, from the index.
        slice_size: H = W of its slices.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ct_scan_0.npz")
    >>> np.savez(path, slices=np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4))
    >>> scan = PreparedScan(path, num_slices=3, slice_size=4)
    >>> len(scan), np.asarray(scan).shape, scan[1][0].tolist()
    (3, (3, 4, 4), [16, 17, 18, 19])
    """

    __slots__ = ("path", "num_slices", "slice_size")

    def __init__(self, path, num_slices, slice_size):
        self.path, self.num_slices, self.slice_size = os.fspath(path), num_slices, slice_size

    def __len__(self):
        return self.num_slices

    @property
    def shape(self):
        return (self.num_slices, self.slice_size, self.slice_size)

    def read(self):
        """The ``(n, size, size)`` uint8 slices, checked against the index."""
        slices = load_npz(self.path, ("slices",), "two-step scan")["slices"]
        if slices.shape != self.shape or slices.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: `slices` must be uint8 of shape {self.shape} (the index and "
                f"{SETTINGS_FILE}). Received: {slices.dtype} array of shape {slices.shape}"
            )
        return slices

    def __array__(self, dtype=None, copy=None):
        slices = self.read()
        return slices if dtype is None else slices.astype(dtype)

    def __getitem__(self, index):
        return self.read()[index]

    def __repr__(self):
        return f"PreparedScan({self.path!r}, num_slices={self.num_slices})"


def _npy_header(archive, name):
    """``(shape, dtype)`` of member `name` of an open ``.npz`` zip, read from its header only."""
    with archive.open(name) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    return shape, dtype


def _read_window(path, entry, slice_size):
    """The scan's `LungSliceSelection` from its file, after checking its slices' header."""
    try:
        with zipfile.ZipFile(path) as archive:
            if "slices.npy" not in archive.namelist():
                return None, f"{path} is not a two-step scan file: no `slices` array"
            shape, dtype = _npy_header(archive, "slices.npy")
    except FileNotFoundError:
        return None, f"scan file not found: {path}"
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        return None, f"cannot read {path} ({type(error).__name__}: {error})"
    want = (entry["n_slices"], slice_size, slice_size)
    if tuple(shape) != want or dtype != np.uint8:
        return None, (
            f"{path}: `slices` is {dtype} of shape {tuple(shape)}; the index and "
            f"{SETTINGS_FILE} say uint8 of shape {want}"
        )
    try:
        arrays = load_npz(path, _WINDOW_KEYS, "two-step scan")
    except (OSError, ValueError) as error:
        return None, str(error)
    areas = np.asarray(arrays["areas"], np.int64)
    if areas.shape != (entry["n_slices"],):
        return None, f"{path}: `areas` has shape {areas.shape}, expected ({entry['n_slices']},)"
    window = LungSliceSelection(
        start=entry["window_start"],
        stop=entry["window_stop"],
        num_slices=entry["window_stop"] - entry["window_start"],
        areas=areas,
        crop_box=np.asarray(arrays["crop_box"]),
        found=bool(arrays["found"]),
        rule=str(arrays["rule"]),
        notes=tuple(str(n) for n in np.atleast_1d(arrays["notes"])),
        kind=str(arrays["kind"]),
        threshold=float(arrays["threshold"]),
    )
    if window.rule != entry["window_rule"]:
        return None, f"{path}: window rule {window.rule!r}, the index says {entry['window_rule']!r}"
    return window, None


def _parse_index_row(row, folder, seen):
    """``(entry dict, None)`` or ``(None, reason)`` for one row of ``scans.csv``."""
    cells = row.cells
    entry = {"scan_id": cells["scan_id"], "split": cells["split"], "file": cells["file"]}
    if not entry["scan_id"] or not entry["split"]:
        return None, "empty scan_id or split"
    for column in ("label", "window_start", "window_stop", "n_slices"):
        try:
            entry[column] = int(cells[column])
        except ValueError:
            return None, f"{column} is not an integer: {cells[column]!r}"
    if entry["label"] not in (0, 1):
        return None, f"label must be 0 or 1, found {entry['label']}"
    n, start, stop = entry["n_slices"], entry["window_start"], entry["window_stop"]
    if n < 1 or not 0 <= start < stop <= n:
        return None, f"window {start}-{stop} of {n} slices is not 0 <= start < stop <= n_slices"
    rule = cells.get("window_rule", "")
    if rule not in _RULES:
        return None, f"window_rule must be one of {list(_RULES)}, found {rule!r}"
    entry["window_rule"] = rule
    path = (folder / entry["file"]).resolve()
    if Path(entry["file"]).is_absolute() or folder.resolve() not in path.parents:
        return None, f"file must be a path inside {folder}, found {entry['file']!r}"
    key = (entry["split"], entry["label"], entry["scan_id"])
    if key in seen:
        return None, f"scan {key} is listed twice (also row {seen[key]})"
    seen[key] = row.line
    entry["path"] = path
    return entry, None


def _check_settings(folder, config):
    path = folder / SETTINGS_FILE
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{path} not found: the folder was not made by {DATA_PREP}. "
            f"Received: data_dir={str(folder)!r}"
        ) from error
    except ValueError as error:
        raise ValueError(
            f"{path} is not JSON ({error}). Received: data_dir={str(folder)!r}"
        ) from error
    wanted = prep_settings(config)
    made = saved.get("config", {}) if isinstance(saved, dict) else {}
    differ = {k: (made.get(k), v) for k, v in wanted.items() if made.get(k) != v}
    if differ:
        listed = ", ".join(f"{k}: folder {a!r}, run {b!r}" for k, (a, b) in differ.items())
        sets = " ".join(f"--set {k}={a}" for k, (a, _) in differ.items())
        preset = saved.get("preset") if isinstance(saved, dict) else None
        raise ValueError(
            f"{folder} was prepared with other settings than this run's ({listed}). Run with "
            f"the folder's settings (`--preset {preset}` or {sets}), or prepare it again with "
            f"this run's: {DATA_PREP} --preset ... --slice-size .... "
            f"Received: data_dir={str(folder)!r}"
        )
    return saved


def load_prepared_parts(config, data_dir, log, strict=True):
    """Reads a prepared folder (module docstring) into ``{"train" | "test": part}``.

    Only the index and each file's window arrays are read here; ``slices`` (and ``volumes``,
    the same objects) are `PreparedScan` items read when used.

    Args:
        config: the run's `TwoStepConfig`; its `PREP_FIELDS` must be the folder's.
        data_dir: the folder holding ``scans.csv``.
        log: a ``print``-like function for the per-part counts.
        strict: the `kerasmed.io.report` rule for unusable rows and files (True: one
            `LoadError` listing every one; False: skipped, warned about).

    Returns:
        The structure of `kerasmed.experiments.two_step.load_data`.

    Raises:
        FileNotFoundError: no ``scans.csv`` or ``settings.json``.
        ValueError: other settings than the run's, a split without a usable scan, or
            (``strict``) an unusable row or file.
    """
    folder = Path(data_dir)
    index = folder / INDEX_FILE
    header, rows = read_csv_rows(index, "index")
    check_columns(index, header, INDEX_COLUMNS, f"the index written by {DATA_PREP}")
    _check_settings(folder, config)
    report = LoadReport(str(index))
    entries, seen = [], {}
    for row in rows:
        report.num_rows += 1
        entry, reason = _parse_index_row(row, folder, seen)
        window = None
        if entry is not None:
            window, reason = _read_window(entry["path"], entry, config.slice_size)
        if reason:
            report.add(reason, row=row.line, item=row.cells.get("scan_id") or "?")
            continue
        entries.append((entry, window))
    report.raise_or_warn(strict, "scan(s)")
    parts = {}
    for part, split in SPLITS.items():
        chosen = [(e, w) for e, w in entries if e["split"] == split]
        if not chosen:
            found = sorted({e["split"] for e, _ in entries})
            raise ValueError(
                f"{index} lists no usable scan of split {split!r} (the {part} part; splits "
                f"there: {found}). Received: data_dir={str(data_dir)!r}"
            )
        scans = [PreparedScan(e["path"], e["n_slices"], config.slice_size) for e, _ in chosen]
        labels = np.array([e["label"] for e, _ in chosen], dtype=np.int64)
        windows = [w for _, w in chosen]
        parts[part] = {"volumes": scans, "slices": scans, "windows": windows, "labels": labels}
        counts = np.bincount(labels, minlength=2)
        log(
            f"{part} ({split}, prepared): {len(labels)} scans ({counts[1]} covid, "
            f"{counts[0]} non-covid), read from {folder} when used"
        )
    return parts


def load_data_dir(config, data_dir, log, strict=True):
    """A ``--data-dir``: a prepared folder (``scans.csv``) or the COV19-CT-DB release (``train/``).

    Raises:
        FileNotFoundError: `data_dir` is missing, or holds neither; the message names the
            data_prep command.
    """
    folder = Path(data_dir)
    if (folder / INDEX_FILE).is_file():
        return load_prepared_parts(config, folder, log, strict)
    if folder.is_dir() and not (folder / SPLITS["train"]).is_dir():
        raise FileNotFoundError(
            f"{folder} holds neither {INDEX_FILE} (a folder made by {DATA_PREP}) nor "
            f"COV19-CT-DB's {SPLITS['train']}/ and {SPLITS['test']}/ folders. "
            f"Received: data_dir={str(data_dir)!r}"
        )
    if folder.is_dir():
        log(f"reading the COV19-CT-DB release in {folder}; {DATA_PREP} prepares it once")
    return load_cov19_parts(config, folder, log, strict)
