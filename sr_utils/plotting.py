"""Every figure of the kit: training curves and side-by-side SR comparisons with zoomed crops.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot (no global state, any backend): a notebook
shows one when a cell ends with it; ``path`` also saves it as PNG.

Titles, axis labels and legends are in the student's language (:mod:`sr_utils.i18n`) when matplotlib can draw it:
Chinese needs a font with Chinese glyphs (:data:`CJK_FONTS`, the usual ones of Windows, macOS and Linux); without
one, figures stay in English rather than show empty boxes.
"""
from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .i18n import current_language, tr

__all__ = ["plot_training", "comparison_figure", "comparison_grid", "most_detailed_crop", "CJK_FONTS", "cjk_font",
           "figure_language", "loss_label", "method_label"]

#: Fonts with Chinese glyphs, the first installed one draws Chinese text (Latin text stays in DejaVu Sans).
CJK_FONTS = ("Microsoft YaHei", "SimHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Noto Sans CJK SC",
             "Source Han Sans SC", "Noto Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Sarasa Gothic SC",
             "Arial Unicode MS")

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


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first of :data:`CJK_FONTS` that matplotlib knows on this machine, or ``None``."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def figure_language() -> str:
    """The language figures are labelled in: the student's (:func:`sr_utils.i18n.current_language`), but English
    when that is Chinese and no font can draw it (:func:`cjk_font`)."""
    language = current_language()
    return language if language == "en" or cjk_font() else "en"


def _fonts(language: str):
    """A context in which new figure text draws Latin with DejaVu Sans and Chinese with :func:`cjk_font`."""
    if language == "en":
        return nullcontext()
    from matplotlib import rc_context

    return rc_context({"font.family": ["DejaVu Sans", cjk_font()]})


def loss_label(key: str, language: str | None = None) -> str:
    """A legend entry: the name of the loss logged as ``key`` (``content``, ``adversarial``...; the key itself in
    English and for keys it does not know)."""
    labels = {"mse": tr("mse", language=language), "l1": tr("l1", language=language),
              "content": tr("content", language=language), "adversarial": tr("adversarial", language=language),
              "generator": tr("generator", language=language),
              "discriminator": tr("discriminator", language=language)}
    return labels.get(key, key)


def method_label(label: str, language: str | None = None) -> str:
    """How a figure names the image ``label`` of a comparison: ``bicubic``, ``HR`` and the "(stand-in)" of
    :func:`sr_utils.trained.stand_in_label` in the student's language, model names (``SRResNet``...) as they are."""
    if label.endswith(" (stand-in)"):
        return tr("{model} (stand-in)", language=language, model=label[: -len(" (stand-in)")])
    labels = {"bicubic": tr("bicubic", language=language), "HR": tr("HR", language=language)}
    return labels.get(label, label)


def _save(fig, path) -> None:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)


def plot_training(history: Sequence[Mapping[str, float]], title: str | None = None, path=None):
    """Losses (log scale) and validation Y-PSNR against the iteration, from the trainer's log rows
    (``{"step", <loss>..., "lr", "val_psnr"?}``, see :func:`sr_utils.trainer.train`). ``title`` defaults to
    "training". Returns the figure."""
    language = figure_language()
    with _fonts(language):
        return _plot_training(history, title or tr("training", language=language), path, language)


def _plot_training(history, title: str, path, language: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    if history:
        # rows may differ in their losses (SRGAN's generator pre-training logs only the pixel loss)
        for key in dict.fromkeys(k for r in history for k in r if k not in _NOT_LOSSES):
            points = [(r["step"], r[key]) for r in history if key in r]
            axes[0].plot(*zip(*points), marker="o" if len(points) < 30 else None, label=loss_label(key, language))
        if all(r[k] > 0 for r in history for k in r if k not in _NOT_LOSSES):
            axes[0].set_yscale("log")
        axes[0].legend()
        val = [(r["step"], r["val_psnr"]) for r in history if "val_psnr" in r]
        if val:
            axes[1].plot(*zip(*val), marker="o")
    axes[0].set_title(tr("{title}: losses", language=language, title=title))
    axes[1].set_title(tr("validation Y-PSNR (dB)", language=language))
    for ax in axes:
        ax.set_xlabel(tr("iteration", language=language))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return fig


def _draw_row(axes, zooms, images: Mapping[str, np.ndarray], scores, crop, name: str | None, language: str) -> None:
    from matplotlib.patches import Rectangle

    top, left, size = crop
    for k, (label, img) in enumerate(images.items()):
        ax, zoom = axes[k], zooms[k]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.add_patch(Rectangle((left, top), size, size, fill=False, edgecolor="yellow", linewidth=1.5))
        shown = method_label(label, language)
        text = tr("{name}: {label}", language=language, name=name, label=shown) if name and k == 0 else shown
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
    language = figure_language()
    with _fonts(language):
        return _comparison_grid(rows, path, title, language)


def _comparison_grid(rows, path, title, language: str):
    from matplotlib.figure import Figure

    n_cols = max(len(r["images"]) for r in rows)
    fig = Figure(figsize=(3.0 * n_cols, 6.0 * len(rows)))
    axes = fig.subplots(2 * len(rows), n_cols, squeeze=False)
    for i, row in enumerate(rows):
        images = row["images"]
        crop = row.get("crop") or _default_crop(list(images.values())[-1])
        _draw_row(axes[2 * i], axes[2 * i + 1], images, row.get("scores"), crop, row.get("name"), language)
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
