"""Images per second of the paper-004 preprocessing chain, one worker vs a process pool.

The chain is the one the folder pipeline runs per file: read a PNG (``cv2.IMREAD_UNCHANGED``),
`pad_to_square` (constant), `resize_image` to 512 x 512 (nearest), CLAHE, NL-means and layering
(`prepare_radiograph(..., enhanced=True)`), write the ``(512, 512, 3)`` result as ``.npy``::

    python benchmarks/xray_preprocessing.py --images 48 --workers 2 --repeats 3

Inputs: synthetic radiographs (`simulate_radiographs`, longer side 300-1024 px, the sizes of
ImageCLEF files and larger) written as 8-bit PNGs (``--bit-depth 16`` for 16-bit ones).

Measured, interleaved over ``--repeats`` rounds (median reported):

- ``one_worker``: the files one after the other in this process, OpenCV limited to one thread;
- ``pool``: ``concurrent.futures.ProcessPoolExecutor(--workers)`` (spawned processes, each
  with OpenCV limited to one thread), started and warmed up before the clock runs;
- ``one_worker_opencv_threads``: one process with OpenCV's own threading (its default: one
  thread per core), the other obvious way of using the cores.

OpenCV threads: CLAHE and NL-means run in parallel inside OpenCV by default
(``cv2.getNumThreads()`` = the number of cores). Pool workers are limited to one OpenCV thread
each (``cv2.setNumThreads(1)`` in the worker initializer) so that 2 workers use 2 cores, not
2 x 2 threads competing for them; the one-worker baseline is limited the same way, so the ratio
``pool / one_worker`` measures the pool alone, and ``pool / one_worker_opencv_threads`` says
what the pool gains over letting OpenCV thread. The 1-minute load average before and after is
recorded: other jobs sharing the machine lower the ratio.

Prints one JSON document.
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _init_worker(threads):
    cv2.setNumThreads(threads)


def _prepare_file(path, out_dir):
    from kerasmed.preprocessing.xray import prepare_radiograph

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    layered = prepare_radiograph(image, padding="constant", size=(512, 512), enhanced=True)
    np.save(Path(out_dir) / (Path(path).stem + ".npy"), layered)
    return layered.shape


def _write_inputs(directory, count, bit_depth, seed):
    from kerasmed.data.radiograph_phantom import simulate_radiographs

    data = simulate_radiographs(count, min_size=300, max_size=1024, bit_depth=bit_depth, seed=seed)
    paths = []
    for i, image in enumerate(data.images):
        path = Path(directory) / f"radiograph_{i:04d}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths, data.sizes


def _run_serial(paths, out_dir, threads):
    previous = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    start = time.perf_counter()
    for path in paths:
        _prepare_file(path, out_dir)
    elapsed = time.perf_counter() - start
    cv2.setNumThreads(previous)
    return elapsed


def _run_pool(pool, paths, out_dir, chunksize):
    start = time.perf_counter()
    list(pool.map(_prepare_file, paths, [out_dir] * len(paths), chunksize=chunksize))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunksize", type=int, default=4)
    parser.add_argument("--bit-depth", type=int, default=8, choices=(8, 16))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    default_threads = cv2.getNumThreads()
    load = {"before": round(os.getloadavg()[0], 2)}
    times = {"one_worker": [], "pool": [], "one_worker_opencv_threads": []}
    with tempfile.TemporaryDirectory() as tmp:
        in_dir, out_dir = Path(tmp, "in"), Path(tmp, "out")
        in_dir.mkdir()
        out_dir.mkdir()
        paths, sizes = _write_inputs(in_dir, args.images, args.bit_depth, args.seed)
        _prepare_file(paths[0], out_dir)  # imports and first-call costs out of the clock
        start = time.perf_counter()
        pool = concurrent.futures.ProcessPoolExecutor(
            args.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker, initargs=(1,),
        )  # fmt: skip
        list(pool.map(_prepare_file, paths[: args.workers], [out_dir] * args.workers))
        startup = time.perf_counter() - start
        try:
            for _ in range(args.repeats):
                times["one_worker"].append(_run_serial(paths, out_dir, 1))
                times["pool"].append(_run_pool(pool, paths, out_dir, args.chunksize))
                times["one_worker_opencv_threads"].append(
                    _run_serial(paths, out_dir, default_threads)
                )
        finally:
            pool.shutdown()
        written = len(list(out_dir.glob("*.npy")))
    load["after"] = round(os.getloadavg()[0], 2)
    rates = {k: args.images / statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "chain": "imread + pad_to_square(constant) + resize 512x512 nearest + CLAHE(2.55, 8x8) "
                 "+ NL-means(2, 4, 4) + layering + np.save",
        "images": args.images,
        "bit_depth": args.bit_depth,
        "input_long_side_px": [int(sizes.max(1).min()), int(sizes.max(1).max())],
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "opencv": cv2.__version__,
        "opencv_default_threads": default_threads,
        "python": platform.python_version(),
        "load_average_1min": load,
        "pool_startup_s": round(startup, 3),
        "images_per_s": {k: round(v, 2) for k, v in rates.items()},
        "seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "ratio_pool_vs_one_worker": round(rates["pool"] / rates["one_worker"], 3),
        "ratio_pool_vs_opencv_threads": round(
            rates["pool"] / rates["one_worker_opencv_threads"], 3
        ),
        "outputs_written": written,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
