"""Overrides of the quick presets for runs of seconds, shared by the tests of an experiment.

``run_experiment(name, "quick", **TWO_STEP)``; a test that needs other sizes extends a copy.
"""

# two-step: a few phantom scans of 20-26 slices, one epoch of each model, tiny heads
TWO_STEP = {
    "num_train": 10,
    "num_val": 4,
    "num_test": 8,
    "min_slices": 20,
    "max_slices": 26,
    "mixed_size_fraction": 0.125,
    "cnn_filters": (4, 8),
    "cnn_feature_dim": 8,
    "embedding_dim": 16,
    "cnn_epochs": 1,
    "mean_draws": (3, 5),
    "lstm_sequence": 8,
    "lstm_units": 4,
    "lstm_layers": 1,
    "lstm_head_units": 4,
    "lstm_epochs": 1,
    "swin_slices": 16,
    "swin_window_size": 2,
    "swin_epochs": 1,
}
