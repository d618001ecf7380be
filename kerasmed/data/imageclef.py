"""ImageCLEF 2009 as arrays (paper 004): a cached, resumable, parallel preprocessing pipeline.

`load_imageclef_arrays` reads an ImageCLEF 2009 folder (`kerasmed.io.read_imageclef`, layout
there), runs the paper's chain on every image (`kerasmed.preprocessing.prepare_radiograph`:
padding, nearest-neighbour resize, grey x 3 or ``(original, NL-means, CLAHE)``) in a pool of
worker processes, and returns the training and test arrays with integer labels.

Cache: with ``cache_dir``, each result is an ``.npz`` file (no pickle) under
``cache_dir/<key>/<split>/<image_id>.npz``, ``<key>`` a hash of the preprocessing settings
(`imageclef_cache_settings`, written beside as ``settings.json``): changing a setting computes
into another folder, and nothing else does. An entry is reused when it was written for a source
file of the same size and modification time (`kerasmed.preprocessing.xray_files`); entries are
written atomically as each image finishes, so an interrupted run resumes where it stopped.

`write_imageclef_folder` writes synthetic radiographs (`simulate_radiographs`) in the ImageCLEF
layout, so that the embedded data goes through the same reader as the real data set.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import re

import cv2
import numpy as np
from tqdm.auto import tqdm

from kerasmed.io.imageclef import IMAGECLEF_SPLITS, index_imageclef
from kerasmed.preprocessing.xray_files import (
    CACHE_FORMAT,
    init_worker,
    prepare_job,
    read_cached_radiograph,
)
from kerasmed.validation import check_int_tuple, check_non_negative_int, check_one_of

__all__ = [
    "imageclef_cache_settings",
    "imageclef_cache_key",
    "load_imageclef_arrays",
    "write_imageclef_folder",
]


def imageclef_cache_settings(padding="constant", enhanced=False, size=299, interpolation="nearest"):
    """The settings that a cache entry depends on, as a JSON-friendly dict.

    Example:

    >>> imageclef_cache_settings("wrap", True, 64)
    {'format': 1, 'padding': 'wrap', 'enhanced': True, 'size': [64, 64], 'interpolation': 'nearest', 'enhancement': 'paper defaults: CLAHE 2.55, (8, 8); NL-means h 2, windows 4, 4'}
    """
    padding = check_one_of(padding, "padding", (None, "constant", "wrap"))
    if not isinstance(enhanced, bool):
        raise ValueError(f"`enhanced` must be True or False. Received: enhanced={enhanced!r}")
    height, width = check_int_tuple(size, "size", 2)
    return {
        "format": CACHE_FORMAT,
        "padding": padding,
        "enhanced": enhanced,
        "size": [height, width],
        "interpolation": interpolation,
        "enhancement": "paper defaults: CLAHE 2.55, (8, 8); NL-means h 2, windows 4, 4",
    }


def imageclef_cache_key(settings):
    """A 16-hex-digit key of a settings dict (`imageclef_cache_settings`).

    Example:

    >>> a = imageclef_cache_key(imageclef_cache_settings("constant", False, 299))
    >>> b = imageclef_cache_key(imageclef_cache_settings("constant", True, 299))
    >>> len(a), a == b
    (16, False)
    """
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _entry_name(image_id):
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", image_id)
    if safe != image_id:
        safe += "-" + hashlib.sha1(image_id.encode("utf-8")).hexdigest()[:8]
    return safe + ".npz"


def _run(jobs, workers, progress):
    """Runs `jobs` in-process (``workers <= 1``) or in a spawned process pool; yields results.

    The workers run `kerasmed.preprocessing.xray_files.prepare_job`, whose module imports no
    Keras: a spawned worker imports the module of the function it runs, and this module's
    package (`kerasmed.data`) imports Keras (seconds per worker)."""
    bar = tqdm(
        total=len(jobs), desc="preprocessing radiographs", unit="image", disable=not progress
    )
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                yield prepare_job(job)
                bar.update()
            return
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=init_worker
        ) as pool:
            futures = [pool.submit(prepare_job, job) for job in jobs]
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
                bar.update()
    finally:
        bar.close()


def _stack(images, size, notes):
    height, width = size
    if not images:
        return np.zeros((0, height, width, 3), np.uint8)
    if any(image.dtype == np.uint16 for image in images):
        eight = sum(image.dtype == np.uint8 for image in images)
        if eight:
            notes.append(
                f"{eight} 8-bit image(s) multiplied by 257 to share one uint16 array with "
                f"{len(images) - eight} 16-bit image(s)"
            )
        images = [
            image.astype(np.uint16) * np.uint16(257) if image.dtype == np.uint8 else image
            for image in images
        ]
    return np.stack(images)


def load_imageclef_arrays(
    data_dir,
    padding="constant",
    enhanced=False,
    size=299,
    cache_dir=None,
    workers=None,
    strict=True,
    progress=True,
    **paths,
):
    """Reads and preprocesses an ImageCLEF 2009 folder into training and test arrays.

    Every usable row of both code lists is read and preprocessed (cache entries are reused,
    the other images computed in `workers` processes); then the strict rule of
    `kerasmed.io.report` is applied once, to the problems of the code lists (missing image
    file, bad IRMA code, duplicate id...) and the images that cannot be decoded together:
    ``strict=True`` raises one `kerasmed.io.LoadError` listing them all (what was computed
    stays in the cache), ``strict=False`` skips them and warns.

    Memory: the arrays are ``N x size x size x 3`` bytes (uint8): 3.4 GB for the 12,677
    training images at 299 x 299, 10 GB at the paper's 512 x 512.

    Args:
        data_dir: the ImageCLEF folder (layout in `kerasmed.io.imageclef`).
        padding: ``"constant"``, ``"wrap"`` or ``None`` (plain resize), as in
            `prepare_radiograph` (the paper's constant, repetitive and resize inputs).
        enhanced: ``(original, NL-means, CLAHE)`` channels instead of grey x 3.
        size: output side, or ``(height, width)`` (paper: 512).
        cache_dir: folder of the cache (created); ``None`` keeps nothing on disk.
        workers: worker processes; ``None`` uses every core, ``0`` or ``1`` runs in this
            process (OpenCV then uses its own threads).
        strict: the strict rule (above).
        progress: show a tqdm progress bar.
        **paths: ``train_csv``, ``train_images``, ``test_csv``, ``test_images``,
            ``strict_hierarchy`` of `kerasmed.io.read_imageclef`.

    Returns:
        ``(x_train, y_train, x_test, y_test, label_map, report)``: ``(N, H, W, 3)`` uint8
        arrays (uint16 when an image is 16-bit; 8-bit ones are then multiplied by 257, with a
        note), ``(N,)`` int64 labels of `label_map` (a `kerasmed.io.IrmaLabelMap` over the
        codes of both code lists), images in code-list order, and the
        `kerasmed.io.ImageCLEFReport` (problems per split, notes, ``computed`` and ``cached``
        counts).

    Example:

    >>> import tempfile
    >>> from kerasmed.data import simulate_radiographs
    >>> folder = tempfile.mkdtemp()
    >>> _ = write_imageclef_folder(simulate_radiographs(8, 32, 48), folder, test_fraction=0.25)
    >>> x_train, y_train, x_test, y_test, labels, report = load_imageclef_arrays(
    ...     folder, size=32, workers=0, progress=False)
    >>> x_train.shape, x_test.shape, x_train.dtype, report.ok
    ((6, 32, 32, 3), (2, 32, 32, 3), dtype('uint8'), True)
    """
    settings = imageclef_cache_settings(padding, enhanced, size)
    size = tuple(settings["size"])
    if workers is None:
        workers = os.cpu_count() or 1
    workers = check_non_negative_int(workers, "workers")
    index = index_imageclef(data_dir, **paths)
    report = index.report
    splits = {"train": index.train, "test": index.test}
    root = None
    if cache_dir is not None:
        root = os.path.join(os.fspath(cache_dir), imageclef_cache_key(settings))
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "settings.json"), "w", encoding="utf-8") as f:
            json.dump(settings, f, indent=2)
    results, jobs = {}, []
    for name, split in splits.items():
        for k, path in enumerate(split.paths):
            entry = None
            if root is not None:
                entry = os.path.join(root, name, _entry_name(split.ids[k]))
                cached = read_cached_radiograph(entry, path)
                if cached is not None:
                    results[name, k] = (cached[0], cached[1], None)
                    report.cached += 1
                    continue
            jobs.append(((name, k), path, entry, settings))
    for job_id, image, notes, error in _run(jobs, workers, progress):
        results[job_id] = (image, notes, error)
        report.computed += error is None
    arrays = {}
    for name, split in splits.items():
        images, labels, kept = [], [], []
        for k, image_id in enumerate(split.ids):
            image, notes, error = results[name, k]
            if error is not None:
                split.report.add(
                    f"cannot read image: {error}",
                    row=int(split.rows[k]),
                    item=image_id,
                    path=split.paths[k],
                )
                continue
            report.notes.extend(f"{name} {image_id}: {note}" for note in notes)
            images.append(image)
            labels.append(split.codes[k])
            kept.append(image_id)
        report.ids[name] = tuple(kept)
        arrays[name] = (_stack(images, size, report.notes), index.label_map.encode(labels))
    report.raise_or_warn(strict, "input(s)")
    return (*arrays["train"], *arrays["test"], index.label_map, report)


def write_imageclef_folder(phantom, folder, test_fraction=0.2, file_format="png"):
    """Writes radiographs in the ImageCLEF 2009 layout (`kerasmed.io.imageclef`).

    The last ``round(test_fraction * N)`` images form the test split (the phantom draws its
    classes at random positions, so this is a random sample); image ``i`` gets the id
    ``str(1000 + i)``. PNG keeps 8- and 16-bit images exactly.

    Args:
        phantom: a `kerasmed.data.RadiographPhantom` (or any object with ``.images`` and
            ``.codes``).
        folder: the output folder (created); existing files of the same names are replaced.
        test_fraction: fraction of the images in the test split, in [0, 1).
        file_format: ``"png"`` or ``"tif"`` (both lossless at 8 and 16 bits).

    Returns:
        ``(train_indices, test_indices)``: int arrays of phantom indices, in code-list order.

    Example:

    >>> import tempfile
    >>> from kerasmed.data import simulate_radiographs
    >>> train, test = write_imageclef_folder(simulate_radiographs(5, 32, 40), tempfile.mkdtemp())
    >>> train.tolist(), test.tolist()
    ([0, 1, 2, 3], [4])
    """
    if not 0 <= test_fraction < 1:
        raise ValueError(
            f"`test_fraction` must be in [0, 1). Received: test_fraction={test_fraction}"
        )
    file_format = check_one_of(file_format, "file_format", ("png", "tif"))
    folder = os.fspath(folder)
    count = len(phantom.images)
    num_test = int(round(test_fraction * count))
    indices = {"train": np.arange(count - num_test), "test": np.arange(count - num_test, count)}
    codes = list(phantom.codes)
    for split, (_, csv_name, image_folder) in IMAGECLEF_SPLITS.items():
        image_dir = os.path.join(folder, image_folder)
        os.makedirs(image_dir, exist_ok=True)
        lines = ["image_id;irma_code"]
        for i in indices[split].tolist():
            image_id = str(1000 + i)
            path = os.path.join(image_dir, f"{image_id}.{file_format}")
            if not cv2.imwrite(path, np.asarray(phantom.images[i])):
                raise ValueError(f"OpenCV could not write {path}. Received: folder={folder!r}")
            lines.append(f"{image_id};{codes[i]}")
        with open(os.path.join(folder, csv_name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return indices["train"], indices["test"]
