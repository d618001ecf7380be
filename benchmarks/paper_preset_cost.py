"""What each experiment's paper preset costs on this CPU: seconds per training step x step count.

For every experiment (``--experiments``, default all five), each model that the paper preset
trains is built the way the experiment builds it (``get_config(name, "paper")`` and the
experiment module's own builders; ImageNet weights off, ``weights=None`` /
``backbone_weights=None``, which does not change the cost of a step) and compiled with the
experiment's optimizer and loss; then, in a fresh subprocess (so its peak RSS is its own), one
warm-up ``train_on_batch`` (tracing / compilation) and ``--steps`` timed ones on random inputs of
the paper's shapes::

    KERAS_BACKEND=tensorflow nice -n 10 python benchmarks/paper_preset_cost.py
    KERAS_BACKEND=tensorflow python benchmarks/paper_preset_cost.py --quick --experiments tlstm

The estimated CPU time of a whole ``kerasmed reproduce <exp> --preset paper`` is the sum, over
its models, of ``step seconds x training steps``, the steps counted from the config and the
dataset size (epochs x steps per epoch x how many models of that kind; every count is listed
under ``"counts"``, every assumption under ``"assumptions"``). Only training steps are counted:
validation passes, feature extraction, the baselines and the data preparation come on top.

Models that read 224 x 224 or larger images are measured at a batch of at most
``--max-batch`` (default 8: at batch 8, EfficientNetB3, the Swin head and InceptionV3 already
took 3.6-6.3 GB on TensorFlow, and the 2D CNN's paper batch is 128 slices) and their step time scaled by ``paper batch / measured
batch`` (a per-step overhead is scaled with it, so the estimate errs high); the peak RSS is that
of the measured batch. A measurement whose resident memory passes ``--max-rss-gb`` (default 8)
is stopped and reported as an error. ``--quick``: the quick presets' shapes and counts (a
smoke run).

Prints one JSON document: backend, versions, load averages, settings, counts, assumptions,
one result per measured model and the per-experiment totals in hours.
"""

import argparse
import dataclasses
import inspect
import json
import math
import os
import statistics
import sys
import time

from _common import (
    RssSampler,
    peak_rss_mb,
    print_result,
    report_header,
    rss_mb,
    run_worker,
    serve_worker,
)

EXPERIMENTS = ("tlstm", "ich", "fcslstm", "two-step", "xray")
XRAY_CLASSES = 193  # ImageCLEF 2009 (paper 004, Section III-A: "The dataset has 193 classes")
XRAY_QUICK_CLASSES = 6


# ---------------------------------------------------------------------------------------------
# Step counts


def _tlstm_lengths(config, seed=0):
    """Lengths of the simulated training sequences, drawn as `simulate_longitudinal_digits` does.

    Each sequence's generator draws its length first (``min_length + G``, clipped), so the draw
    alone gives the simulator's lengths; `_check_tlstm_lengths` compares them with the simulator.
    """
    import numpy as np

    from kerasmed.data import simulate_longitudinal_digits

    defaults = inspect.signature(simulate_longitudinal_digits).parameters
    low, high, mean = (defaults[k].default for k in ("min_length", "max_length", "mean_length"))
    total = config.num_train + config.num_test
    lengths = []
    for child in np.random.SeedSequence(seed).spawn(total):
        rng = np.random.default_rng(child)
        extra = mean - low
        length = low + (int(rng.geometric(1.0 / (extra + 1.0))) - 1 if extra > 0 else 0)
        lengths.append(min(length, high))
    order = np.random.default_rng(seed).permutation(total)  # LongitudinalSequences.split
    return np.asarray(lengths)[np.sort(order[config.num_test :])]


def _check_tlstm_lengths(config, count=12, seed=0):
    import numpy as np

    from kerasmed.data import simulate_longitudinal_digits

    data = simulate_longitudinal_digits(count, image_size=12, seed=seed)
    small = dataclasses.replace(config, num_train=count - 2, num_test=2)
    total = small.num_train + small.num_test
    order = np.random.default_rng(seed).permutation(total)
    expected = np.asarray(data.lengths)[np.sort(order[small.num_test :])]
    if not np.array_equal(_tlstm_lengths(small, seed), expected):
        raise RuntimeError("the simulator's sequence lengths changed: update _tlstm_lengths")


def plan(name, config, quick, max_batch):
    """``(jobs, counts, assumptions)`` of one experiment: what to measure and how often it runs.

    Each job is one model to measure (a worker config) with ``train_steps`` (how many times the
    preset runs that step), ``paper_batch`` and the measured ``batch``.
    """
    import numpy as np

    preset = "quick" if quick else "paper"
    base = {"experiment": name, "preset": preset}
    jobs, counts, assumptions = [], {}, []

    def capped(batch, size):
        return min(batch, max_batch) if size >= 224 else batch

    if name == "tlstm":
        _check_tlstm_lengths(config)
        lengths = _tlstm_lengths(config)
        exams = int(lengths.sum())
        fit_exams = int(math.floor(exams * 0.9))  # fit(validation_split=0.1)
        cnn_steps = math.ceil(fit_exams / config.batch_size) * config.cnn_epochs
        n = len(lengths)
        fit_sequences = n - max(1, n // 10)
        per_model = math.ceil(fit_sequences / config.batch_size) * config.seq_epochs
        counts = {
            "training_sequences": n, "exams": exams, "cnn_fit_exams": fit_exams,
            "cnn_steps": cnn_steps, "fit_sequences": fit_sequences,
            "padded_length": int(lengths.max()), "mean_length": round(float(lengths.mean()), 2),
            "steps_per_sequence_model": per_model, "sequence_models": len(config.models),
        }  # fmt: skip
        jobs.append({**base, "model": "image_cnn", "batch": config.batch_size,
                     "train_steps": cnn_steps, "counted_as": "image_cnn"})  # fmt: skip
        from kerasmed.experiments.presets.longitudinal import SEQUENCE_MODELS

        builds = {}  # the shuffled-delta model is the same build as the encoded v1
        for model in config.models:
            spec = SEQUENCE_MODELS[model]
            key = (spec.kind, spec.encoding, spec.version, spec.use_time)
            builds.setdefault(key, []).append(model)
        for models in builds.values():
            jobs.append({**base, "model": models[0], "batch": config.batch_size,
                         "length": int(lengths.max()), "train_steps": per_model * len(models),
                         "counted_as": "+".join(models)})  # fmt: skip
        assumptions += [
            f"data: the simulated digit sequences ({config.num_train} training sequences, the "
            "preset's num_train; the paper's own simulated set, Section 4); lengths drawn as "
            "the simulator draws them (seed 0, checked against it)",
            "every sequence batch is padded to the longest training sequence (the experiment "
            "fixes one padded length for all batches), so the step cost is that length's",
            "one-hot time encoding of the *_encoded models: lapses 1-10 (the simulator's range)",
            "tlstm_v1_shuffled_delta is the tlstm_v1_encoded build on permuted lapses: its step "
            "is measured once, with tlstm_v1_encoded",
        ]
    elif name == "ich":
        z, pad = config.z_factor, config.pad_multiple
        raw = np.arange(z * config.min_slices, z * config.max_slices + 1)  # uniform in the phantom
        filtered = np.ceil(raw / z)
        padded = np.ceil(filtered / pad) * pad
        length = int(round(padded.mean() / pad) * pad)
        per_epoch = math.ceil(config.volumes_per_epoch / config.volume_batch)
        counts = {
            "training_volumes": config.num_train,
            "slices_after_z_filter": [int(filtered.min()), int(filtered.max())],
            "mean_padded_slices": round(float(padded.mean()), 1), "measured_slices": length,
            "pretrain_steps": config.pretrain_epochs * config.pretrain_steps,
            "volume_steps_per_epoch": per_epoch,
            "train_lstm_steps": config.lstm_epochs * per_epoch,
            "finetune_steps": config.finetune_epochs * per_epoch,
            "scratch_steps": config.scratch_epochs * per_epoch,
        }  # fmt: skip
        size = config.slice_size
        jobs.append({**base, "model": "pretrain_cnn", "paper_batch": config.pretrain_batch,
                     "batch": capped(config.pretrain_batch, size),
                     "train_steps": counts["pretrain_steps"], "counted_as": "stage 1"})  # fmt: skip
        jobs.append({**base, "model": "train_lstm", "batch": config.volume_batch,
                     "length": length, "scale_length": float(padded.mean()) / length,
                     "train_steps": counts["train_lstm_steps"], "counted_as": "stage 2"})  # fmt: skip
        jobs.append({**base, "model": "finetune", "batch": config.volume_batch, "length": length,
                     "scale_length": float(padded.mean()) / length,
                     "train_steps": counts["finetune_steps"] + counts["scratch_steps"],
                     "counted_as": "stage 3 + scratch"})  # fmt: skip
        assumptions += [
            f"data: {config.num_train} training volumes (the preset's num_train, the paper's "
            f"Table 2 split); {config.volumes_per_epoch} volumes drawn per epoch of the volume "
            "stages, so their steps do not depend on the set's size",
            f"slices per volume uniform in [{z * config.min_slices}, {z * config.max_slices}] "
            f"before the z filter (the paper's 280-450 half-mm slices), padded to a multiple of "
            f"{pad}; the volume steps are measured at {length} slices and scaled by mean padded "
            "length / measured length (a step's cost grows linearly with the slices)",
            "the model trained from scratch is the stage-3 model (same layers, RMSprop 1e-4, all "
            "trainable): its steps are counted at the stage-3 step time",
        ]
    elif name == "fcslstm":
        from kerasmed.data import simulate_infant_brain

        phantom = simulate_infant_brain(1, size=32)
        t = phantom.images.shape[1]
        fcn_frames = config.num_subjects * (t - 1)  # every training time point is labelled
        fcn_batch = config.batch_size * (t - 1)
        fcn_steps = math.ceil(fcn_frames / fcn_batch) * config.epochs
        seq_steps = math.ceil(config.num_subjects / config.batch_size) * config.epochs
        counts = {
            "training_subjects": config.num_subjects, "timepoints": t,
            "fcn_frames": fcn_frames, "fcn_batch": fcn_batch,
            "fcn_steps": fcn_steps, "sequence_model_steps": seq_steps,
        }  # fmt: skip
        for model in config.models:
            steps = fcn_steps if model == "fcn" else seq_steps
            batch = fcn_batch if model == "fcn" else config.batch_size
            jobs.append({**base, "model": model, "batch": batch, "train_steps": steps,
                         "counted_as": model})  # fmt: skip
        assumptions += [
            f"data: {config.num_subjects} labelled subjects (the paper's BRIC set: 10 subjects, "
            f"{t} time points; the preset's num_subjects), trained on {t - 1} time points",
            "epochs and batch size are the preset's: the paper gives neither",
        ]
    elif name == "two-step":
        scans = config.num_train - config.num_val
        cnn_steps = math.ceil(scans / config.scans_per_batch) * config.cnn_epochs
        lstm_steps = math.ceil(scans / config.lstm_batch) * config.lstm_epochs
        swin_steps = math.ceil(scans / config.swin_batch) * config.swin_epochs
        cnn_batch = config.scans_per_batch * config.slices_per_scan
        counts = {
            "training_scans": config.num_train, "fit_scans": scans,
            "cnn_batch_slices": cnn_batch, "cnn_steps": cnn_steps,
            "lstm_steps": lstm_steps, "swin_steps": swin_steps,
        }  # fmt: skip
        jobs.append({**base, "model": "cnn_2d", "paper_batch": cnn_batch,
                     "batch": capped(cnn_batch, config.slice_size), "train_steps": cnn_steps,
                     "counted_as": "step 1: 2D CNN"})  # fmt: skip
        jobs.append({**base, "model": "lstm", "batch": config.lstm_batch,
                     "train_steps": lstm_steps, "counted_as": "step 2: BiLSTM head"})  # fmt: skip
        jobs.append({**base, "model": "swin", "paper_batch": config.swin_batch,
                     "batch": capped(config.swin_batch, config.swin_slices),
                     "train_steps": swin_steps, "counted_as": "step 2: Swin head"})  # fmt: skip
        assumptions += [
            f"data: COV19-CT-DB's {config.num_train} training scans (the preset's num_train), "
            f"{config.num_val} held out for validation: {scans} scans fitted per epoch",
        ]
    elif name == "xray":
        train_images = round(config.num_images * (1 - config.test_fraction))
        per_model = math.ceil(train_images / config.batch_size) * config.epochs
        from kerasmed.experiments.xray import MODELS

        num_models = len(MODELS)  # paddings x enhancements: one model per input of `load_data`
        classes = XRAY_QUICK_CLASSES if quick else XRAY_CLASSES
        counts = {
            "training_images": train_images, "classes": classes,
            "steps_per_model": per_model, "models": num_models,
        }  # fmt: skip
        jobs.append({**base, "model": "classifier", "paper_batch": config.batch_size,
                     "batch": capped(config.batch_size, config.image_size),
                     "classes": classes, "train_steps": per_model * num_models,
                     "counted_as": f"{num_models} models (same network, one per preprocessing)"})  # fmt: skip
        assumptions += [
            f"data: {train_images} training images and {classes} classes ("
            + (
                "the quick preset's phantom; 6 classes assumed"
                if quick
                else "ImageCLEF 2009, paper 004 Section III-A"
            )
            + ")",
            f"the {num_models} models (padding x enhancement) are one network on differently "
            f"preprocessed images of the same shape: one measured step, counted {num_models} "
            "times",
        ]
    for job in jobs:
        job.setdefault("paper_batch", job["batch"])
    return jobs, counts, assumptions


# ---------------------------------------------------------------------------------------------
# Worker: build, compile, time (imports Keras)


def _random_like(structure, batch, length, rng, uint8=False):
    """Random arrays for a model's inputs: ``None`` dims -> `batch` (first) or `length`."""
    import keras
    import numpy as np

    def make(tensor):
        shape = [batch] + [length if d is None else d for d in tensor.shape[1:]]
        if tensor.dtype == "bool":
            return np.ones(shape, bool)
        if uint8:
            return rng.integers(0, 256, shape).astype("uint8")
        return rng.uniform(size=shape).astype("float32")

    return keras.tree.map_structure(make, structure)


def build(job):
    """``(model, x, y)`` of one job: the experiment's model, compiled as it compiles it."""
    import keras
    import numpy as np

    from kerasmed.experiments import get_config

    rng = np.random.default_rng(0)
    name, model_name, batch = job["experiment"], job["model"], job["batch"]
    keras.utils.set_random_seed(0)
    if name == "tlstm":
        from kerasmed.experiments import longitudinal as exp
        from kerasmed.preprocessing import encode_time_deltas

        config = get_config(name, job["preset"])
        labels = 5
        if model_name == "image_cnn":
            model = exp.build_image_cnn(config, labels)
            model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy",
                          metrics=["binary_accuracy"])  # fmt: skip
            x = _random_like(model.input, batch, None, rng)
            return model, x, rng.integers(0, 2, (batch, labels)).astype("float32")
        spec = exp.SEQUENCE_MODELS[model_name]
        encoding = config.encoding if spec.encoding == "config" else spec.encoding
        kwargs = {"max_delta": 10} if encoding == "one_hot" else {}
        time_features = encode_time_deltas(np.arange(3.0), encoding, **kwargs).shape[-1]
        every = config.supervise_every_step
        model = exp.build_sequence_model(
            spec, labels, config.feature_dim, time_features, config.units, every, model_name
        )
        model.compile(keras.optimizers.Adam(config.learning_rate), "binary_crossentropy")
        length = job["length"]
        x = _random_like(model.input, batch, length, rng)
        shape = (batch, length, labels) if every else (batch, labels)
        return model, x, rng.integers(0, 2, shape).astype("float32")
    if name == "ich":
        from kerasmed.experiments import ich as exp
        from kerasmed.training import compile_stage, set_trainable

        config = get_config(name, job["preset"])
        cnn, model = exp.build_models(config)
        y = np.eye(2, dtype="float32")[rng.integers(0, 2, batch)]
        if model_name == "pretrain_cnn":
            set_trainable(cnn, True)
            compile_stage(cnn, "pretrain_cnn", config.pretrain_learning_rate,
                          jit_compile=config.jit_compile)  # fmt: skip
            return cnn, _random_like(cnn.input, batch, None, rng), y
        set_trainable(cnn, model_name == "finetune")
        compile_stage(model, model_name, jit_compile=config.jit_compile)
        return model, _random_like(model.input, batch, job["length"], rng), y
    if name == "fcslstm":
        from kerasmed import backend_policy
        from kerasmed.data import simulate_infant_brain
        from kerasmed.experiments import fcslstm as exp

        config = get_config(name, job["preset"])
        phantom = simulate_infant_brain(1, size=32)
        t, channels = phantom.images.shape[1], phantom.images.shape[-1]
        classes = int(phantom.labels.max()) + 1
        size = config.image_size
        model = exp.build_model(model_name, config, (t, size, size, channels), classes)
        model.compile(
            optimizer=exp.fcslstm_optimizer(learning_rate=config.learning_rate),
            loss=exp.WeightedCategoricalCrossentropy(
                np.ones(classes, "float32"), ignore_label=exp.IGNORE_LABEL
            ),
            jit_compile=backend_policy.fcslstm_jit_compile(),
        )
        x = _random_like(model.input, batch, None, rng)
        y = rng.integers(0, classes, x.shape[:-1]).astype("int32")
        if model_name != "fcn":  # the test time point is unlabelled in training
            y[:, config.test_timepoint] = exp.IGNORE_LABEL
        return model, x, y
    if name == "two-step":
        from kerasmed.experiments import two_step as exp

        config = get_config(name, job["preset"], backbone_weights=None)
        y = rng.integers(0, 2, (batch, 1)).astype("float32")
        if model_name == "cnn_2d":
            kwargs = {}
            if config.backbone == "small_cnn":
                kwargs = {"filters": config.cnn_filters, "feature_dim": config.cnn_feature_dim}
            shape = (config.slice_size, config.slice_size, config.channels)
            model = exp.build_slice_embedder(
                config.backbone, shape, config.embedding_dim, weights=config.backbone_weights,
                dropout=config.cnn_dropout, **kwargs,
            )  # fmt: skip
            model.compile(
                optimizer=exp.AdamL2(
                    config.cnn_learning_rate, weight_decay=config.cnn_weight_decay
                ),
                loss="binary_crossentropy",
                metrics=["accuracy"],
            )
            x = (rng.uniform(size=(batch, *shape)) * 255).astype("float32")
            return model, x, y
        model = exp.build_head(model_name, config)
        steps = job["train_steps"]
        if model_name == "lstm":
            schedule = exp._cosine(config.lstm_learning_rate, steps, config.lstm_warmup * steps)
            optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.lstm_weight_decay)
            loss = keras.losses.BinaryCrossentropy()
        else:
            per_epoch = steps // config.swin_epochs
            schedule = exp._cosine(
                config.swin_learning_rate, steps, config.swin_warmup_epochs * per_epoch
            )
            optimizer = keras.optimizers.SGD(
                schedule, momentum=config.swin_momentum, weight_decay=config.swin_weight_decay
            )
            loss = keras.losses.BinaryCrossentropy(label_smoothing=config.swin_label_smoothing)
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
        return model, _random_like(model.input, batch, None, rng), y
    if name == "xray":
        from kerasmed.experiments import xray as exp

        config = get_config(name, job["preset"], weights=None)
        classes = job["classes"]
        model = exp.build_model(config, classes, input_max=255.0)
        x = _random_like(model.input, batch, None, rng, uint8=True)
        y = np.eye(classes, dtype="float32")[rng.integers(0, classes, batch)]
        return model, x, y
    raise ValueError(f"Unknown experiment. Received: experiment={name!r}")


def _rss_guard(limit_mb, result):
    """Ends this process when its resident memory passes `limit_mb` (a shared machine)."""
    import threading

    def watch():
        while True:
            if rss_mb() > limit_mb:
                error = f"stopped: resident memory above --max-rss-gb ({limit_mb / 1024:g} GB)"
                print_result({**result, "error": error})
                os._exit(3)
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()


def worker(job):
    import keras

    result = {key: job[key] for key in ("experiment", "model", "batch", "paper_batch")}
    if "length" in job:
        result["length"] = job["length"]
    _rss_guard(job["max_rss_gb"] * 1024, result)
    start = time.perf_counter()
    model, x, y = build(job)
    result["build_seconds"] = round(time.perf_counter() - start, 2)
    result["params"] = int(model.count_params())
    result["rss_before_mb"] = round(rss_mb(), 1)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    result["first_step_seconds"] = round(time.perf_counter() - start, 3)
    result["peak_rss_after_first_step_mb"] = round(peak_rss_mb(), 1)
    times, peaks = [], []
    for _ in range(job["steps"]):
        with RssSampler() as sampler:
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        peaks.append(sampler.peak)
    result["step_seconds"] = [round(t, 4) for t in times]
    result["step_seconds_median"] = round(statistics.median(times), 4)
    result["step_max_rss_mb"] = round(max(peaks), 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["backend"] = keras.backend.backend()
    return result


# ---------------------------------------------------------------------------------------------


def estimate(job, result):
    """Adds the scaled step time and the hours of the job's training steps to `result`."""
    if "step_seconds_median" not in result:
        return result
    scale = job["paper_batch"] / job["batch"] * job.get("scale_length", 1.0)
    step = result["step_seconds_median"] * scale
    result.update({
        "counted_as": job["counted_as"], "train_steps": job["train_steps"],
        "step_scale": round(scale, 4), "paper_step_seconds": round(step, 4),
        "hours": round(step * job["train_steps"] / 3600, 3),
    })  # fmt: skip
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS),
                        choices=EXPERIMENTS)  # fmt: skip
    parser.add_argument("--steps", type=int, default=1, help="timed steps after the warm-up")
    parser.add_argument("--max-batch", type=int, default=8,
                        help="largest measured batch of a model reading >= 224 x 224 images")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="the quick presets: a smoke run")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per measurement")
    parser.add_argument("--max-rss-gb", type=float, default=8.0,
                        help="a measurement whose resident memory passes this is stopped")  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if serve_worker(args, worker):
        return
    if args.steps < 1 or args.max_batch < 1 or not args.max_rss_gb > 0:
        raise ValueError(
            "`--steps` and `--max-batch` must be >= 1 and `--max-rss-gb` > 0. Received: "
            f"steps={args.steps}, max_batch={args.max_batch}, max_rss_gb={args.max_rss_gb}"
        )
    from kerasmed.experiments import get_config

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    preset = "quick" if args.quick else "paper"
    load_before = os.getloadavg()
    experiments = {}
    for name in args.experiments:
        jobs, counts, assumptions = plan(name, get_config(name, preset), args.quick, args.max_batch)
        results = []
        for job in jobs:
            job = {**job, "steps": args.steps, "max_rss_gb": args.max_rss_gb}
            load = os.getloadavg()[0]
            out = run_worker(__file__, job, args.timeout, {"KERAS_BACKEND": backend}, 3)
            out["load_average_1min"] = [round(load, 2), round(os.getloadavg()[0], 2)]
            results.append(estimate(job, out))
            print(json.dumps(out), file=sys.stderr, flush=True)
        complete = all("hours" in r for r in results)
        experiments[name] = {
            "counts": counts,
            "assumptions": assumptions,
            "results": results,
            "total_hours": round(sum(r["hours"] for r in results), 2) if complete else None,
            "peak_rss_mb": max(
                (r["peak_rss_mb"] for r in results if "peak_rss_mb" in r), default=None
            ),  # fmt: skip
        }
    report = {
        **report_header("paper_preset_cost", backend, load_before),
        "settings": {
            "preset": preset,
            "steps": args.steps,
            "max_batch": args.max_batch,
            "quick": args.quick,
            "experiments": args.experiments,
        },  # fmt: skip
        "assumptions": [
            "only training steps are counted (no validation, prediction, feature extraction, "
            "baselines or data preparation)",
            "step time = median of the timed train_on_batch calls after one warm-up call; the "
            "warm-up (tracing / compilation) is reported but not counted",
            "random inputs of the paper's shapes: a step's cost does not depend on the values",
        ],
        "experiments": experiments,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
