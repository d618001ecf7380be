"""ImageCLEF 2009 (paper 004): a cached, resumable, parallel preprocessing pipeline, read as
arrays or streamed.

`prepare_imageclef_cache` reads an ImageCLEF 2009 folder (`kerasmed.io.index_imageclef`,
layout in `kerasmed.io.imageclef`) and runs the paper's chain on every image
(`kerasmed.preprocessing.prepare_radiograph`: padding, nearest-neighbour resize, grey x 3 or
``(original, NL-means, CLAHE)``) through the project's runner
(`kerasmed.io.prep_runner.run_prep`: a pool of spawned worker processes without Keras, a tqdm
progress bar with its ETA, atomic outputs, a journal to resume from), one task per image.
It returns the index of the cache (`ImageCLEFCache`: per split the entry paths and labels),
not the pixels; `load_imageclef_arrays` stacks them into arrays (with ``cache_dir=None`` the
tasks run without a journal and nothing is written), `ImageCLEFDataset` reads each batch's
entries when Keras asks for it (a set larger than memory).

Cache: each result is an ``.npz`` file (no pickle) under
``cache_dir/<key>/<split>/<image_id>.npz``, ``<key>`` a hash of the preprocessing settings
(`imageclef_cache_settings`, written beside as ``settings.json``): changing a setting computes
into another folder, and nothing else does. An entry is reused when its journal record
(``cache_dir/<key>/.prep/``) was written for a source file of the same size and modification
time (`kerasmed.preprocessing.xray_files.source_stamp`); entries are written atomically as each
image finishes, so an interrupted run resumes where it stopped.

`write_imageclef_folder` writes synthetic radiographs in the ImageCLEF layout, so that the
embedded data goes through the same reader as the real data set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re

import cv2
import numpy as np

from kerasmed.data._epoch_order import EpochOrderDataset
from kerasmed.io._npz import load_npz
from kerasmed.io.imageclef import IMAGECLEF_SPLITS, index_imageclef
from kerasmed.io.prep_runner import PrepTask, resolve_workers, run_prep, write_text_atomic
from kerasmed.preprocessing.xray_files import (
    CACHE_FORMAT,
    init_worker,
    prepare_cache_entry,
    source_stamp,
)
from kerasmed.validation import (
    check_int_tuple,
    check_non_negative_int,
    check_one_of,
    check_whole_number,
)

__all__ = [
    "ImageCLEFCache",
    "ImageCLEFDataset",
    "ImageCLEFEntries",
    "imageclef_cache_settings",
    "imageclef_cache_key",
    "load_imageclef_arrays",
    "prepare_imageclef_cache",
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


@dataclasses.dataclass
class ImageCLEFEntries:
    """The cache entries of one split: only the index (paths, labels) is held in memory.

    Attributes:
        paths: one ``.npz`` cache entry per image, in code-list order.
        labels: ``(N,)`` int64 labels (`kerasmed.io.IrmaLabelMap`).
        ids: the image ids.
        dtype: the split's dtype, ``uint8``, or ``uint16`` when an image is 16-bit (8-bit ones
            are then multiplied by 257 as they are read).
        size: ``(height, width)`` of every image.
    """

    paths: list
    labels: np.ndarray
    ids: tuple
    dtype: np.dtype
    size: tuple

    def __len__(self):
        return len(self.paths)

    @property
    def nbytes(self) -> int:
        """Bytes of the split as one ``(N, H, W, 3)`` array of `dtype`."""
        return len(self) * self.size[0] * self.size[1] * 3 * self.dtype.itemsize

    def read(self, rows=None) -> np.ndarray:
        """The images at `rows` (default: all) as one ``(len(rows), H, W, 3)`` array of `dtype`."""
        rows = range(len(self)) if rows is None else rows
        return _stack_images([self._image(int(i)) for i in rows], self.size, self.dtype)

    def _image(self, i):
        path = self.paths[i]
        image = load_npz(path, ("image",), "ImageCLEF cache entry")["image"]
        if image.shape != (*self.size, 3) or image.dtype not in (np.uint8, np.uint16):
            raise ValueError(
                f"{path} holds a {image.dtype} image of shape {image.shape}, not "
                f"{(*self.size, 3)} uint8/uint16 (was the cache folder changed?). "
                f"Received: path={path!r}"
            )
        return image


def _stack_images(images, size, dtype):
    """``(N, H, W, 3)`` of a split's `dtype`; 8-bit images of a uint16 split times 257."""
    if not images:
        return np.zeros((0, *size, 3), dtype)
    if dtype == np.uint16:
        images = [im.astype(np.uint16) * np.uint16(257) if im.dtype == np.uint8 else im
                  for im in images]  # fmt: skip
    return np.stack(images)


@dataclasses.dataclass
class ImageCLEFCache:
    """A prepared cache folder of one setting (`prepare_imageclef_cache`): ``train`` and ``test``
    (`ImageCLEFEntries`), ``label_map`` (a `kerasmed.io.IrmaLabelMap` over both code lists'
    codes), ``report`` (`kerasmed.io.ImageCLEFReport`), ``root`` (``cache_dir/<key>``), ``settings``.
    """

    train: ImageCLEFEntries
    test: ImageCLEFEntries
    label_map: object
    report: object
    root: str
    settings: dict

    @property
    def nbytes(self) -> int:
        """Bytes of both splits as arrays (what `load_imageclef_arrays` would hold)."""
        return self.train.nbytes + self.test.nbytes


def _split_dtype(records, notes):
    dtypes = [record["dtype"] for record in records]
    if "uint16" not in dtypes:
        return np.dtype(np.uint8)
    eight = dtypes.count("uint8")
    if eight:
        notes.append(
            f"{eight} 8-bit image(s) multiplied by 257 to share one uint16 array with "
            f"{len(dtypes) - eight} 16-bit image(s)"
        )
    return np.dtype(np.uint16)


def _tasks(splits, root, settings):
    """``{(split, k): PrepTask}``: one task per image, its entry the output (``root=None``: no
    cache, the image returned in memory), its file's stamp its own settings."""
    tasks = {}
    for name, split in splits.items():
        for k, path in enumerate(split.paths):
            entry = f"{name}/{_entry_name(split.ids[k])}"
            try:
                stamp = source_stamp(path).tolist()
            except OSError:
                stamp = None  # the work fails on it, and is reported
            cache_path = None if root is None else os.path.join(root, entry)
            args = {"path": path, "cache_path": cache_path, "output": entry,
                    "settings": settings}  # fmt: skip
            key = f"{name}.{entry[len(name) + 1 : -len('.npz')]}"
            tasks[name, k] = PrepTask(key, args, source=path, settings={"source": stamp})
    return tasks


def _prepare(data_dir, cache_dir, settings, workers, progress, paths):
    """Runs every image of `data_dir` through `run_prep` (into `cache_dir`, or with ``None``
    in memory, without a journal) and sorts the results by split, in code-list order.

    Returns ``(index, root, kept)``: the `kerasmed.io.index_imageclef` index (its report holds
    the problems and notes; the strict rule is not applied yet), ``cache_dir/<key>`` (or
    ``None``) and per split ``(tasks, records, labels, dtype)`` of the images that were read.
    """
    if workers is not None:
        check_non_negative_int(workers, "workers")
    workers = resolve_workers(workers)
    index = index_imageclef(data_dir, **paths)
    report = index.report
    splits = {"train": index.train, "test": index.test}
    root = state_dir = None
    if cache_dir is not None:
        root = os.path.join(os.fspath(cache_dir), imageclef_cache_key(settings))
        os.makedirs(root, exist_ok=True)
        write_text_atomic(os.path.join(root, "settings.json"), json.dumps(settings, indent=2))
        state_dir = os.path.join(root, ".prep")
    tasks = _tasks(splits, root, settings)
    run = run_prep(
        list(tasks.values()), prepare_cache_entry, state_dir,
        settings=settings, workers=workers, progress=progress, desc="preprocessing radiographs",
        unit="image", strict=None, source=os.fspath(data_dir), out_dir=root,
        initializer=init_worker,
    )  # fmt: skip
    report.computed += len(run.computed)
    report.cached += len(run.resumed)
    failed = {problem.item: problem.reason for problem in run.report.problems}
    kept = {}
    for name, split in splits.items():
        done, records, ids, codes = [], [], [], []
        for k, image_id in enumerate(split.ids):
            task = tasks[name, k]
            if task.key not in run.records:
                split.report.add(
                    f"cannot read image: {failed[task.key]}",
                    row=int(split.rows[k]),
                    item=image_id,
                    path=split.paths[k],
                )
                continue
            record = run.records[task.key]
            report.notes.extend(f"{name} {image_id}: {note}" for note in record["notes"])
            done.append(task)
            records.append(record)
            ids.append(image_id)
            codes.append(split.codes[k])
        report.ids[name] = tuple(ids)
        dtype = _split_dtype(records, report.notes)
        kept[name] = (done, records, index.label_map.encode(codes), dtype)
    return index, root, kept


def prepare_imageclef_cache(
    data_dir,
    cache_dir,
    padding="constant",
    enhanced=False,
    size=299,
    workers=None,
    strict=True,
    progress=True,
    **paths,
) -> ImageCLEFCache:
    """Preprocesses every image of an ImageCLEF 2009 folder into `cache_dir`; reads no pixel back.

    One `kerasmed.io.prep_runner.PrepTask` per image runs
    `kerasmed.preprocessing.xray_files.prepare_cache_entry` through
    `kerasmed.io.prep_runner.run_prep` (in `workers` spawned processes that import no Keras):
    its output is the cache entry ``cache_dir/<key>/<split>/<image_id>.npz``, its journal
    record (in ``cache_dir/<key>/.prep/``) holds the image's notes and dtype. A rerun reuses an
    entry whose record was written with the same settings (those of the key) for a source file
    of the same size and modification time (the task's settings), and computes the rest.

    Then the strict rule of `kerasmed.io.report` is applied once, to the problems of the code
    lists and the images that cannot be decoded together (see `load_imageclef_arrays`).

    Args:
        data_dir: the ImageCLEF folder (layout in `kerasmed.io.imageclef`).
        cache_dir: folder of the cache (created).
        padding, enhanced, size, workers, strict, progress, **paths: as
            `load_imageclef_arrays`.

    Returns:
        An `ImageCLEFCache`: per split the entries' paths and labels, in code-list order.
    """
    settings = imageclef_cache_settings(padding, enhanced, size)
    index, root, kept = _prepare(data_dir, cache_dir, settings, workers, progress, paths)
    entries = {}
    for name, (tasks, _, labels, dtype) in kept.items():
        entry_paths = [task.args["cache_path"] for task in tasks]
        ids, shape = index.report.ids[name], tuple(settings["size"])
        entries[name] = ImageCLEFEntries(entry_paths, labels, ids, dtype, shape)
    index.report.raise_or_warn(strict, "input(s)")
    return ImageCLEFCache(
        entries["train"], entries["test"], index.label_map, index.report, root, settings
    )


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

    Every usable row of both code lists is read and preprocessed in `workers` processes. With
    a `cache_dir` this is `prepare_imageclef_cache` (cache entries are reused, the other images
    computed and written); without one, the same work runs without a journal and each image
    comes back in memory: nothing is written to disk. Then the strict rule of
    `kerasmed.io.report` is applied once, to the problems of the code lists (missing image
    file, bad IRMA code, duplicate id...) and the images that cannot be decoded together:
    ``strict=True`` raises one `kerasmed.io.LoadError` listing them all (what was computed
    stays in the cache, if any), ``strict=False`` skips them and warns. The images are then
    stacked.

    Memory: the arrays are ``N x size x size x 3`` bytes (uint8): 3.4 GB for the 12,677
    training images at 299 x 299, 10 GB at the paper's 512 x 512. `ImageCLEFDataset` reads
    the batches of a prepared cache from disk instead.

    Args:
        data_dir: the ImageCLEF folder (layout in `kerasmed.io.imageclef`).
        padding: ``"constant"``, ``"wrap"`` or ``None`` (plain resize), as in
            `prepare_radiograph` (the paper's constant, repetitive and resize inputs).
        enhanced: ``(original, NL-means, CLAHE)`` channels instead of grey x 3.
        size: output side, or ``(height, width)`` (paper: 512).
        cache_dir: folder of the cache (created; a rerun reuses it); ``None``: no cache,
            nothing is written to disk.
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
        counts; without a `cache_dir` every image is computed).

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
    if cache_dir is not None:
        cache = prepare_imageclef_cache(
            data_dir, cache_dir, padding, enhanced, size, workers, strict, progress, **paths
        )
        arrays = [(split.read(), split.labels) for split in (cache.train, cache.test)]
        return (*arrays[0], *arrays[1], cache.label_map, cache.report)
    settings = imageclef_cache_settings(padding, enhanced, size)
    index, _, kept = _prepare(data_dir, None, settings, workers, progress, paths)
    index.report.raise_or_warn(strict, "input(s)")
    arrays = []
    for name in ("train", "test"):
        _, records, labels, dtype = kept.pop(name)
        images = [record.pop("image") for record in records]  # freed once stacked
        arrays += [_stack_images(images, tuple(settings["size"]), dtype), labels]
    return (*arrays, index.label_map, index.report)


class ImageCLEFDataset(EpochOrderDataset):
    """Batches of an ImageCLEF split read from its cache entries when Keras asks for them.

    Only the index (entry paths, labels) is in memory; batch ``i`` reads its ``batch_size``
    entries. The images are those of `load_imageclef_arrays`'s arrays (the split's dtype; the
    model casts them), the targets one-hot float32.

    Args:
        entries: an `ImageCLEFEntries` (``prepare_imageclef_cache(...).train``).
        num_classes: width of the one-hot targets (``label_map.num_classes``).
        batch_size: images per batch (the last one may be smaller).
        shuffle: visit the images in a new order every epoch, seeded by ``(seed, epoch)``;
            ``False`` keeps code-list order (evaluation).
        seed: see `shuffle`.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset`` (``workers > 1``: batches read ahead while the model
            trains).

    Example:

    >>> import tempfile
    >>> from kerasmed.data import simulate_radiographs
    >>> folder, cache = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = write_imageclef_folder(simulate_radiographs(8, 32, 48), folder, test_fraction=0.25)
    >>> prepared = prepare_imageclef_cache(folder, cache, size=16, workers=0, progress=False)
    >>> data = ImageCLEFDataset(prepared.train, prepared.label_map.num_classes, batch_size=4)
    >>> x, y = data[0]
    >>> len(data), x.shape, x.dtype, y.shape[0]
    (2, (4, 16, 16, 3), dtype('uint8'), 4)
    """

    def __init__(self, entries, num_classes, batch_size=16, shuffle=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(entries, ImageCLEFEntries):
            raise ValueError(
                "`entries` must be a kerasmed.data.imageclef.ImageCLEFEntries (pass arrays to "
                f"`fit` directly). Received: entries of type {type(entries).__name__}"
            )
        if not len(entries):
            raise ValueError("`entries` holds no image. Received: len(entries)=0")
        self.entries = entries
        self.num_classes = check_whole_number(num_classes, "num_classes")
        if entries.labels.max() >= self.num_classes:
            raise ValueError(
                f"`num_classes` must exceed every label. Received: num_classes={num_classes}, "
                f"largest label {int(entries.labels.max())}"
            )
        self.batch_size = check_whole_number(batch_size, "batch_size")
        self.shuffle, self.seed = bool(shuffle), seed
        self._start_order(len(entries), self.batch_size)

    def __getitem__(self, index):
        rows = self._batch_rows(index)
        targets = np.eye(self.num_classes, dtype=np.float32)[self.entries.labels[rows]]
        return self.entries.read(rows), targets


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
