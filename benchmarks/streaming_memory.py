"""Peak memory of one training epoch, streamed (`kerasmed.data.StreamedVolumeDataset`) vs in
memory (`kerasmed.io.load_volume_set` + `BalancedVolumeDataset`), as the set grows 10x; and the
streamed throughput (volumes/s) with the batches read in line (workers=1) or by 2 threads.

``--case tlstm``: the same for paper 000's stage 1, one epoch of
`kerasmed.experiments.longitudinal.train_image_cnn` (a small CNN) over a generated
``sequences.npz`` of uint8 exams written uncompressed (as ``data_prep/longitudinal_manifest.py``
writes it), loaded streamed (`load_longitudinal_npz`: memory-mapped, batches through
`kerasmed.data.exam_batches.ExamDataset`) vs in memory (``stream=False``: float32 arrays).

Each measurement runs in its own process (peak RSS, ``ru_maxrss``, is a process's lifetime peak,
and Linux carries it over a fork and exec: so the tlstm set is generated in a process of its own
too, and the parent stays small).

    python benchmarks/streaming_memory.py [--case volumes tlstm] [--sizes 200 2000] [--slices 16]
        [--size 32] [--tlstm-sizes 250 2500] [--exams 8] [--image-size 64]

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


def write_sequences(path, count, exams, size):
    from kerasmed.io.sequences import LongitudinalSequences, save_longitudinal_npz

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (exams, size, size)) / np.float32(255.0) for _ in range(count)]
    labels = [rng.integers(0, 2, (exams, 2)).astype("float32") for _ in range(count)]
    deltas = [np.arange(exams, dtype="float32") for _ in range(count)]
    sequences = LongitudinalSequences(images, labels, deltas, ("a", "b"))
    save_longitudinal_npz(path, sequences, image_dtype="uint8", compress=False)
    return {"path": path}


def measure_tlstm(path, mode):
    from kerasmed.experiments import get_config
    from kerasmed.experiments import longitudinal as exp
    from kerasmed.io import load_longitudinal_npz

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = load_longitudinal_npz(path, stream=mode == "streamed")
    size = data.images[0].shape[1]
    overrides = dict(image_size=size, cnn_filters=(4,), feature_dim=8, cnn_epochs=1)
    config = get_config("tlstm", "quick", **overrides)
    start = time.perf_counter()
    exp.train_image_cnn(data, config, seed=0, verbose=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    exams = int(data.lengths.sum())
    return {"peak_rss_mb": peak / 1024, "rss_growth_mb": (peak - before) / 1024,
            "exams_per_s": exams / seconds, "exams": exams,
            "file_mb": os.path.getsize(path) / 1024**2}  # fmt: skip


def _child(*args):
    done = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, args)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[7:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--case", nargs="+", choices=("volumes", "tlstm"), default=["volumes"])
    parser.add_argument("--tlstm-sizes", type=int, nargs="+", default=[250, 2500])
    parser.add_argument("--exams", type=int, default=8, help="exams per sequence (tlstm)")
    parser.add_argument("--image-size", type=int, default=64, help="exam side (tlstm)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "write":  # in a child: a parent's peak would pass to the next ones
            path, count, exams, size = args.child[1:]
            result = write_sequences(path, int(count), int(exams), int(size))
        elif args.child[0] == "tlstm":
            result = measure_tlstm(*args.child[1:])
        else:
            folder, mode, workers = args.child
            result = measure(folder, mode, int(workers))
        print("RESULT " + json.dumps(result))
        return
    results = {"backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "runs": []}
    for count in args.tlstm_sizes if "tlstm" in args.case else []:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "sequences.npz")
            _child("write", path, count, args.exams, args.image_size)
            for mode in ("in_memory", "streamed"):
                run = {"case": "tlstm", "sequences": count, "mode": mode}
                results["runs"].append({**run, **_child("tlstm", path, mode)})
    for count in args.sizes if "volumes" in args.case else []:
        with tempfile.TemporaryDirectory() as folder:
            write_set(folder, count, args.slices, args.size)
            for mode, workers in (("in_memory", 1), ("streamed", 1), ("streamed", 2)):
                run = {"case": "volumes", "volumes": count, "mode": mode, "workers": workers}
                results["runs"].append({**run, **_child(folder, mode, workers)})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
