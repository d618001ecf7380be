"""Peak memory of one training epoch, streamed (`kerasmed.data.StreamedVolumeDataset`) vs in
memory (`kerasmed.io.load_volume_set` + `BalancedVolumeDataset`), as the set grows 10x; and the
streamed throughput (volumes/s) with the batches read in line (workers=1) or by 2 threads.

``--case tlstm``: the same for paper 000's stage 1, one epoch of
`kerasmed.experiments.longitudinal.train_image_cnn` (a small CNN) over a generated
``sequences.npz`` of uint8 exams written uncompressed (as ``data_prep/longitudinal_manifest.py``
writes it), loaded streamed (`load_longitudinal_npz`: memory-mapped, batches through
`kerasmed.data.exam_batches.ExamDataset`) vs in memory (``stream=False``: float32 arrays).

``--case fcslstm``: the same for paper 002's ``segmentation.npz`` (``--fcslstm-sizes`` sequences of
5 time points of ``--image-size`` x ``--image-size`` x 2 float32, time point 3 unlabelled,
written uncompressed as ``data_prep/longitudinal_segmentation.py`` writes it): one epoch on the
training frames (the FCN's unit) and on the whole sequences (the FCSLSTMs'), in memory
(``load_segmentation_npz(mmap=False)``, ``training_frames`` stacked, ``model.fit`` on arrays, as
the embedded phantom trains) vs streamed from the memory-mapped file
(`kerasmed.data.segmentation_streaming`, as ``kerasmed reproduce fcslstm --data-dir`` trains),
with 1 or 2 reading workers. The model is one per-pixel convolution (``TimeDistributed`` over
the sequences) with the experiment's weighted loss: the data path, not the network, is what is
measured. Besides the lifetime peak (loading and the class weights included) it reports the
resident memory before the epoch and the largest sampled during it (every 5 ms; the
file-backed pages of a map count).

Each measurement runs in its own process (peak RSS, ``ru_maxrss``, is a process's lifetime peak,
and Linux carries it over a fork and exec: so the tlstm set is generated in a process of its own
too, and the parent stays small).

    python benchmarks/streaming_memory.py [--case volumes tlstm fcslstm] [--sizes 200 2000]
        [--slices 16] [--size 32] [--tlstm-sizes 250 2500] [--exams 8] [--image-size 64]
        [--fcslstm-sizes 200 2000]

Prints JSON.
"""

import argparse
import json
import os
import resource
import tempfile
import time

import numpy as np
from _common import RssSampler, rss_mb, run_worker, serve_worker


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


def write_segmentation(folder, count, size, timepoints=5):
    from kerasmed.io import SegmentationSequences, save_segmentation_npz

    rng = np.random.default_rng(0)
    shape = (count, timepoints, size, size)
    labels = rng.integers(0, 4, size=shape).astype("int8")
    labels[:, 2] = -1
    seqs = SegmentationSequences(
        rng.normal(size=(*shape, 2)).astype("float32"), labels, [f"s{i}" for i in range(count)],
        np.zeros(count), np.tile(np.arange(timepoints) * 3.0, (count, 1)), ("t1w", "t2w"),
    )  # fmt: skip
    save_segmentation_npz(os.path.join(folder, "segmentation.npz"), seqs)
    return {"images_mb": seqs.images.nbytes / 2**20}


def measure_segmentation(folder, unit, mode, workers):
    import keras

    from kerasmed.data.segmentation_streaming import (
        SegmentationFrameDataset,
        SegmentationSequenceDataset,
        labelled_frames,
    )
    from kerasmed.experiments.fcslstm import split_timepoints, training_frames
    from kerasmed.io import load_segmentation_npz
    from kerasmed.losses import WeightedCategoricalCrossentropy, class_weights_from_labels

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seqs = load_segmentation_npz(folder, mmap=mode == "streamed")
    train_labels, _ = split_timepoints(seqs.labels, 2)
    weights = class_weights_from_labels(train_labels, 4)
    shape = seqs.images.shape[1:] if unit == "sequences" else seqs.images.shape[2:]
    inputs = keras.Input(shape)
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="softmax")
    outputs = conv(inputs) if unit == "frames" else keras.layers.TimeDistributed(conv)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile("sgd", WeightedCategoricalCrossentropy(weights, ignore_label=-1))
    batch = 16 if unit == "frames" else 4
    if mode == "streamed":
        if unit == "frames":
            frames = labelled_frames(train_labels)
            data = SegmentationFrameDataset(
                seqs.images, train_labels, frames, batch, True, workers=workers
            )
        else:
            data = SegmentationSequenceDataset(
                seqs.images, train_labels, None, batch, True, workers=workers
            )
        x, y, items = data, None, data._num_items
    else:
        if unit == "frames":
            x, y = training_frames(seqs.images, train_labels)
        else:
            x, y = seqs.images, train_labels
        items = len(x)
    before_epoch = rss_mb()
    start = time.perf_counter()
    with RssSampler() as epoch:
        model.fit(x, y, batch_size=None if y is None else batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_rss_mb": peak / 1024, "rss_growth_mb": (peak - before) / 1024,
            "rss_before_epoch_mb": before_epoch, "epoch_peak_rss_mb": epoch.peak,
            "images_mb": seqs.images.nbytes / 2**20, "items_per_s": items / seconds}  # fmt: skip


def _child(*args):
    """Runs one step in a fresh process (`_common.run_worker`): a parent's peak RSS would pass
    to its next children, so every step that allocates runs in its own."""
    result = run_worker(__file__, {"child": [str(a) for a in args]}, timeout=3600, error_lines=5)
    if "error" in result:
        raise RuntimeError(f"benchmark step {args} failed: {result['error']}")
    return result


def child(config):
    """One step in a fresh process (writing too: a parent's peak would pass to the next ones)."""
    step = config["child"]
    if step[0] == "write":
        path, count, exams, size = step[1:]
        return write_sequences(path, int(count), int(exams), int(size))
    if step[0] == "tlstm":
        return measure_tlstm(*step[1:])
    if step[0] == "write-segmentation":
        folder, count, size = step[1:]
        return write_segmentation(folder, int(count), int(size))
    if step[0] == "fcslstm":
        folder, unit, mode, workers = step[1:]
        return measure_segmentation(folder, unit, mode, int(workers))
    folder, mode, workers = step
    return measure(folder, mode, int(workers))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument(
        "--case", nargs="+", choices=("volumes", "tlstm", "fcslstm"), default=["volumes"]
    )
    parser.add_argument("--tlstm-sizes", type=int, nargs="+", default=[250, 2500])
    parser.add_argument("--exams", type=int, default=8, help="exams per sequence (tlstm)")
    parser.add_argument(
        "--image-size", type=int, default=64, help="exam / image side (tlstm, fcslstm)"
    )
    parser.add_argument("--fcslstm-sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if serve_worker(args, child):
        return
    results = {"backend": os.environ.get("KERAS_BACKEND", "tensorflow"), "runs": []}
    for count in args.tlstm_sizes if "tlstm" in args.case else []:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "sequences.npz")
            _child("write", path, count, args.exams, args.image_size)
            for mode in ("in_memory", "streamed"):
                run = {"case": "tlstm", "sequences": count, "mode": mode}
                results["runs"].append({**run, **_child("tlstm", path, mode)})
    for count in args.fcslstm_sizes if "fcslstm" in args.case else []:
        with tempfile.TemporaryDirectory() as folder:
            _child("write-segmentation", folder, count, args.image_size)
            for unit in ("frames", "sequences"):
                for mode, workers in (("in_memory", 1), ("streamed", 1), ("streamed", 2)):
                    run = {"case": "fcslstm", "sequences": count, "unit": unit, "mode": mode,
                           "workers": workers, "image_size": args.image_size}  # fmt: skip
                    results["runs"].append(
                        {**run, **_child("fcslstm", folder, unit, mode, workers)}
                    )
    for count in args.sizes if "volumes" in args.case else []:
        with tempfile.TemporaryDirectory() as folder:
            write_set(folder, count, args.slices, args.size)
            for mode, workers in (("in_memory", 1), ("streamed", 1), ("streamed", 2)):
                run = {"case": "volumes", "volumes": count, "mode": mode, "workers": workers}
                results["runs"].append({**run, **_child(folder, mode, workers)})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
