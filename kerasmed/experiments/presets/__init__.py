"""The experiments' presets as frozen data: one config dataclass per experiment, one instance per preset.

One module per experiment, named like the experiment module it configures
(``presets/longitudinal.py`` for ``experiments/longitudinal.py``, experiment ``tlstm``), each
with its config dataclass, ``PRESETS`` (``{name: Preset}``: config, expected runtime and
hardware), ``TITLE`` and ``NOTEBOOK``. These modules import no Keras: the registry and
``kerasmed list`` read them, and ``kerasmed reproduce --set`` is checked against them before a
backend starts. The experiment modules re-export their config class and ``PRESETS``.
"""
