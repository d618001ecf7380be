"""IRMA codes: parsing, coarser levels of the hierarchy, integer labels, class imbalance.

The IRMA code (Lehmann et al., 2003) classifies a medical image on four axes, written
``TTTT-DDD-AAA-BBB`` (13 characters and three dashes):

- ``T`` technical (4 characters): imaging modality, e.g. ``1121`` = x-ray, plain radiography,
  analog, overview image;
- ``D`` directional (3): body orientation, e.g. ``127`` = coronal, anteroposterior, supine;
- ``A`` anatomical (3): body region and two sub-regions, e.g. ``732`` = abdomen, lower abdomen,
  middle quadrant;
- ``B`` biological (3): organ system, e.g. ``500`` = uropoietic system.

Each axis is a hierarchy read from left to right: every character refines the one before it,
and ``0`` means "not specified" at that level. A character is a digit or a lowercase letter
(``a`` ... ``z``, used where a node has more than nine children: ImageCLEF 2009 has codes such
as ``1121-4a0-914-700``, ``1121-120-91a-700`` and ``112d-121-500-000``). What `parse_irma_code`
accepts is exactly that: four axes of 4, 3, 3, 3 characters in ``[0-9a-z]`` joined by ``-``, and,
within an axis, nothing specified below an unspecified level (``"1121-102-..."`` is refused:
``2`` cannot refine an unspecified ``0``; pass ``strict_hierarchy=False`` to allow it). Uppercase
letters, whitespace, and the ``*`` that the 2009 evaluation allows in *predictions* ("don't
know") are refused.

- `parse_irma_code` -> a frozen `IrmaCode` (``.technical``, ``.directional``, ``.anatomical``,
  ``.biological``; `IrmaCode.truncate` keeps the first characters of an axis, `IrmaCode.depth`
  counts the specified ones);
- `IrmaLabelMap`: codes <-> integer labels 0 ... K - 1, in sorted order of the code strings
  (the order of Pelka et al.'s ``labels_IRMA_Flat.txt`` for the 193 classes of 2009);
- `class_imbalance_report`: counts per class in the training and test sets, and the test
  classes that are rare or absent in training (the difficulty the paper points out).

Reference: T. M. Lehmann, H. Schubert, D. Keysers, M. Kohnen, B. B. Wein, *The IRMA code for
unique classification of medical images*, Proc. SPIE 5033, 2003; X. Nkwentsha et al.,
Section III-A; T. Tommasi et al., *Overview of the CLEF 2009 medical image annotation track*.
"""

from __future__ import annotations

import collections
import dataclasses
import re

import numpy as np

from kerasmed.validation import check_non_negative_int

__all__ = [
    "IRMA_AXES",
    "IrmaCode",
    "parse_irma_code",
    "IrmaLabelMap",
    "ClassImbalanceReport",
    "class_imbalance_report",
]

# axis name -> number of characters
IRMA_AXES = {"technical": 4, "directional": 3, "anatomical": 3, "biological": 3}
_CHARACTER = "[0-9a-z]"
_PATTERN = re.compile("-".join(f"({_CHARACTER}{{{n}}})" for n in IRMA_AXES.values()))


@dataclasses.dataclass(frozen=True, order=True)
class IrmaCode:
    """One IRMA code ``TTTT-DDD-AAA-BBB``; build it with `parse_irma_code`.

    Attributes:
        technical: the 4 characters of the T axis (modality).
        directional: the 3 characters of the D axis (orientation).
        anatomical: the 3 characters of the A axis (body region).
        biological: the 3 characters of the B axis (organ system).

    ``str(code)`` gives the 16-character code back; codes compare and sort as their strings.
    """

    technical: str
    directional: str
    anatomical: str
    biological: str

    def __post_init__(self):
        for axis, length in IRMA_AXES.items():
            value = getattr(self, axis)
            if not (isinstance(value, str) and re.fullmatch(f"{_CHARACTER}{{{length}}}", value)):
                raise ValueError(
                    f"`{axis}` must be {length} characters 0-9 or a-z. Received: {axis}={value!r}"
                )

    def __str__(self):
        return "-".join(self.axes())

    def axes(self):
        """The four axes' strings, in the order T, D, A, B."""
        return tuple(getattr(self, axis) for axis in IRMA_AXES)

    def depth(self, axis):
        """Number of specified levels of `axis`: its characters before the first ``0``.

        Example:

        >>> parse_irma_code("1121-120-91a-700").depth("anatomical")
        3
        >>> parse_irma_code("1123-110-500-000").depth("anatomical")
        1
        """
        value = self._axis(axis)
        return len(value.split("0", 1)[0])

    def truncate(self, technical=None, directional=None, anatomical=None, biological=None):
        """The code at a coarser level: each axis keeps its first N characters, the rest ``0``.

        Args:
            technical, directional, anatomical, biological: characters to keep on that axis
                (0 ... the axis length); ``None`` keeps the axis whole.

        Returns:
            A new `IrmaCode`.

        Example:

        >>> code = parse_irma_code("1121-127-732-500")
        >>> str(code.truncate(anatomical=1))  # abdomen, whatever the sub-region
        '1121-127-700-500'
        >>> str(code.truncate(technical=1, directional=1, anatomical=2, biological=0))
        '1000-100-730-000'
        """
        keep = {
            "technical": technical,
            "directional": directional,
            "anatomical": anatomical,
            "biological": biological,
        }
        values = {}
        for axis, length in IRMA_AXES.items():
            value = getattr(self, axis)
            if keep[axis] is not None:
                n = check_non_negative_int(keep[axis], axis)
                if n > length:
                    raise ValueError(
                        f"The {axis} axis has {length} characters; `{axis}` must be in "
                        f"0 ... {length}. Received: {axis}={n}"
                    )
                value = value[:n] + "0" * (length - n)
            values[axis] = value
        return IrmaCode(**values)

    def _axis(self, axis):
        if axis not in IRMA_AXES:
            raise ValueError(f"`axis` must be one of {tuple(IRMA_AXES)}. Received: axis={axis!r}")
        return getattr(self, axis)


def parse_irma_code(code, strict_hierarchy=True):
    """Parses ``"TTTT-DDD-AAA-BBB"`` into an `IrmaCode`, checking every position.

    Args:
        code: the code as a string (an `IrmaCode` is returned as it is).
        strict_hierarchy: refuse a specified character after an unspecified ``0`` within an
            axis (the IRMA hierarchy has no child under "not specified").

    Returns:
        An `IrmaCode`.

    Raises:
        ValueError: a malformed code; the message quotes it.

    Example:

    >>> code = parse_irma_code("1121-127-732-500")
    >>> code.technical, code.directional, code.anatomical, code.biological
    ('1121', '127', '732', '500')
    >>> parse_irma_code("1121-127-73-500")
    Traceback (most recent call last):
    ...
    ValueError: An IRMA code is TTTT-DDD-AAA-BBB: 4, 3, 3 and 3 characters 0-9 or a-z joined by '-'. Received: code='1121-127-73-500'

    Reference: Lehmann et al., SPIE 2003; Nkwentsha et al., Section III-A.
    """
    if isinstance(code, IrmaCode):
        return code
    match = _PATTERN.fullmatch(code) if isinstance(code, str) else None
    if match is None:
        raise ValueError(
            "An IRMA code is TTTT-DDD-AAA-BBB: 4, 3, 3 and 3 characters 0-9 or a-z joined by "
            f"'-'. Received: code={code!r}"
        )
    parsed = IrmaCode(*match.groups())
    if strict_hierarchy:
        for axis, value in zip(IRMA_AXES, parsed.axes()):
            depth = parsed.depth(axis)
            if value[depth:].strip("0"):
                raise ValueError(
                    f"The {axis} axis {value!r} specifies a level below an unspecified one "
                    f"('0' at position {depth + 1}); pass strict_hierarchy=False to accept it. "
                    f"Received: code={code!r}"
                )
    return parsed


class IrmaLabelMap:
    """IRMA codes <-> integer labels ``0 ... K - 1``, the codes in sorted string order.

    Sorting the strings makes the labels deterministic and independent of the order the codes
    were seen in (digits sort before letters, so ``1121-129-...`` < ``1121-12f-...``); for the
    193 codes of ImageCLEF 2009 it is the order of Pelka et al.'s ``labels_IRMA_Flat.txt``.

    Args:
        codes: any iterable of codes (strings or `IrmaCode`), repeats allowed; each is parsed.
        strict_hierarchy: as in `parse_irma_code`.

    Example:

    >>> labels = IrmaLabelMap(["1123-110-500-000", "1121-120-200-700", "1123-110-500-000"])
    >>> labels.codes, labels.num_classes
    (('1121-120-200-700', '1123-110-500-000'), 2)
    >>> labels.encode(["1123-110-500-000", "1121-120-200-700"]).tolist()
    [1, 0]
    >>> labels.decode([0, 1, 1])
    ['1121-120-200-700', '1123-110-500-000', '1123-110-500-000']
    """

    def __init__(self, codes, strict_hierarchy=True):
        parsed = {str(parse_irma_code(code, strict_hierarchy)) for code in codes}
        if not parsed:
            raise ValueError(f"`codes` must hold at least one code. Received: codes={codes!r}")
        self.codes = tuple(sorted(parsed))
        self._index = {code: i for i, code in enumerate(self.codes)}

    @property
    def num_classes(self):
        return len(self.codes)

    def __len__(self):
        return len(self.codes)

    def __contains__(self, code):
        return str(code) in self._index

    def __eq__(self, other):
        return isinstance(other, IrmaLabelMap) and self.codes == other.codes

    def __repr__(self):
        return f"IrmaLabelMap({self.num_classes} classes)"

    def encode(self, codes):
        """Integer labels of `codes` (``(N,)`` int64); a code not in the map is a ValueError."""
        labels = []
        for code in codes:
            key = str(parse_irma_code(code, strict_hierarchy=False))
            if key not in self._index:
                raise ValueError(
                    f"Code {key!r} is not one of the {self.num_classes} classes of this label "
                    f"map (build the map from the training and test codes together). "
                    f"Received: code={code!r}"
                )
            labels.append(self._index[key])
        return np.asarray(labels, dtype=np.int64)

    def decode(self, labels):
        """The code strings of integer `labels`."""
        labels = np.asarray(labels)
        if labels.size and (
            not np.issubdtype(labels.dtype, np.integer)
            or labels.min() < 0
            or labels.max() >= self.num_classes
        ):
            raise ValueError(
                f"`labels` must be integers in 0 ... {self.num_classes - 1}. "
                f"Received: labels={labels.tolist()}"
            )
        return [self.codes[i] for i in labels.ravel().tolist()]

    def get_config(self):
        """``{"codes": [...]}``: JSON-friendly; ``IrmaLabelMap(**config)`` rebuilds the map."""
        return {"codes": list(self.codes)}


@dataclasses.dataclass(frozen=True)
class ClassImbalanceReport:
    """Images per class in the training and test sets (`class_imbalance_report`).

    Attributes:
        codes: the classes (sorted code strings), training and test together.
        train_counts: ``{code: number of training images}`` for every class (0 included).
        test_counts: ``{code: number of test images}`` for every class (0 included).
        rare_threshold: a class is rare in training with fewer images than this.

    Properties (computed from the counts):
        num_train, num_test: the images in each set.
        absent_in_train: test classes with no training image.
        rare_in_train: test classes with 1 ... ``rare_threshold - 1`` training images.
        test_images_absent: test images whose class has no training image.
        test_images_rare: test images whose class is rare in training.
        imbalance_ratio: largest / smallest training count among the classes in training.
    """

    codes: tuple
    train_counts: dict
    test_counts: dict
    rare_threshold: int

    @property
    def num_train(self):
        return sum(self.train_counts.values())

    @property
    def num_test(self):
        return sum(self.test_counts.values())

    @property
    def absent_in_train(self):
        return tuple(c for c in self.codes if self.test_counts[c] and not self.train_counts[c])

    @property
    def rare_in_train(self):
        rare = range(1, self.rare_threshold)
        return tuple(c for c in self.codes if self.test_counts[c] and self.train_counts[c] in rare)

    @property
    def test_images_absent(self):
        return sum(self.test_counts[c] for c in self.absent_in_train)

    @property
    def test_images_rare(self):
        return sum(self.test_counts[c] for c in self.rare_in_train)

    @property
    def imbalance_ratio(self):
        present = [n for n in self.train_counts.values() if n]
        return float(max(present) / min(present)) if present else float("nan")

    def to_dict(self):
        """A JSON-friendly dict of every field and property."""
        data = dataclasses.asdict(self)
        for name in ("codes", "num_train", "num_test", "absent_in_train", "rare_in_train",
                     "test_images_absent", "test_images_rare", "imbalance_ratio"):  # fmt: skip
            value = getattr(self, name)
            data[name] = list(value) if isinstance(value, tuple) else value
        return data

    def __str__(self):
        n_test = max(self.num_test, 1)
        trained = [c for c in self.codes if self.train_counts[c]]
        lines = [
            f"{len(self.codes)} classes: {len(trained)} in training ({self.num_train} images), "
            f"{sum(1 for c in self.codes if self.test_counts[c])} in test ({self.num_test} images)",
            f"training images per class: {min(self.train_counts[c] for c in trained)} ... "
            f"{max(self.train_counts[c] for c in trained)} (ratio {self.imbalance_ratio:.1f})"
            if trained
            else "no training images",
            f"test classes absent from training: {len(self.absent_in_train)} "
            f"({self.test_images_absent} test images, {self.test_images_absent / n_test:.1%})",
            f"test classes with < {self.rare_threshold} training images: "
            f"{len(self.rare_in_train)} ({self.test_images_rare} test images, "
            f"{self.test_images_rare / n_test:.1%})",
            f"{'code':<18}{'train':>7}{'test':>7}",
        ]
        for code in self.codes:
            flag = (
                "  absent in training"
                if code in self.absent_in_train
                else "  rare in training"
                if code in self.rare_in_train
                else ""
            )
            lines.append(f"{code:<18}{self.train_counts[code]:>7}{self.test_counts[code]:>7}{flag}")
        return "\n".join(lines)


def class_imbalance_report(train_codes, test_codes, rare_threshold=10):
    """Counts the images of each class in a training and a test set.

    ImageCLEF 2009 was built with a strong imbalance, and its test images come mostly from
    classes with few training examples (Nkwentsha et al., Section III-A); this report measures
    both on any split.

    Args:
        train_codes: the code of every training image (strings or `IrmaCode`).
        test_codes: the code of every test image.
        rare_threshold: a class with fewer training images than this (and at least one) is rare.

    Returns:
        A `ClassImbalanceReport` (``print`` it for a table).

    Example:

    >>> report = class_imbalance_report(
    ...     ["1121-120-200-700"] * 12 + ["1123-110-500-000"] * 3,
    ...     ["1121-120-200-700", "1123-110-500-000", "1121-120-800-700"],
    ... )
    >>> report.absent_in_train, report.rare_in_train, report.imbalance_ratio
    (('1121-120-800-700',), ('1123-110-500-000',), 4.0)

    Reference: Nkwentsha et al., Section III-A; Tommasi et al., CLEF 2009.
    """
    rare_threshold = check_non_negative_int(rare_threshold, "rare_threshold")
    train = collections.Counter(str(parse_irma_code(c)) for c in train_codes)
    test = collections.Counter(str(parse_irma_code(c)) for c in test_codes)
    codes = tuple(sorted(set(train) | set(test)))
    train_counts = {c: train.get(c, 0) for c in codes}
    test_counts = {c: test.get(c, 0) for c in codes}
    return ClassImbalanceReport(codes, train_counts, test_counts, rare_threshold)
