"""Peak memory of one training epoch, streamed (`kerasmed.data.StreamedVolumeDataset`) vs in
memory (`kerasmed.io.load_volume_set` + `BalancedVolumeDataset`), as the set grows 10x; and the
streamed throughput (volumes/s) with the batches read in line (workers=1) or by 2 threads.

Each measurement runs in its own process (peak RSS, ``ru_maxrss``, is a process's lifetime peak).

    python benchmarks/streaming_memory.py [--sizes 200 2000] [--slices 16] [--size 32]

Prints JSON.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def write_set(folder, count, slices, size):
    from kerasmed.io import VolumeSetWriter

    rng = np.random.default_rng(0)
    with VolumeSetWriter(folder, hu_dtype="int16", compress=False) as writer:
        for i in range(count):
            hu = rng.integers(-100, 200, size=(slices, size, size))
            writer.add(f"v{i:05d}", hu, label=i % 2, spacing=(5, 1, 1))


def measure(folder, mode, workers):
    import keras

    from kerasmed.data import BalancedVolumeDataset, StreamedVolumeDataset, read_volume_index
    from kerasmed.io import load_volume_set

    index = read_volume_index(folder)
    slices, size = index.files[0].shape[:2]
    volume = keras.Input((None, size, size, 1))
    mask = keras.Input((None,), dtype="bool")
    x = keras.layers.TimeDistributed(keras.layers.Conv2D(2, 3, strides=4))(volume)
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D())(x)
    x = keras.layers.GlobalAveragePooling1D()(x, mask=mask)
    model = keras.Model([volume, mask], keras.layers.Dense(2, activation="softmax")(x))
    model.compile("sgd", "categorical_crossentropy")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kwargs = dict(batch_size=8, balance=False, pad_multiple=slices, seed=0, workers=workers)
    if mode == "streamed":
        data = StreamedVolumeDataset(index.files, index.labels, **kwargs)
    else:
        loaded = load_volume_set(folder)
        data = BalancedVolumeDataset(loaded.volumes, loaded.labels, **kwargs)
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_rss_mb": peak / 1024, "rss_growth_mb": (peak - before) / 1024,
            "volumes_per_s": len(index) / seconds}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, mode, workers = args.child
        print("RESULT " + json.dumps(measure(folder, mode, int(workers))))
        return
    results = {"backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "runs": []}
    for count in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            write_set(folder, count, args.slices, args.size)
            for mode, workers in (("in_memory", 1), ("streamed", 1), ("streamed", 2)):
                done = subprocess.run(
                    [sys.executable, __file__, "--child", folder, mode, str(workers)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
                run = {"volumes": count, "mode": mode, "workers": workers}
                results["runs"].append({**run, **json.loads(line[7:])})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
