"""The Keras backend of a run: is its package installed, and start it without log noise.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, and imports the backend's
package then; a backend whose package is missing ends in a long ``ModuleNotFoundError``.
`missing_backend` checks the package with ``importlib.util.find_spec`` (nothing is imported)
and returns the message with the install line. `start_backend` imports Keras; with
``quiet=True`` (the ``kerasmed`` command's default, and the notebooks') it hides what every
TensorFlow start prints on a machine without a GPU and that a user can do nothing about:

- the C++ start-up lines (``WARNING: All log messages before absl::InitializeLog() ...``,
  ``I0000 ... port.cc] oneDNN custom operations are on ...``, ``cudart_stub``,
  ``cpu_feature_guard``), written to the process's stderr before TensorFlow reads
  ``TF_CPP_MIN_LOG_LEVEL``, are filtered out of the import's stderr; every other line is
  passed on. TensorFlow, when installed, is imported then under every backend (Keras imports
  it on demand during a fit: its start-up lines would appear there);
- later C++ lines (``E0000 ... failed call to cuInit``, ``oneDNN supports DT_BOOL only ...``)
  by ``TF_CPP_MIN_LOG_LEVEL=3``, set only when the user has not set it;
- Python-side log records below ERROR of the ``tensorflow``, ``absl`` and JAX
  device-discovery loggers (``tf.function`` retracing warnings, "no GPU found");
- tqdm's "IProgress not found" warning, which ``tqdm.auto`` gives when a library imports it
  in a Jupyter kernel without ipywidgets (keras-hub's dependencies do; kerasmed's own bars,
  `kerasmed.progress`, do not use ``tqdm.auto``), by a ``warnings`` filter.

``quiet=False`` (``kerasmed reproduce --verbose``) changes nothing: everything is shown.

Example:

>>> missing_backend("tensorflow") is None
True
>>> install_line("jax")
'pip install -e ".[jax]"'
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings

__all__ = [
    "BACKENDS",
    "filter_startup_lines",
    "install_line",
    "missing_backend",
    "quiet_backend_logs",
    "start_backend",
]

# backend -> the package Keras imports for it
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
_INSTALL = {
    "tensorflow": "pip install -e .",
    "jax": 'pip install -e ".[jax]"',
    "torch": 'pip install -e ".[torch]"',
}
# Lines TensorFlow's C++ runtime prints while it loads (absl/glog format "I0000 00:00:... file.cc:N]")
# that say nothing a user can act on; matched only on the stderr of the import itself.
_CPP_LINE = re.compile(r"^[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")
_HARMLESS_ERRORS = re.compile(
    r"^E\d{4} .*(failed call to cuInit|Unable to register cu(DNN|FFT|BLAS))"
)
_STARTUP_TEXT = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "To enable the following instructions:",
)
_QUIET_LOGGERS = ("tensorflow", "absl", "jax._src.xla_bridge")
_TQDM_NO_WIDGETS = "IProgress not found"


def install_line(backend: str) -> str:
    """The pip command (run in the repository root) that installs `backend`'s package."""
    if backend not in _INSTALL:
        raise ValueError(
            f"Unknown backend. Valid backends: {', '.join(_INSTALL)}. Received: backend={backend!r}"
        )
    return _INSTALL[backend]


def missing_backend(backend: str | None = None) -> str | None:
    """``None`` when `backend`'s package is importable, else the message naming the install line.

    Args:
        backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``; ``None`` reads ``KERAS_BACKEND``
            (default ``"tensorflow"``, as Keras does).

    Raises:
        ValueError: for another backend name.
    """
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    command = install_line(backend)
    if importlib.util.find_spec(BACKENDS[backend]) is not None:
        return None
    return (
        f"the {backend} backend needs the {BACKENDS[backend]!r} package, which is not installed "
        f"for {sys.executable}. Install it with: {command} (in the kerasmed folder), or choose "
        f"another backend (--backend / KERAS_BACKEND: {', '.join(BACKENDS)})"
    )


def filter_startup_lines(text: str) -> str:
    """`text` without the known harmless start-up lines of TensorFlow's C++ runtime.

    Example:

    >>> filter_startup_lines(
    ...     "I0000 00:00:1796.2 8013 port.cc:153] oneDNN custom operations are on.\\n"
    ...     "something else\\n"
    ... )
    'something else\\n'
    """
    kept = [
        line
        for line in text.splitlines(keepends=True)
        if not (
            _CPP_LINE.match(line) or _HARMLESS_ERRORS.match(line) or line.startswith(_STARTUP_TEXT)
        )
    ]
    return "".join(kept)


@contextlib.contextmanager
def _filtered_stderr():
    """Sends file descriptor 2 to a temporary file; on exit, passes on what is not start-up noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = filter_startup_lines(capture.read().decode("utf-8", "replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


def quiet_backend_logs() -> None:
    """Sets the log levels that hide the backends' harmless messages (before Keras starts)."""
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):  # a level the user chose is kept
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=_TQDM_NO_WIDGETS)


def start_backend(backend: str | None = None, quiet: bool = True) -> str:
    """Checks and imports the Keras backend; returns its name (``keras.backend.backend()``).

    Args:
        backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``, or ``None`` for
            ``KERAS_BACKEND`` (default ``"tensorflow"``). Sets ``KERAS_BACKEND`` when given;
            has effect only before Keras is first imported.
        quiet: hide the harmless start-up and log lines (see the module); ``False`` shows
            everything.

    Raises:
        ModuleNotFoundError: when the backend's package is not installed; the message names
            the install line (`missing_backend`).
    """
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    message = missing_backend()
    if message is not None:
        raise ModuleNotFoundError(message[0].upper() + message[1:])
    if not quiet:
        import keras

        return keras.backend.backend()
    quiet_backend_logs()
    with _filtered_stderr() if "keras" not in sys.modules else contextlib.nullcontext():
        import keras

        # Keras imports TensorFlow on demand under the other backends too (its data adapters,
        # during the first fit), where its start-up lines would reach the user: import it here.
        if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow"):
            import tensorflow  # noqa: F401
    quiet_backend_logs()  # absl.logging sets its own level when TensorFlow imports it
    return keras.backend.backend()
