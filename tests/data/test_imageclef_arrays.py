"""Tests of `kerasmed.data.load_imageclef_arrays` (and the cache and streamed batches beneath it)
on phantom radiographs in the ImageCLEF layout."""

import os
import tempfile

import cv2
import numpy as np
import pytest

import kerasmed.io.prep_runner as prep_runner
import kerasmed.preprocessing.xray_files as xray_files
from kerasmed.data import (
    imageclef_cache_key,
    imageclef_cache_settings,
    load_imageclef_arrays,
    simulate_radiographs,
    write_imageclef_folder,
)
from kerasmed.data.imageclef import ImageCLEFDataset, prepare_imageclef_cache
from kerasmed.io import IrmaLabelMap, LoadError
from kerasmed.preprocessing import prepare_radiograph

SIZE = 24


def _expected(phantom, indices, padding, enhanced):
    images = [phantom.images[i] for i in indices]
    return np.stack([prepare_radiograph(im, padding, (SIZE, SIZE), enhanced) for im in images])


@pytest.mark.parametrize(
    ("bit_depth", "padding", "enhanced"),
    [(8, "constant", True), (8, "wrap", False), (16, None, True), (16, "wrap", True)],
)
def test_round_trip_equals_the_chain_on_the_phantom(tmp_path, bit_depth, padding, enhanced):
    phantom = simulate_radiographs(10, 32, 56, bit_depth=bit_depth, seed=3)
    train, test = write_imageclef_folder(phantom, tmp_path, test_fraction=0.3)
    assert len(train) == 7 and len(test) == 3
    x_train, y_train, x_test, y_test, label_map, report = load_imageclef_arrays(
        tmp_path, padding=padding, enhanced=enhanced, size=SIZE, workers=0, progress=False
    )
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    assert x_train.dtype == x_test.dtype == dtype and x_train.shape == (7, SIZE, SIZE, 3)
    np.testing.assert_array_equal(x_train, _expected(phantom, train, padding, enhanced))
    np.testing.assert_array_equal(x_test, _expected(phantom, test, padding, enhanced))
    assert label_map == IrmaLabelMap(phantom.codes)
    codes = np.asarray(phantom.codes)
    assert label_map.decode(y_train) == codes[train].tolist()
    assert label_map.decode(y_test) == codes[test].tolist()
    assert report.ok and report.computed == 10 and report.cached == 0 and report.notes == []


def _mtimes(folder):
    return {
        os.path.relpath(os.path.join(d, n), folder): os.stat(os.path.join(d, n)).st_mtime_ns
        for d, _, names in os.walk(folder)
        for n in names
        if n.endswith(".npz")
    }


def test_cache_is_reused_resumed_and_keyed_by_the_settings(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    phantom = simulate_radiographs(6, 32, 48, seed=1)
    write_imageclef_folder(phantom, data, test_fraction=0.34)
    kwargs = dict(padding="constant", enhanced=True, size=SIZE, cache_dir=cache, progress=False)
    first = load_imageclef_arrays(data, workers=0, **kwargs)
    assert (first[5].computed, first[5].cached) == (6, 0)
    key = imageclef_cache_key(imageclef_cache_settings("constant", True, SIZE))
    assert sorted(os.listdir(cache)) == [key]
    times = _mtimes(cache)
    assert len(times) == 6 and sorted({k.split(os.sep)[1] for k in times}) == ["test", "train"]

    # Second call: every image from the cache; no image file is even read.
    def refuse(*args, **kwargs):
        raise AssertionError("an image was read although its cache entry is valid")

    monkeypatch.setattr(xray_files, "read_radiograph", refuse)
    second = load_imageclef_arrays(data, workers=0, **kwargs)
    assert (second[5].computed, second[5].cached) == (0, 6)
    for a, b in zip(first[:4], second[:4]):
        np.testing.assert_array_equal(a, b)
    assert _mtimes(cache) == times
    monkeypatch.undo()

    # Resume: an entry lost (interrupted run) and a source file changed are recomputed.
    lost = sorted(times)[0]
    os.remove(cache / lost)
    changed = data / "ImageCLEFmed2009_test.03" / "1005.png"
    cv2.imwrite(str(changed), np.full((40, 30), 77, np.uint8))
    third = load_imageclef_arrays(data, workers=0, **kwargs)
    assert (third[5].computed, third[5].cached) == (2, 4)
    now = _mtimes(cache)
    assert {k for k in now if now[k] != times.get(k)} == {lost, f"{key}/test/1005.npz"}
    np.testing.assert_array_equal(
        third[2][-1], prepare_radiograph(cv2.imread(str(changed), 0), "constant", SIZE, True)
    )

    # Another setting is another key: computed again, the first entries left alone.
    fourth = load_imageclef_arrays(data, workers=0, **{**kwargs, "enhanced": False})
    assert (fourth[5].computed, fourth[5].cached) == (6, 0)
    assert len(os.listdir(cache)) == 2 and _mtimes(cache / key) == {
        k[len(key) + 1 :]: v for k, v in now.items()
    }


def test_process_pool_gives_the_same_arrays(tmp_path):
    phantom = simulate_radiographs(6, 40, 64, seed=2)
    write_imageclef_folder(phantom, tmp_path, test_fraction=0.5)
    kwargs = dict(padding="wrap", enhanced=True, size=SIZE, progress=False)
    serial = load_imageclef_arrays(tmp_path, workers=0, **kwargs)
    pooled = load_imageclef_arrays(tmp_path, workers=2, cache_dir=tmp_path / "c", **kwargs)
    for a, b in zip(serial[:4], pooled[:4]):
        np.testing.assert_array_equal(a, b)
    assert pooled[5].computed == 6 and len(_mtimes(tmp_path / "c")) == 6


def test_load_problems_raise_once_or_are_skipped(tmp_path):
    phantom = simulate_radiographs(8, 32, 48, seed=4)
    train, test = write_imageclef_folder(phantom, tmp_path, test_fraction=0.25)
    images = tmp_path / "ImageCLEFmed2009_train.02"
    (images / "1001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # unreadable
    (images / "1002.png").unlink()  # missing
    codes = tmp_path / "ImageCLEFmed2009_train_codes.02.csv"
    lines = codes.read_text().splitlines()
    lines[4] = lines[4].split(";")[0] + ";1121-120-200"  # row 5 (id 1003): bad code
    lines.append(lines[1])  # row 8: duplicate of id 1000
    codes.write_text("\n".join(lines) + "\n")
    cache = tmp_path / "cache"
    kwargs = dict(size=SIZE, workers=0, progress=False, cache_dir=cache)
    with pytest.raises(LoadError) as info:
        load_imageclef_arrays(tmp_path, **kwargs)
    message = str(info.value)
    assert "4 input(s) cannot be used" in message
    for text in (
        f"row 3 (1001): cannot read image: ValueError: cannot read the radiograph {images}/1001.png",
        "row 4 (1002): image file not found: no 1002.png",
        "row 5 (1003): bad IRMA code",
        "row 8 (1000): duplicate image_id (first listed at row 2)",
    ):
        assert text in message, text
    # What could be computed was kept in the cache (a rerun after the fix starts from there).
    assert len(_mtimes(cache)) == 5  # 1000, 1004, 1005 and the test images
    with pytest.warns(UserWarning, match=r"4 input\(s\) not loaded"):
        x_train, y_train, x_test, y_test, label_map, report = load_imageclef_arrays(
            tmp_path, strict=False, **kwargs
        )
    kept = [i for i in train if i not in (1, 2, 3)]
    np.testing.assert_array_equal(x_train, _expected(phantom, kept, "constant", False))
    assert label_map.decode(y_train) == [phantom.codes[i] for i in kept]
    assert x_test.shape[0] == len(test) and report.test.ok
    assert report.train.skipped_rows == [3, 4, 5, 8]
    assert (report.computed, report.cached) == (0, 5)  # the unreadable one is never cached


def test_colour_file_is_converted_with_a_note(tmp_path):
    phantom = simulate_radiographs(3, 32, 40, seed=5)
    write_imageclef_folder(phantom, tmp_path, test_fraction=0.34)
    grey = phantom.images[0]
    colour = np.stack([grey, grey // 2, grey], axis=-1)  # B, G, R
    cv2.imwrite(str(tmp_path / "ImageCLEFmed2009_train.02" / "1000.png"), colour)
    x_train, *_, report = load_imageclef_arrays(tmp_path, size=SIZE, workers=0, progress=False)
    assert report.notes == [
        "train 1000: converted 3-channel bgr colour to grey (0.299 R + 0.587 G + 0.114 B)"
    ]
    expected = prepare_radiograph(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), "constant", SIZE)
    np.testing.assert_array_equal(x_train[0], expected)


def test_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="Received: padding='reflect'"):
        load_imageclef_arrays(tmp_path, padding="reflect")
    with pytest.raises(ValueError, match="Received: workers=-1"):
        load_imageclef_arrays(tmp_path, workers=-1)
    with pytest.raises(FileNotFoundError, match="No such ImageCLEF folder"):
        load_imageclef_arrays(tmp_path / "none")
    with pytest.raises(ValueError, match="Received: test_fraction=1"):
        write_imageclef_folder(simulate_radiographs(2, 32, 32), tmp_path, test_fraction=1)


def test_streamed_batches_are_the_arrays_with_mixed_bit_depths(tmp_path):
    phantom = simulate_radiographs(7, 32, 48, bit_depth=16, seed=6)
    write_imageclef_folder(phantom, tmp_path / "data", test_fraction=0.3)
    eight = (phantom.images[1] >> 8).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "data" / "ImageCLEFmed2009_train.02" / "1001.png"), eight)
    kwargs = dict(size=SIZE, workers=0, progress=False, cache_dir=tmp_path / "cache")
    x_train, y_train, *_, report = load_imageclef_arrays(tmp_path / "data", **kwargs)
    assert x_train.dtype == np.uint16 and report.notes == [
        "1 8-bit image(s) multiplied by 257 to share one uint16 array with 4 16-bit image(s)"
    ]
    cache = prepare_imageclef_cache(tmp_path / "data", **kwargs)
    assert cache.train.dtype == np.uint16 and cache.report.notes == report.notes
    assert cache.report.cached == 7 and cache.nbytes == 7 * SIZE * SIZE * 3 * 2
    data = ImageCLEFDataset(cache.train, cache.label_map.num_classes, batch_size=2, shuffle=False)
    batches = [data[i] for i in range(len(data))]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), x_train)
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]).argmax(1), y_train)
    with pytest.raises(ValueError, match="Received: entries of type ndarray"):
        ImageCLEFDataset(x_train, 3)
    with pytest.raises(ValueError, match="Received: num_classes=1"):
        ImageCLEFDataset(cache.train, 1)
    # a cache entry replaced by something else is named when its batch is read
    np.savez(cache.train.paths[0], image=np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="1000.npz holds a uint8 image of shape \\(3, 3\\)"):
        data[0]


def test_without_a_cache_folder_the_arrays_are_those_of_the_cache_and_nothing_is_written(
    tmp_path, monkeypatch
):
    phantom = simulate_radiographs(7, 32, 48, bit_depth=16, seed=7)
    write_imageclef_folder(phantom, tmp_path / "data", test_fraction=0.3)
    images = tmp_path / "data" / "ImageCLEFmed2009_train.02"
    cv2.imwrite(str(images / "1001.png"), (phantom.images[1] >> 8).astype(np.uint8))  # 8-bit
    (images / "1003.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # unreadable
    kwargs = dict(padding="wrap", enhanced=True, size=SIZE, strict=False, progress=False)
    with pytest.warns(UserWarning, match=r"1 input\(s\) not loaded"):
        cached = load_imageclef_arrays(tmp_path / "data", cache_dir=tmp_path / "c", **kwargs)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    os.mkdir(tmp_path / "temp")

    def refuse(*args, **kwargs):
        raise AssertionError("a file was written although there is no cache folder")

    monkeypatch.setattr(xray_files, "save_npz_atomic", refuse)
    monkeypatch.setattr(prep_runner, "write_text_atomic", refuse)
    for workers in (0, 2):
        with pytest.warns(UserWarning, match=r"1 input\(s\) not loaded"):
            memory = load_imageclef_arrays(tmp_path / "data", workers=workers, **kwargs)
        for a, b in zip(cached[:4], memory[:4]):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        assert memory[0].dtype == np.uint16 and len(memory[0]) == 4  # one 8-bit file x 257
        assert memory[4] == cached[4] and memory[5].ids == cached[5].ids
        assert memory[5].notes == cached[5].notes and len(memory[5].notes) == 1
        assert [str(p) for p in memory[5].problems] == [str(p) for p in cached[5].problems]
        assert (memory[5].computed, memory[5].cached) == (6, 0)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == [*before, str(tmp_path / "temp")]
