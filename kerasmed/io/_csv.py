"""The CSV files the readers take: a header row, then one row per input (shared parsing)."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import os


@dataclasses.dataclass(frozen=True)
class CsvRow:
    """One data row: its line in the file (the header is line 1) and its cells.

    Attributes:
        line: the line number (of the row's last line, for a quoted multi-line cell).
        cells: column -> text with the surrounding spaces removed (``""`` for a missing cell).
        raw: column -> text as read (absent where the row has fewer fields than the header).
        num_fields: how many fields the row has.
    """

    line: int
    cells: dict
    raw: dict
    num_fields: int

    def fields_reason(self, header, allow_short=True):
        """``"N fields, the header has M"`` when the row has too many (or, unless
        `allow_short`, too few) fields; else None. Missing trailing cells read as empty."""
        if self.num_fields > len(header) or (not allow_short and self.num_fields < len(header)):
            return f"{self.num_fields} fields, the header has {len(header)}"
        return None


def read_csv_rows(path, kind="manifest", delimiter=",", require_rows=True):
    """Reads a UTF-8 CSV file (a byte order mark is allowed) with a header row.

    Blank lines are passed over; header names and cells are stripped of surrounding spaces.
    An empty file, a file with a header but no data row, and a header that names a column
    twice (which column would a cell come from?) are refused.

    Args:
        path: the CSV file.
        kind: what the file is, for the messages (``"manifest"``, ``"labels"``).
        delimiter: the field separator (``","``; ImageCLEF's code lists use ``";"``).
        require_rows: refuse a file with a header but no data row (a reader that reports
            "nothing usable" itself passes False).

    Returns:
        ``(header, rows)``: the column names and a list of `CsvRow`.

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: the file is not UTF-8 text (the message gives the byte offset and line
            of the first invalid byte), not valid CSV, empty, without data rows, or its header
            repeats a column name.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such {kind} file: {path}")
    rows = []
    try:
        reader = csv.reader(io.StringIO(_decode(path, kind), newline=""), delimiter=delimiter)
        header = []
        for fields in reader:  # the first line that is not blank
            if any(f.strip() for f in fields):
                header = [h.strip() for h in fields]
                break
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            raw = dict(zip(header, fields))
            cells = {c: raw.get(c, "").strip() for c in header}
            rows.append(CsvRow(reader.line_num, cells, raw, len(fields)))
    except csv.Error as error:
        raise ValueError(
            f"{path} is not a valid CSV file ({error}). Received: path={path!r}"
        ) from error
    if not any(header):
        raise ValueError(
            f"{path} is empty: a {kind} file starts with a header row. Received: path={path!r}"
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ValueError(
            f"{path} (row 1, header): columns {repeated} appear more than once. "
            f"Received: header={header}"
        )
    if require_rows and not rows:
        raise ValueError(f"{path} has a header but no data rows. Received: header={header}")
    return header, rows


def _decode(path, kind):
    """The file's text: UTF-8 (after a byte order mark, if any), or a ValueError saying where not."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(
            f"{path} is UTF-16 text (it starts with a UTF-16 byte order mark); save the {kind} "
            f"file as UTF-8. Received: path={path!r}"
        )
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = skip + error.start
        line = data[:offset].count(b"\n") + 1
        raise ValueError(
            f"{path} is not UTF-8 text: byte 0x{data[offset]:02x} at offset {offset} (line "
            f"{line}) is not valid UTF-8 ({error.reason}); save the {kind} file as UTF-8 "
            f"(it may be Latin-1 or Windows-1252). Received: path={path!r}"
        ) from error


def read_manifest_csv(csv_path, image_root):
    """`read_csv_rows` of a manifest whose relative paths start from `image_root` (None: the
    CSV's folder); returns ``(csv_path, header, rows, root)``."""
    csv_path = os.fspath(csv_path)
    header, rows = read_csv_rows(csv_path)
    root = os.fspath(image_root) if image_root is not None else os.path.dirname(csv_path)
    return csv_path, header, rows, root


def check_columns(path, header, required, need=""):
    """Raises ``ValueError`` naming the missing `required` columns (and `need`, what is needed)."""
    missing = [c for c in required if c not in header]
    if missing:
        need = f"; need {need}" if need else ""
        raise ValueError(
            f"{path} (row 1, header): missing columns {missing}{need}. Received: header={header}"
        )
