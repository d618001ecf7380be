"""Memory and time of one training step of the paper-002 models: FCN, FCSLSTM, bi-FCSLSTM.

Run once per backend (each configuration runs in a fresh subprocess, so its peak RSS is its
own)::

    KERAS_BACKEND=tensorflow python benchmarks/fcslstm_memory.py            # paper size
    KERAS_BACKEND=jax python benchmarks/fcslstm_memory.py --quick           # or --backend jax

Paper size: sequences of T = 5 time points of 256x256 images with 2 channels (T1w, T2w),
4 classes, batch 1, the concise FCN at half VGG-16 width (``--width-divisor 2``). Models:

- ``fcn``: the concise FCN on every time point (``build_concise_fcn((T, H, W, C), ...)``);
- ``fcslstm``: five stacked structured LSTMs (operators conv1 ... conv5) + back-end;
- ``bi_fcslstm``: the same with bidirectional layers (directions concatenated).

Variants: ``remat`` (each block / stacked layer and the back-end recomputed in the backward
pass) and, for the LSTM models, ``grouped`` (the operator grouping of Section 2.2,
``--groups``, default ``2,3``: two stacked layers, operators conv1+conv2 and conv3+conv4+conv5).
Then a sweep over T = 1 ... ``--max-steps`` for the three plain models.

Per configuration (RMSprop, categorical cross-entropy, ``train_on_batch``): seconds of the first
step (includes tracing/compilation) and of the last of ``--steps`` steps; resident memory before
the first step; the process's peak resident memory (``ru_maxrss``) after the first step and at
the end (compilation included); the largest resident memory sampled every 5 ms during the last
step (execution only); on JAX also XLA's own figure for the temporary buffers of the gradient
step (JAX's CPU allocator keeps freed memory, so RSS hardly tells variants apart).
``jit_compile`` per backend: TensorFlow ``False`` (XLA on CPU runs the ConvLSTM backward much
slower than graph mode), JAX ``True``, torch ``False``. On JAX the time loops are unrolled
(``--unroll auto``), XLA on CPU being very slow on the backward pass of a looped ConvLSTM.
``--quick``: 64x64, T = 3 (sweep 1 ... 3), for a smoke run.

Prints one JSON document: backend, versions, settings, the load average before and after (the
machine may be shared), and the list of results.
"""

import argparse
import json
import os
import sys
import time

from _common import (
    RssSampler,
    jax_temp_mb,
    peak_rss_mb,
    report_header,
    rss_mb,
    run_worker,
    serve_worker,
)


def _build(config):
    from kerasmed.models.fcslstm import build_concise_fcn, build_fcslstm

    shape = (config["steps"], config["size"], config["size"], config["channels"])
    common = {"width_divisor": config["width_divisor"], "remat": config["remat"]}
    if config["model"] == "fcn":
        return build_concise_fcn(shape, config["classes"], **common)
    return build_fcslstm(
        shape,
        config["classes"],
        bidirectional=config["model"] == "bi_fcslstm",
        operator_groups=tuple(config["groups"]) if config["grouped"] else (1, 1, 1, 1, 1),
        unroll=config["unroll"],
        **common,
    )


def worker(config):
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    t, size, channels = config["steps"], config["size"], config["channels"]
    x = rng.uniform(size=(1, t, size, size, channels)).astype("float32")
    labels = rng.integers(0, config["classes"], size=(1, t, size, size))
    y = np.eye(config["classes"], dtype="float32")[labels]
    model = _build(config)
    model.compile(
        keras.optimizers.RMSprop(1e-3, rho=0.95),
        "categorical_crossentropy",
        jit_compile=config["jit_compile"],
    )
    result = {
        key: config[key] for key in ("model", "steps", "remat", "grouped", "size", "width_divisor")
    }
    result["params"] = model.count_params()
    result["rss_before_mb"] = round(rss_mb(), 1)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    result["first_step_seconds"] = round(time.perf_counter() - start, 3)
    result["peak_rss_after_first_step_mb"] = round(peak_rss_mb(), 1)
    for _ in range(config["train_steps"] - 2):
        model.train_on_batch(x, y)
    if config["train_steps"] > 1:
        with RssSampler() as sampler:
            start = time.perf_counter()
            model.train_on_batch(x, y)
            result["step_seconds"] = round(time.perf_counter() - start, 3)
        result["last_step_max_rss_mb"] = round(sampler.peak, 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if keras.backend.backend() == "jax":
        result["xla_temp_mb"] = round(
            jax_temp_mb(model, x, y, keras.losses.CategoricalCrossentropy()), 1
        )
    return result


def configurations(args):
    """The T = `args.steps` comparison, then the T sweep of the plain models."""
    main = [("fcn", False, False), ("fcn", True, False)]
    for model in ("fcslstm", "bi_fcslstm"):
        for grouped in (False, True):
            for remat in (False, True):
                main.append((model, remat, grouped))
    configs = [(model, args.steps, remat, grouped) for model, remat, grouped in main]
    for t in range(1, args.steps if args.sweep else 1):
        configs += [(model, t, False, False) for model in ("fcn", "fcslstm", "bi_fcslstm")]
    return [c for c in configs if c[0] in args.models]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--quick", action="store_true", help="64x64, T = 3: a smoke run")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5, help="time points T (sweep: 1 ... T)")
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--width-divisor", type=int, default=2)
    parser.add_argument("--groups", default="2,3", help="operator groups of the grouped variant")
    parser.add_argument("--train-steps", type=int, default=2, help="training steps per run")
    parser.add_argument("--models", nargs="+", default=["fcn", "fcslstm", "bi_fcslstm"])
    parser.add_argument("--no-sweep", dest="sweep", action="store_false", help="skip the T sweep")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto")
    parser.add_argument("--unroll", choices=("auto", "true", "false"), default="auto")
    parser.add_argument("--timeout", type=int, default=1200)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if serve_worker(args, worker):
        return
    if args.quick:
        args.size, args.steps = 64, 3
    backend = args.backend
    auto = {"jit_compile": backend == "jax", "unroll": backend == "jax"}
    jit_compile = auto["jit_compile"] if args.jit_compile == "auto" else args.jit_compile == "true"
    unroll = auto["unroll"] if args.unroll == "auto" else args.unroll == "true"
    base = {
        "backend": backend, "size": args.size, "channels": args.channels,
        "classes": args.classes, "width_divisor": args.width_divisor,
        "groups": [int(g) for g in args.groups.split(",")], "train_steps": args.train_steps,
        "jit_compile": jit_compile, "unroll": unroll,
    }  # fmt: skip
    load_before = os.getloadavg()
    results = []
    for model, steps, remat, grouped in configurations(args):
        config = {**base, "model": model, "steps": steps, "remat": remat, "grouped": grouped}
        out = run_worker(__file__, config, args.timeout, {"KERAS_BACKEND": config["backend"]}, 3)
        results.append(out)
        print(json.dumps(out), file=sys.stderr, flush=True)
    report = {
        **report_header("fcslstm_memory", backend, load_before),
        "settings": {**base, "steps": args.steps, "quick": args.quick},
        "results": results,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
