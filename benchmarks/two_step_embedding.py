"""Slices per second of paper 003's embedding extraction: `embed_scans` vs a per-slice loop.

`kerasmed.models.embed_scans` runs every slice of every scan through the slice CNN's
embedding model in fixed-size batches across scan boundaries (one compiled shape). The
obvious alternative is ``embedder.predict(slice[None])`` for one slice at a time. Both run in
the same process, after a warm-up call each (graph building / compilation not counted), on
random 8-bit-like slices of scans of different lengths::

    KERAS_BACKEND=tensorflow python benchmarks/two_step_embedding.py \\
        --configs small_cnn:64 efficientnet_b3:256

Models: `build_slice_embedder` with ``weights=None`` (ImageNet weights do not change the cost);
``small_cnn`` with filters (16, 32, 64, 128), EfficientNetB3 as the paper. Reported per
configuration: slices/s of each, their ratio, the slices timed, and the 1-minute load average
before and after (other jobs share the machine). Prints one JSON document.
"""

import argparse
import json
import os
import time


def _measure(backbone, size, scans, loop_slices, batch_size, repeats):
    import numpy as np

    from kerasmed.models import build_slice_embedder, embed_scans, slice_embedding_model

    kwargs = {"filters": (16, 32, 64, 128), "feature_dim": 128} if backbone == "small_cnn" else {}
    model = build_slice_embedder(backbone, (size, size, 3), weights=None, **kwargs)
    embedder = slice_embedding_model(model)
    rng = np.random.default_rng(0)
    volumes = [rng.uniform(0, 255, (n, size, size)).astype("float32") for n in scans]
    total = sum(scans)
    embed_scans(embedder, volumes[:1], batch_size=batch_size, progress=False)  # warm-up
    batched = []
    for _ in range(repeats):
        start = time.perf_counter()
        embeddings = embed_scans(embedder, volumes, batch_size=batch_size, progress=False)
        batched.append(time.perf_counter() - start)
    slices = np.concatenate(volumes)[:loop_slices]
    one = np.repeat(slices[:1, ..., None], 3, axis=-1)
    embedder.predict(one, verbose=0)  # warm-up
    looped = []
    for _ in range(repeats):
        start = time.perf_counter()
        loop_out = [
            embedder.predict(np.repeat(s[None, ..., None], 3, -1), verbose=0) for s in slices
        ]
        looped.append(time.perf_counter() - start)
    difference = float(
        np.abs(np.concatenate(loop_out) - np.concatenate(embeddings)[:loop_slices]).max()
    )
    batched_rate = total / min(batched)
    loop_rate = loop_slices / min(looped)
    return {
        "backbone": backbone,
        "size": size,
        "parameters": int(model.count_params()),
        "batch_size": batch_size,
        "scans": list(scans),
        "embed_scans_slices": total,
        "embed_scans_slices_per_s": round(batched_rate, 2),
        "loop_slices": loop_slices,
        "loop_predict_slices_per_s": round(loop_rate, 2),
        "ratio_embed_scans_over_loop": round(batched_rate / loop_rate, 2),
        "max_abs_difference": difference,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["small_cnn:64", "efficientnet_b3:256"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    import keras

    plan = {"small_cnn": ((60, 35, 97), 48), "efficientnet_b3": ((21, 27), 12)}
    results = []
    load_before = os.getloadavg()[0]
    for config in args.configs:
        backbone, size = config.split(":")
        scans, loop_slices = plan.get(backbone, ((21, 27), 12))
        results.append(
            _measure(backbone, int(size), scans, loop_slices, args.batch_size, args.repeats)
        )
        keras.backend.clear_session()
    print(
        json.dumps(
            {
                "benchmark": "two_step_embedding",
                "backend": keras.backend.backend(),
                "keras": keras.__version__,
                "cpu_count": os.cpu_count(),
                "load_1min_before": round(load_before, 2),
                "load_1min_after": round(os.getloadavg()[0], 2),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
