"""``data_prep/longitudinal_manifest.py`` and ``longitudinal_segmentation.py`` on the shared runner.

Each script reads one patient (subject) per task into ``OUT/.parts`` and journals it in
``OUT/.prep`` (`kerasmed.io.prep_runner.run_prep`): an interrupted run resumes with only the
rest, a changed setting or input is read again, two workers write what one process writes.
"""

import os

import cv2
import numpy as np
import pytest

from kerasmed.io.longitudinal_nifti import read_subject_slices
from kerasmed.io.manifest import (
    item_key,
    load_patient_exams,
    read_patient_exams,
    save_patient_exams,
)
from kerasmed.io.prep_runner import PrepTask
from kerasmed.io.report import LoadError
from kerasmed.io.segmentation_manifest import read_segmentation_manifest
from kerasmed.io.segmentation_prep import (
    load_subject_slices,
    save_subject_slices,
    subject_manifest,
)
from tests.data_prep_scripts import load_data_prep_script

QUIET = ["--no-progress"]


def _npz_arrays(path):
    with np.load(path) as data:
        return {key: (data[key].dtype.str, data[key].shape, data[key].tobytes()) for key in data}


def _hidden_leftovers(out):
    """Temporary files (atomic writes) left anywhere under `out`."""
    return [name for _, _, names in os.walk(out) for name in names if ".tmp" in name]


def _interrupt_at(module, name, k, monkeypatch):
    """Makes the `k`-th call of `module.name` (1-based) raise KeyboardInterrupt."""
    work, calls = getattr(module, name), []

    def interrupted(args):
        calls.append(args)
        if len(calls) == k:
            raise KeyboardInterrupt
        return work(args)

    monkeypatch.setattr(module, name, interrupted)
    return calls


# script -> (its input fixture, work function, options, items, outputs)
INTERRUPTED = {
    "longitudinal_manifest.py": (
        "exams", "save_patient_exams", ["--image-size", "4", "6"],
        ["p0", "p1", "p2"], ["sequences.npz", "train.npz", "test.npz"],
    ),
    "longitudinal_segmentation.py": (
        "example", "save_subject_slices", ["--slices", "0.3:0.7", "--image-size", "12"],
        ["sub-01", "sub-02"], ["segmentation.npz"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(INTERRUPTED))
def test_interrupted_run_resumes_with_only_the_rest(name, request, tmp_path, monkeypatch):
    fixture, work, options, items, outputs = INTERRUPTED[name]
    script = load_data_prep_script(name)
    argv = [str(request.getfixturevalue(fixture)), *options, "--workers", "0", *QUIET]
    whole = script.main([*argv, "--out", str(tmp_path / "whole")])
    assert whole["computed"] == items and whole["prep"]["workers"] == 0
    out = tmp_path / "out"
    calls = _interrupt_at(script, work, 2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        script.main([*argv, "--out", str(out)])
    assert len(calls) == 2 and not any((out / output).exists() for output in outputs)
    assert len(os.listdir(out / ".parts")) == 1 and not _hidden_leftovers(out)
    monkeypatch.undo()
    again = script.main([*argv, "--out", str(out)])
    assert again["resumed"] == items[:1] and again["computed"] == items[1:]
    assert again["prep"] == {**again["prep"], "tasks": len(items), "resumed": 1}
    for output in outputs:
        assert _npz_arrays(out / output) == _npz_arrays(tmp_path / "whole" / output), output
    assert script.main([*argv, "--out", str(out)])["computed"] == []


# ---------------------------------------------------------------- longitudinal_manifest.py


@pytest.fixture
def exams(tmp_path):
    """3 patients x 2 exams (8 x 10 PNGs) and their manifest."""
    rng = np.random.default_rng(0)
    lines = ["patient_id,study_date,image_path,effusion,split"]
    for p in range(3):
        for t in range(2):
            image = rng.integers(0, 256, (8, 10), dtype=np.uint8)
            cv2.imwrite(str(tmp_path / f"p{p}_{t}.png"), image)
            lines.append(f"p{p},2012-0{t + 1}-15,p{p}_{t}.png,{t},{'train' if p else 'test'}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "m.csv"


def test_manifest_new_image_size_or_changed_image_is_read_again(exams, tmp_path):
    script = load_data_prep_script("longitudinal_manifest.py")
    argv = [str(exams), "--out", str(tmp_path / "out"), "--workers", "0", *QUIET]
    assert script.main([*argv, "--image-size", "4"])["computed"] == ["p0", "p1", "p2"]
    again = script.main([*argv, "--image-size", "4", "--image-dtype", "float32"])
    assert again["computed"] == [] and again["resumed"] == ["p0", "p1", "p2"]
    bigger = script.main([*argv, "--image-size", "5"])
    assert bigger["computed"] == ["p0", "p1", "p2"]
    with np.load(tmp_path / "out" / "sequences.npz") as data:
        assert data["images"].shape == (6, 5, 5) and data["images"].dtype == np.uint8
    (tmp_path / "p1_0.png").write_bytes(b"not a png")  # p1 changed: read again, reported
    with pytest.raises(LoadError, match=r"row 4: cannot read image: .*p1_0\.png"):
        script.main([*argv, "--image-size", "5"])
    with pytest.warns(UserWarning, match=r"1 image\(s\) not loaded"):
        kept = script.main([*argv, "--image-size", "5", "--no-strict", "--min-exams", "1"])
    assert kept["computed"] == [] and kept["skipped_rows"] == [4]  # the failure is journaled
    assert kept["files"]["sequences.npz"] == {"patients": 3, "exams": 5}


def test_manifest_output_is_streamed_from_disk(exams, tmp_path):
    from kerasmed.io.sequences import MappedImages, load_longitudinal_npz

    script = load_data_prep_script("longitudinal_manifest.py")
    script.main([str(exams), "--image-size", "4", "--out", str(tmp_path), "--workers", "0", *QUIET])
    for name in ("sequences.npz", "train.npz", "test.npz"):
        streamed = load_longitudinal_npz(tmp_path / name, stream=True)  # uncompressed: mapped
        in_memory = load_longitudinal_npz(tmp_path / name, stream=False)
        assert all(isinstance(x, MappedImages) for x in streamed.images), name
        assert all(x.stored.dtype == np.uint8 for x in streamed.images), name
        for a, b in zip(streamed.images, in_memory.images):
            np.testing.assert_array_equal(np.asarray(a), b)


def test_manifest_two_workers_write_what_one_process_writes(exams, tmp_path):
    script = load_data_prep_script("longitudinal_manifest.py")
    argv = [str(exams), "--image-size", "4", *QUIET]
    script.main([*argv, "--out", str(tmp_path / "one"), "--workers", "0"])
    two = script.main([*argv, "--out", str(tmp_path / "two"), "--workers", "2"])
    assert two["prep"]["workers"] == 2 and two["computed"] == ["p0", "p1", "p2"]
    for name in ("sequences.npz", "train.npz", "test.npz"):
        assert _npz_arrays(tmp_path / "two" / name) == _npz_arrays(tmp_path / "one" / name)


def test_patient_part_round_trip_and_item_key(exams, tmp_path):
    paths = [str(exams.parent / "p0_0.png"), str(tmp_path / "missing.png")]
    images, failures = read_patient_exams(paths, (4, 4))
    record = save_patient_exams((str(tmp_path), "part.npz", paths, (4, 4)))
    assert record["outputs"] == ["part.npz"] and record["failures"][0][0] == 1
    loaded, failed = load_patient_exams(tmp_path, record)
    np.testing.assert_array_equal(loaded, images)
    assert failed == failures and "missing.png" in failed[0][1] and images.shape == (1, 4, 4)
    key = item_key("p 0/x", paths)
    assert key.startswith("p_0_x-") and PrepTask(key).key == key
    assert item_key("p 0/x", paths[:1]) != key and item_key("p 0/x", paths, "d") != key


# ---------------------------------------------------------------- longitudinal_segmentation.py


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The script's synthetic example: 2 subjects x 3 time points, T1w + T2w."""
    folder = tmp_path_factory.mktemp("example")
    return load_data_prep_script("longitudinal_segmentation.py").write_example(folder)


@pytest.mark.filterwarnings("ignore:.*time point.s. or subject.s. not loaded")
def test_segmentation_changed_setting_is_read_again(example, tmp_path):
    script = load_data_prep_script("longitudinal_segmentation.py")
    argv = [str(example), "--out", str(tmp_path / "out"), "--workers", "0", *QUIET]
    assert script.main(argv)["computed"] == ["sub-01", "sub-02"]
    assert script.main(argv)["resumed"] == ["sub-01", "sub-02"]
    for change in (["--image-size", "8"], ["--slices", "all"], ["--timepoints", "0,12"],
                   ["--label-map", "0:0,1:1,2:2,3:1"], ["--normalize", "none"]):  # fmt: skip
        done = script.main([*argv, *change])
        assert done["computed"] == ["sub-01", "sub-02"], change
    assert done["images_shape"] == [2, 3, 28, 24, 2] and done["resumed"] == []


@pytest.mark.filterwarnings("ignore:.*time point.s. or subject.s. not loaded")
def test_segmentation_resumed_problems_follow_the_manifest_rows(example, tmp_path):
    script = load_data_prep_script("longitudinal_segmentation.py")
    lines = example.read_text().splitlines()
    moved = example.parent / "moved.csv"  # sub-02 first: sub-01's rows 2-4 become rows 5-7
    moved.write_text("\n".join([lines[0], *lines[4:], *lines[1:4]]) + "\n")
    argv = ["--timepoints", "0,12", "--workers", "0", *QUIET, "--out", str(tmp_path / "out")]
    first = script.main([str(example), *argv])
    assert first["skipped_rows"] == [3, 6] and first["computed"] == ["sub-01", "sub-02"]
    moved_run = script.main([str(moved), *argv])
    assert moved_run["resumed"] == ["sub-02", "sub-01"] and moved_run["computed"] == []
    report = (tmp_path / "out" / "prepare_report.txt").read_text()
    skipped = "time point skipped: not in timepoints=[0.0, 12.0]"
    assert report.index(f"row 3: {skipped}") < report.index(f"row 6: {skipped}")  # in CSV order


def test_segmentation_two_workers_write_what_one_process_writes(example, tmp_path):
    script = load_data_prep_script("longitudinal_segmentation.py")
    argv = [str(example), "--slices", "all", *QUIET]
    script.main([*argv, "--out", str(tmp_path / "one"), "--workers", "0"])
    two = script.main([*argv, "--out", str(tmp_path / "two"), "--workers", "2"])
    assert two["prep"]["workers"] == 2 and two["computed"] == ["sub-01", "sub-02"]
    one_npz, two_npz = (tmp_path / name / "segmentation.npz" for name in ("one", "two"))
    assert _npz_arrays(two_npz) == _npz_arrays(one_npz)


def test_subject_part_round_trip(example, tmp_path):
    manifest = read_segmentation_manifest(example)
    options = {"slices": "labelled", "image_size": None, "normalize": "zscore",
               "timepoints": [0.0, 6.0], "label_map": None}  # fmt: skip
    record = save_subject_slices((str(tmp_path), "s.npz", subject_manifest(manifest, 1), options))
    direct = read_subject_slices(manifest, 1, **options)
    loaded = load_subject_slices(tmp_path, record, manifest.rows[1] + 10)
    np.testing.assert_array_equal(loaded.images, direct.images)
    np.testing.assert_array_equal(loaded.labels, direct.labels)
    assert loaded.labels.dtype == np.int16 and loaded.kept == direct.kept == [0, 1]
    assert [p.row for p in loaded.ignored] == [p.row + 10 for p in direct.ignored] == [17]
    assert loaded.slice_indices == direct.slice_indices and loaded.slice_error is None
