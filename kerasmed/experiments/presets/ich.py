"""Presets of experiment ``ich`` (paper 001): `IchConfig`.

Reference: A. Patel, S. C. van de Leemput, M. Prokop, B. van Ginneken, R. Manniesing, *Image
level training and prediction: intracranial hemorrhage identification in 3D non-contrast CT*,
IEEE Access, 2019.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from kerasmed.experiments.config import Preset, make_presets
from kerasmed.experiments.departures import CPU_MINUTES, PaperSetting, data_setting

TITLE = "Paper 001: hemorrhage in whole head CTs, slice CNN + 2 x BiLSTM, staged training"
NOTEBOOK = "notebooks/02_ich_cnn_bilstm.ipynb"


@dataclasses.dataclass(frozen=True)
class IchConfig:
    """The settings of one run of experiment ``ich``; the defaults are the quick preset.

    Args:
        num_train: phantom training volumes (a ``data_dir`` is split in these proportions).
        num_val: phantom validation volumes.
        num_test: phantom test volumes.
        slice_size: side of a slice after the 2x2 maximum filter (the phantom is simulated at
            twice this size).
        min_slices: fewest slices of a volume after the z filter.
        max_slices: most slices of a volume after the z filter.
        z_factor: the maximum filter along z (the paper's 2x2x2 filter halves the slices).
        base_filters: filters of the slice CNN's first unit (doubled from unit to unit).
        feature_dim: size of a slice's feature vector.
        lstm_units: units of each of the bidirectional LSTMs.
        num_lstm_layers: bidirectional LSTM layers (the paper: 2; its ablation: 1).
        dropout: dropout of the slice CNN's dense layers.
        cnn_initializer: kernel initializer of the slice CNN.
        pretrain_learning_rate: Adam's learning rate in stage 1.
        pretrain_epochs: epochs of stage 1.
        pretrain_steps: batches per stage-1 epoch.
        pretrain_batch: slices per stage-1 batch.
        lstm_epochs: epochs of stage 2 (the LSTMs, CNN frozen).
        finetune_epochs: epochs of stage 3 (end to end).
        scratch_epochs: epochs of the model trained end to end from scratch.
        volumes_per_epoch: volumes drawn per epoch of stages 2-3 and from scratch.
        volume_batch: volumes per batch (padded and masked).
        pad_multiple: training batches are padded to a multiple of this many slices.
        augment: ``None`` or ``"paper"`` (Section III-C's rotations and shifts).
        slice_chunk: slices the CNN reads at a time inside the volume model (``None``: all).
        remat: recompute each chunk's activations in the backward pass.
        jit_compile: passed to every ``compile`` (``"auto"``: Keras chooses).
        mimic_rate: mean number of single-slice hyperdense mimics per phantom volume
            (`kerasmed.data.simulate_head_ct`); unused with real data.
        stream: keep a ``data_dir``'s volumes on disk and read them as batches need them
            (``True``), load them (``False``), or (``None``) stream when they would exceed
            `kerasmed.data.streaming.STREAM_ABOVE_BYTES` as float32. Unused on the phantom.
    """

    num_train: int = 160
    num_val: int = 40
    num_test: int = 120
    slice_size: int = 32
    min_slices: int = 16
    max_slices: int = 24
    z_factor: int = 1  # the paper's 2x2x2 volume filter halves the slices; kept for "paper"
    base_filters: int = 8
    feature_dim: int = 64
    lstm_units: int = 32
    num_lstm_layers: int = 2
    dropout: float = 0.5
    cnn_initializer: str = "he_normal"
    pretrain_learning_rate: float = 1e-3  # the paper's 1e-4 needs far more than 300 batches
    pretrain_epochs: int = 8
    pretrain_steps: int = 40
    pretrain_batch: int = 24
    lstm_epochs: int = 6
    finetune_epochs: int = 3
    scratch_epochs: int = 9  # the budget of stages 2 + 3
    volumes_per_epoch: int = 80
    volume_batch: int = 4  # the paper uses 1; 4 padded + masked volumes are faster on a CPU
    pad_multiple: int = 8
    augment: Literal["paper"] | None = None
    slice_chunk: int | None = None
    remat: bool = False
    jit_compile: Literal["auto"] | bool = "auto"
    mimic_rate: float = 2.0
    stream: bool | None = None


PRESETS = make_presets(
    Preset(
        "quick",
        IchConfig(),
        runtime="~2 min",
        hardware="a 2-core CPU shared with other jobs (measured)",
    ),
    Preset(
        "paper",
        IchConfig(
            num_train=1448,  # Table 2 sizes (75 / 5 / 20 %)
            num_val=96,
            num_test=386,
            slice_size=256,
            min_slices=140,  # 280-450 slices of 0.5 mm before the 2x2x2 filter
            max_slices=225,
            z_factor=2,
            base_filters=16,
            feature_dim=512,
            lstm_units=512,
            # The paper names no initializer for the CNN. With Glorot's, the 12-layer ReLU
            # stack shrinks the signal ~10x every two layers and the slice CNN does not start
            # learning.
            cnn_initializer="he_normal",
            pretrain_learning_rate=1e-4,
            pretrain_epochs=40,
            pretrain_steps=500,
            pretrain_batch=25,
            lstm_epochs=13,  # ~13,000 volumes
            finetune_epochs=14,  # ~14,000 volumes
            scratch_epochs=27,
            volumes_per_epoch=1000,
            volume_batch=1,
            pad_multiple=16,
            augment="paper",
            slice_chunk=16,
            remat=True,
        ),
        runtime="~1 day",
        hardware="one GPU",
    ),
)


_PHANTOM = "the embedded phantom (the paper's CTs are not public); `--data-dir` reads CQ500 / RSNA"

# The paper's settings (Sections II-III, Tables 2-3): `kerasmed.experiments.departures` lists
# where a run differs.
PAPER_SETTINGS = (
    data_setting(
        "1930 non-contrast head CTs (Radboudumc, not public)",
        "synthetic head CTs with bleeds and single-slice mimics (`simulate_head_ct`)",
        _PHANTOM,
    ),
    PaperSetting("num_train", 1448, "training volumes", _PHANTOM, embedded_only=True),
    PaperSetting("num_val", 96, "validation volumes", _PHANTOM, embedded_only=True),
    PaperSetting("num_test", 386, "test volumes", _PHANTOM, embedded_only=True),
    PaperSetting(
        "slice_size",
        256,
        "slice size after the 2x2 maximum filter",
        CPU_MINUTES,
        embedded_only=True,
    ),
    PaperSetting(
        "min_slices",
        140,
        "fewest slices after the z filter (280 before)",
        CPU_MINUTES,
        embedded_only=True,
    ),
    PaperSetting(
        "max_slices",
        225,
        "most slices after the z filter (450 before)",
        CPU_MINUTES,
        embedded_only=True,
    ),
    PaperSetting(
        None,
        "slice labels on 170 of the 1448 training CTs (Table 3)",
        "slice labels for stage 1",
        "the phantom (and RSNA 2019) labels the slices of every training volume",
        ours="the slice labels of every training volume that has them",
    ),
    PaperSetting("z_factor", 2, "maximum filter along z (volume stages)", CPU_MINUTES),
    PaperSetting(
        "z_factor",
        "none (2x2 in-plane only)",
        "maximum filter along z of the stage-1 slices",
        "the volumes are filtered once, before every stage, so stage 1 reads the z-filtered "
        "slices too (the paper filters z for stages 2-3 only)",
        ours=lambda c: f"{c.z_factor} (the volumes' filter)",
        matches=lambda ours, paper: ours == 1,
    ),
    PaperSetting("base_filters", 16, "filters of the CNN's first unit", CPU_MINUTES),
    PaperSetting("feature_dim", 512, "slice feature vector", CPU_MINUTES),
    PaperSetting("lstm_units", 512, "units of each BiLSTM", CPU_MINUTES),
    PaperSetting("dropout", 0.5, "dropout before the dense layers", "-"),
    PaperSetting(
        "cnn_initializer",
        "not given",
        "slice CNN initializer",
        "with Glorot's the 12-layer ReLU stack shrinks the signal ~10x every two layers and the "
        "CNN does not start learning",
        matches=lambda ours, paper: False,
    ),
    PaperSetting(
        "pretrain_learning_rate",
        1e-4,
        "stage-1 learning rate (Adam)",
        "the paper's rate needs far more batches than a quick run has",
    ),
    PaperSetting(
        "pretrain_batch", 25, "stage-1 batch (slices)", "kerasmed's quick choice (any size works)"
    ),
    PaperSetting(
        "volumes_per_epoch",
        1000,
        "volumes per epoch of stages 2-3",
        CPU_MINUTES,
    ),
    PaperSetting(
        "lstm_epochs",
        13,
        "stage-2 epochs (the paper: best model after ~13,000 volumes)",
        CPU_MINUTES,
        ours=lambda c: f"{c.lstm_epochs} ({c.lstm_epochs * c.volumes_per_epoch:,} volumes)",
    ),
    PaperSetting(
        "finetune_epochs",
        14,
        "stage-3 epochs (the paper: best model after ~14,000 volumes)",
        CPU_MINUTES,
        ours=lambda c: f"{c.finetune_epochs} ({c.finetune_epochs * c.volumes_per_epoch:,} volumes)",
    ),
    PaperSetting(
        "volume_batch",
        1,
        "batch (volumes)",
        "4 volumes padded to one length and masked are faster on a CPU than 4 single steps",
        ours=lambda c: f"{c.volume_batch}, padded and masked" if c.volume_batch > 1 else "1",
    ),
    PaperSetting(
        "augment",
        "rotations (+-25 deg), mirroring, shifts (+-15 voxels)",
        "augmentation (Section III-C)",
        'a quick run of a few hundred steps; `augment="paper"` turns it on',
        ours=lambda c: "the paper's" if c.augment == "paper" else "none",
        matches=lambda ours, paper: ours == "paper",
    ),
)
