"""The further claims a notebook interprets, one `Verdict` each, beside the paper's headline one.

`kerasmed.experiments.verdicts` decides each experiment's headline claim; `findings` adds, per
experiment, the further checks a notebook interprets (papers 000-002): each a `Verdict` too,
whose evidence gives this run's number, the paper's and the difference, so a notebook prints
them (`format_verdicts`) instead of asserting an ordering in its text. ``results.json`` stores
them as ``"findings"``. A finding is a function ``check(results) -> Verdict`` made by `_finding`
(a numbers-reading function) or `_gap_finding` (one model's metric above another's); a check
whose numbers the run lacks is "not tested".
"""

from __future__ import annotations

import functools

from kerasmed.experiments.verdicts import Verdict, _value, verdict

__all__ = ["FINDINGS", "findings", "format_verdicts"]


class _NotTested(Exception):
    """Raised by a finding whose run lacks a number it reads; `_finding` turns it into the
    "not tested" `Verdict` with this evidence."""

    def __init__(self, evidence):
        super().__init__(evidence)
        self.evidence = evidence


def _finding(claim):
    """Makes ``function(results, claim)`` a finding: ``check(results) -> Verdict``, with
    ``check.claim``; a results dict without a number it reads gives "not tested"."""

    def decorate(function):
        @functools.wraps(function)
        def check(results):
            try:
                return function(results, claim)
            except _NotTested as missing:
                return Verdict(claim, None, missing.evidence)
            except (KeyError, TypeError, ValueError) as error:
                return Verdict(claim, None, f"could not be computed: {error!r}")

        check.claim = claim
        return check

    return decorate


def _needed(results, needed, metric):
    """``{model: value}`` of `metric` for `needed`; `_NotTested` when the run lacks one."""
    absent = [m for m in needed if m not in results["models"]]
    if absent:
        raise _NotTested(f"this run has no {', '.join(absent)}")
    values = {m: _value(results, m, metric) for m in needed}
    absent = [m for m, v in values.items() if v is None]
    if absent:
        raise _NotTested(f"{', '.join(absent)} has no {metric}")
    return values


def _minus(values, a, b, names=None):
    """``a``'s value minus ``b``'s and its evidence text ``"a 0.812 - b 0.774 = +0.038"``;
    `names` shortens the model names in the text."""
    names = names or {}
    gap = values[a] - values[b]
    text = f"{names.get(a, a)} {values[a]:.3f} - {names.get(b, b)} {values[b]:.3f} = {gap:+.3f}"
    return gap, text


def _share(part, whole):
    return f"{part / whole:.0%}" if whole > 0 else "n/a (no gain to share)"


# Table 3 of paper 000 (simulated data), average F-measure.
_TLSTM_PAPER_F = {"single_image": 0.7231, "lstm": 0.7359, "tlstm_v1": 0.9296, "tlstm_v2": 0.8864}
# Table 3 of paper 000, the single-image AlexNet's PPV per digit (`longitudinal.PAPER`).
_TLSTM_PAPER_PPV = {"0": 0.5721, "6": 0.8303, "8": 0.7771, "3": 0.5157, "9": 0.8199}
_TLSTM_PAPER_GAIN = {
    m: _TLSTM_PAPER_F[m] - _TLSTM_PAPER_F["lstm"] for m in ("tlstm_v1", "tlstm_v2")
}


@_finding(
    "Table 3: the raw-δ tLSTMs above the LSTM (paper: "
    + ", ".join(f"{m} {g:+.3f}" for m, g in _TLSTM_PAPER_GAIN.items())
    + " average F; margin 0.03)"
)
def _tlstm_raw_gain(results, claim):
    paper = _TLSTM_PAPER_GAIN
    raw = [m for m in paper if m in results["models"]]
    if not raw:
        return Verdict(claim, None, "this run has no raw-δ tLSTM (tlstm_v1, tlstm_v2)")
    f = _needed(results, ("lstm", *raw), "f_measure")
    gains = {m: _minus(f, m, "lstm") for m in raw}
    evidence = "; ".join(
        f"{text} (paper {paper[m]:+.3f}, ours {_share(gain, paper[m])} of it)"
        for m, (gain, text) in gains.items()
    )
    return Verdict(claim, all(g >= 0.03 for g, _ in gains.values()), evidence)


@_finding(
    "the gain is the time-modulated cell's, not only seeing δ: tlstm_v1_encoded above "
    "lstm_with_delta, both fed the same encoded δ (average F, margin 0.03)"
)
def _tlstm_cell(results, claim):
    f = _needed(results, ("lstm", "lstm_with_delta", "tlstm_v1_encoded"), "f_measure")
    cell, cell_text = _minus(f, "tlstm_v1_encoded", "lstm_with_delta")
    tlstm_gain = f["tlstm_v1_encoded"] - f["lstm"]
    delta_gain = f["lstm_with_delta"] - f["lstm"]
    if cell >= 0.03:
        reading = f"the cell adds {cell:+.3f} to what seeing δ gives"
    elif delta_gain >= 0.03:
        reading = "so in this run the gain comes from seeing δ, not from the time-modulated cell"
    else:
        reading = "neither model gains 0.03 over the lstm in this run"
    evidence = (
        f"{cell_text}; seeing δ alone gives the LSTM {delta_gain:+.3f} of the tLSTM's "
        f"{tlstm_gain:+.3f} over the lstm ({_share(delta_gain, tlstm_gain)}): {reading}"
    )
    return Verdict(claim, cell >= 0.03, evidence)


@_finding(
    "the gain comes from δ: with δ shuffled within each sequence the tLSTM falls below "
    "tlstm_v1_encoded (average F, margin 0.03)"
)
def _tlstm_shuffled(results, claim):
    f = _needed(results, ("lstm", "tlstm_v1_encoded", "tlstm_v1_shuffled_delta"), "f_measure")
    drop, text = _minus(f, "tlstm_v1_encoded", "tlstm_v1_shuffled_delta")
    evidence = f"{text}; shuffled - lstm {f['tlstm_v1_shuffled_delta'] - f['lstm']:+.3f}"
    return Verdict(claim, drop >= 0.03, evidence)


@_finding(
    "stage 1: the image CNN trains stably: its validation loss never rises more than 0.02 "
    "above its lowest so far (kerasmed's check; the paper's AlexNet was pre-trained)"
)
def _tlstm_cnn_stable(results, claim):
    loss = results.get("histories", {}).get("single_image", {}).get("val_loss")
    if not loss:
        raise _NotTested("this run has no validation loss of the single-image CNN")
    loss = [float(v) for v in loss]
    rises = [e for e in range(1, len(loss)) if loss[e] > min(loss[:e]) + 0.02]
    ppv = results["models"].get("single_image", {}).get("ppv", {})
    paper = _TLSTM_PAPER_PPV
    evidence = (
        f"validation loss per epoch: {', '.join(f'{v:.3f}' for v in loss)}"
        + (f"; rises at epoch {', '.join(str(e + 1) for e in rises)}" if rises else "")
        + "; single_image PPV per digit "
        + ", ".join(f"{d} {ppv[d]:.3f} (paper {paper[d]:.3f})" for d in paper if d in ppv)
    )
    return Verdict(claim, not rises, evidence)


def _p_value(results, model):
    p = results.get("delong_p_values", {}).get(model)
    return "" if p is None else f"; DeLong p {p:.3g}"


@_finding(
    "Section IV-B: at sensitivity 0.98 end-to-end training buys specificity: the staged "
    "model above the LSTM-only stage (the paper's staged model: 0.78)"
)
def _ich_operating_point(results, claim):
    spec = _needed(results, ("cnn_bilstm_staged", "cnn_bilstm_lstm_only"), "specificity")
    staged, lstm_only = spec["cnn_bilstm_staged"], spec["cnn_bilstm_lstm_only"]
    sensitivity = _value(results, "cnn_bilstm_staged", "sensitivity")
    reached = "" if sensitivity is None else f" (at sensitivity {sensitivity:.2f})"
    evidence = (
        f"specificity staged {staged:.3f}{reached} - lstm_only {lstm_only:.3f} = "
        f"{staged - lstm_only:+.3f}; staged - paper's 0.78 = {staged - 0.78:+.3f}"
    )
    return Verdict(claim, staged > lstm_only, evidence)


def _gap_finding(claim, better, worse, metric, paper_gap, label, p_value=None):
    """A finding: `better`'s `metric` above `worse`'s; the evidence gives the gap beside the
    paper's (`paper_gap`) and, with `p_value`, the DeLong p of that model against the reference."""

    def check(results, claim):
        value = _needed(results, (better, worse), metric)
        short = {m: m.removeprefix("cnn_bilstm_") for m in (better, worse)}
        gap, text = _minus(value, better, worse, short)
        p = "" if p_value is None else _p_value(results, p_value)
        evidence = f"{label} {text} (paper {paper_gap:+.3g}){p}"
        return Verdict(claim, gap > 0, evidence)

    check.__name__ = f"_{better}_above_{worse}_{metric}"
    return _finding(claim)(check)


_ich_end_to_end = _gap_finding(
    "Section IV-B: end-to-end training (stage 3) raises the AUC over the LSTM-only stage 2 "
    "(paper 0.87 -> 0.96, p < 0.0001)",
    "cnn_bilstm_staged", "cnn_bilstm_lstm_only", "auc", 0.09, "AUC", p_value="cnn_bilstm_lstm_only",
)  # fmt: skip
_ich_svm_vs_lstm_only = _gap_finding(
    "Section IV: the SVM on the CNN's slice features (AUC 0.90) above the LSTM-only stage (0.87)",
    "svm", "cnn_bilstm_lstm_only", "auc", 0.03, "AUC",
)  # fmt: skip
_ich_staged_vs_svm = _gap_finding(
    "Section V: the SVM inferior to the staged CNN + BiLSTM (AUC 0.90 vs 0.96)",
    "cnn_bilstm_staged", "svm", "auc", 0.06, "AUC", p_value="svm",
)  # fmt: skip


def _fcslstm_forward(metric, where, paper):
    claim = (
        f"Section 3: the forward FCSLSTM above the FCN on {where} "
        f"(paper {paper[0]:.3f} vs {paper[1]:.3f}, {paper[0] - paper[1]:+.3f})"
    )
    return _gap_finding(claim, "fcslstm", "fcn", metric, paper[0] - paper[1], "mPA")


def _per_timepoint(results, needed):
    curves = results.get("mpa_per_timepoint")
    if not curves or any(m not in curves for m in needed):
        raise _NotTested(f"this run has no per-time-point mPA of {', '.join(needed)}")
    return {m: [float(v) for v in curves[m]] for m in needed}


def _signed(values):
    return ", ".join(f"{v:+.3f}" for v in values)


@_finding(
    "the forward FCSLSTM starts below the FCN (no memory at time point 1) and catches up "
    "later (kerasmed's reading; the paper gives no per-time-point numbers)"
)
def _fcslstm_crossing(results, claim):
    curves = _per_timepoint(results, ("fcslstm", "fcn"))
    diff = [a - b for a, b in zip(curves["fcslstm"], curves["fcn"], strict=True)]
    crossings = [t for t in range(len(diff) - 1) if (diff[t] >= 0) != (diff[t + 1] >= 0)]
    where = (
        "; the curves cross between time points "
        + ", ".join(f"{t + 1} and {t + 2}" for t in crossings)
        if crossings
        else "; the curves do not cross"
    )
    holds = diff[0] < 0 and any(d >= 0 for d in diff[1:])
    return Verdict(claim, holds, f"fcslstm - fcn per time point: {_signed(diff)}{where}")


@_finding(
    "the forward FCSLSTM's shortfall on the training time points is at time point 1, where its "
    "memory is empty: its gap to the FCN there at least 0.02 below its mean gap on the other "
    "training time points (kerasmed's reading)"
)
def _fcslstm_first_timepoint(results, claim):
    curves = _per_timepoint(results, ("fcslstm", "fcn"))
    test = results.get("protocol", {}).get("test_timepoint")
    if test is None:
        raise _NotTested("this run has no protocol.test_timepoint")
    if test == 1:
        raise _NotTested("time point 1 is this run's test time point")
    diff = [a - b for a, b in zip(curves["fcslstm"], curves["fcn"], strict=True)]
    others = [t for t in range(2, len(diff) + 1) if t != test]
    rest = sum(diff[t - 1] for t in others) / len(others)
    evidence = (
        f"fcslstm - fcn at time point 1 {diff[0]:+.3f}; at training time points "
        f"{', '.join(map(str, others))} {_signed([diff[t - 1] for t in others])} (mean {rest:+.3f})"
    )
    bi = results["mpa_per_timepoint"].get("bi_fcslstm")
    if bi is not None:
        evidence += (
            f"; bi_fcslstm - fcn at time point 1 {float(bi[0]) - curves['fcn'][0]:+.3f} "
            "(its backward direction has read the series)"
        )
    return Verdict(claim, diff[0] <= rest - 0.02, evidence)


@_finding("Section 3: the test time point is the most challenging one: the FCN's lowest mPA")
def _fcslstm_hardest(results, claim):
    curves = _per_timepoint(results, ("fcn",))
    test = results.get("protocol", {}).get("test_timepoint")
    if test is None:
        return Verdict(claim, None, "this run has no protocol.test_timepoint")
    fcn = curves["fcn"]
    lowest = 1 + min(range(len(fcn)), key=fcn.__getitem__)
    evidence = (
        f"FCN mPA per time point: {', '.join(f'{v:.3f}' for v in fcn)}; lowest at time point "
        f"{lowest}, test time point {test}"
    )
    return Verdict(claim, lowest == test, evidence)


@_finding("the bidirectional FCSLSTM at or above the FCN at every time point (kerasmed's reading)")
def _fcslstm_bi_everywhere(results, claim):
    curves = _per_timepoint(results, ("bi_fcslstm", "fcn"))
    diff = [a - b for a, b in zip(curves["bi_fcslstm"], curves["fcn"], strict=True)]
    return Verdict(
        claim, all(d >= 0 for d in diff), f"bi_fcslstm - fcn per time point: {_signed(diff)}"
    )


@_finding(
    "the bidirectional FCSLSTM's gain over the FCN is smaller on subjects never trained on "
    "(kerasmed's caveat: a test scan's subject has labelled training scans)"
)
def _fcslstm_heldout(results, claim):
    test = _needed(results, ("bi_fcslstm", "fcn"), "mpa")
    try:
        heldout = _needed(results, ("bi_fcslstm", "fcn"), "mpa_heldout")
    except _NotTested:
        raise _NotTested("this run has no held-out subjects (mpa_heldout)") from None
    seen_gain = test["bi_fcslstm"] - test["fcn"]
    heldout_gain = heldout["bi_fcslstm"] - heldout["fcn"]
    evidence = (
        f"bi_fcslstm - fcn: {seen_gain:+.3f} on the training subjects' test time point, "
        f"{heldout_gain:+.3f} on the held-out subjects'"
    )
    return Verdict(claim, heldout_gain < seen_gain, evidence)


FINDINGS = {
    "tlstm": (_tlstm_raw_gain, _tlstm_cell, _tlstm_shuffled, _tlstm_cnn_stable),
    "ich": (_ich_end_to_end, _ich_operating_point, _ich_svm_vs_lstm_only, _ich_staged_vs_svm),
    "fcslstm": (
        _fcslstm_forward("mpa", "the test time point", (0.853, 0.85)),
        _fcslstm_forward("mpa_train", "the training time points", (0.935, 0.92)),
        _fcslstm_first_timepoint,
        _fcslstm_hardest,
        _fcslstm_crossing,
        _fcslstm_bi_everywhere,
        _fcslstm_heldout,
    ),
}


def findings(results) -> list[Verdict]:
    """The further checks of ``results["experiment"]`` that its notebook interprets.

    `verdict` decides the paper's headline claim; each finding decides one more sentence a
    reader would otherwise take on trust (e.g. "the tLSTM's gain comes from δ", "the staged
    model's specificity at sensitivity 0.98"), from this run's numbers, with the paper's number
    and the difference in its evidence. An experiment without findings gives ``[]``; a check
    whose numbers the results lack is "not tested".

    Example:

    >>> results = {"experiment": "fcslstm", "models": {
    ...     "fcn": {"mpa": 0.85, "mpa_train": 0.92}, "fcslstm": {"mpa": 0.86, "mpa_train": 0.90},
    ...     "bi_fcslstm": {"mpa": 0.90, "mpa_train": 0.95}}}
    >>> [f.holds for f in findings(results)[:2]]
    [True, False]
    >>> print(findings(results)[0].evidence)
    mPA fcslstm 0.860 - fcn 0.850 = +0.010 (paper +0.003)
    """
    return [check(results) for check in FINDINGS.get(results.get("experiment"), ())]


def format_verdicts(results) -> str:
    """The verdict and the findings of a run, one block each (what the notebooks print).

    Each block is ``"[status] claim"`` and, indented under it, the numbers it was decided on.
    An experiment without a verdict or findings gives an empty string.

    Example:

    >>> results = {"experiment": "fcslstm", "models": {
    ...     "fcn": {"mpa": 0.85, "mpa_train": 0.92}, "fcslstm": {"mpa": 0.86, "mpa_train": 0.90},
    ...     "bi_fcslstm": {"mpa": 0.90, "mpa_train": 0.95}}}
    >>> print(format_verdicts(results).splitlines()[0])
    [reproduced] bi-FCSLSTM > FCN and FCSLSTM (mPA, margin 0.02), FCSLSTM level with FCN
    """
    main = verdict(results)
    checks = ([main] if main is not None else []) + findings(results)
    return "\n".join(f"[{v.status}] {v.claim}\n    {v.evidence}" for v in checks)
