"""Figures for the notebooks and reports: training curves and side-by-side SR comparisons with zoomed crops."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_losses", "comparison_figure", "most_detailed_crop"]


def most_detailed_crop(img: np.ndarray, size: int) -> tuple[int, int]:
    """(top, left) of the ``size`` x ``size`` square with the largest variance (on a half-size grid): where
    super-resolution differences show."""
    grey = img.astype(np.float64).mean(axis=2) if img.ndim == 3 else img.astype(np.float64)
    h, w = grey.shape
    best, where = -1.0, (0, 0)
    for top in range(0, h - size + 1, max(1, size // 2)):
        for left in range(0, w - size + 1, max(1, size // 2)):
            v = grey[top: top + size, left: left + size].var()
            if v > best:
                best, where = v, (top, left)
    return where


def plot_losses(history: Mapping[str, Sequence[float]], title: str = "training", xlabel: str = "epoch",
                path=None, log_y: bool = True):
    """One line per loss (``{"name": [values...]}``); saved as PNG when ``path`` is given. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in history.items():
        if len(values):
            ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 30 else None, label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if log_y and all(v > 0 for vals in history.values() for v in vals):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def comparison_figure(images: Mapping[str, np.ndarray], scores: Mapping[str, tuple[float, float]] | None = None,
                      crop: tuple[int, int, int] | None = None, path=None, title: str | None = None):
    """Images side by side (``{"bicubic": sr, ..., "HR": hr}``, same size, uint8 RGB) with a zoomed crop row.

    ``scores`` maps labels to (PSNR, SSIM) shown under each image. ``crop`` is (top, left, size) in HR pixels;
    by default the most detailed square (largest local variance of the HR) is chosen.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    labels = list(images)
    ref = images[labels[-1]]
    h, w = ref.shape[:2]
    if crop is None:
        size = max(16, min(h, w) // 4)
        crop = (*most_detailed_crop(ref, size), size)
    top, left, size = crop
    fig, axes = plt.subplots(2, len(labels), figsize=(3.2 * len(labels), 6.4), squeeze=False)
    for k, label in enumerate(labels):
        img = images[label]
        axes[0, k].imshow(img, cmap="gray" if img.ndim == 2 else None)
        axes[0, k].add_patch(Rectangle((left, top), size, size, fill=False, edgecolor="yellow", linewidth=1.5))
        text = label
        if scores and label in scores:
            text += f"\n{scores[label][0]:.2f} dB / {scores[label][1]:.4f}"
        axes[0, k].set_title(text, fontsize=10)
        axes[1, k].imshow(img[top: top + size, left: left + size], interpolation="nearest")
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
