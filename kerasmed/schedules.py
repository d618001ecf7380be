"""The optimizer and learning-rate schedule of paper 002 (FCSLSTM).

"RMSprop optimization with smooth constant α = 0.95, initial learning rate 0.001. The learning
rate gradually decays after 20 epochs with factor 0.97." (Section 3). We read it as: the first
`start` epochs (0-based epochs ``0 .. start - 1``) train at ``initial``, and every later epoch
multiplies the rate by ``decay``::

    lr(epoch) = initial * decay ** max(0, epoch + 1 - start)

so epoch 20 (the 21st) runs at ``1e-3 * 0.97``, epoch 21 at ``1e-3 * 0.97**2``, etc.

Three equivalent ways to use it:

- `paper_learning_rate` is a closed-form function of the epoch, for
  ``keras.callbacks.LearningRateScheduler`` (`paper_lr_callback` builds that callback). Being
  stateless it resumes correctly with ``fit(initial_epoch=...)``.
- `EpochExponentialDecay` is a ``keras.optimizers.schedules.LearningRateSchedule`` of the
  optimizer step (needs ``steps_per_epoch``); it is saved with the optimizer in ``.keras`` files.
- `fcslstm_optimizer` returns the paper's RMSprop (``rho`` is Torch's smoothing constant α).

Paper 004 (x-ray InceptionV3) trains with Keras 2's SGD ``decay=1e-6``: `legacy_decay_schedule`
gives that decay as a Keras 3 schedule.
"""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = [
    "paper_learning_rate",
    "paper_lr_callback",
    "EpochExponentialDecay",
    "fcslstm_optimizer",
    "legacy_decay_schedule",
]


def _check_schedule_args(initial, decay, start):
    if not (isinstance(initial, (int, float)) and math.isfinite(initial) and initial > 0):
        raise ValueError(f"`initial` must be a positive number. Received: initial={initial}")
    if not (isinstance(decay, (int, float)) and 0 < decay <= 1):
        raise ValueError(f"`decay` must be in (0, 1]. Received: decay={decay}")
    if int(start) != start or start < 0:
        raise ValueError(f"`start` must be an int >= 0. Received: start={start}")


def paper_learning_rate(epoch, lr=None, initial=1e-3, decay=0.97, start=20):
    """Learning rate of 0-based `epoch`: `initial` for `start` epochs, then times `decay` per epoch.

    ``initial * decay ** max(0, epoch + 1 - start)``. The signature fits
    ``keras.callbacks.LearningRateScheduler(schedule)``, which calls ``schedule(epoch, lr)``;
    the current `lr` is ignored (the value depends on `epoch` only).

    Args:
        epoch: 0-based epoch index.
        lr: the optimizer's current learning rate (ignored).
        initial: learning rate of the first `start` epochs (paper: 0.001).
        decay: factor applied once per epoch after that (paper: 0.97).
        start: number of epochs at `initial` (paper: 20).

    Returns:
        The learning rate, a Python float.

    Example:

    >>> [round(paper_learning_rate(e), 7) for e in (0, 19, 20, 21)]
    [0.001, 0.001, 0.00097, 0.0009409]

    Reference: Gao et al., "Fully convolutional structured LSTM networks for joint 4D medical
    image segmentation", ISBI 2018, Section 3.
    """
    del lr
    _check_schedule_args(initial, decay, start)
    if int(epoch) != epoch or epoch < 0:
        raise ValueError(f"`epoch` must be an int >= 0. Received: epoch={epoch}")
    return float(initial * decay ** max(0, int(epoch) + 1 - int(start)))


def paper_lr_callback(initial=1e-3, decay=0.97, start=20, verbose=0):
    """A ``keras.callbacks.LearningRateScheduler`` running `paper_learning_rate`.

    Args:
        initial, decay, start: as in `paper_learning_rate`.
        verbose: passed to the callback (1 prints the rate at each epoch).

    Returns:
        A ``keras.callbacks.LearningRateScheduler``.

    Example:

    >>> callback = paper_lr_callback()
    >>> callback.schedule(25, None) == paper_learning_rate(25)
    True
    """
    _check_schedule_args(initial, decay, start)

    def schedule(epoch, lr=None):
        return paper_learning_rate(epoch, lr, initial=initial, decay=decay, start=start)

    return keras.callbacks.LearningRateScheduler(schedule, verbose=verbose)


@keras.saving.register_keras_serializable(package="kerasmed")
class EpochExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`paper_learning_rate` as a function of the optimizer step, constant within an epoch.

    ``lr(step) = initial_learning_rate * decay_rate ** max(0, floor(step / steps_per_epoch) + 1
    - start_epoch)``: the rate of 0-based epoch ``floor(step / steps_per_epoch)``.

    Args:
        initial_learning_rate: rate of the first `start_epoch` epochs.
        steps_per_epoch: optimizer steps (batches) per epoch.
        decay_rate: factor applied once per epoch after that.
        start_epoch: number of epochs at the initial rate.
        name: name of the schedule.

    Example:

    >>> schedule = EpochExponentialDecay(1e-3, steps_per_epoch=10)
    >>> [round(float(schedule(s)), 7) for s in (0, 199, 200, 210)]
    [0.001, 0.001, 0.00097, 0.0009409]

    Reference: Gao et al., ISBI 2018, Section 3.
    """

    def __init__(
        self,
        initial_learning_rate=1e-3,
        steps_per_epoch=1,
        decay_rate=0.97,
        start_epoch=20,
        name="epoch_exponential_decay",
    ):
        _check_schedule_args(initial_learning_rate, decay_rate, start_epoch)
        if int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
            raise ValueError(
                f"`steps_per_epoch` must be a positive int. Received: steps_per_epoch={steps_per_epoch}"
            )
        self.initial_learning_rate = float(initial_learning_rate)
        self.steps_per_epoch = int(steps_per_epoch)
        self.decay_rate = float(decay_rate)
        self.start_epoch = int(start_epoch)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        epoch = ops.floor(step / float(self.steps_per_epoch))
        exponent = ops.maximum(epoch + (1.0 - self.start_epoch), 0.0)
        return self.initial_learning_rate * ops.power(self.decay_rate, exponent)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "decay_rate": self.decay_rate,
            "start_epoch": self.start_epoch,
            "name": self.name,
        }


def fcslstm_optimizer(learning_rate=1e-3, rho=0.95, epsilon=1e-8):
    """The paper's RMSprop: smoothing constant 0.95, initial learning rate 0.001.

    Torch's ``optim.rmsprop`` (the paper's code is in Torch) keeps ``m = α m + (1 - α) g²`` and
    steps ``lr g / (sqrt(m) + ε)`` with ``ε = 1e-8``; Keras's RMSprop has the same running mean
    with ``rho = α`` and steps ``lr g / sqrt(m + ε)``. We keep Torch's ``ε = 1e-8``; the two
    updates differ only when ``m`` is below about ``1e-8``.

    Args:
        learning_rate: a float, or a schedule such as `EpochExponentialDecay` (a float plus
            `paper_lr_callback` in ``fit`` gives the paper's decay).
        rho: smoothing constant α of the squared-gradient running mean.
        epsilon: small constant of the denominator.

    Returns:
        A ``keras.optimizers.RMSprop``.

    Example:

    >>> optimizer = fcslstm_optimizer()
    >>> optimizer.rho, round(float(optimizer.learning_rate), 6)
    (0.95, 0.001)

    Reference: Gao et al., ISBI 2018, Section 3.
    """
    return keras.optimizers.RMSprop(learning_rate=learning_rate, rho=rho, epsilon=epsilon)


def legacy_decay_schedule(learning_rate=0.01, decay=1e-6):
    """Keras 2's optimizer argument ``decay`` as a Keras 3 learning-rate schedule.

    Keras 2 optimizers took ``decay`` and used ``lr / (1 + decay * iterations)`` at every
    update, ``iterations`` counting the updates already made (0 at the first one). Keras 3 has
    no ``decay`` argument; ``keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1,
    decay_rate=decay)`` computes ``lr / (1 + decay * step / 1)`` and the optimizer calls it with
    its ``iterations`` before incrementing them, so it is the same curve (tested against the
    formula in NumPy over 10^5 steps and inside SGD). It is a built-in schedule, so it is saved
    with the optimizer in ``.keras`` files.

    Args:
        learning_rate: initial learning rate (paper 004: 0.01).
        decay: Keras 2's ``decay`` (paper 004: 1e-6), >= 0.

    Returns:
        A ``keras.optimizers.schedules.InverseTimeDecay``.

    Example:

    >>> schedule = legacy_decay_schedule(0.01, 1e-6)
    >>> [round(float(schedule(step)), 8) for step in (0, 1000, 100000)]
    [0.01, 0.00999001, 0.00909091]

    Reference: Nkwentsha et al., Section IV-A ("SGD ... learning rate of 0.01 and decay of
    1e-6"); the Keras 2 optimizers' ``decay`` argument.
    """
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)) or (
        learning_rate <= 0
    ):
        raise ValueError(
            f"`learning_rate` must be a positive number. Received: learning_rate={learning_rate}"
        )
    if not (isinstance(decay, (int, float)) and math.isfinite(decay)) or decay < 0:
        raise ValueError(f"`decay` must be a number >= 0. Received: decay={decay}")
    return keras.optimizers.schedules.InverseTimeDecay(
        float(learning_rate), decay_steps=1, decay_rate=float(decay)
    )
