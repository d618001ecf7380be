"""Input checks and degenerate-statistic warnings shared by every metric in `kerasmed.metrics`.

Every metric reads its labels and scores through these helpers, so a NaN score, a label that is
not 0/1, an empty input or mismatched lengths get the same message everywhere (built on
`kerasmed.validation`): the argument, the index of the first bad value and the value. A result
that is defined but says little (a single class in the labels, constant scores, a confidence
interval of width zero) comes with a `DegenerateStatisticWarning`.
"""

from __future__ import annotations

import warnings

import numpy as np

from kerasmed.validation import check_binary_array, check_finite_array


class DegenerateStatisticWarning(UserWarning):
    """A metric's value is defined but degenerate (one class, constant scores, zero width)."""


def warn_degenerate(message):
    warnings.warn(message, DegenerateStatisticWarning, stacklevel=3)


def binary_labels(values, name="y_true"):
    """0/1 (or bool) labels, not empty, as a bool array."""
    return check_binary_array(values, name, allow_empty=False).astype(bool)


def finite_scores(values, name="y_score"):
    """Numbers without NaN/inf, as float64 (bools and ints are read as numbers)."""
    return check_finite_array(values, name).astype(np.float64)


def same_shape(names, arrays, what="shape"):
    """Refuses arrays whose shapes (``what="shape"``) or lengths (``what="length"``) differ."""
    sizes = [a.shape if what == "shape" else a.shape[:1] for a in arrays]
    if any(size != sizes[0] for size in sizes[1:]):
        shapes = ", ".join(f"{n}.shape={a.shape}" for n, a in zip(names, arrays))
        joined = " and ".join(f"`{n}`" for n in names)
        raise ValueError(f"{joined} must have the same {what}. Received: {shapes}")


def check_names(names, count, arg):
    """``count`` distinct key names (default ``"0", "1", ...``), none of them ``"avg"``."""
    if names is None:
        return [str(i) for i in range(count)]
    names = [str(name) for name in names]
    if len(names) != count or len(set(names)) != count or "avg" in names:
        raise ValueError(
            f"`{arg}` must be {count} distinct names other than 'avg'. Received: {arg}={names}"
        )
    return names


def warn_single_class(truth, label_names=None):
    """Warns when a column of bool labels holds one class only (ratios fall to zero_division)."""
    truth = truth.reshape(len(truth), -1)
    positives = truth.sum(axis=0)
    single = np.flatnonzero((positives == 0) | (positives == len(truth)))
    if single.size:
        names = [label_names[i] if label_names else str(i) for i in single[:10]]
        where = "" if label_names is None else f" (labels {names})"
        warn_degenerate(
            f"`y_true` holds a single class{where} among {len(truth)} samples: the metrics say "
            "nothing about the missing class (a ratio with a zero denominator takes "
            "`zero_division`)."
        )
