"""Peak memory of writing ``sequences.npz`` from the per-patient part files of
``data_prep/longitudinal_manifest.py``, as the set grows 10x: streamed (the parts left on disk as
`kerasmed.io._npz.NpzMember`, `save_longitudinal_npz` writing one patient at a time through
`kerasmed.io._npz.NpzWriter`, what the script does) vs the obvious way (every part read into
memory, the images concatenated, converted to uint8 and saved with ``np.savez``, what the
script did before).

Each patient's part is ``--exams`` float32 images of ``--image-size`` squared, as
`kerasmed.io.manifest.save_patient_exams` writes them; the output stores uint8, uncompressed.
Each measurement runs in its own process (peak RSS, ``ru_maxrss``, is a process's lifetime
peak), and the parts are generated in a process of their own, so the parent stays small. The two
outputs are compared member by member (the same arrays, byte for byte).

    python benchmarks/prep_write_memory.py [--sizes 100 1000] [--exams 8] [--image-size 128]

Prints JSON.
"""

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile

import numpy as np
from _common import peak_rss_mb, report_header, rss_mb, run_worker, serve_worker


def generate(folder, patients, exams, size):
    rng = np.random.default_rng(0)
    for i in range(patients):
        images = rng.random((exams, size, size), dtype="float32")
        np.savez(os.path.join(folder, f"p{i:05d}.npz"), images=images)
    return {"part_mb": round(exams * size * size * 4 * patients / 2**20, 1)}


def _labels(patients, exams):
    """The labels and deltas of every patient (small: the images are what is measured)."""
    labels = [np.zeros((exams, 2), "float32")] * patients
    return labels, [np.arange(exams, dtype="float32")] * patients


def write_streamed(folder, out, patients, exams):
    from kerasmed.io._npz import NpzMember
    from kerasmed.io.sequences import LongitudinalSequences, save_longitudinal_npz

    parts = [NpzMember(os.path.join(folder, f"p{i:05d}.npz"), "images") for i in range(patients)]
    labels, deltas = _labels(patients, exams)
    sequences = LongitudinalSequences(
        images=parts, labels=labels, deltas=deltas, label_names=("a", "b"), ids=None
    )
    save_longitudinal_npz(out, sequences, image_dtype="uint8", compress=False)


def write_in_memory(folder, out, patients, exams):
    images = []
    for i in range(patients):
        with np.load(os.path.join(folder, f"p{i:05d}.npz")) as part:
            images.append(part["images"])
    labels, deltas = _labels(patients, exams)
    stored = np.concatenate(images).astype("float32")
    stored = np.round(np.clip(stored, 0.0, 1.0) * 255.0).astype("uint8")
    np.savez(
        out,
        images=stored,
        labels=np.concatenate(labels).astype("float32"),
        deltas=np.concatenate(deltas).astype("float32"),
        offsets=np.arange(0, exams * (patients + 1), exams, dtype="int64"),
        ids=np.array([str(i) for i in range(patients)], dtype=str),
        label_names=np.array(["a", "b"], dtype=str),
        delta_unit=np.array("days", dtype=str),
        format_version=np.array(1, dtype="int64"),
    )


def members_digest(path):
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            digest.update(info.filename.encode())
            with archive.open(info) as member:
                for block in iter(lambda: member.read(2**20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def measure(config):
    if config["mode"] == "generate":
        return generate(config["folder"], config["patients"], config["exams"], config["size"])
    import kerasmed.io  # noqa: F401  (imported by both ways, before the baseline)

    write = write_streamed if config["mode"] == "streamed" else write_in_memory
    before = rss_mb()
    start = time.perf_counter()
    write(config["folder"], config["out"], config["patients"], config["exams"])
    seconds = time.perf_counter() - start
    return {
        "mode": config["mode"],
        "patients": config["patients"],
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "seconds": round(seconds, 2),
        "output_mb": round(os.path.getsize(config["out"]) / 2**20, 1),
        "members_sha256": members_digest(config["out"]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="patients")
    parser.add_argument("--exams", type=int, default=8, help="exams per patient")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if serve_worker(args, measure):
        return
    load_before = os.getloadavg()
    rows = []
    for patients in args.sizes:
        folder = tempfile.mkdtemp(prefix="prep_write_")
        try:
            base = {"folder": folder, "patients": patients, "exams": args.exams}
            made = run_worker(__file__, {**base, "mode": "generate", "size": args.image_size}, 3600)
            results = {}
            for mode in ("streamed", "in_memory"):
                out = os.path.join(folder, f"{mode}.npz")
                results[mode] = run_worker(__file__, {**base, "mode": mode, "out": out}, 3600)
                os.remove(out)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        streamed, in_memory = results["streamed"], results["in_memory"]
        digests = {streamed.get("members_sha256"), in_memory.get("members_sha256")}
        same = len(digests) == 1 and None not in digests
        rows.append(
            {
                "patients": patients,
                "exams": patients * args.exams,
                **made,
                "streamed": streamed,
                "in_memory": in_memory,
                "same_arrays": same,
            }
        )
    growth = {}
    if len(rows) >= 2 and all("peak_rss_mb" in r[m] for r in rows for m in results):
        for mode in results:
            first, last = rows[0][mode]["peak_rss_mb"], rows[-1][mode]["peak_rss_mb"]
            growth[mode] = f"{first} -> {last} MB"
    report = {
        **report_header("prep_write_memory", None, load_before),
        "exams_per_patient": args.exams,
        "image_size": args.image_size,
        "rows": rows,
        "peak_rss_growth": growth,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
