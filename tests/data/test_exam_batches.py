"""`kerasmed.data.exam_batches.ExamDataset`: the same batches from a memory map as from arrays."""

import numpy as np
import pytest

from kerasmed.data.exam_batches import ExamDataset, last_exam_rows, streams_images
from kerasmed.io.sequences import (
    LongitudinalSequences,
    load_longitudinal_npz,
    save_longitudinal_npz,
)


def _sequences(lengths=(2, 4, 1, 3, 2)):
    rng = np.random.default_rng(1)
    return LongitudinalSequences(
        images=[rng.random((t, 6, 5)).astype("float32") for t in lengths],
        labels=[rng.integers(0, 2, (t, 3)).astype("float32") for t in lengths],
        deltas=[np.arange(t, dtype="float32") for t in lengths],
        label_names=("a", "b", "c"),
    )


@pytest.fixture
def both(tmp_path):
    """The same uint8 file read in memory (compressed) and streamed (uncompressed), split."""
    seqs = _sequences()
    save_longitudinal_npz(tmp_path / "old.npz", seqs, "uint8")
    save_longitudinal_npz(tmp_path / "new.npz", seqs, "uint8", compress=False)
    loaded = (
        load_longitudinal_npz(tmp_path / "old.npz"),
        load_longitudinal_npz(tmp_path / "new.npz"),
    )
    return [data.split(test_size=2, seed=0)[0] for data in loaded]


def test_streamed_batches_equal_in_memory_batches(both):
    memory, streamed = both
    assert streams_images(streamed) and not streams_images(memory)
    exams = np.array([6, 0, 3, 5, 1, 2])  # any rows, in any order
    a, b = (ExamDataset(d, exams, batch_size=4, shuffle=True, seed=5) for d in both)
    assert len(a) == len(b) == 2
    seen = []
    for _ in range(2):  # two epochs, each its own order
        for i in range(len(a)):
            (xa, ya), (xb, yb) = a[i], b[i]
            assert xb.dtype == np.float32 and xb.shape[1:] == (6, 5, 1)
            np.testing.assert_array_equal(xb, xa)
            np.testing.assert_array_equal(yb, ya)
            seen.append(yb)
        a.on_epoch_end(), b.on_epoch_end()
    everything = np.concatenate(memory.labels)
    np.testing.assert_array_equal(
        np.sort(np.concatenate(seen[:2]), 0), np.sort(everything[exams], 0)
    )
    # in order, images only: what predict reads; the rows are the map's, scaled per batch
    plain = ExamDataset(streamed, batch_size=3, labels=False, channel_axis=False)
    rows = np.concatenate([plain[i] for i in range(len(plain))])
    np.testing.assert_array_equal(rows, memory.all_exams()[0])
    stored = np.concatenate([x.stored for x in streamed.images])
    np.testing.assert_array_equal(rows, stored.astype("float32") / np.float32(255.0))
    last = ExamDataset(streamed, last_exam_rows(streamed), batch_size=8)[0]
    np.testing.assert_array_equal(last[0][..., 0], memory.last_exam()[0])
    np.testing.assert_array_equal(last[1], memory.last_exam()[1])


def test_bad_exams_and_non_finite_images():
    seqs = _sequences()
    with pytest.raises(ValueError, match=r"integers in \[0, 12\)"):
        ExamDataset(seqs, exams=[0, 12])
    with pytest.raises(ValueError, match="dtype float64"):
        ExamDataset(seqs, exams=[0.0])
    for empty in ([], np.array([], "int64")):
        with pytest.raises(ValueError, match="at least one exam"):
            ExamDataset(seqs, exams=empty)
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        ExamDataset(seqs, batch_size=0)
    seqs.images[1][2, 3, 4] = np.nan
    data = ExamDataset(seqs, batch_size=4)
    with pytest.raises(ValueError, match=r"images\[1\]\[2\]\[3, 4\]=nan"):
        data[1]  # exams 4-7: sequence 1's steps 2 and 3, then sequence 2, sequence 3's first
