"""Data-parallel training on the engines Keras already speaks: ``keras.distribution`` (JAX) and
``tf.distribute`` (TensorFlow).

`distribution_scope("data-parallel")` is a context manager: models built, compiled and trained
inside it replicate their weights on every local device and split each global batch between
them; on exit the previous distribution is restored.

- JAX: ``keras.distribution.DataParallel(devices=keras.distribution.list_devices())``. The
  jitted step runs on the global batch sharded along its first axis, so batch statistics
  (``BatchNormalization``) and dropout masks are those of the global batch, as on one device.
- TensorFlow: ``tf.distribute.MirroredStrategy`` over the same devices. In Keras 3.15 the
  TensorFlow half of ``keras.distribution`` is a prototype
  (``keras/src/backend/tensorflow/distribution_lib.py`` says "DO NOT USE"; its
  ``distribute_value`` is a TODO and the TensorFlow trainer never reads the distribution): a
  model trained under ``keras.distribution.DataParallel`` there has one replica
  (``model.distribute_strategy.num_replicas_in_sync == 1``) and its weights on the first
  device. ``MirroredStrategy`` is the route of Keras's guide "Multi-GPU distributed training
  with TensorFlow". Each replica runs the step on its part of the batch, so a
  ``BatchNormalization`` (unless built with ``synchronized=True``) normalises with that part's
  statistics, and dropout draws its own masks per replica: such models train differently from
  one device (as on any ``MirroredStrategy``); models without them give the same numbers.
  `synchronize_batch_norm(model)` makes a model's ``BatchNormalization`` layers all-reduce
  their statistics over the replicas, the global batch's as on one device; the scope calls
  it for every model compiled inside (see below).
- torch: a ``ValueError``. Keras does not distribute a torch model itself (``keras.distribution``
  has no torch backend); the Keras guide "Multi-GPU distributed training with PyTorch" wraps
  the model in ``torch.nn.parallel.DistributedDataParallel`` in a custom loop (not provided
  here).

Boolean inputs on TensorFlow: before the first step, Keras's TensorFlow trainer builds the
model on one batch and gets it with ``strategy.reduce("MEAN", first_batch)``, an ``AddN``
over the replicas of every input -- which TensorFlow refuses for a bool tensor such as the
``mask`` input of kerasmed's sequence models ("Value for attr 'T' of bool is not in the list
of allowed values ... AddN"). The strategy made here passes a bool (or string) value through
as its first replica's part instead; that build needs only shapes and dtypes, and nothing
else in Keras's trainer sums inputs. Numbers are unchanged.

One GPU (nothing to set)::

    kerasmed reproduce ich --preset paper --data-dir DIR

Every local GPU of one machine::

    KERAS_BACKEND=jax kerasmed reproduce ich --preset paper --data-dir DIR --distribute data-parallel

N hosts with JAX: run the same command on every host, host ``i`` (0 ... N-1) with
``KERAS_DISTRIBUTION_PROCESS_ID=i``; `distribution_scope` then calls
``keras.distribution.initialize()``, which reads the three variables below and connects the
hosts through host 0's address (any free port), and ``list_devices()`` lists the devices of
all hosts::

    KERAS_BACKEND=jax KERAS_DISTRIBUTION_JOB_ADDRESSES=10.0.0.1:1234 \\
    KERAS_DISTRIBUTION_NUM_PROCESSES=N KERAS_DISTRIBUTION_PROCESS_ID=i \\
    kerasmed reproduce ich --preset paper --data-dir DIR --distribute data-parallel

(the same as ``keras.distribution.initialize("10.0.0.1:1234", num_processes=N,
process_id=i)`` before any other JAX call). Each host reads the whole ``DIR`` (a shared disk,
or a copy per host) and builds the same batches (the same seed); Keras treats what a host
feeds as its part of the global batch (``jax.make_array_from_process_local_data``), so
inside the scope host ``i`` feeds rows ``i*B/N ... (i+1)*B/N - 1`` of each global batch of
``B`` rows (`process_shard`): the step runs on the global batch, as on one device, and each
host computes the model on ``B/N`` rows. The split is made where Keras's JAX trainer hands a
batch to the devices (``keras.src.backend.jax.trainer._distribute_data``, wrapped for the
scope's duration when ``jax.process_count() > 1``), so it covers every array and PyDataset
input of ``fit`` (and its validation data), ``evaluate`` and ``predict``, without the
experiments knowing. ``predict``'s outputs then span the devices of all hosts, which NumPy
cannot read on one host (Keras's own multi-host ``predict`` stops there: "Fetching value for
`jax.Array` that spans non-addressable ... devices is not possible"); inside the scope they
are gathered (``jax.experimental.multihost_utils.process_allgather``), so every host gets the
predictions of the whole input, in order, and the experiments' evaluation runs on each.
Each host still loads the whole batch before keeping its rows (the loaders do not read by
host). Every batch, the last included, must have a multiple of ``N`` rows (a ``ValueError``
names the batch that has not). The distribution is made with ``auto_shard_dataset=False``:
Keras's own sharding across hosts only handles ``tf.data.Dataset`` inputs and refuses the
others. One process is left exactly as before (nothing wrapped).

BatchNormalization: every model compiled inside the TensorFlow scope gets
`synchronize_batch_norm` (``Model.compile`` is wrapped for the scope's duration), so the
experiments' BatchNormalization models train like one device without calling it; on JAX the
statistics are the global batch's already.

Checked on two virtual CPU devices by ``tests/test_distribute.py`` (one model per paper and the
ich staged training, JAX and TensorFlow: the one-device losses and weights to 1e-5 relative)
and, for the N-host command, by ``tests/test_distribute_multihost.py`` (two JAX processes on
one machine, ``KERAS_DISTRIBUTION_JOB_ADDRESSES=localhost:PORT``: each feeds its half of the
global batch, the one-device losses, weights and predictions).
"""

from __future__ import annotations

import contextlib
import functools
import os

import keras

from kerasmed.validation import check_non_negative_int, check_positive_int

__all__ = ["STRATEGIES", "distribution_scope", "process_shard", "synchronize_batch_norm"]

STRATEGIES = ("data-parallel",)
_MULTI_HOST_VARIABLE = "KERAS_DISTRIBUTION_NUM_PROCESSES"


@contextlib.contextmanager
def distribution_scope(distribute=None, devices=None):
    """Trains the models built inside on several devices, then restores the previous setting.

    Args:
        distribute: None (one device, nothing changes) or ``"data-parallel"``.
        devices: the devices to use, as ``keras.distribution.list_devices()`` names them
            (``"gpu:0"``, ``"cpu:1"``); None uses them all.

    Yields:
        The ``keras.distribution.DataParallel`` (JAX), the ``tf.distribute.MirroredStrategy``
        (TensorFlow), or None.

    Raises:
        ValueError: an unknown `distribute`, or ``"data-parallel"`` on the torch backend.

    Example:

    >>> with distribution_scope(None) as scope:
    ...     print(scope)
    None
    """
    if distribute is None:
        yield None
        return
    if distribute not in STRATEGIES:
        raise ValueError(
            f"`distribute` must be None or one of {STRATEGIES}. Received: distribute={distribute!r}"
        )
    backend = keras.backend.backend()
    if backend == "torch":
        raise ValueError(
            "Data-parallel training through Keras is available on the JAX backend "
            "(keras.distribution.DataParallel) and the TensorFlow backend "
            "(tf.distribute.MirroredStrategy). Keras has no torch distribution: its guide "
            "wraps the model in torch.nn.parallel.DistributedDataParallel in a custom "
            "training loop; kerasmed does not. Use KERAS_BACKEND=jax or tensorflow. "
            "Received: distribute='data-parallel' with backend='torch'"
        )
    if backend == "jax":
        import jax

        if os.environ.get(_MULTI_HOST_VARIABLE):
            keras.distribution.initialize()
        processes = jax.process_count()
        distribution = keras.distribution.DataParallel(
            devices=devices or keras.distribution.list_devices(),
            auto_shard_dataset=processes == 1,
        )
        with distribution.scope(), _feed_process_shard(jax.process_index(), processes):
            yield distribution
        return
    import tensorflow as tf

    names = [f"/{d.split(':')[0]}:{d.split(':')[1]}" for d in devices] if devices else None
    strategy = _mirrored_strategy(tuple(names or _tf_devices(tf)))
    with strategy.scope(), _synchronize_on_compile():
        yield strategy


def process_shard(batch, index, count):
    """The rows of each array of `batch` that process `index` of `count` feeds.

    Process ``index`` gets rows ``index * n / count`` up to ``(index + 1) * n / count`` of
    each array of ``n`` rows (one contiguous block, the processes in order), so the blocks
    of all processes are disjoint and together the batch, in its order.

    Args:
        batch: an array, or a nested structure (tuple, list, dict) of arrays with the same
            first dimension; None entries stay None.
        index: this process, ``0 <= index < count`` (``jax.process_index()``).
        count: the number of processes (``jax.process_count()``).

    Returns:
        `batch` with every array replaced by this process's rows.

    Raises:
        ValueError: a bad `index` or `count`, or an array whose rows are not a multiple of
            `count`.

    Example:

    >>> import numpy as np
    >>> x, y = process_shard((np.arange(4), np.arange(4) * 10), index=1, count=2)
    >>> x.tolist(), y.tolist()
    ([2, 3], [20, 30])
    """
    count = check_positive_int(count, "count")
    index = check_non_negative_int(index, "index")
    if index >= count:
        raise ValueError(
            f"`index` must be below `count`={count}. Received: index={index}, count={count}"
        )

    def rows(array):
        if array is None:
            return None
        n = array.shape[0]
        if n % count:
            raise ValueError(
                f"Each host feeds an equal part of the global batch: its {n} rows must be a "
                f"multiple of the {count} processes (choose such a batch size and data size). "
                f"Received: a batch of shape {tuple(array.shape)} with count={count}"
            )
        part = n // count
        return array[index * part : (index + 1) * part]

    return keras.tree.map_structure(rows, batch)


@contextlib.contextmanager
def _feed_process_shard(index, count):
    """With several JAX processes: each feeds its `process_shard` of every batch, and
    ``predict`` gathers its outputs from all of them."""
    if count == 1:
        yield
        return
    from jax.experimental import multihost_utils
    from keras.src.backend.jax import trainer

    original = trainer._distribute_data
    make_predict_function = trainer.JAXTrainer.make_predict_function

    def distribute_data(data, layouts=None):
        return original(process_shard(data, index, count), layouts)

    def gathering_predict_function(self, force=False):
        make_predict_function(self, force)
        predict = self.predict_function
        if getattr(predict, "gathers_processes", False):
            return predict

        def gathered(state, iterator):
            outputs, state = predict(state, iterator)
            return multihost_utils.process_allgather(outputs, tiled=True), state

        gathered.gathers_processes = True
        self.predict_function = gathered
        return gathered

    trainer._distribute_data = distribute_data
    trainer.JAXTrainer.make_predict_function = gathering_predict_function
    try:
        yield
    finally:
        trainer._distribute_data = original
        trainer.JAXTrainer.make_predict_function = make_predict_function


@contextlib.contextmanager
def _synchronize_on_compile():
    """Within the block, ``Model.compile`` first calls `synchronize_batch_norm` on the model."""
    from keras.src.trainers.trainer import Trainer

    original = Trainer.compile

    @functools.wraps(original)
    def compile(self, *args, **kwargs):
        synchronize_batch_norm(self)
        return original(self, *args, **kwargs)

    Trainer.compile = compile
    try:
        yield
    finally:
        Trainer.compile = original


def synchronize_batch_norm(model):
    """Makes the ``BatchNormalization`` layers of `model` use the statistics of the global batch.

    Only on TensorFlow, for a model built under a strategy of several replicas (inside
    ``distribution_scope("data-parallel")``): each
    layer gets ``synchronized=True``, so its mean and variance are all-reduced over the
    replicas and training gives the one-device numbers (to float32 rounding: the statistics
    are then sums of ``x`` and ``x**2``). Elsewhere nothing changes: on JAX,
    ``keras.distribution.DataParallel`` already computes them over the global batch, and one
    device has no other statistics. `distribution_scope` calls it when a model is compiled
    inside; elsewhere call it after building the model, before its first ``fit``.

    Args:
        model: a Keras model (nested models are searched too).

    Returns:
        The number of layers changed.

    Example:

    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    >>> synchronize_batch_norm(model)  # one device
    0
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    if model.distribute_strategy.num_replicas_in_sync < 2:  # the strategy it was built under
        return 0
    changed = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            changed += 1
    return changed


def _tf_devices(tf):
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


@functools.cache
def _mirrored_strategy(devices):
    """One strategy per device set and process: a second ``MirroredStrategy`` over the same
    devices reuses the first one's collective keys, and its all-reduces then meet the first
    one's ("Shape mismatch in the collective instance")."""
    import tensorflow as tf

    class MirroredStrategy(tf.distribute.MirroredStrategy):
        """``tf.distribute.MirroredStrategy`` whose ``reduce`` of a bool or string value
        returns the first replica's part (TensorFlow cannot add those; see the module)."""

        def reduce(self, reduce_op, value, axis):
            def one(part):
                if isinstance(part, tf.distribute.DistributedValues):
                    local = self.experimental_local_results(part)
                    if local[0].dtype in (tf.bool, tf.string):
                        return local[0]
                return super(MirroredStrategy, self).reduce(reduce_op, part, axis)

            return tf.nest.map_structure(one, value)

    return MirroredStrategy(devices=list(devices))
