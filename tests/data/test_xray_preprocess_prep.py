"""Tests of ``data_prep/xray_preprocess.py`` on phantom radiographs in the ImageCLEF layout."""

import numpy as np
import pytest
from data_prep_scripts import load_data_prep_script

from kerasmed.data import load_imageclef_arrays, simulate_radiographs, write_imageclef_folder
from kerasmed.io import LoadError

prep = load_data_prep_script("xray_preprocess.py", "xray_preprocess_prep")


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as info:
        prep.parse_args(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--data-dir", "--out", "--padding", "--enhanced", "--size", "--workers",
                   "--cache-dir", "--strict", "--no-strict"):  # fmt: skip
        assert option in text, option


def test_writes_the_arrays_and_reuses_the_cache(tmp_path, capsys):
    phantom = simulate_radiographs(6, 32, 48, seed=7)
    write_imageclef_folder(phantom, tmp_path / "data", test_fraction=0.34)
    argv = ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--padding", "wrap", "--enhanced", "--size", "20", "--workers", "0",
            "--no-progress"]  # fmt: skip
    summary = prep.main(argv)
    assert (summary["computed"], summary["from_cache"]) == (6, 0)
    assert summary["train_images"] == 4 and summary["test_images"] == 2
    with np.load(tmp_path / "out" / "repetitive_enhanced_20.npz", allow_pickle=False) as data:
        saved = {k: data[k] for k in data.files}
    x_train, y_train, x_test, y_test, labels, _ = load_imageclef_arrays(
        tmp_path / "data", "wrap", True, 20, workers=0, progress=False
    )
    for key, value in dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test).items():
        np.testing.assert_array_equal(saved[key], value)
    assert saved["codes"].tolist() == list(labels.codes)
    assert saved["train_ids"].tolist() == ["1000", "1001", "1002", "1003"]
    assert "images preprocessed: 6, read from the cache: 0" in capsys.readouterr().out
    again = prep.main(argv)
    assert (again["computed"], again["from_cache"]) == (0, 6)
    assert "read from the cache: 6" in (tmp_path / "out" / "prepare_report.txt").read_text()


def test_strict_stops_before_writing_and_no_strict_skips(tmp_path):
    phantom = simulate_radiographs(4, 32, 40, seed=8)
    write_imageclef_folder(phantom, tmp_path / "data", test_fraction=0.25)
    (tmp_path / "data" / "ImageCLEFmed2009_train.02" / "1001.png").unlink()
    argv = ["--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--padding", "none", "--size", "16", "--workers", "0", "--no-progress"]  # fmt: skip
    with pytest.raises(LoadError, match="row 3 \\(1001\\): image file not found"):
        prep.main(argv)
    assert not (tmp_path / "out" / "resize_16.npz").exists()
    with pytest.warns(UserWarning, match="1001"):
        summary = prep.main([*argv, "--no-strict"])
    assert summary["train_images"] == 2 and summary["skipped"] == 1
    report = (tmp_path / "out" / "prepare_report.txt").read_text()
    assert "row 3 (1001): image file not found" in report
