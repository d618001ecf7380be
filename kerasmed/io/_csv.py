"""The CSV files the readers take: a header row, then one row per input (shared parsing)."""

from __future__ import annotations

import csv
import dataclasses
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


def read_csv_rows(path, kind="manifest", delimiter=","):
    """Reads a UTF-8 CSV file (a byte order mark is allowed) with a header row.

    Blank lines are passed over; header names and cells are stripped of surrounding spaces.

    Args:
        path: the CSV file.
        kind: what the file is, for the messages (``"manifest"``, ``"labels"``).
        delimiter: the field separator (``","``; ImageCLEF's code lists use ``";"``).

    Returns:
        ``(header, rows)``: the column names and a list of `CsvRow`.

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: the file is not UTF-8 text or not valid CSV.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such {kind} file: {path}")
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = [h.strip() for h in next(reader, [])]
            for fields in reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                raw = dict(zip(header, fields))
                cells = {c: raw.get(c, "").strip() for c in header}
                rows.append(CsvRow(reader.line_num, cells, raw, len(fields)))
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text ({error}); save the {kind} file as UTF-8. "
            f"Received: path={path!r}"
        ) from error
    except csv.Error as error:
        raise ValueError(
            f"{path} is not a valid CSV file ({error}). Received: path={path!r}"
        ) from error
    return header, rows


def check_columns(path, header, required, need=""):
    """Raises ``ValueError`` naming the missing `required` columns (and `need`, what is needed)."""
    missing = [c for c in required if c not in header]
    if missing:
        need = f"; need {need}" if need else ""
        raise ValueError(
            f"{path} (row 1, header): missing columns {missing}{need}. Received: header={header}"
        )
