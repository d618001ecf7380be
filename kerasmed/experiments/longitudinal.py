"""Experiment ``tlstm`` (paper 000): time-modulated LSTM on simulated longitudinal exams.

The path, as in the paper: (1) train an image CNN on single exams (the single-image baseline);
(2) freeze it and precompute every exam's features; (3) train the sequence models on
``[features, previous labels, time lapse]``; (4) report PPV, NPV and F-measure per label on the
last exam of each test sequence (Table 3).

The same functions drive ``kerasmed reproduce tlstm`` and ``notebooks/01_time_modulated_lstm.ipynb``.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from kerasmed.callbacks import EpochProgressBar
from kerasmed.data import SequenceDataset, simulate_longitudinal_digits
from kerasmed.io import load_longitudinal_npz
from kerasmed.metrics import multilabel_report
from kerasmed.models.longitudinal import (
    build_lstm_model,
    build_single_image_model,
    build_tlstm_model,
)
from kerasmed.preprocessing import encode_time_deltas, previous_labels

PRESETS = {
    "quick": {
        "num_train": 400,
        "num_test": 400,
        "image_size": 48,
        "cnn_filters": (16, 32, 64),
        "feature_dim": 64,
        "cnn_epochs": 6,
        "units": 64,
        "seq_epochs": 30,
        "batch_size": 32,
        "learning_rate": 3e-3,
        "supervise_every_step": True,
        "encoding": "one_hot",
    },
    "paper": {
        "num_train": 5000,
        "num_test": 1000,
        "image_size": 64,
        "cnn_filters": (32, 64, 128, 256),
        "feature_dim": 256,
        "cnn_epochs": 30,
        "units": 256,
        "seq_epochs": 100,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "supervise_every_step": False,
        "encoding": "one_hot",
    },
}

# Table 3 of the paper (simulated data; AlexNet features).
_LABELS = ("0", "6", "8", "3", "9")


def _table(ppv, npv, f):
    def row(values):
        return {**dict(zip(_LABELS, values[:5])), "avg": values[5]}

    return {"ppv": row(ppv), "npv": row(npv), "f_measure": row(f)}


PAPER = {
    "single_image": _table(
        (0.5721, 0.8303, 0.7771, 0.5157, 0.8199, 0.7030),
        (0.8096, 0.8922, 0.9143, 0.9068, 0.9410, 0.8927),
        (0.5113, 0.8793, 0.8451, 0.4869, 0.8928, 0.7231),
    ),
    "lstm": _table(
        (0.5223, 0.8448, 0.7834, 0.4847, 0.8314, 0.6933),
        (0.8345, 0.8716, 0.9050, 0.9147, 0.9552, 0.8962),
        (0.5514, 0.8794, 0.8445, 0.5028, 0.9014, 0.7359),
    ),
    "tlstm_v1": _table(
        (0.9209, 0.9823, 0.9714, 0.7740, 0.9892, 0.9276),
        (0.9713, 0.9758, 0.9620, 0.9641, 0.9898, 0.9726),
        (0.9227, 0.9823, 0.9654, 0.7856, 0.9919, 0.9296),
    ),
    "tlstm_v2": _table(
        (0.9350, 0.9516, 0.9459, 0.7050, 0.9838, 0.9043),
        (0.9255, 0.9443, 0.9517, 0.9413, 0.9816, 0.9489),
        (0.8579, 0.9556, 0.9476, 0.6836, 0.9870, 0.8864),
    ),
}

# name -> how the sequence model is built and fed. "encoding": "raw" is the paper's δ;
# "preset" takes the preset's encoding. "shuffle_time" permutes δ within each sequence.
SEQUENCE_MODELS = {
    "lstm": {"kind": "lstm", "encoding": "raw"},
    "lstm_with_delta": {"kind": "lstm", "encoding": "preset", "use_time": True},
    "tlstm_v1": {"kind": "tlstm", "version": 1, "encoding": "raw"},
    "tlstm_v2": {"kind": "tlstm", "version": 2, "encoding": "raw"},
    "tlstm_v1_encoded": {"kind": "tlstm", "version": 1, "encoding": "preset"},
    "tlstm_v2_encoded": {"kind": "tlstm", "version": 2, "encoding": "preset"},
    "tlstm_v1_shuffled_delta": {
        "kind": "tlstm",
        "version": 1,
        "encoding": "preset",
        "shuffle_time": True,
    },
}


def _progress(description, verbose):
    return [EpochProgressBar(description, keys=("loss", "val_loss"))] if verbose else []


def load_data(preset="quick", data_dir=None, seed=0):
    """Returns ``(train, test)`` `LongitudinalSequences`: simulated, or ``data_dir/sequences.npz``.

    ``data_dir`` is a folder written by ``data_prep/longitudinal_manifest.py``; its sequences
    are split 80/20 by patient.
    """
    cfg = PRESETS[preset]
    if data_dir is None:
        data = simulate_longitudinal_digits(
            cfg["num_train"] + cfg["num_test"], image_size=cfg["image_size"], seed=seed
        )
        return data.split(test_size=cfg["num_test"], seed=seed)
    data = load_longitudinal_npz(Path(data_dir) / "sequences.npz")
    return data.split(test_size=0.2, seed=seed)


def time_encoding_kwargs(train, encoding):
    """Encoding arguments fitted on the training lapses (e.g. one-hot up to the largest δ)."""
    if encoding == "one_hot":
        return {"max_delta": int(np.ceil(max(float(np.max(d)) for d in train.deltas)))}
    if encoding == "scaled":
        return {"scale": float(np.mean(np.concatenate(train.deltas))) or 1.0}
    return {}


def build_image_cnn(preset="quick", num_labels=5, image_size=None):
    """The single-image CNN of a preset (untrained); `train_image_cnn` trains it."""
    cfg = PRESETS[preset]
    size = image_size or cfg["image_size"]
    return build_single_image_model(
        num_labels,
        (size, size, 1),
        backbone_kwargs={"filters": cfg["cnn_filters"], "feature_dim": cfg["feature_dim"]},
    )


def train_image_cnn(train, preset="quick", seed=0, verbose=True):
    """Stage 1: the single-image CNN on every exam of the training sequences.

    Returns:
        ``(model, history)``; ``model.layers[1]`` is the backbone that makes the features.
    """
    cfg = PRESETS[preset]
    keras.utils.set_random_seed(seed)
    images, labels = train.all_exams()
    model = build_image_cnn(preset, train.num_labels, images.shape[1])
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", metrics=["binary_accuracy"])
    history = model.fit(
        images[..., None],
        labels,
        batch_size=cfg["batch_size"],
        epochs=cfg["cnn_epochs"],
        validation_split=0.1,
        verbose=0,
        callbacks=_progress("single-image CNN", verbose),
    )
    return model, history.history


def exam_features(backbone, sequences, batch_size=256):
    """Stage 2: runs the frozen backbone on every exam; returns one ``(T_i, D)`` array per sequence."""
    images, _ = sequences.all_exams()
    features = backbone.predict(images[..., None], batch_size=batch_size, verbose=0)
    return np.split(features, np.cumsum(sequences.lengths)[:-1])


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
    """Builds one entry of `SEQUENCE_MODELS`."""
    if spec["kind"] == "lstm":
        return build_lstm_model(
            num_labels,
            units,
            feature_dim=feature_dim,
            time_features=time_features,
            use_time=spec.get("use_time", False),
            return_sequences=return_sequences,
            name=name,
        )
    return build_tlstm_model(
        num_labels,
        units,
        version=spec["version"],
        feature_dim=feature_dim,
        time_features=time_features,
        return_sequences=return_sequences,
        name=name,
    )


def train_sequence_model(
    name, spec, train_inputs, train_targets, preset="quick", seed=0, verbose=True
):
    """Stage 3: trains one sequence model on precomputed features.

    Returns:
        ``(model, history)``.
    """
    cfg = PRESETS[preset]
    keras.utils.set_random_seed(seed)
    every_step = cfg["supervise_every_step"]
    model = build_sequence_model(
        spec,
        num_labels=train_targets[0].shape[-1],
        feature_dim=train_inputs["features"][0].shape[-1],
        time_features=train_inputs["time"][0].shape[-1],
        units=cfg["units"],
        return_sequences=every_step,
        name=name,
    )
    model.compile(keras.optimizers.Adam(cfg["learning_rate"]), "binary_crossentropy")
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
            batch_size=cfg["batch_size"],
            shuffle=shuffle,
            seed=seed,
            target="all" if every_step else "last",
            max_length=max_length,
        )

    history = model.fit(
        dataset(fit, True),
        validation_data=dataset(val, False),
        epochs=cfg["seq_epochs"],
        verbose=0,
        callbacks=_progress(name, verbose),
    )
    return model, history.history


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


def run(preset="quick", data_dir=None, out=None, seed=0, verbose=True):
    """Runs the whole experiment; returns ``{"models": ..., "histories": ..., ...}``.

    Args:
        preset: ``"quick"`` (2-core CPU, minutes) or ``"paper"`` (GPU).
        data_dir: folder with ``sequences.npz`` from ``data_prep/longitudinal_manifest.py``;
            ``None`` simulates the paper's digit sequences.
        out: folder for the PNG figures and the trained image CNN's weights
            (``single_image.weights.h5``, see `build_image_cnn`), or ``None``.
        seed: seed of the data, the splits and every model.
        verbose: Keras progress bars and stage messages.

    Example:

    >>> from kerasmed.experiments import run_experiment
    >>> results = run_experiment("tlstm", "quick", out="results/tlstm")  # doctest: +SKIP
    """
    cfg = PRESETS[preset]
    log = print if verbose else (lambda *a, **k: None)
    train, test = load_data(preset, data_dir, seed)
    log(f"[tlstm] {len(train)} training and {len(test)} test sequences, {train.num_labels} labels")
    enc_kwargs = time_encoding_kwargs(train, cfg["encoding"])

    start = time.perf_counter()
    cnn, cnn_history = train_image_cnn(train, preset, seed, verbose)
    test_images, test_labels = test.last_exam()
    scores = {"single_image": cnn.predict(test_images[..., None], verbose=0)}
    histories = {"single_image": cnn_history}
    log(f"[tlstm] single-image CNN trained in {time.perf_counter() - start:.0f} s")

    backbone = cnn.layers[1]
    backbone.trainable = False
    train_features, test_features = exam_features(backbone, train), exam_features(backbone, test)
    for i, (name, spec) in enumerate(SEQUENCE_MODELS.items(), start=1):
        start = time.perf_counter()
        encoding = cfg["encoding"] if spec["encoding"] == "preset" else spec["encoding"]
        kwargs = enc_kwargs if encoding == cfg["encoding"] else {}
        shuffle = spec.get("shuffle_time", False)
        x_train, y_train = sequence_inputs(train, train_features, encoding, shuffle, seed, **kwargs)
        x_test, _ = sequence_inputs(test, test_features, encoding, shuffle, seed + 1, **kwargs)
        model, histories[name] = train_sequence_model(
            name, spec, x_train, y_train, preset, seed + i, verbose
        )
        scores[name] = predict_last(model, x_test)
        log(f"[tlstm] {name} trained in {time.perf_counter() - start:.0f} s")

    models = {
        name: multilabel_report(test_labels, s, train.label_names) for name, s in scores.items()
    }
    if out is not None:
        save_figures(out, test, models, histories)
        cnn.save_weights(str(Path(out) / "single_image.weights.h5"))
    return {
        "models": models,
        "time_encoding": {"encoded": cfg["encoding"], **enc_kwargs},
        "supervise_every_step": cfg["supervise_every_step"],
        "num_sequences": {"train": len(train), "test": len(test)},
        "histories": histories,
    }


def save_figures(out, test, models, histories):
    """Writes ``sequence.png``, ``learning_curves.png`` and ``f_measure.png`` to `out`."""
    from kerasmed.plotting import plot_image_sequence, plot_learning_curves, plot_paper_comparison

    out = Path(out)
    figures = {
        "sequence.png": plot_image_sequence(
            test.images[0], test.labels[0], test.deltas[0], test.label_names
        ),
        "learning_curves.png": plot_learning_curves(histories),
        "f_measure.png": plot_paper_comparison(models, PAPER),
    }
    for filename, figure in figures.items():
        figure.savefig(out / filename, dpi=100)
