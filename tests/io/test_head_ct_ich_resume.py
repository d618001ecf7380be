"""``data_prep/head_ct_ich.py`` on the shared runner: interrupt and resume, workers, batches."""

import os

import numpy as np
import pydicom
import pytest
from data_prep_scripts import load_data_prep_script
from test_dicom import write_slice  # tests/io/test_dicom.py

from kerasmed.io import LoadError, head_ct_datasets, load_volume_set

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")

prep = load_data_prep_script("head_ct_ich.py", "head_ct_ich_resume")
SIZE = 4


def _study(folder, uid, tag, z_values=(0.0, 5.0, 10.0)):
    folder.mkdir(parents=True)
    for k, z in enumerate(z_values):
        pixels = np.full((SIZE, SIZE), 10 * tag + k, np.int16)
        write_slice(folder / f"CT{k}.dcm", pixels, (0, 0, z), series_uid=uid, description="Plain")


@pytest.fixture
def cq500(tmp_path):
    """Five CQ500 studies of one 3-slice series each (study 3's two slices share a position)."""
    root = tmp_path / "cq500"
    rows = ["name,Category,R1:ICH,R2:ICH,R3:ICH"]
    for n in range(5):
        z = (0.0, 5.0, 5.0) if n == 3 else (0.0, 5.0, 10.0)
        _study(root / f"CQ500CT{n} CQ500CT{n}" / "Unknown Study" / "CT Plain", f"1.{n}", n, z)
        rows.append(f"CQ500-CT-{n},B1,{n % 2},{n % 2},0")
    reads = tmp_path / "reads.csv"
    reads.write_text("\n".join(rows) + "\n")
    return ["cq500", "--root", str(root), "--reads", str(reads), "--slice-size", "0",
            "--min-slices", "3", "--no-progress"]  # fmt: skip


def _set(out):
    """Everything a reader of the set sees: the index, the sources and every array."""
    data = load_volume_set(out)
    arrays = [(v.tolist(), s.tolist()) for v, s in zip(data.volumes, data.spacing)]
    return (out / "labels.csv").read_text(), (out / "sources.csv").read_text(), arrays


def test_an_interrupted_run_resumes_with_only_the_rest(cq500, tmp_path, monkeypatch):
    full, part = tmp_path / "full", tmp_path / "part"
    expected = prep.main(cq500 + ["--out", str(full), "--workers", "0"])
    assert (expected["volumes_written"], expected["computed"], expected["resumed"]) == (4, 5, 0)
    read, reading = [], head_ct_datasets.read_series_files

    def read_or_stop(paths, *args):  # the third study's read is where the run is killed
        read.append(paths[0].split("CQ500CT")[1][0])
        if len(read) == 3 and interrupt:
            raise KeyboardInterrupt
        return reading(paths, *args)

    interrupt = True
    monkeypatch.setattr(head_ct_datasets, "read_series_files", read_or_stop)
    with pytest.raises(KeyboardInterrupt):
        prep.main(cq500 + ["--out", str(part), "--workers", "0"])
    assert read == ["0", "1", "2"]
    assert sorted(p.name for p in (part / "volumes").iterdir()) == [
        "CQ500-CT-0.npz",
        "CQ500-CT-1.npz",
    ]
    assert not (part / "labels.csv").exists()  # an interrupted run is not a volume set
    interrupt, read[:] = False, []
    scanned, scan = [], head_ct_datasets.group_study_series
    monkeypatch.setattr(
        head_ct_datasets, "group_study_series", lambda f: scanned.append(f) or scan(f)
    )
    summary = prep.main(cq500 + ["--out", str(part), "--workers", "0"])
    assert read == ["2", "3", "4"]  # the rest only
    assert scanned == []  # the headers too: from the journal
    assert (summary["computed"], summary["resumed"]) == (3, 2)
    assert _set(part) == _set(full)
    report = (part / "prepare_report.txt").read_text()  # the files named are the study's own
    assert "CQ500-CT-3: no usable series: 'Plain': ValueError: Duplicate slice positions" in report
    assert f"{cq500[2]}/CQ500CT3 CQ500CT3/Unknown Study/CT Plain/CT1.dcm and " in report
    # a complete set with the same settings: nothing to do; other settings need --overwrite
    read[:] = []
    again = prep.main(cq500 + ["--out", str(part), "--workers", "0"])
    assert read == [] and (again["computed"], again["resumed"]) == (0, 5)
    assert _set(part) == _set(full)
    with pytest.raises(SystemExit, match=r"other settings \(hu_dtype\); --overwrite"):
        prep.main(cq500 + ["--out", str(part), "--hu-dtype", "float32"])
    fresh = prep.main(cq500 + ["--out", str(part), "--workers", "0", "--overwrite"])
    assert read == ["0", "1", "2", "3", "4"] and fresh["computed"] == 5


def test_two_workers_write_what_one_process_writes(cq500, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    first = prep.main(cq500 + ["--out", str(one), "--workers", "0", "--max-studies", "3"])
    second = prep.main(cq500 + ["--out", str(two), "--workers", "2", "--max-studies", "3"])
    assert (first["workers"], second["workers"]) == (0, 2)
    assert _set(one) == _set(two) and len(_set(one)[2]) == 3
    # after the summary (its "out" and "workers" differ): every section of the report
    report = [(out / "prepare_report.txt").read_text().split("\n\n", 1)[1] for out in (one, two)]
    assert report[0] == report[1] and "CQ500CT3 CQ500CT3: no row in reads.csv" not in report[0]


def _rsna(tmp_path):
    """Four RSNA series of 2 slices (ID_s0's two share a position); the argv of the script."""
    folder = tmp_path / "train"
    folder.mkdir()
    rows = ["ID,Label"]
    for s, z_values in enumerate([(0.0, 0.0), (0.0, 5.0), (0.0, 5.0), (0.0, 5.0)]):
        for k, z in enumerate(z_values):
            pixels = np.full((SIZE, SIZE), s, np.int16)
            write_slice(folder / f"ID_{s}{k}.dcm", pixels, (0, 0, z), series_uid=f"ID_s{s}")
            rows.append(f"ID_{s}{k}_any,{int(s == 2 and k == 1)}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return ["rsna", "--dicom-dir", str(folder), "--labels", str(labels), "--out",
            str(tmp_path / "out"), "--slice-size", "0", "--workers", "0", "--no-progress"]  # fmt: skip


def test_rsna_max_series_counts_written_volumes(tmp_path):
    out = tmp_path / "out"
    summary = prep.main(_rsna(tmp_path) + ["--max-series", "2"])
    # ID_s0 is refused (two slices at z=0): ID_s1, ID_s2 are written
    data = load_volume_set(out)
    assert data.ids == ["ID_s1", "ID_s2"] and data.labels.tolist() == [0, 1]
    assert [s.tolist() for s in data.slice_labels] == [[0, 0], [0, 1]]
    assert (summary["computed"], summary["volumes_written"]) == (3, 2)
    assert "series ID_s0: " in (out / "prepare_report.txt").read_text()


def _rewrite(path, value, description="Plain", mtime_ns=None):
    """Rewrites the slice `path` in place with pixels `value` (same position and series);
    its modification time becomes `mtime_ns`, or one second later than before."""
    ds = pydicom.dcmread(path)
    before = path.stat()
    pixels = np.full((SIZE, SIZE), value, np.int16)
    write_slice(path, pixels, ds.ImagePositionPatient, series_uid=ds.SeriesInstanceUID,
                description=description)  # fmt: skip
    later = before.st_mtime_ns + 10**9 if mtime_ns is None else mtime_ns
    os.utime(path, ns=(later, later))
    return before


def _count_work(monkeypatch):
    """Lists the folders whose headers are read (CQ500), the files whose header is read (RSNA)
    and the first file of each series read (both), as the work functions run."""
    seen = {"studies": [], "headers": [], "series": []}
    scan, header, reading = (head_ct_datasets.group_study_series, head_ct_datasets.read_header,
                             head_ct_datasets.read_series_files)  # fmt: skip

    def group(folder):
        seen["studies"].append(folder)
        return scan(folder)

    def read_header(path):
        seen["headers"].append(os.path.basename(path))
        return header(path)

    def read(paths, *args):
        seen["series"].append(os.path.basename(os.fspath(paths[0])))
        return reading(paths, *args)

    monkeypatch.setattr(head_ct_datasets, "group_study_series", group)
    monkeypatch.setattr(head_ct_datasets, "read_header", read_header)
    monkeypatch.setattr(head_ct_datasets, "read_series_files", read)
    return seen


def test_a_cq500_file_rewritten_in_place_is_redone(cq500, tmp_path, monkeypatch):
    out = tmp_path / "out"
    argv = cq500 + ["--out", str(out), "--workers", "0"]
    prep.main(argv)
    study = tmp_path / "cq500" / "CQ500CT2 CQ500CT2"
    changed = study / "Unknown Study" / "CT Plain" / "CT0.dcm"
    before = _rewrite(changed, 77)  # same size, a later modification time
    assert changed.stat().st_size == before.st_size
    seen = _count_work(monkeypatch)
    summary = prep.main(argv)
    assert seen["studies"] == [os.fspath(study)] and len(seen["series"]) == 1  # study 2 only
    assert (summary["computed"], summary["resumed"]) == (1, 4)
    data = load_volume_set(out)
    assert data.volumes[data.ids.index("CQ500-CT-2")][0].tolist() == [[77 * 2 - 1000] * SIZE] * SIZE
    # another size, the modification time of the previous version: redone again
    mtime = changed.stat().st_mtime_ns
    _rewrite(changed, 78, description="Plain axial", mtime_ns=mtime)
    assert changed.stat().st_size != before.st_size and changed.stat().st_mtime_ns == mtime
    seen["studies"][:], seen["series"][:] = [], []
    summary = prep.main(argv)
    assert seen["studies"] == [os.fspath(study)] and len(seen["series"]) == 1
    assert load_volume_set(out).volumes[2][0, 0, 0] == 78 * 2 - 1000
    # nothing changed: everything from the journal
    seen["studies"][:], seen["series"][:] = [], []
    summary = prep.main(argv)
    assert seen["studies"] == seen["series"] == [] and summary["resumed"] == 5


def test_an_rsna_file_rewritten_in_place_is_redone(tmp_path, monkeypatch):
    argv = _rsna(tmp_path)
    prep.main(argv)
    _rewrite(tmp_path / "train" / "ID_21.dcm", 9, description="test series")
    seen = _count_work(monkeypatch)
    summary = prep.main(argv)
    assert len(seen["headers"]) == 8  # the one chunk of headers (HEADER_CHUNK files) is redone
    assert seen["series"] == ["ID_20.dcm"] and summary["computed"] == 1  # its series only
    data = load_volume_set(tmp_path / "out")
    assert data.volumes[data.ids.index("ID_s2")][:, 0, 0].tolist() == [2 * 2 - 1000, 9 * 2 - 1000]
    seen["headers"][:], seen["series"][:] = [], []
    assert prep.main(argv)["resumed"] == 4 and seen["headers"] == seen["series"] == []


def test_a_slice_cut_short_before_rows_is_a_problem_of_the_report(cq500, tmp_path):
    study = tmp_path / "cq500" / "CQ500CT1 CQ500CT1" / "Unknown Study" / "CT Plain"
    cut = study / "CT2.dcm"
    data = cut.read_bytes()
    cut.write_bytes(data[: pydicom.dcmread(cut).get_item("SeriesDescription").value_tell + 3])
    with pytest.raises(LoadError, match=r"1 file\(s\) or folder\(s\) cannot be used") as info:
        prep.main(cq500 + ["--out", str(tmp_path / "strict"), "--workers", "0"])
    assert f"{cut}: unreadable DICOM file (truncated: " in str(info.value)
    assert not (tmp_path / "strict" / "volumes").exists()  # before any volume is written
    summary = prep.main(cq500 + ["--out", str(tmp_path / "out"), "--workers", "0", "--no-strict"])
    assert summary["volumes_written"] == 3  # study 1 has 2 slices left (--min-slices 3)
    report = (tmp_path / "out" / "prepare_report.txt").read_text()
    assert f"{cut}: unreadable DICOM file (truncated: it ends inside a data element" in report
