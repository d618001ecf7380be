"""Tests of ``data_prep/head_ct_ich.py`` on tiny fake CQ500 and RSNA 2019 trees."""

import math

import numpy as np
import pydicom
import pytest
from data_prep_scripts import load_data_prep_script
from test_dicom import write_slice  # tests/io/test_dicom.py

from kerasmed.io import LoadError, load_volume_set
from kerasmed.io import head_ct_series as series_rules

# RSNA's anonymised UIDs ("ID_...") are not valid DICOM UIDs: pydicom warns when writing them.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")

SIZE = 8  # pixels per side of the fake slices


prep = load_data_prep_script("head_ct_ich.py", "head_ct_ich_prep")


def _raw(k, tag=0):
    """Stored pixels of slice k (distinct per slice and per series `tag`)."""
    return (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) + 100 * k + 1000 * tag).astype(np.int16)


def _hu(k, tag=0):
    return _raw(k, tag) * 2.0 - 1000.0  # write_slice's RescaleSlope 2, RescaleIntercept -1000


def _series(folder, uid, description, z_values, tag=0, thickness=None, names=None, **kwargs):
    """Writes one series; slice k (in z order) holds _raw(rank of z, tag). Returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    ranks = np.argsort(np.argsort(z_values))
    paths = []
    for i, z in enumerate(z_values):
        name = names[i] if names else f"CT{(7 * i + 3) % 97:06d}.dcm"  # names not in z order
        path = folder / name
        write_slice(
            path, _raw(ranks[i], tag), (-60.0, -80.0, z), series_uid=uid,
            description=description, instance=i + 1, **kwargs,
        )  # fmt: skip
        if thickness is not None:
            ds = pydicom.dcmread(path)
            ds.SliceThickness = thickness
            ds.save_as(path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- CQ500


@pytest.fixture
def cq500(tmp_path):
    root = tmp_path / "cq500"
    study0 = root / "CQ500-CT-0" / "CQ500CT0 CQ500CT0" / "Unknown Study"
    _series(study0 / "CT PLAIN THIN", "1.0.1", "PLAIN THIN", [0, 1, 2, 3, 4, 5], 1, 0.625)
    _series(study0 / "CT 5mm", "1.0.2", "5mm", [20.0, 10.0, 15.0, 5.0], tag=2, thickness=5.0)
    _series(study0 / "CT BONE", "1.0.3", "BONE", [5.0, 10.0, 15.0, 20.0], tag=3, thickness=5.0)
    (study0 / "CT 5mm" / "notes.txt").write_text("not dicom")
    study1 = root / "CQ500CT1 CQ500CT1" / "Unknown Study"
    _series(study1 / "CT POST CONTRAST", "1.1.1", "POST CONTRAST", [0, 5, 10, 15], 4, 5.0)
    _series(study1 / "CT PRE CONTRAST 5MM STD", "1.1.2", "PRE CONTRAST 5MM STD",
            [-5.0, 0.0, 5.0], tag=5, thickness=5.0)  # fmt: skip
    study2 = root / "CQ500CT2 CQ500CT2" / "Unknown Study"
    _series(study2 / "CT BONE", "1.2.1", "BONE", [0, 5, 10], tag=6)
    study3 = root / "CQ500CT3 CQ500CT3" / "Unknown Study"
    _series(study3 / "CT Plain", "1.3.1", "Plain", [0, 5, 10], tag=7)
    study10 = root / "CQ500CT10 CQ500CT10" / "Unknown Study"
    # the preferred series has two slices at the same position: unreadable, the next one is used
    _series(study10 / "CT Plain", "1.10.1", "Plain", [0.0, 5.0, 5.0], tag=8, thickness=5.0)
    _series(study10 / "CT Thin Plain", "1.10.2", "Thin Plain", [0.0, 0.625, 1.25], 9, 0.625)
    reads = tmp_path / "reads.csv"
    reads.write_text(
        "name,Category,R1:ICH,R1:IPH,R2:ICH,R2:IPH,R3:ICH,R3:IPH\n"
        "CQ500-CT-0,B1,1,0,1,0,0,0\n"  # row 2: 2 of 3 -> 1
        "CQ500-CT-1,B1,1,1,0,0,0,0\n"  # row 3: 1 of 3 -> 0
        "CQ500-CT-2,B2,0,0,0,0,0,0\n"  # row 4: only a bone series
        "CQ500-CT-10,B2,1,1,1,1,1,1\n"  # row 5
        "CQ500-CT-4,B2,1,0,maybe,0,1,0\n"  # row 6: bad read
        "CQ500-CT-5,B2,0,0,0,0,0,0\n"  # row 7: no folder
    )
    return root, reads


def test_cq500_labels_series_choice_order_and_hu(cq500, tmp_path, capsys):
    root, reads = cq500
    out = tmp_path / "out"
    argv = [
        "cq500",
        "--root",
        str(root),
        "--reads",
        str(reads),
        "--out",
        str(out),
        "--workers",
        "0",
    ]
    with pytest.raises(LoadError, match=r"reads\.csv: 1 row\(s\) cannot be used") as info:
        prep.main(argv + ["--slice-size", "4", "--min-slices", "3"])  # strict by default
    assert "row 6 (CQ500-CT-4): R2:ICH='maybe' is not 0/1" in str(info.value)
    assert not out.exists()  # stopped before anything was written
    argv.append("--no-strict")
    summary = prep.main(argv + ["--slice-size", "4", "--min-slices", "3"])
    assert summary["volumes_written"] == 3 and summary["positives"] == 2
    data = load_volume_set(out)
    assert data.ids == ["CQ500-CT-0", "CQ500-CT-1", "CQ500-CT-10"]
    assert data.labels.tolist() == [1, 0, 1] and data.slice_labels is None
    assert data.lengths.tolist() == [4, 3, 3]

    def expected(n, tag):  # the paper's 2x2 maximum filter on HU, slices in z order
        hu = np.stack([_hu(k, tag) for k in range(n)])
        return hu.reshape(n, 4, 2, 4, 2).max(axis=(2, 4))

    np.testing.assert_array_equal(data.volumes[0], expected(4, tag=2))  # "CT 5mm"
    np.testing.assert_array_equal(data.volumes[1], expected(3, tag=5))  # PRE CONTRAST 5MM STD
    np.testing.assert_array_equal(data.volumes[2], expected(3, tag=9))  # fallback Thin Plain
    # PixelSpacing (0.5, 0.75) doubled by the 8 -> 4 resize; z from the positions
    np.testing.assert_allclose(data.spacing, [[5, 1, 1.5], [5, 1, 1.5], [0.625, 1, 1.5]])
    sources = (out / "sources.csv").read_text()
    assert "Duplicate slice positions" in sources and "'BONE' (matches --exclude-pattern" in sources
    assert "'PLAIN THIN' (ranked lower)" in sources
    report = (out / "prepare_report.txt").read_text()
    for part in (
        "CQ500-CT-2: no usable series: 'BONE': matches --exclude-pattern",
        "CQ500CT3 CQ500CT3: no row in reads.csv",
        "reads.csv: 6 rows, 1 skipped\n  row 6 (CQ500-CT-4): R2:ICH='maybe' is not 0/1",
        "CQ500-CT-5: no study folder",
        "1 non-DICOM file(s) ignored",
    ):
        assert part in report, part
    assert '"volumes_written": 3' in capsys.readouterr().out
    # the same set again: refused without --overwrite, native size and thin slices on request
    with pytest.raises(SystemExit, match="--overwrite"):
        prep.main(argv)
    prep.main(argv + ["--overwrite", "--slice-size", "0", "--target-thickness", "0.625",
                      "--hu-dtype", "float32", "--max-studies", "1", "--min-slices", "3"])  # fmt: skip
    thin = load_volume_set(out)
    assert thin.ids == ["CQ500-CT-0"]
    np.testing.assert_array_equal(thin.volumes[0], np.stack([_hu(k, 1) for k in range(6)]))
    np.testing.assert_allclose(thin.spacing[0], [1.0, 0.5, 0.75])


def test_select_series_rule_on_cq500_names():
    keep = ["CT PLAIN THIN", "CT Plain", "CT 55mm Plain", "CT PRE CONTRAST 5MM STD",
            "CT PRE CONTRAST THIN", "CT 0.625mm", "CT 5mm", "CT Thin Plain", "CT 2.55mm",
            "CT 5 MM PRE CONTRAST", "CT Axial 0.625 HiResVS40", "CT THIN STD", "CT Plain 3mm"]  # fmt: skip
    drop = ["CT BONE", "CT POST CONTRAST", "CT 5mm POST CONTRAST", "CT 4cc sec 150cc D3D on",
            "CT C THIN", "CT ORAL IV", "CT 0.625mm DMPR on HiRes VS40", "CT 3D CT HEADORBIT",
            "CT CONTRAST", "CT CECT THIN", "CT 55mm Contrast"]  # fmt: skip
    thickness = {"CT 5mm": 5.0, "CT PLAIN THIN": 0.625, "CT 2.55mm": 2.5, "CT Plain 3mm": 3.0}
    series = [
        {"uid": f"1.{i}", "description": d, "folder": d, "modality": "CT",
         "thickness": thickness.get(d), "orientation": None, "files": [None] * 30}
        for i, d in enumerate(keep + drop)
    ]  # fmt: skip
    ranked, rejected = series_rules.select_series(
        series, series_rules.SERIES_PATTERN, series_rules.EXCLUDE_PATTERN, 5, 10
    )
    assert sorted(r["description"] for r in ranked) == sorted(keep)
    assert sorted(d for _, d, _ in rejected) == sorted(drop)

    def best(names, target=5.0, **changes):
        chosen = [dict(s, **changes) for s in series if s["description"] in names]
        return series_rules.select_series(chosen, series_rules.SERIES_PATTERN, "", target, 10)[0][
            0
        ]["description"]

    assert best(["CT 5mm", "CT PLAIN THIN"]) == "CT 5mm"  # both preferred: closest thickness
    assert best(["CT 5mm", "CT PLAIN THIN"], target=0.625) == "CT PLAIN THIN"
    assert best(["CT 2.55mm", "CT Plain 3mm"], target=2.5) == "CT Plain 3mm"  # pattern first
    tilted = [math.cos(0.0), 0, 0, 0, math.cos(0.3), math.sin(0.3)]  # 17 degree gantry tilt
    assert best(["CT 5mm"], orientation=tilted) == "CT 5mm"
    sagittal = [0, 1, 0, 0, 0, -1]
    ranked, rejected = series_rules.select_series(
        [dict(series[6], orientation=sagittal)], "", "", 5.0, 10
    )
    assert ranked == [] and "not axial" in rejected[0][2]


# ---------------------------------------------------------------- RSNA 2019


@pytest.fixture
def rsna(tmp_path):
    folder = tmp_path / "stage_2_train"
    rows = ["ID,Label"]

    def label(sop, value, subtypes=("epidural", "any")):
        rows.extend(f"{sop}_{kind},{value}" for kind in subtypes)

    # ID_s1: 5 slices written in shuffled z order; positives on the 3rd and 4th slice in z
    z1 = [12.0, 0.0, 6.0, 9.0, 3.0]
    names1 = [f"ID_a{k}" for k in range(5)]
    _series(folder, "ID_s1", "", z1, tag=1, names=[n + ".dcm" for n in names1])
    for name, z in zip(names1, z1):
        label(name, int(z in (6.0, 9.0)))
    rows.append("ID_a0_subdural,1")  # other subtypes are ignored
    # ID_s2: negative; one label row duplicated (same value: fine)
    _series(folder, "ID_s2", "", [0, 5, 10], tag=2, names=["ID_b0.dcm", "ID_b1.dcm", "ID_b2.dcm"])
    for name in ("ID_b0", "ID_b1", "ID_b2", "ID_b2"):
        label(name, 0)
    # ID_s3: one slice without a label, the others negative -> volume label unknown
    _series(folder, "ID_s3", "", [0, 5, 10], tag=3, names=["ID_c0.dcm", "ID_c1.dcm", "ID_c2.dcm"])
    label("ID_c0", 0)
    label("ID_c1", 0)
    # ID_s4: the middle slice's label rows conflict, another slice is positive -> kept, -1 there
    _series(folder, "ID_s4", "", [10, 0, 5], tag=4, names=["ID_d0.dcm", "ID_d1.dcm", "ID_d2.dcm"])
    label("ID_d0", 1)
    label("ID_d1", 0)
    label("ID_d2", 0)
    rows.append("ID_d2_any,1")
    # ID_s5: no label at all
    _series(folder, "ID_s5", "", [0, 5], tag=5, names=["ID_e0.dcm", "ID_e1.dcm"])
    # ID_s6: slices with the 12-bit pixel-representation error
    raw6 = [np.full((SIZE, SIZE), 100, np.int16), np.full((SIZE, SIZE), 3500, np.int16)]
    raw6[1][0, :] = 50
    raw6[1][2, 3] = 3096  # + 1000 = 4096: wraps to 0, i.e. -1000 HU
    for k, raw in enumerate(raw6):
        path = folder / f"ID_f{k}.dcm"
        write_slice(path, raw, (0, 0, 5.0 * k), series_uid="ID_s6", slope=1.0, intercept=0.0)
        ds = pydicom.dcmread(path)
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
        ds.save_as(path)
        label(f"ID_f{k}", 0)
    (folder / "README.txt").write_text("not dicom")
    labels = tmp_path / "stage_2_train.csv"
    labels.write_text("\n".join(rows + ["ID_x_any,7"]) + "\n")
    return folder, labels, raw6


def test_rsna_groups_orders_and_labels_slices(rsna, tmp_path):
    folder, labels, raw6 = rsna
    out = tmp_path / "out"
    argv = [
        "rsna",
        "--dicom-dir",
        str(folder),
        "--labels",
        str(labels),
        "--out",
        str(out),
        "--workers",
        "0",
    ]
    with pytest.raises(LoadError, match=r"2 row\(s\) cannot be used(.|\n)*ID_x_any"):
        prep.main(argv)  # strict by default: the conflicting and the invalid label rows
    assert not out.exists()
    argv.append("--no-strict")
    summary = prep.main(argv + ["--slice-size", "0"])
    assert summary["volumes_written"] == 4 and summary["positives"] == 2
    data = load_volume_set(out)
    assert data.ids == ["ID_s1", "ID_s2", "ID_s4", "ID_s6"]
    assert data.labels.tolist() == [1, 0, 1, 0]
    assert [s.tolist() for s in data.slice_labels] == [
        [0, 0, 1, 1, 0],
        [0, 0, 0],
        [0, -1, 1],  # z order: ID_d1 (0), ID_d2 (5, conflicting rows), ID_d0 (10)
        [0, 0],
    ]
    np.testing.assert_array_equal(data.volumes[0], np.stack([_hu(k, 1) for k in range(5)]))
    np.testing.assert_array_equal(data.volumes[2], np.stack([_hu(k, 4) for k in range(3)]))
    np.testing.assert_allclose(data.spacing[0], [3.0, 0.5, 0.75])
    # 12-bit fix: stored + 1000, wrapped at 4096, intercept -1000
    for k, raw in enumerate(raw6):
        shifted = raw.astype(np.float64) + 1000
        shifted[shifted >= 4096] -= 4096
        np.testing.assert_array_equal(data.volumes[3][k], shifted - 1000)
    assert data.volumes[3][1, 1, 1] == 3500 + 1000 - 4096 - 1000 and data.volumes[3][0, 0, 0] == 100
    assert data.volumes[3][1, 2, 3] == -1000.0
    report = (out / "prepare_report.txt").read_text()
    for part in (
        "series ID_s3: 1 of 3 slices have no `_any` label",
        "series ID_s5: no `_any` label",
        "README.txt: not a DICOM file",
        "(ID_d2_any): conflicts with an earlier row",
        "(ID_x_any): label '7' is not 0/1",
        "RSNA 12-bit fix: 2 slice(s) corrected",
    ):
        assert part in report, part
    sources = (out / "sources.csv").read_text().splitlines()
    assert sources[1].startswith("ID_s1,1,5,8x8,none,3.0,ID_s1,RSNA 2019,ID_a1.dcm,0")

    prep.main(argv + ["--overwrite", "--max-series", "2", "--no-fix-12bit", "--resize", "area",
                      "--slice-size", "4"])  # fmt: skip
    two = load_volume_set(out)
    assert two.ids == ["ID_s1", "ID_s2"]
    area = np.stack([_hu(k, 1) for k in range(5)]).reshape(5, 4, 2, 4, 2).mean(axis=(2, 4))
    np.testing.assert_array_equal(two.volumes[0], np.rint(area))  # int16 on disk
    empty = tmp_path / "empty"
    empty.mkdir()
    none = ["rsna", "--dicom-dir", str(empty), "--labels", str(labels), "--out", str(out)]
    none.append("--no-strict")
    with pytest.raises(SystemExit, match="No volume could be prepared"):
        prep.main(none + ["--overwrite"])
    assert not (out / "labels.csv").exists()


def test_resize_volume_and_safe_id():
    hu = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6)
    out, spacing, used = series_rules.resize_volume(hu, (5.0, 0.5, 0.5), 3, "auto")
    assert used == "max" and out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out, hu.reshape(2, 3, 2, 3, 2).max(axis=(2, 4)))
    np.testing.assert_allclose(spacing, [5.0, 1.0, 1.0])
    out, spacing, used = series_rules.resize_volume(hu, (5.0, 0.5, 0.5), 4, "auto")
    assert used == "area" and out.shape == (2, 4, 4)
    np.testing.assert_allclose(spacing, [5.0, 0.75, 0.75])
    out, spacing, used = series_rules.resize_volume(hu, (5.0, 0.5, 0.5), 12, "auto")
    assert used == "linear" and out.shape == (2, 12, 12)
    np.testing.assert_allclose(spacing, [5.0, 0.25, 0.25])
    with pytest.raises(ValueError, match="Received: slice_size=4"):
        series_rules.resize_volume(hu, (5.0, 0.5, 0.5), 4, "max")
    assert (
        series_rules.safe_id(" 1.2.3/4 ") == "1.2.3_4"
        and series_rules.safe_id("CQ500-CT-7") == "CQ500-CT-7"
    )
