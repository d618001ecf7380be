"""Custom Keras layers: ``keras.ops`` only, registered for ``.keras`` serialization.

- `TimeModulatedLSTM` / `TimeModulatedLSTMCell` (paper 000), its scans in `linear_scan`;
- `StructuredConvLSTM2D` / `StructuredConvLSTM2DCell` (paper 002);
- wrappers (`wrappers`): `FrameWise` (time folded into batch, in chunks, rematerialized),
  `Remat`, `SliceEncoder` (paper 001's slice CNN over a volume).
"""

from kerasmed.layers.linear_scan import blocked_scan, linear_scan, sequential_scan  # noqa: F401
from kerasmed.layers.structured_conv_lstm import (  # noqa: F401
    StructuredConvLSTM2D,
    StructuredConvLSTM2DCell,
)
from kerasmed.layers.time_modulated_lstm import TimeModulatedLSTM, TimeModulatedLSTMCell  # noqa: F401
from kerasmed.layers.wrappers import (  # noqa: F401
    FrameWise,
    Remat,
    SliceEncoder,
    fold_time,
    run_in_chunks,
    unfold_time,
)
