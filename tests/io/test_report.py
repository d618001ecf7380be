"""The load report, the strict rule, and the shared CSV and .npz readers of kerasmed.io."""

import argparse
import warnings

import numpy as np
import pytest

from kerasmed.io import LoadError, LoadProblem, LoadReport
from kerasmed.io._csv import check_columns, read_csv_rows
from kerasmed.io._npz import load_npz
from kerasmed.io.report import _MAX_LISTED, add_strict_argument, write_prepare_report


def test_problem_text_names_the_row_or_the_file():
    assert str(LoadProblem("bad", row=3)) == "row 3: bad"
    assert str(LoadProblem("bad", row=3, item="b", column="label", value="2")) == (
        "row 3 (b): bad [label='2']"
    )
    assert str(LoadProblem("bad", row=3, path="x.npz", item="b")) == "row 3 (b): bad"
    assert str(LoadProblem("unreadable", path="a/x.dcm")) == "a/x.dcm: unreadable"
    assert str(LoadProblem("no folder", item="CQ500-CT-5")) == "CQ500-CT-5: no folder"
    assert str(LoadProblem("odd")) == "odd"


def _report(num_problems, num_ignored=0):
    report = LoadReport("m.csv", num_rows=num_problems + num_ignored + 1)
    for k in range(num_problems):
        report.add(f"problem {k}", row=k + 2)
    if num_problems:
        report.add("second problem of the first row", row=2)
    for k in range(num_ignored):
        report.ignore(f"ignored {k}", path=f"f{k}.npz")
    return report


def test_report_counts_rows_and_files_once():
    report = _report(2, num_ignored=1)
    assert not report.ok and report.skipped_rows == [2, 3]
    assert len(report.problems) == 3 and len(report.skipped) == 4
    assert str(report).splitlines() == [
        "m.csv: 4 rows, 3 skipped",  # rows 2 and 3, and one file
        "  row 2: problem 0",
        "  row 3: problem 1",
        "  row 2: second problem of the first row",
        "  f0.npz: ignored 0",
    ]
    assert LoadReport("d", 2, unit="files").ok and str(LoadReport("d", 2, unit="files")) == (
        "d: 2 files, 0 skipped"
    )


def test_strict_raises_one_error_listing_at_most_max_listed():
    report = _report(_MAX_LISTED + 4)
    with pytest.raises(LoadError) as info:
        report.raise_or_warn(True, "row(s)")
    message = str(info.value)
    assert isinstance(info.value, ValueError) and info.value.report is report
    assert message.startswith(f"m.csv: {_MAX_LISTED + 4} row(s) cannot be used:\n  row 2: ")
    assert f"\n  ... and {len(report.problems) - _MAX_LISTED} more\n" in message
    assert message.count("\n  row ") == _MAX_LISTED and message.endswith("Received: strict=True")


def test_not_strict_warns_once_and_ignored_inputs_never_raise():
    with pytest.warns(UserWarning, match=r"m\.csv: 2 row\(s\) not loaded") as caught:
        _report(1, num_ignored=1).raise_or_warn(False, "row(s)")
    assert len(caught) == 1
    with pytest.warns(UserWarning, match=r"1 input\(s\) not loaded:\n  f0.npz: ignored 0"):
        _report(0, num_ignored=1).raise_or_warn(True)  # strict, but nothing is a problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LoadReport("m.csv", 3).raise_or_warn(True)  # nothing to say: no warning
        LoadReport("m.csv", 3).check()


def test_since_applies_the_rule_to_a_later_step_only():
    report = _report(2)
    step = report.copy()
    start = step.mark()
    step.raise_or_warn(True, since=start)  # the earlier problems are not this step's
    step.add("image unreadable", row=9, path="i.png")
    assert len(report.problems) == 3 and len(step.problems) == 4  # the copy is independent
    with pytest.raises(LoadError, match=r"1 image\(s\) cannot be used:\n  row 9: image") as info:
        step.raise_or_warn(True, "image(s)", since=start)
    assert "problem 0" not in str(info.value)


def test_strict_argument_and_prepare_report(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_strict_argument(parser)
    assert parser.parse_args([]).strict and not parser.parse_args(["--no-strict"]).strict
    text = write_prepare_report(tmp_path, {"rows": 4}, _report(1), "Notes: none")
    assert (tmp_path / "prepare_report.txt").read_text() == text == capsys.readouterr().out
    assert text.startswith('{\n  "rows": 4\n}\n\nm.csv: 2 rows, 1 skipped\n') and "Notes" in text
    write_prepare_report(tmp_path, {"rows": 4}, _report(1), max_printed=10)
    printed = capsys.readouterr().out
    assert "m.csv" not in printed and str(tmp_path / "prepare_report.txt") in printed


def test_csv_rows_blank_lines_field_counts_and_encoding(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("\ufeff a , b ,c\n1, 2 ,3\n\n   \n4,5\n6,7,8,9\n".encode())
    header, rows = read_csv_rows(path)
    assert header == ["a", "b", "c"] and [r.line for r in rows] == [2, 5, 6]
    assert rows[0].cells == {"a": "1", "b": "2", "c": "3"} and rows[0].raw["b"] == " 2 "
    assert rows[1].cells["c"] == "" and "c" not in rows[1].raw
    assert rows[1].fields_reason(header) is None  # a short row: its last cells are empty
    assert rows[1].fields_reason(header, allow_short=False) == "2 fields, the header has 3"
    assert rows[2].fields_reason(header) == "4 fields, the header has 3"
    with pytest.raises(ValueError, match=r"missing columns \['d'\]; need d\. Received: header="):
        check_columns(path, header, ["a", "d"], "d")
    path.write_bytes("a,b\n\xe9t\xe9,1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"m\.csv is not UTF-8 text.*Received: path="):
        read_csv_rows(path)
    with pytest.raises(FileNotFoundError, match="No such labels file"):
        read_csv_rows(tmp_path / "none.csv", "labels")


def test_npz_keys_and_unreadable_files(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.arange(3), y=np.zeros(2))
    assert sorted(load_npz(tmp_path / "a.npz", ("x",), "toy")) == ["x"]
    with pytest.raises(
        ValueError,
        match=r"a\.npz is not a toy file: missing keys \['z'\]\. Received: keys=\['x', 'y'\]",
    ):
        load_npz(tmp_path / "a.npz", ("x", "z"), "toy")
    with pytest.raises(FileNotFoundError, match="toy file not found"):
        load_npz(tmp_path / "b.npz", ("x",), "toy")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not an \.npz \(zip\) file\. Received: path="):
        load_npz(tmp_path / "c.npz", ("x",), "toy")
    np.savez(tmp_path / "d.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"cannot read .*d\.npz \(ValueError: "):
        load_npz(tmp_path / "d.npz", ("x",), "toy")
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "e.npz").write_bytes(data[:-30])  # truncated: its zip directory is gone
    with pytest.raises(ValueError, match=r"e\.npz"):
        load_npz(tmp_path / "e.npz", ("x",), "toy")
