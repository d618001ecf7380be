"""Functional model builders ``build_*`` (one module per paper) and shared backbones."""

from kerasmed.models.two_step import (  # noqa: F401
    SWIN_PRESETS,
    build_slice_embedder,
    build_two_step_lstm,
    build_two_step_swin,
    slice_embedding_model,
)
from kerasmed.models.two_step_inference import (  # noqa: F401
    ScanPredictions,
    embed_scans,
    ensemble_probabilities,
    predict_scans,
)
