"""Data-parallel training on the engines Keras already speaks: ``keras.distribution`` (JAX) and
``tf.distribute`` (TensorFlow).

`distribution_scope("data-parallel")` is a context manager: models built, compiled and trained
inside it replicate their weights on every local device and split each global batch between
them; on exit the previous distribution is restored.

- JAX: ``keras.distribution.DataParallel(devices=keras.distribution.list_devices())``.
- TensorFlow: ``tf.distribute.MirroredStrategy`` over the same devices. In Keras 3.15 the
  TensorFlow half of ``keras.distribution`` is a prototype
  (``keras/src/backend/tensorflow/distribution_lib.py`` says "DO NOT USE"; its
  ``distribute_value`` is a TODO and the TensorFlow trainer never reads the distribution), so
  a ``DataParallel`` set there trains on one device; ``MirroredStrategy`` is the route Keras's
  guide "Multi-GPU distributed training with TensorFlow" shows.
  Open: with two CPU replicas, ``fit`` of a model with a bool input (the ``mask`` of every
  kerasmed sequence model) fails there ("AddN ... bool"); only JAX is tested on two devices.
- torch: a ``ValueError``. Keras does not distribute a torch model itself; the Keras guide
  "Multi-GPU distributed training with PyTorch" wraps the model in
  ``torch.nn.parallel.DistributedDataParallel`` in a custom loop (not provided here).

One GPU (nothing to set)::

    kerasmed reproduce ich --preset paper --data-dir DIR

Every local GPU of one machine::

    KERAS_BACKEND=jax kerasmed reproduce ich --preset paper --data-dir DIR --distribute data-parallel

N hosts with JAX: run the same command on every host, host ``i`` with ``process_id=i``;
``keras.distribution.initialize`` (called by `distribution_scope` when the variables below are
set) connects them through host 0's address, and ``list_devices()`` then lists the devices
of all hosts::

    KERAS_BACKEND=jax KERAS_DISTRIBUTION_JOB_ADDRESSES=10.0.0.1:1234 \\
    KERAS_DISTRIBUTION_NUM_PROCESSES=N KERAS_DISTRIBUTION_PROCESS_ID=i \\
    kerasmed reproduce ich --preset paper --data-dir DIR --distribute data-parallel

(the same as ``keras.distribution.initialize("10.0.0.1:1234", num_processes=N,
process_id=i)`` before any other JAX call). Each host reads the whole ``DIR`` (a shared disk,
or a copy per host).
"""

from __future__ import annotations

import contextlib
import os

import keras

__all__ = ["STRATEGIES", "distribution_scope"]

STRATEGIES = ("data-parallel",)
_MULTI_HOST_VARIABLE = "KERAS_DISTRIBUTION_NUM_PROCESSES"


@contextlib.contextmanager
def distribution_scope(distribute=None, devices=None):
    """Trains the models built inside on several devices, then restores the previous setting.

    Args:
        distribute: None (one device, nothing changes) or ``"data-parallel"``.
        devices: the devices to use, as ``keras.distribution.list_devices()`` names them;
            None uses them all.

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
            "(tf.distribute.MirroredStrategy). On torch, Keras's guide wraps the model in "
            "torch.nn.parallel.DistributedDataParallel in a custom training loop; kerasmed does "
            "not. Use KERAS_BACKEND=jax or tensorflow. Received: distribute='data-parallel' "
            "with backend='torch'"
        )
    if backend == "jax":
        if os.environ.get(_MULTI_HOST_VARIABLE):
            keras.distribution.initialize()
        devices = devices or keras.distribution.list_devices()
        distribution = keras.distribution.DataParallel(devices=devices)
        with distribution.scope():
            yield distribution
        return
    import tensorflow as tf

    names = [f"/{d.split(':')[0]}:{d.split(':')[1]}" for d in devices] if devices else None
    strategy = tf.distribute.MirroredStrategy(devices=names or _tf_devices(tf))
    with strategy.scope():
        yield strategy


def _tf_devices(tf):
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
