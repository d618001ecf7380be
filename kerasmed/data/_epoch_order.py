"""`EpochOrderDataset`: the batching of the PyDatasets that draw their visiting order per epoch.

`kerasmed.data.WindowSliceDataset`, `kerasmed.data.EmbeddingSequenceDataset` and
`kerasmed.data.BalancedVolumeDataset` each visit their items in an order drawn at construction
and again at the end of every epoch, and batch ``i`` holds the items
``order[i * batch_size : (i + 1) * batch_size]``. That bookkeeping lives here once.
"""

from __future__ import annotations

import math

import keras
import numpy as np


class EpochOrderDataset(keras.utils.PyDataset):
    """A ``keras.utils.PyDataset`` whose batch ``i`` is ``order[i * b : (i + 1) * b]``.

    A subclass sets ``self.shuffle`` and ``self.seed`` and then calls
    ``self._start_order(num_items, batch_size)`` in its ``__init__``; it reads a batch's items
    with ``self._batch_rows(index)`` and the epoch count with ``self._epoch``. The order is
    ``arange(num_items)``, or with ``shuffle`` a permutation seeded by ``(seed, epoch)``; a
    subclass that draws otherwise overrides `_draw_order`.
    """

    def _start_order(self, num_items, batch_size):
        self._num_items, self._rows_per_batch = int(num_items), int(batch_size)
        self._epoch = 0
        self._order = self._draw_order()

    def _draw_order(self):
        if not self.shuffle:
            return np.arange(self._num_items)
        return np.random.default_rng([self.seed, self._epoch]).permutation(self._num_items)

    def _batch_rows(self, index):
        size = self._rows_per_batch
        return self._order[index * size : (index + 1) * size]

    def __len__(self):
        return math.ceil(self._num_items / self._rows_per_batch)

    def on_epoch_end(self):
        self._epoch += 1
        self._order = self._draw_order()
