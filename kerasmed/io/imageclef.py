"""The ImageCLEF 2009 medical annotation data set (paper 004): code lists and image folders.

The layout read is the one of the public release (Deserno & Ott, *15,363 IRMA images of 193
categories for ImageCLEFmed2009*, DOI 10.18154/RWTH-2016-06143; also on Kaggle as
"irma-xray-dataset"), train 12,677 and test 1,733 images::

    data_dir/
      ImageCLEFmed2009_train_codes.02.csv   image_id;irma_code[;05_class;06_class;...]
      ImageCLEFmed2009_train.02/            <image_id>.png (8-bit grey PNGs)
      ImageCLEFmed2009_test_codes.03.csv
      ImageCLEFmed2009_test.03/

- a code list per split: a header row with at least ``image_id`` and ``irma_code`` (other
  columns, e.g. the 2005-2008 class numbers, are not read), fields separated by ``;`` (``,``
  also works: the separator is taken from the header line); ``ImageCLEFmed2009_<split>.0N.csv``
  is accepted as a name too, and so is any single ``*<split>*.csv`` in `data_dir`;
- an image folder per split (``ImageCLEFmed2009_<split>.0N``, or any single ``*<split>*``
  folder), optionally holding one more folder of the same name (as the zip files unpack);
  image ``<image_id>`` is the file ``<image_id>.<suffix>`` with any suffix
  `kerasmed.io.read_radiograph` reads (``.png``, ``.jpg``, ``.tif``, ``.dcm``...); a numeric
  id also matches a file name with leading zeros (``1877`` and ``00001877.png``).

Every path can also be given explicitly (`read_imageclef`'s ``train_csv=`` etc.).

What cannot be used is reported per split (`kerasmed.io.LoadReport`, the strict rule of
`kerasmed.io.report`): a row with a missing cell or too many fields, a malformed IRMA code
(`kerasmed.io.parse_irma_code`), an image id listed twice in a split or in both splits, an
image file that does not exist; `kerasmed.data.load_imageclef_arrays` adds the images that
cannot be decoded. Image files in a folder that its list does not name are listed as ignored.
"""

from __future__ import annotations

import dataclasses
import glob
import os

import numpy as np

from kerasmed.io._csv import check_columns, read_csv_rows
from kerasmed.io.irma import IrmaLabelMap, parse_irma_code
from kerasmed.io.report import LoadError, LoadReport

__all__ = [
    "IMAGECLEF_SPLITS",
    "IMAGE_SUFFIXES",
    "ImageCLEFIndex",
    "ImageCLEFReport",
    "ImageCLEFSplit",
    "index_imageclef",
    "read_imageclef",
]

# split -> (release number in the file names, code list name, image folder name)
IMAGECLEF_SPLITS = {
    "train": ("02", "ImageCLEFmed2009_train_codes.02.csv", "ImageCLEFmed2009_train.02"),
    "test": ("03", "ImageCLEFmed2009_test_codes.03.csv", "ImageCLEFmed2009_test.03"),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".dcm", ".dicom")
ID_COLUMN, CODE_COLUMN = "image_id", "irma_code"


@dataclasses.dataclass
class ImageCLEFSplit:
    """The usable rows of one split's code list, in file order.

    Attributes:
        name: ``"train"`` or ``"test"``.
        csv_path: the code list.
        image_dir: the folder the images were looked up in.
        ids: image ids (the ``image_id`` cells).
        paths: the image file of each id.
        codes: the IRMA code of each image (normalised strings ``TTTT-DDD-AAA-BBB``).
        rows: ``(N,)`` int64 line of each image in the code list (the header is line 1).
        report: the `kerasmed.io.LoadReport` of the code list.
    """

    name: str
    csv_path: str
    image_dir: str
    ids: tuple
    paths: tuple
    codes: tuple
    rows: np.ndarray
    report: LoadReport

    def __len__(self):
        return len(self.ids)


@dataclasses.dataclass
class ImageCLEFReport:
    """The load reports of both splits, with one strict rule over both.

    Attributes:
        train: `kerasmed.io.LoadReport` of the training code list (and its images).
        test: the same for the test split.
        notes: ``"split image_id: note"`` strings for images that were read but changed on
            the way (colour converted to grey, MONOCHROME1 inverted...).
        computed: images preprocessed in this call (`kerasmed.data.load_imageclef_arrays`).
        cached: images taken from the cache instead.
        ids: ``{"train": ids, "test": ids}``: the image ids of the returned arrays, in order
            (filled by `kerasmed.data.load_imageclef_arrays`).
    """

    train: LoadReport
    test: LoadReport
    notes: list = dataclasses.field(default_factory=list)
    computed: int = 0
    cached: int = 0
    ids: dict = dataclasses.field(default_factory=dict)

    @property
    def reports(self):
        return {"train": self.train, "test": self.test}

    @property
    def ok(self) -> bool:
        return self.train.ok and self.test.ok

    @property
    def problems(self) -> list:
        return [*self.train.problems, *self.test.problems]

    @property
    def ignored(self) -> list:
        return [*self.train.ignored, *self.test.ignored]

    @property
    def skipped(self) -> list:
        return [*self.train.skipped, *self.test.skipped]

    def __str__(self):
        lines = [str(self.train), str(self.test)]
        if self.computed or self.cached:
            lines.append(
                f"images preprocessed: {self.computed}, read from the cache: {self.cached}"
            )
        if self.notes:
            lines.append(f"notes ({len(self.notes)}):")
            lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def raise_or_warn(self, strict, what="input(s)", stacklevel=3):
        """`kerasmed.io.LoadReport.raise_or_warn` over both splits: one `LoadError` listing
        every problem of both (``strict``), else one warning per split with skipped inputs."""
        if strict:
            messages = []
            for report in (self.train, self.test):
                try:
                    report.check(what)
                except LoadError as error:
                    messages.append(str(error).split("\nPass strict=False")[0])
            if messages:
                raise LoadError(
                    "\n".join(messages) + "\nPass strict=False (--no-strict to a data_prep "
                    "script) to skip them; the returned `report` then lists them. "
                    "Received: strict=True",
                    self,
                )
        for report in (self.train, self.test):
            report.warn(what, stacklevel=stacklevel + 1)


@dataclasses.dataclass
class ImageCLEFIndex:
    """Both splits of an ImageCLEF 2009 folder (`read_imageclef`).

    Attributes:
        train, test: `ImageCLEFSplit` objects.
        label_map: `kerasmed.io.IrmaLabelMap` of the codes of both splits (193 classes for the
            full release), so that test classes absent from training still get a label.
        report: `ImageCLEFReport` of both code lists.
    """

    train: ImageCLEFSplit
    test: ImageCLEFSplit
    label_map: IrmaLabelMap
    report: ImageCLEFReport


def _find_one(data_dir, names, pattern, want_dir, what, split):
    for name in names:
        path = os.path.join(data_dir, name)
        if (os.path.isdir if want_dir else os.path.isfile)(path):
            return path
    found = sorted(
        p for p in glob.glob(os.path.join(glob.escape(data_dir), pattern))
        if (os.path.isdir(p) if want_dir else os.path.isfile(p))
    )  # fmt: skip
    if len(found) == 1:
        return found[0]
    listed = f"; found {len(found)}: {[os.path.basename(p) for p in found]}" if found else ""
    argument = f"{split}_images" if want_dir else f"{split}_csv"
    raise FileNotFoundError(
        f"No {what} of the {split} split in {data_dir}: expected {names[0]} (or a single "
        f"{pattern}){listed}; pass {argument}= to name it."
    )


def _image_folder(folder):
    inner = os.path.join(folder, os.path.basename(os.path.normpath(folder)))
    return inner if os.path.isdir(inner) else folder


def _list_images(folder):
    """``{stem: path}`` and ``{int(stem): path}`` of the image files in `folder`."""
    by_stem, by_number = {}, {}
    for name in sorted(os.listdir(folder)):
        stem, suffix = os.path.splitext(name)
        path = os.path.join(folder, name)
        if suffix.lower() not in IMAGE_SUFFIXES or not os.path.isfile(path):
            continue
        by_stem.setdefault(stem, path)
        if stem.isdigit():
            by_number.setdefault(int(stem), path)
    return by_stem, by_number


def _read_split(split, csv_path, image_dir, strict_hierarchy, seen):
    csv_path, image_dir = os.fspath(csv_path), os.fspath(image_dir)
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"No such image folder of the {split} split: {image_dir}")
    if not os.path.isfile(csv_path):
        raise FileNotFoundError(f"No such code list of the {split} split: {csv_path}")
    with open(csv_path, encoding="utf-8-sig", errors="replace") as f:
        first = f.readline()
    delimiter = ";" if ";" in first else ","
    header, csv_rows = read_csv_rows(csv_path, kind="code list", delimiter=delimiter)
    check_columns(csv_path, header, [ID_COLUMN, CODE_COLUMN], "image_id and irma_code")
    by_stem, by_number = _list_images(image_dir)
    report = LoadReport(source=csv_path)
    ids, paths, codes, rows, used = [], [], [], [], set()
    first_row = {}
    for row in csv_rows:
        report.num_rows += 1
        image_id, code = row.cells[ID_COLUMN], row.cells[CODE_COLUMN]
        where = {"row": row.line, "item": image_id or None}
        faults = []
        reason = row.fields_reason(header)
        if reason:
            faults.append((reason, {}))
        for column, value in ((ID_COLUMN, image_id), (CODE_COLUMN, code)):
            if not value:
                faults.append(("missing value", {"column": column, "value": row.raw.get(column)}))
        if code:
            try:
                code = str(parse_irma_code(code, strict_hierarchy))
            except ValueError as error:
                reason = f"bad IRMA code: {str(error).split(' Received:')[0]}"
                faults.append((reason, {"column": CODE_COLUMN, "value": code}))
        path = None
        if image_id:
            if image_id in first_row:
                reason = f"duplicate image_id (first listed at row {first_row[image_id]})"
                faults.append((reason, {"column": ID_COLUMN, "value": image_id}))
            elif image_id in seen:
                other, other_row = seen[image_id]
                reason = f"image_id also in the {other} split (row {other_row} of its list)"
                faults.append((reason, {"column": ID_COLUMN, "value": image_id}))
            else:
                first_row[image_id] = row.line
            path = by_stem.get(image_id)
            if path is None and image_id.isdigit():
                path = by_number.get(int(image_id))
            if path is None:
                expected = os.path.join(image_dir, image_id + ".png")
                reason = f"image file not found: no {image_id}.png (or .jpg, .tif, .dcm...) in {image_dir}"
                faults.append((reason, {"path": expected}))
        for reason, extra in faults:
            report.add(reason, **{**where, **extra})
        if path is not None:
            used.add(path)
        if faults:
            continue
        ids.append(image_id)
        paths.append(path)
        codes.append(code)
        rows.append(row.line)
    for path in sorted(set(by_stem.values()) | set(by_number.values())):
        if path not in used:
            report.ignore(f"image file not listed in {os.path.basename(csv_path)}", path=path)
    for image_id in first_row:
        seen.setdefault(image_id, (split, first_row[image_id]))
    return ImageCLEFSplit(
        name=split,
        csv_path=csv_path,
        image_dir=image_dir,
        ids=tuple(ids),
        paths=tuple(paths),
        codes=tuple(codes),
        rows=np.asarray(rows, dtype=np.int64),
        report=report,
    )


def index_imageclef(
    data_dir,
    train_csv=None,
    train_images=None,
    test_csv=None,
    test_images=None,
    strict_hierarchy=True,
):
    """`read_imageclef` without the strict rule: the index with every problem recorded.

    Args:
        data_dir: the folder laid out as in the module docstring.
        train_csv, train_images, test_csv, test_images: explicit code lists and image folders
            (default: found in `data_dir` by name).
        strict_hierarchy: as in `kerasmed.io.parse_irma_code`.
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"No such ImageCLEF folder: {data_dir}")
    given = {"train": (train_csv, train_images), "test": (test_csv, test_images)}
    splits, seen = {}, {}
    for split, (number, csv_name, folder_name) in IMAGECLEF_SPLITS.items():
        csv_path, image_dir = given[split]
        if csv_path is None:
            names = [csv_name, f"ImageCLEFmed2009_{split}.{number}.csv"]
            csv_path = _find_one(data_dir, names, f"*{split}*.csv", False, "code list", split)
        if image_dir is None:
            found = _find_one(data_dir, [folder_name], f"*{split}*", True, "image folder", split)
            image_dir = _image_folder(found)
        splits[split] = _read_split(split, csv_path, image_dir, strict_hierarchy, seen)
    all_codes = [*splits["train"].codes, *splits["test"].codes]
    if not all_codes:
        raise ValueError(
            f"No usable row in the code lists of {data_dir}:\n{splits['train'].report}\n"
            f"{splits['test'].report}\nReceived: data_dir={data_dir!r}"
        )
    label_map = IrmaLabelMap(all_codes, strict_hierarchy=strict_hierarchy)
    report = ImageCLEFReport(splits["train"].report, splits["test"].report)
    return ImageCLEFIndex(splits["train"], splits["test"], label_map, report)


def read_imageclef(data_dir, strict=True, **layout):
    """Reads the code lists of an ImageCLEF 2009 folder and finds every image file.

    The images are not decoded here (`kerasmed.data.load_imageclef_arrays` reads and
    preprocesses them, reporting those that cannot be decoded).

    Args:
        data_dir: the folder laid out as in the module docstring.
        strict: ``True`` (default) raises one `kerasmed.io.LoadError` listing every unusable
            row of both code lists; ``False`` skips them, warns, and lists them in
            ``index.report`` (the rule of `kerasmed.io.report`).
        **layout: the other arguments of `index_imageclef`: ``train_csv``, ``train_images``,
            ``test_csv``, ``test_images`` (explicit code lists and image folders; default:
            found in `data_dir` by name) and ``strict_hierarchy``.

    Returns:
        An `ImageCLEFIndex`.

    Raises:
        FileNotFoundError: `data_dir`, a code list or an image folder is missing.
        ValueError: a code list lacks the ``image_id`` or ``irma_code`` column, or no row of
            either list is usable; with ``strict``, a `kerasmed.io.LoadError` for unusable rows.

    Example:

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> codes = {"train": "1121-120-200-700", "test": "1123-110-500-000"}
    >>> for split, (_, csv_name, folder) in IMAGECLEF_SPLITS.items():
    ...     (root / folder).mkdir()
    ...     _ = (root / folder / f"{split}7.png").write_bytes(b"")  # not decoded here
    ...     _ = (root / csv_name).write_text(f"image_id;irma_code\\n{split}7;{codes[split]}\\n")
    >>> index = read_imageclef(root)
    >>> index.train.ids, index.test.codes, index.label_map.num_classes
    (('train7',), ('1123-110-500-000',), 2)
    """
    index = index_imageclef(data_dir, **layout)
    index.report.raise_or_warn(strict, "input(s)")
    return index
