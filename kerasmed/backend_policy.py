"""Per-backend choices in one place, each with the measurement that justifies it.

kerasmed's layers and experiments run the same `keras.ops` code on TensorFlow, JAX and torch,
but a few choices are faster one way on one backend. They are read from here, never decided
inline. Every measurement below was taken on a CPU (2 cores, no GPU), so a choice applies only
where it was measured: off a CPU the functions return the backend-neutral default (and say so).
Choices a user may want to override are explicit arguments of the layer or builder instead
(`TimeModulatedLSTM(implementation=...)`, `SliceEncoder(loop=...)`, `build_fcslstm(unroll=...)`,
the ``jit_compile`` of the ICH experiment's config); the functions here only give their
defaults.

Example:

>>> from kerasmed import backend_policy
>>> backend_policy.device_type() in ("cpu", "gpu", "tpu")
True
>>> backend_policy.linear_scan_method() in ("sequential", "blocked")
True
"""

from __future__ import annotations

import functools

import keras

__all__ = [
    "device_type",
    "on_cpu",
    "linear_scan_method",
    "conv_lstm_project_per_step",
    "fcslstm_jit_compile",
    "fcslstm_unroll",
    "conv_channels_last_only",
]


@functools.cache
def _device_type(backend):
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    devices = keras.distribution.list_devices()
    kinds = {device.split(":")[0].lower() for device in devices}
    for kind in ("tpu", "gpu"):
        if kind in kinds:
            return kind
    return "cpu"


def device_type():
    """The kind of device the current backend computes on: ``"cpu"``, ``"gpu"`` or ``"tpu"``.

    Read from ``keras.distribution.list_devices()`` (TensorFlow, JAX) or
    ``torch.cuda.is_available()`` (torch), once per backend.
    """
    return _device_type(keras.backend.backend())


def on_cpu():
    """Whether the current backend computes on a CPU (the device every measurement here used)."""
    return device_type() == "cpu"


def linear_scan_method():
    """Default method of `kerasmed.layers.linear_scan.linear_scan` (the tLSTM's scan).

    ``"sequential"`` (one ``keras.ops.scan`` step per time step) on JAX on a CPU, where it
    compiles into one ``lax.scan``; ``"blocked"`` (chunk-parallel, ~``2 * sqrt(T)`` small ops)
    everywhere else: torch (eager) and TensorFlow pay per op (``benchmarks/time_modulated_lstm.py``,
    outputs in ``benchmarks/outputs/``). Off a CPU, the blocked scan (fewer sequential steps,
    unmeasured there) is the default on every backend.
    """
    if keras.backend.backend() == "jax" and on_cpu():
        return "sequential"
    return "blocked"


def conv_lstm_project_per_step(training, has_operator):
    """Whether `StructuredConvLSTM2D` convolves each step's input inside its time loop.

    By default the input convolution runs on all frames before the loop and only the recurrence
    loops; the training step is then faster than ``ConvLSTM2D``'s on every backend. For inference
    on JAX on a CPU without an input operator, XLA runs the loop faster when each step convolves
    its own narrow input than when it reads its slice of the precomputed ``(T, B, H, W, 4 filters)``
    projection from memory (``benchmarks/structured_conv_lstm.py``).
    """
    return not training and not has_operator and keras.backend.backend() == "jax" and on_cpu()


def fcslstm_jit_compile():
    """``jit_compile`` of the FCSLSTM experiment's models.

    JAX: ``True`` (an un-jitted JAX step runs op by op, on any device). TensorFlow on a CPU:
    ``False``: XLA compiles the recurrent graph slowly and runs it no faster. torch: ``False``
    (``torch.compile``, which Keras's torch ``jit_compile`` means, is not used). TensorFlow off
    a CPU: ``"auto"`` (Keras decides; unmeasured here).
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend == "tensorflow" and not on_cpu():
        return "auto"
    return False


def fcslstm_unroll():
    """Default `unroll` of the FCSLSTM's time loops (`build_fcslstm(unroll=...)`).

    ``True`` on JAX on a CPU: XLA there runs the backward pass of a looped convolutional LSTM
    very slowly (T = 5 frames of 64x64x16, 32 filters: a train step takes 2.0 s looped, 0.13 s
    unrolled; ``keras.layers.ConvLSTM2D`` 2.7 s / 0.11 s; ``benchmarks/structured_conv_lstm.py
    --unroll``). ``False`` elsewhere (Keras's default).
    """
    return keras.backend.backend() == "jax" and on_cpu()


def conv_channels_last_only():
    """Whether a ``channels_first`` convolution must be run as a ``channels_last`` one.

    ``True`` for TensorFlow on a CPU: its eager ``Conv2D`` kernel takes NHWC only unless
    TensorFlow was built with oneDNN for this CPU ("The Conv2D op currently only supports the
    NHWC tensor format on the CPU", seen on this project's 2-core machine; a oneDNN build runs
    NCHW). The layers then transpose around the convolution, which gives the same numbers on
    every CPU. ``False`` elsewhere.
    """
    return keras.backend.backend() == "tensorflow" and on_cpu()
