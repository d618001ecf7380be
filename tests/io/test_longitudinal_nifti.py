import importlib.util
import warnings
from pathlib import Path

import cv2
import nibabel
import numpy as np
import pytest

from kerasmed.io import (
    LoadError,
    SegmentationSequences,
    load_segmentation_npz,
    load_segmentation_sequences,
    read_segmentation_manifest,
    save_segmentation_npz,
)

REPO = Path(__file__).resolve().parents[2]
SHAPE = (5, 4, 3)  # stored (x, y, z): canonical arrays are (Z, Y, X) = (3, 4, 5)
AFFINE = np.diag([-1.0, 1.0, 1.0, 1.0])  # stored x runs towards Left: read_nifti flips it
SUBJECTS = ("s01", "s02")
MONTHS = (0, 6, 12)
MODALITIES = ("t1w", "t2w")
HEADER = "subject,timepoint,image_t1w,image_t2w,label"


def stored_image(s, month, c):
    """Unique values per voxel, subject, time point and modality; the x=0 plane is background."""
    data = 1.0 + np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    data += 1000 * s + 100 * month + 10000 * c
    data[0] = 0.0
    return data


def stored_label(s, month):
    """Only axial slice z=1 is annotated (classes 1..3), like the paper's BRIC data."""
    label = np.zeros(SHAPE, dtype=np.uint8)
    x, y = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    label[:, :, 1] = (x + y + s + month) % 3 + 1
    return label


def canonical(data):
    """What read_nifti returns for AFFINE: flip x, then (x, y, z) -> (z, y, x)."""
    return data[::-1].transpose(2, 1, 0)


def save(path, data, affine=AFFINE):
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(data, affine), path)


@pytest.fixture
def dataset(tmp_path):
    """2 subjects x 3 time points x 2 modalities; s01 is unlabelled at 6 months; rows shuffled."""
    rows = []
    for s, subject in enumerate(SUBJECTS):
        for month in MONTHS:
            names = []
            for c, modality in enumerate(MODALITIES):
                names.append(f"{subject}/m{month}_{modality}.nii")
                save(tmp_path / names[-1], stored_image(s, month, c))
            label = ""
            if not (s == 0 and month == 6):
                label = f"{subject}/m{month}_seg.nii.gz"
                save(tmp_path / label, stored_label(s, month))
            rows.append(f"{subject},{month},{names[0]},{names[1]},{label}")
    order = [2, 0, 1, 4, 5, 3]  # s01: 12, 0, 6 then s02: 6, 12, 0 (CSV lines 2..7)
    write_csv(tmp_path / "m.csv", [rows[k] for k in order])
    return tmp_path


def write_csv(path, rows, header=HEADER):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def read_quiet(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_segmentation_manifest(path, **kwargs)


def load_quiet(manifest, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_segmentation_sequences(manifest, **kwargs)


def test_manifest_sorts_time_points_and_resolves_paths(dataset):
    m = read_segmentation_manifest(dataset / "m.csv")
    assert m.ids == SUBJECTS and m.channel_names == ("image_t1w", "image_t2w")
    assert [t.tolist() for t in m.timepoints] == [[0.0, 6.0, 12.0]] * 2
    assert [r.tolist() for r in m.rows] == [[3, 4, 2], [7, 5, 6]]
    assert m.image_paths[1][2] == (
        str(dataset / "s02/m12_t1w.nii"),
        str(dataset / "s02/m12_t2w.nii"),
    )
    assert m.label_paths[0] == (
        str(dataset / "s01/m0_seg.nii.gz"),
        None,
        str(dataset / "s01/m12_seg.nii.gz"),
    )
    assert m.report.ok and m.report.num_rows == 6 and len(m) == 2


def test_sequences_equal_the_written_volumes(dataset):
    seqs = load_segmentation_sequences(
        read_segmentation_manifest(dataset / "m.csv"), slices="all", normalize=None
    )
    assert seqs.images.shape == (6, 3, 4, 5, 2) and seqs.images.dtype == np.float32
    assert seqs.labels.shape == (6, 3, 4, 5) and seqs.labels.dtype == np.int8
    assert seqs.subject_ids == ("s01",) * 3 + ("s02",) * 3
    assert seqs.slice_indices.tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_array_equal(seqs.timepoints, [[0, 6, 12]] * 6)
    assert seqs.channel_names == ("image_t1w", "image_t2w")
    for k in range(6):
        s, z = k // 3, seqs.slice_indices[k]
        for t, month in enumerate(MONTHS):
            for c in range(2):
                expected = canonical(stored_image(s, month, c))[z]
                np.testing.assert_array_equal(seqs.images[k, t, :, :, c], expected)
            if s == 0 and month == 6:
                assert np.all(seqs.labels[k, t] == -1)
            else:
                np.testing.assert_array_equal(
                    seqs.labels[k, t], canonical(stored_label(s, month))[z]
                )
    # orientation, by hand: row y, column x of slice z holds stored voxel (4 - x, y, z)
    assert seqs.images[1, 0, 2, 0, 0] == stored_image(0, 0, 0)[4, 2, 1] == 1 + 4 * 12 + 2 * 3 + 1
    assert seqs.labelled[:, 1].tolist() == [False] * 3 + [True] * 3
    assert seqs.num_classes == 4


def test_zscore_over_the_nonzero_voxels_of_each_volume(dataset):
    m = read_segmentation_manifest(dataset / "m.csv")
    seqs = load_segmentation_sequences(m, slices="all")  # default normalize="zscore"
    volume = canonical(stored_image(1, 12, 1)).astype(np.float64)  # s02, 12 months, T2w
    brain = volume[volume != 0]
    expected = np.where(volume != 0, (volume - brain.mean()) / brain.std(), 0.0)
    np.testing.assert_allclose(seqs.images[3:, 2, :, :, 1], expected, rtol=1e-5, atol=1e-6)
    for s in range(2):  # every volume: its nonzero voxels (all slices) have mean 0, std 1
        for t in range(3):
            for c in range(2):
                values = seqs.images[3 * s : 3 * s + 3, t, :, :, c]
                values = values[values != 0]
                assert values.size == 3 * 4 * 4
                assert abs(values.mean()) < 1e-5 and abs(values.std() - 1) < 1e-5
    assert np.all(seqs.images[:, :, :, -1, :] == 0)  # stored x=0 is the last column


def test_slice_selection(dataset):
    m = read_segmentation_manifest(dataset / "m.csv")
    pick = lambda slices: load_segmentation_sequences(m, slices=slices, normalize=None)  # noqa: E731
    assert pick("middle").slice_indices.tolist() == [1, 1]
    assert pick(-1).slice_indices.tolist() == [2, 2]
    assert pick([2, 0]).slice_indices.tolist() == [2, 0, 2, 0]
    assert pick("labelled").slice_indices.tolist() == [1, 1]
    # slice centres (z + 0.5) / 3 = 1/6, 1/2, 5/6
    assert pick((0.4, 1.0)).slice_indices.tolist() == [1, 2, 1, 2]
    assert pick((0.0, 0.3)).slice_indices.tolist() == [0, 0]
    full = pick("all")
    np.testing.assert_array_equal(pick([2, 0]).images[1], full.images[0])
    with pytest.raises(ValueError, match=r"out of range for 3 axial slices"):
        load_segmentation_sequences(m, slices=3, strict=True)
    with pytest.raises(ValueError, match=r"2 time point\(s\) or subject\(s\) cannot be used"):
        load_segmentation_sequences(m, slices=[0, 5])  # strict by default
    with pytest.warns(UserWarning, match="row 2: subject 's01' skipped"):
        with pytest.raises(LoadError, match="No usable subject") as info:
            load_segmentation_sequences(m, slices=[0, 5], strict=False)
    assert info.value.report.skipped_rows == [2, 5]  # each subject's first line
    assert m.report.ok  # the manifest's own report is not changed by loading


def test_resize_bilinear_images_nearest_labels(dataset):
    m = read_segmentation_manifest(dataset / "m.csv")
    seqs = load_segmentation_sequences(m, slices=[1], image_size=(8, 10), normalize=None)
    assert seqs.images.shape == (2, 3, 8, 10, 2) and seqs.labels.shape == (2, 3, 8, 10)
    label = canonical(stored_label(1, 6))[1]
    np.testing.assert_array_equal(seqs.labels[1, 1], np.repeat(np.repeat(label, 2, 0), 2, 1))
    assert np.all(seqs.labels[0, 1] == -1)
    image = canonical(stored_image(0, 12, 1))[1]
    reference = cv2.resize(image, (10, 8), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(seqs.images[0, 2, :, :, 1], reference, rtol=1e-6)
    square = load_segmentation_sequences(m, slices=[1], image_size=6, normalize=None)
    assert square.images.shape == (2, 3, 6, 6, 2)


def test_semicolon_column_gives_the_same_channels(dataset):
    lines = (dataset / "m.csv").read_text().splitlines()[1:]
    rows = []
    for line in lines:
        s, t, a, b, label = line.split(",")
        rows.append(f"{s},{t},{a};{b},{label}")
    path = write_csv(dataset / "one.csv", rows, "subject,timepoint,image,label")
    m = read_segmentation_manifest(path)
    assert m.channel_names == ("image[0]", "image[1]")
    two = load_segmentation_sequences(read_segmentation_manifest(dataset / "m.csv"))
    np.testing.assert_array_equal(load_segmentation_sequences(m).images, two.images)
    write_csv(
        dataset / "bad.csv",
        [rows[0], "s01,0,s01/m0_t1w.nii,", "s01,1,a.nii;,"],
        "subject,timepoint,image,label",
    )
    m = read_quiet(dataset / "bad.csv", check_files=False, strict=False)
    assert [str(p) for p in m.report.problems] == [
        "row 3: 1 image paths, earlier rows have 2 [image='s01/m0_t1w.nii']",
        "row 4: empty path in a ';'-separated list [image='a.nii;']",
    ]


def test_manifest_problems_are_reported_with_rows(dataset):
    rows = [
        "s01,0,s01/m0_t1w.nii,s01/m0_t2w.nii,",  # line 2: fine
        "s01,six,s01/m6_t1w.nii,s01/m6_t2w.nii,",  # line 3: non-numeric time point
        "s01,0.0,s01/m12_t1w.nii,s01/m12_t2w.nii,",  # line 4: duplicate of line 2
        "s01,12,s01/m12_t1w.nii,gone.nii,",  # line 5: missing file
        "s02,0,s02/m0_t1w.nii,s02/m0_t2w.nii,nolabel.nii",  # line 6: missing label file
        ",6,s02/m6_t1w.nii,s02/m6_t2w.nii,",  # line 7: empty subject
        "s02,12,s02/m12_t1w.nii,s02/m12_t2w.nii,,extra",  # line 8: too many fields
        "s02,inf,s02/m6_t1w.nii,s02/m6_t2w.nii,",  # line 9: not finite
        "s02,6,s02/m6_t1w.nii;x.nii,s02/m6_t2w.nii,",  # line 10: two paths, two columns
    ]
    path = write_csv(dataset / "bad.csv", rows)
    with pytest.warns(UserWarning, match=r"8 row\(s\) not loaded"):
        m = read_segmentation_manifest(path, strict=False)
    assert m.report.skipped_rows == [3, 4, 5, 6, 7, 8, 9, 10]
    text = [str(p) for p in m.report.problems]
    assert text[0] == "row 3: non-numeric time point [timepoint='six']"
    assert (
        text[1] == "row 4: duplicate time point of subject 's01' (first at row 2) [timepoint='0.0']"
    )
    assert text[2] == f"row 5: file not found: {dataset / 'gone.nii'} [image_t2w='gone.nii']"
    assert text[3].startswith("row 6: file not found:") and "[label='nolabel.nii']" in text[3]
    assert text[4] == "row 7: missing value [subject='']"
    assert text[5] == "row 8: 6 fields, the header has 5"
    assert text[6] == "row 9: non-numeric time point [timepoint='inf']"
    assert text[7].startswith("row 10: several paths in one of several image columns")
    assert m.ids == ("s01",) and m.timepoints[0].tolist() == [0.0]
    assert "bad.csv: 9 rows, 8 skipped" in str(m.report)

    with pytest.raises(LoadError) as info:
        read_segmentation_manifest(path)  # strict by default: every problem, not the first
    assert str(info.value).startswith(f"{path}: 8 row(s) cannot be used:\n  {text[0]}\n")
    assert all(line in str(info.value) for line in text)
    assert info.value.report.skipped_rows == [3, 4, 5, 6, 7, 8, 9, 10]
    write_csv(path, rows[:1] + rows[2:3])
    with pytest.raises(ValueError, match=r"row 3: duplicate time point .*first at row 2"):
        read_segmentation_manifest(path, strict=True)
    write_csv(path, rows[3:4])
    with pytest.raises(
        ValueError,  # a listed file that is missing is a problem of the manifest
        match=r"bad\.csv: 1 row\(s\)(.|\n)*row 2: file not found: .*gone\.nii.*image_t2w='gone\.nii'",
    ):
        read_segmentation_manifest(path, strict=True)


def test_manifest_header_errors(dataset):
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        read_segmentation_manifest(dataset / "nothing.csv")
    path = write_csv(dataset / "h.csv", ["s01,0,a.nii"], "subject,timepoint,image_t1w")
    with pytest.raises(ValueError, match=r"h\.csv \(row 1, header\): missing columns \['label'\]"):
        read_segmentation_manifest(path)
    m = read_segmentation_manifest(path, label_column=None, check_files=False)
    assert m.label_paths == [(None,)]
    write_csv(path, ["s01,0,a.nii"], "subject,time,t1")
    with pytest.raises(ValueError, match=r"missing columns \['timepoint', 'label'\]"):
        read_segmentation_manifest(path, image_columns=["t1"])
    with pytest.raises(
        ValueError, match=r"missing columns \['label', 'image or image_<modality>'\]"
    ):
        read_segmentation_manifest(path, timepoint_column="time")
    m = read_segmentation_manifest(
        path, image_columns=["t1"], timepoint_column="time", label_column=None, check_files=False
    )
    assert m.channel_names == ("t1",) and m.image_paths == [((str(dataset / "a.nii"),),)]


def test_shape_mismatches_skip_time_points_and_subjects(dataset):
    save(dataset / "s01/m6_t2w.nii", np.ones((5, 4, 4), np.float32))  # modality shape
    save(dataset / "s02/m0_seg.nii.gz", np.ones((5, 4, 2), np.uint8))  # label shape
    m = read_segmentation_manifest(dataset / "m.csv")
    with pytest.raises(
        ValueError,
        match=r"modalities have different shapes .*m6_t1w\.nii \(3, 4, 5\), .*m6_t2w\.nii \(4, 4, 5\)",
    ):
        load_segmentation_sequences(m, strict=True)
    with pytest.warns(UserWarning, match=r"2 time point\(s\) or subject\(s\) not loaded"):
        seqs = load_segmentation_sequences(m, normalize=None, strict=False)
    text = [str(p) for p in seqs.report.problems]
    assert len(text) == 2
    assert text[0].startswith("row 4: time point skipped: modalities have different shapes")
    assert text[1].startswith("row 7: time point skipped: label shape (2, 4, 5) of")
    assert "m0_seg.nii.gz differs from image shape (3, 4, 5)" in text[1]
    # both subjects are left with 2 time points: kept, with the usable ones
    np.testing.assert_array_equal(seqs.timepoints, [[0, 12], [6, 12]])
    np.testing.assert_array_equal(seqs.images[1, 0, :, :, 1], canonical(stored_image(1, 6, 1))[1])
    save(dataset / "s02/m12_t1w.nii", np.ones((5, 4, 2), np.float32))
    with pytest.warns(UserWarning, match="row 5: subject 's02' skipped: 1 usable time points"):
        seqs = load_segmentation_sequences(
            read_segmentation_manifest(dataset / "m.csv"), strict=False
        )
    assert seqs.subject_ids == ("s01",)


def test_time_point_of_another_shape_and_subject_sizes(dataset):
    save(dataset / "s02/m6_t1w.nii", np.ones((6, 4, 3), np.float32))
    save(dataset / "s02/m6_t2w.nii", np.ones((6, 4, 3), np.float32))
    save(dataset / "s02/m6_seg.nii.gz", np.ones((6, 4, 3), np.uint8))
    m = read_segmentation_manifest(dataset / "m.csv")
    with pytest.raises(LoadError, match="row 5: time point skipped: shape"):
        load_segmentation_sequences(m, normalize=None)  # strict by default
    with pytest.warns(UserWarning) as caught:
        seqs = load_segmentation_sequences(m, normalize=None, strict=False)
    message = str(caught[0].message)
    assert "row 5: time point skipped: shape (3, 4, 6) of" in message
    assert "differs from the subject's other time points (3, 4, 5)" in message
    assert "row 5: subject 's02' skipped: 2 usable time points, most subjects have 3" in message
    assert seqs.subject_ids == ("s01",)
    for month in MONTHS:  # every volume of s02 now has 6 x voxels: (Y, X) differs from s01
        for modality in MODALITIES:
            save(dataset / f"s02/m{month}_{modality}.nii", np.ones((6, 4, 3), np.float32))
        save(dataset / f"s02/m{month}_seg.nii.gz", np.ones((6, 4, 3), np.uint8))
    m = read_segmentation_manifest(dataset / "m.csv")
    with pytest.raises(ValueError, match=r"'s01' \(4, 5\), 's02' \(4, 6\). Pass image_size"):
        load_segmentation_sequences(m)
    seqs = load_segmentation_sequences(m, image_size=(4, 5), normalize=None)
    assert seqs.images.shape == (2, 3, 4, 5, 2) and np.all(seqs.labels[1] == 1)


def test_timepoints_selection_and_label_values(dataset):
    m = read_segmentation_manifest(dataset / "m.csv")
    with pytest.warns(UserWarning, match="not in timepoints"):  # reported, even when strict
        seqs = load_segmentation_sequences(m, timepoints=[12, 0], normalize=None, strict=True)
    np.testing.assert_array_equal(seqs.timepoints, [[0, 12], [0, 12]])
    np.testing.assert_array_equal(seqs.images[1, 1, :, :, 0], canonical(stored_image(1, 12, 0))[1])
    assert [str(p) for p in seqs.report.ignored] == [  # left out on request: not problems
        "row 4: time point skipped: not in timepoints=[12.0, 0.0] [timepoint='6']",
        "row 5: time point skipped: not in timepoints=[12.0, 0.0] [timepoint='6']",
    ]
    assert seqs.report.ok
    with pytest.raises(ValueError, match=r"row 2: subject 's01' skipped: no time point \[3.0\]"):
        load_segmentation_sequences(m, timepoints=[0, 3], strict=True)

    mapped = load_segmentation_sequences(m, slices=[1], label_map={0: -1, 1: 0, 2: 1, 3: 2})
    original = load_segmentation_sequences(m, slices=[1])
    has = original.labels >= 0
    np.testing.assert_array_equal(mapped.labels[has], original.labels[has] - 1)
    save(dataset / "s01/m0_seg.nii.gz", np.full(SHAPE, 150, np.uint8))
    with pytest.raises(ValueError, match=r"row 3: .*m0_seg\.nii\.gz has values \[150\] outside"):
        load_segmentation_sequences(m, strict=True)
    with pytest.raises(ValueError, match=r"values \[150\] missing from label_map"):
        load_segmentation_sequences(m, label_map={0: 0, 1: 1}, strict=True)
    save(dataset / "s01/m0_seg.nii.gz", np.full(SHAPE, 0.5, np.float32))
    with pytest.raises(ValueError, match=r"m0_seg\.nii\.gz has non-integer values"):
        load_segmentation_sequences(m, strict=True)
    (dataset / "s01/m0_t1w.nii").unlink()
    with pytest.raises(ValueError, match=r"row 3: time point skipped: NIfTI file not found"):
        load_segmentation_sequences(m, strict=True)


def test_invalid_arguments(dataset):
    m = read_segmentation_manifest(dataset / "m.csv")
    for slices in ("top", (0.7, 0.3), [], [1.5, 2.0], True):
        with pytest.raises(ValueError, match=r"Received: slices="):
            load_segmentation_sequences(m, slices=slices)
    with pytest.raises(ValueError, match=r"Received: normalize='minmax'"):
        load_segmentation_sequences(m, normalize="minmax")
    for size in (0, (4, 5, 6), (4.0, 5)):
        with pytest.raises(ValueError, match=r"Received: image_size="):
            load_segmentation_sequences(m, image_size=size)
    with pytest.raises(ValueError, match=r"Received: label_map="):
        load_segmentation_sequences(m, label_map={250: 200})


def test_npz_round_trip_and_loader_errors(dataset, tmp_path):
    m = read_segmentation_manifest(dataset / "m.csv")
    seqs = load_segmentation_sequences(m, slices="all")
    save_segmentation_npz(tmp_path / "segmentation.npz", seqs)
    for where in (tmp_path / "segmentation.npz", tmp_path):
        back = load_segmentation_npz(where)
        np.testing.assert_array_equal(back.images, seqs.images)
        np.testing.assert_array_equal(back.labels, seqs.labels)
        np.testing.assert_array_equal(back.timepoints, seqs.timepoints)
        np.testing.assert_array_equal(back.slice_indices, seqs.slice_indices)
        assert back.subject_ids == seqs.subject_ids and back.channel_names == seqs.channel_names
        assert back.labels.dtype == np.int8 and back.report is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty[/\\]segmentation\.npz"):
        load_segmentation_npz(tmp_path / "empty")
    arrays = dict(np.load(tmp_path / "segmentation.npz"))
    np.savez(tmp_path / "a.npz", **{k: v for k, v in arrays.items() if k != "labels"})
    with pytest.raises(
        ValueError, match=r"a\.npz is not a segmentation .*missing keys \['labels'\]"
    ):
        load_segmentation_npz(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", **{**arrays, "labels": arrays["labels"][:, :2]})
    with pytest.raises(ValueError, match=r"b\.npz: .*labels=\(6, 2, 4, 5\)"):
        load_segmentation_npz(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", **{**arrays, "labels": arrays["labels"].astype("float32")})
    with pytest.raises(ValueError, match=r"c\.npz: `images` must be float and `labels` integer"):
        load_segmentation_npz(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"min=-2"):
        SegmentationSequences(
            seqs.images,
            seqs.labels - 1,
            seqs.subject_ids,
            seqs.slice_indices,
            seqs.timepoints,
            seqs.channel_names,
        )


def test_npz_images_are_mapped_and_a_compressed_file_still_loads(dataset, tmp_path):
    seqs = load_segmentation_sequences(read_segmentation_manifest(dataset / "m.csv"))
    path = tmp_path / "segmentation.npz"
    save_segmentation_npz(path, seqs)
    mapped = load_segmentation_npz(path)
    # a read-only view of the file's bytes, not a copy
    assert isinstance(mapped.images, np.memmap) and mapped.images.filename == str(path)
    assert not mapped.images.flags.writeable and mapped.images.dtype == np.float32
    np.testing.assert_array_equal(mapped.images, seqs.images)
    assert not isinstance(load_segmentation_npz(path, mmap=False).images, np.memmap)
    # a file of an older kerasmed: the same keys, every array compressed
    old = tmp_path / "old.npz"
    with np.load(path) as data:
        np.savez_compressed(old, **{key: data[key] for key in data.files})
    for compressed in (old, tmp_path / "c.npz"):
        if compressed != old:
            save_segmentation_npz(compressed, seqs, compress=True)
        back = load_segmentation_npz(compressed)
        assert type(back.images) is np.ndarray and back.images.flags.writeable
        np.testing.assert_array_equal(back.images, seqs.images)
        np.testing.assert_array_equal(back.labels, seqs.labels)
    assert (tmp_path / "c.npz").stat().st_size < path.stat().st_size
    with pytest.raises(ValueError, match=r"Received: compress='yes'"):
        save_segmentation_npz(path, seqs, compress="yes")


def load_script():
    path = REPO / "data_prep" / "longitudinal_segmentation.py"
    spec = importlib.util.spec_from_file_location("longitudinal_segmentation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_script_end_to_end(tmp_path, capsys):
    script = load_script()
    script.main(["--write-example", str(tmp_path / "example")])
    assert "manifest.csv" in capsys.readouterr().out
    csv_path = tmp_path / "example" / "manifest.csv"
    assert csv_path.read_text().splitlines()[2] == (
        "sub-01,6,sub-01/month06_t1w.nii.gz,sub-01/month06_t2w.nii.gz,"
    )
    out = tmp_path / "out"
    summary = script.main([str(csv_path), "--out", str(out), "--slices", "0.3:0.7"])
    printed = capsys.readouterr().out
    assert "manifest.csv: 6 rows, 0 skipped" in printed and '"sequences": 4' in printed
    assert summary["classes"] == [0, 1, 2, 3] and summary["labelled_slices"] == 8
    seqs = load_segmentation_npz(out)
    assert isinstance(seqs.images, np.memmap)  # written uncompressed: streamable
    assert seqs.images.shape == (4, 3, 28, 24, 2) and seqs.slice_indices.tolist() == [2, 3] * 2
    assert seqs.subject_ids == ("sub-01", "sub-01", "sub-02", "sub-02")
    np.testing.assert_array_equal(seqs.timepoints, [[0, 6, 12]] * 4)
    assert np.all(seqs.labels[:, 1] == -1)
    stored = script.example_labels(1, 12)  # sub-02 at 12 months, (x, y, z) with x flipped
    np.testing.assert_array_equal(seqs.labels[3, 2], stored[::-1, :, 3].T)
    t1w = seqs.images[3, 2, :, :, 0]  # z-scored: at 12 months white matter is the brightest
    means = [t1w[seqs.labels[3, 2] == k].mean() for k in (1, 2, 3)]
    assert means[0] < means[1] < means[2] and np.all(t1w[seqs.labels[3, 2] == 0] == 0)
    assert (out / "prepare_report.txt").read_text() == printed
    with pytest.raises(SystemExit):
        script.main([str(csv_path)])  # no --out
    with pytest.raises(SystemExit):
        script.main([str(csv_path), "--out", str(out), "--slices", "top"])
