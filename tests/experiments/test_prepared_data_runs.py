"""The quick preset on real-format data: raw files -> ``data_prep/`` -> ``run_experiment``.

Each test writes a tiny dataset in the public layout the README names (PNG exams + a manifest,
RSNA 2019 DICOM slices + their label CSV, NIfTI time points + a manifest, the ImageCLEF 2009
release), prepares it with the experiment's ``data_prep/`` script as a user would, and runs
the experiment's quick preset on the prepared folder (``--data-dir``) with the tiny sizes of
its unit test. What is checked is what breaks when the real-data path breaks: the run reads
the prepared data (the numbers of items and the labels it trained on are the dataset's, not
the phantom's) and every model of the run has finite metrics in ``results.json``.
"""

import csv
import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_prep_scripts import load_data_prep_script
from pydicom.uid import CTImageStorage

from kerasmed.data import (
    simulate_head_ct,
    simulate_longitudinal_digits,
    simulate_radiographs,
    write_imageclef_folder,
)
from kerasmed.experiments import run_experiment

TESTS = Path(__file__).resolve().parents[1]


def _load_test_module(relative):
    """A helper module of another test folder (tests are not a package)."""
    path = TESTS / relative
    spec = importlib.util.spec_from_file_location(f"_prepared_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny(relative):
    return dict(_load_test_module(relative).TINY)


def _finite_metrics(results):
    """Every number of every model's entry in results.json is finite."""
    for name, metrics in results["models"].items():
        numbers = [v for v in _flatten(metrics) if isinstance(v, (int, float))]
        assert numbers, name
        assert all(math.isfinite(v) for v in numbers), (name, metrics)


def _flatten(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _flatten(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def _run_quick(name, data_dir, out, **tiny):
    """The quick preset on `data_dir`; returns results.json after checking its data and metrics."""
    results = run_experiment(
        name, "quick", data_dir=str(data_dir), out=str(out), seed=0, verbose=False, **tiny
    )
    with open(Path(out) / "results.json", encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["data_dir"] == str(data_dir)
    assert set(saved["models"]) == set(results["models"])
    _finite_metrics(saved)
    return saved


def test_tlstm_on_a_prepared_exam_manifest(tmp_path):
    """PNG exams with dates and findings -> longitudinal_manifest.py -> tlstm quick."""
    digits = simulate_longitudinal_digits(
        12, image_size=24, min_length=2, max_length=5, mean_length=3, seed=4
    )
    raw = tmp_path / "exams"
    raw.mkdir()
    names = [f"finding_{name}" for name in digits.label_names]
    rows = []
    for p, (images, labels, deltas) in enumerate(zip(digits.images, digits.labels, digits.deltas)):
        day = np.datetime64("2015-01-01") + np.cumsum(np.round(deltas * 30)).astype(
            "timedelta64[D]"
        )
        for t in range(len(images)):
            name = f"p{p:02d}_{t}.png"
            cv2.imwrite(str(raw / name), np.round(images[t] * 255).astype("uint8"))
            rows.append([f"p{p:02d}", str(day[t]), name, *labels[t].astype(int).tolist()])
    manifest = raw / "exams.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["patient_id", "study_date", "image_path", *names], *rows])

    prepared = tmp_path / "prepared"
    prep = load_data_prep_script("longitudinal_manifest.py")
    summary = prep.main([str(manifest), "--out", str(prepared), "--image-size", "24"])
    assert summary["files"]["sequences.npz"]["patients"] == 12

    tiny = _tiny("experiments/test_longitudinal_experiment.py")
    saved = _run_quick("tlstm", prepared, tmp_path / "run", **tiny)
    assert set(saved["models"]) >= {"single_image", "lstm"}
    assert sum(saved["num_sequences"].values()) == 12  # the prepared patients, not the phantom's
    # the findings are the manifest's columns, not the phantom's digits
    assert json.dumps(saved).count("finding_") > 0


def _write_rsna(folder, labels, phantom):
    """The phantom's volumes as RSNA 2019 slices (``ID_*.dcm``, one series each) + the label CSV."""
    dicom = _load_test_module("io/io_dicom_files.py")
    folder.mkdir(parents=True)
    rows = ["ID,Label"]
    for i, (volume, positive) in enumerate(zip(phantom.volumes, phantom.slice_labels)):
        for k, hu in enumerate(volume):
            sop = f"ID_{i:02d}{k:03d}"
            ds = dicom.image_dataset(CTImageStorage, "CT", np.round(hu + 1024).astype(np.int16))
            ds.SeriesInstanceUID, ds.InstanceNumber = f"ID_s{i:02d}", k + 1
            ds.ImagePositionPatient = [0.0, 0.0, 5.0 * k]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 5.0
            ds.RescaleSlope, ds.RescaleIntercept = 1.0, -1024.0
            ds.save_as(folder / f"{sop}.dcm", enforce_file_format=True)
            rows += [f"{sop}_epidural,0", f"{sop}_any,{int(positive[k])}"]
    labels.write_text("\n".join(rows) + "\n")


def test_ich_on_prepared_rsna_slices(tmp_path):
    """RSNA 2019 DICOM slices + stage_2_train.csv -> head_ct_ich.py rsna -> ich quick.

    (CQ500 has no slice labels, which the staged model's stage 1 needs: the run says so.)
    """
    phantom = simulate_head_ct(10, slice_size=64, min_slices=8, max_slices=8, seed=2)
    folder, labels = tmp_path / "stage_2_train", tmp_path / "stage_2_train.csv"
    _write_rsna(folder, labels, phantom)

    prepared = tmp_path / "prepared"
    prep = load_data_prep_script("head_ct_ich.py")
    argv = ["rsna", "--dicom-dir", str(folder), "--labels", str(labels), "--out", str(prepared)]
    summary = prep.main([*argv, "--slice-size", "0"])
    assert summary["volumes_written"] == 10
    assert summary["positives"] == int(phantom.labels.sum())

    tiny = _tiny("experiments/test_ich_experiment.py")
    tiny.update(num_val=2, volumes_per_epoch=4)  # 10 volumes, split in these proportions
    saved = _run_quick("ich", prepared, tmp_path / "run", **tiny)
    assert sum(saved["num_volumes"].values()) == 10  # the prepared set (the tiny phantom has 24)


def test_fcslstm_on_a_prepared_nifti_manifest(tmp_path):
    """The script's NIfTI example -> longitudinal_segmentation.py -> fcslstm quick."""
    prep = load_data_prep_script("longitudinal_segmentation.py")
    manifest = prep.main(["--write-example", str(tmp_path / "raw")])["example_manifest"]
    prepared = tmp_path / "prepared"
    summary = prep.main([manifest, "--out", str(prepared), "--slices", "middle"])
    assert summary["sequences"] == summary["subjects"] >= 2

    tiny = _tiny("experiments/test_fcslstm_experiment.py")
    tiny.pop("image_size")  # the prepared images keep their size
    saved = _run_quick("fcslstm", prepared, tmp_path / "run", **tiny)
    protocol = saved["protocol"]
    assert protocol["training_subjects"] + protocol["heldout_subjects"] == summary["subjects"]


def test_xray_on_an_imageclef_folder(tmp_path):
    """A folder in the ImageCLEF 2009 layout (CSV codes + images) -> xray quick."""
    phantom = simulate_radiographs(40, min_size=24, max_size=40, seed=1)
    folder = tmp_path / "imageclef"
    write_imageclef_folder(phantom, folder, test_fraction=0.25)
    saved = _run_quick(
        "xray", folder, tmp_path / "run", **_tiny("experiments/test_xray_experiment.py")
    )
    # the folder's 30 + 10 images were read (the tiny phantom of the unit test has 24)
    assert (saved["load_report"]["train_rows"], saved["load_report"]["test_rows"]) == (30, 10)


@pytest.mark.parametrize("name", ["tlstm", "ich", "fcslstm"])
def test_a_folder_without_the_prepared_file_names_the_script(tmp_path, name):
    with pytest.raises((FileNotFoundError, ValueError), match="data_prep/"):
        run_experiment(name, "quick", data_dir=str(tmp_path), out=str(tmp_path / "o"))
