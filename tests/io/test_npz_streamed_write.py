"""`NpzWriter` / `NpzMember`: an ``.npz`` written member by member, from pieces, and read as
``np.savez`` wrote it; `save_longitudinal_npz` writing a set a sequence at a time."""

import tracemalloc
import zipfile

import numpy as np
import pytest

from kerasmed.io._npz import NpzMember, NpzWriter, memmap_npz_member
from kerasmed.io.sequences import (
    LongitudinalSequences,
    load_longitudinal_npz,
    save_longitudinal_npz,
)

ARRAYS = {
    "x": np.arange(24, dtype="float32").reshape(4, 3, 2),
    "ids": np.array(["p1", "patient-2"]),
    "version": np.array(1, dtype="int64"),
    "empty": np.zeros((0, 5), "uint8"),
    "fortran": np.asfortranarray(np.arange(6, dtype="int16").reshape(2, 3)),
}


def _members(path):
    """Each member's name, compression and uncompressed bytes (the zip's timestamps aside)."""
    with zipfile.ZipFile(path) as archive:
        return [(i.filename, i.compress_type, archive.read(i)) for i in archive.infolist()]


@pytest.mark.parametrize("compress", [False, True])
def test_members_are_those_np_savez_writes(tmp_path, compress):
    (np.savez_compressed if compress else np.savez)(tmp_path / "ref.npz", **ARRAYS)
    with NpzWriter(tmp_path / "ours", compress=compress) as out:  # .npz appended, as NumPy does
        for key, array in ARRAYS.items():
            out.add(key, array)
    assert _members(tmp_path / "ours.npz") == _members(tmp_path / "ref.npz")


@pytest.mark.parametrize("compress", [False, True])
def test_rows_from_pieces_equal_the_concatenation_saved_whole(tmp_path, compress):
    rng = np.random.default_rng(0)
    pieces = [rng.random((n, 3, 2)) for n in (2, 0, 5, 1)]  # float64, cast to float32
    whole = np.concatenate(pieces).astype("float32")
    (np.savez_compressed if compress else np.savez)(tmp_path / "ref.npz", x=whole)
    with NpzWriter(tmp_path / "ours.npz", compress=compress) as out:
        out.add_rows("x", whole.shape, "float32", iter(pieces))
    assert _members(tmp_path / "ours.npz") == _members(tmp_path / "ref.npz")
    if not compress:  # stored: still mappable
        mapped = memmap_npz_member(tmp_path / "ours.npz", "x", "test")
        np.testing.assert_array_equal(mapped, whole)


def test_bad_pieces_and_keys_are_refused(tmp_path):
    with NpzWriter(tmp_path / "a.npz") as out:
        with pytest.raises(ValueError, match=r"must have 5 rows in all. Received: 4 rows"):
            out.add_rows("short", (5, 2), "float32", [np.zeros((4, 2))])
        with pytest.raises(ValueError, match=r"Received: 6 rows \(or more\)"):
            out.add_rows("long", (5, 2), "float32", [np.zeros((3, 2)), np.zeros((3, 2))])
        with pytest.raises(ValueError, match=r"piece 1 must have the shape \(n, \*\(2,\)\)"):
            out.add_rows("shape", (4, 2), "float32", [np.zeros((2, 2)), np.zeros((2, 3))])
        with pytest.raises(ValueError, match="at least one axis and a plain dtype"):
            out.add_rows("scalar", (), "float32", [])
        with pytest.raises(ValueError, match="Python objects"):
            out.add("objects", np.array([{"a": 1}], dtype=object))
        out.add("x", np.zeros(2))
        with pytest.raises(ValueError, match="key 'x' was written already"):
            out.add("x", np.zeros(2))
        with pytest.raises(ValueError, match="non-empty string. Received: key=''"):
            out.add("", np.zeros(2))
    with pytest.raises(ValueError, match="Received: compress='yes'"):
        NpzWriter(tmp_path / "b.npz", compress="yes")


def test_member_reads_only_when_used_as_an_array(tmp_path):
    array = np.arange(12, dtype="uint8").reshape(3, 4)
    np.savez(tmp_path / "a.npz", images=array)
    member = NpzMember(tmp_path / "a.npz", "images")
    assert (member.shape, member.dtype, len(member), member.ndim) == ((3, 4), np.uint8, 3, 2)
    assert np.shape(member) == (3, 4)
    (tmp_path / "a.npz").unlink()  # the header is all it read: the array itself is gone now
    with pytest.raises(FileNotFoundError, match="a.npz"):
        np.asarray(member)
    np.savez(tmp_path / "a.npz", images=array)
    np.testing.assert_array_equal(np.asarray(member, dtype="float32"), array.astype("float32"))
    with pytest.raises(ValueError, match=r"cannot read .*a.npz \(KeyError"):
        NpzMember(tmp_path / "a.npz", "labels")
    (tmp_path / "b.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="b.npz"):
        NpzMember(tmp_path / "b.npz", "images")


def _sequences(lengths, size, images=None):
    rng = np.random.default_rng(1)
    return LongitudinalSequences(
        images=images or [rng.random((t, *size)).astype("float32") for t in lengths],
        labels=[rng.integers(0, 2, (t, 2)).astype("float32") for t in lengths],
        deltas=[np.arange(t, dtype="float32") * 30 for t in lengths],
        label_names=("a", "b"),
        ids=[f"p{i}" for i in range(len(lengths))],
    )


@pytest.mark.parametrize("image_dtype", ["uint8", "float32"])
@pytest.mark.parametrize("compress", [False, True])
def test_save_longitudinal_npz_writes_what_savez_of_the_concatenation_writes(
    tmp_path, image_dtype, compress
):
    seqs = _sequences((2, 3, 1), (4, 5))
    images = np.concatenate(seqs.images)  # the format of the module docstring, by hand
    if image_dtype == "uint8":
        images = np.round(np.clip(images, 0, 1) * 255).astype("uint8")
    reference = {
        "images": images,
        "labels": np.concatenate(seqs.labels),
        "deltas": np.concatenate(seqs.deltas),
        "offsets": np.array([0, 2, 5, 6], "int64"),
        "ids": np.array(["p0", "p1", "p2"]),
        "label_names": np.array(["a", "b"]),
        "delta_unit": np.array("days"),
        "format_version": np.array(1, "int64"),
    }
    (np.savez_compressed if compress else np.savez)(tmp_path / "ref.npz", **reference)
    save_longitudinal_npz(tmp_path / "ours.npz", seqs, image_dtype, compress=compress)
    assert _members(tmp_path / "ours.npz") == _members(tmp_path / "ref.npz")


def test_save_refuses_mixed_image_shapes_and_other_types(tmp_path):
    images = [np.zeros((1, 4, 4), "float32"), np.zeros((2, 4, 5), "float32")]
    with pytest.raises(ValueError, match=r"Received: image shapes \[\(4, 4\), \(4, 5\)\]"):
        save_longitudinal_npz(tmp_path / "a.npz", _sequences((1, 2), None, images))
    with pytest.raises(ValueError, match="Received: sequences of type dict"):
        save_longitudinal_npz(tmp_path / "a.npz", {"images": images})


def test_a_set_of_part_files_is_written_without_holding_it(tmp_path):
    """Sequences left in their files (`NpzMember`, as the prep script gathers them) are read
    one at a time: the peak of Python allocations is a few sequences, not the set."""
    lengths, size = [4] * 40, (64, 64)  # 40 sequences of 64 kB: 2.6 MB of images in all
    rng = np.random.default_rng(2)
    members = []
    for i, t in enumerate(lengths):
        np.savez(tmp_path / f"part{i}.npz", images=rng.random((t, *size)).astype("float32"))
        members.append(NpzMember(tmp_path / f"part{i}.npz", "images"))
    seqs = _sequences(lengths, size, members)
    tracemalloc.start()
    save_longitudinal_npz(tmp_path / "all.npz", seqs, "float32", compress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole_set = 40 * 4 * 64 * 64 * 4  # bytes; np.savez of the concatenation needs > 2x this
    assert peak < whole_set / 4, (peak, whole_set)  # measured: 0.12 of the set
    loaded = load_longitudinal_npz(tmp_path / "all.npz")
    assert loaded.ids == seqs.ids
    for got, member in zip(loaded.images, members):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(member))
