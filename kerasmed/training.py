"""Training helpers shared by the paper experiments: callbacks, balanced samplers, staged training.

- `EpochProgressBar`: one tqdm bar per ``fit``; `KeepBestWeights`: restore the best epoch.
- `BalancedSliceDataset`, `BalancedVolumeDataset`: ``keras.utils.PyDataset`` samplers drawing
  positives and negatives equally (slices for CNN pre-training, whole volumes for the sequence
  model), with optional augmentation.
- `StagedTrainer` (`pretrain_cnn`, `train_lstm`, `finetune`) and `train_end_to_end`: the staged
  scheme of Patel et al. (2019) -- freeze / unfreeze, re-compile with each stage's optimizer,
  checkpoints and resumption through Keras callbacks; the pieces `set_trainable`,
  `compile_stage` (settings in `PAPER_STAGES`) and `stage_callbacks` work on their own too.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
from tqdm.auto import tqdm

from kerasmed.data.sequences import pad_to_batch
from kerasmed.preprocessing.augmentation import augment_paper


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
        self.bar = tqdm(
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


# The paper's settings per stage (Section III-C): optimizer, learning rate, batch size, and the
# number of samples drawn in the paper ("approximately 13,000 / 14,000 samples"; not stated for
# the CNN pre-training). End to end from scratch (Section IV-B) gives no settings: we use the
# fine-tuning ones.
PAPER_STAGES = {
    "pretrain_cnn": {"optimizer": "adam", "learning_rate": 1e-4, "batch_size": 25},
    "train_lstm": {
        "optimizer": "rmsprop",
        "learning_rate": 1e-3,
        "batch_size": 1,
        "samples": 13000,
    },
    "finetune": {"optimizer": "rmsprop", "learning_rate": 1e-4, "batch_size": 1, "samples": 14000},
    "end_to_end": {"optimizer": "rmsprop", "learning_rate": 1e-4, "batch_size": 1},
}
_OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}


def _resolve_augment(augment, volume):
    if augment is None or callable(augment):
        return augment
    if augment != "paper":
        raise ValueError(
            f"`augment` must be None, 'paper' or a callable. Received: augment={augment!r}"
        )
    if volume:  # Section III-C2: rotation over a random axis, shifts in all directions
        return lambda array, rng: augment_paper(
            array, rng, rotation_planes=[(0, 1), (0, 2), (1, 2)], shift_axes=(0, 1, 2)
        )[0]
    return lambda array, rng: augment_paper(array, rng)[0]  # Section III-C1: in-plane


def set_trainable(layer, value):
    """Sets ``layer.trainable`` and that of every sublayer (freeze / unfreeze).

    Assigning the value a layer already has is skipped on the TensorFlow backend (Keras's
    tracking short-circuits ``self.x = self.x``), which would leave frozen sublayers frozen;
    flipping the value first makes the assignment reach every sublayer on every backend.
    """
    layer.trainable = not value
    layer.trainable = value
    return layer


def _one_hot(labels, num_classes):
    return np.eye(num_classes, dtype="float32")[np.asarray(labels, dtype=int)]


def _with_channel(array):
    array = np.asarray(array, dtype="float32")
    return array[..., None]


class BalancedSliceDataset(keras.utils.PyDataset):
    """Batches of single slices with as many positives as negatives (Section III-C1).

    The candidates follow the paper: positive slices are the labelled slices of positive
    volumes, negative slices come *only from negative volumes* ("to avoid erroneously presenting
    positive samples"); unlabelled slices of positive volumes are never used. Each batch draws
    ``batch_size // 2`` positives and ``batch_size - batch_size // 2`` negatives at random (with
    replacement across batches), optionally augmented.

    Args:
        volumes: list of ``(N_i, H, W)`` arrays (already windowed / downsampled).
        slice_labels: list of ``(N_i,)`` 0/1 arrays.
        volume_labels: ``(num_volumes,)`` 0/1 array.
        batch_size: slices per batch. Default 25 (the paper's).
        steps_per_epoch: batches per epoch; default: enough to see every positive slice once.
        augment: ``None``, ``"paper"`` (one of identity / rotation / mirror / shift, see
            `kerasmed.preprocessing.augment_paper`) or a callable ``(slice, rng) -> slice``.
        num_classes: width of the one-hot targets (2 for the paper's softmax).
        seed: batch ``i`` of epoch ``e`` depends only on ``(seed, e, i)``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    Example:

    >>> volumes = [np.zeros((4, 8, 8)), np.ones((3, 8, 8))]
    >>> data = BalancedSliceDataset(volumes, [np.array([0, 1, 1, 0]), np.zeros(3)], [1, 0],
    ...                             batch_size=4)
    >>> x, y = data[0]
    >>> x.shape, y.sum(axis=0).tolist()
    ((4, 8, 8, 1), [2.0, 2.0])
    """

    def __init__(
        self,
        volumes,
        slice_labels,
        volume_labels,
        batch_size=25,
        steps_per_epoch=None,
        augment=None,
        num_classes=2,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(batch_size) != batch_size or batch_size < 2:
            raise ValueError(f"`batch_size` must be an int >= 2. Received: batch_size={batch_size}")
        if not len(volumes) == len(slice_labels) == len(volume_labels):
            raise ValueError(
                "`volumes`, `slice_labels` and `volume_labels` need one entry per volume. "
                f"Received: lengths={len(volumes)}, {len(slice_labels)}, {len(volume_labels)}"
            )
        self.volumes = volumes
        positives, negatives = [], []
        for v, (labels, label) in enumerate(zip(slice_labels, volume_labels)):
            labels = np.asarray(labels)
            if label:
                positives += [(v, k) for k in np.flatnonzero(labels)]
            else:
                if labels.any():
                    raise ValueError(
                        f"Negative volume {v} has positive slice labels. Received: volume_labels[{v}]=0"
                    )
                negatives += [(v, k) for k in range(len(labels))]
        if not positives or not negatives:
            raise ValueError(
                "Need positive slices (from positive volumes) and negative volumes. "
                f"Received: {len(positives)} positive and {len(negatives)} negative slices"
            )
        self.positives, self.negatives = np.array(positives), np.array(negatives)
        self.batch_size, self.num_classes, self.seed = int(batch_size), num_classes, seed
        self.steps = steps_per_epoch or math.ceil(len(positives) / (self.batch_size // 2))
        self.augment = _resolve_augment(augment, volume=False)
        self._epoch = 0

    def __len__(self):
        return self.steps

    def on_epoch_end(self):
        self._epoch += 1

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self._epoch, index])
        num_pos = self.batch_size // 2
        pos = self.positives[rng.integers(len(self.positives), size=num_pos)]
        neg = self.negatives[rng.integers(len(self.negatives), size=self.batch_size - num_pos)]
        labels = np.r_[np.ones(num_pos, int), np.zeros(len(neg), int)]
        order = rng.permutation(self.batch_size)
        slices = []
        for v, k in np.concatenate([pos, neg])[order]:
            image = np.asarray(self.volumes[v][k], dtype="float32")
            slices.append(self.augment(image, rng) if self.augment else image)
        return _with_channel(np.stack(slices)), _one_hot(labels[order], self.num_classes)


class BalancedVolumeDataset(keras.utils.PyDataset):
    """Whole volumes with volume labels, positives and negatives drawn equally (Section III-C2).

    Every epoch draws `samples_per_epoch` volumes, half of each class, at random with
    replacement, optionally augmented. With ``batch_size=1`` (the paper's) a batch is
    ``(volume (1, N, H, W, 1), one_hot (1, C))``; with ``batch_size > 1`` or `pad_multiple` the
    volumes are right-padded and the batch input is ``(volume, mask)`` for a model built with
    ``use_mask=True``. Padding N up to a multiple (say 16) bounds the number of distinct shapes,
    which spares JAX a recompilation for every new slice count.

    On TensorFlow, Keras fixes every dimension that is equal in the first two batches of a
    ``fit``; so, when shuffling, the second batch is swapped with a later one of another length
    if needed. An unshuffled dataset (evaluation) keeps its order: on TensorFlow give it one
    shape, e.g. `pad_multiple` at least the longest volume.

    Args:
        volumes: list of ``(N_i, H, W)`` arrays (already windowed / downsampled).
        labels: ``(num_volumes,)`` 0/1 volume labels.
        batch_size: volumes per batch. Default 1.
        samples_per_epoch: volumes per epoch; default ``len(volumes)``.
        balance: draw the classes equally (``True``) or sample volumes uniformly.
        augment: ``None``, ``"paper"`` (identity / rotation about a random axis / mirror /
            shift in all directions) or a callable ``(volume, rng) -> volume``.
        pad_multiple: pad N to a multiple of this (with a mask input); ``None``: no padding
            when ``batch_size=1``.
        shuffle: draw at random; ``False`` visits the volumes in order (for evaluation; then
            `balance` is ignored and an epoch is one pass).
        num_classes: width of the one-hot targets.
        seed: epoch ``e`` depends only on ``(seed, e)``.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``.

    Example:

    >>> volumes = [np.zeros((3, 8, 8)), np.ones((5, 8, 8)), np.ones((4, 8, 8))]
    >>> data = BalancedVolumeDataset(volumes, [0, 1, 1], samples_per_epoch=4)
    >>> sorted(int(data[i][1][0, 1]) for i in range(len(data)))
    [0, 0, 1, 1]
    """

    def __init__(
        self,
        volumes,
        labels,
        batch_size=1,
        samples_per_epoch=None,
        balance=True,
        augment=None,
        pad_multiple=None,
        shuffle=True,
        num_classes=2,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        labels = np.asarray(labels, dtype=int)
        if len(volumes) != len(labels) or not len(labels):
            raise ValueError(
                f"`volumes` and `labels` need the same, non-zero length. Received: "
                f"{len(volumes)} volumes, {len(labels)} labels"
            )
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(
                f"`batch_size` must be a positive int. Received: batch_size={batch_size}"
            )
        if balance and shuffle and len(np.unique(labels)) < 2:
            raise ValueError(
                f"`balance=True` needs both classes. Received: labels={labels.tolist()}"
            )
        self.volumes, self.labels = volumes, labels
        self.batch_size, self.balance, self.shuffle = int(batch_size), balance, shuffle
        self.samples = (
            len(volumes) if (samples_per_epoch is None or not shuffle) else int(samples_per_epoch)
        )
        self.pad_multiple, self.num_classes, self.seed = pad_multiple, num_classes, seed
        self.augment = _resolve_augment(augment, volume=True)
        self._epoch = 0
        self._order = self._draw()

    def _draw(self):
        if not self.shuffle:
            return np.arange(len(self.volumes))
        rng = np.random.default_rng([self.seed, self._epoch])
        if not self.balance:
            return self._vary_first_two_batches(rng.integers(len(self.volumes), size=self.samples))
        half = self.samples // 2
        counts = {1: half, 0: self.samples - half}
        if rng.integers(2):  # an odd count alternates its extra sample between classes
            counts = {1: self.samples - half, 0: half}
        drawn = [rng.choice(np.flatnonzero(self.labels == c), size=counts[c]) for c in (0, 1)]
        return self._vary_first_two_batches(rng.permutation(np.concatenate(drawn)))

    def _batch_length(self, rows):
        length = max(len(self.volumes[i]) for i in rows)
        if self.pad_multiple:
            length = int(math.ceil(length / self.pad_multiple) * self.pad_multiple)
        return length

    def _vary_first_two_batches(self, order):
        """Swaps a later batch into second place when the first two have the same length.

        Keras's TensorFlow data adapter fixes every dimension that is equal in the first two
        batches; Keras's own advice for variable dimensions is to make those two differ.
        """
        size = self.batch_size
        blocks = [order[i : i + size] for i in range(0, len(order), size)]
        if len(blocks) > 2:
            first = self._batch_length(blocks[0])
            if self._batch_length(blocks[1]) == first:
                for j in range(2, len(blocks)):
                    if len(blocks[j]) == size and self._batch_length(blocks[j]) != first:
                        blocks[1], blocks[j] = blocks[j], blocks[1]
                        break
        return np.concatenate(blocks)

    def on_epoch_end(self):
        self._epoch += 1
        self._order = self._draw()

    def __len__(self):
        return math.ceil(self.samples / self.batch_size)

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self._epoch, index, 1])
        arrays = []
        for i in rows:
            volume = np.asarray(self.volumes[i], dtype="float32")
            arrays.append(self.augment(volume, rng) if self.augment else volume)
        y = _one_hot(self.labels[rows], self.num_classes)
        if self.batch_size == 1 and self.pad_multiple is None:
            return _with_channel(arrays[0])[None], y
        length = max(len(a) for a in arrays)
        if self.pad_multiple:
            length = int(math.ceil(length / self.pad_multiple) * self.pad_multiple)
        padded, mask = pad_to_batch(arrays, max_length=length, dtype="float32")
        return (_with_channel(padded), mask), y


def compile_stage(
    model, stage="train_lstm", learning_rate=None, optimizer=None, metrics=None, jit_compile="auto"
):
    """Compiles `model` with one stage's optimizer and loss (re-compile after (un)freezing).

    The loss is binary cross-entropy on the one-hot targets of the 2-class softmax, as in the
    paper (it equals the categorical cross-entropy of a 2-class softmax).

    Args:
        model: the model of that stage.
        stage: a key of `PAPER_STAGES` (``"pretrain_cnn"``, ``"train_lstm"``, ``"finetune"``,
            ``"end_to_end"``).
        learning_rate: overrides the stage's learning rate.
        optimizer: an optimizer instance overriding the stage's.
        metrics: default: accuracy for ``"pretrain_cnn"``, accuracy and ROC AUC (``"auc"``)
            for the volume stages.
        jit_compile: passed to ``model.compile``. ``"auto"`` lets Keras choose (XLA on
            TensorFlow and JAX); on a CPU, XLA compiles every new slice count slowly and runs
            the recurrent backward pass slower, so the experiments set it per backend.

    Returns:
        The model.
    """
    if stage not in PAPER_STAGES:
        raise ValueError(
            f"`stage` must be one of {sorted(PAPER_STAGES)}. Received: stage={stage!r}"
        )
    settings = PAPER_STAGES[stage]
    if optimizer is None:
        rate = settings["learning_rate"] if learning_rate is None else learning_rate
        optimizer = _OPTIMIZERS[settings["optimizer"]](learning_rate=rate)
    if metrics is None:
        metrics = ["accuracy"]
        if stage != "pretrain_cnn":
            # multi_label=True averages the per-column AUCs; for a 2-class softmax with one-hot
            # targets both columns give the usual ROC AUC.
            metrics.append(keras.metrics.AUC(multi_label=True, name="auc"))
    model.compile(
        optimizer=optimizer, loss="binary_crossentropy", metrics=metrics, jit_compile=jit_compile
    )
    return model


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


class StagedTrainer:
    """The staged training of Patel et al. (2019), Section III-C, on Keras models.

    1. `pretrain_cnn`: the slice CNN with its softmax head learns slice labels from balanced
       batches (Adam, 1e-4, batches of 25).
    2. `train_lstm`: the CNN is frozen; the LSTMs learn volume labels (RMSprop, 1e-3, one
       volume per batch, classes drawn equally).
    3. `finetune`: everything is unfrozen and trained end to end (RMSprop, 1e-4).

    Each stage sets ``trainable`` and re-compiles (Keras requires a re-compile for a change of
    ``trainable`` to take effect). With `checkpoint_dir`, each stage writes
    ``checkpoint_dir/<stage>/model.keras`` and a ``BackupAndRestore`` backup, so an
    interrupted stage, run again, resumes from its last finished epoch.

    Args:
        slice_cnn: the slice CNN with its head (``build_slice_cnn(..., num_classes=2)``).
        model: the volume model whose slice encoder shares the CNN's layers, e.g.
            ``build_cnn_bilstm(slice_cnn=slice_feature_model(slice_cnn))``.
        checkpoint_dir: folder for checkpoints and backups; ``None``: none.
        callbacks: callbacks added to every stage (after the checkpoint callbacks).
        verbose: ``fit`` verbosity.
        jit_compile: passed to every stage's ``compile`` (see `compile_stage`).

    Example:

    >>> from kerasmed.models.ich import build_cnn_bilstm, build_slice_cnn, slice_feature_model
    >>> cnn = build_slice_cnn((32, 32, 1), base_filters=2, feature_dim=8, num_classes=2)
    >>> model = build_cnn_bilstm((32, 32, 1), slice_cnn=slice_feature_model(cnn), lstm_units=4)
    >>> trainer = StagedTrainer(cnn, model)  # then pretrain_cnn, train_lstm, finetune

    Reference:
        Patel et al., IEEE Access 2019, Section III-C.
    """

    def __init__(
        self, slice_cnn, model, checkpoint_dir=None, callbacks=None, verbose=0, jit_compile="auto"
    ):
        cnn_ids = {id(v) for v in slice_cnn.weights}
        if not cnn_ids & {id(v) for v in model.weights}:
            raise ValueError(
                "`model` must share the layers of `slice_cnn` (build it with "
                "`slice_cnn=slice_feature_model(slice_cnn)`). Received: no shared weights"
            )
        self.slice_cnn, self.model = slice_cnn, model
        self.checkpoint_dir, self.callbacks, self.verbose = (
            checkpoint_dir,
            list(callbacks or []),
            verbose,
        )
        self.jit_compile = jit_compile
        self.histories = {}

    def _fit(self, model, stage, data, validation_data, epochs, monitor, callbacks, fit_kwargs):
        stage_cbs = []
        if self.checkpoint_dir is not None:
            watch = monitor if validation_data is not None else None
            stage_cbs = stage_callbacks(self.checkpoint_dir, stage, monitor=watch, mode="max")
        history = model.fit(
            data,
            validation_data=validation_data,
            epochs=epochs,
            callbacks=stage_cbs + self.callbacks + list(callbacks or []),
            verbose=self.verbose,
            **fit_kwargs,
        )
        self.histories[stage] = history
        return history

    def pretrain_cnn(
        self,
        data,
        validation_data=None,
        epochs=10,
        learning_rate=1e-4,
        callbacks=None,
        **fit_kwargs,
    ):
        """Stage 1: slice CNN + softmax head on slice labels (e.g. a `BalancedSliceDataset`).

        Returns the ``History``; extra keyword arguments go to ``fit``.
        """
        set_trainable(self.slice_cnn, True)
        compile_stage(self.slice_cnn, "pretrain_cnn", learning_rate, jit_compile=self.jit_compile)
        return self._fit(self.slice_cnn, "pretrain_cnn", data, validation_data, epochs,
                         "val_accuracy", callbacks, fit_kwargs)  # fmt: skip

    def train_lstm(
        self,
        data,
        validation_data=None,
        epochs=13,
        learning_rate=1e-3,
        callbacks=None,
        **fit_kwargs,
    ):
        """Stage 2: CNN frozen, LSTMs trained on volume labels (e.g. a `BalancedVolumeDataset`).

        The default 13 epochs of 1,000 volumes match the paper's ~13,000 samples.
        """
        set_trainable(self.slice_cnn, False)
        compile_stage(self.model, "train_lstm", learning_rate, jit_compile=self.jit_compile)
        return self._fit(self.model, "train_lstm", data, validation_data, epochs, "val_auc",
                         callbacks, fit_kwargs)  # fmt: skip

    def finetune(
        self,
        data,
        validation_data=None,
        epochs=14,
        learning_rate=1e-4,
        callbacks=None,
        **fit_kwargs,
    ):
        """Stage 3: everything unfrozen, end to end on volume labels (~14,000 samples)."""
        set_trainable(self.slice_cnn, True)
        compile_stage(self.model, "finetune", learning_rate, jit_compile=self.jit_compile)
        return self._fit(self.model, "finetune", data, validation_data, epochs, "val_auc",
                         callbacks, fit_kwargs)  # fmt: skip


def train_end_to_end(model, data, validation_data=None, epochs=14, learning_rate=1e-4,
                     checkpoint_dir=None, callbacks=None, verbose=0, jit_compile="auto",
                     **fit_kwargs):  # fmt: skip
    """The paper's comparison: the full model trained end to end from scratch (no stages).

    Every layer is made trainable and the model compiled with the ``"end_to_end"`` settings
    (RMSprop; the paper gives no learning rate for this run, we use the fine-tuning one).

    Returns:
        The ``History``.
    """
    set_trainable(model, True)
    compile_stage(model, "end_to_end", learning_rate, jit_compile=jit_compile)
    stage_cbs = []
    if checkpoint_dir is not None:
        monitor = "val_auc" if validation_data is not None else None
        stage_cbs = stage_callbacks(checkpoint_dir, "end_to_end", monitor=monitor, mode="max")
    return model.fit(data, validation_data=validation_data, epochs=epochs, verbose=verbose,
                     callbacks=stage_cbs + list(callbacks or []), **fit_kwargs)  # fmt: skip
