"""Custom Keras layers: ``keras.ops`` only, registered for ``.keras`` serialization."""

from kerasmed.layers.structured_conv_lstm import (  # noqa: F401
    StructuredConvLSTM2D,
    StructuredConvLSTM2DCell,
)
from kerasmed.layers.time_modulated_lstm import TimeModulatedLSTM, TimeModulatedLSTMCell  # noqa: F401
