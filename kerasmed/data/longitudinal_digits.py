"""Simulated longitudinal "exams": noisy images of digits that come and go with the time lapse.

This is the synthetic data set of the time-modulated LSTM paper (Section 4 and Appendix):
each sequence is a patient's exams, each digit in {0, 6, 8, 3, 9} an abnormality. Whether a
digit may appear in the next exam depends on the digits present now and on the (integer) time
lapse ``delta in [1, 10]``, following the paper's Table 2 (`TRANSITION_TABLE`); each allowed
digit is then drawn with its own fixed probability. A single image is made hard to read on
purpose (blurred noise), so a model gains from the history only if it understands the time
lapse.

How the table is read (the paper leaves it open; this reading uses it as printed):

- **digit 9 is independent of the others** (the paper says so): its presence is a two-state
  chain of its own. If 9 is present, it may stay when ``delta`` is in cell (9, 9) = ``1:9``;
  if it is absent, it may appear when ``delta`` is in cell (null, 9) = ``6,7``. The other cells
  of row 9 (``9 -> 6``, ``9 -> 8``) are therefore not used: using them would make 6 and 8
  depend on 9, and independence is symmetric.
- **digits 0, 6, 8 and 3** may appear at ``t + 1`` if ``delta`` is in their column for *any*
  non-9 digit present at ``t`` (the union of those rows), or in the ``null`` row when no non-9
  digit is present.
- the **null column** ("the next image may be empty") is not used to draw anything: an image
  is empty whenever no allowed digit is drawn. It is kept in `TRANSITION_TABLE` as printed.
- the first exam (state S0) shows no digit and has ``delta = 0``.

Reference: R. Santeramo, S. Withey, G. Montana, *Longitudinal detection of radiological
abnormalities with time-modulated LSTM*, 2018 (Appendix, Table 2).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from kerasmed.io.sequences import LongitudinalSequences
from kerasmed.preprocessing.longitudinal import encode_time_deltas, previous_labels
from kerasmed.validation import check_finite_array, check_whole_number

LABEL_NAMES = ("0", "6", "8", "3", "9")
MAX_DELTA = 10

# Table 2 of the paper, cell by cell: current state (row) -> next state (column) -> the time
# lapses that allow that transition ("-" = never).
TRANSITION_TABLE = {
    "0": {"0": "7:10", "6": "5", "8": "3,7", "3": "1,2,7", "9": "-", "null": "1:6"},
    "6": {"0": "1,2", "6": "1:3,5:9", "8": "3,6", "3": "5", "9": "-", "null": "4,10"},
    "8": {"0": "1", "6": "1,2,10", "8": "2:7", "3": "3,5", "9": "-", "null": "8:10"},
    "3": {"0": "-", "6": "1:5", "8": "6:10", "3": "1,2,6:8", "9": "-", "null": "1:10"},
    "9": {"0": "-", "6": "1:3", "8": "5:7", "3": "-", "9": "1:9", "null": "10"},
    "null": {"0": "3,4", "6": "5", "8": "10", "3": "-", "9": "6,7", "null": "1:3,8,9"},
}

# "0" is rare, "6" and "9" persistent (the paper's three kinds of pattern). Table 2 itself caps
# how often a digit can be drawn: "3" never follows an empty exam, so even at 0.9 it is present
# in only ~12% of exams. With these values the exams hold 0/6/8/3/9 about 10/32/22/13/42% of
# the time, and knowing the previous labels and the lapse alone (the Bayes prior
# p * allowed) gives an average F-measure of ~0.75 on the last exam (0.94 without the "0").
DEFAULT_DIGIT_PROBABILITIES = {"0": 0.5, "6": 0.9, "8": 0.8, "3": 0.9, "9": 0.9}


def parse_delta_set(text):
    """Parses a Table 2 cell: ``"1:3,5:9"`` -> ``frozenset({1, 2, 3, 5, 6, 7, 8, 9})``.

    ``"a:b"`` is the closed range ``[a, b]``, items are separated by commas, ``"-"`` is empty.
    """
    text = str(text).strip()
    if text in ("-", ""):
        return frozenset()
    values = set()
    for item in text.split(","):
        low, _, high = item.strip().partition(":")
        try:
            low, high = int(low), int(high or low)
        except ValueError as error:
            raise ValueError(f"Cannot parse a delta set. Received: text={text!r}") from error
        if high < low:
            raise ValueError(f"Empty range {item!r} in a delta set. Received: text={text!r}")
        values.update(range(low, high + 1))
    return frozenset(values)


ALLOWED_DELTAS = {
    row: {col: parse_delta_set(cell) for col, cell in cells.items()}
    for row, cells in TRANSITION_TABLE.items()
}


def allowed_next_digits(present, delta):
    """The digits Table 2 allows in the next exam, given the digits `present` now and `delta`.

    Args:
        present: the digits (label names) in the current exam, e.g. ``{"6", "9"}``.
        delta: the integer time lapse to the next exam, 1..10.

    Returns:
        A tuple of label names in `LABEL_NAMES` order (see the module docstring for the
        reading of the table).

    Example:

    >>> allowed_next_digits(set(), 5)
    ('6',)
    >>> allowed_next_digits({"0", "9"}, 7)
    ('0', '8', '3', '9')
    """
    present = {str(d) for d in present}
    unknown = present - set(LABEL_NAMES)
    if unknown:
        raise ValueError(
            f"`present` must hold digits of {LABEL_NAMES}. Received: present={present}"
        )
    rows = sorted(present - {"9"}) or ["null"]
    allowed = [d for d in LABEL_NAMES[:4] if any(delta in ALLOWED_DELTAS[row][d] for row in rows)]
    nine_row = "9" if "9" in present else "null"
    if delta in ALLOWED_DELTAS[nine_row]["9"]:
        allowed.append("9")
    return tuple(allowed)


@functools.lru_cache(maxsize=1)
def _sklearn_glyphs():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype("float32") / 16.0
    return {d: list(images[digits.target == int(d)]) for d in LABEL_NAMES}


def _prepare_glyphs(glyphs, size):
    source = _sklearn_glyphs() if glyphs is None else {str(k): v for k, v in glyphs.items()}
    missing = [d for d in LABEL_NAMES if d not in source or len(source[d]) == 0]
    if missing:
        raise ValueError(
            f"`glyphs` needs images of every digit {LABEL_NAMES}; missing {missing}. Received: glyphs keys={sorted(source)}"
        )
    prepared = {}
    for d in LABEL_NAMES:
        out = []
        for glyph in source[d]:
            glyph = np.asarray(glyph, dtype="float32")
            if glyph.ndim != 2:
                raise ValueError(
                    f"Each glyph must be a 2-D image. Received: glyph.shape={glyph.shape} for digit {d}"
                )
            peak = glyph.max()
            glyph = glyph / peak if peak > 0 else glyph
            glyph = cv2.resize(glyph, (size, size), interpolation=cv2.INTER_CUBIC)
            out.append(np.clip(glyph, 0.0, 1.0))
        prepared[d] = np.stack(out)
    return prepared


def _check_probabilities(digit_probabilities):
    if digit_probabilities is None:
        digit_probabilities = DEFAULT_DIGIT_PROBABILITIES
    if isinstance(digit_probabilities, dict):
        probs = {str(k): float(v) for k, v in digit_probabilities.items()}
        if set(probs) != set(LABEL_NAMES):
            raise ValueError(
                f"`digit_probabilities` needs one entry per digit {LABEL_NAMES}. Received: digit_probabilities={digit_probabilities!r}"
            )
    else:
        values = list(digit_probabilities)
        if len(values) != len(LABEL_NAMES):
            raise ValueError(
                f"`digit_probabilities` needs {len(LABEL_NAMES)} values in {LABEL_NAMES} order. Received: digit_probabilities={digit_probabilities!r}"
            )
        probs = dict(zip(LABEL_NAMES, map(float, values)))
    if not all(0.0 <= p <= 1.0 for p in probs.values()):
        raise ValueError(
            f"`digit_probabilities` must be in [0, 1]. Received: digit_probabilities={digit_probabilities!r}"
        )
    return np.array([probs[d] for d in LABEL_NAMES])


def _draw_labels(rng, length, probs):
    """One sequence of multi-hot labels and lapses following Table 2."""
    labels = np.zeros((length, len(LABEL_NAMES)), dtype="float32")
    deltas = np.zeros(length, dtype="float32")
    for t in range(1, length):
        delta = int(rng.integers(1, MAX_DELTA + 1))
        present = {d for d, on in zip(LABEL_NAMES, labels[t - 1]) if on}
        allowed = allowed_next_digits(present, delta)
        draws = rng.random(len(LABEL_NAMES)) < probs
        for k, d in enumerate(LABEL_NAMES):
            labels[t, k] = float(d in allowed and draws[k])
        deltas[t] = delta
    return labels, deltas


def _render(rng, labels, glyphs, image_size, noise, noise_blur, contrast, background, max_rotation):
    length = len(labels)
    field = rng.standard_normal((length, image_size, image_size), dtype=np.float32)
    for t in range(length):
        field[t] = cv2.GaussianBlur(field[t], (0, 0), noise_blur)
    field /= max(float(field.std()), 1e-6)
    images = background + noise * field
    base = next(iter(glyphs.values())).shape[-1]
    for t in range(length):
        canvas = np.zeros((image_size, image_size), dtype="float32")
        for k in np.flatnonzero(labels[t]):
            stack = glyphs[LABEL_NAMES[k]]
            glyph = stack[rng.integers(len(stack))]
            scale = rng.uniform(0.8, 1.2)
            angle = rng.uniform(-max_rotation, max_rotation)
            half = 0.5 * base * scale
            cx, cy = rng.uniform(half, image_size - half, size=2)
            matrix = cv2.getRotationMatrix2D((base / 2.0, base / 2.0), angle, scale)
            matrix[:, 2] += (cx - base / 2.0, cy - base / 2.0)
            placed = cv2.warpAffine(glyph, matrix, (image_size, image_size), flags=cv2.INTER_LINEAR)
            np.maximum(canvas, placed, out=canvas)
        images[t] += contrast * canvas
    return np.clip(images, 0.0, 1.0)


def simulate_longitudinal_digits(
    num_sequences,
    image_size=64,
    noise=0.1,
    min_length=10,
    max_length=100,
    mean_length=20,
    digit_probabilities=None,
    seed=0,
    glyphs=None,
    noise_blur=1.5,
    contrast=0.5,
    background=0.35,
    max_rotation=30.0,
):
    """Simulates the paper's longitudinal digit sequences (Appendix, Table 2).

    Each sequence starts with an empty exam (S0, ``delta = 0``). Then, exam after exam, an
    integer lapse ``delta`` is drawn uniformly in ``[1, 10]``, the digits allowed by Table 2
    are found (`allowed_next_digits`), and each allowed digit is drawn with its fixed
    probability. An image is a grey background plus Gaussian-blurred noise plus the digits,
    each at a random position, scale (0.8-1.2 x ``image_size / 3``) and rotation, possibly
    overlapping (pixel-wise maximum).

    Sequence lengths are ``min_length + G`` clipped to `max_length`, ``G`` geometric on
    ``0, 1, ...`` with mean ``mean_length - min_length`` (10 to 100 exams, mean ~20, as in
    the paper; the clipping lowers the mean by less than 0.01).

    Args:
        num_sequences: number of sequences (patients).
        image_size: side of the square images (the digits are ~1/3 of it).
        noise: standard deviation of the blurred noise field; the digits add `contrast`.
            The defaults make a single image hard but not hopeless: a small CNN trained on
            ~5000 exams reached an average F-measure of 0.45-0.66 on the last exams,
            depending on the run (the paper's AlexNet: 0.72); at ``noise=0.2`` it stayed
            near 0.2.
        min_length: shortest sequence.
        max_length: longest sequence.
        mean_length: mean length before clipping, ``>= min_length``.
        digit_probabilities: ``{digit: p}`` or 5 values in `LABEL_NAMES` order: the chance
            that an allowed digit is drawn. Defaults to `DEFAULT_DIGIT_PROBABILITIES`.
        seed: seed; the same seed gives the same data set, and sequence ``i`` does not depend
            on `num_sequences`.
        glyphs: ``{digit: list of 2-D arrays}`` for the digits 0, 6, 8, 3, 9 (e.g. MNIST
            images); defaults to scikit-learn's bundled 8x8 digits.
        noise_blur: standard deviation (pixels) of the Gaussian blur of the noise.
        contrast: intensity a digit stroke adds to the background.
        background: grey level of the background.
        max_rotation: digits are rotated by up to this many degrees either way (keep it well
            below 90: a 6 turned upside down is a 9).

    Returns:
        A `kerasmed.io.LongitudinalSequences` with ``label_names == LABEL_NAMES`` and
        ``delta_unit == "steps"``: images ``(T_i, image_size, image_size)`` float32 in
        ``[0, 1]``, labels ``(T_i, 5)``, deltas ``(T_i,)`` with ``deltas[i][0] == 0``.

    Example:

    >>> data = simulate_longitudinal_digits(3, image_size=32, seed=1)
    >>> len(data), data.images[0].shape[1:], data.label_names
    (3, (32, 32), ('0', '6', '8', '3', '9'))

    Reference: Santeramo et al., 2018, Section 4 and Appendix.
    """
    num_sequences = check_whole_number(num_sequences, "num_sequences")
    image_size = check_whole_number(image_size, "image_size", minimum=12)
    if not (1 <= min_length <= mean_length <= max_length):
        raise ValueError(
            "Need 1 <= min_length <= mean_length <= max_length. "
            f"Received: min_length={min_length}, mean_length={mean_length}, max_length={max_length}"
        )
    if not (noise >= 0 and noise_blur > 0 and 0 <= max_rotation <= 180):
        raise ValueError(
            f"Need noise >= 0, noise_blur > 0 and 0 <= max_rotation <= 180. Received: noise={noise}, noise_blur={noise_blur}, max_rotation={max_rotation}"
        )
    probs = _check_probabilities(digit_probabilities)
    prepared = _prepare_glyphs(glyphs, max(3, round(image_size / 3)))
    extra = mean_length - min_length
    images, labels, deltas = [], [], []
    for child in np.random.SeedSequence(seed).spawn(int(num_sequences)):
        rng = np.random.default_rng(child)
        length = min_length + (int(rng.geometric(1.0 / (extra + 1.0))) - 1 if extra > 0 else 0)
        length = min(length, max_length)
        y, d = _draw_labels(rng, length, probs)
        x = _render(
            rng, y, prepared, image_size, noise, noise_blur, contrast, background, max_rotation
        )
        images.append(x)
        labels.append(y)
        deltas.append(d)
    return LongitudinalSequences(
        images=images,
        labels=labels,
        deltas=deltas,
        label_names=LABEL_NAMES,
        ids=tuple(f"sim{i:05d}" for i in range(int(num_sequences))),
        delta_unit="steps",
    )


def longitudinal_inputs(sequences, time_encoding="raw", channel_axis=True, **encoding_kwargs):
    """Per-sequence model inputs and targets for the time-modulated LSTM models.

    Args:
        sequences: a `kerasmed.io.LongitudinalSequences` (simulated or real).
        time_encoding: ``"raw"`` (the paper's), ``"scaled"``, ``"log"`` or ``"one_hot"``;
            see `kerasmed.preprocessing.encode_time_deltas`.
        channel_axis: add a trailing channel axis to the images, ``(T_i, H, W, 1)``.
        **encoding_kwargs: ``max_delta``, ``num_buckets``, ``bin_edges``, ``scale``.

    Returns:
        ``(inputs, targets)``: ``inputs`` is ``{"images": [...], "previous_labels": [...],
        "time": [...]}`` with one ``(T_i, ...)`` array per sequence, and ``targets`` the
        per-exam labels ``(T_i, L)``; pass both to `kerasmed.data.SequenceDataset` (its
        ``target="last"`` keeps the last exam's labels, the paper's task).

    Raises:
        ValueError: for a NaN or infinite time lapse, naming the sequence (index and id), the
            exam and the value.

    Example:

    >>> data = simulate_longitudinal_digits(2, image_size=24, min_length=3, mean_length=4)
    >>> inputs, targets = longitudinal_inputs(data, "one_hot", max_delta=10)
    >>> inputs["time"][0].shape[1], inputs["images"][0].shape[1:]
    (11, (24, 24, 1))
    """
    for i, deltas in enumerate(sequences.deltas):
        try:
            check_finite_array(deltas, f"deltas[{i}]")
        except ValueError as error:
            raise ValueError(f"Sequence {i} (id {sequences.ids[i]!r}): {error}") from None
    images = [x[..., None] if channel_axis else x for x in sequences.images]
    return (
        {
            "images": images,
            "previous_labels": [previous_labels(y) for y in sequences.labels],
            "time": [
                encode_time_deltas(d, time_encoding, **encoding_kwargs) for d in sequences.deltas
            ],
        },
        list(sequences.labels),
    )
