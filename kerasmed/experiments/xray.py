"""Experiment ``xray`` (paper 004): radiographs classified by IRMA code, padding x enhancement.

The paper's grid, as in Nkwentsha et al.: every radiograph is made square (``constant``: zero
padding; ``repetitive``: the image repeated, OpenCV's ``BORDER_WRAP``) or not (``resize``: the
aspect ratio is lost), resized with nearest-neighbour interpolation, and turned into three
channels, either grey x 3 or ``(original, NL-means, CLAHE)`` (``_enhanced``). Each of the six
inputs trains its own classifier (InceptionV3 without its top, global average pooling,
``Dense(1024, relu)``, softmax over the IRMA classes; SGD 0.01 with Keras 2's decay 1e-6,
categorical cross-entropy), evaluated by test accuracy and loss (Tables I and II).

Data: an ImageCLEF 2009 folder (``data_dir``, layout in `kerasmed.io.imageclef`), or the
phantom of `kerasmed.data.simulate_radiographs` written in that layout to a temporary folder
and read back through the same reader. The six inputs are prepared, trained and freed one at a
time (`load_input`): each goes through the per-image cache
(`kerasmed.data.imageclef.prepare_imageclef_cache`), then is either read into arrays or, when
its arrays would exceed `kerasmed.data.streaming.STREAM_ABOVE_BYTES` (`streams`; the real set
at 299 or 512 pixels), streamed from the cache batch by batch
(`kerasmed.data.imageclef.ImageCLEFDataset`): only the entries' paths and labels are in memory.

The same functions, configured by an `XrayConfig` (see `kerasmed.experiments.presets.xray`),
drive ``kerasmed reproduce xray`` and ``notebooks/05_xray_inception.ipynb``.
"""

from __future__ import annotations

import contextlib
import tempfile
import time

import keras
import matplotlib.figure
import numpy as np

from kerasmed.data import simulate_radiographs, write_imageclef_folder
from kerasmed.data.imageclef import (
    ImageCLEFCache,
    ImageCLEFDataset,
    load_imageclef_arrays,
    prepare_imageclef_cache,
)
from kerasmed.data.streaming import STREAM_ABOVE_BYTES
from kerasmed.experiments.common import logger, progress, start_run, write_figures
from kerasmed.experiments.presets.xray import PRESETS, XrayConfig
from kerasmed.io import class_imbalance_report, index_imageclef, read_radiograph
from kerasmed.models.xray import (
    build_inception_classifier,
    compile_xray_classifier,
    xray_optimizer,
)
from kerasmed.plotting import plot_learning_curves, plot_paper_comparison
from kerasmed.preprocessing import prepare_radiograph
from kerasmed.validation import check_whole_number

__all__ = [
    "MODELS",
    "PAPER",
    "PRESETS",
    "XrayConfig",
    "build_model",
    "load_input",
    "load_report_counts",
    "majority_rate",
    "phantom_folder",
    "preprocessing_figure",
    "run",
    "save_figures",
    "streams",
    "train_and_evaluate",
]

# The six inputs: name -> (padding of `prepare_radiograph`, enhanced).
MODELS = {
    "resize": (None, False),
    "resize_enhanced": (None, True),
    "repetitive": ("wrap", False),
    "repetitive_enhanced": ("wrap", True),
    "constant": ("constant", False),
    "constant_enhanced": ("constant", True),
}

# Tables I (accuracy) and II (loss) of the paper: the 1,733 (the paper says 1,732) ImageCLEF
# 2009 test images, InceptionV3 at 512 x 512.
PAPER = {
    "resize": {"accuracy": 0.6890, "loss": 1.520},
    "resize_enhanced": {"accuracy": 0.6487, "loss": 1.611},
    "repetitive": {"accuracy": 0.6792, "loss": 1.612},
    "repetitive_enhanced": {"accuracy": 0.6780, "loss": 1.508},
    "constant": {"accuracy": 0.6867, "loss": 1.442},
    "constant_enhanced": {"accuracy": 0.7134, "loss": 1.608},
}


@contextlib.contextmanager
def phantom_folder(config, seed=0):
    """Simulates radiographs and writes them in the ImageCLEF layout to a temporary folder.

    Yields the folder's path; the folder is removed on exit.

    Example:

    >>> import os
    >>> from kerasmed.experiments import get_config
    >>> config = get_config("xray", "quick", num_images=6, min_size=32, max_size=40)
    >>> with phantom_folder(config) as folder:
    ...     sorted(os.listdir(folder))
    ['ImageCLEFmed2009_test.03', 'ImageCLEFmed2009_test_codes.03.csv', 'ImageCLEFmed2009_train.02', 'ImageCLEFmed2009_train_codes.02.csv']
    """
    phantom = simulate_radiographs(
        config.num_images, config.min_size, config.max_size, bit_depth=config.bit_depth, seed=seed
    )
    with tempfile.TemporaryDirectory(prefix="kerasmed-xray-") as folder:
        write_imageclef_folder(phantom, folder, test_fraction=config.test_fraction)
        yield folder


def streams(config, nbytes):
    """Whether an input is streamed: ``config.stream``, or when that is ``None`` whether its
    arrays (`nbytes`, e.g. `kerasmed.data.imageclef.ImageCLEFCache.nbytes`) would take more
    than `kerasmed.data.streaming.STREAM_ABOVE_BYTES`.

    ImageCLEF 2009 at the paper's 512 x 512 is 11.3 GB per input (3.9 GB at 299): streamed;
    the quick preset's phantom is 7 MB: in memory.
    """
    if config.stream is not None:
        return config.stream
    return nbytes > STREAM_ABOVE_BYTES


@contextlib.contextmanager
def load_input(config, data_dir, name, verbose=True):
    """Preprocesses `data_dir` for the input `name` of `MODELS` (one input at a time).

    The images go through `kerasmed.data.imageclef.prepare_imageclef_cache` into
    ``config.cache_dir`` (``None``: a temporary folder, removed on exit); then, unless
    `streams`, they are read back as arrays. Without a ``cache_dir``, an input whose arrays
    surely fit in memory (`_fits_without_cache`) is read by `kerasmed.data.load_imageclef_arrays`
    without a cache: straight into memory, nothing written to disk.

    Yields:
        ``(data, label_map, report)``: ``data`` is ``(x_train, y_train, x_test, y_test)``
        (in memory), or the `kerasmed.data.imageclef.ImageCLEFCache` whose entries
        `train_and_evaluate` streams; the `kerasmed.io.IrmaLabelMap` and the
        `kerasmed.io.ImageCLEFReport`.
    """
    log = logger("xray", verbose)
    padding, enhanced = MODELS[name]
    if config.cache_dir is None and _fits_without_cache(config, data_dir):
        start = time.perf_counter()
        *data, label_map, report = load_imageclef_arrays(
            data_dir, padding, enhanced, config.image_size, workers=config.workers,
            strict=config.strict, progress=False,
        )  # fmt: skip
        log(f"{name}: {len(data[0])} training + {len(data[2])} test images, in memory "
            f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
        yield tuple(data), label_map, report
        return
    with contextlib.ExitStack() as stack:
        cache_dir = config.cache_dir
        if cache_dir is None:
            cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="kerasmed-xray-"))
        start = time.perf_counter()
        cache = prepare_imageclef_cache(
            data_dir, cache_dir, padding=padding, enhanced=enhanced, size=config.image_size,
            workers=config.workers, strict=config.strict, progress=False,
        )  # fmt: skip
        data = cache
        if not streams(config, cache.nbytes):
            data = (cache.train.read(), cache.train.labels, cache.test.read(), cache.test.labels)
        how = "in memory" if isinstance(data, tuple) else "streamed from the cache"
        log(f"{name}: {len(cache.train)} training + {len(cache.test)} test images, {how} "
            f"({time.perf_counter() - start:.1f} s)")  # fmt: skip
        yield data, cache.label_map, cache.report


def _fits_without_cache(config, data_dir):
    """Whether `streams` keeps an input in memory whatever its images' dtype: its size
    counted as uint16, the larger of the two (known before any image is read)."""
    index = index_imageclef(data_dir)
    count = len(index.train.paths) + len(index.test.paths)
    return not streams(config, count * config.image_size**2 * 3 * 2)


def _labels(data):
    """``(y_train, y_test)`` of what `load_input` yields."""
    if isinstance(data, ImageCLEFCache):
        return data.train.labels, data.test.labels
    return data[1], data[3]


def load_report_counts(report):
    """The counts of a `kerasmed.io.ImageCLEFReport`, for ``results.json``.

    Example:

    >>> from kerasmed.io import ImageCLEFReport, LoadReport
    >>> load_report_counts(ImageCLEFReport(LoadReport("a.csv", 3), LoadReport("b.csv", 1)))
    {'train_rows': 3, 'test_rows': 1, 'problems': 0, 'skipped': 0, 'notes': 0, 'computed': 0, 'cached': 0}
    """
    return {
        "train_rows": report.train.num_rows,
        "test_rows": report.test.num_rows,
        "problems": len(report.problems),
        "skipped": len(report.skipped),
        "notes": len(report.notes),
        "computed": report.computed,
        "cached": report.cached,
    }


def majority_rate(y_train, y_test):
    """Test accuracy of always answering the most frequent training class.

    Example:

    >>> majority_rate(np.array([0, 1, 1]), np.array([1, 0, 0, 1]))
    0.5
    """
    return float(np.mean(np.asarray(y_test) == np.bincount(y_train).argmax()))


def build_model(config, num_classes, input_max=255.0, seed=0, name="xray_classifier"):
    """The paper's classifier on `config`'s backbone, compiled with its SGD."""
    keras.utils.set_random_seed(seed)
    kwargs = {}
    if config.backbone == "small_cnn":
        kwargs = {"filters": tuple(config.small_cnn_filters)}
    model = build_inception_classifier(
        num_classes, (config.image_size, config.image_size, 3), weights=config.weights,
        backbone=config.backbone, dense_units=config.dense_units, input_max=input_max,
        name=name, **kwargs,
    )  # fmt: skip
    if config.batchnorm_momentum is not None:
        for layer in _layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.batchnorm_momentum
    optimizer = xray_optimizer(config.learning_rate, config.decay, config.momentum)
    return compile_xray_classifier(model, optimizer, jit_compile=config.jit_compile)


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def _fit_data(config, data, num_classes, seed):
    """``(train, test, input_max)`` for ``fit``: arrays with one-hot targets, or streamed
    `kerasmed.data.imageclef.ImageCLEFDataset`s."""
    if isinstance(data, ImageCLEFCache):
        reading = {"workers": check_whole_number(config.read_workers, "read_workers")}
        train = ImageCLEFDataset(
            data.train, num_classes, config.batch_size, shuffle=True, seed=seed, **reading
        )
        test = ImageCLEFDataset(data.test, num_classes, config.batch_size, shuffle=False, **reading)
        return train, test, float(np.iinfo(data.train.dtype).max)
    x_train, y_train, x_test, y_test = data
    one_hot = lambda y: keras.utils.to_categorical(y, num_classes)  # noqa: E731
    input_max = float(np.iinfo(x_train.dtype).max)
    return (x_train, one_hot(y_train)), (x_test, one_hot(y_test)), input_max


def train_and_evaluate(config, data, num_classes, seed=0, verbose=True, name="model"):
    """Trains one classifier on one input (`load_input`); test accuracy and loss.

    `data` is ``(x_train, y_train, x_test, y_test)`` or, streamed, an
    `kerasmed.data.imageclef.ImageCLEFCache` whose batches are read from disk as Keras asks
    for them (`kerasmed.data.imageclef.ImageCLEFDataset`, shuffled per epoch, with
    ``config.read_workers``). The images stay integer arrays (the model casts each batch to
    float32): 12,677 training images at 512 x 512 are 10 GB as uint8 and would be 40 GB as
    float32.

    The test set is passed as ``validation_data`` only to draw the learning curves: nothing is
    chosen on it (the last epoch's weights are evaluated, as the paper reports its last epoch).

    Returns:
        ``(metrics, history)``: ``{"accuracy", "loss", "train_accuracy", "train_loss",
        "seconds"}`` and the Keras history dict.
    """
    train, test, input_max = _fit_data(config, data, num_classes, seed)
    model = build_model(config, num_classes, input_max, seed=seed, name=f"xray_{name}")
    start = time.perf_counter()
    if isinstance(train, tuple):
        fit_args = {"x": train[0], "y": train[1], "batch_size": config.batch_size, "shuffle": True}
        eval_args = {"x": test[0], "y": test[1], "batch_size": config.batch_size}
    else:
        fit_args, eval_args = {"x": train}, {"x": test}
    history = model.fit(
        **fit_args, epochs=config.epochs, validation_data=test, verbose=0,
        callbacks=progress(name, verbose, ("loss", "accuracy")),
    ).history  # fmt: skip
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(**eval_args, verbose=0)
    metrics = {
        "accuracy": float(accuracy),
        "loss": float(loss),
        "train_accuracy": float(history["accuracy"][-1]),
        "train_loss": float(history["loss"][-1]),
        "seconds": round(seconds, 1),
    }
    history = {k: [float(v) for v in values] for k, values in history.items()}
    return metrics, history


def run(preset="quick", data_dir=None, out=None, seed=0, verbose=True, **overrides):
    """Runs the paper's 3 x 2 grid; returns ``{"models": ..., "class_imbalance": ..., ...}``.

    Args:
        preset: ``"quick"`` (2-core CPU, minutes: small CNN at 64 x 64) or ``"paper"`` (GPU:
            ImageNet InceptionV3 at 512 x 512, batch 16, 25 epochs).
        data_dir: an ImageCLEF 2009 folder (`kerasmed.io.imageclef`); ``None`` simulates
            radiographs and reads them through the same reader.
        out: folder for the PNG figures, or ``None``.
        seed: seed of the phantom and of every model (``seed + i`` for the i-th model).
        verbose: progress bars and stage messages.
        **overrides: `XrayConfig` fields to change for this run, e.g. ``epochs=2``.

    Example:

    >>> from kerasmed.experiments import run_experiment
    >>> results = run_experiment("xray", "quick", out="results/xray")  # doctest: +SKIP
    """
    config, log = start_run(PRESETS, preset, overrides, "xray", verbose)
    preprocessing_seconds = 0.0
    models, histories = {}, {}
    label_map = report = None
    with contextlib.ExitStack() as stack:
        start = time.perf_counter()
        if data_dir is None:
            data_dir = stack.enter_context(phantom_folder(config, seed))
            log(f"phantom: {config.num_images} radiographs in the ImageCLEF layout")
        example = _example_image(data_dir)
        preprocessing_seconds += time.perf_counter() - start
        for i, name in enumerate(MODELS):  # one input at a time: read, train, free
            start = time.perf_counter()
            with load_input(config, data_dir, name, verbose) as (data, labels, loaded):
                preprocessing_seconds += time.perf_counter() - start
                if label_map is None:
                    label_map, report = labels, loaded
                    y_train, y_test = _labels(data)
                    imbalance = class_imbalance_report(
                        label_map.decode(y_train), label_map.decode(y_test)
                    )
                    log(f"{label_map.num_classes} classes; majority-class test accuracy "
                        f"{majority_rate(y_train, y_test):.3f}")  # fmt: skip
                else:
                    report.computed += loaded.computed
                    report.cached += loaded.cached
                models[name], histories[name] = train_and_evaluate(
                    config, data, label_map.num_classes, seed=seed + i, verbose=verbose,
                    name=name,
                )  # fmt: skip
                del data
            log(f"{name}: test accuracy {models[name]['accuracy']:.3f}, "
                f"loss {models[name]['loss']:.3f} ({models[name]['seconds']:.0f} s)")  # fmt: skip
    if out is not None:
        save_figures(out, example, config, histories, models)
    return {
        "models": models,
        "majority_rate": majority_rate(y_train, y_test),
        "num_classes": label_map.num_classes,
        "class_codes": [str(code) for code in label_map.codes],
        "class_imbalance": imbalance.to_dict(),
        "load_report": load_report_counts(report),
        "preprocessing_seconds": round(preprocessing_seconds, 1),
        "histories": histories,
    }


def _example_image(data_dir):
    """The first test image of the folder as read (the figure's input)."""
    index = index_imageclef(data_dir)
    split = index.test if len(index.test.paths) else index.train
    return read_radiograph(split.paths[0])


def preprocessing_figure(image, size=64):
    """One radiograph through the six inputs: a 2 x 4 grid (original, then each input).

    Enhanced inputs show their three channels side by side (original, NL-means, CLAHE).

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    figure = matplotlib.figure.Figure(figsize=(16, 7.5))
    axes = figure.subplots(2, 4)
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title(f"original {image.shape[0]} x {image.shape[1]}")
    axes[1, 0].axis("off")
    for column, padding in enumerate((None, "wrap", "constant"), start=1):
        label = {None: "resize", "wrap": "repetitive", "constant": "constant"}[padding]
        plain = prepare_radiograph(image, padding, (size, size), enhanced=False)
        enhanced = prepare_radiograph(image, padding, (size, size), enhanced=True)
        axes[0, column].imshow(plain[..., 0], cmap="gray")
        axes[0, column].set_title(label)
        axes[1, column].imshow(np.concatenate(list(np.moveaxis(enhanced, -1, 0)), 1), cmap="gray")
        axes[1, column].set_title(f"{label}_enhanced: original | NL-means | CLAHE", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    figure.tight_layout()
    return figure


def save_figures(out, image, config, histories, models):
    """Writes ``preprocessing.png``, ``learning_curves.png`` and ``accuracy.png`` to `out`."""
    curves = matplotlib.figure.Figure(figsize=(13, 4.5))
    axes = curves.subplots(1, 2)
    plot_learning_curves(histories, metric="loss", ax=axes[0])
    plot_learning_curves(histories, metric="accuracy", ax=axes[1])
    for ax in axes:
        ax.set_title(f"{ax.get_ylabel() or ''} (solid: training, dashed: test)")
    bars = matplotlib.figure.Figure(figsize=(9, 4))
    plot_paper_comparison(models, PAPER, metric="accuracy", ax=bars.subplots())
    write_figures(
        out,
        {
            "preprocessing.png": preprocessing_figure(image, config.image_size),
            "learning_curves.png": curves,
            "accuracy.png": bars,
        },
    )
