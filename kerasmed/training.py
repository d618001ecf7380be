"""Training helpers shared by the paper experiments: callbacks and (later) staged training."""

from __future__ import annotations

import keras
from tqdm.auto import tqdm


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
