"""Experiment `two-step` on COV19-CT-DB: the challenge's folders into the parts `load_data` returns.

The paper trains on COV19-CT-DB's ``train`` split and reports Table 1 on its ``validation``
split; here they are the ``train`` and ``test`` parts. Scans are read by
`kerasmed.io.read_cov19_ct` (slices in numeric order, labels from the class folders, the strict
rule of `kerasmed.io.report`); each scan's window is selected in its own units (8-bit slices with
the authors' threshold 100, HU for NIfTI / DICOM scan folders) and its slices are resized to the
preset's ``slice_size``. Every scan is held in memory (a few GB at 256 x 256 for the whole
challenge set); `data_prep/` is where a streamed cache belongs.
"""

from __future__ import annotations

import numpy as np

from kerasmed.io import read_cov19_ct

#: COV19-CT-DB split folder -> the experiment's part.
SPLITS = {"train": "train", "test": "validation"}


def load_cov19_parts(config, data_dir, log, strict=True):
    """Reads `data_dir` (COV19-CT-DB's layout) into ``{"train" | "test": part}``.

    Args:
        config: the `TwoStepConfig` (window and slice-size settings).
        data_dir: the folder holding ``train/`` and ``validation/``.
        log: a ``print``-like function for the per-part counts.
        strict: the `kerasmed.io.report` rule (True: unreadable slices or empty scans raise one
            `LoadError` naming every file; False: they are skipped and warned about).

    Returns:
        The structure of `kerasmed.experiments.two_step.load_data` (``volumes`` are the scans as
        read: 8-bit or HU).
    """
    from kerasmed.experiments.two_step import model_slices, select_windows  # no import cycle

    parts = {}
    for part, split in SPLITS.items():
        data = read_cov19_ct(data_dir, splits=(split,), strict=strict)
        if not data.scans:
            raise ValueError(
                f"COV19-CT-DB split {split!r} has no usable scan ({data.report}). "
                f"Received: data_dir={str(data_dir)!r}"
            )
        volumes = [scan.array for scan in data.scans]
        windows = [select_windows([scan.array], config, kind=scan.kind)[0] for scan in data.scans]
        slices = [model_slices(s.array, config.slice_size, kind=s.kind) for s in data.scans]
        labels = data.labels
        parts[part] = {"volumes": volumes, "slices": slices, "windows": windows, "labels": labels}
        counts = np.bincount(labels, minlength=2)
        log(f"{part} ({split}/): {len(labels)} scans ({counts[1]} covid, {counts[0]} non-covid)")
    return parts
