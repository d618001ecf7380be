"""Keras callbacks shared by the experiments: progress, best-epoch weights, stage checkpoints.

- `EpochProgressBar`: one tqdm bar per ``fit`` (a tick per epoch).
- `KeepBestWeights`: restores the weights of the best epoch at the end of ``fit``.
- `ValidationScore`: logs a score computed from the model each epoch (for `KeepBestWeights`).
- `stage_callbacks`: ``ModelCheckpoint`` + ``BackupAndRestore`` in a folder per training stage,
  so that an interrupted stage resumes (used by `kerasmed.training.StagedTrainer`).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from kerasmed.progress import progress_bar


class EpochProgressBar(keras.callbacks.Callback):
    """One tqdm bar per ``fit``: a tick per epoch, the latest logs as its postfix.

    Quieter than Keras's per-step bars when many small models are trained in a row (a notebook
    comparing seven sequence models), and it works in terminals and notebooks alike.

    Args:
        description: text in front of the bar (e.g. the model's name).
        keys: log entries to show; ``None`` shows every entry.
        leave: keep the finished bar on screen.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> _ = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=2, verbose=0,
    ...               callbacks=[EpochProgressBar("demo")])  # doctest: +SKIP
    """

    def __init__(self, description="", keys=None, leave=True):
        super().__init__()
        self.description = description
        self.keys = keys
        self.leave = leave
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = progress_bar(
            total=self.params.get("epochs"), desc=self.description, leave=self.leave, unit="epoch"
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = {k: v for k, v in logs.items() if self.keys is None or k in self.keys}
        self.bar.set_postfix({k: f"{float(v):.4f}" for k, v in shown.items()}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class KeepBestWeights(keras.callbacks.Callback):
    """Restores, at the end of ``fit``, the weights of the epoch with the best `monitor` value.

    The paper keeps "the best performing model" of every stage by its validation score. Unlike
    ``keras.callbacks.EarlyStopping(restore_best_weights=True)``, which restores only when it
    stops training early, this always restores, and keeps the weights in memory (no file).

    Args:
        monitor: the log entry to watch, e.g. ``"val_auc"``.
        mode: ``"max"`` or ``"min"``.

    Attributes:
        best: the best value seen; ``best_epoch``: its epoch (0-based), ``None`` before any.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> best = KeepBestWeights("loss", mode="min")
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0, callbacks=[best])
    >>> best.best_epoch in (0, 1, 2)
    True
    """

    def __init__(self, monitor="val_loss", mode="min"):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'. Received: mode={mode!r}")
        self.monitor, self.mode = monitor, mode
        self.best, self.best_epoch, self._weights = None, None, None

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self._weights = None, None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"KeepBestWeights watches {self.monitor!r}, which the logs do not have. "
                f"Received: logs keys={sorted(logs)}"
            )
        value = float(logs[self.monitor])
        better = self.best is None or (
            value > self.best if self.mode == "max" else value < self.best
        )
        if better and np.isfinite(value):
            self.best, self.best_epoch = value, epoch
            self._weights = self.model.get_weights()

    def on_train_end(self, logs=None):
        if self._weights is not None:
            self.model.set_weights(self._weights)


def stage_callbacks(checkpoint_dir, stage, monitor=None, mode="auto"):
    """``ModelCheckpoint`` + ``BackupAndRestore`` under ``checkpoint_dir/stage``.

    ``BackupAndRestore`` saves the model, optimizer and epoch at every epoch end; running the
    same stage again after an interruption resumes at the next epoch. ``ModelCheckpoint`` keeps
    ``model.keras``: the best model by `monitor` when given (e.g. ``"val_auc"``), else the last.
    """
    folder = os.path.join(checkpoint_dir, stage)
    os.makedirs(folder, exist_ok=True)
    checkpoint = keras.callbacks.ModelCheckpoint(
        os.path.join(folder, "model.keras"),
        monitor=monitor or "loss",
        mode=mode,
        save_best_only=monitor is not None,
    )
    return [keras.callbacks.BackupAndRestore(os.path.join(folder, "backup")), checkpoint]


class ValidationScore(keras.callbacks.Callback):
    """Writes ``score(model)`` into the epoch's logs as `name`, for the callbacks after it.

    For validation scores Keras's compiled metrics cannot give, e.g. a scan-level macro-F1 of
    a model trained on slices; put `KeepBestWeights` (``monitor=name``) after it in the list.

    Args:
        score: a callable ``model -> float``.
        name: the log entry, e.g. ``"val_macro_f1"``.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...                     callbacks=[ValidationScore(lambda m: 0.5, "val_half")])
    >>> history.history["val_half"]
    [0.5, 0.5]
    """

    def __init__(self, score, name="val_score"):
        super().__init__()
        if not callable(score):
            raise ValueError(
                f"`score` must be a callable model -> float. Received: score={score!r}"
            )
        self.score, self.name = score, name

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[self.name] = float(self.score(self.model))


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimates every BatchNormalization's moving statistics at each epoch end.

    The moving averages of BatchNormalization lag the weights, and batches of a few scans x
    16 slices each have statistics far from the population's: a model trained on them can
    predict well in training mode and put every scan on one side of 0.5 at inference. This
    callback runs one large batch through the model in training mode with momentum 0, so the
    moving statistics become that batch's ("precise BN": Wu and Johnson, *Rethinking "batch"
    in BatchNorm*, 2021); the weights are not changed. Put it before the callbacks that
    evaluate the model (e.g. `ValidationScore`).

    Args:
        batch: an input array, or a callable ``epoch -> array`` (e.g. a fresh sample of
            training slices each epoch); a few hundred samples or more.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization()])
    >>> model.compile("sgd", "mse")
    >>> x = np.array([[1.0, 2.0], [3.0, 6.0]])
    >>> _ = model.fit(x, x, epochs=1, verbose=0, callbacks=[PreciseBatchNorm(x + 10)])
    >>> np.asarray(model.layers[0].moving_mean).tolist()
    [12.0, 14.0]
    """

    def __init__(self, batch):
        super().__init__()
        self.batch = batch

    def on_epoch_end(self, epoch, logs=None):
        norms = [
            layer
            for layer in self.model._flatten_layers()
            if isinstance(layer, keras.layers.BatchNormalization)
        ]
        momenta = [layer.momentum for layer in norms]
        x = self.batch(epoch) if callable(self.batch) else self.batch
        try:
            for layer in norms:
                layer.momentum = 0.0
            self.model(x, training=True)
        finally:
            for layer, momentum in zip(norms, momenta):
                layer.momentum = momentum
