"""Preprocess ImageCLEF 2009 radiographs for paper 004 (Nkwentsha et al., X-ray classification).

Input (``--data-dir``): the ImageCLEF 2009 medical annotation release as distributed (layout in
`kerasmed.io.imageclef`): ``ImageCLEFmed2009_train_codes.02.csv`` and
``ImageCLEFmed2009_test_codes.03.csv`` (``image_id;irma_code``) beside the image folders
``ImageCLEFmed2009_train.02/`` and ``ImageCLEFmed2009_test.03/``.

Every image goes through the paper's chain (`kerasmed.preprocessing.prepare_radiograph`:
``--padding`` constant / wrap / none, nearest-neighbour resize to ``--size``, grey x 3 or with
``--enhanced`` the channels (original, NL-means, CLAHE)) in ``--workers`` processes, with a
progress bar and its ETA (`kerasmed.io.prep_runner.run_prep`). Results are cached per image in
``--cache-dir`` (default ``OUT/cache``), keyed by these settings and journaled: a rerun, or a run
interrupted and started again, computes only what is missing (or whose image file changed), and
changing a setting computes into a new cache folder (`kerasmed.data.imageclef`). Experiment
``xray`` reads the same cache (``--set cache_dir=...``) and streams it when it is large.

Output, in ``--out``: ``<name>.npz`` (no pickle, written atomically) with ``x_train``,
``y_train``, ``x_test``, ``y_test``, ``codes`` (the IRMA code of each label), ``train_ids`` and
``test_ids``, where ``<name>`` is the paper's name of the configuration (``resize``,
``repetitive``, ``constant``, ``+ _enhanced``) and the size, e.g.
``constant_enhanced_512.npz``; ``prepare_report.txt`` (also
printed) lists every row and image not used and why. With ``--strict`` (default) an unusable
row or image stops the script before the ``.npz`` is written, all of them listed (the cache
keeps what was computed); ``--no-strict`` skips them.

Example::

    python data_prep/xray_preprocess.py --data-dir ~/data/imageclef2009 --out data/xray \\
        --padding constant --enhanced --size 512
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kerasmed.data import load_imageclef_arrays
from kerasmed.io.prep_runner import add_prep_arguments, positive_int, run_script, save_npz_atomic
from kerasmed.io.report import write_prepare_report

PADDINGS = {"constant": "constant", "wrap": "wrap", "none": None}
NAMES = {"constant": "constant", "wrap": "repetitive", "none": "resize"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the ImageCLEF 2009 folder")
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument(
        "--padding",
        choices=tuple(PADDINGS),
        default="constant",
        help="constant (zeros), wrap (the paper's repetitive padding) or none (plain resize)",
    )
    parser.add_argument(
        "--enhanced",
        action="store_true",
        help="channels (original, NL-means, CLAHE) instead of the grey image three times",
    )
    parser.add_argument(
        "--size", type=positive_int, default=512, help="output side in pixels (paper: 512)"
    )
    parser.add_argument("--cache-dir", default=None, help="per-image cache (default: OUT/cache)")
    add_prep_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir) if args.cache_dir else out / "cache"
    x_train, y_train, x_test, y_test, label_map, report = load_imageclef_arrays(
        args.data_dir,
        padding=PADDINGS[args.padding],
        enhanced=args.enhanced,
        size=args.size,
        cache_dir=cache,
        workers=args.workers,
        strict=args.strict,
        progress=not args.no_progress,
    )
    name = NAMES[args.padding] + ("_enhanced" if args.enhanced else "") + f"_{args.size}"
    path = out / f"{name}.npz"
    save_npz_atomic(
        path,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        codes=np.array(label_map.codes, dtype=str),
        train_ids=np.array(report.ids["train"], dtype=str),
        test_ids=np.array(report.ids["test"], dtype=str),
    )
    summary = {
        "data_dir": str(args.data_dir),
        "file": str(path),
        "padding": args.padding,
        "enhanced": args.enhanced,
        "size": args.size,
        "train_images": int(len(x_train)),
        "test_images": int(len(x_test)),
        "classes": label_map.num_classes,
        "dtype": str(x_train.dtype),
        "computed": report.computed,
        "from_cache": report.cached,
        "cache": str(cache),
        "skipped": len(report.skipped),
        "notes": len(report.notes),
    }
    write_prepare_report(out, summary, report)
    return summary


if __name__ == "__main__":
    run_script(main)
