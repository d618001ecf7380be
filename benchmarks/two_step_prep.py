"""Seconds per 1,000 scans of ``data_prep/two_step_ct.py``, in this process and with 2 workers.

::

    python benchmarks/two_step_prep.py --scans 24 --slices 64 --size 512 --preset paper

Input: a generated COV19-CT-DB tree (``train/`` and ``validation/``, both classes) of
``--scans`` scans of ``--slices`` JPEG slices of ``--size`` x ``--size`` (the lung-window
8-bit slices of the synthetic chest scan of ``benchmarks/lung_selection.py``, one per scan with
its own seed). Each setting of ``--workers`` prepares the whole tree into a fresh folder
(``main([...])`` of the script: reading the JPEGs, the lung window, resizing, writing the
``.npz`` files, the journal and the index); the wall time includes the pool's start-up (a
spawned worker imports NumPy, OpenCV and SciPy). Prints one JSON document.
"""

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from lung_selection import make_volume

SCRIPT = Path(__file__).resolve().parents[1] / "data_prep" / "two_step_ct.py"


def load_script():
    spec = importlib.util.spec_from_file_location("two_step_ct_prep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the runner's workers find the work function through it
    spec.loader.exec_module(module)
    return module


def write_tree(root, scans, slices, size):
    """The tree; returns the slices written."""
    for i in range(scans):
        split = "train" if i % 4 < 3 else "validation"
        name = "covid" if i % 2 else "non-covid"
        folder = Path(root) / split / name / f"ct_scan_{i}"
        folder.mkdir(parents=True)
        hu = make_volume(slices, size, seed=i).astype(np.float32)
        images = np.rint(np.clip((hu + 1350.0) / 1500.0, 0, 1) * 255).astype(np.uint8)
        for n, image in enumerate(images):
            cv2.imwrite(str(folder / f"{n}.jpg"), image)
    return scans * slices


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=24)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--preset", choices=("quick", "paper"), default="paper")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    prep = load_script()
    results = {
        "scans": args.scans,
        "slices_per_scan": args.slices,
        "jpeg_size": args.size,
        "preset": args.preset,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="two-step-prep-bench-") as tmp:
        start = time.perf_counter()
        write_tree(Path(tmp) / "db", args.scans, args.slices, args.size)
        results["seconds_to_write_tree"] = round(time.perf_counter() - start, 2)
        for workers in args.workers:
            out = Path(tmp) / f"out{workers}"
            argv = [str(Path(tmp) / "db"), "--out", str(out), "--preset", args.preset,
                    "--workers", str(workers), "--no-progress"]  # fmt: skip
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                summary = prep.main(argv)
            seconds = time.perf_counter() - start
            results["slice_size"] = summary["slice_size"]
            results["runs"].append(
                {
                    "workers": workers,
                    "seconds": round(seconds, 2),
                    "seconds_per_1000_scans": round(seconds / args.scans * 1000, 1),
                    "bytes_per_scan": summary["bytes_on_disk"] // args.scans,
                }
            )
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
