"""Every figure of the kit: training curves and side-by-side SR comparisons with zoomed crops.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot (no global state, any backend): a notebook
shows one when a cell ends with it; ``path`` also saves it as PNG.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_training", "comparison_figure", "comparison_grid", "most_detailed_crop"]

#: Columns of a training log row that are not losses.
_NOT_LOSSES = ("step", "lr", "sec_per_it", "val_psnr", "val_ssim", "val_lpips", "amp_skipped", "amp_scale")


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


def _save(fig, path) -> None:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)


def plot_training(history: Sequence[Mapping[str, float]], title: str = "training", path=None):
    """Losses (log scale) and validation Y-PSNR against the iteration, from the trainer's log rows
    (``{"step", <loss>..., "lr", "val_psnr"?}``, see :func:`sr_utils.trainer.train`). Returns the figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    if history:
        # rows may differ in their losses (SRGAN's generator pre-training logs only the pixel loss)
        for key in dict.fromkeys(k for r in history for k in r if k not in _NOT_LOSSES):
            points = [(r["step"], r[key]) for r in history if key in r]
            axes[0].plot(*zip(*points), marker="o" if len(points) < 30 else None, label=key)
        if all(r[k] > 0 for r in history for k in r if k not in _NOT_LOSSES):
            axes[0].set_yscale("log")
        axes[0].legend()
        val = [(r["step"], r["val_psnr"]) for r in history if "val_psnr" in r]
        if val:
            axes[1].plot(*zip(*val), marker="o")
    axes[0].set_title(f"{title}: losses")
    axes[1].set_title("validation Y-PSNR (dB)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _draw_row(axes, zooms, images: Mapping[str, np.ndarray], scores, crop, name: str | None) -> None:
    from matplotlib.patches import Rectangle

    top, left, size = crop
    for k, (label, img) in enumerate(images.items()):
        ax, zoom = axes[k], zooms[k]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.add_patch(Rectangle((left, top), size, size, fill=False, edgecolor="yellow", linewidth=1.5))
        text = f"{name}: {label}" if name and k == 0 else label
        if scores and label in scores:
            text += f"\n{scores[label][0]:.2f} dB / {scores[label][1]:.4f}"
        ax.set_title(text, fontsize=9)
        zoom.imshow(img[top: top + size, left: left + size], interpolation="nearest")
        for a in (ax, zoom):
            a.set_xticks([])
            a.set_yticks([])


def _default_crop(ref: np.ndarray) -> tuple[int, int, int]:
    size = max(16, min(ref.shape[:2]) // 4)
    return (*most_detailed_crop(ref, size), size)


def comparison_grid(rows: Sequence[Mapping], path=None, title: str | None = None):
    """One row per image (``{"name", "images": {label: uint8 RGB, ..., "HR": hr}, "scores": {label: (psnr,
    ssim)}}``, e.g. from :func:`sr_utils.evaluation.split_outputs`), each with a zoomed crop row below it (the
    most detailed square of the last image, by default the HR). Returns the figure."""
    from matplotlib.figure import Figure

    n_cols = max(len(r["images"]) for r in rows)
    fig = Figure(figsize=(3.0 * n_cols, 6.0 * len(rows)))
    axes = fig.subplots(2 * len(rows), n_cols, squeeze=False)
    for i, row in enumerate(rows):
        images = row["images"]
        crop = row.get("crop") or _default_crop(list(images.values())[-1])
        _draw_row(axes[2 * i], axes[2 * i + 1], images, row.get("scores"), crop, row.get("name"))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return fig


def comparison_figure(images: Mapping[str, np.ndarray], scores: Mapping[str, tuple[float, float]] | None = None,
                      crop: tuple[int, int, int] | None = None, path=None, title: str | None = None):
    """One image, several ways, side by side (``{"bicubic": sr, ..., "HR": hr}``, same size, uint8 RGB) with a
    zoomed crop row. ``scores`` maps labels to (PSNR, SSIM) shown under each image; ``crop`` is (top, left, size)
    in HR pixels (default: the most detailed square of the last image). Returns the figure."""
    return comparison_grid([{"images": images, "scores": scores, "crop": crop}], path=path, title=title)
