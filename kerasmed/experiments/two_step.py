"""Experiment ``two-step`` (paper 003): lung-area slices, a 2D CNN's embeddings, BiLSTM and Swin heads.

The path, as in Hsu et al. (2022) and the authors' code: (1) per scan, the window of
``ceil(0.5 n)`` contiguous slices with the largest lung area
(`kerasmed.preprocessing.select_lung_slices`); (2) train the 2D slice CNN on 16 slices drawn per
scan from its window (8 scans a batch, binary cross-entropy, torch's Adam with coupled L2:
`kerasmed.optimizers.AdamL2`); (3) its scan predictions: the mean of one draw of 16 window
slices (``cnn_2d``) and Mean-N over N draws (``cnn_2d_mean10``, ``cnn_2d_mean50``), with the
macro-F1 of every single draw (the paper's spread 0.920 ... 0.938); (4) embed every slice of
every scan with the CNN's pre-logit layer; (5) train the BiLSTM head on sorted sequences of
sampled embeddings (AdamW, cosine schedule with warm-up) and the Swin head on the sorted
embedding matrix (SGD with momentum, cosine schedule, label smoothing); (6) the ensemble,
the mean probability of both heads and the 2D CNN Mean-10 (the authors' final submission);
(7) sensitivity, specificity and macro-F1 at threshold 0.5 (the paper's Table 1) and ROC AUC
with DeLong 95% CIs, on the test scans.

The embedded data are phantom chest CTs (`kerasmed.data.simulate_chest_ct`) in HU: the window
is chosen on the HU scan, the CNN reads its 8-bit lung-window slices
(`kerasmed.data.to_8bit_slices`), as COV19-CT-DB ships them.

The same functions, configured by a `TwoStepConfig` (see
`kerasmed.experiments.presets.two_step`), drive ``kerasmed reproduce two-step`` and
``notebooks/04_two_step_ct.ipynb``.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import sklearn.model_selection

from kerasmed.callbacks import KeepBestWeights, PreciseBatchNorm, ValidationScore
from kerasmed.data import (
    EmbeddingSequenceDataset,
    WindowSliceDataset,
    sample_sequence_slices,
    simulate_chest_ct,
)
from kerasmed.experiments.common import logger, progress, start_run
from kerasmed.experiments.presets.two_step import PRESETS, TwoStepConfig
from kerasmed.experiments.two_step_cov19 import load_data_dir, model_slices, select_windows
from kerasmed.experiments.two_step_figures import (
    plot_draw_spread,
    plot_embedding_matrix,
    plot_lung_window,
    save_figures,
)
from kerasmed.metrics import binary_report, macro_f1, roc_auc_ci
from kerasmed.models.two_step import (
    build_slice_embedder,
    build_two_step_lstm,
    build_two_step_swin,
    slice_embedding_model,
)
from kerasmed.models.two_step_inference import embed_scans, ensemble_probabilities, predict_scans
from kerasmed.optimizers import AdamL2
from kerasmed.validation import check_one_of, check_positive_int

__all__ = [
    "PAPER",
    "PRESETS",
    "TwoStepConfig",
    "build_head",
    "evaluate",
    "heads_predictions",
    "hold_out_validation",
    "load_data",
    "plot_draw_spread",
    "plot_embedding_matrix",
    "plot_lung_window",
    "predict_cnn",
    "run",
    "select_windows",
    "split",
    "train_head",
    "train_slice_cnn",
]

# Table 1 of the paper (COV19-CT-DB validation set). The text gives one SE for the three 2D CNN
# rows (0.893, the single-draw model's) and no SP for them: those entries are left out.
PAPER = {
    "adleast": {"sensitivity": 0.833, "specificity": 0.978, "macro_f1": 0.911},
    "cnn_2d": {"sensitivity": 0.893, "macro_f1": 0.930},
    "cnn_2d_mean10": {"macro_f1": 0.936},
    "cnn_2d_mean50": {"macro_f1": 0.937},
    "two_step_lstm": {"sensitivity": 0.900, "specificity": 0.959, "macro_f1": 0.932},
    "two_step_swin": {"sensitivity": 0.879, "specificity": 0.981, "macro_f1": 0.934},
}
# Section 3.2: single draws of the 2D CNN give macro-F1 between these.
PAPER_SINGLE_DRAW_F1 = (0.920, 0.938)


def split(labels, config, seed=0):
    """Stratified train / test indices in the proportions of `config`'s sizes."""
    n = len(labels)
    num_test = max(2, round(config.num_test / (config.num_train + config.num_test) * n))
    train, test = sklearn.model_selection.train_test_split(
        np.arange(n), test_size=num_test, stratify=labels, random_state=seed
    )
    return {"train": np.sort(train), "test": np.sort(test)}


def load_data(config, data_dir=None, seed=0, verbose=True):
    """Simulates the scans (or reads `data_dir`), selects windows, splits them.

    `data_dir` is a folder made by ``data_prep/two_step_ct.py`` (its scans are read from disk
    when used) or the COV19-CT-DB release (read whole); `kerasmed.experiments.two_step_cov19`.

    Returns:
        ``{"train" | "test": {"volumes": [HU scans], "slices": [(n, H, W) uint8],
        "windows": [LungSliceSelection], "labels": array}}``; from a prepared folder,
        ``volumes`` and ``slices`` are the same `PreparedScan` items (8-bit model slices).
    """
    log = logger("two-step", verbose)
    if data_dir is not None:
        return load_data_dir(config, data_dir, log)
    data = simulate_chest_ct(
        config.num_train + config.num_test, slice_size=config.slice_size,
        min_slices=config.min_slices, max_slices=config.max_slices,
        mixed_size_fraction=config.mixed_size_fraction, seed=seed,
    )  # fmt: skip
    windows = select_windows(data.volumes, config)
    slices = [model_slices(v, config.slice_size) for v in data.volumes]
    labels = np.asarray(data.labels)
    parts = {}
    for part, index in split(labels, config, seed).items():
        parts[part] = {
            "volumes": [data.volumes[i] for i in index],
            "slices": [slices[i] for i in index],
            "windows": [windows[i] for i in index],
            "labels": labels[index],
        }
        counts = np.bincount(labels[index], minlength=2)
        log(f"{part}: {len(index)} scans ({counts[1]} with GGO, {counts[0]} without)")
    flagged = sum(w.rule != "lung_area" for w in windows)
    log(f"windows: {flagged} of {len(windows)} scans without a lung-area window (reported)")
    return parts


def hold_out_validation(part, num_val, seed=0):
    """Splits a data part (`load_data`'s ``"train"``) into ``(fit, val)``, stratified.

    The validation scans pick the best epoch of every model (the authors keep the checkpoint
    of best validation F1); neither step trains on them.

    Args:
        part: ``{"volumes", "slices", "windows": lists, "labels": array}`` (one entry per scan).
        num_val: scans for validation (at least 2: one per class).
        seed: seed of the split.

    Returns:
        Two dicts of the same keys: the scans to fit and the validation scans (in scan order).
    """
    labels = np.asarray(part["labels"])
    num_val = check_positive_int(num_val, "num_val")
    if not 2 <= num_val <= len(labels) - 2:
        raise ValueError(
            f"`num_val` must leave two training scans and take at least two of the {len(labels)}"
            f" training scans. Received: num_val={num_val}"
        )
    fit, val = sklearn.model_selection.train_test_split(
        np.arange(len(labels)), test_size=num_val, stratify=labels, random_state=seed
    )

    def take(index):
        index = np.sort(index)
        return {k: v[index] if k == "labels" else [v[i] for i in index] for k, v in part.items()}

    return take(fit), take(val)


def _keep_best(score):
    """Callbacks of a ``fit`` that logs ``val_macro_f1 = score(model)`` and keeps its best epoch."""
    best = KeepBestWeights("val_macro_f1", mode="max")
    return best, [ValidationScore(score, "val_macro_f1"), best]


def _cosine(learning_rate, total_steps, warmup_steps):
    warmup_steps = min(max(0, int(warmup_steps)), total_steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else learning_rate,
        decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def train_slice_cnn(data, config, seed=0, verbose=True, validation=None):
    """Step 1: the 2D slice CNN on window draws; returns ``(model, history dict, best epoch)``.

    With a `validation` part (`hold_out_validation`), the weights of the epoch with the best
    validation macro-F1 of the Mean-``config.mean_draws[0]`` scan prediction are kept (the
    authors' best checkpoint by validation F1); the best epoch is ``None`` without one.
    """
    keras.utils.set_random_seed(seed)
    shape = (config.slice_size, config.slice_size, config.channels)
    kwargs = {}
    if config.backbone == "small_cnn":
        kwargs = {"filters": config.cnn_filters, "feature_dim": config.cnn_feature_dim}
    model = build_slice_embedder(
        config.backbone, shape, config.embedding_dim, weights=config.backbone_weights,
        dropout=config.cnn_dropout, **kwargs,
    )  # fmt: skip
    if config.cnn_bn_momentum is not None:
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.cnn_bn_momentum
    model.compile(
        optimizer=AdamL2(config.cnn_learning_rate, weight_decay=config.cnn_weight_decay),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    train = data["train"]
    batches = WindowSliceDataset(
        train["slices"], train["windows"], train["labels"], scans_per_batch=config.scans_per_batch,
        slices_per_scan=config.slices_per_scan, channels=config.channels, seed=seed,
    )  # fmt: skip
    callbacks, best = (
        progress("step 1: 2D CNN", verbose, ("loss", "accuracy", "val_macro_f1")),
        None,
    )
    if config.cnn_precise_bn:  # 8 window slices of every training scan, a fresh draw per epoch
        callbacks.insert(0, PreciseBatchNorm(lambda epoch: WindowSliceDataset(
            train["slices"], train["windows"], train["labels"], len(train["labels"]),
            slices_per_scan=8, channels=config.channels, seed=seed + 1 + epoch,
        )[0][0]))  # fmt: skip
    if validation is not None:

        def score(m):
            p = predict_scans(
                m, validation["slices"], validation["windows"], num_draws=config.mean_draws[0],
                slices_per_scan=config.slices_per_scan, seed=seed, batch_size=config.embed_batch,
            )  # fmt: skip
            return macro_f1(validation["labels"], p.mean)

        best, keep = _keep_best(score)
        callbacks[int(config.cnn_precise_bn) : int(config.cnn_precise_bn)] = keep
    history = model.fit(batches, epochs=config.cnn_epochs, verbose=0, callbacks=callbacks)
    return model, history.history, None if best is None else best.best_epoch


def predict_cnn(model, part, config, seed=0):
    """Scan probabilities of the 2D CNN: `ScanPredictions` over ``max(config.mean_draws)`` draws."""
    return predict_scans(
        model, part["slices"], part["windows"], num_draws=max(config.mean_draws),
        slices_per_scan=config.slices_per_scan, seed=seed, batch_size=config.embed_batch,
    )  # fmt: skip


def build_head(kind, config):
    """The ``"lstm"`` or ``"swin"`` head of step 2, sized by a `TwoStepConfig`.

    Example:

    >>> from kerasmed.experiments import get_config
    >>> build_head("lstm", get_config("two-step", "quick")).output_shape
    (None, 1)
    """
    kind = check_one_of(kind, "kind", ("lstm", "swin"))
    if kind == "lstm":
        return build_two_step_lstm(
            config.lstm_sequence, config.embedding_dim, units=config.lstm_units,
            num_layers=config.lstm_layers, head_units=config.lstm_head_units,
        )  # fmt: skip
    return build_two_step_swin(
        config.swin_slices, config.embedding_dim, preset=config.swin_preset,
        window_size=config.swin_window_size,
    )  # fmt: skip


def train_head(kind, embeddings, labels, config, seed=0, verbose=True, validation=None):
    """Step 2: trains the ``"lstm"`` or ``"swin"`` head; returns ``(model, history, best epoch)``.

    With ``validation=(embeddings, labels)`` the weights of the epoch with the best validation
    macro-F1 (`heads_predictions`, one seeded draw per scan) are kept, as the authors' best
    checkpoint; the best epoch is ``None`` without it.
    """
    keras.utils.set_random_seed(seed)
    model = build_head(kind, config)
    if kind == "lstm":
        length, batch, epochs = config.lstm_sequence, config.lstm_batch, config.lstm_epochs
    else:
        length, batch, epochs = config.swin_slices, config.swin_batch, config.swin_epochs
    dataset = EmbeddingSequenceDataset(
        embeddings, labels, num_slices=length, batch_size=batch, fixed_draws=config.fixed_draws,
        seed=seed,
    )  # fmt: skip
    steps = len(dataset) * epochs
    if kind == "lstm":
        schedule = _cosine(config.lstm_learning_rate, steps, config.lstm_warmup * steps)
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.lstm_weight_decay)
        loss = keras.losses.BinaryCrossentropy()
    else:
        schedule = _cosine(
            config.swin_learning_rate, steps, config.swin_warmup_epochs * len(dataset)
        )
        optimizer = keras.optimizers.SGD(
            schedule, momentum=config.swin_momentum, weight_decay=config.swin_weight_decay
        )
        loss = keras.losses.BinaryCrossentropy(label_smoothing=config.swin_label_smoothing)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    callbacks = progress(f"step 2: {kind} head", verbose, ("loss", "accuracy", "val_macro_f1"))
    best = None
    if validation is not None:
        val_embeddings, val_labels = validation
        best, keep = _keep_best(
            lambda m: macro_f1(val_labels, heads_predictions(m, val_embeddings, length, seed))
        )
        callbacks = keep + callbacks
    history = model.fit(dataset, epochs=epochs, verbose=0, callbacks=callbacks)
    return model, history.history, None if best is None else best.best_epoch


def heads_predictions(model, embeddings, num_slices, seed=0):
    """A head's probability per scan, on one seeded, sorted draw of `num_slices` embeddings."""
    x = np.stack(
        [
            e[sample_sequence_slices(len(e), num_slices, np.random.default_rng([seed, i]))]
            for i, e in enumerate(embeddings)
        ]
    ).astype("float32")
    return np.asarray(model.predict(x, batch_size=16, verbose=0), "float64").reshape(-1)


def evaluate(labels, probabilities):
    """Table 1's SE, SP and macro-F1 at 0.5 with ROC AUC and its DeLong CI; and the counts.

    Returns:
        ``(models, confusion)``: ``{name: {"sensitivity", "specificity", "macro_f1", "auc",
        "auc_ci"}}`` and ``{name: {"tp", "fp", "tn", "fn"}}``.
    """
    models, confusion = {}, {}
    for name, p in probabilities.items():
        report = binary_report(labels, p)
        auc, low, high = roc_auc_ci(labels, p)
        models[name] = {k: report[k] for k in ("sensitivity", "specificity", "macro_f1")}
        models[name].update(auc=auc, auc_ci=[low, high])
        confusion[name] = {k: report[k] for k in ("tp", "fp", "tn", "fn")}
    return models, confusion


def draw_spread(labels, per_draw):
    """Macro-F1 of each single draw (rows of ``ScanPredictions.per_draw``)."""
    return np.array([macro_f1(labels, p) for p in per_draw])


def run(preset="quick", data_dir=None, out=None, seed=0, verbose=True, **overrides):
    """Runs the whole experiment; returns ``{"models": ..., "single_draw_macro_f1": ..., ...}``.

    Args:
        preset: ``"quick"`` (2-core CPU, minutes) or ``"paper"`` (GPU).
        data_dir: ``None`` (the embedded phantom), a folder made by
            ``python data_prep/two_step_ct.py COV19-CT-DB --out DIR`` (``scans.csv``; its scans
            are streamed from their files), or the COV19-CT-DB release itself (``train/`` and
            ``validation/``, read whole); `kerasmed.experiments.two_step_cov19`.
        out: folder for the PNG figures, or ``None``.
        seed: seed of the data, the split, the draws and every model.
        verbose: progress bars and stage messages.
        **overrides: `TwoStepConfig` fields to change for this run, e.g. ``cnn_epochs=2``.

    Example:

    >>> from kerasmed.experiments import run_experiment
    >>> results = run_experiment("two-step", "quick", out="results/two-step")  # doctest: +SKIP
    """
    config, log = start_run(PRESETS, preset, overrides, "two-step", verbose)
    timings, histories = {}, {}
    start = time.perf_counter()
    data = load_data(config, data_dir, seed, verbose)
    train, val = hold_out_validation(data["train"], config.num_val, seed)
    data = {"train": train, "val": val, "test": data["test"]}
    timings["data + windows"] = time.perf_counter() - start
    test = data["test"]
    labels = test["labels"]

    start = time.perf_counter()
    best_epochs = {}
    cnn, histories["cnn_2d"], best_epochs["cnn_2d"] = train_slice_cnn(
        data, config, seed, verbose, validation=val
    )
    timings["step 1"] = time.perf_counter() - start
    draws = predict_cnn(cnn, test, config, seed)
    probabilities = {"cnn_2d": draws.per_draw[0]}
    for n in config.mean_draws:
        probabilities[f"cnn_2d_mean{n}"] = draws.per_draw[:n].mean(axis=0)

    start = time.perf_counter()
    embedder = slice_embedding_model(cnn)
    embeddings = {
        part: embed_scans(embedder, data[part]["slices"], config.embed_batch, progress=False)
        for part in data
    }
    seconds = time.perf_counter() - start
    num_slices = sum(len(e) for part in embeddings.values() for e in part)
    timings["embedding"] = seconds
    log(f"embedded {num_slices} slices in {seconds:.1f} s ({num_slices / seconds:.0f} slices/s)")

    start = time.perf_counter()
    for i, (kind, length) in enumerate(
        (("lstm", config.lstm_sequence), ("swin", config.swin_slices))
    ):
        name = f"two_step_{kind}"
        head, histories[name], best_epochs[name] = train_head(
            kind, embeddings["train"], train["labels"], config, seed + 1 + i, verbose,
            validation=(embeddings["val"], val["labels"]),
        )  # fmt: skip
        probabilities[f"two_step_{kind}"] = heads_predictions(
            head, embeddings["test"], length, seed
        )
    timings["step 2"] = time.perf_counter() - start
    first_mean = f"cnn_2d_mean{config.mean_draws[0]}"
    probabilities["ensemble"] = ensemble_probabilities(
        probabilities["two_step_lstm"], probabilities["two_step_swin"], probabilities[first_mean]
    )
    models, confusion = evaluate(labels, probabilities)
    spread = draw_spread(labels, draws.per_draw)
    log("step 1: {:.0f} s, step 2: {:.0f} s".format(timings["step 1"], timings["step 2"]))
    if out is not None:
        save_figures(out, data, embeddings["test"], labels, spread, models, config)
    return {
        "models": models,
        "single_draw_macro_f1": {
            "min": float(spread.min()),
            "median": float(np.median(spread)),
            "max": float(spread.max()),
            "per_draw": spread.tolist(),
            "paper_range": list(PAPER_SINGLE_DRAW_F1),
        },  # fmt: skip
        "confusion": confusion,
        "ensemble_of": ["two_step_lstm", "two_step_swin", first_mean],
        "best_epoch": best_epochs,
        "num_scans": {part: len(data[part]["labels"]) for part in data},
        "windows": {
            "rules": {
                rule: sum(w.rule == rule for part in data.values() for w in part["windows"])
                for rule in ("lung_area", "no_lung", "last_slice")
            },
        },
        "embedding_slices_per_second": num_slices / timings["embedding"],
        "stage_seconds": {k: round(v, 1) for k, v in timings.items()},
        "histories": histories,
        "test_probabilities": {name: np.asarray(p).tolist() for name, p in probabilities.items()},
        "test_labels": labels.tolist(),
    }
