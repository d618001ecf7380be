"""Tests of ``data_prep/two_step_ct.py`` on a tiny fake COV19-CT-DB tree (phantom JPEG slices)."""

import csv
import json

import cv2
import numpy as np
import pytest
from data_prep_scripts import load_data_prep_script
from tiny_overrides import TWO_STEP

from kerasmed.data import simulate_chest_ct, to_8bit_slices
from kerasmed.experiments import get_config, run_experiment
from kerasmed.experiments import two_step as exp
from kerasmed.experiments.registry import check_data_dir
from kerasmed.experiments.two_step_cov19 import PreparedScan
from kerasmed.io import LoadError
from kerasmed.preprocessing import select_lung_slices

prep = load_data_prep_script("two_step_ct.py", "two_step_ct_prep")

SIZE = 32  # pixels per side of the fake JPEG slices


def _tree(root, num_scans=6, seed=0, min_slices=6, max_slices=9):
    """A COV19-CT-DB tree of phantom scans: train gets 2/3 of each class, validation the rest.

    Returns ``{(split, class, scan_id): label}`` in the reader's order (split, covid first, id).
    """
    data = simulate_chest_ct(
        num_scans, slice_size=SIZE, min_slices=min_slices, max_slices=max_slices,
        mixed_size_fraction=0.0, seed=seed,
    )  # fmt: skip
    labels = np.asarray(data.labels)
    written = {}
    for label in (1, 0):
        members = np.flatnonzero(labels == label)
        for rank, i in enumerate(members):
            split = "train" if rank < round(len(members) * 2 / 3) else "validation"
            name = "covid" if label else "non-covid"
            folder = root / split / name / f"ct_scan_{i}"
            folder.mkdir(parents=True)
            for n, image in enumerate(to_8bit_slices(data.volumes[i])):
                assert cv2.imwrite(str(folder / f"{n}.jpg"), image)
            written[(split, name, f"ct_scan_{i}")] = label
    order = {"train": 0, "validation": 1}
    return dict(sorted(written.items(), key=lambda kv: (order[kv[0][0]], -kv[1], kv[0][2])))


def _run(root, out, *extra):
    args = [str(root), "--out", str(out), "--workers", "0", "--no-progress", *extra]
    return prep.main(args)


def _index(out):
    with open(out / "scans.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _read_jpeg_scan(folder):
    names = sorted(folder.iterdir(), key=lambda p: int(p.stem))
    return np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in names])


def test_outputs_match_the_experiment_functions(tmp_path):
    written = _tree(tmp_path / "db")
    out = tmp_path / "prepared"
    summary = _run(tmp_path / "db", out, "--slice-size", "16")
    config = get_config("two-step", "quick")
    assert summary["scans_prepared"] == 6 and summary["scans_not_prepared"] == 0
    assert summary["slice_size"] == 16 and summary["filter_size"] == config.filter_size
    rows = _index(out)
    assert list(rows[0]) == ["scan_id", "split", "label", "file", "window_start", "window_stop",
                             "n_slices", "window_rule"]  # fmt: skip
    assert [(r["split"], r["scan_id"]) for r in rows] == [(s, i) for s, _, i in written]
    for row, ((split, name, scan_id), label) in zip(rows, written.items()):
        slices = _read_jpeg_scan(tmp_path / "db" / split / name / scan_id)
        reference = select_lung_slices(
            slices, fraction=config.window_fraction, filter_size=config.filter_size,
            crop_filter_size=config.crop_filter_size, kind="8bit",
        )  # fmt: skip
        assert row["file"] == f"scans/{split}/{name}/{scan_id}.npz" and int(row["label"]) == label
        assert (int(row["window_start"]), int(row["window_stop"])) == (
            reference.start,
            reference.stop,
        )
        assert int(row["n_slices"]) == len(slices) and row["window_rule"] == reference.rule
        with np.load(out / row["file"], allow_pickle=False) as data:
            expected = np.stack(
                [cv2.resize(s, (16, 16), interpolation=cv2.INTER_AREA) for s in slices]
            )
            assert data["slices"].dtype == np.uint8
            np.testing.assert_array_equal(data["slices"], expected)
            np.testing.assert_array_equal(data["areas"], reference.areas)
            assert (int(data["start"]), int(data["stop"])) == (reference.start, reference.stop)
            assert int(data["label"]) == label and str(data["split"]) == split
            assert int(data["n_slices"]) == len(slices) and str(data["rule"]) == reference.rule
            assert data["source_shape"].tolist() == [SIZE, SIZE]
    settings = json.loads((out / "settings.json").read_text())
    assert settings["preset"] == "quick" and settings["config"]["slice_size"] == 16
    report = (out / "prepare_report.txt").read_text()
    assert '"scans_prepared": 6' in report and "0 skipped" in report


def test_interrupted_run_resumes_with_only_the_rest(tmp_path, monkeypatch):
    written = _tree(tmp_path / "db")
    out = tmp_path / "prepared"
    read, calls = prep.read_cov19_scan, []

    def interrupt_at_third(entry, strict=True):
        calls.append(entry.scan_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return read(entry, strict)

    monkeypatch.setattr(prep, "read_cov19_scan", interrupt_at_third)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "db", out)
    assert not (out / "scans.csv").exists()  # written only at the end
    done = sorted(p.name for p in (out / "scans").rglob("*") if p.is_file())
    assert done == sorted(f"{i}.npz" for _, _, i in list(written)[:2])
    calls.clear()

    def counted(entry, strict=True):
        calls.append(entry.scan_id)
        return read(entry, strict)

    monkeypatch.setattr(prep, "read_cov19_scan", counted)
    summary = _run(tmp_path / "db", out)
    assert calls == [i for _, _, i in list(written)[2:]]
    assert summary["computed_now"] == 4 and summary["resumed"] == 2
    assert len(_index(out)) == 6
    calls.clear()
    assert _run(tmp_path / "db", out)["resumed"] == 6 and calls == []  # all done
    _run(tmp_path / "db", out, "--slice-size", "8")  # other settings: every scan again
    assert len(calls) == 6


def test_corrupt_jpeg_is_named_strict_raises_no_strict_lists(tmp_path):
    written = _tree(tmp_path / "db")
    split, name, scan_id = list(written)[1]
    bad = tmp_path / "db" / split / name / scan_id / "2.jpg"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated: no end-of-image marker
    (tmp_path / "db" / "train" / "covid" / "ct_scan_99").mkdir()  # an empty scan folder
    out = tmp_path / "prepared"
    with pytest.raises(LoadError, match="2.jpg") as error:
        _run(tmp_path / "db", out)
    assert "ct_scan_99" in str(error.value) and "truncated JPEG" in str(error.value)
    assert not (out / "scans.csv").exists()
    assert len(list((out / "scans").rglob("*.npz"))) == 5  # the others are prepared
    assert "2.jpg" in (out / "prepare_report.txt").read_text()
    with pytest.warns(UserWarning, match="2.jpg"):
        summary = prep.main([str(tmp_path / "db"), "--out", str(out), "--workers", "0",
                             "--no-progress", "--no-strict"])  # fmt: skip
    assert summary["scans_prepared"] == 5 and summary["scans_not_prepared"] == 2
    assert summary["resumed"] == 5 and summary["computed_now"] == 0
    assert scan_id not in {r["scan_id"] for r in _index(out)}
    report = (out / "prepare_report.txt").read_text()
    assert "2.jpg" in report and "empty scan folder" in report


def test_help_and_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        prep.main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "kerasmed reproduce two-step --data-dir" in text and "--slice-size" in text
    with pytest.raises(SystemExit) as stop:
        prep.main([str(tmp_path), "--out", str(tmp_path / "o"), "--slice-size", "0"])
    assert stop.value.code == 2
    assert "argument --slice-size: must be a positive integer. Received: '0'" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit) as stop:
        prep.run_script(prep.main, [str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert "error: COV19-CT-DB folder not found" in str(stop.value.code)


def test_experiment_reads_the_prepared_folder_lazily(tmp_path):
    _tree(tmp_path / "db")
    out = tmp_path / "prepared"
    _run(tmp_path / "db", out, "--slice-size", "16")
    check_data_dir("two-step", out)  # the CLI's check passes on the index
    with pytest.raises(FileNotFoundError, match="data_prep/two_step_ct.py"):
        check_data_dir("two-step", tmp_path / "db")  # the raw release: the command to run
    with pytest.raises(ValueError, match="slice_size: folder 16, run 64.*--set slice_size=16"):
        exp.load_data(get_config("two-step", "quick"), data_dir=out, verbose=False)
    config = get_config("two-step", "quick", slice_size=16)
    parts = exp.load_data(config, data_dir=out, verbose=False)
    raw = exp.load_data(config, data_dir=tmp_path / "db", verbose=False)  # still read whole
    for part in ("train", "test"):
        assert parts[part]["labels"].tolist() == raw[part]["labels"].tolist()
        for scan, window, slices, raw_window in zip(
            parts[part]["slices"], parts[part]["windows"], raw[part]["slices"],
            raw[part]["windows"], strict=True,
        ):  # fmt: skip
            assert isinstance(scan, PreparedScan) and len(scan) == len(slices)
            np.testing.assert_array_equal(np.asarray(scan), slices)
            np.testing.assert_array_equal(scan[1], slices[1])
            assert (window.start, window.stop, window.rule) == (
                raw_window.start,
                raw_window.stop,
                raw_window.rule,
            )
            np.testing.assert_array_equal(window.areas, raw_window.areas)
    scan = parts["train"]["slices"][0]
    (tmp_path / "prepared" / _index(out)[0]["file"]).unlink()
    with pytest.raises(FileNotFoundError, match="two-step scan file not found"):
        np.asarray(scan)
    with pytest.raises(LoadError, match="scan file not found"):
        exp.load_data(config, data_dir=out, verbose=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither scans.csv"):
        exp.load_data(config, data_dir=tmp_path / "empty", verbose=False)


# Overrides of the quick preset for a run of seconds (as tests/experiments/test_two_step_...).
TINY = {**TWO_STEP, "slice_size": 16, "cnn_filters": (4,), "mean_draws": (2, 3)}


@pytest.mark.slow
def test_data_prep_then_experiment_end_to_end(tmp_path):
    written = _tree(tmp_path / "db", num_scans=12, min_slices=6, max_slices=8)
    prepared = tmp_path / "prepared"
    _run(tmp_path / "db", prepared, "--slice-size", "16")
    results = run_experiment(
        "two-step", "quick", data_dir=str(prepared), out=str(tmp_path / "run"), verbose=False,
        **TINY,
    )  # fmt: skip
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    num_test = sum(split == "validation" for split, _, _ in written)
    assert results["num_scans"] == {"train": 8 - 4, "val": 4, "test": num_test}
    assert len(saved["test_labels"]) == num_test
    assert saved["test_labels"] == [label for (s, _, _), label in written.items() if s != "train"]
    assert "two_step_swin" in saved["models"] and saved["overrides"]["slice_size"] == 16
