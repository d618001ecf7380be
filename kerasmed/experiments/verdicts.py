"""Did the run reproduce the paper? One verdict function per experiment, computed from the numbers.

Each function takes a run's results dictionary (the ``results.json`` content, see
`kerasmed.experiments.registry`) and returns a `Verdict`: the paper's claim, whether this run's
numbers support it (``holds``: ``True``, ``False``, or ``None`` when the run lacks a model the
claim needs, e.g. after ``--set models=...``), and the numbers it was decided on. The
``kerasmed`` command prints it under the paper-vs-ours table and ``results.json`` stores it as
``"verdict"``; the notebooks print the same `Verdict`, so the command, the notebooks and the
tests agree. The margins are the ones the notebooks' tests assert (``tests/notebooks_test.py``).

`kerasmed.experiments.findings` adds, per experiment, the further checks a notebook interprets
(`findings`, printed with `format_verdicts`); both stay importable from here, as ``FINDINGS``.

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
import math

__all__ = [
    "FINDINGS",  # noqa: F822 (from kerasmed.experiments.findings, see __getattr__)
    "VERDICTS",
    "Verdict",
    "fcslstm_verdict",
    "findings",  # noqa: F822
    "format_verdicts",  # noqa: F822
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


_FROM_FINDINGS = ("FINDINGS", "findings", "format_verdicts")


def __getattr__(name):
    """``FINDINGS``, `findings` and `format_verdicts` live in `kerasmed.experiments.findings`
    (which builds on this module); they are read from there on first use, so either module can
    be imported first."""
    if name in _FROM_FINDINGS:
        from kerasmed.experiments import findings as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
