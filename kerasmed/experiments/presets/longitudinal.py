"""Presets of experiment ``tlstm`` (paper 000): `TlstmConfig` and the sequence models' table.

Reference: R. Santeramo, S. Withey, G. Montana, *Longitudinal detection of radiological
abnormalities with time-modulated LSTM*, 2018.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Literal

from kerasmed.experiments.config import Preset, make_presets
from kerasmed.experiments.departures import PaperSetting, data_setting
from kerasmed.validation import check_each_one_of

TITLE = "Paper 000: time-modulated LSTM on simulated longitudinal digit exams"
NOTEBOOK = "notebooks/01_time_modulated_lstm.ipynb"


@dataclasses.dataclass(frozen=True)
class SequenceModel:
    """How one sequence model is built and fed.

    Args:
        kind: ``"lstm"`` or ``"tlstm"``.
        encoding: ``"raw"`` (the paper's δ) or ``"config"`` (the config's `encoding`).
        version: the tLSTM's version (1 or 2); ``None`` for an LSTM.
        use_time: an LSTM that also reads the encoded δ.
        shuffle_time: permute δ within each sequence (the check that the gain comes from time).
    """

    kind: Literal["lstm", "tlstm"]
    encoding: Literal["raw", "config"]
    version: int | None = None
    use_time: bool = False
    shuffle_time: bool = False


SEQUENCE_MODELS = types.MappingProxyType(
    {
        "lstm": SequenceModel("lstm", "raw"),
        "lstm_with_delta": SequenceModel("lstm", "config", use_time=True),
        "tlstm_v1": SequenceModel("tlstm", "raw", version=1),
        "tlstm_v2": SequenceModel("tlstm", "raw", version=2),
        "tlstm_v1_encoded": SequenceModel("tlstm", "config", version=1),
        "tlstm_v2_encoded": SequenceModel("tlstm", "config", version=2),
        "tlstm_v1_shuffled_delta": SequenceModel("tlstm", "config", version=1, shuffle_time=True),
    }
)


@dataclasses.dataclass(frozen=True)
class TlstmConfig:
    """The settings of one run of experiment ``tlstm``; the defaults are the quick preset.

    Args:
        num_train: simulated training sequences (a ``data_dir`` is split 80/20 instead).
        num_test: simulated test sequences.
        image_size: side of the simulated exams, in pixels.
        noise: standard deviation of the simulated exams' noise (`simulate_longitudinal_digits`;
            higher makes single images harder).
        cnn_filters: filters of the image CNN's convolution blocks.
        feature_dim: size of the image CNN's feature vector.
        cnn_epochs: epochs of stage 1 (the single-image CNN).
        cnn_precise_bn: training exams that re-estimate the CNN's BatchNorm statistics before
            each validation (`kerasmed.callbacks.PreciseBatchNorm`; see `train_image_cnn`);
            0 keeps Keras's moving averages, which lag the weights.
        units: units of every sequence model.
        seq_epochs: epochs of each sequence model.
        batch_size: batch size of both stages.
        learning_rate: Adam's learning rate for the sequence models.
        supervise_every_step: train on every exam's labels (``False``: the last exam's only,
            as the paper).
        encoding: how δ is encoded for the models fed ``"config"`` (see
            `kerasmed.preprocessing.encode_time_deltas`).
        models: the sequence models to train, names of `SEQUENCE_MODELS` (the single-image
            CNN is always trained: it makes their features).
    """

    num_train: int = 400
    num_test: int = 400
    image_size: int = 48
    noise: float = 0.1
    cnn_filters: tuple[int, ...] = (16, 32, 64)
    feature_dim: int = 64
    cnn_epochs: int = 6
    cnn_precise_bn: int = 1024
    units: int = 64
    seq_epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3
    supervise_every_step: bool = True
    encoding: Literal["raw", "scaled", "log", "one_hot"] = "one_hot"
    models: tuple[str, ...] = tuple(SEQUENCE_MODELS)

    def __post_init__(self):
        check_each_one_of(self.models, "models", tuple(SEQUENCE_MODELS))


PRESETS = make_presets(
    Preset(
        "quick",
        TlstmConfig(),
        runtime="~7 min",
        hardware="a 2-core CPU shared with other jobs (measured)",
    ),
    Preset(
        "paper",
        TlstmConfig(
            num_train=5000,
            num_test=1000,
            image_size=64,
            cnn_filters=(32, 64, 128, 256),
            feature_dim=256,
            cnn_epochs=30,
            units=256,
            seq_epochs=100,
            learning_rate=1e-3,
            supervise_every_step=False,
        ),
        runtime="~1 h",
        hardware="one GPU",
    ),
)


_SIMULATION = "kerasmed's simulation of the Appendix (Table 2); `--data-dir` reads real sequences"

# The paper's settings (Section 5 and the Appendix; the authors' code where the paper is silent,
# see /shared/papers/README.md): `kerasmed.experiments.departures` lists where a run differs.
# The paper gives no sizes, epochs, widths or learning rates for its simulated data, so those
# are kerasmed's choices rather than departures and are not listed.
PAPER_SETTINGS = (
    data_setting(
        "simulated digit sequences (glyphs, image size and counts not given)",
        "scikit-learn's 8x8 digits on noisy grey images (`simulate_longitudinal_digits`)",
        _SIMULATION,
    ),
    PaperSetting(
        None,
        "pre-trained AlexNet features (Inception v3 on the x-rays)",
        "image features",
        "no download: a small CNN trained on single exams in minutes; it is also the "
        "single-image baseline, so that baseline is not the paper's",
        ours="a small CNN trained from scratch on single exams (stage 1), then frozen",
    ),
    PaperSetting(
        "batch_size",
        1,
        "batch size (sequences)",
        "the authors' code feeds one unpadded sequence per step; kerasmed pads each batch to one "
        "length and masks the padding (padding changes no output), and 32 sequences a step "
        "train far faster than one",
        ours=lambda c: f"{c.batch_size}, padded and masked",
    ),
    PaperSetting(
        "supervise_every_step",
        "the last exam's labels",
        "training targets",
        "a few hundred training sequences give few last exams; every exam's labels are many "
        "more targets per epoch (the models are still evaluated on the last exam only)",
        ours=lambda c: (
            "every exam's labels" if c.supervise_every_step else "the last exam's labels"
        ),
        matches=lambda ours, paper: not ours,
    ),
)
