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
  their statistics over the replicas, the global batch's as on one device.
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
or a copy per host). Keras treats each host's batch as that host's part of the global batch;
kerasmed's data sets do not split themselves by host, so every host feeds the same batches
and a step computes what one host computes with the same seed (the same gradient), without a
speed-up over one host. The distribution is made with ``auto_shard_dataset=False``: Keras's
own sharding across hosts only handles ``tf.data.Dataset`` inputs and refuses the others.

Checked on two virtual CPU devices by ``tests/test_distribute.py`` (one model per paper and the
ich staged training, JAX and TensorFlow: the one-device losses and weights to 1e-5 relative)
and, for the N-host command, by ``tests/test_distribute_multihost.py`` (two JAX processes on
one machine, ``KERAS_DISTRIBUTION_JOB_ADDRESSES=localhost:PORT``).
"""

from __future__ import annotations

import contextlib
import functools
import os

import keras

__all__ = ["STRATEGIES", "distribution_scope", "synchronize_batch_norm"]

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
        multi_host = bool(os.environ.get(_MULTI_HOST_VARIABLE))
        if multi_host:
            keras.distribution.initialize()
        distribution = keras.distribution.DataParallel(
            devices=devices or keras.distribution.list_devices(),
            auto_shard_dataset=not multi_host,
        )
        with distribution.scope():
            yield distribution
        return
    import tensorflow as tf

    names = [f"/{d.split(':')[0]}:{d.split(':')[1]}" for d in devices] if devices else None
    strategy = _mirrored_strategy(tuple(names or _tf_devices(tf)))
    with strategy.scope():
        yield strategy


def synchronize_batch_norm(model):
    """Makes the ``BatchNormalization`` layers of `model` use the statistics of the global batch.

    Only on TensorFlow, for a model built under a strategy of several replicas (inside
    ``distribution_scope("data-parallel")``): each
    layer gets ``synchronized=True``, so its mean and variance are all-reduced over the
    replicas and training gives the one-device numbers (to float32 rounding: the statistics
    are then sums of ``x`` and ``x**2``). Elsewhere nothing changes: on JAX,
    ``keras.distribution.DataParallel`` already computes them over the global batch, and one
    device has no other statistics. Call it after building the model, before its first
    ``fit``.

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
