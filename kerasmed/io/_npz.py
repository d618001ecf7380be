"""Reading and writing the ``.npz`` files of kerasmed's formats: no pickle, named keys, one
message shape; `NpzWriter` writes an array from pieces (one sequence at a time)."""

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


def _read_npy_header(handle):
    """``(shape, fortran_order, dtype)`` of the ``.npy`` data starting at `handle`'s position."""
    if np.lib.format.read_magic(handle) == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


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
            shape, fortran, dtype = _read_npy_header(handle)
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


def npz_member_header(path, key):
    """``(shape, dtype)`` of the ``.npy`` member `key` of an ``.npz`` file, from its header only.

    Raises:
        ValueError: the file cannot be read or has no member `key` (the message names `path`).
    """
    path = os.fspath(path)
    try:
        with zipfile.ZipFile(path) as archive, archive.open(key + ".npy") as member:
            shape, _, dtype = _read_npy_header(member)
    except (*_READ_ERRORS, KeyError) as error:
        raise ValueError(
            f"cannot read {path} ({type(error).__name__}: {error}). Received: path={path!r}"
        ) from error
    return shape, dtype


class NpzMember:
    """One array of an ``.npz`` file, left on disk until it is used as an array.

    ``shape``, ``dtype`` and ``len`` come from the member's header; ``np.asarray(member)``
    reads the array (``allow_pickle=False``) and keeps nothing, so a list of members stands
    for a set of files without holding their arrays. `NpzWriter.add_rows` reads them one at a
    time.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> np.savez(path, x=np.arange(6, dtype="int16").reshape(3, 2))
    >>> member = NpzMember(path, "x")
    >>> member.shape, str(member.dtype), len(member), np.asarray(member)[2].tolist()
    ((3, 2), 'int16', 3, [4, 5])
    """

    __slots__ = ("path", "key", "shape", "dtype")

    def __init__(self, path, key):
        self.path, self.key = os.fspath(path), key
        self.shape, self.dtype = npz_member_header(self.path, key)

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        array = load_npz(self.path, (self.key,), "npz")[self.key]
        return array if dtype is None else array.astype(dtype, copy=False)

    def __repr__(self):
        return f"NpzMember({self.path!r}, {self.key!r}, shape={self.shape}, dtype={self.dtype})"


def _write_npy_header(handle, shape, dtype):
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": tuple(shape),
    }
    try:
        np.lib.format.write_array_header_1_0(handle, header)
    except ValueError:  # a header over 65535 bytes (a structured dtype with many fields)
        np.lib.format.write_array_header_2_0(handle, header)


class NpzWriter:
    """Writes an ``.npz`` file member by member, the way ``np.savez`` does, without holding
    every array at once.

    ``np.savez(path, **arrays)`` needs each array whole in memory; `add_rows` writes one
    array from pieces instead (e.g. the images of one sequence at a time, read from files),
    so the peak memory is one piece. Each member is an ``.npy`` file in a zip archive with
    zip64 headers, stored (``compress=False``, what `memmap_npz_member` maps) or deflated, as
    ``np.savez`` / ``np.savez_compressed`` write them: ``np.load`` reads the result, with the
    same arrays.

    Args:
        path: the file (``.npz`` appended if missing, as NumPy does), or a writable binary
            file object.
        compress: False (``np.savez``) or True (``np.savez_compressed``).

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> with NpzWriter(path) as out:
    ...     out.add("ids", np.array(["a", "b"]))
    ...     out.add_rows("x", (3, 2), "float32", [np.zeros((1, 2)), np.ones((2, 2))])
    >>> with np.load(path) as data:
    ...     data["ids"].tolist(), data["x"].tolist()
    (['a', 'b'], [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    """

    def __init__(self, path, compress=False):
        if not isinstance(compress, bool):
            raise ValueError(f"`compress` must be True or False. Received: compress={compress!r}")
        if not hasattr(path, "write"):
            path = os.fspath(path)
            if not path.endswith(".npz"):
                path += ".npz"
        self.path = path
        method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self._zip = zipfile.ZipFile(path, mode="w", compression=method, allowZip64=True)
        self._keys = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._zip.close()

    def _open(self, key):
        if not isinstance(key, str) or not key:
            raise ValueError(f"An npz key must be a non-empty string. Received: key={key!r}")
        if key in self._keys:
            raise ValueError(f"{self.path}: key {key!r} was written already. Received: key={key!r}")
        self._keys.add(key)
        # always zip64, as np.savez does (numpy gh-10776)
        return self._zip.open(key + ".npy", "w", force_zip64=True)

    def add(self, key, array):
        """Writes `array` whole as member `key` (as ``np.savez(path, key=array)``)."""
        array = np.asanyarray(array)
        if array.dtype.hasobject:
            raise ValueError(
                f"{key!r} holds Python objects, which kerasmed does not write. "
                f"Received: dtype={array.dtype}"
            )
        with self._open(key) as member:
            np.lib.format.write_array(member, array, allow_pickle=False)

    def add_rows(self, key, shape, dtype, pieces):
        """Writes member `key`, of `shape` and `dtype`, from `pieces` along its first axis.

        Args:
            key: the member's name.
            shape: the whole array's shape ``(N, ...)``.
            dtype: its dtype; each piece is cast to it (``astype``, as ``np.concatenate(...)
                .astype(dtype)`` would).
            pieces: an iterable of arrays ``(n_i, ...)`` with ``sum(n_i) == N`` and the
                trailing shape of `shape`, each read (``np.asarray``) only when written.

        Raises:
            ValueError: a piece of another trailing shape, or pieces whose rows do not add up
                to ``shape[0]`` (the file is then incomplete: write it to a temporary path).
        """
        shape, dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        if not shape or dtype.hasobject:
            raise ValueError(
                "`add_rows` writes an array of at least one axis and a plain dtype. "
                f"Received: shape={shape}, dtype={dtype}"
            )
        rows = 0
        with self._open(key) as member:
            _write_npy_header(member, shape, dtype)
            for i, piece in enumerate(pieces):
                piece = np.asarray(piece)
                if piece.shape[1:] != shape[1:] or piece.ndim != len(shape):
                    raise ValueError(
                        f"{key!r}: piece {i} must have the shape (n, *{shape[1:]}). "
                        f"Received: shape={piece.shape}"
                    )
                rows += len(piece)
                if rows > shape[0]:
                    break
                # the piece's own buffer: no bytes copy of it
                member.write(np.ascontiguousarray(piece, dtype=dtype).reshape(-1).view(np.uint8))
        if rows != shape[0]:
            raise ValueError(
                f"{key!r}: the pieces must have {shape[0]} rows in all. Received: {rows} rows "
                f"(or more) for shape={shape}"
            )
