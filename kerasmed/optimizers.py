"""Optimizers that reproduce the papers' training where Keras's own differ.

- `AdamL2`: Adam with *coupled* L2 weight decay, as PyTorch's ``torch.optim.Adam(...,
  weight_decay=wd)``: the decay term ``wd * w`` is added to the gradient before the moment
  estimates, so it is rescaled by Adam's adaptive step like any other gradient. Keras's
  ``keras.optimizers.Adam(weight_decay=...)`` decays the weights *decoupled* from the gradient
  (AdamW's rule, ``w -= lr * wd * w`` after the step), which is a different optimizer. Hsu et
  al. (paper 003) train their slice CNN with torch's Adam, learning rate 1e-4 and
  ``weight_decay=5e-4``.

Reference: D. P. Kingma, J. Ba, *Adam: a method for stochastic optimization*, ICLR 2015;
I. Loshchilov, F. Hutter, *Decoupled weight decay regularization*, ICLR 2019 (why the two
forms differ); PyTorch's ``torch.optim.Adam`` documentation (the algorithm box).
"""

from __future__ import annotations

import numbers

import keras
from keras import ops

__all__ = ["AdamL2"]


@keras.saving.register_keras_serializable(package="kerasmed")
class AdamL2(keras.optimizers.Adam):
    """Adam with coupled L2 weight decay and PyTorch's epsilon placement.

    One update of a variable ``w`` with gradient ``g`` at step ``t`` (1, 2, ...), as
    ``torch.optim.Adam`` computes it::

        g = g + weight_decay * w                  # coupled L2 (torch's weight_decay)
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g**2
        w = w - lr / (1 - beta_1**t) * m / (sqrt(v) / sqrt(1 - beta_2**t) + epsilon)

    Two differences from ``keras.optimizers.Adam``: the decay is added to the gradient
    (Keras's ``weight_decay`` is decoupled), and ``epsilon`` is added to the bias-corrected
    ``sqrt(v_hat)`` (Keras adds it to ``sqrt(v)``), so with torch's default ``epsilon=1e-8``
    the steps match torch's to float precision. Variables excluded with
    ``exclude_from_weight_decay(var_list=..., var_names=...)`` get no L2 term (torch would need
    parameter groups for that).

    Args:
        learning_rate: a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
            Default 1e-4 (the paper's slice CNN).
        beta_1: decay of the first moment (torch's ``betas[0]``).
        beta_2: decay of the second moment (torch's ``betas[1]``).
        epsilon: added to the bias-corrected ``sqrt(v_hat)``; torch's default 1e-8.
        weight_decay: the coupled L2 factor (torch's ``weight_decay``). Default 5e-4 (the
            paper's). Not Keras's decoupled weight decay.
        amsgrad: use the running maximum of ``v`` (torch's ``amsgrad=True``).
        **kwargs: the other arguments of ``keras.optimizers.Optimizer`` (``clipnorm``,
            ``use_ema``, ``name``, ...).

    Example:

    >>> optimizer = AdamL2(learning_rate=0.1, weight_decay=0.5)
    >>> w = keras.Variable([1.0])
    >>> optimizer.apply([keras.ops.convert_to_tensor([0.0])], [w])
    >>> round(float(keras.ops.convert_to_numpy(w)[0]), 4)  # g = 0.5 * 1: the step is -lr
    0.9
    """

    def __init__(
        self,
        learning_rate=1e-4,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        weight_decay=5e-4,
        amsgrad=False,
        name="adam_l2",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=None,  # the base class's (decoupled) decay stays off
            name=name,
            **kwargs,
        )
        if (
            isinstance(weight_decay, bool)
            or not isinstance(weight_decay, numbers.Real)
            or not weight_decay >= 0.0
        ):
            raise ValueError(
                f"`weight_decay` must be a number >= 0. Received: weight_decay={weight_decay!r}"
            )
        self.coupled_weight_decay = float(weight_decay)

    def update_step(self, gradient, variable, learning_rate):
        """One torch-style Adam step of `variable` (see the class docstring)."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        if self.coupled_weight_decay and self._use_weight_decay(variable):
            gradient = ops.add(gradient, ops.multiply(variable, self.coupled_weight_decay))
        step = ops.cast(self.iterations + 1, dtype)
        correction_1 = 1.0 - ops.power(ops.cast(self.beta_1, dtype), step)
        correction_2 = 1.0 - ops.power(ops.cast(self.beta_2, dtype), step)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1.0 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1.0 - self.beta_2))
        if self.amsgrad:
            v_max = self._velocity_hats[index]
            self.assign(v_max, ops.maximum(v_max, v))
            v = v_max
        denominator = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(correction_2)), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / correction_1), denominator))

    def get_config(self):
        config = super().get_config()
        config["weight_decay"] = self.coupled_weight_decay
        return config
