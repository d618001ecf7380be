"""Each experiment's verdict on a results dict where the paper's claim holds and one where not."""

import pytest

from kerasmed.experiments import verdicts
from kerasmed.experiments.verdicts import verdict


def _f(value):
    return {"f_measure": {"0": value, "avg": value}}


TLSTM_HOLDS = {
    "single_image": _f(0.70),
    "lstm": _f(0.72),
    "tlstm_v1": _f(0.80),
    "tlstm_v1_encoded": _f(0.85),
    "tlstm_v1_shuffled_delta": _f(0.60),  # the control may lose: not part of the claim
}
ICH_HOLDS = {
    "max_prob": {"auc": 0.70},
    "p95_prob": {"auc": 0.80},
    "svm": {"auc": 0.85},
    "cnn_bilstm_staged": {"auc": 0.90},
    "cnn_bilstm_scratch": {"auc": 0.60},
}
FCSLSTM_HOLDS = {
    "fcn": {"mpa": 0.85, "mpa_train": 0.88},
    "fcslstm": {"mpa": 0.84, "mpa_train": 0.87},
    "bi_fcslstm": {"mpa": 0.88, "mpa_train": 0.91},
}
TWO_STEP_HOLDS = {
    "cnn_2d": {"macro_f1": 0.80},
    "two_step_lstm": {"macro_f1": 0.795},
    "two_step_swin": {"macro_f1": 0.82},
}
XRAY_HOLDS = {"resize": {"accuracy": 0.60}, "constant": {"accuracy": 0.70}}

# (experiment, models that support the claim, extra keys, model, metric, value breaking it)
CASES = [
    ("tlstm", TLSTM_HOLDS, {}, "tlstm_v1", "f_measure", {"0": 0.74, "avg": 0.74}),
    ("ich", ICH_HOLDS, {"delong_p_values": {"max_prob": 0.01}}, "cnn_bilstm_scratch", "auc", 0.87),
    ("fcslstm", FCSLSTM_HOLDS, {}, "fcslstm", "mpa_train", 0.895),
    ("two-step", TWO_STEP_HOLDS, {}, "two_step_lstm", "macro_f1", 0.78),
    ("xray", XRAY_HOLDS, {"majority_rate": 0.5}, "resize", "accuracy", 0.54),
]


def _results(experiment, models, extra):
    return {"experiment": experiment, "models": models, **extra}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_verdict_holds_and_breaks_with_the_numbers(case):
    experiment, models, extra, model, metric, breaking = case
    good = verdict(_results(experiment, models, extra))
    assert good.holds is True, good.text
    assert good.text.startswith(good.claim + ": reproduced (")
    assert good.to_dict()["holds"] is True and good.to_dict()["text"] == good.text
    bad_models = {**models, model: {**models[model], metric: breaking}}
    bad = verdict(_results(experiment, bad_models, extra))
    assert bad.holds is False, bad.text
    assert ": NOT reproduced (" in bad.text
    assert verdicts.VERDICTS[experiment](_results(experiment, bad_models, extra)) == bad


def test_tlstm_evidence_is_the_gain_over_the_lstm():
    text = verdict(_results("tlstm", TLSTM_HOLDS, {})).evidence
    assert "tlstm_v1 +0.080" in text and "tlstm_v1_encoded +0.130" in text
    assert "shuffled" not in text


def test_ich_delong_p_value_decides_too():
    extra = {"delong_p_values": {"max_prob": 0.2}}
    result = verdict(_results("ich", ICH_HOLDS, extra))
    assert result.holds is False and "DeLong p vs max_prob 0.2" in result.evidence


def test_two_step_needs_a_cnn_that_learned():
    flat = {m: {"macro_f1": 0.45} for m in TWO_STEP_HOLDS}  # three equal, chance-level models
    result = verdict(_results("two-step", flat, {}))
    assert result.holds is False and "did not learn" in result.evidence


def test_missing_model_is_not_tested_and_unknown_experiment_has_no_verdict():
    models = {m: v for m, v in FCSLSTM_HOLDS.items() if m != "fcn"}
    result = verdict(_results("fcslstm", models, {}))
    assert result.holds is None and result.status == "not tested" and "fcn" in result.evidence
    assert verdict(_results("nosuch", {}, {})) is None
    broken = verdict(_results("fcslstm", {m: {"dice": 0.5} for m in FCSLSTM_HOLDS}, {}))
    assert broken.holds is None and "could not be computed" in broken.evidence
