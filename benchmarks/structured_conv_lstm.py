"""Speed of StructuredConvLSTM2D (no operator) against keras.layers.ConvLSTM2D, same weights.

Run once per backend; prints JSON (median and min milliseconds over interleaved repetitions,
ratio ours/keras of medians and of minima; target <= 1.2):

    KERAS_BACKEND=tensorflow python benchmarks/structured_conv_lstm.py
    KERAS_BACKEND=jax python benchmarks/structured_conv_lstm.py --repeats 3
    KERAS_BACKEND=torch python benchmarks/structured_conv_lstm.py

Both layers run through Keras's own compiled paths (`predict_on_batch`, `train_on_batch`) with
the same `jit_compile`. `--jit-compile auto` (default) picks per backend: TensorFlow `False`
(XLA on CPU runs the ConvLSTM backward ~20x slower than TF's graph mode), JAX `True` (JAX always
runs through XLA: `False` would only dispatch the same XLA ops one by one from Python), torch
`False` (eager; torch.compile is not used).
"""

import argparse
import json
import os
import statistics
import time

import keras
import numpy as np

from kerasmed.layers.structured_conv_lstm import StructuredConvLSTM2D

DEFAULT_SIZES = "2,5,32,32,8,16;2,5,64,64,16,32"


def parse_sizes(text):
    sizes = []
    for item in text.split(";"):
        b, t, h, w, c, f = (int(v) for v in item.split(","))
        sizes.append({"batch": b, "steps": t, "rows": h, "cols": w, "channels": c, "filters": f})
    return sizes


def build_model(layer, size):
    inputs = keras.Input(
        (size["steps"], size["rows"], size["cols"], size["channels"]), batch_size=size["batch"]
    )
    return keras.Model(inputs, layer(inputs))


def time_ms(fns, warmup, repeats):
    """Median and min milliseconds of each function; repetitions are interleaved so that
    a change of machine load during the run hits every candidate alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {
        name: {"median": round(statistics.median(t), 2), "min": round(min(t), 2)}
        for name, t in times.items()
    }


def run_size(
    size, kernel_size, jit_compile, warmup, repeats, seed, modes=("forward", "train"), unroll=False
):
    rng = np.random.default_rng(seed)
    x = rng.normal(
        size=(size["batch"], size["steps"], size["rows"], size["cols"], size["channels"])
    )
    x = x.astype("float32")
    keras_model = build_model(
        keras.layers.ConvLSTM2D(size["filters"], kernel_size, padding="same", unroll=unroll), size
    )
    ours_model = build_model(
        StructuredConvLSTM2D(size["filters"], kernel_size, unroll=unroll), size
    )
    ours_model.set_weights(keras_model.get_weights())
    y = np.zeros(tuple(keras_model.output.shape), "float32")
    result = {"size": size}
    models = {"ours": ours_model, "keras": keras_model}
    for model in models.values():
        model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    outputs = {name: np.asarray(m.predict_on_batch(x)) for name, m in models.items()}
    result["max_abs_diff"] = float(np.abs(outputs["ours"] - outputs["keras"]).max())
    for mode in modes:
        if mode == "forward":
            fns = {name: (lambda m=m: m.predict_on_batch(x)) for name, m in models.items()}
        else:
            fns = {name: (lambda m=m: m.train_on_batch(x, y)) for name, m in models.items()}
        timings = time_ms(fns, warmup, repeats)
        timings["ratio"] = round(timings["ours"]["median"] / timings["keras"]["median"], 3)
        timings["ratio_min"] = round(timings["ours"]["min"] / timings["keras"]["min"], 3)
        result[f"{mode}_ms"] = timings
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="';'-separated 'batch,steps,rows,cols,channels,filters' (default: %(default)s)",
    )
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default="forward,train", help="comma-separated: forward,train")
    parser.add_argument(
        "--unroll",
        action="store_true",
        help="unroll the time loop of both layers (Keras's RNN `unroll`; see the module notes)",
    )
    args = parser.parse_args(argv)

    backend = keras.backend.backend()
    if args.jit_compile == "auto":
        jit_compile = backend == "jax"
    else:
        jit_compile = args.jit_compile == "true"
    keras.utils.set_random_seed(args.seed)
    results = [
        run_size(
            size,
            args.kernel_size,
            jit_compile,
            args.warmup,
            args.repeats,
            args.seed,
            modes=tuple(args.modes.split(",")),
            unroll=args.unroll,
        )
        for size in parse_sizes(args.sizes)
    ]
    report = {
        "benchmark": "StructuredConvLSTM2D (input_operator=None) vs keras.layers.ConvLSTM2D",
        "backend": backend,
        "keras": keras.__version__,
        "jit_compile": jit_compile,
        "unroll": args.unroll,
        "kernel_size": args.kernel_size,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
