"""`kerasmed.io._npz.memmap_npz_member`: an uncompressed ``.npz`` member mapped, not read."""

import zipfile

import numpy as np
import pytest

from kerasmed.io._npz import memmap_npz_member


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype="float32").reshape(2, 3, 4),
        np.asfortranarray(np.arange(12, dtype="uint8").reshape(3, 4)),
        np.array(7, dtype="int64"),
        np.zeros((0, 5), dtype="float32"),
        np.array(["a", "bc"]),
    ],
    ids=["float32-3d", "fortran-uint8", "scalar", "empty", "unicode"],
)
def test_mapped_member_equals_np_load(tmp_path, array):
    path = tmp_path / "x.npz"
    np.savez(path, other=np.ones(3), x=array)
    mapped = memmap_npz_member(path, "x", "test")
    assert mapped.shape == array.shape and mapped.dtype == array.dtype
    np.testing.assert_array_equal(np.asarray(mapped), np.load(path)["x"])
    if array.size:
        assert isinstance(mapped, np.memmap)
        with pytest.raises(ValueError):
            mapped[(0,) * array.ndim] = mapped[(0,) * array.ndim]  # read-only


def test_zip64_member(tmp_path):
    # A member written with zip64 extra fields (as NumPy does for large arrays) still maps.
    path = tmp_path / "big.npz"
    array = np.arange(100, dtype="int32")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, array)
    np.testing.assert_array_equal(memmap_npz_member(path, "x", "test"), array)


def test_compressed_member_is_none(tmp_path):
    path = tmp_path / "c.npz"
    np.savez_compressed(path, x=np.arange(5))
    assert memmap_npz_member(path, "x", "test") is None


def test_errors_name_file_and_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        memmap_npz_member(tmp_path / "missing.npz", "x", "test")
    text = tmp_path / "t.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not an .npz"):
        memmap_npz_member(text, "x", "test")
    path = tmp_path / "k.npz"
    np.savez(path, y=np.arange(2))
    with pytest.raises(ValueError, match=r"missing key 'x'.*\['y'\]"):
        memmap_npz_member(path, "x", "test")
    objects = tmp_path / "o.npz"
    np.savez(objects, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        memmap_npz_member(objects, "x", "test")
