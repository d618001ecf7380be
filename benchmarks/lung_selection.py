"""Seconds of `select_lung_slices` on a 300 x 512 x 512 HU scan, against the obvious ways.

::

    python benchmarks/lung_selection.py --repeats 3

Input: a synthetic int16 chest scan in HU (body ellipse, two lungs whose radius rises and falls
along z, a hollow scanner table under the body, Gaussian noise of 25 HU), ``--slices`` x
``--size`` x ``--size``. Measured, interleaved over ``--repeats`` rounds (median reported), all
on one core (``cv2.setNumThreads(1)``; SciPy and NumPy run these steps single-threaded):

- ``ours``: ``select_lung_slices(volume)`` with the authors' parameters (filters 5 and 10,
  threshold -400 HU, half the slices);
- ``python_loop``: the obvious per-slice loop, the authors' steps with SciPy on each slice
  (``minimum_filter`` 10, threshold, longest runs, crop, ``minimum_filter`` 5, threshold,
  ``binary_fill_holes``, ``filled - mask``) and the window searched by summing every candidate;
  its areas and window are asserted equal to ours;
- ``scipy_stack``: the SciPy way vectorized over slices -- ``(1, k, k)`` minimum filters on the
  whole stack, the crop as a mask, ``binary_fill_holes`` with a ``(1, 3, 3)`` structure, the
  window by a cumulative sum. It filters before cropping, so its areas may differ from the
  authors' at the crop's edges; the JSON says by how much.

Prints one JSON document; ``ratio_python_loop`` is python_loop / ours.
"""

import argparse
import json
import os
import platform
import statistics
import time

import cv2
import numpy as np
import scipy
import scipy.ndimage as ndi


def make_volume(slices, size, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    c = size / 2
    body = ((yy - c) / (0.36 * size)) ** 2 + ((xx - c) / (0.44 * size)) ** 2 < 1
    volume = np.full((slices, size, size), -1000, np.int16)
    volume[:, body] = 30
    t = np.linspace(-0.3, 1.3, slices)
    radius = 0.15 * size * np.sqrt(np.clip(np.sin(np.pi * t), 0, None))
    for z in range(slices):
        for cx in (c - 0.2 * size, c + 0.2 * size):
            lung = ((yy - c) / 1.2) ** 2 + (xx - cx) ** 2 < radius[z] ** 2
            volume[z][lung] = -850
    top = int(c + 0.36 * size) + size // 64
    wall = max(2, size // 40)
    volume[:, top : top + 4 * wall, int(0.1 * size) : int(0.9 * size)] = 100
    volume[:, top + wall : top + 3 * wall, int(0.1 * size) + wall : int(0.9 * size) - wall] = -1000
    noise = rng.normal(0, 25, volume.shape).astype(np.float32)
    return (volume + noise).astype(np.int16)


def _runs(sums):
    padded = np.concatenate(([0], sums, [0]))
    zeros = np.where(padded == 0)[0]
    gap = np.argmax(zeros[1:] - zeros[:-1])
    return zeros[gap], zeros[gap + 1] - 1


def python_loop(volume, threshold=-400, filter_size=5, crop_filter_size=10, fraction=0.5):
    areas = []
    for image in volume:
        body = ndi.minimum_filter(image, size=crop_filter_size) >= threshold
        r0, r1 = _runs(body.sum(axis=1))
        c0, c1 = _runs(body.sum(axis=0))
        if r0 != r1 and c0 != c1:
            image = image[r0:r1, c0:c1]
        mask = ndi.minimum_filter(image, size=filter_size) >= threshold
        areas.append(int((ndi.binary_fill_holes(mask) & ~mask).sum()))
    k = int(np.ceil(fraction * len(areas)))
    best, start = 0, 0
    for i in range(len(areas) - k + 1):
        total = sum(areas[i : i + k])
        if total > best:
            best, start = total, i
    return np.array(areas), start, start + k


def scipy_stack(volume, threshold=-400, filter_size=5, crop_filter_size=10, fraction=0.5):
    from kerasmed.preprocessing.lung import _longest_runs

    n, height, width = volume.shape
    body = ndi.minimum_filter(volume, size=(1, crop_filter_size, crop_filter_size)) >= threshold
    r0, r1 = _longest_runs(body.any(axis=2))
    c0, c1 = _longest_runs(body.any(axis=1))
    inside = (np.arange(height)[None, :, None] >= r0[:, None, None]) & (
        np.arange(height)[None, :, None] < r1[:, None, None]
    )
    inside = inside & (
        (np.arange(width)[None, None, :] >= c0[:, None, None])
        & (np.arange(width)[None, None, :] < c1[:, None, None])
    )
    mask = (ndi.minimum_filter(volume, size=(1, filter_size, filter_size)) >= threshold) & inside
    filled = ndi.binary_fill_holes(mask, structure=np.ones((1, 3, 3), bool))
    areas = (filled & ~mask).sum(axis=(1, 2))
    k = int(np.ceil(fraction * n))
    cumulative = np.concatenate([[0], np.cumsum(areas)])
    start = int(np.argmax(cumulative[k:] - cumulative[:-k]))
    return areas, start, start + k


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-scipy-stack", action="store_true", help="skip scipy_stack")
    args = parser.parse_args()

    from kerasmed.preprocessing import select_lung_slices

    cv2.setNumThreads(1)
    volume = make_volume(args.slices, args.size)
    load_before = os.getloadavg()[0]
    ways = {
        "ours": lambda: select_lung_slices(volume),
        "python_loop": lambda: python_loop(volume),
    }
    if not args.no_scipy_stack:
        ways["scipy_stack"] = lambda: scipy_stack(volume)
    times = {name: [] for name in ways}
    results = {}
    for _ in range(args.repeats):
        for name, run in ways.items():
            start = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - start)

    ours = results["ours"]
    loop_areas, loop_start, loop_stop = results["python_loop"]
    np.testing.assert_array_equal(ours.areas, loop_areas)
    assert (ours.start, ours.stop) == (loop_start, loop_stop)
    seconds = {name: statistics.median(t) for name, t in times.items()}
    report = {
        "benchmark": "lung_selection",
        "volume": {"shape": list(volume.shape), "dtype": str(volume.dtype), "units": "HU"},
        "window": [ours.start, ours.stop],
        "repeats": args.repeats,
        "seconds": {name: round(s, 4) for name, s in seconds.items()},
        "seconds_all": {name: [round(s, 4) for s in t] for name, t in times.items()},
        "ratio_python_loop": round(seconds["python_loop"] / seconds["ours"], 2),
        "python_loop_same_result": True,
        "under_1_s": seconds["ours"] < 1.0,
    }
    if "scipy_stack" in results:
        areas, start, stop = results["scipy_stack"]
        report["ratio_scipy_stack"] = round(seconds["scipy_stack"] / seconds["ours"], 2)
        report["scipy_stack_window_same"] = (start, stop) == (ours.start, ours.stop)
        report["scipy_stack_max_area_difference"] = int(np.abs(areas - ours.areas).max())
    report.update(
        {
            "cv2_threads": cv2.getNumThreads(),
            "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "versions": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "opencv": cv2.__version__,
            },
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        }
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
