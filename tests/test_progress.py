"""`kerasmed.progress.progress_bar`: tqdm in a terminal, one output updated in place in a kernel."""

import io
import sys
import types

import pytest

from kerasmed import progress


class _Handle:
    def __init__(self):
        self.shown = []

    def update(self, data, raw=False):
        assert raw
        self.shown.append(data["text/plain"])


@pytest.fixture
def fake_kernel(monkeypatch):
    """An IPython kernel as `progress` sees it, with a display that records its updates."""
    handles = []

    def display(data, raw=False, display_id=False):
        assert raw and display_id is True and data == {"text/plain": ""}
        handles.append(_Handle())
        return handles[-1]

    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    display_module = types.ModuleType("IPython.display")
    display_module.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    return handles


def test_in_a_kernel_one_output_per_bar_ends_at_its_last_state(fake_kernel):
    for name in ("a", "b"):
        with progress.progress_bar(total=4, desc=name, unit="epoch", mininterval=0) as bar:
            for _ in range(4):
                bar.set_postfix({"loss": "0.5"}, refresh=False)
                bar.update(1)
    assert len(fake_kernel) == 2  # one display per bar, never a stream write
    for name, handle in zip("ab", fake_kernel):
        last = handle.shown[-1]
        assert last.startswith(f"{name}: 100%") and "4/4" in last and "loss=0.5" in last
        assert "\r" not in last and last == last.rstrip()
        assert "█" in last  # Unicode blocks, not tqdm's ASCII fallback
        assert len(handle.shown) == len(set(handle.shown))  # an unchanged line is not resent


def test_outside_a_kernel_it_is_plain_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)  # not importable, as in a script
    assert not progress._in_notebook_kernel()
    stream = io.StringIO()
    with progress.progress_bar(total=2, desc="x", file=stream, mininterval=0) as bar:
        bar.update(2)
    assert "x: 100%" in stream.getvalue()


def test_ipython_shell_is_not_a_kernel(monkeypatch):
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: types.SimpleNamespace(config={"TerminalIPythonApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    assert not progress._in_notebook_kernel()


def test_a_given_file_or_disabled_bar_makes_no_output(fake_kernel):
    stream = io.StringIO()
    with progress.progress_bar(total=1, file=stream) as bar:
        bar.update(1)
    with progress.progress_bar(total=1, disable=True) as bar:
        bar.update(1)
    assert fake_kernel == [] and "100%" in stream.getvalue()
