"""Pieces shared by the benchmark scripts: memory probes, one measurement per subprocess.

A script imports them as ``from _common import ...`` (a script's own folder is first on
``sys.path`` when it runs as ``python benchmarks/<name>.py``).

- `rss_mb` / `peak_rss_mb`: resident memory now and the process's peak (``ru_maxrss``);
- `RssSampler`: the largest resident memory sampled every 5 ms inside a ``with`` block (the peak
  of one step alone: the first step's peak also holds the compiler's memory, e.g. XLA's on JAX);
- `jax_temp_mb`: XLA's own figure for the temporary buffers of a gradient step (JAX's CPU
  allocator keeps freed memory, so the process RSS hardly tells variants apart);
- `median_seconds`: the median wall time of `repeats` calls after one warm-up (compiling) call;
- `report_header`: the head of a script's JSON document (benchmark, backend, versions, cores,
  load averages before and after);
- `run_worker`: runs ``<script> --worker <config JSON>`` in a fresh process (so its peak RSS is
  its own) and returns the dict it printed on a ``RESULT {...}`` line, or the config with an
  ``"error"`` (a timeout or the last lines of its output); `serve_worker` is its other half, in
  the child (`print_result` writes that line).
"""

import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RssSampler:
    """Samples the resident memory every 5 ms in a thread; ``peak`` is the largest sample."""

    def __enter__(self):
        self.peak, self._running = rss_mb(), True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.005)

    def __exit__(self, *args):
        self._running = False
        self._thread.join()


def jax_temp_mb(model, x, y, loss_fn):
    """XLA's size of the temporary buffers of one gradient computation of `loss_fn` (JAX)."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss(weights, inputs, targets):
        outputs, _ = model.stateless_call(weights, non_trainable, inputs, training=True)
        return loss_fn(targets, outputs)

    compiled = jax.jit(jax.grad(loss)).lower(trainable, x, y).compile()
    return compiled.memory_analysis().temp_size_in_bytes / 2**20


def median_seconds(fn, repeats):
    fn()  # warm-up (compilation)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_worker(script, config, timeout, env=None, error_lines=1):
    """Runs `script` with ``--worker <config>`` in a fresh process and returns its result."""
    command = [sys.executable, os.path.abspath(script), "--worker", json.dumps(config)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**config, "error": f"timeout after {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {**config, "error": (done.stderr or done.stdout).strip().splitlines()[-error_lines:]}


def print_result(result):
    """Prints the ``RESULT {...}`` line that `run_worker` reads."""
    print("RESULT " + json.dumps(result), flush=True)


def serve_worker(args, measure):
    """In a ``--worker`` child: prints ``RESULT`` of ``measure(config)`` and returns True.

    In the parent (``args.worker`` unset) it does nothing and returns False, so a script's
    ``main`` starts with ``if serve_worker(args, measure): return``.
    """
    if not args.worker:
        return False
    print_result(measure(json.loads(args.worker)))
    return True


def report_header(benchmark, backend, load_before):
    """The first keys of a benchmark's JSON: what ran, where, and how busy the machine was.

    `load_before` is ``os.getloadavg()`` taken when the measurements started; the load after is
    read now (call this once they are done).
    """
    return {
        "benchmark": benchmark,
        "backend": backend,
        "keras": importlib.metadata.version("keras"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
