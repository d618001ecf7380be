"""Presets as frozen data and validated overrides (`kerasmed.experiments.config`); no Keras."""

import dataclasses
import typing

import pytest

from kerasmed.experiments import EXPERIMENTS, apply_overrides, get_config
from kerasmed.experiments.config import config_to_dict, normalize_overrides, resolve_config
from kerasmed.experiments.presets import fcslstm, ich, longitudinal
from kerasmed.preprocessing.longitudinal import ENCODINGS

CONFIGS = [
    pytest.param(preset.config, id=f"{name}-{preset.name}")
    for name, spec in EXPERIMENTS.items()
    for preset in spec.presets.values()
]


def _leaves(config, prefix=""):
    """``{dotted key: value}`` of every field, nested configs included."""
    leaves = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            leaves.update(_leaves(value, f"{prefix}{field.name}."))
        else:
            leaves[prefix + field.name] = value
    return leaves


@pytest.mark.parametrize("config", CONFIGS)
def test_every_preset_value_has_its_declared_type(config):
    # Overriding every field with its own value passes the type checks and changes nothing:
    # the annotations describe what the presets hold.
    leaves = _leaves(config)
    assert normalize_overrides(config, leaves) == leaves
    assert apply_overrides(config, leaves) == config


@pytest.mark.parametrize("config", CONFIGS)
def test_configs_are_frozen_all_the_way_down(config):
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1
    for key, value in _leaves(config).items():
        assert not isinstance(value, (dict, list, set)), key
    hash(config)  # only immutable values inside


def test_registry_runtimes_come_from_the_presets():
    assert EXPERIMENTS["fcslstm"].presets is fcslstm.PRESETS
    assert EXPERIMENTS["tlstm"].runtimes == {
        name: f"{p.runtime} on {p.hardware}" for name, p in longitudinal.PRESETS.items()
    }
    assert EXPERIMENTS["ich"].runtimes["paper"] == "~1 day on one GPU"
    assert EXPERIMENTS["ich"].title == ich.TITLE


def test_overrides_leave_the_preset_unchanged():
    quick = fcslstm.PRESETS["quick"].config
    changed = get_config("fcslstm", "quick", test_timepoint=0, noise_std=0.06)
    assert (changed.test_timepoint, changed.noise_std) == (0, 0.06)
    assert (quick.test_timepoint, quick.noise_std) == (2, 0.03)
    assert get_config("fcslstm", "quick") == quick
    assert dataclasses.replace(changed, test_timepoint=2, noise_std=0.03) == quick


def test_dotted_and_nested_dict_overrides_reach_one_field():
    quick = get_config("fcslstm", "quick")
    dotted = apply_overrides(quick, {"sequence_models.bi_fcslstm.operator_groups": [2, 3]})
    nested = apply_overrides(
        quick, {"sequence_models": {"bi_fcslstm": {"operator_groups": (2, 3)}}}
    )
    assert dotted == nested
    assert dotted.sequence_models.bi_fcslstm == fcslstm.SequenceModelConfig(
        bidirectional=True, remat=False, operator_groups=(2, 3)
    )
    assert dotted.sequence_models.fcslstm == quick.sequence_models.fcslstm
    assert normalize_overrides(quick, {"sequence_models": {"bi_fcslstm": {"remat": True}}}) == {
        "sequence_models.bi_fcslstm.remat": True
    }


def test_values_are_converted_to_the_field_type():
    config = get_config("ich", "quick", pretrain_learning_rate=1, slice_chunk=None, augment="paper")
    assert config.pretrain_learning_rate == 1.0 and isinstance(config.pretrain_learning_rate, float)
    assert get_config("ich", "quick", slice_chunk=4).slice_chunk == 4
    assert get_config("ich", "quick", jit_compile=False).jit_compile is False
    assert get_config("tlstm", "quick", cnn_filters=[4, 8]).cnn_filters == (4, 8)


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("tlstm", {"epochs": 3},
         "Unknown setting 'epochs' (did you mean 'seq_epochs'?). Valid settings: num_train, "
         "num_test, image_size, noise, cnn_filters, feature_dim, cnn_epochs, cnn_precise_bn, units, "
         "seq_epochs, batch_size, learning_rate, supervise_every_step, encoding, models. "
         "Received: epochs=3"),
        ("tlstm", {"xyz": 1}, "Unknown setting 'xyz'. Valid settings: num_train,"),
        ("fcslstm", {"sequence_models.bi.remat": True},
         "Unknown setting 'sequence_models.bi.remat'. Valid settings: sequence_models.fcslstm, "
         "sequence_models.bi_fcslstm."),
        ("fcslstm", {"epochs.value": 3}, "`epochs` is not a group of settings"),
        ("fcslstm", {"epochs": 2.0}, "`epochs` must be int. Received: epochs=2.0"),
        ("fcslstm", {"run_eagerly": 1}, "`run_eagerly` must be bool. Received: run_eagerly=1"),
        ("fcslstm", {"sequence_models.fcslstm.operator_groups": (2, "3")},
         "`sequence_models.fcslstm.operator_groups` must be a tuple of int. "
         "Received: sequence_models.fcslstm.operator_groups=(2, '3')"),
        ("fcslstm", {"sequence_models": 3}, "`sequence_models` must be a SequenceModels"),
        ("fcslstm", {"models": ("fcn", "unet")}, "Received: models='unet'"),
        ("ich", {"slice_chunk": "4"}, "`slice_chunk` must be int or None. Received: slice_chunk='4'"),
        ("ich", {"jit_compile": "xla"},
         "`jit_compile` must be one of 'auto' or bool. Received: jit_compile='xla'"),
        ("tlstm", {"encoding": "logs"},
         "`encoding` must be one of 'raw', 'scaled', 'log', 'one_hot'. Received: encoding='logs'"),
    ],
)  # fmt: skip
def test_bad_overrides_raise_naming_the_field(name, overrides, message):
    with pytest.raises(ValueError) as info:
        get_config(name, "quick", **overrides)
    assert message in str(info.value)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="Valid presets: quick, paper. Received: preset='huge'"):
        resolve_config(ich.PRESETS, "huge", experiment="ich")
    with pytest.raises(ValueError, match="must be a mapping"):
        normalize_overrides(ich.PRESETS["quick"].config, [("epochs", 1)])


def test_encoding_choices_are_the_preprocessing_encodings():
    hints = typing.get_type_hints(longitudinal.TlstmConfig)
    assert typing.get_args(hints["encoding"]) == ENCODINGS


def test_config_to_dict_is_the_nested_plain_data():
    as_dict = config_to_dict(get_config("fcslstm", "paper"))
    assert as_dict["sequence_models"]["bi_fcslstm"] == {
        "bidirectional": True, "remat": True, "operator_groups": (1, 1, 1, 1, 1)
    }  # fmt: skip
    assert as_dict["image_size"] == 256 and as_dict["num_heldout"] == 10
