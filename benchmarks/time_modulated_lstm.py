"""Speed of `TimeModulatedLSTM` (scan and loop) against `keras.layers.LSTM` and a "floor".

Run once per backend::

    KERAS_BACKEND=jax python benchmarks/time_modulated_lstm.py --lengths 16 64 256

Every variant reads the same concatenated input ``(batch, T, features + labels + 1)`` and is
timed on a compiled forward pass (``model.predict_on_batch``) and a compiled train step
(``model.train_on_batch``, SGD, mean squared error) after `--warmup` calls; the median of
`--repeats` calls is reported in milliseconds. The timed calls of all variants at one length are
interleaved, so that a change in machine load affects them alike. Variants:

- ``scan``: `TimeModulatedLSTM(implementation="scan")` (the default for ``recurrent=False``);
- ``loop``: `TimeModulatedLSTM(implementation="loop")`, the step-by-step Keras RNN loop;
- ``lstm``: `keras.layers.LSTM(units)`;
- ``floor``: the same gates without the recurrence (``h_t = i_t * c_t``): the cost of the
  matmul and activations alone, a lower bound for any scan.

Compilation (``--jit-compile auto``, the default, states the resolved choice in the JSON): JAX
always runs jitted (XLA); TensorFlow runs a `tf.function` without XLA (Keras's choice on CPU);
torch runs eagerly (Keras's default; ``torch.compile`` is not used). On torch, add
``--flush-denormal`` for a comparison without subnormal-float slowdowns (see
``_flush_tiny_gradient`` in the layer module: the scan flushes its own gradients).
"""

import argparse
import json
import os
import platform
import statistics
import time

import keras
import numpy as np
from keras import ops

from kerasmed.layers import TimeModulatedLSTM, TimeModulatedLSTMCell


class GatesOnly(keras.layers.Layer):
    """The tLSTM gates with the recurrence removed: ``y_t = o_t * tanh(i_t * c_t)``."""

    def __init__(self, units, num_labels, return_sequences=False, **kwargs):
        super().__init__(**kwargs)
        self.cell = TimeModulatedLSTMCell(units, num_labels)
        self.return_sequences = return_sequences

    def build(self, input_shape):
        self.cell.build((input_shape[0], input_shape[-1]))

    def call(self, inputs):
        z, time_term = self.cell.project_inputs(inputs)
        _, u, o = self.cell.gates_to_state(z, time_term)
        y = o * ops.tanh(u)
        return y if self.return_sequences else y[:, -1]


def make_layer(variant, units, num_labels, return_sequences):
    if variant in ("scan", "loop"):
        return TimeModulatedLSTM(
            units, num_labels, implementation=variant, return_sequences=return_sequences
        )
    if variant == "lstm":
        return keras.layers.LSTM(units, return_sequences=return_sequences)
    return GatesOnly(units, num_labels, return_sequences=return_sequences)


def build_model(variant, steps, args, jit_compile):
    keras.utils.set_random_seed(0)
    width = args.features + args.labels + 1
    inputs = keras.Input((steps, width), batch_size=args.batch)
    outputs = make_layer(variant, args.units, args.labels, args.return_sequences)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse", jit_compile=jit_compile)
    return model


def run_length(steps, args, jit_compile):
    """Times every variant at one length; the timed calls are interleaved round-robin so that
    a change of machine load affects all variants alike."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, steps, args.features + args.labels + 1)).astype("float32")
    out_shape = (
        (args.batch, steps, args.units) if args.return_sequences else (args.batch, args.units)
    )
    y = rng.normal(size=out_shape).astype("float32")
    calls, row = {}, {}
    for variant in args.variants:
        model = build_model(variant, steps, args, jit_compile)
        start = time.perf_counter()
        for _ in range(args.warmup):
            model.train_on_batch(x, y)
            model.predict_on_batch(x)
        row[variant] = {"warmup_s": time.perf_counter() - start, "jit_compile": model.jit_compile}
        calls[(variant, "forward_ms")] = lambda model=model: model.predict_on_batch(x)
        calls[(variant, "train_ms")] = lambda model=model: model.train_on_batch(x, y)
    times = {key: [] for key in calls}
    for _ in range(args.repeats):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            times[key].append(1000.0 * (time.perf_counter() - start))
    for (variant, kind), values in times.items():
        row[variant][kind] = statistics.median(values)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--labels", type=int, default=8)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--return-sequences", action="store_true")
    parser.add_argument("--variants", nargs="+", default=["scan", "loop", "lstm", "floor"])
    parser.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto")
    parser.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch only: torch.set_flush_denormal(True) for every variant (XLA and "
        "TensorFlow flush subnormal floats by default; torch does not, and the backward pass "
        "of keras.layers.LSTM and of the loop then slows down on long sequences)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch only: torch.set_num_threads (1 gives stable figures on a loaded machine)",
    )
    args = parser.parse_args(argv)
    if keras.backend.backend() == "torch":
        import torch

        torch.set_flush_denormal(args.flush_denormal)
        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
    jit_compile = {"auto": "auto", "true": True, "false": False}[args.jit_compile]

    # Untimed pass: the first calls of a process pay one-off costs (allocators, kernels).
    run_length(min(args.lengths), argparse.Namespace(**{**vars(args), "repeats": 1}), jit_compile)
    results = []
    for steps in args.lengths:
        row = {"T": steps, **run_length(steps, args, jit_compile)}
        for kind in ("forward_ms", "train_ms"):
            ratios = {}
            if "lstm" in row and "scan" in row:
                ratios["lstm/scan"] = row["lstm"][kind] / row["scan"][kind]
            if "loop" in row and "scan" in row:
                ratios["loop/scan"] = row["loop"][kind] / row["scan"][kind]
            if "floor" in row and "scan" in row:
                ratios["scan/floor"] = row["scan"][kind] / row["floor"][kind]
            row[kind.replace("_ms", "_ratios")] = ratios
        results.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "batch": args.batch,
        "features": args.features,
        "labels": args.labels,
        "units": args.units,
        "repeats": args.repeats,
        "return_sequences": args.return_sequences,
        "jit_compile_requested": args.jit_compile,
        "flush_denormal": args.flush_denormal,
        "torch_threads": args.torch_threads,
        "results": results,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
