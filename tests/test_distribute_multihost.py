"""Two JAX processes joined the way `kerasmed.distribute` documents for N hosts train like one.

Both processes run on this machine, each with one CPU device, and are started with
``KERAS_DISTRIBUTION_JOB_ADDRESSES=localhost:PORT KERAS_DISTRIBUTION_NUM_PROCESSES=2
KERAS_DISTRIBUTION_PROCESS_ID=i`` (the README's command with host 0 at localhost):
`distribution_scope("data-parallel")` calls ``keras.distribution.initialize()``, the mesh spans
both processes' devices, and each process, given the same global batch, feeds its half of it
(`kerasmed.distribute.process_shard`): the step runs on the global batch of 4 rows (not 8,
the two copies fed before that split), process ``i`` holds rows ``2i, 2i + 1``, and the losses
and weights are those of one process on one device; ``predict`` gives every process the
predictions of the whole input (gathered from both). The tLSTM case of
``tests/test_distribute.py`` (bool mask) is the model. Multi-process initialisation is JAX's:
Keras's TensorFlow and torch backends have none, so the test runs in the jax suite run.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]
_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def _host():
    """One host's run: the tLSTM under distribution_scope, printed as RESULT json."""
    import jax
    import keras
    import numpy as np
    from keras.src.backend.jax import trainer
    from test_distribute import _replicas, _tlstm

    from kerasmed.distribute import distribution_scope

    keras.utils.set_random_seed(0)
    with distribution_scope("data-parallel"):
        losses, weights, model = _tlstm()
        # What Keras's trainer makes of a global batch of rows 0..3 given to every process.
        fed = trainer._distribute_data(np.arange(4.0)[:, None])
        predictions = model.predict(_predict_inputs(), batch_size=4, verbose=0)
        result = {
            "process": jax.process_index(),
            "processes": jax.process_count(),
            "devices": len(jax.devices()),
            "replicas": _replicas(model),
            "global_rows": fed.shape[0],
            "local_rows": [np.asarray(s.data).ravel().tolist() for s in fed.addressable_shards],
            "predictions": np.asarray(predictions).tolist(),
            "losses": losses,
            "weights": [np.asarray(w).ravel().tolist() for w in weights],
        }
    print("RESULT " + json.dumps(result), flush=True)


def _predict_inputs():
    """Eight tLSTM sequences (two batches of 4) for ``predict``."""
    import numpy as np
    from test_distribute import _mask

    rng = np.random.default_rng(1)
    mask = np.concatenate([_mask(4, 3), _mask(4, 3)])
    return {
        "features": rng.normal(size=(8, 3, 5)).astype("float32"),
        "previous_labels": rng.integers(0, 2, (8, 3, 3)).astype("float32"),
        "time": rng.uniform(size=(8, 3, 1)).astype("float32"),
        "mask": mask,
    }


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(_BACKEND != "jax", reason="keras.distribution.initialize is JAX's only")
def test_two_processes_train_like_one_device():
    import keras
    import numpy as np
    from test_distribute import _tlstm

    port = _free_port()
    hosts = []
    for i in range(2):
        env = {
            **os.environ,
            "PYTHONPATH": str(_ROOT),
            "KERAS_BACKEND": "jax",
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"localhost:{port}",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
            "KERAS_DISTRIBUTION_PROCESS_ID": str(i),
        }
        env.pop("XLA_FLAGS", None)
        hosts.append(
            subprocess.Popen(
                [sys.executable, __file__],
                env=env,
                cwd=_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
        )
    keras.utils.set_random_seed(0)
    losses, weights, model = _tlstm()  # one process, one device: the reference
    predictions = model.predict(_predict_inputs(), batch_size=4, verbose=0)
    results = []
    for host in hosts:
        try:
            out, err = host.communicate(timeout=240)
        finally:
            host.kill()
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert host.returncode == 0 and lines, err[-3000:]
        results.append(json.loads(lines[-1][len("RESULT ") :]))
    assert sorted(r["process"] for r in results) == [0, 1]
    for r in results:
        assert (r["processes"], r["devices"], r["replicas"]) == (2, 2, 2), r
        i = r["process"]
        assert (r["global_rows"], r["local_rows"]) == (4, [[2.0 * i, 2.0 * i + 1]]), r
        # Tolerance as in tests/test_distribute.py (all-reduced float32 sums).
        assert r["losses"] == pytest.approx(losses, rel=1e-5, abs=1e-7)
        # every host gets all 8 predictions, in order (gathered from both hosts)
        np.testing.assert_allclose(r["predictions"], predictions, rtol=1e-5, atol=1e-6)
        for got, want in zip(r["weights"], weights):
            np.testing.assert_allclose(got, np.ravel(want), rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    _host()
