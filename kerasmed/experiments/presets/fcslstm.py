"""Presets of experiment ``fcslstm`` (paper 002): `FcslstmConfig` and its sequence models.

Reference: Y. Gao, J. M. Phillips, Y. Zheng, R. Min, P. T. Fletcher, G. Gerig, *Fully
convolutional structured LSTM networks for joint 4D medical image segmentation*, ISBI 2018.
"""

from __future__ import annotations

import dataclasses

from kerasmed.experiments.config import Preset, make_presets
from kerasmed.experiments.departures import CPU_MINUTES, PaperSetting, data_setting
from kerasmed.validation import check_each_one_of

TITLE = "Paper 002: FCN vs (bidirectional) FCSLSTM, joint 4D infant brain segmentation"
NOTEBOOK = "notebooks/03_fcslstm_segmentation.ipynb"
MODEL_NAMES = ("fcn", "fcslstm", "bi_fcslstm")


@dataclasses.dataclass(frozen=True)
class SequenceModelConfig:
    """The structured LSTMs of one FCSLSTM (see `kerasmed.models.fcslstm.build_fcslstm`).

    Args:
        bidirectional: read the time points forward and backward.
        remat: recompute each operator's activations in the backward pass (saves memory).
        operator_groups: how many of the FCN's 5 conv blocks each structured LSTM layer's
            operator holds, e.g. ``(1,) * 5`` (the paper: one block each) or ``(2, 3)``.
    """

    bidirectional: bool
    remat: bool = False
    operator_groups: tuple[int, ...] = (1,) * 5


@dataclasses.dataclass(frozen=True)
class SequenceModels:
    """The settings of the two sequence models, by name."""

    fcslstm: SequenceModelConfig = SequenceModelConfig(bidirectional=False)
    bi_fcslstm: SequenceModelConfig = SequenceModelConfig(bidirectional=True)


@dataclasses.dataclass(frozen=True)
class FcslstmConfig:
    """The settings of one run of experiment ``fcslstm``; the defaults are the quick preset.

    Args:
        num_subjects: phantom subjects with labels (the paper's BRIC set: 10, one labelled
            slice each).
        num_heldout: phantom subjects never trained on (their test-time-point mPA is
            ``mpa_heldout``; their training time points give the validation curves).
        image_size: side of the phantom's slices (a ``data_dir``'s keep their saved size).
        noise_std: the phantom's noise.
        width_divisor: the FCN's widths are the paper's divided by this.
        fuse_level: the deepest block whose output the FCN fuses.
        epochs: training epochs of every model.
        batch_size: sequences per step; the FCN gets as many labelled frames.
        learning_rate: RMSprop's initial learning rate.
        decay_start: the epoch after which the learning rate decays.
        decay: the learning rate's factor per epoch after `decay_start`.
        test_timepoint: 0-based index of the test time point.
        run_eagerly: skip graph tracing (faster for a few tiny steps).
        models: the models to train, from ``("fcn", "fcslstm", "bi_fcslstm")``.
        sequence_models: the two sequence models' structured LSTMs.
    """

    num_subjects: int = 10
    num_heldout: int = 4
    # 32 pixels: the GM ribbon is 1-2 pixels thick, so anatomy alone leaves the 6-month scan
    # ambiguous for the FCN (its mPA dips at time point 3), as in the paper's Figure 4.
    image_size: int = 32
    noise_std: float = 0.03
    width_divisor: int = 4
    fuse_level: int = 4
    epochs: int = 60
    batch_size: int = 2
    learning_rate: float = 1e-3
    decay_start: int = 20
    decay: float = 0.97
    test_timepoint: int = 2  # the 3rd of 5 time points
    run_eagerly: bool = False
    models: tuple[str, ...] = MODEL_NAMES
    sequence_models: SequenceModels = SequenceModels()

    def __post_init__(self):
        check_each_one_of(self.models, "models", MODEL_NAMES)


PRESETS = make_presets(
    Preset(
        "quick",
        FcslstmConfig(),
        runtime="~3 min",
        hardware="a 2-core CPU shared with other jobs (measured)",
    ),
    Preset(
        "paper",
        FcslstmConfig(
            num_heldout=10,
            image_size=256,
            width_divisor=2,
            epochs=100,  # the paper gives neither the number of epochs nor the batch size
            batch_size=1,
            # The paper's grouping (Section 2.2) is one operator per VGG block (conv1_1 +
            # relu1_1 + conv1_2 + relu1_2 = Ψ of layer 1, ...): groups of one block. The
            # bidirectional model did not fit the authors' 12 GB GPU; rematerialization
            # trades compute for that memory.
            sequence_models=SequenceModels(
                bi_fcslstm=SequenceModelConfig(bidirectional=True, remat=True)
            ),
        ),
        runtime="~10 h",
        hardware="one GPU",
    ),
)


_PHANTOM = "the embedded phantom (BRIC is not public); `--data-dir` reads a prepared series"


def _never(ours, paper):
    """A setting the paper does not give: kerasmed's value is always a choice of its own."""
    return False


# The paper's settings (Sections 2-3): `kerasmed.experiments.departures` lists where a run
# differs. Table 1 (the FCN's layer sizes) is not in the paper's text; see `build_concise_fcn`.
PAPER_SETTINGS = (
    data_setting(
        "BRIC: 10 infants, T1w + T2w, 5 scans in the first year, one labelled slice each",
        "synthetic infant-brain slices (`simulate_infant_brain`), one per time point",
        _PHANTOM,
    ),
    PaperSetting("num_subjects", 10, "labelled subjects", _PHANTOM, embedded_only=True),
    PaperSetting(
        "num_heldout",
        0,
        "held-out subjects (never trained on)",
        "kerasmed's stricter check (`mpa_heldout`); nothing is trained or selected on them",
        embedded_only=True,
    ),
    PaperSetting("image_size", 256, "slice size (pixels)", CPU_MINUTES, embedded_only=True),
    PaperSetting(
        "width_divisor",
        "2 or 4",
        "VGG-16 channels divided by",
        CPU_MINUTES,
        matches=lambda ours, paper: ours in (2, 4),
    ),
    PaperSetting(
        "test_timepoint",
        2,
        "test time point",
        "the paper's protocol; another one is an exercise",
        ours=lambda c: f"time point {c.test_timepoint + 1}",
    ),
    PaperSetting(
        "epochs",
        "not given",
        "epochs",
        "the paper gives no number of epochs",
        matches=_never,
    ),
    PaperSetting(
        "batch_size",
        "not given",
        "batch (sequences)",
        "the paper gives no batch size",
        matches=_never,
    ),
    PaperSetting("learning_rate", 1e-3, "RMSprop learning rate", "-"),
    PaperSetting("decay_start", 20, "learning-rate decay starts after epoch", "-"),
    PaperSetting("decay", 0.97, "learning-rate factor per epoch", "-"),
    PaperSetting(
        None,
        "the block: conv + ReLU ... (conv1_1 + relu1_1 + conv1_2 + relu1_2)",
        "input operator Ψ_x",
        "the text does not say where the pooling goes; holding it in Ψ_x keeps each LSTM "
        "state at its block's output size, as the FCN's feature maps",
        ours="the block with its 2x2 max pooling",
    ),
    PaperSetting(
        None,
        "Ψ_x(x_t) feeds the gates (Eq. 1)",
        "gate convolution after Ψ_x",
        "Eq. 1 leaves open how the block's features become four gates; a 1x1 convolution "
        "(`input_kernel_size`) is the least the structured LSTM adds to the block",
        ours="a 1x1 convolution maps Ψ_x(x_t) to the four gates",
    ),
    PaperSetting(
        None,
        "Kaiming (every layer)",
        "initialization",
        "Keras's LSTM defaults suit the sigmoid and tanh gates",
        ours="He normal for the blocks and the back-end; Glorot uniform and orthogonal for "
        "the LSTM gate and recurrent kernels",
    ),
)
