"""Runs everything CI runs: lint, the test suite once per Keras backend, then the notebooks.

Usage::

    python tests/run_all.py                      # lint + 3 backends + notebooks
    python tests/run_all.py --backends jax        # one backend, still lint + notebooks
    python tests/run_all.py --no-notebooks -- -k tlstm   # extra args go to pytest
    python tests/run_all.py --workers 0          # one process (no pytest-xdist)

Each stage runs on ``--workers`` processes (pytest-xdist; default: one per CPU core). The unit
suites keep a module's tests on one worker (``--dist loadscope``, so a module-scoped fixture is
built once); the notebooks are spread one by one (``--dist load``).

Exit code 0 only when every stage passed. pytest's exit code 5 ("no tests collected") is an
error for the unit suites (an empty suite tests nothing) and accepted for the notebook stage
only when there is no notebook to run.
"""

import argparse
import glob
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")
NO_TESTS_COLLECTED = 5


def _run(title, command, env=None):
    print(f"\n=== {title}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    print(f"=== {title}: exit {code} in {seconds:.0f} s", flush=True)
    return code, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--no-lint", action="store_true")
    parser.add_argument("--no-notebooks", action="store_true")
    parser.add_argument("--notebook-backend", default="tensorflow")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="pytest-xdist processes per stage (0 or 1: one process); default: CPU cores",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args(argv)

    python = sys.executable
    summary = []

    def parallel(dist):
        return ["-n", str(args.workers), "--dist", dist] if args.workers > 1 else []

    if not args.no_lint:
        for title, cmd in (
            ("ruff check", [python, "-m", "ruff", "check", "."]),
            ("ruff format", [python, "-m", "ruff", "format", "--check", "."]),
        ):
            code, seconds = _run(title, cmd)
            summary.append((title, code == 0, seconds))

    for backend in [b for b in args.backends.split(",") if b]:
        if backend not in BACKENDS:
            parser.error(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        env = {**os.environ, "KERAS_BACKEND": backend}
        cmd = [python, "-m", "pytest", "-m", "not notebooks", "-q", "-p", "no:cacheprovider"]
        cmd += [*parallel("loadscope"), "--durations=5", *args.pytest_args]
        code, seconds = _run(f"tests [{backend}]", cmd, env)
        summary.append((f"tests [{backend}]", code == 0, seconds))

    if not args.no_notebooks:
        env = {**os.environ, "KERAS_BACKEND": args.notebook_backend}
        cmd = [python, "-m", "pytest", "-m", "notebooks", "-q", "-p", "no:cacheprovider"]
        cmd += [*parallel("load"), "tests/notebooks_test.py"]
        code, seconds = _run(f"notebooks [{args.notebook_backend}]", cmd, env)
        has_notebooks = bool(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
        ok = code == 0 or (code == NO_TESTS_COLLECTED and not has_notebooks)
        summary.append((f"notebooks [{args.notebook_backend}]", ok, seconds))

    print("\n=== summary")
    for title, ok, seconds in summary:
        print(f"{title:<28}{'ok' if ok else 'FAILED':<8}{seconds:7.0f} s")
    failed = [title for title, ok, _ in summary if not ok]
    print(f"{len(summary) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
