"""Evaluation helpers: modcrop, the bicubic baseline, and result tables."""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from .imresize import imresize
from .metrics import CONVENTION, evaluate_sr

__all__ = ["modcrop", "bicubic_baseline", "markdown_table"]


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``(H, W[, C])`` top-left to a multiple of ``scale`` (as the benchmark packs do)."""
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"modcrop: image {w}x{h} is smaller than the scale {scale}")
    return img[: h - h % scale, : w - w % scale]


def bicubic_baseline(hr_images: Mapping[str, np.ndarray], scale: int = 4, edge: str = "symmetric",
                     progress: bool = True) -> list[dict]:
    """Per-image (PSNR, SSIM) of bicubic upscaling: LR = ``imresize(HR, 1/scale)``, SR = ``imresize(LR, scale)``.

    ``hr_images`` maps names to ``(H, W, 3)`` uint8 RGB; each is modcropped first. Returns one dict per
    image (``image``, ``psnr``, ``ssim``) in the kit's convention (:mod:`sr_utils.metrics`).
    """
    from tqdm.auto import tqdm

    rows = []
    for name, hr in tqdm(hr_images.items(), desc=f"bicubic x{scale}", disable=not progress, leave=False):
        hr = modcrop(hr, scale)
        sr = imresize(imresize(hr, 1 / scale, edge=edge), scale, edge=edge)
        p, s = evaluate_sr(sr, hr, scale)
        rows.append({"image": name, "psnr": p, "ssim": s})
    return rows


def markdown_table(rows: Sequence[Mapping], columns: Iterable[str], mean_row: bool = True,
                   caption: str | None = None) -> str:
    """A Markdown table of ``rows`` (PSNR with 2 decimals, SSIM with 4), optionally with a mean row."""
    columns = list(columns)
    fmt = {"psnr": "{:.2f}", "ssim": "{:.4f}"}

    def cell(col, value):
        return fmt.get(col, "{}").format(value) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(c, r[c]) for c in columns) + " |" for r in rows]
    if mean_row and rows:
        mean = {c: float(np.mean([r[c] for r in rows])) if isinstance(rows[0][c], float) else "" for c in columns}
        mean[columns[0]] = "**mean**"
        lines.append("| " + " | ".join(cell(c, mean[c]) for c in columns) + " |")
    if caption:
        lines += ["", caption]
    return "\n".join(lines)


def convention_note(scale: int) -> str:
    """The evaluation convention line printed under every table."""
    return "Evaluation: " + CONVENTION.format(scale=scale) + "."
