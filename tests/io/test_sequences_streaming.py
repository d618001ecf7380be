"""`load_longitudinal_npz` on an uncompressed file: images left in a memory map until read."""

import pickle

import numpy as np
import pytest

from kerasmed.io.sequences import (
    LongitudinalSequences,
    MappedImages,
    load_longitudinal_npz,
    save_longitudinal_npz,
)


def _sequences(lengths=(2, 4, 1, 3), size=(5, 6)):
    rng = np.random.default_rng(0)
    return LongitudinalSequences(
        images=[rng.random((t, *size)).astype("float32") for t in lengths],
        labels=[rng.integers(0, 2, (t, 2)).astype("float32") for t in lengths],
        deltas=[
            np.concatenate([[0], rng.integers(1, 90, t - 1)]).astype("float32") for t in lengths
        ],
        label_names=("a", "b"),
        ids=[f"p{i}" for i in range(len(lengths))],
    )


@pytest.mark.parametrize("image_dtype", ["uint8", "float32"])
def test_uncompressed_file_maps_the_images_compressed_file_reads_them(tmp_path, image_dtype):
    seqs = _sequences()
    save_longitudinal_npz(tmp_path / "old.npz", seqs, image_dtype)  # compressed (the default)
    save_longitudinal_npz(tmp_path / "new.npz", seqs, image_dtype, compress=False)
    old, new = (
        load_longitudinal_npz(tmp_path / "old.npz"),
        load_longitudinal_npz(tmp_path / "new.npz"),
    )
    assert all(type(x) is np.ndarray for x in old.images)  # an old file still loads, in memory
    assert all(isinstance(x, MappedImages) for x in new.images)
    file = new.images[0].file
    for i, (a, b) in enumerate(zip(old.images, new.images)):
        # a view of the one map, stored dtype on disk, nothing copied
        assert b.file is file and isinstance(b.stored, np.memmap) and b.stored.dtype == image_dtype
        assert b.shape == a.shape and b.dtype == np.float32 and len(b) == len(a)
        np.testing.assert_array_equal(np.asarray(b), a)  # same values, same conversion
        np.testing.assert_array_equal(b[1:], a[1:])
        np.testing.assert_array_equal(b[-1], a[-1])
        np.testing.assert_array_equal(new.labels[i], old.labels[i])
        np.testing.assert_array_equal(new.deltas[i], old.deltas[i])
    assert new.ids == old.ids and new.label_names == old.label_names
    np.testing.assert_array_equal(new.last_exam()[0], old.last_exam()[0])
    np.testing.assert_array_equal(new.all_exams()[0], old.all_exams()[0])
    np.testing.assert_array_equal(
        load_longitudinal_npz(tmp_path / "new.npz", stream=False).images[1], old.images[1]
    )


def test_split_keeps_the_views_and_a_pickle_carries_no_pixels(tmp_path):
    save_longitudinal_npz(tmp_path / "s.npz", _sequences(size=(40, 40)), "uint8", compress=False)
    data = load_longitudinal_npz(tmp_path / "s.npz")
    train, test = data.split(test_size=1, seed=0)
    for part in (train, test):
        for i, images in zip(part.ids, part.images):
            assert images is data.images[data.ids.index(i)]  # the same view, not a copy
    # A worker process gets the map's recipe, not the images, and maps the file itself.
    sent = pickle.dumps(data.images)
    assert len(sent) < data.images[0].file.open().nbytes
    back = pickle.loads(sent)
    assert back[0].file is back[3].file
    np.testing.assert_array_equal(back[3][2], data.images[3][2])
    assert isinstance(back[3].stored, np.memmap)


def test_uint8_on_disk_reads_as_value_over_255(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    seqs = _sequences((2,), (3, 4))
    seqs.images = [values / np.float32(255.0)]
    save_longitudinal_npz(tmp_path / "s.npz", seqs, "uint8", compress=False)
    images = load_longitudinal_npz(tmp_path / "s.npz").images[0]
    np.testing.assert_array_equal(images.stored, values)
    assert images[1].dtype == np.float32
    np.testing.assert_array_equal(images[1], values[1].astype("float32") / np.float32(255.0))


def test_a_compressed_file_too_big_for_memory_says_how_to_rewrite_it(tmp_path):
    save_longitudinal_npz(tmp_path / "old.npz", _sequences(), "uint8")
    with pytest.raises(ValueError, match=r"compressed(.|\n)*longitudinal_manifest\.py(.|\n)*"
                       r"compress=False(.|\n)*max_memory_bytes=100"):  # fmt: skip
        load_longitudinal_npz(tmp_path / "old.npz", max_memory_bytes=100)
    # 10 exams of 5 x 6: 300 bytes of uint8 + 1,200 of float32 fit in 1,500
    assert len(load_longitudinal_npz(tmp_path / "old.npz", max_memory_bytes=1500)) == 4
    with pytest.raises(ValueError, match=r"cannot be streamed(.|\n)*stream=True"):
        load_longitudinal_npz(tmp_path / "old.npz", stream=True)
    with pytest.raises(ValueError, match="Received: stream='yes'"):
        load_longitudinal_npz(tmp_path / "old.npz", stream="yes")
    with pytest.raises(ValueError, match="Received: max_memory_bytes=0"):
        load_longitudinal_npz(tmp_path / "old.npz", max_memory_bytes=0)
    with pytest.raises(ValueError, match="Received: compress='no'"):
        save_longitudinal_npz(tmp_path / "x.npz", _sequences(), compress="no")
