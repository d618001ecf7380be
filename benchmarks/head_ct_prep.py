"""Speed of ``data_prep/head_ct_ich.py`` (RSNA layout) in one process and in a worker pool.

Generates ``--volumes`` tiny DICOM series (``--slices`` slices of ``--size`` x ``--size`` int16
pixels, one file per slice in one folder, as RSNA 2019 ships them, with a ``stage_2_train.csv``)
and runs the whole script on them (header scan, series reading, resize to ``--slice-size``,
atomic ``.npz`` writes, ``labels.csv``) once per ``--workers`` value, each run in a fresh
process (so a pool's start-up, spawning and importing, is counted)::

    python benchmarks/head_ct_prep.py --volumes 200 --workers 0 2

Prints one JSON document: the settings, the machine's cores and load (a pool gains nothing
on cores that other work keeps busy) and per run the wall seconds,
``seconds_per_1000_volumes`` and the speed-up over the first run. The series are tiny, so the
figures are the runner's and the DICOM reader's overhead per volume, not the cost of a real
512 x 512 x 30 head CT (which adds decoding and the 2x2 maximum filter).
"""

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time

from _common import run_worker, serve_worker

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[1:1] = [os.path.join(REPO, "tests"), os.path.join(REPO, "tests", "io")]  # test helpers


def write_rsna_tree(folder, volumes, slices, size):
    """``folder/train/ID_<v>_<k>.dcm`` (volume v: one series of `slices` files) and
    ``folder/labels.csv`` (``_any`` rows; odd volumes have one positive slice)."""
    import numpy as np
    from io_dicom_files import image_dataset  # tests/io: small DICOM files
    from pydicom.uid import CTImageStorage

    train = os.path.join(folder, "train")
    os.makedirs(train)
    rows, rng = ["ID,Label"], np.random.default_rng(0)
    for v in range(volumes):
        uid = f"1.2.826.0.1.3680043.10.{v + 1}"
        for k in range(slices):
            pixels = rng.integers(0, 2000, (size, size), dtype=np.int16)
            ds = image_dataset(CTImageStorage, "CT", pixels)
            ds.SeriesInstanceUID, ds.InstanceNumber = uid, k + 1
            ds.ImagePositionPatient = [0.0, 0.0, 5.0 * k]
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 5.0
            ds.RescaleSlope, ds.RescaleIntercept = 1.0, -1024.0
            name = f"ID_{v:05d}_{k:03d}"
            ds.save_as(os.path.join(train, name + ".dcm"), enforce_file_format=True)
            rows.append(f"{name}_any,{int(v % 2 and k == slices // 2)}")
    with open(os.path.join(folder, "labels.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


def worker(config):
    """Runs the script once on the generated tree; returns the wall seconds."""
    from data_prep_scripts import load_data_prep_script

    prep = load_data_prep_script("head_ct_ich.py", "head_ct_ich_benchmark")
    out = tempfile.mkdtemp(prefix="head-ct-prep-")
    argv = ["rsna", "--dicom-dir", os.path.join(config["folder"], "train"), "--labels",
            os.path.join(config["folder"], "labels.csv"), "--out", out, "--no-progress",
            "--workers", str(config["workers"]), "--slice-size", str(config["slice_size"])]  # fmt: skip
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = prep.main(argv)
    seconds = time.perf_counter() - started
    return {**config, "seconds": round(seconds, 3), "volumes_written": summary["volumes_written"],
            "pool_workers": summary["workers"]}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="DICOM slice size")
    parser.add_argument("--slice-size", type=int, default=32, help="the script's --slice-size")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if serve_worker(args, worker):
        return
    with tempfile.TemporaryDirectory(prefix="head-ct-dicom-") as folder:
        started = time.perf_counter()
        write_rsna_tree(folder, args.volumes, args.slices, args.size)
        generated = time.perf_counter() - started
        results = []
        for workers in args.workers:
            config = {"folder": folder, "workers": workers, "slice_size": args.slice_size}
            result = run_worker(__file__, config, args.timeout, env={"PYTHONPATH": REPO})
            result.pop("folder", None)
            if "seconds" in result:
                result["seconds_per_1000_volumes"] = round(
                    result["seconds"] / args.volumes * 1000, 1
                )
            results.append(result)
    base = results[0].get("seconds")
    for result in results:
        if base and "seconds" in result:
            result["speedup"] = round(base / result["seconds"], 2)
    print(json.dumps({
        "benchmark": "head_ct_prep",
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),  # other work on the machine
        "volumes": args.volumes, "slices": args.slices, "dicom_size": args.size,
        "slice_size": args.slice_size, "generate_seconds": round(generated, 1),
        "results": results,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
