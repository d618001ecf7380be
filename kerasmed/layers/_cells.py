"""Helpers shared by kerasmed's RNN cells and layers (a layer wrapping one cell).

One list of arguments each: the Keras LSTM arguments both cells take (`LSTM_ARGUMENTS`, set by
`set_lstm_arguments`, saved by `lstm_config`), and a layer's signature made from its cell's
(`define_arguments` / `bind_arguments`), so the layer builds its cell from the names the cell
declares and derives its config from the cell's config instead of listing them again.
"""

import inspect

import keras
from keras import ops

_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
REQUIRED = inspect.Parameter.empty  # the default of an argument that has none

# The arguments of `keras.layers.LSTMCell` (and `ConvLSTM2D`'s cell) that both of our cells take,
# in Keras's order and with Keras's defaults.
LSTM_ARGUMENTS = (
    ("use_bias", True),
    ("kernel_initializer", "glorot_uniform"),
    ("recurrent_initializer", "orthogonal"),
    ("bias_initializer", "zeros"),
    ("unit_forget_bias", True),
    ("kernel_regularizer", None),
    ("recurrent_regularizer", None),
    ("bias_regularizer", None),
    ("kernel_constraint", None),
    ("recurrent_constraint", None),
    ("bias_constraint", None),
    ("dropout", 0.0),
    ("recurrent_dropout", 0.0),
    ("seed", None),
)

# `keras.layers.RNN`'s own arguments, as `LSTM` / `ConvLSTM2D` spell them after the cell's.
RNN_ARGUMENTS = (
    ("return_sequences", False),
    ("return_state", False),
    ("go_backwards", False),
    ("stateful", False),
)

_KINDS = {
    "initializer": keras.initializers,
    "regularizer": keras.regularizers,
    "constraint": keras.constraints,
}


def _kind(name):
    return _KINDS.get(name.rsplit("_", 1)[-1])


def set_lstm_arguments(cell, arguments):
    """Sets the `LSTM_ARGUMENTS` of `cell` from `arguments` (a dict), as `keras.layers.LSTMCell`
    does: initializers, regularizers and constraints through their `get`, rates as floats."""
    for name, _ in LSTM_ARGUMENTS:
        value = arguments[name]
        kind = _kind(name)
        if kind is not None:
            value = kind.get(value)
        elif name in ("dropout", "recurrent_dropout"):
            value = float(value)
        setattr(cell, name, value)
    cell.seed_generator = keras.random.SeedGenerator(seed=cell.seed)


def lstm_config(cell):
    """The serialized `LSTM_ARGUMENTS` of `cell` (the inverse of `set_lstm_arguments`)."""
    config = {}
    for name, _ in LSTM_ARGUMENTS:
        value = getattr(cell, name)
        kind = _kind(name)
        config[name] = value if kind is None else kind.serialize(value)
    return config


def lstm_bias_initializer(cell, units):
    """The initializer of a `(4 * units,)` gate bias: `cell.bias_initializer`, with the forget
    gate's part set to ones when `cell.unit_forget_bias` (gate order i, f, c, o as in Keras)."""
    if not cell.unit_forget_bias:
        return cell.bias_initializer

    def bias_initializer(_, *args, **kwargs):
        return ops.concatenate(
            [
                cell.bias_initializer((units,), *args, **kwargs),
                keras.initializers.get("ones")((units,), *args, **kwargs),
                cell.bias_initializer((2 * units,), *args, **kwargs),
            ]
        )

    return bias_initializer


def argument_names(cls):
    """The named arguments of ``cls.__init__`` (set by `define_arguments`)."""
    return cls._argument_names


def define_arguments(cls, arguments):
    """Gives ``cls.__init__(self, *args, **kwargs)`` the signature ``(self, <arguments>, **kwargs)``.

    `arguments` is a sequence of ``(name, default)`` (`REQUIRED` for none). ``help(cls)``,
    ``inspect.signature`` and notebook introspection show the full signature; ``__init__`` reads
    its arguments with `bind_arguments` (positional and keyword, as before).
    """
    if "__init__" not in vars(cls):
        raise TypeError(f"{cls.__name__} must define its own __init__")
    parameters = [inspect.Parameter("self", _POSITIONAL)]
    parameters += [inspect.Parameter(name, _POSITIONAL, default=d) for name, d in arguments]
    parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    cls.__init__.__signature__ = inspect.Signature(parameters)
    cls._argument_names = tuple(name for name, _ in arguments)
    return cls


def layer_arguments(cell_cls, inserted=None, trailing=RNN_ARGUMENTS):
    """The arguments of an RNN layer over `cell_cls`: the cell's own, with the layer's
    `inserted[name]` (a sequence of ``(name, default)``) right after the cell argument `name`,
    then `trailing`."""
    inserted = inserted or {}
    signature = inspect.signature(cell_cls.__init__).parameters
    arguments = []
    for name in argument_names(cell_cls):
        arguments.append((name, signature[name].default))
        arguments.extend(inserted.get(name, ()))
    return tuple(arguments) + tuple(trailing)


def bind_arguments(cls, instance, args, kwargs):
    """Binds the arguments of ``cls.__init__`` (see `define_arguments`).

    Returns ``(arguments, kwargs)``: every named argument (defaults filled in) and the other
    keyword arguments (for `keras.layers.Layer`). A missing or unknown argument raises the
    usual ``TypeError``.
    """
    bound = inspect.signature(cls.__init__).bind(instance, *args, **kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    del arguments["self"]
    return arguments, arguments.pop("kwargs")


# What `keras.layers.RNN.__init__` takes of a layer's arguments (`activity_regularizer` goes on
# to `keras.layers.Layer`).
_RNN_KEYS = tuple(inspect.signature(keras.layers.RNN.__init__).parameters) + (
    "activity_regularizer",
)


def declare_rnn_layer(layer_cls, cell_cls, cell_name, inserted=None, trailing=RNN_ARGUMENTS):
    """Declares `layer_cls`, an RNN layer over `cell_cls`: its signature (`layer_arguments`:
    the cell's arguments, `inserted` ones, ``activity_regularizer`` after
    ``bias_regularizer`` as in Keras's ``LSTM``, and `trailing`), the name of its cell, and one
    read-only property per cell argument (``layer.units`` is ``layer.cell.units``), as Keras's
    ``LSTM`` and ``ConvLSTM2D`` spell them out."""
    inserted = {"bias_regularizer": (("activity_regularizer", None),), **(inserted or {})}
    define_arguments(layer_cls, layer_arguments(cell_cls, inserted, trailing))
    layer_cls._cell_class, layer_cls._cell_name = cell_cls, cell_name
    forward_cell_properties(layer_cls, argument_names(cell_cls))
    return layer_cls


def rnn_layer_arguments(layer_cls, layer, args, kwargs):
    """The arguments of ``layer_cls.__init__`` (declared by `declare_rnn_layer`).

    Returns ``(arguments, cell, rnn_kwargs)``: all bound arguments; the cell, built from the
    arguments it declares, with the layer's ``dtype`` and ``trainable`` (as Keras's RNN layers
    pass them); and the keyword arguments of ``keras.layers.RNN.__init__`` (the other
    arguments it takes and the layer's other keyword arguments).
    """
    arguments, kwargs = bind_arguments(layer_cls, layer, args, kwargs)
    cell_cls = layer_cls._cell_class
    cell_names = argument_names(cell_cls)
    cell = cell_cls(
        **{key: arguments[key] for key in cell_names},
        name=layer_cls._cell_name,
        dtype=kwargs.get("dtype"),
        trainable=kwargs.get("trainable", True),
    )
    rnn_kwargs = {k: v for k, v in arguments.items() if k in _RNN_KEYS and k not in cell_names}
    return arguments, cell, {**rnn_kwargs, **kwargs}


def rnn_layer_config(layer, base_config, **extra):
    """``get_config`` of an RNN layer over one of our cells: `base_config` (``RNN``'s) without
    the cell, the cell's arguments as the cell saves them, `extra`, and
    ``activity_regularizer``; ``cls(**config)`` rebuilds the layer."""
    base_config = dict(base_config)
    del base_config["cell"]
    cell_config = layer.cell.get_config()
    config = {name: cell_config[name] for name in argument_names(type(layer.cell))}
    config.update(extra)
    config["activity_regularizer"] = keras.regularizers.serialize(layer.activity_regularizer)
    return {**base_config, **config}


def _cell_property(name):
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's `{name}`.")


def forward_cell_properties(layer_class, names):
    """Adds read-only properties `names` to `layer_class` that return its cell's attributes.

    Keras's own RNN layers (``LSTM``, ``ConvLSTM2D``) spell out one property per cell argument;
    this generates them, so ``layer.units`` is ``layer.cell.units``.
    """
    for name in names:
        setattr(layer_class, name, _cell_property(name))
    return layer_class
