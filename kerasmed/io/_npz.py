"""Reading the ``.npz`` files of kerasmed's formats: no pickle, named keys, one message shape."""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


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
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"cannot read {path}: not an .npz (zip) file. Received: path={path!r}")
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
