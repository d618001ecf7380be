"""`kerasmed.data._epoch_order.EpochOrderDataset`: the order and batches of its subclasses."""

import numpy as np

from kerasmed.data import BalancedVolumeDataset, EmbeddingSequenceDataset, WindowSliceDataset
from kerasmed.data._epoch_order import EpochOrderDataset


class _Items(EpochOrderDataset):
    def __init__(self, count, batch_size, shuffle, seed=3):
        super().__init__()
        self.shuffle, self.seed = shuffle, seed
        self._start_order(count, batch_size)

    def __getitem__(self, index):
        return self._batch_rows(index)


def test_batches_cover_the_order_and_the_last_one_is_short():
    data = _Items(7, 3, shuffle=False)
    assert len(data) == 3
    assert [data[i].tolist() for i in range(len(data))] == [[0, 1, 2], [3, 4, 5], [6]]
    data.on_epoch_end()
    assert data._epoch == 1 and data[0].tolist() == [0, 1, 2]


def test_a_shuffled_order_is_drawn_from_seed_and_epoch():
    data = _Items(7, 3, shuffle=True)
    for epoch in range(3):
        expected = np.random.default_rng([3, epoch]).permutation(7)
        assert np.concatenate([data[i] for i in range(len(data))]).tolist() == expected.tolist()
        data.on_epoch_end()


def test_the_datasets_share_it():
    for cls in (WindowSliceDataset, EmbeddingSequenceDataset, BalancedVolumeDataset):
        assert issubclass(cls, EpochOrderDataset)
        assert "on_epoch_end" not in vars(cls) and "__len__" not in vars(cls)
