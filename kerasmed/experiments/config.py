"""Experiment configuration: presets as frozen data, and validated overrides.

Every experiment describes its settings with one frozen dataclass (``TlstmConfig``,
``IchConfig``, ``FcslstmConfig`` in `kerasmed.experiments.presets`), and each preset is one
instance of it inside a `Preset` record that carries the preset's expected runtime and
hardware beside it (as keras-hub keeps its preset metadata). Nothing is mutated: a run that
changes a setting passes an *override*, which `apply_overrides` checks against the
dataclass's fields and types and applies with ``dataclasses.replace``; the preset itself
stays as it is, so nothing persists from one run to the next.

Overrides are ``{key: value}``. A key is a field name, or a dotted path into a nested
frozen setting (``"sequence_models.bi_fcslstm.operator_groups"``); a dict value for a
nested setting updates some of its fields (``{"sequence_models": {"bi_fcslstm":
{"remat": True}}}``). An unknown key is a ``ValueError`` that lists the valid ones and
suggests the closest; a value of the wrong type is a ``ValueError`` naming the field, the
type it expects and the value. Lists are accepted for tuple fields and integers for float
fields (both converted).

This module imports no Keras, so ``kerasmed list`` and the checks of ``kerasmed reproduce
--set`` run before any backend starts.

Example:

>>> from kerasmed.experiments.presets.fcslstm import PRESETS
>>> quick = PRESETS["quick"].config
>>> config = apply_overrides(
...     quick, {"epochs": 5, "sequence_models.bi_fcslstm.operator_groups": [2, 3]}
... )
>>> config.epochs, config.sequence_models.bi_fcslstm.operator_groups, quick.epochs
(5, (2, 3), 60)
>>> apply_overrides(quick, {"epoch": 5})
Traceback (most recent call last):
...
ValueError: Unknown setting 'epoch' (did you mean 'epochs'?). Valid settings: ...
>>> apply_overrides(quick, {"epochs": "5"})
Traceback (most recent call last):
...
ValueError: `epochs` must be int. Received: epochs='5'
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = [
    "Preset",
    "apply_overrides",
    "config_to_dict",
    "make_presets",
    "normalize_overrides",
    "resolve_config",
]


@dataclasses.dataclass(frozen=True)
class Preset:
    """One preset of an experiment: its settings and what a run of it costs.

    Args:
        name: the preset's name (``"quick"``, ``"paper"``), as given to ``--preset``.
        config: the experiment's frozen config instance for this preset.
        runtime: expected wall time of ``kerasmed reproduce``, e.g. ``"~4 min"``.
        hardware: what that time was measured or estimated on, e.g. ``"a 2-core CPU"``.

    Example:

    >>> preset = Preset("quick", config=None, runtime="~2 min", hardware="a 2-core CPU")
    >>> preset.expected
    '~2 min on a 2-core CPU'
    """

    name: str
    config: Any
    runtime: str
    hardware: str

    @property
    def expected(self) -> str:
        """The runtime with its hardware, as ``kerasmed list`` shows it."""
        return f"{self.runtime} on {self.hardware}"


def make_presets(*presets: Preset) -> Mapping[str, Preset]:
    """A read-only ``{name: Preset}`` mapping, in the order given."""
    return types.MappingProxyType({preset.name: preset for preset in presets})


def resolve_config(presets, preset, overrides=None, experiment=None):
    """The config of `preset` with `overrides` applied (see `apply_overrides`).

    Args:
        presets: ``{name: Preset}``, e.g. an experiment's ``PRESETS``.
        preset: a preset name.
        overrides: ``{key: value}`` or ``None``.
        experiment: the experiment's name, for the error message.

    Raises:
        ValueError: for an unknown preset (the message lists the valid ones) or override.
    """
    if preset not in presets:
        where = f" for experiment {experiment!r}" if experiment else ""
        raise ValueError(
            f"Unknown preset{where}. Valid presets: {', '.join(presets)}. "
            f"Received: preset={preset!r}"
        )
    return apply_overrides(presets[preset].config, overrides or {})


def apply_overrides(config, overrides):
    """Returns a copy of the frozen dataclass `config` with `overrides` applied.

    Args:
        config: a frozen dataclass instance (nested frozen dataclasses allowed).
        overrides: ``{key: value}``: a field name or dotted path per key, see the module.

    Returns:
        A new instance; `config` is unchanged.

    Raises:
        ValueError: for an unknown key (listing the valid ones, with the closest as a
            suggestion) or a value of the wrong type (naming the field and its type).
    """
    for key, value in normalize_overrides(config, overrides).items():
        config = _replace_path(config, key.split("."), value)
    return config


def normalize_overrides(config, overrides):
    """Checks `overrides` against `config`; returns them as ``{dotted key: converted value}``.

    Nested dicts become dotted keys, lists for tuple fields become tuples and ints for float
    fields floats: this is what ``results.json`` records under ``"overrides"``.
    """
    if not isinstance(overrides, Mapping):
        raise ValueError(
            f"`overrides` must be a mapping of setting names to values. "
            f"Received: overrides={overrides!r}"
        )
    flat = {}
    for key, value in overrides.items():
        _flatten(config, str(key), value, flat)
    return flat


def config_to_dict(config) -> dict:
    """The config as plain data (nested dicts; tuples become lists in JSON)."""
    return dataclasses.asdict(config)


def _flatten(config, key, value, flat):
    owner, name = config, key
    parts = key.split(".")
    for depth, part in enumerate(parts):
        hints = _field_types(owner, ".".join(parts[:depth]), key, value)
        if part not in hints:
            _unknown(owner, parts[:depth], part, key, value)
        if depth < len(parts) - 1:
            owner = getattr(owner, part)
        name = part
    annotation = _field_types(owner, "", key, value)[name]
    target = getattr(owner, name)
    if dataclasses.is_dataclass(target) and isinstance(value, Mapping):
        for inner_key, inner_value in value.items():
            _flatten(config, f"{key}.{inner_key}", inner_value, flat)
        return
    flat[key] = _convert(value, annotation, key)


def _field_types(owner, prefix, key, value):
    if not (dataclasses.is_dataclass(owner) and not isinstance(owner, type)):
        raise ValueError(
            f"`{prefix}` is not a group of settings, so `{key}` cannot be set. "
            f"Received: {key}={value!r}"
        )
    hints = typing.get_type_hints(type(owner))
    return {field.name: hints[field.name] for field in dataclasses.fields(owner)}


def _unknown(owner, parents, part, key, value):
    valid = [field.name for field in dataclasses.fields(owner)]
    close = difflib.get_close_matches(part, valid, n=1)
    prefix = ".".join(parents) + "." if parents else ""
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    listed = ", ".join(prefix + name for name in valid)
    raise ValueError(
        f"Unknown setting {key!r}{hint}. Valid settings: {listed}. Received: {key}={value!r}"
    )


def _replace_path(config, parts, value):
    if len(parts) == 1:
        return dataclasses.replace(config, **{parts[0]: value})
    inner = _replace_path(getattr(config, parts[0]), parts[1:], value)
    return dataclasses.replace(config, **{parts[0]: inner})


_MISMATCH = object()


def _convert(value, annotation, key):
    converted = _match(value, annotation)
    if converted is _MISMATCH:
        raise ValueError(f"`{key}` must be {_describe(annotation)}. Received: {key}={value!r}")
    return converted


def _match(value, annotation):
    """`value` converted to `annotation`, or `_MISMATCH`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if annotation is None or annotation is type(None):
        return None if value is None else _MISMATCH
    if origin in (typing.Union, types.UnionType):
        for option in args:
            converted = _match(value, option)
            if converted is not _MISMATCH:
                return converted
        return _MISMATCH
    if origin is typing.Literal:
        for choice in args:
            if value == choice and isinstance(value, bool) == isinstance(choice, bool):
                return choice
        return _MISMATCH
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return _MISMATCH
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_match(item, args[0]) for item in value]
        elif len(args) == len(value):
            items = [_match(item, arg) for item, arg in zip(value, args)]
        else:
            return _MISMATCH
        return _MISMATCH if any(i is _MISMATCH for i in items) else tuple(items)
    if annotation is bool:
        return value if isinstance(value, bool) else _MISMATCH
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISMATCH
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if ok else _MISMATCH
    if isinstance(annotation, type):
        return value if isinstance(value, annotation) else _MISMATCH
    return _MISMATCH


def _describe(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return "None"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {_describe(args[0])}"
        return "a tuple (" + ", ".join(_describe(a) for a in args) + ")"
    if dataclasses.is_dataclass(annotation):
        return f"a {annotation.__name__} (set its fields with dotted keys)"
    return getattr(annotation, "__name__", str(annotation))
