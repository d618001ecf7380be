"""The load report: what a reader did not load, and why, with one meaning of ``strict``.

Every reader in `kerasmed.io` that can skip an input (a row of a CSV manifest or of
``labels.csv``, an image, a volume file, a DICOM file, a time point, a subject) follows one rule:

1. It checks every input first and collects every problem, each a `LoadProblem` naming the CSV
   row and/or the file and the reason.
2. ``strict=True`` (the default everywhere) then raises one `LoadError` (a ``ValueError``)
   listing every problem (up to 20, then "and N more"); a missing input folder or CSV file
   itself is a ``FileNotFoundError`` at once.
3. ``strict=False`` skips the inputs with a problem, returns what could be read with its
   `LoadReport` (the ``report`` attribute of the returned object) and warns once, saying how
   many inputs were skipped.

Inputs that are there but were not asked for are not problems: files in a folder that the
manifest does not list, files that are not DICOM images, the other series of a DICOM folder,
time points left out by ``timepoints=``. They never raise; they are listed in
``report.ignored`` and in the same warning, so nothing is dropped silently. A step that reads
what an earlier one listed (the images of a manifest, the volumes of a segmentation manifest)
returns a copy of the earlier report extended with its own entries; the earlier one is left
as it was.

The ``data_prep/`` scripts take ``--strict/--no-strict`` (`add_strict_argument`) with the same
meaning and default, and print their reports and write them to ``prepare_report.txt``
(`write_prepare_report`).

Example:

>>> report = LoadReport("labels.csv", num_rows=3)
>>> report.add("label must be 0 or 1", row=3, item="b", column="label", value="2")
>>> report.ignore("file in volumes/ not listed in labels.csv", path="volumes/x.npz")
>>> report.ok, report.skipped_rows, len(report.skipped)
(False, [3], 2)
>>> print(report)
labels.csv: 3 rows, 2 skipped
  row 3 (b): label must be 0 or 1 [label='2']
  volumes/x.npz: file in volumes/ not listed in labels.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import warnings

__all__ = ["LoadError", "LoadProblem", "LoadReport", "add_strict_argument", "write_prepare_report"]

_MAX_LISTED = 20  # problems listed in a message or a report's text; the rest are counted


@dataclasses.dataclass(frozen=True)
class LoadProblem:
    """One input that was not loaded, and why.

    Args:
        reason: why it was not loaded (when the fault is in a file, the reason or `path`
            names it).
        path: the file at fault (an image, a volume file, a DICOM file), or None.
        row: its line in the CSV file (the header is line 1), or None.
        item: what the row or file stands for (a volume id, a subject), or None.
        column: the CSV column at fault, or None.
        value: the cell's text, with `column`.

    ``str(problem)`` is ``"row 3 (b): reason [column='value']"``; without a row it starts with
    the path (or the item) instead.
    """

    reason: str
    path: str | None = None
    row: int | None = None
    item: str | None = None
    column: str | None = None
    value: str | None = None

    def __str__(self):
        if self.row is not None:
            where = f"row {self.row}" + (f" ({self.item})" if self.item is not None else "")
        else:
            where = self.path if self.path is not None else self.item
        cell = f" [{self.column}={self.value!r}]" if self.column is not None else ""
        return f"{where}: {self.reason}{cell}" if where is not None else f"{self.reason}{cell}"


def _listing(entries):
    lines = [f"  {entry}" for entry in entries[:_MAX_LISTED]]
    if len(entries) > _MAX_LISTED:
        lines.append(f"  ... and {len(entries) - _MAX_LISTED} more")
    return "\n".join(lines)


@dataclasses.dataclass
class LoadReport:
    """What a reader did not load from `source`, and why.

    Attributes:
        source: the CSV file or folder that was read.
        num_rows: data rows (CSV, header excluded) or files read.
        problems: a `LoadProblem` per input that could not be used (``strict=True`` raises
            on them, ``strict=False`` skips them).
        ignored: a `LoadProblem` per input that is there but was not asked for (never raises).
        unit: what `num_rows` counts, for the text (``"rows"`` or ``"files"``).
    """

    source: str
    num_rows: int = 0
    problems: list = dataclasses.field(default_factory=list)
    ignored: list = dataclasses.field(default_factory=list)
    unit: str = "rows"

    def add(self, reason, **where):
        """Records a problem: `reason` and where (``path=``, ``row=``, ``item=``, ...)."""
        self.problems.append(LoadProblem(str(reason), **where))

    def ignore(self, reason, **where):
        """Records an input left out on purpose (not a problem)."""
        self.ignored.append(LoadProblem(str(reason), **where))

    @property
    def ok(self) -> bool:
        """Whether there is no problem (ignored inputs do not count)."""
        return not self.problems

    @property
    def skipped(self) -> list:
        """Every input not loaded: the problems, then the ignored inputs."""
        return [*self.problems, *self.ignored]

    @property
    def skipped_rows(self) -> list:
        """CSV line numbers of the rows not loaded, sorted."""
        return sorted({p.row for p in self.skipped if p.row is not None})

    def _count(self, entries):
        """Distinct inputs among `entries`: rows, then files or items without a row."""
        return len({p.row if p.row is not None else (p.path, p.item) for p in entries})

    def __str__(self):
        head = f"{self.source}: {self.num_rows} {self.unit}, {self._count(self.skipped)} skipped"
        return "\n".join([head, _listing(self.skipped)]) if self.skipped else head

    def raise_or_warn(self, strict, what="input(s)", since=(0, 0), stacklevel=3):
        """Applies the strict rule to what was recorded after `since`.

        Args:
            strict: raise a `LoadError` if there is any problem (`check`); else warn.
            what: the inputs' name in the message (``"volume(s)"``, ``"row(s)"``...).
            since: ``(len(problems), len(ignored))`` before this reader's step (`mark`); a
                step that extends an earlier report (loading the images of a read manifest)
                applies the rule to its own entries only.
            stacklevel: of the warning, so that it points at the caller of the reader.

        Raises:
            LoadError: ``strict`` and a problem was recorded.
        """
        if strict:
            self.check(what, since)
        self.warn(what, since, stacklevel)

    def warn(self, what="input(s)", since=(0, 0), stacklevel=2):
        """Warns once, listing the inputs not loaded (problems and ignored) after `since`.

        `stacklevel` counts from the caller of `warn`: 2 (default) points at its caller.
        """
        skipped = self.problems[since[0] :] + self.ignored[since[1] :]
        if skipped:
            warnings.warn(
                f"{self.source}: {self._count(skipped)} {what} not loaded:\n{_listing(skipped)}",
                stacklevel=stacklevel + 1,
            )

    def check(self, what="input(s)", since=(0, 0)):
        """Raises a `LoadError` listing the problems recorded after `since`, if any."""
        problems = self.problems[since[0] :]
        if problems:
            raise LoadError(
                f"{self.source}: {self._count(problems)} {what} cannot be used:\n"
                f"{_listing(problems)}\nPass strict=False (--no-strict to a data_prep script) "
                "to skip them; the returned data's `report` then lists them. Received: strict=True",
                self,
            )

    def copy(self) -> LoadReport:
        """A new report with the same entries, for a later step to extend (not this one)."""
        return dataclasses.replace(self, problems=list(self.problems), ignored=list(self.ignored))

    def mark(self):
        """``(len(problems), len(ignored))``, for `raise_or_warn`'s ``since``."""
        return len(self.problems), len(self.ignored)


class LoadError(ValueError):
    """The ``ValueError`` of a reader with ``strict=True``: ``error.report`` lists every problem."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


def add_strict_argument(parser):
    """Adds ``--strict/--no-strict`` (default ``--strict``) to a ``data_prep/`` script's parser.

    Example:

    >>> parser = argparse.ArgumentParser()
    >>> add_strict_argument(parser)
    >>> parser.parse_args([]).strict, parser.parse_args(["--no-strict"]).strict
    (True, False)
    """
    parser.add_argument(
        "--strict",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stop with an error listing every unusable input (default); --no-strict skips "
        "them and lists them in prepare_report.txt",
    )


def write_prepare_report(folder, summary, *sections, max_printed=20000):
    """Writes and prints a ``data_prep/`` script's ``prepare_report.txt``.

    Args:
        folder: the script's output folder.
        summary: a JSON-serialisable dict (what was written), first in the file.
        *sections: `LoadReport` objects or texts, after it.
        max_printed: a longer text is written but only the summary is printed.

    Returns:
        The text written.

    Example:

    >>> import tempfile
    >>> text = write_prepare_report(tempfile.mkdtemp(), {"files": 1}, LoadReport("m.csv", 2))
    {
      "files": 1
    }
    <BLANKLINE>
    m.csv: 2 rows, 0 skipped
    """
    from kerasmed.io.prep_runner import write_text_atomic  # prep_runner imports this module

    text = "\n\n".join([json.dumps(summary, indent=2), *map(str, sections)]) + "\n"
    path = os.path.join(os.fspath(folder), "prepare_report.txt")
    write_text_atomic(path, text)  # a reader never sees half a report
    short = json.dumps(summary, indent=2) + f"\n(the full report is in {path})\n"
    print(text if len(text) <= max_printed else short, end="")
    return text
