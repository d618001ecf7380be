"""Helpers shared by kerasmed's RNN layers (a layer wrapping one cell)."""


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
