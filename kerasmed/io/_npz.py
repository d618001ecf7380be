"""Reading the ``.npz`` files of kerasmed's formats: no pickle, named keys, one message shape."""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _zip_file(path, kind):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"cannot read {path}: not an .npz (zip) file. Received: path={path!r}")
    return path


def load_npz(path, keys, kind):
    """Loads the arrays `keys` of an ``.npz`` file with ``allow_pickle=False``.

    Args:
        path: the file.
        keys: the keys the format requires (other keys are allowed and not read).
        kind: the format's name for the messages, e.g. ``"volume"``.

    Returns:
        A dict ``key -> numpy array``.

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: the file is not an ``.npz`` (zip) file, cannot be decoded (truncated, or
            holds pickled objects), or lacks some of `keys` (the message lists them).
    """
    path = _zip_file(path, kind)
    try:
        with np.load(path, allow_pickle=False) as data:
            files = sorted(data.files)
            missing = [k for k in keys if k not in files]
            arrays = {} if missing else {k: data[k] for k in keys}
    except _READ_ERRORS as error:
        raise ValueError(
            f"cannot read {path} ({type(error).__name__}: {error}). Received: path={path!r}"
        ) from error
    if missing:
        raise ValueError(
            f"{path} is not a {kind} file: missing keys {missing}. Received: keys={files}"
        )
    return arrays


def memmap_npz_member(path, key, kind):
    """A read-only memory map of array `key` of an ``.npz`` file stored without compression.

    ``np.savez`` stores each array as an ``.npy`` member of a zip file without compressing it,
    so the member's bytes lie contiguous in the file and can be mapped like an ``.npy`` file:
    nothing is read until an item is indexed. ``np.savez_compressed`` members cannot be
    mapped; for those this returns ``None`` and the caller reads the array (or asks for the
    file to be written uncompressed).

    Args:
        path: the file.
        key: the array's name (the member ``<key>.npy``).
        kind: the format's name for the messages, e.g. ``"longitudinal sequences"``.

    Returns:
        A read-only ``np.memmap``, or ``None`` when the member is compressed.

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: `path` is not a zip file, lacks `key`, or its member is not a readable
            ``.npy`` array of a plain (non-object) dtype.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> np.savez(path, x=np.arange(6, dtype="int16").reshape(2, 3))
    >>> mapped = memmap_npz_member(path, "x", "example")
    >>> type(mapped).__name__, mapped[1].tolist()
    ('memmap', [3, 4, 5])
    >>> np.savez_compressed(path, x=np.arange(3))
    >>> memmap_npz_member(path, "x", "example") is None
    True
    """
    path = _zip_file(path, kind)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if key + ".npy" not in names:
                raise ValueError(
                    f"{path} is not a {kind} file: missing key {key!r}. "
                    f"Received: keys={sorted(n[:-4] for n in names if n.endswith('.npy'))}"
                )
            info = archive.getinfo(key + ".npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as handle:
            # The local file header: 30 fixed bytes, then the name and the extra field, whose
            # lengths are the last two 2-byte fields (the central directory's may differ).
            handle.seek(info.header_offset)
            header = handle.read(30)
            if len(header) != 30 or header[:4] != b"PK\x03\x04":
                raise ValueError("the zip member's local header is damaged")
            name_length = int.from_bytes(header[26:28], "little")
            extra_length = int.from_bytes(header[28:30], "little")
            handle.seek(info.header_offset + 30 + name_length + extra_length)
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            offset = handle.tell()
    except _READ_ERRORS as error:
        raise ValueError(
            f"cannot read {path} ({type(error).__name__}: {error}). Received: path={path!r}"
        ) from error
    if dtype.hasobject:
        raise ValueError(
            f"{path}: member {key!r} holds Python objects, which kerasmed does not read. "
            f"Received: dtype={dtype}"
        )
    if 0 in shape:  # nothing to map
        return np.zeros(shape, dtype)
    order = "F" if fortran else "C"
    return np.memmap(path, dtype, mode="r", offset=offset, shape=shape, order=order)
