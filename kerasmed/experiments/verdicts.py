"""Did the run reproduce the paper? One verdict function per experiment, computed from the numbers.

Each function takes a run's results dictionary (the ``results.json`` content, see
`kerasmed.experiments.registry`) and returns a `Verdict`: the paper's claim, whether this run's
numbers support it (``holds``: ``True``, ``False``, or ``None`` when the run lacks a model the
claim needs, e.g. after ``--set models=...``), and the numbers it was decided on. The
``kerasmed`` command prints it under the paper-vs-ours table and ``results.json`` stores it as
``"verdict"``; the notebooks print the same `Verdict`, so the command, the notebooks and the
tests agree. The margins are the ones the notebooks' tests assert (``tests/notebooks_test.py``).

`findings` adds, per experiment, the further checks a notebook interprets (papers 000-002): each
a `Verdict` too, whose evidence gives this run's number, the paper's and the difference, so a
notebook prints them (`format_verdicts`) instead of asserting an ordering in its text.

Example:

>>> results = {"experiment": "fcslstm", "models": {
...     "fcn": {"mpa": 0.85, "mpa_train": 0.88}, "fcslstm": {"mpa": 0.86, "mpa_train": 0.89},
...     "bi_fcslstm": {"mpa": 0.90, "mpa_train": 0.93}}}
>>> verdict(results).holds
True
>>> print(verdict(results).text)  # doctest: +ELLIPSIS
bi-FCSLSTM > FCN and FCSLSTM ... reproduced (test mPA: bi_fcslstm 0.900, fcslstm 0.860, ...
"""

from __future__ import annotations

import dataclasses
import functools
import math

__all__ = [
    "FINDINGS",
    "VERDICTS",
    "Verdict",
    "fcslstm_verdict",
    "findings",
    "format_verdicts",
    "ich_verdict",
    "tlstm_verdict",
    "two_step_verdict",
    "verdict",
    "xray_verdict",
]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The paper's claim and whether a run reproduced it.

    Args:
        claim: the paper's claim, in one line.
        holds: ``True`` (reproduced), ``False`` (not reproduced) or ``None`` (not tested: a
            model the claim needs was not run).
        evidence: the numbers the verdict was decided on.
    """

    claim: str
    holds: bool | None
    evidence: str

    @property
    def status(self) -> str:
        return {True: "reproduced", False: "NOT reproduced", None: "not tested"}[self.holds]

    @property
    def text(self) -> str:
        """One line: ``"<claim>: reproduced (<evidence>)"``."""
        return f"{self.claim}: {self.status} ({self.evidence})"

    def to_dict(self) -> dict:
        """The ``results.json`` entry: claim, holds, evidence and the one-line text."""
        return {**dataclasses.asdict(self), "text": self.text}


def _value(results, model, metric):
    """``results["models"][model][metric]`` (a per-label metric by its ``avg``), or ``None``."""
    entry = results["models"].get(model, {}).get(metric)
    if isinstance(entry, dict):
        entry = entry.get("avg")
    return None if entry is None or math.isnan(entry) else float(entry)


def _missing(claim, results, needed):
    absent = [m for m in needed if m not in results["models"]]
    if absent:
        return Verdict(claim, None, f"this run has no {', '.join(absent)}")
    return None


def _scores(values):
    return ", ".join(f"{name} {value:.3f}" for name, value in values.items())


def tlstm_verdict(results) -> Verdict:
    """Table 3 of paper 000: every tLSTM clearly (>= 0.03 average F) above the LSTM and the
    single-image CNN. The tLSTMs are the models named ``tlstm*`` that see the real δ (the
    shuffled-δ control is left out: it is meant to lose)."""
    claim = "Table 3's ordering tLSTM > LSTM, single image (average F, margin 0.03)"
    missing = _missing(claim, results, ("lstm", "single_image"))
    tlstms = [m for m in results["models"] if m.startswith("tlstm") and "shuffled" not in m]
    if missing or not tlstms:
        return missing or Verdict(claim, None, "this run has no tLSTM")
    f = {m: _value(results, m, "f_measure") for m in (*tlstms, "lstm", "single_image")}
    floor = max(f["lstm"], f["single_image"])
    holds = all(f[m] >= floor + 0.03 for m in tlstms)
    gains = ", ".join(f"{m} {f[m] - f['lstm']:+.3f}" for m in tlstms)
    return Verdict(
        claim,
        holds,
        f"gain over lstm: {gains}; lstm {f['lstm']:.3f}, single_image {f['single_image']:.3f}",
    )


def ich_verdict(results) -> Verdict:
    """Section IV of paper 001: the staged CNN + BiLSTM clearly (>= 0.05 AUC) above the
    slice-probability maximum (DeLong p < 0.05) and, when it was run, the model trained end
    to end from scratch, and not below the 95th percentile."""
    claim = "staged CNN + BiLSTM > max / p95 slice probability, scratch (AUC, margin 0.05)"
    missing = _missing(claim, results, ("cnn_bilstm_staged", "max_prob", "p95_prob"))
    if missing:
        return missing
    names = ["cnn_bilstm_staged", "max_prob", "p95_prob", "cnn_bilstm_scratch", "svm"]
    auc = {m: _value(results, m, "auc") for m in names if m in results["models"]}
    staged = auc["cnn_bilstm_staged"]
    holds = staged >= auc["max_prob"] + 0.05 and staged >= auc["p95_prob"]
    if "cnn_bilstm_scratch" in auc:
        holds = holds and staged >= auc["cnn_bilstm_scratch"] + 0.05
    evidence = f"AUC: {_scores(auc)}"
    p_value = results.get("delong_p_values", {}).get("max_prob")
    if p_value is not None:
        holds = holds and p_value < 0.05
        evidence += f"; DeLong p vs max_prob {p_value:.3g}"
    return Verdict(claim, bool(holds), evidence)


def fcslstm_verdict(results) -> Verdict:
    """Section 3 of paper 002: the bidirectional FCSLSTM clearly (>= 0.02 mPA) above the FCN
    and the FCSLSTM on the test and the training time points; the FCSLSTM level with the FCN at
    the test time point (within 0.02; the paper's gain is +0.003)."""
    claim = "bi-FCSLSTM > FCN and FCSLSTM (mPA, margin 0.02), FCSLSTM level with FCN"
    missing = _missing(claim, results, ("fcn", "fcslstm", "bi_fcslstm"))
    if missing:
        return missing
    names = ("bi_fcslstm", "fcslstm", "fcn")
    test = {m: _value(results, m, "mpa") for m in names}
    train = {m: _value(results, m, "mpa_train") for m in names}
    holds = all(
        scores["bi_fcslstm"] >= scores[other] + 0.02
        for scores in (test, train)
        for other in ("fcn", "fcslstm")
    ) and (test["fcslstm"] >= test["fcn"] - 0.02)
    return Verdict(claim, holds, f"test mPA: {_scores(test)}; training mPA: {_scores(train)}")


def two_step_verdict(results) -> Verdict:
    """Table 2 of paper 003: both two-step heads (LSTM, Swin) at least level with the 2D CNN's
    single draw in macro-F1 (within 0.01; the paper: 0.932 and 0.934 vs 0.930), on a 2D CNN
    that learned (macro-F1 >= 0.6; a constant answer scores at most 0.5)."""
    claim = "two-step LSTM and Swin heads >= the 2D CNN (macro-F1, within 0.01)"
    missing = _missing(claim, results, ("cnn_2d", "two_step_lstm", "two_step_swin"))
    if missing:
        return missing
    f1 = {m: _value(results, m, "macro_f1") for m in ("two_step_lstm", "two_step_swin", "cnn_2d")}
    evidence = f"macro-F1: {_scores(f1)}"
    if f1["cnn_2d"] < 0.6:
        return Verdict(claim, False, evidence + "; the 2D CNN did not learn (< 0.6)")
    holds = all(f1[m] >= f1["cnn_2d"] - 0.01 for m in ("two_step_lstm", "two_step_swin"))
    return Verdict(claim, holds, evidence)


def xray_verdict(results) -> Verdict:
    """Tables I-II of paper 004: every padding x enhancement input trains a classifier clearly
    (>= 0.05 accuracy) above always answering the majority training class."""
    claim = "every input beats the majority class (accuracy, margin 0.05)"
    floor = results.get("majority_rate")
    if floor is None or not results["models"]:
        return Verdict(claim, None, "this run has no majority_rate or no model")
    accuracy = {m: _value(results, m, "accuracy") for m in results["models"]}
    holds = all(a >= floor + 0.05 for a in accuracy.values())
    worst = min(accuracy, key=accuracy.get)
    best = max(accuracy, key=accuracy.get)
    return Verdict(
        claim,
        holds,
        f"majority class {floor:.3f}; lowest {worst} {accuracy[worst]:.3f}, "
        f"highest {best} {accuracy[best]:.3f}",
    )


# ---------------------------------------------------------------------------------------------
# Findings: the further claims a notebook interprets, one `Verdict` each, beside the main one.


def _finding(claim):
    """Makes ``function(results, claim)`` a finding: ``check(results) -> Verdict``, with
    ``check.claim``; a results dict without a number it reads gives "not tested"."""

    def decorate(function):
        @functools.wraps(function)
        def check(results):
            try:
                return function(results, claim)
            except (KeyError, TypeError, ValueError) as error:
                return Verdict(claim, None, f"could not be computed: {error!r}")

        check.claim = claim
        return check

    return decorate


def _needed(claim, results, needed, metric):
    """``{model: value}`` of `metric` for `needed`, or the "not tested" `Verdict` when one lacks it."""
    missing = _missing(claim, results, needed)
    if missing:
        return missing
    values = {m: _value(results, m, metric) for m in needed}
    absent = [m for m, v in values.items() if v is None]
    if absent:
        return Verdict(claim, None, f"{', '.join(absent)} has no {metric}")
    return values


def _share(part, whole):
    return f"{part / whole:.0%}" if whole > 0 else "n/a (no gain to share)"


# Table 3 of paper 000 (simulated data), average F-measure.
_TLSTM_PAPER_F = {"single_image": 0.7231, "lstm": 0.7359, "tlstm_v1": 0.9296, "tlstm_v2": 0.8864}
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
    f = _needed(claim, results, ("lstm", *raw), "f_measure")
    if isinstance(f, Verdict):
        return f
    gains = {m: f[m] - f["lstm"] for m in raw}
    evidence = "; ".join(
        f"{m} {f[m]:.3f} - lstm {f['lstm']:.3f} = {gains[m]:+.3f} "
        f"(paper {paper[m]:+.3f}, ours {_share(gains[m], paper[m])} of it)"
        for m in raw
    )
    return Verdict(claim, all(g >= 0.03 for g in gains.values()), evidence)


@_finding(
    "the gain is the time-modulated cell's, not only seeing δ: tlstm_v1_encoded above "
    "lstm_with_delta, both fed the same encoded δ (average F, margin 0.03)"
)
def _tlstm_cell(results, claim):
    f = _needed(claim, results, ("lstm", "lstm_with_delta", "tlstm_v1_encoded"), "f_measure")
    if isinstance(f, Verdict):
        return f
    cell = f["tlstm_v1_encoded"] - f["lstm_with_delta"]
    tlstm_gain = f["tlstm_v1_encoded"] - f["lstm"]
    delta_gain = f["lstm_with_delta"] - f["lstm"]
    evidence = (
        f"tlstm_v1_encoded {f['tlstm_v1_encoded']:.3f} - lstm_with_delta "
        f"{f['lstm_with_delta']:.3f} = {cell:+.3f}; seeing δ alone gives the LSTM "
        f"{delta_gain:+.3f} of the tLSTM's {tlstm_gain:+.3f} over the lstm "
        f"({_share(delta_gain, tlstm_gain)})"
    )
    return Verdict(claim, cell >= 0.03, evidence)


@_finding(
    "the gain comes from δ: with δ shuffled within each sequence the tLSTM falls below "
    "tlstm_v1_encoded (average F, margin 0.03)"
)
def _tlstm_shuffled(results, claim):
    f = _needed(
        claim, results, ("lstm", "tlstm_v1_encoded", "tlstm_v1_shuffled_delta"), "f_measure"
    )
    if isinstance(f, Verdict):
        return f
    drop = f["tlstm_v1_encoded"] - f["tlstm_v1_shuffled_delta"]
    evidence = (
        f"tlstm_v1_encoded {f['tlstm_v1_encoded']:.3f} - tlstm_v1_shuffled_delta "
        f"{f['tlstm_v1_shuffled_delta']:.3f} = {drop:+.3f}; shuffled - lstm "
        f"{f['tlstm_v1_shuffled_delta'] - f['lstm']:+.3f}"
    )
    return Verdict(claim, drop >= 0.03, evidence)


def _p_value(results, model):
    p = results.get("delong_p_values", {}).get(model)
    return "" if p is None else f"; DeLong p {p:.3g}"


@_finding(
    "Section IV-B: at sensitivity 0.98 end-to-end training buys specificity: the staged "
    "model above the LSTM-only stage (the paper's staged model: 0.78)"
)
def _ich_operating_point(results, claim):
    spec = _needed(claim, results, ("cnn_bilstm_staged", "cnn_bilstm_lstm_only"), "specificity")
    if isinstance(spec, Verdict):
        return spec
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
        value = _needed(claim, results, (better, worse), metric)
        if isinstance(value, Verdict):
            return value
        gap = value[better] - value[worse]
        short = {m: m.removeprefix("cnn_bilstm_") for m in (better, worse)}
        evidence = (
            f"{label} {short[better]} {value[better]:.3f} - {short[worse]} {value[worse]:.3f} "
            f"= {gap:+.3f} (paper {paper_gap:+.3g})"
            + ("" if p_value is None else _p_value(results, p_value))
        )
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


def _per_timepoint(results, claim, needed):
    curves = results.get("mpa_per_timepoint")
    if not curves or any(m not in curves for m in needed):
        return Verdict(claim, None, f"this run has no per-time-point mPA of {', '.join(needed)}")
    return {m: [float(v) for v in curves[m]] for m in needed}


def _signed(values):
    return ", ".join(f"{v:+.3f}" for v in values)


@_finding(
    "the forward FCSLSTM starts below the FCN (no memory at time point 1) and catches up "
    "later (kerasmed's reading; the paper gives no per-time-point numbers)"
)
def _fcslstm_crossing(results, claim):
    curves = _per_timepoint(results, claim, ("fcslstm", "fcn"))
    if isinstance(curves, Verdict):
        return curves
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


@_finding("Section 3: the test time point is the most challenging one: the FCN's lowest mPA")
def _fcslstm_hardest(results, claim):
    curves = _per_timepoint(results, claim, ("fcn",))
    if isinstance(curves, Verdict):
        return curves
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
    curves = _per_timepoint(results, claim, ("bi_fcslstm", "fcn"))
    if isinstance(curves, Verdict):
        return curves
    diff = [a - b for a, b in zip(curves["bi_fcslstm"], curves["fcn"], strict=True)]
    return Verdict(
        claim, all(d >= 0 for d in diff), f"bi_fcslstm - fcn per time point: {_signed(diff)}"
    )


@_finding(
    "the bidirectional FCSLSTM's gain over the FCN is smaller on subjects never trained on "
    "(kerasmed's caveat: a test scan's subject has labelled training scans)"
)
def _fcslstm_heldout(results, claim):
    test = _needed(claim, results, ("bi_fcslstm", "fcn"), "mpa")
    if isinstance(test, Verdict):
        return test
    heldout = _needed(claim, results, ("bi_fcslstm", "fcn"), "mpa_heldout")
    if isinstance(heldout, Verdict):
        return Verdict(claim, None, "this run has no held-out subjects (mpa_heldout)")
    seen_gain = test["bi_fcslstm"] - test["fcn"]
    heldout_gain = heldout["bi_fcslstm"] - heldout["fcn"]
    evidence = (
        f"bi_fcslstm - fcn: {seen_gain:+.3f} on the training subjects' test time point, "
        f"{heldout_gain:+.3f} on the held-out subjects'"
    )
    return Verdict(claim, heldout_gain < seen_gain, evidence)


VERDICTS = {
    "tlstm": tlstm_verdict,
    "ich": ich_verdict,
    "fcslstm": fcslstm_verdict,
    "two-step": two_step_verdict,
    "xray": xray_verdict,
}


def verdict(results) -> Verdict | None:
    """The `Verdict` of ``results["experiment"]``, or ``None`` for an experiment without one."""
    function = VERDICTS.get(results.get("experiment"))
    if function is None:
        return None
    try:
        return function(results)
    except (KeyError, TypeError) as error:  # a results dict without a metric the claim reads
        claim = (function.__doc__ or "").split(":")[0].strip()
        return Verdict(claim, None, f"could not be computed: {error!r}")


FINDINGS = {
    "tlstm": (_tlstm_raw_gain, _tlstm_cell, _tlstm_shuffled),
    "ich": (_ich_end_to_end, _ich_operating_point, _ich_svm_vs_lstm_only, _ich_staged_vs_svm),
    "fcslstm": (
        _fcslstm_forward("mpa", "the test time point", (0.853, 0.85)),
        _fcslstm_forward("mpa_train", "the training time points", (0.935, 0.92)),
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
