"""Argument checks shared by every kerasmed module, with one message shape.

Each check raises ``ValueError`` whose message names the argument, says what it must be and ends
with ``Received: name=value`` (Keras's own convention), and returns the value standardized
(a Python ``int``, a ``tuple`` ...), so a caller writes ``units = check_positive_int(units,
"units")``. No Keras import: data, io and preprocessing modules use these checks too.

Example:

>>> check_positive_int(3, "units")
3
>>> check_positive_int(0, "units")
Traceback (most recent call last):
...
ValueError: `units` must be a positive integer. Received: units=0
>>> check_int_tuple(3, "kernel_size", 2)
(3, 3)

The array checks (`check_finite_array`, `check_binary_array`) name the index of the first bad
value and the value itself, e.g. ``Received: y_score[3]=nan``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _fail(name, what, value):
    raise ValueError(f"`{name}` must be {what}. Received: {name}={value!r}")


def is_integer(value) -> bool:
    """``True`` for Python and NumPy integers; ``False`` for bools, floats and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(value, name, allow_none=False):
    """Returns `value` as an ``int`` if it is an integer >= 1 (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    if not is_integer(value) or value < 1:
        _fail(name, "a positive integer" + (" or None" if allow_none else ""), value)
    return int(value)


def check_non_negative_int(value, name):
    """Returns `value` as an ``int`` if it is an integer >= 0."""
    if not is_integer(value) or value < 0:
        _fail(name, "a non-negative integer", value)
    return int(value)


def check_whole_number(value, name, minimum=1, allow_none=False):
    """Returns `value` as an ``int`` if it is a whole number >= `minimum` (``2`` or ``2.0``).

    For the arguments that have always taken integral floats (``batch_size=32.0``); NaN, inf,
    bools, strings and fractions are refused.
    """
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value != int(value)
        or value < minimum
    ):
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        _fail(name, what + (" or None" if allow_none else ""), value)
    return int(value)


def check_size_range(low, high, low_name, high_name, minimum=1):
    """Returns ``(low, high)`` as ints if both are whole numbers with ``minimum <= low <= high``.

    For a pair of bounds such as ``min_slices`` / ``max_slices``; the message names both.
    """
    if (
        not all(
            not isinstance(v, bool)
            and isinstance(v, numbers.Real)
            and math.isfinite(v)
            and v == int(v)
            for v in (low, high)
        )
        or not minimum <= low <= high
    ):
        raise ValueError(
            f"`{low_name}` and `{high_name}` must be integers with {minimum} <= {low_name} <= "
            f"{high_name}. Received: {low_name}={low!r}, {high_name}={high!r}"
        )
    return int(low), int(high)


def check_finite_number(value, name):
    """Returns `value` as a ``float`` if it is a finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(name, "a finite number", value)
    return float(value)


def _refuse_entries(name, array, bad, what):
    """Raises when any of `bad` is set, naming how many and the first (index and value)."""
    if not bad.any():
        return
    first = int(np.flatnonzero(bad.ravel())[0])
    index = np.unravel_index(first, array.shape)
    where = f"[{', '.join(str(int(i)) for i in index)}]" if array.ndim else ""
    raise ValueError(
        f"`{name}` must hold {what}; {int(bad.sum())} of {array.size} values are not. "
        f"Received: {name}{where}={array.ravel()[first].item()!r}"
    )


def check_finite_array(values, name, allow_empty=True):
    """Returns `values` as a NumPy array if it holds numbers (or bools) and no NaN or inf.

    The message names the index of the first bad value and the value, e.g. ``Received:
    time[1, 0]=nan``; a non-numeric array (strings, objects) names its dtype.
    """
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(
            f"`{name}` must hold numbers. Received: {name} with dtype {array.dtype} "
            f"(first values {array.ravel()[:3].tolist()})"
        )
    if not allow_empty and array.size == 0:
        raise ValueError(f"`{name}` must not be empty. Received: {name}.shape={array.shape}")
    if array.dtype.kind == "f":
        _refuse_entries(name, array, ~np.isfinite(array), "finite numbers (no NaN or inf)")
    return array


def check_binary_array(values, name, allow_empty=True):
    """Returns `values` as a NumPy array if it holds only 0/1 labels (or bools).

    The message names the index of the first other value and that value.
    """
    array = check_finite_array(values, name, allow_empty)
    _refuse_entries(name, array, (array != 0) & (array != 1), "binary 0/1 labels (or bools)")
    return array


def check_rate(value, name):
    """Returns `value` as a ``float`` if it is a number in [0, 1] (a dropout rate, a fraction)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        _fail(name, "a number in [0, 1]", value)
    return float(value)


def check_one_of(value, name, choices):
    """Returns `value` if it is one of `choices` (compared with ``==``, bools kept apart)."""
    for choice in choices:
        if value == choice and isinstance(value, bool) == isinstance(choice, bool):
            return value
    _fail(name, f"one of {tuple(choices)!r}", value)


def check_each_one_of(values, name, choices):
    """Returns `values` as a ``tuple`` if each of them is one of `choices` (see `check_one_of`)."""
    return tuple(check_one_of(value, name, choices) for value in values)


def check_int_tuple(value, name, length):
    """Standardizes a positive int or `length` positive ints to a tuple of `length` ints."""
    values = (value,) * length if is_integer(value) else value
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != length or not all(is_integer(v) and v > 0 for v in values):
        _fail(name, f"a positive integer or a tuple of {length} positive integers", value)
    return tuple(int(v) for v in values)
