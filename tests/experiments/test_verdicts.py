"""Each experiment's verdict on a results dict where the paper's claim holds and one where not."""

import pytest

from kerasmed.experiments import findings, verdicts
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


# Findings: the further checks the notebooks of papers 000-002 print (both outcomes each).

TLSTM_FULL = {
    "single_image": _f(0.70),
    "lstm": _f(0.72),
    "lstm_with_delta": _f(0.76),
    "tlstm_v1": _f(0.80),
    "tlstm_v2": _f(0.79),
    "tlstm_v1_encoded": _f(0.85),
    "tlstm_v1_shuffled_delta": _f(0.73),
}
TLSTM_EXTRA = {"histories": {"single_image": {"val_loss": [0.40, 0.33, 0.345, 0.30]}}}
ICH_FULL = {
    **ICH_HOLDS,
    "cnn_bilstm_staged": {"auc": 0.90, "specificity": 0.70, "sensitivity": 0.98},
    "cnn_bilstm_lstm_only": {"auc": 0.82, "specificity": 0.50, "sensitivity": 0.98},
}
ICH_EXTRA = {"delong_p_values": {"max_prob": 0.01, "svm": 0.2, "cnn_bilstm_lstm_only": 0.04}}
FCSLSTM_FULL = {
    "fcn": {"mpa": 0.85, "mpa_train": 0.90, "mpa_heldout": 0.80},
    "fcslstm": {"mpa": 0.86, "mpa_train": 0.91, "mpa_heldout": 0.80},
    "bi_fcslstm": {"mpa": 0.90, "mpa_train": 0.95, "mpa_heldout": 0.82},
}
FCSLSTM_EXTRA = {
    "protocol": {"test_timepoint": 3},
    "mpa_per_timepoint": {
        "fcn": [0.92, 0.90, 0.85, 0.89, 0.93],
        "fcslstm": [0.85, 0.91, 0.86, 0.90, 0.93],
        "bi_fcslstm": [0.94, 0.93, 0.90, 0.93, 0.95],
    },
}


def _f_entry(value):  # an f_measure entry
    return _f(value)["f_measure"]


def _finding(results, words):
    found = [f for f in findings.findings(results) if words in f.claim]
    assert len(found) == 1, [f.claim for f in findings.findings(results)]
    return found[0]


# (experiment, models, extra, words of the claim, model, metric, value breaking it)
FINDING_CASES = [
    ("tlstm", TLSTM_FULL, {}, "raw-δ tLSTMs", "tlstm_v2", "f_measure", _f_entry(0.74)),
    ("tlstm", TLSTM_FULL, {}, "cell's", "lstm_with_delta", "f_measure", _f_entry(0.83)),
    ("tlstm", TLSTM_FULL, {}, "shuffled", "tlstm_v1_shuffled_delta", "f_measure", _f_entry(0.84)),
    ("ich", ICH_FULL, ICH_EXTRA, "(stage 3)", "cnn_bilstm_lstm_only", "auc", 0.95),
    ("ich", ICH_FULL, ICH_EXTRA, "buys specificity", "cnn_bilstm_lstm_only", "specificity", 0.7),
    ("ich", ICH_FULL, ICH_EXTRA, "slice features", "svm", "auc", 0.80),
    ("ich", ICH_FULL, ICH_EXTRA, "SVM inferior", "svm", "auc", 0.91),
    ("fcslstm", FCSLSTM_FULL, FCSLSTM_EXTRA, "on the test time", "fcslstm", "mpa", 0.85),
    ("fcslstm", FCSLSTM_FULL, FCSLSTM_EXTRA, "FCN on the training", "fcslstm", "mpa_train", 0.89),
    ("fcslstm", FCSLSTM_FULL, FCSLSTM_EXTRA, "never trained", "bi_fcslstm", "mpa_heldout", 0.86),
]


@pytest.mark.parametrize("case", FINDING_CASES, ids=[f"{c[0]}-{c[3]}" for c in FINDING_CASES])
def test_finding_holds_and_breaks_with_the_numbers(case):
    experiment, models, extra, words, model, metric, breaking = case
    good = _finding(_results(experiment, models, extra), words)
    assert good.holds is True, good.text
    bad_models = {**models, model: {**models[model], metric: breaking}}
    bad = _finding(_results(experiment, bad_models, extra), words)
    assert bad.holds is False, bad.text


def test_findings_of_a_full_run_all_hold_and_print():
    for experiment, models, extra in (
        ("tlstm", TLSTM_FULL, TLSTM_EXTRA),
        ("ich", ICH_FULL, ICH_EXTRA),
        ("fcslstm", FCSLSTM_FULL, FCSLSTM_EXTRA),
    ):
        results = _results(experiment, models, extra)
        found = findings.findings(results)
        assert found and all(f.holds is True for f in found), [f.text for f in found]
        text = findings.format_verdicts(results)
        assert text.count("[reproduced] ") == 1 + len(found), text
    assert findings.findings(_results("two-step", TWO_STEP_HOLDS, {})) == []
    assert findings.format_verdicts(_results("nosuch", {}, {})) == ""


def test_tlstm_findings_give_the_papers_gain_and_ours():
    results = _results("tlstm", TLSTM_FULL, {})
    raw = _finding(results, "raw-δ tLSTMs").evidence
    assert "tlstm_v1 0.800 - lstm 0.720 = +0.080 (paper +0.194, ours 41% of it)" in raw
    assert "tlstm_v2" in raw and "paper +0.150" in raw
    cell = _finding(results, "cell's").evidence
    # an LSTM that sees δ gets +0.04 of the tLSTM's +0.13: 31 % of the gain
    assert "= +0.090" in cell and "+0.040 of the tLSTM's +0.130" in cell and "(31%)" in cell


def test_tlstm_cnn_stability_finding_reads_the_validation_loss():
    ppv = {"ppv": {"0": 0.74, "6": 0.92, "avg": 0.83}}
    models = {**TLSTM_FULL, "single_image": {**TLSTM_FULL["single_image"], **ppv}}
    stable = _finding(_results("tlstm", models, TLSTM_EXTRA), "trains stably")
    assert stable.holds is True, stable.text
    assert "0.400, 0.330, 0.345, 0.300" in stable.evidence and "rises" not in stable.evidence
    assert "0 0.740 (paper 0.572), 6 0.920 (paper 0.830)" in stable.evidence
    jumpy = {"histories": {"single_image": {"val_loss": [1.109, 1.497, 0.554, 0.714, 0.338]}}}
    unstable = _finding(_results("tlstm", models, jumpy), "trains stably")
    assert unstable.holds is False and "rises at epoch 2, 4" in unstable.evidence
    assert _finding(_results("tlstm", models, {}), "trains stably").holds is None


def test_tlstm_paper_numbers_of_the_findings_are_table_3s():
    from kerasmed.experiments.longitudinal import PAPER

    single = PAPER["single_image"]["ppv"]
    assert findings._TLSTM_PAPER_PPV == {d: single[d] for d in "06839"}
    assert findings._TLSTM_PAPER_F == {m: PAPER[m]["f_measure"]["avg"] for m in PAPER}


def test_tlstm_cell_finding_says_where_the_gain_comes_from():
    cell = _finding(_results("tlstm", TLSTM_FULL, {}), "cell's").evidence
    assert cell.endswith("the cell adds +0.090 to what seeing δ gives"), cell
    seeing = {**TLSTM_FULL, "lstm_with_delta": _f(0.84)}
    cell = _finding(_results("tlstm", seeing, {}), "cell's").evidence
    assert cell.endswith("the gain comes from seeing δ, not from the time-modulated cell"), cell
    flat = {**TLSTM_FULL, "lstm_with_delta": _f(0.73), "tlstm_v1_encoded": _f(0.74)}
    cell = _finding(_results("tlstm", flat, {}), "cell's").evidence
    assert cell.endswith("neither model gains 0.03 over the lstm in this run"), cell


def test_ich_operating_point_is_compared_with_the_papers():
    found = _finding(_results("ich", ICH_FULL, ICH_EXTRA), "buys specificity")
    assert "staged 0.700 (at sensitivity 0.98) - lstm_only 0.500 = +0.200" in found.evidence
    assert "staged - paper's 0.78 = -0.080" in found.evidence
    staged = _finding(_results("ich", ICH_FULL, ICH_EXTRA), "SVM inferior")
    assert "DeLong p 0.2" in staged.evidence


def test_fcslstm_per_time_point_findings():
    results = _results("fcslstm", FCSLSTM_FULL, FCSLSTM_EXTRA)
    cross = _finding(results, "catches up")
    assert cross.holds is True and "cross between time points 1 and 2" in cross.evidence
    assert _finding(results, "most challenging").holds is True
    assert _finding(results, "every time point").holds is True

    below = {**FCSLSTM_EXTRA["mpa_per_timepoint"], "fcslstm": [0.85, 0.89, 0.84, 0.88, 0.92]}
    other = _results("fcslstm", FCSLSTM_FULL, {**FCSLSTM_EXTRA, "mpa_per_timepoint": below})
    cross = _finding(other, "catches up")
    assert cross.holds is False and "do not cross" in cross.evidence

    curves = {
        **FCSLSTM_EXTRA["mpa_per_timepoint"],
        "fcn": [0.80, 0.90, 0.85, 0.89, 0.93],
        "bi_fcslstm": [0.79, 0.93, 0.90, 0.93, 0.95],
    }
    other = _results("fcslstm", FCSLSTM_FULL, {**FCSLSTM_EXTRA, "mpa_per_timepoint": curves})
    hardest = _finding(other, "most challenging")
    assert (
        hardest.holds is False and "lowest at time point 1, test time point 3" in hardest.evidence
    )
    assert _finding(other, "every time point").holds is False


def test_fcslstm_first_time_point_finding():
    results = _results("fcslstm", FCSLSTM_FULL, FCSLSTM_EXTRA)
    first = _finding(results, "empty")
    # fcslstm - fcn: -0.07 at time point 1; +0.01, +0.01, 0.00 at 2, 4, 5 (test: 3)
    assert first.holds is True, first.text
    assert "at time point 1 -0.070; at training time points 2, 4, 5" in first.evidence
    assert "+0.010, +0.010, +0.000 (mean +0.007)" in first.evidence
    assert "bi_fcslstm - fcn at time point 1 +0.020" in first.evidence

    # the same shortfall spread evenly over the training time points: not at time point 1
    even = {**FCSLSTM_EXTRA["mpa_per_timepoint"], "fcslstm": [0.90, 0.88, 0.86, 0.87, 0.91]}
    other = _results("fcslstm", FCSLSTM_FULL, {**FCSLSTM_EXTRA, "mpa_per_timepoint": even})
    assert _finding(other, "empty").holds is False

    first_test = {**FCSLSTM_EXTRA, "protocol": {"test_timepoint": 1}}
    found = _finding(_results("fcslstm", FCSLSTM_FULL, first_test), "empty")
    assert found.holds is None and "time point 1 is this run's test time point" in found.evidence


def test_findings_without_their_numbers_are_not_tested():
    results = _results("fcslstm", {m: {"mpa": 0.8, "mpa_train": 0.8} for m in FCSLSTM_FULL}, {})
    found = {f.claim: f for f in findings.findings(results)}
    assert _finding(results, "catches up").holds is None
    assert "no per-time-point mPA" in _finding(results, "catches up").evidence
    assert "no held-out subjects" in _finding(results, "never trained").evidence
    assert len(found) == len(findings.FINDINGS["fcslstm"])
    lstm_only = _results("tlstm", {"lstm": _f(0.7), "single_image": _f(0.6)}, {})
    assert all(f.holds is None for f in findings.findings(lstm_only))
    broken = {**FCSLSTM_EXTRA, "mpa_per_timepoint": {"fcn": None, "fcslstm": None}}
    crossing = _finding(_results("fcslstm", FCSLSTM_FULL, broken), "most challenging")
    assert crossing.holds is None and "could not be computed" in crossing.evidence


def test_the_papers_numbers_in_the_findings_are_the_experiments():
    from kerasmed.experiments import fcslstm, ich, longitudinal

    for model, value in findings._TLSTM_PAPER_F.items():
        assert longitudinal.PAPER[model]["f_measure"]["avg"] == value
    assert ich.PAPER["cnn_bilstm_staged"]["specificity"] == 0.78
    assert ich.PAPER["cnn_bilstm_lstm_only"]["auc"] == 0.87
    assert (fcslstm.PAPER["fcslstm"]["mpa"], fcslstm.PAPER["fcn"]["mpa"]) == (0.853, 0.85)
    assert (fcslstm.PAPER["fcslstm"]["mpa_train"], fcslstm.PAPER["fcn"]["mpa_train"]) == (
        0.935,
        0.92,
    )


def test_the_cli_table_lists_the_findings_unless_asked_not_to():
    from kerasmed.experiments.registry import format_table

    results = {
        "experiment": "fcslstm",
        "preset": "quick",
        "backend": "tensorflow",
        "seconds": 1.0,
        "models": {
            "fcn": {"mpa": 0.85, "mpa_train": 0.92},
            "fcslstm": {"mpa": 0.86, "mpa_train": 0.90},
            "bi_fcslstm": {"mpa": 0.90, "mpa_train": 0.95},
        },
    }
    results["verdict"] = verdict(results).to_dict()
    results["findings"] = [f.to_dict() for f in findings.findings(results)]
    assert results["findings"]
    table = format_table(results)
    assert "Findings:" in table
    assert all(f["text"] in table for f in results["findings"])
    assert "Findings:" not in format_table(results, verdicts=False)
    assert "Verdict:" not in format_table(results, verdicts=False)


def test_findings_stay_importable_from_verdicts():
    from kerasmed.experiments.verdicts import FINDINGS, format_verdicts
    from kerasmed.experiments.verdicts import findings as found

    assert found is findings.findings and FINDINGS is findings.FINDINGS
    assert format_verdicts is findings.format_verdicts
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        verdicts.nosuch  # noqa: B018
