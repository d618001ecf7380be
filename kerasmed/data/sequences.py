"""Batches of variable-length sequences: a patient's exams, the slices of a CT volume...

`SequenceDataset` is a ``keras.utils.PyDataset`` that pads each batch on the right to its
longest sequence and adds a boolean ``mask`` input (True on real steps), so any Keras model
with a ``mask`` input (or a ``keras.layers.Masking``-free RNN given ``mask=``) trains on
sequences of different lengths. `pad_to_batch` is the padding step on its own.

The dataset reads every sequence once when it is built and refuses NaN or inf in an input (a
time lapse, an image), a target or a sample weight, naming the input, the sequence and the step,
e.g. ``Received: inputs['time'][3][1, 0]=nan`` (step 1 of sequence 3), since a NaN would spread
through the whole batch's loss. A batch then reads each of its sequences once (an item that is
read from disk when NumPy asks for it, as `kerasmed.data.streaming`'s are, is read once per
epoch; the batch's dtype is that of its first array as read).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from kerasmed.validation import check_finite_array, check_one_of, check_whole_number


def pad_to_batch(arrays, max_length=None, value=0.0, dtype=None):
    """Right-pads a list of ``(T_i, ...)`` arrays to one ``(B, T, ...)`` array plus its mask.

    Args:
        arrays: list of arrays sharing their trailing shape, one per sequence.
        max_length: the padded length ``T``; longer sequences keep their **last**
            `max_length` steps (the most recent exams). ``None`` pads to the longest.
        value: the padding value.
        dtype: dtype of the result; defaults to the arrays' common dtype.

    Returns:
        ``(padded, mask)``: ``(B, T, ...)`` array and ``(B, T)`` bool mask, True on real steps.

    Example:

    >>> padded, mask = pad_to_batch([np.ones((2, 3)), np.ones((1, 3))])
    >>> padded.shape, mask.tolist()
    ((2, 2, 3), [[True, True], [True, False]])
    """
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise ValueError("`arrays` must hold at least one sequence. Received: arrays=[]")
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"Sequence {i} has no time axis. Received: arrays[{i}].shape=()")
        if a.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(
                f"Every sequence must share the trailing shape {arrays[0].shape[1:]} of sequence 0. "
                f"Received: arrays[{i}].shape={a.shape}"
            )
    max_length = check_whole_number(max_length, "max_length", allow_none=True)
    lengths = np.array([len(a) for a in arrays])
    length = int(max_length) if max_length is not None else max(int(lengths.max()), 1)
    dtype = np.result_type(*arrays) if dtype is None else dtype
    # keras.utils.pad_sequences handles any trailing shape; "pre" truncation keeps the last steps.
    padded = keras.utils.pad_sequences(
        arrays, maxlen=length, dtype=dtype, padding="post", truncating="pre", value=value
    )
    mask = np.arange(length)[None, :] < np.minimum(lengths, length)[:, None]
    return padded, mask


def _item(name, index):
    return f"inputs[{name!r}][{index}]" if name else f"inputs[{index}]"


class SequenceDataset(keras.utils.PyDataset):
    """Padded batches of variable-length sequences with a mask, for ``model.fit``.

    Each batch is ``(x, y)`` or ``(x, y, sample_weight)`` (or only ``x`` without targets):

    - ``x``: with a dict `inputs`, the dict ``{name: (B, T, ...)}`` plus ``mask_name`` ->
      ``(B, T)`` bool; with a list `inputs`, the tuple ``(padded, mask)``. ``T`` is the
      longest sequence of the batch (or `max_length`); padding is on the right, so step
      ``T_i - 1`` is sequence ``i``'s last real step.
    - ``y`` with ``target="last"``: ``(B, ...)`` one target per sequence -- the target of
      the last real step when the targets are per step. With ``target="all"``: the per-step
      targets ``(B, T, ...)``, and ``sample_weight`` ``(B, T)`` is the mask (times the
      sample weights, if any), so padded steps do not count in the loss. (Keras still
      divides the weighted sum by all ``B * T`` steps, so the loss value, not its minimum,
      depends on the padding.)

    Args:
        inputs: ``{name: [array (T_i, ...), ...]}`` (several inputs, same ``T_i`` for a given
            sequence) or a list of ``(T_i, ...)`` arrays (one input).
        targets: ``None``; or a list with one array per sequence, either per step
            ``(T_i, ...)`` or per sequence ``(...)``; or an array ``(N, ...)`` of
            per-sequence targets. Per step is detected when every target's first axis equals
            its sequence's length (force it with `targets_per_step`).
        batch_size: sequences per batch.
        shuffle: reshuffle the sequences every epoch.
        seed: seed of the shuffling; epoch ``e`` uses ``default_rng([seed, e])``, so the
            order does not depend on how many datasets or epochs ran before.
        pad_value: value of the padded steps in the inputs (targets are padded with 0).
        max_length: pad every batch to this length, keeping the last `max_length` steps of
            longer sequences (fixed shapes suit ``jit_compile``); ``None``: batch longest.
        target: ``"last"`` or ``"all"`` (per-step supervision; needs per-step targets).
        sample_weights: optional weights, ``(N,)`` one per sequence, or (``target="all"``)
            a list of per-step ``(T_i,)`` arrays.
        mask_name: key of the mask in a dict `x`.
        targets_per_step: ``None`` to detect, or force ``True`` / ``False``.
        bucket_by_length: group sequences of similar length in a batch (less padding): the
            shuffled order is sorted by length within chunks of ``20 * batch_size``, then
            the batches are shuffled.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    Example:

    >>> images = [np.zeros((3, 4, 4, 1)), np.zeros((5, 4, 4, 1))]
    >>> labels = [np.zeros((3, 2)), np.ones((5, 2))]
    >>> data = SequenceDataset({"images": images}, labels, batch_size=2, shuffle=False)
    >>> x, y = data[0]
    >>> x["images"].shape, x["mask"].sum(axis=1).tolist(), y.tolist()
    ((2, 5, 4, 4, 1), [3, 5], [[0.0, 0.0], [1.0, 1.0]])
    """

    def __init__(
        self,
        inputs,
        targets=None,
        batch_size=32,
        shuffle=True,
        seed=0,
        pad_value=0.0,
        max_length=None,
        target="last",
        sample_weights=None,
        mask_name="mask",
        targets_per_step=None,
        bucket_by_length=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_one_of(target, "target", ("last", "all"))
        batch_size = check_whole_number(batch_size, "batch_size")
        max_length = check_whole_number(max_length, "max_length", allow_none=True)
        self._as_dict = isinstance(inputs, dict)
        self.inputs = (
            {k: list(v) for k, v in inputs.items()} if self._as_dict else {"": list(inputs)}
        )
        if self._as_dict and mask_name in self.inputs:
            raise ValueError(
                f"`mask_name` collides with an input name. Received: mask_name={mask_name!r}"
            )
        self.lengths = self._check_lengths()
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.pad_value = shuffle, seed, pad_value
        self.max_length, self.target, self.mask_name = max_length, target, mask_name
        self.bucket_by_length = bucket_by_length
        self.targets, self.targets_per_step = self._check_targets(targets, targets_per_step)
        self.sample_weights = self._check_weights(sample_weights)
        self._epoch = 0
        self._batches = self._make_batches()

    @property
    def num_sequences(self):
        return len(self.lengths)

    def _check_lengths(self):
        names = list(self.inputs)
        counts = {name: len(self.inputs[name]) for name in names}
        if len(set(counts.values())) != 1 or not counts[names[0]]:
            raise ValueError(
                f"Every input needs the same, non-zero number of sequences. Received: counts={counts}"
            )
        for name in names:
            for i, a in enumerate(self.inputs[name]):
                array = np.asarray(a)  # one read of an item read on demand
                if array.ndim == 0:
                    raise ValueError(
                        f"Sequence {i} has no time axis. Received: {_item(name, i)}.shape=()"
                    )
                check_finite_array(array, _item(name, i))
        lengths = np.array([len(a) for a in self.inputs[names[0]]], dtype="int64")
        for name in names[1:]:
            for i, a in enumerate(self.inputs[name]):
                if len(a) != lengths[i]:
                    raise ValueError(
                        f"Sequence {i} has {lengths[i]} steps in input {names[0]!r} but {len(a)} "
                        f"in input {name!r}. Received: lengths {lengths[i]} and {len(a)}"
                    )
        if (lengths < 1).any():
            i = int(np.argmin(lengths))
            raise ValueError(
                f"Every sequence needs at least one step. Received: length 0 for sequence {i}"
            )
        return lengths

    def _check_targets(self, targets, per_step):
        if targets is None:
            return None, False
        targets = list(targets) if not isinstance(targets, np.ndarray) else list(targets)
        if len(targets) != self.num_sequences:
            raise ValueError(
                f"`targets` needs one entry per sequence ({self.num_sequences}). Received: len(targets)={len(targets)}"
            )
        targets = [check_finite_array(t, f"targets[{i}]") for i, t in enumerate(targets)]
        if per_step is None:
            per_step = all(t.ndim >= 1 and t.shape[0] == n for t, n in zip(targets, self.lengths))
        if per_step:
            for i, (t, n) in enumerate(zip(targets, self.lengths)):
                if t.ndim == 0 or t.shape[0] != n:
                    raise ValueError(
                        f"Per-step targets of sequence {i} must have {n} steps like its inputs. "
                        f"Received: targets[{i}].shape={t.shape}"
                    )
        elif self.target == "all":
            raise ValueError(
                "`target='all'` needs per-step targets (T_i, ...) for every sequence. "
                f"Received: targets[0].shape={targets[0].shape} for a sequence of {self.lengths[0]} steps"
            )
        return targets, bool(per_step)

    def _check_weights(self, weights):
        if weights is None:
            return None
        if isinstance(weights, (list, tuple)) and any(np.ndim(w) > 0 for w in weights):
            if self.target != "all":
                raise ValueError(
                    "Per-step `sample_weights` need `target='all'`. Received: target='last'"
                )
            weights = [
                check_finite_array(w, f"sample_weights[{i}]").astype("float32")
                for i, w in enumerate(weights)
            ]
            for i, (w, n) in enumerate(zip(weights, self.lengths)):
                if w.shape != (n,):
                    raise ValueError(
                        f"Per-step weights of sequence {i} must have shape ({n},). Received: shape={w.shape}"
                    )
        else:
            weights = check_finite_array(weights, "sample_weights").astype("float32")
        if len(weights) != self.num_sequences:
            raise ValueError(
                f"`sample_weights` needs one entry per sequence ({self.num_sequences}). Received: len={len(weights)}"
            )
        return weights

    def _make_batches(self):
        n, size = self.num_sequences, self.batch_size
        if not self.shuffle:
            order = np.arange(n)
        else:
            order = np.random.default_rng([self.seed, self._epoch]).permutation(n)
        if self.bucket_by_length:
            chunk = 20 * size
            order = np.concatenate(
                [
                    c[np.argsort(self.lengths[c], kind="stable")]
                    for c in np.split(order, range(chunk, n, chunk))
                ]
            )
        batches = [order[i : i + size] for i in range(0, n, size)]
        if self.bucket_by_length and self.shuffle:
            rng = np.random.default_rng([self.seed, self._epoch, 1])
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def on_epoch_end(self):
        self._epoch += 1
        self._batches = self._make_batches()

    def __len__(self):
        return math.ceil(self.num_sequences / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index out of range [0, {len(self)}). Received: index={index}")
        rows = self._batches[index]
        x, mask = {}, None
        for name, arrays in self.inputs.items():
            items = [np.asarray(arrays[i]) for i in rows]  # each read once
            x[name], mask = pad_to_batch(
                items,
                self.max_length,
                self.pad_value,
                dtype="float32" if items[0].dtype.kind == "f" else None,
            )
        x = {**x, self.mask_name: mask} if self._as_dict else (x[""], mask)
        if self.targets is None:
            return (x,)
        chosen = [self.targets[i] for i in rows]
        if self.target == "all":
            y, _ = pad_to_batch(chosen, self.max_length, 0.0)
            weight = mask.astype("float32")
        else:
            y = np.stack([t[-1] for t in chosen] if self.targets_per_step else chosen)
            weight = None
        y = y.astype("float32") if y.dtype.kind in "fb" else y
        if self.sample_weights is None:
            return (x, y) if weight is None else (x, y, weight)
        if isinstance(self.sample_weights, list):
            per_step, _ = pad_to_batch([self.sample_weights[i] for i in rows], self.max_length, 0.0)
            return x, y, weight * per_step
        seq_weight = self.sample_weights[rows]
        return (x, y, seq_weight) if weight is None else (x, y, weight * seq_weight[:, None])
