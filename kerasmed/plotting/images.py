"""A sequence of exams side by side, with labels and time lapses."""

import matplotlib.figure
import numpy as np

__all__ = ["plot_image_sequence"]


def plot_image_sequence(
    images, labels=None, deltas=None, label_names=None, max_images=8, title=None
):
    """Shows a sequence of exams side by side, with each exam's labels and time lapse.

    Args:
        images: ``(T, H, W)`` or ``(T, H, W, C)`` array.
        labels: optional ``(T, L)`` multi-hot labels.
        deltas: optional ``(T,)`` time lapses since the previous exam.
        label_names: names of the L labels.
        max_images: show at most this many exams (evenly spaced).
        title: figure title.

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:

    >>> import numpy as np
    >>> fig = plot_image_sequence(np.zeros((3, 8, 8)), deltas=np.array([0, 2, 5]))
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(
            f"`images` must be (T, H, W) or (T, H, W, C). Received: shape={images.shape}"
        )
    steps = np.unique(np.linspace(0, len(images) - 1, min(max_images, len(images))).astype(int))
    fig = matplotlib.figure.Figure(figsize=(2.0 * len(steps), 2.6), layout="constrained")
    axes = fig.subplots(1, len(steps), squeeze=False)
    for ax, t in zip(axes[0], steps):
        image = images[t]
        ax.imshow(image if image.ndim == 2 or image.shape[-1] != 1 else image[..., 0], cmap="gray")
        ax.set_xticks([])
        ax.set_yticks([])
        caption = f"t={t}"
        if deltas is not None:
            caption += f", δ={np.asarray(deltas)[t]:g}"
        if labels is not None:
            present = np.flatnonzero(np.asarray(labels)[t] > 0.5)
            names = label_names or [str(i) for i in range(np.asarray(labels).shape[-1])]
            caption += "\n" + (", ".join(names[i] for i in present) or "none")
        ax.set_title(caption, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
