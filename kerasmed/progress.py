"""Progress bars: one tqdm bar that reads well in a terminal and in a saved notebook.

`progress_bar` is ``tqdm.std.tqdm`` with kerasmed's defaults. In a terminal it draws on stderr
as tqdm does. In a Jupyter kernel it draws into one output of its cell, updated in place
(``IPython.display`` with a ``display_id``). The live view is one line per bar, and a notebook
executed by papermill or nbclient keeps one output per bar, showing its last state.
Without this, a text bar writes one stream output per update (hundreds per trained model).

``tqdm.auto`` is not used. In a kernel without ipywidgets it warns ("IProgress not found") when
it is imported. With ipywidgets, a saved notebook keeps only the bar's first state ("0/30") as
text.

Example:

>>> import io
>>> with progress_bar(total=3, desc="demo", file=io.StringIO()) as bar:
...     _ = bar.update(3)
>>> bar.n
3
"""

from __future__ import annotations

import io
import sys

from tqdm.std import tqdm

__all__ = ["progress_bar"]


def _in_notebook_kernel():
    """True inside a Jupyter (IPython) kernel, False in a terminal, a script or IPython's shell."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython without get_ipython, or a shell that cannot answer
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class _CellLine(io.TextIOBase):
    """A text file for tqdm that shows its latest line as one output of the running cell."""

    def __init__(self):
        from IPython.display import display

        self._handle = display({"text/plain": ""}, raw=True, display_id=True)
        self._line = ""

    @property
    def encoding(self):  # tqdm draws its Unicode blocks only into a UTF-8 file
        return "utf-8"

    def writable(self):
        return True

    def write(self, text):
        # tqdm writes "\r" + the bar (padded with spaces), and "\n" when a bar that is kept
        # closes; the last non-empty line is the bar's state.
        line = text.replace("\r", "\n").split("\n")
        line = next((part.rstrip() for part in reversed(line) if part.strip()), "")
        if line and line != self._line:
            self._line = line
            self._handle.update({"text/plain": line}, raw=True)
        return len(text)

    def flush(self):
        pass


def progress_bar(*args, **kwargs):
    """A ``tqdm.std.tqdm`` bar (same arguments); in a Jupyter kernel one output updated in place.

    Args:
        *args, **kwargs: as ``tqdm.tqdm`` (``total``, ``desc``, ``unit``, ``disable``, ...). A
            given ``file`` is used as it is.

    Returns:
        The bar (a context manager, closed on exit).
    """
    if "file" not in kwargs and not kwargs.get("disable") and _in_notebook_kernel():
        kwargs["file"] = _CellLine()
    return tqdm(*args, **kwargs)
