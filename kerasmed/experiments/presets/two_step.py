"""Presets of experiment ``two-step`` (paper 003): `TwoStepConfig`.

Reference: C.-C. Hsu, C.-H. Tsai, G.-L. Chen, S.-D. Ma, S.-C. Tai, *Spatiotemporal feature
learning based on two-step LSTM and Transformer for CT scans* (COV19-CT-DB), 2022; the
training settings of the paper preset are the authors' code's (``train_code/``).
"""

from __future__ import annotations

import dataclasses

from kerasmed.experiments.config import Preset, make_presets
from kerasmed.experiments.departures import CPU_MINUTES, PaperSetting, data_setting

TITLE = "Paper 003: two-step CT classification, lung-area slices, 2D CNN embeddings, BiLSTM + Swin"
NOTEBOOK = "notebooks/04_two_step_ct.ipynb"


@dataclasses.dataclass(frozen=True)
class TwoStepConfig:
    """The settings of one run of experiment ``two-step``; the defaults are the quick preset.

    Args:
        num_train: phantom training scans (`kerasmed.data.simulate_chest_ct`), validation
            scans included.
        num_val: training scans held out for validation: the best epoch of the CNN and of
            each head by validation macro-F1 (the authors' best checkpoint); no step trains
            on them.
        num_test: phantom test scans (the paper reports its validation set).
        slice_size: side of the simulated slices (and of the model input).
        min_slices: fewest slices of a phantom scan.
        max_slices: most slices of a phantom scan.
        mixed_size_fraction: fraction of phantom scans whose last slice has another size (their
            window is that slice, as the authors' rule; the slice is resized for the model).
        window_fraction: window length as a fraction of the scan (the authors' 0.5).
        filter_size: minimum filter of the lung-area step (the authors' 5 on 512 x 512 slices).
        crop_filter_size: minimum filter of the background crop (the authors' 10).
        backbone: ``"small_cnn"`` (CPU) or ``"efficientnet_b3"`` (the paper).
        backbone_weights: ``None`` (random) or ``"imagenet"`` (the paper; downloads once).
        cnn_filters: conv blocks of ``"small_cnn"`` (unused for EfficientNet).
        cnn_feature_dim: pooled width of ``"small_cnn"`` (unused for EfficientNet).
        channels: channels of the slices fed to the CNN (3: grey repeated, as the JPEGs).
        embedding_dim: width of the slice embedding (the paper's 224).
        cnn_dropout: dropout after pooling (the authors' 0.3).
        cnn_bn_momentum: momentum of the backbone's BatchNormalization moving statistics;
            ``None`` keeps the backbone's (0.99; irrelevant with `cnn_precise_bn`).
        cnn_precise_bn: after every epoch, re-estimate the CNN's BatchNormalization statistics
            on 8 window slices of every training scan (`kerasmed.callbacks.PreciseBatchNorm`).
            Batches of 8 scans x 16 similar slices have statistics far from the population's,
            and without it the quick preset's CNN put every validation scan on one side of
            0.5 at inference in most epochs. The authors do not (``False`` in the paper
            preset).
        cnn_learning_rate: `kerasmed.optimizers.AdamL2`'s learning rate (the authors' 1e-4).
        cnn_weight_decay: its coupled L2 factor (the authors' 5e-4).
        cnn_epochs: epochs of the slice CNN (every training scan once per epoch).
        scans_per_batch: scans per CNN batch (the authors' 8).
        slices_per_scan: window slices drawn per scan (16), in training and per test draw.
        mean_draws: the N of the Mean-N predictions (the paper's 10 and 50).
        embed_batch: slices per forward pass when embedding every slice.
        lstm_sequence: slices per BiLSTM sequence (the paper's 120).
        lstm_units: LSTM units per direction (128).
        lstm_layers: stacked bidirectional layers (4).
        lstm_head_units: the head's hidden width (64).
        lstm_learning_rate: AdamW's peak learning rate (the authors' 3e-5).
        lstm_weight_decay: AdamW's decoupled weight decay (1e-3).
        lstm_epochs: epochs of the BiLSTM (50).
        lstm_batch: scans per BiLSTM batch (32).
        lstm_warmup: fraction of the BiLSTM's steps spent warming up (0.1).
        swin_slices: rows of the Swin's embedding matrix (the paper's 224).
        swin_preset: ``"quick"`` or ``"paper"`` (`kerasmed.models.two_step.SWIN_PRESETS`).
        swin_window_size: attention window in tokens; ``None`` keeps the preset's 7 (it must
            fit the token grid: ``swin_slices / 4`` rows at the first stage).
        swin_learning_rate: SGD's peak learning rate (the authors' 0.05).
        swin_momentum: SGD momentum (0.9).
        swin_weight_decay: SGD weight decay (2e-5; Keras's is decoupled, torch's coupled).
        swin_epochs: epochs of the Swin head (20).
        swin_batch: scans per Swin batch (16).
        swin_warmup_epochs: warm-up epochs of its cosine schedule (3).
        swin_label_smoothing: label smoothing of its loss (0.1).
        fixed_draws: each scan keeps one sequence draw every epoch (the authors' code) instead
            of fresh draws (the paper's text).
    """

    num_train: int = 104
    num_val: int = 24
    num_test: int = 40
    slice_size: int = 64
    min_slices: int = 30
    max_slices: int = 60
    mixed_size_fraction: float = 0.05
    window_fraction: float = 0.5
    filter_size: int = 1  # 64 x 64 phantom slices (see kerasmed.preprocessing.lung)
    crop_filter_size: int = 2
    backbone: str = "small_cnn"
    backbone_weights: str | None = None
    cnn_filters: tuple[int, ...] = (16, 32, 64)
    cnn_feature_dim: int = 64
    channels: int = 3
    embedding_dim: int = 56  # a multiple of the quick Swin's 8 (patch 4 x one merge)
    cnn_dropout: float = 0.3
    cnn_bn_momentum: float | None = None
    cnn_precise_bn: bool = True
    cnn_learning_rate: float = 2e-3  # the authors' 1e-4 needs far more steps
    cnn_weight_decay: float = 5e-4
    cnn_epochs: int = 16
    scans_per_batch: int = 8
    slices_per_scan: int = 16
    mean_draws: tuple[int, ...] = (10, 50)
    embed_batch: int = 128
    lstm_sequence: int = 32
    lstm_units: int = 16
    lstm_layers: int = 2
    lstm_head_units: int = 16
    lstm_learning_rate: float = 3e-3
    lstm_weight_decay: float = 1e-3
    lstm_epochs: int = 20
    lstm_batch: int = 8
    lstm_warmup: float = 0.1
    swin_slices: int = 56
    swin_preset: str = "quick"
    swin_window_size: int | None = None
    swin_learning_rate: float = 0.01
    swin_momentum: float = 0.9
    swin_weight_decay: float = 2e-5
    swin_epochs: int = 15
    swin_batch: int = 8
    swin_warmup_epochs: int = 2
    swin_label_smoothing: float = 0.1
    fixed_draws: bool = False


PRESETS = make_presets(
    Preset("quick", TwoStepConfig(), runtime="~2-4 min", hardware="a 2-core CPU"),
    Preset(
        "paper",
        TwoStepConfig(
            num_train=1560,  # COV19-CT-DB train / validation sizes (scans)
            num_val=156,
            num_test=374,
            slice_size=256,
            min_slices=50,
            max_slices=300,
            filter_size=5,
            crop_filter_size=10,
            backbone="efficientnet_b3",
            backbone_weights="imagenet",
            embedding_dim=224,
            cnn_precise_bn=False,
            cnn_learning_rate=1e-4,
            cnn_epochs=50,
            lstm_sequence=120,
            lstm_units=128,
            lstm_layers=4,
            lstm_head_units=64,
            lstm_learning_rate=3e-5,
            lstm_epochs=50,
            lstm_batch=32,
            swin_slices=224,
            swin_preset="paper",
            swin_learning_rate=0.05,
            swin_epochs=20,
            swin_batch=16,
            swin_warmup_epochs=3,
            fixed_draws=True,
        ),
        runtime="~1 day",
        hardware="one GPU",
    ),
)


_PHANTOM = "the embedded phantom (COV19-CT-DB is not redistributable); `--data-dir` reads it"

# The paper's settings (the authors' code's where the paper is vague, see
# /shared/papers/README.md): `kerasmed.experiments.departures` lists where a run differs.
PAPER_SETTINGS = (
    data_setting("COV19-CT-DB", "synthetic chest CT phantom", _PHANTOM),
    PaperSetting("num_train", 1560, "training scans", _PHANTOM, embedded_only=True),
    PaperSetting(
        "num_test", 374, "test scans (the paper's validation set)", _PHANTOM, embedded_only=True
    ),
    PaperSetting("slice_size", 256, "slice size (pixels)", CPU_MINUTES),
    PaperSetting("filter_size", 5, "lung-area minimum filter", "scaled to the slice size"),
    PaperSetting(
        "crop_filter_size", 10, "background-crop minimum filter", "scaled to the slice size"
    ),
    PaperSetting("backbone", "efficientnet_b3", "slice CNN", CPU_MINUTES),
    PaperSetting("backbone_weights", "imagenet", "slice CNN weights", "no download in a quick run"),
    PaperSetting("embedding_dim", 224, "slice embedding width", "a multiple of the small Swin's 8"),
    PaperSetting(
        "cnn_learning_rate", 1e-4, "CNN learning rate", "the authors' rate needs far more steps"
    ),
    PaperSetting("cnn_epochs", 50, "CNN epochs", CPU_MINUTES),
    PaperSetting(
        "cnn_precise_bn",
        False,
        "BatchNorm statistics re-estimated per epoch",
        "kerasmed's addition: batches of 8 scans x 16 similar slices skew the moving statistics",
    ),
    PaperSetting("lstm_sequence", 120, "BiLSTM sequence length", "phantom scans have 30-60 slices"),
    PaperSetting("lstm_units", 128, "BiLSTM units", CPU_MINUTES),
    PaperSetting("lstm_layers", 4, "BiLSTM layers", CPU_MINUTES),
    PaperSetting("lstm_head_units", 64, "BiLSTM head width", CPU_MINUTES),
    PaperSetting("lstm_learning_rate", 3e-5, "BiLSTM learning rate", "fewer steps in a quick run"),
    PaperSetting("lstm_epochs", 50, "BiLSTM epochs", CPU_MINUTES),
    PaperSetting("lstm_batch", 32, "BiLSTM batch (scans)", "fewer training scans"),
    PaperSetting("swin_slices", 224, "Swin input rows (slices)", "phantom scans have 30-60 slices"),
    PaperSetting("swin_preset", "paper", "Swin size", CPU_MINUTES),
    PaperSetting(
        None,
        "SwinV2-CR (timm)",
        "Swin variant",
        "keras-hub has Swin v1 only; the paper size copies the authors' depths, heads, window",
        ours="Swin v1 (keras-hub SwinTransformerBackbone), random init",
    ),
    PaperSetting(
        None,
        "coupled (torch SGD adds wd x w to the gradient)",
        "Swin weight decay",
        "Keras's SGD decays decoupled; at 2e-5 the two differ little",
        ours="decoupled (Keras SGD)",
    ),
    PaperSetting("swin_learning_rate", 0.05, "Swin learning rate", "fewer steps in a quick run"),
    PaperSetting("swin_epochs", 20, "Swin epochs", CPU_MINUTES),
    PaperSetting("swin_batch", 16, "Swin batch (scans)", "fewer training scans"),
    PaperSetting("swin_warmup_epochs", 3, "Swin warm-up epochs", "fewer epochs"),
    PaperSetting(
        "fixed_draws",
        True,
        "one slice draw per scan for all epochs",
        "the authors' code; the paper's text says fresh draws, kerasmed's quick default",
    ),
)
