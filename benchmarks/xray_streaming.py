"""Peak memory of one training epoch of experiment ``xray``'s input, streamed from the
preprocessing cache (`kerasmed.data.imageclef.ImageCLEFDataset`) vs in memory
(`kerasmed.data.load_imageclef_arrays`, the arrays handed to ``fit``), as the set grows 10x; and
the throughput (images/s) with the batches read in line (workers=1) or by 2 threads.

For each size a phantom ImageCLEF folder is written (`simulate_radiographs`, long side
96-128 px) and preprocessed once into a cache (`prepare_imageclef_cache`, ``--prep-workers``
processes; its time per 1,000 images is reported); then each measurement runs in its own
process (peak RSS, ``ru_maxrss``, is a process's lifetime peak): it reads the prepared cache
(every entry reused) and fits a small CNN for two epochs, batch 16 (throughput: the second
epoch, nothing left to compile)::

    python benchmarks/xray_streaming.py [--sizes 200 2000] [--image-size 128]

Prints JSON.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from _common import peak_rss_mb, report_header, run_worker, serve_worker

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(config):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = [*getattr(self, "seconds", []), time.perf_counter() - self.start]

    from kerasmed.data import load_imageclef_arrays
    from kerasmed.data.imageclef import ImageCLEFDataset, prepare_imageclef_cache

    size, batch = config["image_size"], 16
    kwargs = dict(size=size, cache_dir=config["cache"], workers=0, progress=False)
    inputs = keras.Input((size, size, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(8, activation="softmax")(x))
    model.compile("sgd", "categorical_crossentropy")
    timer = EpochTimer()
    before = peak_rss_mb()
    start = time.perf_counter()
    if config["mode"] == "streamed":
        cache = prepare_imageclef_cache(config["folder"], **kwargs)
        count = len(cache.train)
        data = ImageCLEFDataset(cache.train, 8, batch, seed=0, workers=config["workers"])
        read = time.perf_counter() - start
        model.fit(data, epochs=2, verbose=0, callbacks=[timer])
    else:
        x_train, y_train, *_ = load_imageclef_arrays(config["folder"], **kwargs)
        count = len(x_train)
        y_train = keras.utils.to_categorical(y_train, 8)
        read = time.perf_counter() - start
        model.fit(x_train, y_train, batch_size=batch, epochs=2, shuffle=True, verbose=0,
                  callbacks=[timer])  # fmt: skip
    seconds = timer.seconds[-1]  # the second epoch: nothing compiled any more
    peak = peak_rss_mb()
    return {**config, "images": count, "peak_rss_mb": round(peak, 1),
            "rss_growth_mb": round(peak - before, 1), "read_seconds": round(read, 2),
            "images_per_s": round(count / seconds, 1)}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--prep-workers", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if serve_worker(args, measure):
        return
    from kerasmed.data import simulate_radiographs, write_imageclef_folder
    from kerasmed.data.imageclef import prepare_imageclef_cache

    load = os.getloadavg()
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    runs, prep = [], []
    for count in args.sizes:
        with tempfile.TemporaryDirectory() as root:
            folder, cache = os.path.join(root, "data"), os.path.join(root, "cache")
            phantom = simulate_radiographs(count, 96, 128, seed=0)
            write_imageclef_folder(phantom, folder, test_fraction=0.1)
            start = time.perf_counter()
            prepared = prepare_imageclef_cache(
                folder, cache, size=args.image_size, workers=args.prep_workers, progress=False
            )
            seconds = time.perf_counter() - start
            prep.append({"images": count, "workers": args.prep_workers,
                         "seconds_per_1000_images": round(1000 * seconds / count, 1),
                         "cache_mb": round(sum(os.path.getsize(p) for p in
                                               prepared.train.paths) / 2**20, 1)})  # fmt: skip
            for mode, workers in (("in_memory", 1), ("streamed", 1), ("streamed", 2)):
                config = {"folder": folder, "cache": cache, "image_size": args.image_size,
                          "mode": mode, "workers": workers}  # fmt: skip
                result = run_worker(__file__, config, timeout=1800)
                runs.append({k: v for k, v in result.items() if k not in ("folder", "cache")})
    header = report_header("xray_streaming", backend, load)
    print(json.dumps({**header, "preprocessing": prep, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
