"""Tests of `kerasmed.io.read_imageclef` on small folders in the ImageCLEF 2009 layout."""

import cv2
import numpy as np
import pytest

from kerasmed.io import IrmaLabelMap, LoadError, read_imageclef

CHEST, SKULL, HAND = "1123-110-500-000", "1121-120-200-700", "1121-120-413-700"


def _folder(root, split, nested=False):
    name = {"train": "ImageCLEFmed2009_train.02", "test": "ImageCLEFmed2009_test.03"}[split]
    folder = root / name / name if nested else root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _png(folder, name, value=100):
    cv2.imwrite(str(folder / name), np.full((6, 4), value, np.uint8))


def _codes(root, split, lines, name=None):
    name = (
        name
        or {
            "train": "ImageCLEFmed2009_train_codes.02.csv",
            "test": "ImageCLEFmed2009_test_codes.03.csv",
        }[split]
    )
    (root / name).write_text("\n".join(lines) + "\n")
    return root / name


@pytest.fixture
def clean(tmp_path):
    train, test = _folder(tmp_path, "train", nested=True), _folder(tmp_path, "test")
    for name in ("1877.png", "1878.png", "00001879.png", "notes.txt", "9999.png"):
        _png(train, name) if name.endswith(".png") else (train / name).write_text("x")
    _png(test, "20.png")
    _codes(tmp_path, "train", [
        "image_id;irma_code;05_class;06_class",
        f"1877;{CHEST};1;2", f"1878;{SKULL};3;4", f"1879;{CHEST};1;2",
    ])  # fmt: skip
    _codes(tmp_path, "test", ["image_id,irma_code", f"20,{HAND}"])  # commas work too
    return tmp_path


def test_public_layout_is_read_in_file_order(clean):
    with pytest.warns(UserWarning, match="9999.png: image file not listed in ImageCLEFmed2009_tr"):
        index = read_imageclef(clean)
    inner = clean / "ImageCLEFmed2009_train.02" / "ImageCLEFmed2009_train.02"
    assert index.train.image_dir == str(inner)  # the zip's nested folder is found
    assert index.train.ids == ("1877", "1878", "1879")
    assert index.train.codes == (CHEST, SKULL, CHEST)
    assert index.train.paths[2] == str(inner / "00001879.png")  # numeric id, leading zeros
    assert index.train.rows.tolist() == [2, 3, 4]
    assert index.test.ids == ("20",) and index.test.codes == (HAND,)
    assert index.label_map == IrmaLabelMap([CHEST, SKULL, HAND])
    assert index.report.ok and index.report.problems == []
    # The PNG no list names is ignored (listed, never a problem); the text file is no image.
    assert [p.path for p in index.report.ignored] == [str(inner / "9999.png")]


def test_explicit_paths_and_other_csv_names(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    _png(images, "a.png")
    train = _codes(tmp_path, "train", ["image_id;irma_code", f"a;{CHEST}"], name="tr.csv")
    (tmp_path / "test_images").mkdir()
    _png(tmp_path / "test_images", "b.png")
    _codes(
        tmp_path, "test", ["image_id;irma_code", f"b;{SKULL}"], name="ImageCLEFmed2009_test.03.csv"
    )
    index = read_imageclef(tmp_path, train_csv=train, train_images=images)
    assert index.train.ids == ("a",) and index.test.ids == ("b",)
    assert index.test.image_dir == str(tmp_path / "test_images")  # the single *test* folder


def test_every_problem_is_listed_with_its_row_and_file(clean):
    train = clean / "ImageCLEFmed2009_train.02" / "ImageCLEFmed2009_train.02"
    _codes(clean, "train", [
        "image_id;irma_code",
        f"1877;{CHEST}",        # row 2: fine
        "1878;1121-12-200-700",  # row 3: malformed code
        f"1877;{SKULL}",        # row 4: duplicate id
        f"5555;{CHEST}",        # row 5: no image file
        "1879;",                # row 6: missing code
        f"1880;{CHEST};extra",  # row 7: too many fields, and no image
        "1879;1121-102-200-700",  # row 8: a level below an unspecified one
    ])  # fmt: skip
    _codes(clean, "test", ["image_id;irma_code", f"20;{HAND}", f"1877;{HAND}"])
    _png(_folder(clean, "test"), "1877.png")
    with pytest.raises(LoadError) as info:
        read_imageclef(clean)
    message = str(info.value)
    assert "ImageCLEFmed2009_train_codes.02.csv: 6 input(s) cannot be used" in message
    assert "ImageCLEFmed2009_test_codes.03.csv: 1 input(s) cannot be used" in message
    for text in (
        "row 3 (1878): bad IRMA code: An IRMA code is TTTT-DDD-AAA-BBB",
        "row 4 (1877): duplicate image_id (first listed at row 2)",
        f"row 5 (5555): image file not found: no 5555.png (or .jpg, .tif, .dcm...) in {train}",
        "row 6 (1879): missing value [irma_code='']",
        "row 7 (1880): 3 fields, the header has 2",
        "row 8 (1879): bad IRMA code: The directional axis '102'",
        "row 3 (1877): image_id also in the train split (row 2 of its list)",
        "Received: strict=True",
    ):
        assert text in message, text
    report = info.value.report
    assert [p.row for p in report.train.problems if p.path] == [5, 7]
    assert report.train.problems[2].path == str(train / "5555.png")
    with pytest.warns(UserWarning, match=r"input\(s\) not loaded"):
        index = read_imageclef(clean, strict=False)
    assert index.train.ids == ("1877",) and index.test.ids == ("20",)
    assert index.train.report.skipped_rows == [3, 4, 5, 6, 7, 8]
    assert index.test.report.skipped_rows == [3]
    # 1878.png is listed (on a bad row) so it is not "unlisted"; 9999.png is.
    assert {p.path.rsplit("/", 1)[-1] for p in index.report.ignored} == {"9999.png"}
    assert index.label_map.codes == tuple(sorted([CHEST, HAND]))


def test_missing_folders_and_columns(tmp_path, clean):
    with pytest.raises(FileNotFoundError, match="No such ImageCLEF folder"):
        read_imageclef(tmp_path / "nothing")
    (clean / "ImageCLEFmed2009_test_codes.03.csv").unlink()
    with pytest.raises(FileNotFoundError, match="No code list of the test split.*test_csv="):
        read_imageclef(clean)
    _codes(clean, "test", ["id;code", f"20;{HAND}"])
    with pytest.raises(ValueError, match=r"missing columns \['image_id', 'irma_code'\]"):
        read_imageclef(clean)
