"""`LongitudinalSequences`: a patient's exams over time, and its ``.npz`` file format.

One container serves the simulated digit sequences (`kerasmed.data.simulate_longitudinal_digits`)
and real exams prepared from a CSV manifest (``data_prep/longitudinal_manifest.py``), so every
downstream step (inputs, batches, models, metrics) reads both the same way.

On disk (`save_longitudinal_npz` / `load_longitudinal_npz`), all sequences are concatenated
along the exam axis, with no Python objects (the file loads with ``allow_pickle=False``):

- ``images`` ``(N, H, W)`` float32, or uint8 read back as ``value / 255``: every exam of every
  sequence, in order (``N = sum(T_i)``);
- ``labels`` ``(N, L)`` float32: multi-hot labels of each exam;
- ``deltas`` ``(N,)`` float32: time since the previous exam, 0 at each sequence's first exam;
- ``offsets`` ``(S + 1,)`` int64: sequence ``i`` is rows ``offsets[i]:offsets[i + 1]``;
- ``ids`` ``(S,)`` str: patient (sequence) identifiers;
- ``label_names`` ``(L,)`` str; ``delta_unit`` ``()`` str (``"days"``, ``"steps"``...);
- ``format_version`` ``()`` int64, currently 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasmed.io._npz import load_npz
from kerasmed.io.report import LoadReport

FORMAT_VERSION = 1
_KEYS = ("images", "labels", "deltas", "offsets", "ids", "label_names", "delta_unit")


@dataclasses.dataclass
class LongitudinalSequences:
    """Variable-length sequences of exams: images, multi-hot labels and time lapses.

    Args:
        images: list of ``(T_i, H, W)`` float32 arrays with values in ``[0, 1]``.
        labels: list of ``(T_i, L)`` float32 multi-hot arrays (the labels of each exam).
        deltas: list of ``(T_i,)`` float32 arrays: time since the previous exam of the same
            sequence, ``deltas[i][0] == 0``.
        label_names: the ``L`` label names.
        ids: one identifier per sequence (patient id); defaults to ``"0", "1", ...``.
        delta_unit: unit of `deltas` (``"days"`` for real exams, ``"steps"`` for simulations).
        report: the `kerasmed.io.LoadReport` of the manifest the sequences were read from
            (`kerasmed.io.load_manifest_images`), or None.

    Example:

    >>> import numpy as np
    >>> seqs = LongitudinalSequences(
    ...     images=[np.zeros((3, 8, 8), "float32"), np.zeros((2, 8, 8), "float32")],
    ...     labels=[np.zeros((3, 2), "float32"), np.ones((2, 2), "float32")],
    ...     deltas=[np.array([0, 5, 2], "float32"), np.array([0, 30], "float32")],
    ...     label_names=("a", "b"),
    ... )
    >>> len(seqs), seqs.lengths.tolist()
    (2, [3, 2])
    >>> images, labels = seqs.last_exam()
    >>> images.shape, labels.tolist()
    ((2, 8, 8), [[0.0, 0.0], [1.0, 1.0]])
    """

    images: list
    labels: list
    deltas: list
    label_names: tuple
    ids: tuple | None = None
    delta_unit: str = "days"
    report: LoadReport | None = None

    def __post_init__(self):
        self.label_names = tuple(str(name) for name in self.label_names)
        n = len(self.images)
        if self.ids is None:
            self.ids = tuple(str(i) for i in range(n))
        self.ids = tuple(str(i) for i in self.ids)
        for field in ("labels", "deltas", "ids"):
            if len(getattr(self, field)) != n:
                raise ValueError(
                    f"`{field}` must have one entry per sequence ({n} images). "
                    f"Received: len({field})={len(getattr(self, field))}"
                )
        for i, (x, y, d) in enumerate(zip(self.images, self.labels, self.deltas)):
            x, y, d = np.shape(x), np.shape(y), np.shape(d)
            if len(y) != 2 or y[1] != len(self.label_names) or d != (x[0],) or y[0] != x[0]:
                raise ValueError(
                    f"Sequence {i} must have images (T, ...), labels (T, {len(self.label_names)}) "
                    f"and deltas (T,). Received: images={x}, labels={y}, deltas={d}"
                )

    def __len__(self):
        return len(self.images)

    @property
    def lengths(self) -> np.ndarray:
        """Number of exams ``T_i`` of each sequence, int64 ``(S,)``."""
        return np.array([len(x) for x in self.images], dtype="int64")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def subset(self, indices) -> LongitudinalSequences:
        """Returns the sequences at `indices` (a new container sharing the arrays)."""
        indices = np.asarray(indices, dtype="int64").reshape(-1)
        pick = lambda items: [items[i] for i in indices]  # noqa: E731
        return LongitudinalSequences(
            images=pick(self.images),
            labels=pick(self.labels),
            deltas=pick(self.deltas),
            label_names=self.label_names,
            ids=tuple(pick(self.ids)),
            delta_unit=self.delta_unit,
        )

    def split(self, test_size=0.25, seed=0):
        """Splits by sequence (patient) into ``(train, test)``.

        Args:
            test_size: fraction in ``(0, 1)`` of the sequences that go to the test part (at
                least one each side), or an int count.
            seed: seed of the random permutation.

        Returns:
            ``(train, test)``, two `LongitudinalSequences`; each keeps the original order.
        """
        n = len(self)
        if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
            valid, count = 1 <= test_size <= n - 1, int(test_size)
        else:
            valid = isinstance(test_size, float) and 0.0 < test_size < 1.0 and n >= 2
            count = min(max(round(test_size * n), 1), n - 1) if valid else 0
        if not valid:
            raise ValueError(
                f"`test_size` must be a fraction in (0, 1) or a count in [1, {n - 1}] "
                f"({n} sequences). Received: test_size={test_size!r}"
            )
        order = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(order[count:])), self.subset(np.sort(order[:count]))

    def last_exam(self):
        """The paper's task for a single-image model: the last exam of every sequence.

        Returns:
            ``(images, labels)``: ``(S, H, W)`` float32 and ``(S, L)`` float32.
        """
        images = np.stack([x[-1] for x in self.images]).astype("float32", copy=False)
        labels = np.stack([y[-1] for y in self.labels]).astype("float32", copy=False)
        return images, labels

    def all_exams(self):
        """Every exam of every sequence, e.g. to train a single-image CNN.

        Returns:
            ``(images, labels)``: ``(N, H, W)`` and ``(N, L)`` float32, ``N = sum(T_i)``.
        """
        return (
            np.concatenate(self.images).astype("float32", copy=False),
            np.concatenate(self.labels).astype("float32", copy=False),
        )


def save_longitudinal_npz(path, sequences: LongitudinalSequences, image_dtype="float32"):
    """Writes `sequences` to one ``.npz`` file (format in the module docstring).

    Args:
        path: output file; ``.npz`` is appended by NumPy if missing.
        sequences: a `LongitudinalSequences`.
        image_dtype: ``"float32"``, or ``"uint8"`` (values in ``[0, 1]`` stored as
            ``round(255 * value)``, 4x smaller).
    """
    if image_dtype not in ("float32", "uint8"):
        raise ValueError(
            f"`image_dtype` must be 'float32' or 'uint8'. Received: image_dtype={image_dtype!r}"
        )
    if len(sequences) == 0:
        raise ValueError("Cannot save an empty `sequences`. Received: len(sequences)=0")
    images = np.concatenate(sequences.images).astype("float32")
    if image_dtype == "uint8":
        images = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype("uint8")
    np.savez_compressed(
        path,
        images=images,
        labels=np.concatenate(sequences.labels).astype("float32"),
        deltas=np.concatenate(sequences.deltas).astype("float32"),
        offsets=np.concatenate([[0], np.cumsum(sequences.lengths)]).astype("int64"),
        ids=np.array(sequences.ids, dtype=str),
        label_names=np.array(sequences.label_names, dtype=str),
        delta_unit=np.array(sequences.delta_unit, dtype=str),
        format_version=np.array(FORMAT_VERSION, dtype="int64"),
    )


def load_longitudinal_npz(path) -> LongitudinalSequences:
    """Reads a file written by `save_longitudinal_npz` (or ``data_prep/longitudinal_manifest.py``).

    Args:
        path: the ``.npz`` file.

    Returns:
        A `LongitudinalSequences` with float32 images in ``[0, 1]``.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is not an ``.npz`` file, a key is missing or the arrays are
            inconsistent.
    """
    arrays = load_npz(path, _KEYS, "longitudinal sequences")
    images, offsets = arrays["images"], arrays["offsets"].astype("int64")
    n = len(images)
    if (
        offsets.ndim != 1
        or len(offsets) != len(arrays["ids"]) + 1
        or offsets[0] != 0
        or offsets[-1] != n
        or np.any(np.diff(offsets) < 0)
        or len(arrays["labels"]) != n
        or len(arrays["deltas"]) != n
    ):
        raise ValueError(
            f"{path}: `offsets` must rise from 0 to the number of exams ({n}) with one entry "
            f"per sequence plus one. Received: offsets={offsets.tolist()[:10]}..., "
            f"labels={arrays['labels'].shape}, deltas={arrays['deltas'].shape}"
        )
    if images.dtype == np.uint8:
        images = images.astype("float32") / np.float32(255.0)
    else:
        images = images.astype("float32", copy=False)
    cut = offsets[1:-1]
    return LongitudinalSequences(
        images=np.split(images, cut),
        labels=np.split(arrays["labels"].astype("float32", copy=False), cut),
        deltas=np.split(arrays["deltas"].astype("float32", copy=False), cut),
        label_names=tuple(arrays["label_names"].tolist()),
        ids=tuple(arrays["ids"].tolist()),
        delta_unit=str(arrays["delta_unit"]),
    )
