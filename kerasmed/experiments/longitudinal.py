"""Experiment ``tlstm`` (paper 000): time-modulated LSTM on simulated longitudinal exams.

The path, as in the paper: (1) train an image CNN on single exams (the single-image baseline);
(2) freeze it and precompute every exam's features; (3) train the sequence models on
``[features, previous labels, time lapse]``; (4) report PPV, NPV and F-measure per label on the
last exam of each test sequence (Table 3).

The same functions drive ``kerasmed reproduce tlstm`` and ``notebooks/01_time_modulated_lstm.ipynb``;
their settings are a `TlstmConfig` (presets: `kerasmed.experiments.presets.longitudinal`).
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from kerasmed.callbacks import PreciseBatchNorm
from kerasmed.data import SequenceDataset, simulate_longitudinal_digits
from kerasmed.data.exam_batches import ExamDataset, last_exam_rows, streams_images
from kerasmed.experiments.common import progress, start_run, write_figures
from kerasmed.experiments.presets.longitudinal import (
    PRESETS,
    SEQUENCE_MODELS,
    SequenceModel,
    TlstmConfig,
)
from kerasmed.io import load_longitudinal_npz
from kerasmed.metrics import multilabel_report
from kerasmed.models.longitudinal import (
    build_lstm_model,
    build_single_image_model,
    build_tlstm_model,
)
from kerasmed.plotting import plot_image_sequence, plot_learning_curves, plot_paper_comparison
from kerasmed.preprocessing import encode_time_deltas, previous_labels

__all__ = [
    "PAPER",
    "PRESETS",
    "SEQUENCE_MODELS",
    "SequenceModel",
    "TlstmConfig",
    "build_image_cnn",
    "build_sequence_model",
    "exam_features",
    "exam_rows",
    "load_data",
    "one_step_mlp",
    "predict_last",
    "run",
    "save_figures",
    "sequence_inputs",
    "time_encoding_kwargs",
    "train_image_cnn",
    "train_sequence_model",
]

# Table 3 of the paper (simulated data; AlexNet features), transposed: one row per label (and
# the average), one column per model and metric.
_TABLE_3 = """
       single_image          lstm                  tlstm_v1              tlstm_v2
       ppv    npv    f       ppv    npv    f       ppv    npv    f       ppv    npv    f
0      0.5721 0.8096 0.5113  0.5223 0.8345 0.5514  0.9209 0.9713 0.9227  0.9350 0.9255 0.8579
6      0.8303 0.8922 0.8793  0.8448 0.8716 0.8794  0.9823 0.9758 0.9823  0.9516 0.9443 0.9556
8      0.7771 0.9143 0.8451  0.7834 0.9050 0.8445  0.9714 0.9620 0.9654  0.9459 0.9517 0.9476
3      0.5157 0.9068 0.4869  0.4847 0.9147 0.5028  0.7740 0.9641 0.7856  0.7050 0.9413 0.6836
9      0.8199 0.9410 0.8928  0.8314 0.9552 0.9014  0.9892 0.9898 0.9919  0.9838 0.9816 0.9870
avg    0.7030 0.8927 0.7231  0.6933 0.8962 0.7359  0.9276 0.9726 0.9296  0.9043 0.9489 0.8864
"""


def _parse_table(text):
    models, metrics, *rows = (line.split() for line in text.strip("\n").splitlines())
    names = {"ppv": "ppv", "npv": "npv", "f": "f_measure"}
    columns = [(models[i // len(names)], names[key]) for i, key in enumerate(metrics)]
    table = {model: {metric: {} for metric in names.values()} for model in models}
    for label, *values in rows:
        for (model, metric), value in zip(columns, values, strict=True):
            table[model][metric][label] = float(value)
    return table


PAPER = _parse_table(_TABLE_3)


def load_data(config, data_dir=None, seed=0):
    """Returns ``(train, test)`` `LongitudinalSequences`: simulated, or ``data_dir/sequences.npz``.

    ``data_dir`` is a folder written by ``data_prep/longitudinal_manifest.py``; its sequences
    are split 80/20 by patient. Its images stay on disk (`kerasmed.io.sequences.MappedImages`:
    the file is written uncompressed) and the image CNN's stages read them a batch at a time
    (`kerasmed.data.exam_batches.ExamDataset`); a compressed file from an older prep run is
    read into memory (see `kerasmed.io.load_longitudinal_npz`).
    """
    if data_dir is None:
        data = simulate_longitudinal_digits(
            config.num_train + config.num_test,
            image_size=config.image_size,
            noise=config.noise,
            seed=seed,
        )
        return data.split(test_size=config.num_test, seed=seed)
    data = load_longitudinal_npz(Path(data_dir) / "sequences.npz")
    return data.split(test_size=0.2, seed=seed)


def time_encoding_kwargs(train, encoding):
    """Encoding arguments fitted on the training lapses (e.g. one-hot up to the largest δ)."""
    if encoding == "one_hot":
        return {"max_delta": int(np.ceil(max(float(np.max(d)) for d in train.deltas)))}
    if encoding == "scaled":
        return {"scale": float(np.mean(np.concatenate(train.deltas))) or 1.0}
    return {}


def build_image_cnn(config, num_labels=5, image_size=None):
    """The single-image CNN of a config (untrained); `train_image_cnn` trains it."""
    size = image_size or config.image_size
    return build_single_image_model(
        num_labels,
        (size, size, 1),
        backbone_kwargs={"filters": config.cnn_filters, "feature_dim": config.feature_dim},
    )


class _PreciseBatchNormBeforeValidation(PreciseBatchNorm):
    """`PreciseBatchNorm` when each epoch's validation begins (``fit`` validates before
    ``on_epoch_end``): the validation loss is then that of the model as it predicts."""

    def on_test_begin(self, logs=None):
        super().on_epoch_end(None)

    def on_epoch_end(self, epoch, logs=None):
        pass


def train_image_cnn(train, config, seed=0, verbose=True):
    """Stage 1: the single-image CNN on every exam of the training sequences.

    The last 10% of the exams validate each epoch. With ``config.cnn_precise_bn`` > 0, that
    many training exams re-estimate BatchNorm's statistics before each validation
    (`kerasmed.callbacks.PreciseBatchNorm`): Keras's moving averages lag the weights, which
    made the validation loss jump between epochs and the last exams' predictions depend on
    where training stopped (the quick preset, TensorFlow, seed 0: 1.11, 1.50, 0.55, 0.71, 0.34,
    0.34 with the moving averages, 0.375 falling to 0.238 with re-estimated ones; seed 1: the
    single-image average F was 0.26 with the moving averages, 0.78 with re-estimated ones).

    Returns:
        ``(model, history)``; ``model.layers[1]`` is the backbone that makes the features.
    """
    keras.utils.set_random_seed(seed)
    x, y, data_kwargs = _image_cnn_data(train, config, seed)
    model = build_image_cnn(config, train.num_labels, train.images[0].shape[1])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["binary_accuracy"])
    callbacks = progress("single-image CNN", verbose)
    if config.cnn_precise_bn:
        callbacks.insert(
            0, _PreciseBatchNormBeforeValidation(_precise_bn_exams(train, config, seed))
        )
    history = model.fit(
        x,
        y,
        **data_kwargs,
        epochs=config.cnn_epochs,
        verbose=0,
        callbacks=callbacks,
    )
    return model, history.history


def _precise_bn_exams(train, config, seed, validation_split=0.1):
    """``config.cnn_precise_bn`` exams drawn from those stage 1 trains on (not the held-out
    last 10%), as ``(n, H, W, 1)``; streamed sequences are read from their map."""
    n_fit = int(np.floor(int(train.lengths.sum()) * (1.0 - validation_split)))
    take = np.sort(np.random.default_rng(seed).permutation(n_fit)[: config.cnn_precise_bn])
    if not streams_images(train):
        return train.all_exams()[0][take, ..., None]
    return ExamDataset(train, take, batch_size=len(take), labels=False)[0]


def _image_cnn_data(train, config, seed, validation_split=0.1):
    """What stage 1's ``fit`` reads: ``(x, y, kwargs)``.

    In memory (simulated data): the arrays of every exam, Keras holding out the last 10% of
    them for validation. Streamed (`MappedImages`): `ExamDataset` batches read from the map,
    with the same last 10% of exams held out and the rest shuffled every epoch.
    """
    if not streams_images(train):
        images, labels = train.all_exams()
        kwargs = {"batch_size": config.batch_size, "validation_split": validation_split}
        return images[..., None], labels, kwargs
    exams = np.arange(int(train.lengths.sum()))
    split_at = int(np.floor(len(exams) * (1.0 - validation_split)))  # as Keras splits arrays
    data = ExamDataset(train, exams[:split_at], config.batch_size, shuffle=True, seed=seed)
    held_out = ExamDataset(train, exams[split_at:], config.batch_size)
    return data, None, {"validation_data": held_out}


def exam_features(backbone, sequences, batch_size=256):
    """Stage 2: runs the frozen backbone on every exam; returns one ``(T_i, D)`` array per sequence.

    Streamed sequences (`MappedImages`) are read a batch at a time (`ExamDataset`); only the
    features, ``(N, D)`` float32, are kept.
    """
    if streams_images(sequences):
        batches = ExamDataset(sequences, batch_size=batch_size, labels=False)
        features = backbone.predict(batches, verbose=0)
    else:
        images, _ = sequences.all_exams()
        features = backbone.predict(images[..., None], batch_size=batch_size, verbose=0)
    return np.split(features, np.cumsum(sequences.lengths)[:-1])


def _last_exam_scores(model, sequences, batch_size=32):
    """The image CNN's scores ``(S, L)`` and the labels ``(S, L)`` of each sequence's last exam."""
    if streams_images(sequences):
        labels = np.stack([y[-1] for y in sequences.labels]).astype("float32", copy=False)
        batches = ExamDataset(sequences, last_exam_rows(sequences), batch_size, labels=False)
        return model.predict(batches, verbose=0), labels
    images, labels = sequences.last_exam()
    return model.predict(images[..., None], batch_size=batch_size, verbose=0), labels


def sequence_inputs(
    sequences, features, encoding="raw", shuffle_time=False, seed=0, **encoding_kwargs
):
    """The sequence models' inputs: ``{"features", "previous_labels", "time"}`` lists and targets.

    With ``shuffle_time=True`` the lapses of each sequence are permuted (δ_1 = 0 stays first),
    which breaks the link between δ and what happens next: the classroom check that the
    tLSTM's gain comes from time.
    """
    deltas = list(sequences.deltas)
    if shuffle_time:
        rng = np.random.default_rng(seed)
        deltas = [np.concatenate([d[:1], rng.permutation(d[1:])]) for d in deltas]
    inputs = {
        "features": list(features),
        "previous_labels": [previous_labels(y) for y in sequences.labels],
        "time": [encode_time_deltas(d, encoding, **encoding_kwargs) for d in deltas],
    }
    return inputs, list(sequences.labels)


def build_sequence_model(
    spec, num_labels, feature_dim, time_features, units, return_sequences, name
):
    """Builds the model that `spec` (a `SequenceModel`, see `SEQUENCE_MODELS`) describes."""
    if spec.kind == "lstm":
        return build_lstm_model(
            num_labels,
            units,
            feature_dim=feature_dim,
            time_features=time_features,
            use_time=spec.use_time,
            return_sequences=return_sequences,
            name=name,
        )
    return build_tlstm_model(
        num_labels,
        units,
        version=spec.version,
        feature_dim=feature_dim,
        time_features=time_features,
        return_sequences=return_sequences,
        name=name,
    )


def train_sequence_model(name, spec, train_inputs, train_targets, config, seed=0, verbose=True):
    """Stage 3: trains one sequence model on precomputed features.

    Returns:
        ``(model, history)``.
    """
    keras.utils.set_random_seed(seed)
    every_step = config.supervise_every_step
    model = build_sequence_model(
        spec,
        num_labels=train_targets[0].shape[-1],
        feature_dim=train_inputs["features"][0].shape[-1],
        time_features=train_inputs["time"][0].shape[-1],
        units=config.units,
        return_sequences=every_step,
        name=name,
    )
    model.compile(keras.optimizers.Adam(config.learning_rate), "binary_crossentropy")
    n = len(train_targets)
    order = np.random.default_rng(seed).permutation(n)
    val, fit = np.sort(order[: max(1, n // 10)]), np.sort(order[max(1, n // 10) :])

    # One padded length for every batch: TensorFlow fixes the batch shape from the first
    # batches it sees, and one shape also means one trace per model on every backend.
    max_length = max(len(t) for t in train_targets)

    def dataset(indices, shuffle):
        return SequenceDataset(
            {k: [v[i] for i in indices] for k, v in train_inputs.items()},
            [train_targets[i] for i in indices],
            batch_size=config.batch_size,
            shuffle=shuffle,
            seed=seed,
            target="all" if every_step else "last",
            max_length=max_length,
        )

    history = model.fit(
        dataset(fit, True),
        validation_data=dataset(val, False),
        epochs=config.seq_epochs,
        verbose=0,
        callbacks=progress(name, verbose),
    )
    return model, history.history


def exam_rows(sequences, features, last_only=False, encoding="one_hot", **encoding_kwargs):
    """One row per exam: its features, the previous exam's labels and δ; the targets its labels.

    The inputs a memoryless model gets (`one_step_mlp`): what the sequence models see at each
    step, without the recurrence. ``last_only=True`` keeps the last exam of each sequence (what
    the sequence models are evaluated on).

    Returns:
        ``(x, y)``: ``(rows, feature_dim + num_labels + time features)`` float32 and
        ``(rows, num_labels)`` arrays.
    """
    x, y = sequence_inputs(sequences, features, encoding, **encoding_kwargs)
    keep = slice(-1, None) if last_only else slice(None)
    rows = [
        np.concatenate(
            [x["features"][i][keep], x["previous_labels"][i][keep], x["time"][i][keep]], -1
        )
        for i in range(len(sequences))
    ]
    return np.concatenate(rows).astype("float32"), np.concatenate([t[keep] for t in y])


def one_step_mlp(backbone, train, test, encoding="one_hot", units=64, epochs=10, seed=0):
    """A memoryless baseline: an MLP on `exam_rows` (features, previous labels, δ) of each exam.

    Trained on every training exam, evaluated on the last test exams like the sequence models;
    it answers "how much of the sequence models' gain needs a memory at all?".

    Args:
        backbone: the image CNN's feature extractor (as `exam_features` takes it).
        train, test: `kerasmed.io.LongitudinalSequences`.
        encoding: the time encoding of δ (`time_encoding_kwargs` fits it on `train`).
        units, epochs, seed: the MLP's hidden units, epochs and seed.

    Returns:
        The `kerasmed.metrics.multilabel_report` of the last test exams.
    """
    kw = time_encoding_kwargs(train, encoding)
    x_train, y_train = exam_rows(train, exam_features(backbone, train), False, encoding, **kw)
    x_test, y_test = exam_rows(test, exam_features(backbone, test), True, encoding, **kw)
    keras.utils.set_random_seed(seed)
    mlp = keras.Sequential(
        [
            keras.Input(x_train.shape[1:]),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(y_train.shape[-1], activation="sigmoid"),
        ]
    )
    mlp.compile("adam", "binary_crossentropy")
    mlp.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    return multilabel_report(y_test, mlp.predict(x_test, verbose=0), train.label_names)


def predict_last(model, inputs, batch_size=64):
    """Scores ``(S, L)`` for the last real exam of each sequence (works for both output kinds)."""
    lengths = np.array([len(x) for x in inputs["features"]])
    # one common padded length, so that per-step outputs of all batches can be concatenated
    batches = SequenceDataset(
        inputs, None, batch_size=batch_size, shuffle=False, max_length=int(lengths.max())
    )
    scores = model.predict(batches, verbose=0)
    if scores.ndim == 3:
        scores = scores[np.arange(len(scores)), lengths - 1]
    return scores


def run(preset="quick", data_dir=None, out=None, seed=0, verbose=True, **overrides):
    """Runs the whole experiment; returns ``{"models": ..., "histories": ..., ...}``.

    Args:
        preset: ``"quick"`` (2-core CPU, minutes) or ``"paper"`` (GPU).
        data_dir: folder with ``sequences.npz`` from ``data_prep/longitudinal_manifest.py``;
            ``None`` simulates the paper's digit sequences.
        out: folder for the PNG figures and the trained image CNN's weights
            (``single_image.weights.h5``, see `build_image_cnn`), or ``None``.
        seed: seed of the data, the splits and every model (the i-th of `SEQUENCE_MODELS`
            gets ``seed + i``, counted from 1).
        verbose: Keras progress bars and stage messages.
        **overrides: `TlstmConfig` fields to change for this run, e.g. ``encoding="log"``.

    Example:

    >>> from kerasmed.experiments import run_experiment
    >>> results = run_experiment("tlstm", "quick", out="results/tlstm")  # doctest: +SKIP
    """
    config, log = start_run(PRESETS, preset, overrides, "tlstm", verbose)
    train, test = load_data(config, data_dir, seed)
    log(f"{len(train)} training and {len(test)} test sequences, {train.num_labels} labels")
    enc_kwargs = time_encoding_kwargs(train, config.encoding)

    start = time.perf_counter()
    cnn, cnn_history = train_image_cnn(train, config, seed, verbose)
    single_image_scores, test_labels = _last_exam_scores(cnn, test)
    scores = {"single_image": single_image_scores}
    histories = {"single_image": cnn_history}
    log(f"single-image CNN trained in {time.perf_counter() - start:.0f} s")

    backbone = cnn.layers[1]
    backbone.trainable = False
    train_features, test_features = exam_features(backbone, train), exam_features(backbone, test)
    for name in config.models:
        spec, i = SEQUENCE_MODELS[name], 1 + tuple(SEQUENCE_MODELS).index(name)
        start = time.perf_counter()
        encoding = config.encoding if spec.encoding == "config" else spec.encoding
        kwargs = enc_kwargs if encoding == config.encoding else {}
        shuffle = spec.shuffle_time
        x_train, y_train = sequence_inputs(train, train_features, encoding, shuffle, seed, **kwargs)
        x_test, _ = sequence_inputs(test, test_features, encoding, shuffle, seed + 1, **kwargs)
        model, histories[name] = train_sequence_model(
            name, spec, x_train, y_train, config, seed + i, verbose
        )
        scores[name] = predict_last(model, x_test)
        log(f"{name} trained in {time.perf_counter() - start:.0f} s")

    models = {
        name: multilabel_report(test_labels, s, train.label_names) for name, s in scores.items()
    }
    if out is not None:
        save_figures(out, test, models, histories)
        cnn.save_weights(str(Path(out) / "single_image.weights.h5"))
    return {
        "models": models,
        "time_encoding": {"encoded": config.encoding, **enc_kwargs},
        "supervise_every_step": config.supervise_every_step,
        "num_sequences": {"train": len(train), "test": len(test)},
        "histories": histories,
    }


def save_figures(out, test, models, histories):
    """Writes ``sequence.png``, ``learning_curves.png`` and ``f_measure.png`` to `out`."""
    write_figures(
        out,
        {
            "sequence.png": plot_image_sequence(
                test.images[0], test.labels[0], test.deltas[0], test.label_names
            ),
            "learning_curves.png": plot_learning_curves(histories),
            "f_measure.png": plot_paper_comparison(models, PAPER),
        },
    )
