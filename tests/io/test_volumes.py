import numpy as np
import pytest

from kerasmed.data import simulate_head_ct
from kerasmed.io import (
    LoadError,
    LoadProblem,
    VolumeSet,
    VolumeSetWriter,
    load_volume_set,
    save_volume_set,
)

SPACING = (5.0, 0.5, 0.5)


def _volume(n, size=8, offset=0.0):
    """Distinct HU values per voxel: slice k holds 100 * k + pixel index + offset."""
    return (np.arange(n)[:, None, None] * 100.0 + np.arange(size * size).reshape(size, size)
            + offset).astype(np.float32)  # fmt: skip


def _write_set(folder, entries, hu_dtype="float32"):
    """entries: (id, volume, label, slice_labels)."""
    with VolumeSetWriter(folder, hu_dtype=hu_dtype) as writer:
        for volume_id, volume, label, slice_labels in entries:
            writer.add(volume_id, volume, label, SPACING, slice_labels)


def _toy(folder):
    _write_set(
        folder,
        [
            ("a", _volume(3), 0, [0, 0, 0]),
            ("b", _volume(4, offset=0.25), 1, [0, 1, 1, -1]),
            ("c", _volume(2), 0, None),
        ],
    )


def test_phantom_round_trip_float32_and_npz_layout(tmp_path):
    phantom = simulate_head_ct(3, slice_size=32, min_slices=8, max_slices=10, seed=1)
    data = VolumeSet(phantom.volumes, phantom.labels, phantom.slice_labels, phantom.spacing)
    assert data.ids == ["volume-00000", "volume-00001", "volume-00002"]
    assert data.volumes[1] is phantom.volumes[1]  # float32 already: shared, not copied
    path = save_volume_set(tmp_path, data)
    assert path == tmp_path / "labels.csv"
    lines = path.read_text().splitlines()
    assert lines[0] == "volume_id,label,num_slices"
    assert lines[1:] == [
        f"volume-{i:05d},{phantom.labels[i]},{len(phantom.volumes[i])}" for i in range(3)
    ]
    with np.load(tmp_path / "volumes" / "volume-00001.npz", allow_pickle=False) as raw:
        assert sorted(raw.files) == ["format_version", "hu", "slice_labels", "spacing"]
        assert raw["hu"].dtype == np.float32 and raw["slice_labels"].dtype == np.int8
        np.testing.assert_array_equal(raw["spacing"], phantom.spacing[1])
    back = load_volume_set(tmp_path)
    assert back.ids == data.ids and back.report.skipped == [] and len(back) == 3
    assert back.report.ok and back.report.num_rows == 3
    np.testing.assert_array_equal(back.labels, phantom.labels)
    np.testing.assert_array_equal(back.spacing, phantom.spacing)
    for i in range(3):
        np.testing.assert_array_equal(back.volumes[i], phantom.volumes[i])
        np.testing.assert_array_equal(back.slice_labels[i], phantom.slice_labels[i])
        assert back.volumes[i].dtype == np.float32
    assert back.lengths.tolist() == [len(v) for v in phantom.volumes]


def test_int16_rounds_unknown_slice_labels_and_subset(tmp_path):
    _write_set(
        tmp_path,
        [("x", _volume(3, offset=0.4), 0, None), ("y", _volume(2, offset=-0.6), 1, None)],
        hu_dtype="int16",
    )
    with np.load(tmp_path / "volumes" / "x.npz", allow_pickle=False) as raw:
        assert raw["hu"].dtype == np.int16
        np.testing.assert_array_equal(raw["slice_labels"], [-1, -1, -1])
    back = load_volume_set(tmp_path)
    np.testing.assert_array_equal(back.volumes[0], _volume(3))  # x.4 rounds down
    np.testing.assert_array_equal(back.volumes[1], _volume(2, offset=-1.0))  # x.4 - 1 -> x - 1
    assert back.slice_labels is None  # nothing known on any slice
    part = back.subset([1])
    assert part.ids == ["y"] and part.labels.tolist() == [1] and part.slice_labels is None


def test_mixed_known_and_unknown_slice_labels(tmp_path):
    _toy(tmp_path)
    back = load_volume_set(tmp_path)
    assert [s.tolist() for s in back.slice_labels] == [[0, 0, 0], [0, 1, 1, -1], [-1, -1]]
    np.testing.assert_allclose(back.volumes[1], _volume(4, offset=0.25))


def test_resize_option_scales_spacing_and_max_volumes(tmp_path):
    _write_set(tmp_path, [("a", _volume(2), 0, None), ("b", _volume(3, size=4), 1, None)])
    with pytest.raises(ValueError, match=r"row 3 \(b\): slice size 4x4 differs from 8x8"):
        load_volume_set(tmp_path)
    back = load_volume_set(tmp_path, slice_size=4)
    expected = _volume(2).reshape(2, 4, 2, 4, 2).mean(axis=(2, 4))  # area = 2x2 block means
    np.testing.assert_allclose(back.volumes[0], expected, atol=1e-4)
    np.testing.assert_array_equal(back.volumes[1], _volume(3, size=4))
    np.testing.assert_allclose(back.spacing, [[5.0, 1.0, 1.0], [5.0, 0.5, 0.5]])
    tall = load_volume_set(tmp_path, slice_size=(8, 2), interpolation="nearest")
    assert tall.volumes[1].shape == (3, 8, 2)
    np.testing.assert_allclose(tall.spacing[1], [5.0, 0.25, 1.0])
    one = load_volume_set(tmp_path, max_volumes=1)  # row 3 (4x4) is never read
    assert one.ids == ["a"] and one.report.skipped == [] and one.report.num_rows == 1
    with pytest.raises(ValueError, match="Received: slice_size=0"):
        load_volume_set(tmp_path, slice_size=0)
    with pytest.raises(ValueError, match="Received: max_volumes=0"):
        load_volume_set(tmp_path, max_volumes=0)
    with pytest.raises(ValueError, match="Received: interpolation='cubic'"):
        load_volume_set(tmp_path, slice_size=4, interpolation="cubic")


def _rewrite_labels(folder, text):
    (folder / "labels.csv").write_text(text)


def test_every_row_problem_is_listed_with_its_row(tmp_path):
    _toy(tmp_path)
    # volume "d": a volume label 0 with a positive slice, written bypassing the writer's check
    np.savez(tmp_path / "volumes" / "d.npz", hu=_volume(3), spacing=np.array(SPACING),
             slice_labels=np.array([0, 1, 0], "int8"))  # fmt: skip
    np.savez(tmp_path / "volumes" / "e.npz", hu=_volume(2), spacing=np.array(SPACING))
    (tmp_path / "volumes" / "f.npz").write_bytes(b"not a zip file")
    _rewrite_labels(
        tmp_path,
        "volume_id,label,num_slices,note\n"
        "a,0,3,ok\n"  # row 2
        "b,2,4,bad label\n"  # row 3
        "c,0,5,wrong count\n"  # row 4
        "missing,1,3,no file\n"  # row 5
        "a,0,3,duplicate\n"  # row 6
        "d,0,3,contradiction\n"  # row 7
        "e,0,2,no slice_labels key\n"  # row 8
        "f,1,2,corrupt\n"  # row 9
        "g/h,1,2,bad id\n"  # row 10
        "\n"
        "h,1,x,bad count\n"  # row 12
        "b,1\n",  # row 13
    )
    with pytest.raises(LoadError) as info:
        load_volume_set(tmp_path)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and message.endswith("Received: strict=True")
    assert [p.row for p in info.value.report.problems] == [3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    expected = [
        "row 3 (b): label must be 0 or 1, found '2'",
        "row 4 (c): num_slices is 5 in labels.csv but c.npz has 2",
        "row 5 (missing): volume file not found:",
        "missing.npz",
        "row 6 (a): duplicate volume_id 'a' (first at row 2)",
        "row 7 (d): volume label is 0 but some slice labels are 1",
        "row 8 (e): ",
        "e.npz is not a volume file: missing keys ['slice_labels']",
        "row 9 (f): cannot read",
        "row 10 (g/h): invalid volume_id 'g/h'",
        "row 12 (h): num_slices must be a positive integer, found 'x'",
        "row 13 (b): 2 fields, the header has 4",
        "10 volume(s) cannot be used",
        "strict=False",
    ]
    for part in expected:
        assert part in message, part
    assert "row 9 (f): cannot read" in message and "not an .npz (zip) file" in message
    assert "  row 2 (" not in message and "row 11" not in message
    with pytest.warns(UserWarning, match="10 volume"):
        back = load_volume_set(tmp_path, strict=False)
    assert back.ids == ["a"]
    assert [s.row for s in back.report.problems] == [3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert isinstance(back.report.problems[0], LoadProblem)
    assert str(back.report.problems[0]) == "row 3 (b): label must be 0 or 1, found '2'"
    assert back.report.problems[1].path == str(tmp_path / "volumes" / "c.npz")
    assert back.report.skipped_rows == [3, 4, 5, 6, 7, 8, 9, 10, 12, 13]


def test_unlisted_files_warn_and_file_errors(tmp_path):
    _toy(tmp_path)
    np.savez(tmp_path / "volumes" / "stray.npz", hu=_volume(1))
    with pytest.warns(UserWarning, match=r"stray\.npz: file in volumes/ not listed in labels"):
        back = load_volume_set(tmp_path)  # strict: an unlisted file is not a problem
    assert back.ids == ["a", "b", "c"] and back.report.ok
    stray = str(tmp_path / "volumes" / "stray.npz")
    assert back.report.ignored == [
        LoadProblem("file in volumes/ not listed in labels.csv", path=stray, item="stray")
    ]
    with pytest.raises(FileNotFoundError, match="nope"):
        load_volume_set(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"labels.csv not found"):
        load_volume_set(tmp_path / "empty")
    _rewrite_labels(tmp_path, "volume_id,label\na,0\n")
    with pytest.raises(ValueError, match=r"row 1, header\): missing columns \['num_slices'\]"):
        load_volume_set(tmp_path)
    _rewrite_labels(tmp_path, "volume_id,label,num_slices\n")
    with (
        pytest.raises(ValueError, match="No usable volume"),
        pytest.warns(UserWarning, match="stray"),
    ):
        load_volume_set(tmp_path)


def test_writer_validates_and_protects_an_existing_set(tmp_path):
    _toy(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        VolumeSetWriter(tmp_path)
    writer = VolumeSetWriter(tmp_path, overwrite=True)
    assert not (tmp_path / "labels.csv").exists()  # an unfinished set has no labels.csv
    writer.add("z", _volume(2), 1, SPACING, [1, 0])
    with pytest.raises(ValueError, match="Received: volume_id='z'"):
        writer.add("z", _volume(2), 1, SPACING)
    with pytest.raises(ValueError, match="Received: volume_id='../up'"):
        writer.add("../up", _volume(2), 1, SPACING)
    with pytest.raises(ValueError, match="Received: label=2"):
        writer.add("w", _volume(2), 2, SPACING)
    with pytest.raises(ValueError, match="every slice label is 0"):
        writer.add("w", _volume(2), 1, SPACING, [0, 0])
    with pytest.raises(ValueError, match=r"Received: slice_labels.shape=\(3,\)"):
        writer.add("w", _volume(2), 1, SPACING, [0, 1, 0])
    with pytest.raises(ValueError, match="Received: spacing"):
        writer.add("w", _volume(2), 1, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="NaN"):
        writer.add("w", np.full((2, 4, 4), np.nan), 1, SPACING)
    writer.close()
    with pytest.warns(UserWarning, match=r"3 volume\(s\) not loaded"):
        assert load_volume_set(tmp_path).ids == ["z"]  # a, b, c are unlisted now
    with pytest.raises(ValueError, match="do not fit in int16"):
        VolumeSetWriter(tmp_path / "i", hu_dtype="int16").add(
            "v", np.full((1, 2, 2), 4e4), 0, SPACING
        )
    with pytest.raises(ValueError, match="Received: hu_dtype='uint8'"):
        VolumeSetWriter(tmp_path / "u", hu_dtype="uint8")
    with pytest.raises(ValueError, match="empty"):
        save_volume_set(tmp_path / "e", VolumeSet([], [], None, np.zeros((0, 3))))


def test_volume_set_checks_its_fields():
    v = [_volume(2), _volume(3)]
    data = VolumeSet(v, [0, 1], None, [SPACING, SPACING])
    assert data.ids == ["volume-00000", "volume-00001"]
    with pytest.raises(ValueError, match="labels"):
        VolumeSet(v, [0, 2], None, [SPACING, SPACING])
    with pytest.raises(ValueError, match="spacing"):
        VolumeSet(v, [0, 1], None, [SPACING])
    with pytest.raises(ValueError, match="distinct"):
        VolumeSet(v, [0, 1], None, [SPACING, SPACING], ids=["a", "a"])
    with pytest.raises(ValueError, match=r"slice_labels\[1\]"):
        VolumeSet(v, [0, 1], [[0, 0], [1, 0]], [SPACING, SPACING])
    with pytest.raises(ValueError, match=r"Volume 0 \(volume-00000\): volume label is 0"):
        VolumeSet(v, [0, 1], [[0, 1], [1, 0, 0]], [SPACING, SPACING])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        VolumeSet([np.zeros((4, 4))], [0], None, [SPACING])
