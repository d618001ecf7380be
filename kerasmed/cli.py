"""The ``kerasmed`` command: list and reproduce the papers' experiments.

Examples::

    kerasmed list
    kerasmed reproduce tlstm --preset quick --out results/tlstm
    kerasmed reproduce tlstm --backend jax --seed 1
"""

from __future__ import annotations

import argparse
import os
import sys

from kerasmed import __version__
from kerasmed.experiments.registry import EXPERIMENTS

BACKENDS = ("tensorflow", "jax", "torch")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerasmed",
        description="Reproduce the experiments of the papers kerasmed implements.",
    )
    parser.add_argument("--version", action="version", version=f"kerasmed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list experiments, their presets and expected runtimes")
    rep = sub.add_parser("reproduce", help="run one paper's experiment end to end")
    rep.add_argument("experiment", help="experiment name (see `kerasmed list`)")
    rep.add_argument("--preset", default="quick", help="quick (CPU, minutes) or paper (GPU)")
    rep.add_argument("--data-dir", default=None, help="real dataset prepared by data_prep/")
    rep.add_argument("--out", default=None, help="output folder (default: results/<experiment>)")
    rep.add_argument("--seed", type=int, default=0, help="global random seed (default: 0)")
    rep.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)",
    )
    return parser


def _list() -> int:
    rows = [("experiment", "preset", "expected runtime", "paper")]
    for spec in EXPERIMENTS.values():
        for i, (preset, runtime) in enumerate(spec.runtimes.items()):
            rows.append(
                (spec.name if i == 0 else "", preset, runtime, spec.title if i == 0 else "")
            )
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for row in rows:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + "  " + row[3])
    return 0


def _fail(message: str) -> int:
    print(f"kerasmed: error: {message}", file=sys.stderr)
    return 2


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
    from kerasmed.experiments.registry import run_experiment

    out = args.out or os.path.join("results", spec.name)
    try:
        run_experiment(spec.name, args.preset, args.data_dir, out, args.seed)
    except (ValueError, FileNotFoundError) as error:
        return _fail(str(error))
    return 0


def main(argv=None) -> int:
    """Entry point of the ``kerasmed`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list()
    return _reproduce(args)


if __name__ == "__main__":
    sys.exit(main())
