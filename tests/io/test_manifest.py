import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from kerasmed.io.manifest import (
    DEFAULT_LABEL_MAP,
    load_manifest_images,
    read_exam_image,
    read_longitudinal_manifest,
)
from kerasmed.io.sequences import (
    LongitudinalSequences,
    load_longitudinal_npz,
    save_longitudinal_npz,
)

REPO = Path(__file__).resolve().parents[2]

HEADER = "patient_id,study_date,image_path,effusion,hernia\n"
ROWS = [
    "p1,2012-03-10,p1b.png,1,0",  # line 2
    "p1,2012-03-01,p1a.png,0,0",  # line 3
    "p2,2013-01-01,p2a.png,yes,no",  # line 4
    "p2,2013-02-01,missing.png,1,0",  # line 5: no such file
    "p2,not-a-date,p2a.png,1,0",  # line 6: bad date
    "p1,2012-04-09,p1c.png,1,maybe",  # line 7: bad label
    "p3,,p3a.png,0,0",  # line 8: empty date
    "p3,2014-05-05,p3a.png,0,1,extra",  # line 9: too many fields
    "p2,20130301,p2b.png,TRUE,0",  # line 10: DICOM-style date, upper-case label
]


def _write_images(folder, names, size=(20, 30)):
    values = {}
    for k, name in enumerate(names):
        image = np.full(size, 10 * (k + 1), dtype="uint8")
        image[: size[0] // 2] = 200
        cv2.imwrite(str(folder / name), image)
        values[name] = image
    return values


@pytest.fixture
def manifest_dir(tmp_path):
    images = _write_images(
        tmp_path, ["p1a.png", "p1b.png", "p1c.png", "p2a.png", "p2b.png", "p3a.png"]
    )
    (tmp_path / "m.csv").write_text(HEADER + "\n".join(ROWS) + "\n")
    return tmp_path, images


def test_manifest_sorts_by_date_and_reports_bad_rows(manifest_dir):
    folder, _ = manifest_dir
    with pytest.warns(UserWarning, match="row 5: image file not found"):
        m = read_longitudinal_manifest(folder / "m.csv", strict=False)
    assert m.ids == ("p1", "p2") and m.label_names == ("effusion", "hernia")
    assert m.report.num_rows == 9
    assert m.report.skipped_rows == [5, 6, 7, 8, 9]
    problems = {p.row: p for p in m.report.problems}
    assert problems[6].column == "study_date" and problems[6].value == "not-a-date"
    assert problems[7].column == "hernia" and problems[7].value == "maybe"
    assert problems[8].reason == "missing value" and problems[8].column == "study_date"
    assert problems[5].path == str(folder / "missing.png")
    assert "6 fields, the header has 5" in problems[9].reason
    assert "row 7: invalid label value [hernia='maybe']" in str(m.report)
    np.testing.assert_array_equal(m.rows[0], [3, 2])
    assert [Path(p).name for p in m.image_paths[0]] == ["p1a.png", "p1b.png"]
    np.testing.assert_array_equal(m.labels[0], [[0, 0], [1, 0]])
    np.testing.assert_array_equal(m.deltas[0], [0, 9])
    np.testing.assert_array_equal(m.deltas[1], [0, 59])  # 2013-01-01 -> 2013-03-01
    np.testing.assert_array_equal(m.labels[1], [[1, 0], [1, 0]])
    assert m.splits is None


def test_manifest_strict_options_and_header_errors(manifest_dir, tmp_path):
    folder, _ = manifest_dir
    with pytest.raises(ValueError, match=r"row 5(.|\n)*row 9(.|\n)*strict=True") as info:
        read_longitudinal_manifest(folder / "m.csv")  # strict by default
    assert info.value.report.skipped_rows == [5, 6, 7, 8, 9]
    assert "5 row(s) cannot be used" in str(info.value)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_longitudinal_manifest(folder / "nope.csv")
    (tmp_path / "bad.csv").write_text("patient_id,image_path,effusion\np1,a.png,1\n")
    with pytest.raises(ValueError, match=r"row 1, header\): missing columns \['study_date'\]"):
        read_longitudinal_manifest(tmp_path / "bad.csv")
    # blank labels read as negative, a date format, only one label column, no file check
    (tmp_path / "ok.csv").write_text(
        HEADER.replace(",hernia", ",hernia,split")
        + "p9,04/03/2012,x.png,,1,test\np9,01/03/2012,y.png,1,,test\n"
    )
    m = read_longitudinal_manifest(
        tmp_path / "ok.csv",
        label_columns=["effusion"],
        date_format="%d/%m/%Y",
        check_files=False,
        label_map={**DEFAULT_LABEL_MAP, "": 0.0},
    )
    assert m.report.ok and m.splits == ("test",) and m.label_names == ("effusion",)
    np.testing.assert_array_equal(m.labels[0][:, 0], [1, 0])
    np.testing.assert_array_equal(m.deltas[0], [0, 3])


def test_split_column_must_be_constant_per_patient(tmp_path):
    (tmp_path / "s.csv").write_text(
        "patient_id,study_date,image_path,a,split\n"
        "p1,2012-01-01,x.png,1,train\np1,2012-01-05,y.png,0,test\np2,2012-01-01,z.png,0,test\n"
    )
    with pytest.warns(UserWarning, match="row 3: patient 'p1' is already in split 'train'"):
        m = read_longitudinal_manifest(tmp_path / "s.csv", check_files=False, strict=False)
    assert m.splits == ("train", "test")


def test_read_exam_image_png_color_16bit_and_dicom(tmp_path):
    gray = np.zeros((40, 60), dtype="uint8")
    gray[:, 30:] = 255
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    image = read_exam_image(tmp_path / "g.png")
    assert image.dtype == np.float32 and image.shape == (40, 60)
    np.testing.assert_array_equal(image, gray / 255.0)
    resized = read_exam_image(tmp_path / "g.png", image_size=(20, 30))
    assert resized.shape == (20, 30)
    np.testing.assert_allclose(resized[:, :15], 0.0)
    np.testing.assert_allclose(resized[:, 15:], 1.0)
    color = np.zeros((8, 8, 3), dtype="uint8")
    color[..., 1] = 255  # pure green -> OpenCV grey weight 0.587
    cv2.imwrite(str(tmp_path / "c.jpg"), color, [cv2.IMWRITE_JPEG_QUALITY, 100])
    np.testing.assert_allclose(read_exam_image(tmp_path / "c.jpg"), 0.587, atol=0.02)
    deep = np.full((4, 4), 65535, dtype="uint16")
    deep[0, 0] = 0
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    out = read_exam_image(tmp_path / "d.png")
    assert out[0, 0] == 0.0 and out[1, 1] == 1.0
    source = get_testdata_file("CT_small.dcm")  # ships with pydicom
    shutil.copy(source, tmp_path / "ct.dcm")
    ct = read_exam_image(tmp_path / "ct.dcm", image_size=16)
    assert ct.shape == (16, 16) and ct.min() >= 0.0 and ct.max() <= 1.0 and ct.std() > 0.05
    with pytest.raises(FileNotFoundError, match="none.png"):
        read_exam_image(tmp_path / "none.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="junk.png"):
        read_exam_image(tmp_path / "junk.png")


def test_load_images_reports_unreadable_and_recomputes_deltas(manifest_dir):
    folder, images = manifest_dir
    with pytest.warns(UserWarning):
        m = read_longitudinal_manifest(folder / "m.csv", strict=False)
    (folder / "p1b.png").write_bytes(b"corrupt")  # the middle exam of p1 cannot be read any more
    with open(folder / "m.csv", "a") as f:
        f.write("p1,2012-03-20,p1c.png,1,1\n")  # not re-read: the manifest is already parsed
    with pytest.warns(UserWarning, match="row 2: cannot read image"):
        seqs = load_manifest_images(m, image_size=(10, 15), strict=False)
    assert isinstance(seqs, LongitudinalSequences) and seqs.ids == ("p1", "p2")
    assert seqs.report.skipped_rows == [2, 5, 6, 7, 8, 9]  # the manifest's rows, then image
    assert m.report.skipped_rows == [5, 6, 7, 8, 9]  # the manifest's report is not changed
    assert seqs.report.problems[-1].path == str(folder / "p1b.png")
    assert seqs.lengths.tolist() == [1, 2] and seqs.delta_unit == "days"
    np.testing.assert_allclose(
        seqs.images[0][0],
        cv2.resize(images["p1a.png"] / 255.0, (15, 10), interpolation=cv2.INTER_AREA),
        atol=1e-6,
    )
    np.testing.assert_array_equal(seqs.deltas[1], [0, 59])
    np.testing.assert_array_equal(seqs.labels[0], [[0, 0]])
    with pytest.raises(ValueError, match="row 2: cannot read image"):
        load_manifest_images(m)  # strict by default
    (folder / "p2b.png").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match=r"2 image\(s\) cannot be used(.|\n)*row 2(.|\n)*row 10"):
        load_manifest_images(m)  # every unreadable image is listed, not only the first


def _toy(n=3, size=5):
    rng = np.random.default_rng(0)
    lengths = [2, 4, 1][:n]
    return LongitudinalSequences(
        images=[rng.random((t, size, size)).astype("float32") for t in lengths],
        labels=[rng.integers(0, 2, (t, 2)).astype("float32") for t in lengths],
        deltas=[
            np.concatenate([[0], rng.integers(1, 90, t - 1)]).astype("float32") for t in lengths
        ],
        label_names=("a", "b"),
        ids=("x", "y", "z")[:n],
    )


@pytest.mark.parametrize("image_dtype", ["float32", "uint8"])
def test_npz_round_trip_without_pickle(tmp_path, image_dtype):
    seqs = _toy()
    save_longitudinal_npz(tmp_path / "s.npz", seqs, image_dtype=image_dtype)
    with np.load(tmp_path / "s.npz", allow_pickle=False) as raw:
        assert all(raw[k].dtype != object for k in raw.files)
        np.testing.assert_array_equal(raw["offsets"], [0, 2, 6, 7])
        assert raw["images"].shape == (7, 5, 5) and raw["images"].dtype == image_dtype
    back = load_longitudinal_npz(tmp_path / "s.npz")
    assert (
        back.ids == seqs.ids and back.label_names == seqs.label_names and back.delta_unit == "days"
    )
    atol = 0.5 / 255 + 1e-7 if image_dtype == "uint8" else 0.0
    for i in range(3):
        np.testing.assert_allclose(back.images[i], seqs.images[i], atol=atol)
        np.testing.assert_array_equal(back.labels[i], seqs.labels[i])
        np.testing.assert_array_equal(back.deltas[i], seqs.deltas[i])
        assert back.images[i].dtype == np.float32


def test_npz_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_longitudinal_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", images=np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="missing keys"):
        load_longitudinal_npz(tmp_path / "other.npz")


def test_container_split_last_exam_and_validation():
    seqs = _toy()
    images, labels = seqs.last_exam()
    np.testing.assert_array_equal(images, np.stack([x[-1] for x in seqs.images]))
    np.testing.assert_array_equal(labels[1], seqs.labels[1][3])
    all_images, all_labels = seqs.all_exams()
    assert all_images.shape == (7, 5, 5) and all_labels.shape == (7, 2)
    train, test = seqs.split(test_size=1, seed=0)
    assert len(train) == 2 and len(test) == 1
    assert sorted(train.ids + test.ids) == ["x", "y", "z"]
    assert seqs.split(1, seed=0)[1].ids == test.ids  # same seed, same split
    with pytest.raises(ValueError, match="test_size=1.5"):
        seqs.split(1.5)
    with pytest.raises(ValueError, match="Sequence 0"):
        LongitudinalSequences([np.zeros((2, 3, 3))], [np.zeros((3, 2))], [np.zeros(2)], ("a", "b"))


@pytest.mark.parametrize("with_split", [False, True])
def test_prepare_script_writes_sequences_npz(manifest_dir, tmp_path, with_split):
    folder, _ = manifest_dir
    csv_path = folder / "m.csv"
    if with_split:
        lines = csv_path.read_text().splitlines()
        lines = [lines[0] + ",split"] + [
            line + (",train" if line.startswith("p1") else ",test") for line in lines[1:]
        ]
        csv_path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    script = str(REPO / "data_prep" / "longitudinal_manifest.py")
    cmd = [sys.executable, script, str(csv_path), "--out", str(out), "--image-size", "12", "16"]
    if not with_split:  # strict by default: the bad rows stop it, every one listed
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
        assert done.returncode != 0 and "5 row(s) cannot be used" in done.stderr, done.stderr
        assert "row 5:" in done.stderr and "row 9:" in done.stderr and not out.exists()
    cmd.append("--no-strict")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "m.csv: 9 rows, 5 skipped" in done.stdout
    data = load_longitudinal_npz(out / "sequences.npz")
    assert data.ids == ("p1", "p2") and data.images[0].shape == (2, 12, 16)
    np.testing.assert_array_equal(data.deltas[1], [0, 59])
    assert "row 9:" in (out / "prepare_report.txt").read_text()
    written = sorted(p.name for p in out.glob("*.npz"))
    if with_split:
        assert written == ["sequences.npz", "test.npz", "train.npz"]
        assert load_longitudinal_npz(out / "train.npz").ids == ("p1",)
        assert load_longitudinal_npz(out / "test.npz").ids == ("p2",)
    else:
        assert written == ["sequences.npz"]
