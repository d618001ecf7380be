"""Paper 004's chain run on a file, with an ``.npz`` cache entry per file (for process pools).

`prepare_radiograph_file` reads one radiograph (`kerasmed.io.read_radiograph`), runs
`kerasmed.preprocessing.prepare_radiograph` on it and, given a cache path, writes the result
there atomically (`kerasmed.io.prep_runner.save_npz_atomic`: a temporary file renamed into
place, so an interrupted run never leaves a half-written entry), with the `source_stamp` of its
file. `read_cached_radiograph` returns a cache entry when it is still valid: written by this
cache format for a source file of the same size and modification time.

`prepare_cache_entry` is the work of one image for `kerasmed.io.prep_runner.run_prep` (which
journals it and decides what a rerun reuses), `init_worker` its pool initializer. This module
imports only OpenCV, NumPy and `kerasmed.io`, so that the worker processes of
`kerasmed.data.imageclef.prepare_imageclef_cache` start in a second, without Keras.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import cv2
import numpy as np

from kerasmed.io.prep_runner import save_npz_atomic
from kerasmed.io.radiograph import read_radiograph
from kerasmed.preprocessing.xray import prepare_radiograph, rescale_to_uint

__all__ = ["CACHE_FORMAT", "source_stamp", "prepare_radiograph_file", "read_cached_radiograph"]

CACHE_FORMAT = 1  # bump when what an entry holds, or how it is computed, changes
_KEYS = ("image", "stamp", "notes", "format")


def source_stamp(path):
    """``(2,)`` int64: the file's size in bytes and modification time in nanoseconds."""
    info = os.stat(path)
    return np.array([info.st_size, info.st_mtime_ns], dtype=np.int64)


def _as_uint(image, notes):
    if image.dtype in (np.uint8, np.uint16):
        return image
    low, high = float(image.min()), float(image.max())
    notes.append(
        f"{image.dtype.name} values {low:g} ... {high:g} mapped linearly to 0 ... 65535 (uint16)"
    )
    return rescale_to_uint(image, bit_depth=16, in_range=(low, high) if high > low else None)


def prepare_radiograph_file(path, cache_path=None, **options):
    """Reads one radiograph file and runs `prepare_radiograph` on it.

    A file that is not uint8 or uint16 after reading (a DICOM image with a modality LUT, a
    float TIFF) is mapped linearly from its minimum and maximum to uint16 first, with a note,
    so that every result can be enhanced and stacked with the others.

    Args:
        path: the image file (any format `kerasmed.io.read_radiograph` reads).
        cache_path: an ``.npz`` file to write the result to (its folder is created), holding
            ``image``, ``stamp`` (`source_stamp` of `path`), ``notes`` and ``format``; ``None``
            writes nothing.
        **options: the arguments of `prepare_radiograph` (``padding``, ``size``,
            ``enhanced``, ``interpolation``, the enhancement's), with its defaults.

    Returns:
        ``(image, notes)``: the ``(height, width, 3)`` uint8 or uint16 array and the notes of
        reading and conversion (a list of strings).

    Raises:
        FileNotFoundError, ValueError: as `read_radiograph`.

    Example:

    >>> import cv2, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = cv2.imwrite(os.path.join(folder, "a.png"), np.full((30, 10), 9, np.uint8))
    >>> image, notes = prepare_radiograph_file(os.path.join(folder, "a.png"), size=(6, 6))
    >>> image.shape, image[3, :, 0].tolist(), notes
    ((6, 6, 3), [0, 0, 9, 9, 0, 0], [])
    """
    path = os.fspath(path)
    stamp = source_stamp(path) if os.path.isfile(path) else None
    image, notes = read_radiograph(path, return_notes=True)
    image = _as_uint(image, notes)
    prepared = prepare_radiograph(image, **options)
    if cache_path is not None:
        save_npz_atomic(
            cache_path,
            compress=True,
            image=prepared,
            stamp=stamp,
            notes=np.array(notes, dtype=str),
            format=np.array(CACHE_FORMAT),
        )
    return prepared, notes


def read_cached_radiograph(cache_path, source_path):
    """The cache entry of `source_path`, if `cache_path` holds a valid one.

    Args:
        cache_path: the entry written by `prepare_radiograph_file`.
        source_path: the image file it was computed from.

    Returns:
        ``(image, notes)``, or ``None`` when the entry is missing, unreadable, of another
        `CACHE_FORMAT`, or was written for a source file of another size or modification time.
    """
    cache_path = os.fspath(cache_path)
    if not os.path.isfile(cache_path):
        return None
    try:
        with np.load(cache_path, allow_pickle=False) as data:
            if any(key not in data.files for key in _KEYS) or int(data["format"]) != CACHE_FORMAT:
                return None
            if not np.array_equal(data["stamp"], source_stamp(source_path)):
                return None
            return data["image"], [str(note) for note in data["notes"]]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        return None


def init_worker():
    """Pool initializer: OpenCV on one thread."""
    cv2.setNumThreads(1)  # one core per worker process (benchmarks/xray_preprocessing.py)


def prepare_cache_entry(args):
    """Work of one image for `kerasmed.io.prep_runner.run_prep`: `prepare_radiograph_file`
    written to its cache entry.

    Args:
        args: dict with ``path`` (the image file), ``cache_path`` (the entry, absolute; ``None``
            without a cache folder: nothing is written), ``output`` (the entry relative to the
            cache folder) and ``settings`` (`kerasmed.data.imageclef_cache_settings`).

    Returns:
        The journal record: ``outputs`` (the entry), ``notes`` of reading and conversion and
        ``dtype`` (``"uint8"`` or ``"uint16"``) of the image; without a cache path ``image``
        (the array itself, for a run without a journal) instead of ``outputs``.

    Raises:
        FileNotFoundError, ValueError: as `read_radiograph` (``run_prep`` reports them).
    """
    settings = args["settings"]
    options = {key: settings[key] for key in ("padding", "enhanced", "interpolation")}
    image, notes = prepare_radiograph_file(
        args["path"], args["cache_path"], size=tuple(settings["size"]), **options
    )
    record = {"notes": list(notes), "dtype": image.dtype.name}
    if args["cache_path"] is None:
        return {"image": image, **record}
    return {"outputs": [args["output"]], **record}
