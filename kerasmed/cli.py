"""The ``kerasmed`` command: list and reproduce the papers' experiments.

Examples::

    kerasmed list
    kerasmed reproduce tlstm --preset quick --out results/tlstm
    kerasmed reproduce tlstm --backend jax --seed 1
    kerasmed reproduce tlstm --set seq_epochs=3 --set encoding='"log"'
    kerasmed reproduce fcslstm --set test_timepoint=0 \\
        --set "sequence_models.bi_fcslstm.operator_groups=(2, 3)"

``--set KEY=VALUE`` (repeatable) changes one setting of the preset for this run: KEY is a
field of the experiment's config (``kerasmed.experiments.presets``), or a dotted path into
a nested one; VALUE is a Python literal (``3``, ``1e-4``, ``True``, ``None``, ``(2, 3)``,
``"log"``), and a bare word that is not one (``log``, ``one_hot``) is taken as that string.
The settings are checked before the backend starts; an unknown key or a value of the wrong
type exits with status 2 and a message listing the valid keys. ``results.json`` records the
overrides and the resolved config.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys

from kerasmed import __version__
from kerasmed.environment import BACKENDS, install_line, missing_backend, start_backend
from kerasmed.experiments.registry import EXPERIMENTS, get_config

_REPRODUCE_EXAMPLES = """examples:
  kerasmed reproduce tlstm --preset quick --out results/tlstm
  kerasmed reproduce tlstm --set seq_epochs=3 --set encoding='"log"'
  kerasmed reproduce fcslstm --set test_timepoint=0 --set "sequence_models.bi_fcslstm.operator_groups=(2, 3)"

--set KEY=VALUE: KEY is a field of the experiment's config (an unknown one is listed with the
valid keys), VALUE a Python literal; a bare word (encoding=log) is taken as a string."""
_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasmed",
        description="Reproduce the experiments of the papers kerasmed implements.",
    )
    parser.add_argument("--version", action="version", version=f"kerasmed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list experiments, their presets and expected runtimes")
    rep = sub.add_parser(
        "reproduce",
        help="run one paper's experiment end to end",
        description="Run one paper's experiment end to end: print the paper-vs-ours table and "
        "write results.json and PNG figures to --out.",
        epilog=_REPRODUCE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument("experiment", help="experiment name (see `kerasmed list`)")
    rep.add_argument("--preset", default="quick", help="quick (CPU, minutes) or paper (GPU)")
    rep.add_argument("--data-dir", default=None, help="real dataset prepared by data_prep/")
    rep.add_argument("--out", default=None, help="output folder (default: results/<experiment>)")
    rep.add_argument("--seed", type=int, default=0, help="global random seed (default: 0)")
    rep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="change one setting of the preset (repeatable); VALUE is a Python literal "
        "(3, 1e-4, True, None, (2, 3), '\"log\"') or a bare word taken as a string; KEY may "
        "be dotted (sequence_models.bi_fcslstm.remat=True)",
    )
    rep.add_argument(
        "--distribute",
        choices=("data-parallel",),
        default=None,
        help="data-parallel: train on every local device (JAX, TensorFlow); see "
        "kerasmed.distribute for several hosts",
    )
    rep.add_argument(
        "--backend",
        choices=tuple(BACKENDS),
        default=None,
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow); jax and torch are "
        + " / ".join(install_line(b) for b in ("jax", "torch")),
    )
    rep.add_argument(
        "--verbose",
        action="store_true",
        help="show every log line and warning of the backend (hidden by default: TensorFlow's "
        "start-up lines, retracing warnings; see kerasmed.environment)",
    )
    return parser


def _list() -> int:
    rows = [("experiment", "preset", "expected runtime", "notebook", "status")]
    for spec in EXPERIMENTS.values():
        status = "ready" if spec.ready else "in progress (the quick preset does not learn yet)"
        for i, (preset, runtime) in enumerate(spec.runtimes.items()):
            first = i == 0
            rows.append(
                (spec.name if first else "", preset, runtime, spec.notebook if first else "",
                 status if first else "")
            )  # fmt: skip
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    for row in rows:
        print(("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[-1]).rstrip())
    print("\npapers:")
    for spec in EXPERIMENTS.values():
        print(f"  {spec.name:<{widths[0]}}  {spec.title}")
    print("\nRuntimes were measured on the hardware named; see README.md, 'Runtimes and sizes'.")
    return 0


def _fail(message: str) -> int:
    print(f"kerasmed: error: {message}", file=sys.stderr)
    return 2


def parse_override(text: str):
    """Parses one ``--set KEY=VALUE``: returns ``(key, value)``.

    VALUE is read with ``ast.literal_eval``; a bare word that is not a literal (``log``,
    ``one_hot``) is kept as that string.

    Example:

    >>> parse_override("epochs=3"), parse_override("encoding=log")
    (('epochs', 3), ('encoding', 'log'))
    >>> parse_override("sequence_models.bi_fcslstm.operator_groups=(2, 3)")
    ('sequence_models.bi_fcslstm.operator_groups', (2, 3))
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ValueError(f"--set needs KEY=VALUE, e.g. --set epochs=3. Received: {text!r}")
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if _BARE_WORD.fullmatch(raw):
            return key, raw
    raise ValueError(
        f"--set {key}: the value must be a Python literal (3, 1e-4, True, None, (2, 3), "
        f"'\"text\"') or a bare word. Received: {text!r}"
    )


def _reproduce(args) -> int:
    spec = EXPERIMENTS.get(args.experiment)
    if spec is None:
        return _fail(
            f"unknown experiment {args.experiment!r}. Valid experiments: "
            + ", ".join(f"{n} ({'|'.join(s.presets)})" for n, s in EXPERIMENTS.items())
        )
    if args.preset not in spec.presets:
        return _fail(
            f"unknown preset {args.preset!r} for {spec.name}. Valid presets: "
            + ", ".join(spec.presets)
        )
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if os.environ["KERAS_BACKEND"] not in BACKENDS:
        return _fail(
            f"unsupported KERAS_BACKEND {os.environ['KERAS_BACKEND']!r}. "
            f"Valid backends: {', '.join(BACKENDS)}"
        )
    try:
        overrides = dict(parse_override(text) for text in args.overrides)
        get_config(spec.name, args.preset, **overrides)  # checked before the backend starts
    except ValueError as error:
        return _fail(str(error))
    missing = missing_backend(os.environ["KERAS_BACKEND"])  # before anything imports Keras
    if missing is not None:
        return _fail(missing)
    from kerasmed.experiments.registry import check_data_dir, report, run_experiment

    out = args.out or os.path.join("results", spec.name)
    try:
        check_data_dir(spec.name, args.data_dir)  # before the backend starts
        start_backend(quiet=not args.verbose)
        distribute = {"distribute": args.distribute} if args.distribute else {}
        results = run_experiment(
            spec.name, args.preset, args.data_dir, out, args.seed, **distribute, **overrides
        )
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error))
    print(report(results, out))
    return 0


def main(argv=None) -> int:
    """Entry point of the ``kerasmed`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list()
    return _reproduce(args)


if __name__ == "__main__":
    sys.exit(main())
