"""Tests of `kerasmed.io.prep_runner`: resume after an interruption, atomic outputs, pool."""

import argparse
import functools
import json
import os

import cv2
import numpy as np
import pytest

from kerasmed.io import (
    LoadError,
    PrepTask,
    add_prep_arguments,
    atomic_path,
    positive_int,
    run_prep,
    save_npz_atomic,
    write_text_atomic,
)


class Interrupted(Exception):
    """Stands for a killed run: not one of the runner's reported errors."""


def square_file(args):
    """Writes ``<n>.npz`` with a few arrays computed from n; fails on purpose on request."""
    out, n = args
    if n == 5:
        raise ValueError(f"input {n} is unreadable")
    if n == 3 and os.path.exists(os.path.join(out, "interrupt")):
        raise Interrupted(n)
    values = np.arange(n + 1) ** 2
    save_npz_atomic(os.path.join(out, f"{n}.npz"), values=values, n=np.int64(n))
    return {"outputs": [f"{n}.npz"], "total": int(values.sum())}


def _tasks(out, numbers=range(7)):
    return [PrepTask(f"item{n}", (str(out), n), source=f"in/{n}.txt") for n in numbers]


def _outputs(out):
    arrays = {}
    for name in sorted(os.listdir(out)):
        if name.endswith(".npz"):
            with np.load(os.path.join(out, name), allow_pickle=False) as data:
                arrays[name] = {k: data[k].tolist() for k in data.files}
    return arrays


def test_interrupted_run_resumes_with_only_the_rest(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    full.mkdir(), part.mkdir()
    with pytest.warns(UserWarning, match="in/5.txt"):
        run = run_prep(_tasks(full), square_file, full / ".prep", workers=0, progress=False,
                       strict=False, settings={"size": 1})  # fmt: skip
    assert run.computed == ["item0", "item1", "item2", "item3", "item4", "item6"]
    assert [str(p) for p in run.report.problems] == ["in/5.txt: ValueError: input 5 is unreadable"]
    (part / "interrupt").touch()
    with pytest.raises(Interrupted):
        run_prep(_tasks(part), square_file, part / ".prep", workers=0, progress=False,
                 strict=False, settings={"size": 1})  # fmt: skip
    assert sorted(os.listdir(part / ".prep")) == ["item0.json", "item1.json", "item2.json"]
    (part / "interrupt").unlink()
    with pytest.warns(UserWarning, match="1 input"):
        again = run_prep(_tasks(part), square_file, part / ".prep", workers=0, progress=False,
                         strict=False, settings={"size": 1})  # fmt: skip
    assert again.resumed == ["item0", "item1", "item2"]
    assert again.computed == ["item3", "item4", "item6"]
    assert _outputs(part) == _outputs(full) and len(_outputs(full)) == 6
    assert again.records == run.records and again.records["item4"]["total"] == 30
    assert not [n for n in os.listdir(part) if n.startswith(".") and n != ".prep"]


def test_what_counts_as_done(tmp_path):
    tasks = _tasks(tmp_path, [1, 2, 3, 4])
    kwargs = dict(workers=0, progress=False, settings={"size": 1})
    run_prep(tasks, square_file, tmp_path / ".prep", **kwargs)
    (tmp_path / "2.npz").unlink()  # output gone: not done
    (tmp_path / ".prep" / "item3.json").write_text('{"key": "item3", "sett')  # torn record
    run = run_prep(tasks, square_file, tmp_path / ".prep", **kwargs)
    assert run.computed == ["item2", "item3"] and run.resumed == ["item1", "item4"]
    kwargs["settings"] = {"size": 2}  # other settings: everything again
    assert run_prep(tasks, square_file, tmp_path / ".prep", **kwargs).resumed == []
    record = json.loads((tmp_path / ".prep" / "item1.json").read_text())
    assert record["settings"] == {"size": 2} and record["record"]["total"] == 1


def test_strict_raises_after_writing_the_others(tmp_path):
    with pytest.raises(LoadError, match=r"(?s)1 input\(s\) cannot be used.*in/5.txt: ValueError"):
        run_prep(_tasks(tmp_path), square_file, tmp_path / ".prep", workers=0, progress=False)
    assert len(_outputs(tmp_path)) == 6  # the others are written and journaled
    run = run_prep(_tasks(tmp_path, [0, 1]), square_file, tmp_path / ".prep", progress=False)
    assert run.resumed == ["item0", "item1"] and run.workers == 0


def test_atomic_path_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a.npz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            with open(temporary, "wb") as f:
                f.write(b"PK\x03\x04 half a zip")
            raise RuntimeError("killed mid-write")
    assert os.listdir(tmp_path) == []
    save_npz_atomic(target, x=np.arange(3))
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            raise RuntimeError("killed before the rename")
    with np.load(target) as data:  # the old complete file is untouched
        np.testing.assert_array_equal(data["x"], [0, 1, 2])
    assert os.listdir(tmp_path) == ["a.npz"]


def test_two_workers_give_the_outputs_of_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    kw = dict(progress=False, strict=False)
    with pytest.warns(UserWarning):
        first = run_prep(_tasks(one), square_file, one / ".prep", workers=0, **kw)
    with pytest.warns(UserWarning):
        second = run_prep(_tasks(two), square_file, two / ".prep", workers=2, **kw)
    assert second.workers == 2 and second.records == first.records
    assert second.computed == first.computed  # task order, whatever order they finished in
    assert _outputs(one) == _outputs(two)
    assert [str(p) for p in second.report.problems] == [str(p) for p in first.report.problems]


def test_arguments_and_task_checks(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="prep")
    parser.add_argument("--size", type=positive_int, default=8)
    add_prep_arguments(parser)
    args = parser.parse_args([])
    assert (args.size, args.workers, args.strict, args.no_progress) == (8, None, True, False)
    for argv, expected in ((["--size", "0"], "argument --size: must be a positive integer. "
                            "Received: '0'"), (["--size", "x"], "Received: 'x'"),
                           (["--workers", "-1"], "argument --workers: must be an integer >= 0")):  # fmt: skip
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert expected in capsys.readouterr().err
    with pytest.raises(ValueError, match="duplicate keys \\['a'\\]"):
        run_prep([PrepTask("a"), PrepTask("a")], square_file, tmp_path / "s", progress=False)
    with pytest.raises(ValueError, match="Received: workers=-2"):
        run_prep([PrepTask("a")], square_file, tmp_path / "s", workers=-2)


def test_atomic_outputs_get_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = write_text_atomic(tmp_path / "atomic.txt", "x")
    assert os.stat(atomic).st_mode & 0o777 == os.stat(plain).st_mode & 0o777


def opencv_threads(_):
    import cv2

    return {"threads": cv2.getNumThreads()}


def test_task_settings_decide_done_per_task(tmp_path):
    kwargs = dict(workers=0, progress=False, settings={"size": 1})
    tasks = [PrepTask(f"item{n}", (str(tmp_path), n), settings={"stamp": [n, 0]}) for n in (1, 2)]
    run_prep(tasks, square_file, tmp_path / ".prep", **kwargs)
    assert json.loads((tmp_path / ".prep" / "item1.json").read_text())["task_settings"] == {
        "stamp": [1, 0]
    }
    # one task's source changed (another stamp): that task only runs again
    tasks[1] = PrepTask("item2", (str(tmp_path), 2), settings={"stamp": [2, 9]})
    run = run_prep(tasks, square_file, tmp_path / ".prep", **kwargs)
    assert run.resumed == ["item1"] and run.computed == ["item2"]
    # a task without settings is not done by a record written with some
    plain = [PrepTask("item1", (str(tmp_path), 1))]
    assert run_prep(plain, square_file, tmp_path / ".prep", **kwargs).computed == ["item1"]
    assert "task_settings" not in json.loads((tmp_path / ".prep" / "item1.json").read_text())


def test_strict_none_applies_no_rule_and_initializer_runs_in_each_worker(tmp_path, recwarn):
    run = run_prep(_tasks(tmp_path, [4, 5]), square_file, tmp_path / ".prep", workers=0,
                   progress=False, strict=None)  # fmt: skip
    assert [str(p) for p in run.report.problems] == ["in/5.txt: ValueError: input 5 is unreadable"]
    assert not [w for w in recwarn if "not loaded" in str(w.message)]
    tasks = [PrepTask(str(n), n) for n in range(2)]
    run = run_prep(tasks, opencv_threads, tmp_path / "cv", workers=2, progress=False,
                   initializer=functools.partial(cv2.setNumThreads, 7))  # fmt: skip
    assert run.workers == 2 and [r["threads"] for r in run.records.values()] == [7, 7]


def square_in_memory(n):
    """Returns its output instead of writing it (a run without a journal)."""
    if n == 5:
        raise ValueError(f"input {n} is unreadable")
    return {"values": np.arange(n + 1) ** 2}


def test_without_a_journal_outputs_come_back_in_memory_and_nothing_is_written(
    tmp_path, monkeypatch, recwarn
):
    monkeypatch.chdir(tmp_path)
    tasks = [PrepTask(f"item{n}", n, source=f"in/{n}.txt") for n in range(7)]
    kw = dict(progress=False, finish=lambda task, result: {**result, "key": task.key})
    with pytest.raises(LoadError, match=r"(?s)in memory: 1 input\(s\) cannot be used.*in/5.txt"):
        run_prep(tasks, square_in_memory, None, workers=0, **kw)
    with pytest.warns(UserWarning, match="in/5.txt: ValueError: input 5 is unreadable"):
        serial = run_prep(tasks, square_in_memory, None, workers=0, strict=False, **kw)
    assert list(serial.records) == ["item0", "item1", "item2", "item3", "item4", "item6"]
    assert serial.computed == list(serial.records) and serial.resumed == []
    np.testing.assert_array_equal(serial.records["item4"]["values"], [0, 1, 4, 9, 16])
    assert serial.records["item4"]["key"] == "item4"  # finish ran on each result
    recwarn.clear()
    pooled = run_prep(tasks, square_in_memory, None, workers=2, strict=None, **kw)
    assert not recwarn.list and pooled.workers == 2 and pooled.computed == serial.computed
    problems = [str(p) for p in pooled.report.problems]
    assert problems == ["in/5.txt: ValueError: input 5 is unreadable"]
    for key, record in serial.records.items():
        np.testing.assert_array_equal(pooled.records[key]["values"], record["values"])
    assert os.listdir(tmp_path) == []  # no journal, no output
