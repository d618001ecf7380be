"""Speed and memory of the paper-001 CNN + BiLSTM on whole 256x256 head-CT volumes.

Run once per backend (each measurement runs in a fresh subprocess, so its peak RSS is its own)::

    KERAS_BACKEND=tensorflow python benchmarks/ich_volume.py --slices 64 128 320

The model is the paper configuration: the VGG-like slice CNN (16 ... 512 filters, 512-d features)
and two ``Bidirectional(LSTM(512), merge_mode="sum")`` layers. Two measurements per N:

- ``inference``: seconds per volume of ``model.predict_on_batch`` on one ``(1, N, 256, 256, 1)``
  volume, for the model with the slice CNN applied in chunks (``--infer-chunk`` slices, default
  32) and without chunks, against the *ceiling*: the same slice CNN alone on the ``N`` stacked
  slices as one batch (``cnn.predict_on_batch``; no LSTM). ``ratio = ceiling / model`` (1 means
  the LSTMs and the chunked loop cost nothing; the target is >= 0.9). Median of ``--repeats``
  after one warm-up call.
- ``train_step``: one ``train_on_batch`` (RMSprop, binary cross-entropy) on one volume, for
  ``plain`` (the CNN on all N slices at once, like ``TimeDistributed``) and ``chunk_remat``
  (chunks of ``--train-chunk`` slices, each rematerialized). Reported: seconds of the second step
  (the first one compiles), the process's resident memory before the first step, its peak
  (``ru_maxrss``) after the first step (execution *and* compilation, e.g. XLA's on JAX), the
  largest resident memory sampled every 5 ms during the second step (execution only) and the
  overall peak after both. ``plain`` is skipped above ``--max-plain-slices`` (its
  activations of all slices do not fit next to other jobs on a shared machine).

Prints one JSON document: backend, versions, settings and a list of results.
"""

import argparse
import json
import os
import platform
import sys
import time

import keras
from _common import (
    RssSampler,
    jax_temp_mb,
    median_seconds,
    peak_rss_mb,
    rss_mb,
    run_worker,
    serve_worker,
)


def _build(config, slice_chunk, remat):
    from kerasmed.models.ich import build_cnn_bilstm

    return build_cnn_bilstm(
        (config["size"], config["size"], 1),
        lstm_units=config["lstm_units"],
        base_filters=config["base_filters"],
        feature_dim=config["feature_dim"],
        slice_chunk=slice_chunk,
        remat=remat,
    )


def worker(config):
    import numpy as np

    keras.utils.set_random_seed(0)
    n, size = config["slices"], config["size"]
    x = np.random.default_rng(0).uniform(size=(1, n, size, size, 1)).astype("float32")
    result = {"kind": config["kind"], "variant": config["variant"], "slices": n}
    if config["kind"] == "inference":
        chunk = config["infer_chunk"] if config["variant"] == "chunked" else None
        model = _build(config, chunk, remat=False)
        if config["variant"] == "ceiling":
            cnn = model.get_layer("ich_slices").slice_model
            stacked = x[0]
            seconds = median_seconds(lambda: cnn.predict_on_batch(stacked), config["repeats"])
        else:
            seconds = median_seconds(lambda: model.predict_on_batch(x), config["repeats"])
        result["seconds"] = seconds
    else:
        chunk, remat = (
            (config["train_chunk"], True) if config["variant"] == "chunk_remat" else (None, False)
        )
        model = _build(config, chunk, remat)
        model.compile(keras.optimizers.RMSprop(1e-3), "binary_crossentropy")
        y = np.array([[0.0, 1.0]], "float32")
        result["rss_before_mb"] = rss_mb()
        start = time.perf_counter()
        model.train_on_batch(x, y)
        result["first_step_seconds"] = time.perf_counter() - start
        result["peak_rss_after_first_step_mb"] = peak_rss_mb()
        result["rss_before_second_step_mb"] = rss_mb()
        with RssSampler() as sampler:
            start = time.perf_counter()
            model.train_on_batch(x, y)
            result["seconds"] = time.perf_counter() - start
        result["second_step_max_rss_mb"] = sampler.peak
        result["peak_rss_mb"] = peak_rss_mb()
        result["input_mb"] = x.nbytes / 2**20
        if keras.backend.backend() == "jax":
            result["xla_temp_mb"] = jax_temp_mb(model, x, y, keras.losses.BinaryCrossentropy())
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[64, 128, 320])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--feature-dim", type=int, default=512)
    parser.add_argument("--lstm-units", type=int, default=512)
    parser.add_argument("--infer-chunk", type=int, default=32)
    parser.add_argument("--train-chunk", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-plain-slices", type=int, default=128)
    parser.add_argument("--kinds", nargs="+", default=["inference", "train_step"])
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if serve_worker(args, worker):
        return

    base = {
        "size": args.size, "base_filters": args.base_filters, "feature_dim": args.feature_dim,
        "lstm_units": args.lstm_units, "infer_chunk": args.infer_chunk,
        "train_chunk": args.train_chunk, "repeats": args.repeats,
    }  # fmt: skip
    results = []
    for n in args.slices:
        if "inference" in args.kinds:
            row = {"kind": "inference", "slices": n}
            for variant in ("ceiling", "chunked", "plain"):
                out = run_worker(
                    __file__,
                    {**base, "kind": "inference", "variant": variant, "slices": n},
                    args.timeout,
                )
                row[f"{variant}_seconds"] = out.get("seconds", out.get("error"))
            if all(isinstance(row[f"{v}_seconds"], float) for v in ("ceiling", "chunked", "plain")):
                row["ratio_chunked"] = row["ceiling_seconds"] / row["chunked_seconds"]
                row["ratio_plain"] = row["ceiling_seconds"] / row["plain_seconds"]
            results.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if "train_step" in args.kinds:
            for variant in ("plain", "chunk_remat"):
                if variant == "plain" and n > args.max_plain_slices:
                    continue
                out = run_worker(
                    __file__,
                    {**base, "kind": "train_step", "variant": variant, "slices": n},
                    args.timeout,
                )
                results.append(out)
                print(json.dumps(out), file=sys.stderr, flush=True)
    report = {
        "benchmark": "ich_volume",
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "settings": {**base, "slices": args.slices, "max_plain_slices": args.max_plain_slices},
        "results": results,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
