"""Staged training of Patel et al. (2019): freeze / unfreeze, re-compile per stage, checkpoints.

`StagedTrainer` (`pretrain_cnn`, `train_lstm`, `finetune`) and `train_end_to_end` run the
paper's stages; every stage's optimizer, learning rate and default number of epochs come from
one table, `PAPER_STAGES`. The pieces `set_trainable` and `compile_stage` work on their own too.
The callbacks they use live in `kerasmed.callbacks`, the balanced samplers that feed them in
`kerasmed.data.samplers`.
"""

from __future__ import annotations

import keras

from kerasmed.callbacks import stage_callbacks
from kerasmed.validation import check_one_of

# The paper's settings per stage (Section III-C): optimizer, learning rate, batch size, the
# number of samples drawn in the paper ("approximately 13,000 / 14,000 samples"; not stated for
# the CNN pre-training), our default number of epochs (of 1,000 volumes for the volume stages,
# so 13 and 14 match those samples) and the validation log entry a stage's checkpoint keeps the
# best of. End to end from scratch (Section IV-B) gives no settings: we use the fine-tuning ones.
PAPER_STAGES = {
    "pretrain_cnn": {
        "optimizer": "adam",
        "learning_rate": 1e-4,
        "batch_size": 25,
        "epochs": 10,
        "monitor": "val_accuracy",
    },
    "train_lstm": {
        "optimizer": "rmsprop",
        "learning_rate": 1e-3,
        "batch_size": 1,
        "samples": 13000,
        "epochs": 13,
        "monitor": "val_auc",
    },
    "finetune": {
        "optimizer": "rmsprop",
        "learning_rate": 1e-4,
        "batch_size": 1,
        "samples": 14000,
        "epochs": 14,
        "monitor": "val_auc",
    },
    "end_to_end": {
        "optimizer": "rmsprop",
        "learning_rate": 1e-4,
        "batch_size": 1,
        "epochs": 14,
        "monitor": "val_auc",
    },
}
_OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}


def _stage_settings(stage):
    return PAPER_STAGES[check_one_of(stage, "stage", tuple(PAPER_STAGES))]


def set_trainable(layer, value):
    """Sets ``layer.trainable`` and that of every sublayer (freeze / unfreeze).

    Assigning the value a layer already has is skipped on the TensorFlow backend (Keras's
    tracking short-circuits ``self.x = self.x``), which would leave frozen sublayers frozen;
    flipping the value first makes the assignment reach every sublayer on every backend.
    """
    layer.trainable = not value
    layer.trainable = value
    return layer


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
    settings = _stage_settings(stage)
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

    def _run(self, model, stage, data, validation_data, epochs, learning_rate, callbacks,
             fit_kwargs):  # fmt: skip
        compile_stage(model, stage, learning_rate, jit_compile=self.jit_compile)
        history = fit_stage(
            model, stage, data, validation_data, epochs, self.checkpoint_dir,
            self.callbacks + list(callbacks or []), self.verbose, **fit_kwargs,
        )  # fmt: skip
        self.histories[stage] = history
        return history

    def pretrain_cnn(self, data, validation_data=None, epochs=None, learning_rate=None,
                     callbacks=None, **fit_kwargs):  # fmt: skip
        """Stage 1: slice CNN + softmax head on slice labels (e.g. a `BalancedSliceDataset`).

        `epochs` and `learning_rate` default to the stage's entry in `PAPER_STAGES` (10,
        1e-4). Returns the ``History``; extra keyword arguments go to ``fit``.
        """
        set_trainable(self.slice_cnn, True)
        return self._run(self.slice_cnn, "pretrain_cnn", data, validation_data, epochs,
                         learning_rate, callbacks, fit_kwargs)  # fmt: skip

    def train_lstm(self, data, validation_data=None, epochs=None, learning_rate=None,
                   callbacks=None, **fit_kwargs):  # fmt: skip
        """Stage 2: CNN frozen, LSTMs trained on volume labels (e.g. a `BalancedVolumeDataset`).

        Defaults from `PAPER_STAGES`: 13 epochs (of 1,000 volumes: the paper's ~13,000
        samples), learning rate 1e-3.
        """
        set_trainable(self.slice_cnn, False)
        return self._run(self.model, "train_lstm", data, validation_data, epochs,
                         learning_rate, callbacks, fit_kwargs)  # fmt: skip

    def finetune(self, data, validation_data=None, epochs=None, learning_rate=None,
                 callbacks=None, **fit_kwargs):  # fmt: skip
        """Stage 3: everything unfrozen, end to end on volume labels.

        Defaults from `PAPER_STAGES`: 14 epochs (~14,000 samples), learning rate 1e-4.
        """
        set_trainable(self.slice_cnn, True)
        return self._run(self.model, "finetune", data, validation_data, epochs,
                         learning_rate, callbacks, fit_kwargs)  # fmt: skip


def fit_stage(model, stage, data, validation_data=None, epochs=None, checkpoint_dir=None,
              callbacks=None, verbose=0, **fit_kwargs):  # fmt: skip
    """``model.fit`` for one stage of `PAPER_STAGES`, with its checkpoints when asked.

    The model must already be compiled for the stage (`compile_stage`). With `checkpoint_dir`,
    `stage_callbacks` come first: ``checkpoint_dir/<stage>/model.keras`` keeps the best epoch
    by the stage's ``monitor`` (the last one without validation data) and a
    ``BackupAndRestore`` backup lets an interrupted stage resume.

    Args:
        model: the compiled model.
        stage: a key of `PAPER_STAGES`.
        data: training data for ``fit``.
        validation_data: passed to ``fit``.
        epochs: default: the stage's ``epochs``.
        checkpoint_dir: folder for checkpoints and backups, or ``None``.
        callbacks: further callbacks (after the checkpoint ones).
        verbose: ``fit`` verbosity.
        **fit_kwargs: other ``fit`` arguments.

    Returns:
        The ``History``.
    """
    settings = _stage_settings(stage)
    stage_cbs = []
    if checkpoint_dir is not None:
        monitor = settings["monitor"] if validation_data is not None else None
        stage_cbs = stage_callbacks(checkpoint_dir, stage, monitor=monitor, mode="max")
    return model.fit(
        data,
        validation_data=validation_data,
        epochs=settings["epochs"] if epochs is None else epochs,
        callbacks=stage_cbs + list(callbacks or []),
        verbose=verbose,
        **fit_kwargs,
    )


def train_end_to_end(model, data, validation_data=None, epochs=None, learning_rate=None,
                     checkpoint_dir=None, callbacks=None, verbose=0, jit_compile="auto",
                     **fit_kwargs):  # fmt: skip
    """The paper's comparison: the full model trained end to end from scratch (no stages).

    Every layer is made trainable and the model compiled with the ``"end_to_end"`` settings of
    `PAPER_STAGES` (RMSprop; the paper gives no learning rate or length for this run, we use
    the fine-tuning ones: 1e-4, 14 epochs), then trained by `fit_stage`.

    Returns:
        The ``History``.
    """
    set_trainable(model, True)
    compile_stage(model, "end_to_end", learning_rate, jit_compile=jit_compile)
    return fit_stage(model, "end_to_end", data, validation_data, epochs, checkpoint_dir,
                     callbacks, verbose, **fit_kwargs)  # fmt: skip
