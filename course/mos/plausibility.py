"""Is a submitted super-resolved image what a ×4 model could have made from its LR image?

Two checks, on the kit's PSNR convention (:func:`sr_utils.metrics.evaluate_sr`: Y channel, ``scale`` px shaved):

- **Too close to the original.** The HR originals themselves, or a "generator" that returns them, would score near
  full marks in the MOS study. The best published ×4 models gain about 5 dB over bicubic on Set5 on average and
  under 9 dB on any single Set5 image; an image more than ``max_gain_db`` (10 dB) above the bicubic upscale of the
  same LR image, or above ``max_psnr_db`` (45 dB) whatever bicubic gives, is refused: no model reaches it.
- **Not made from its LR image.** Downscaled back by ``scale`` (MATLAB bicubic), an honest output lands close to its
  LR image (typically over 30 dB, even for a weak model). Under ``min_lr_psnr_db`` (20 dB) it was made from
  something else (another photo, an edited image) and is refused.

A refusal names the image and the numbers; the instructor sees it in ``collection.csv`` and decides.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PlausibilityConfig", "implausible"]


@dataclass(frozen=True)
class PlausibilityConfig:
    max_gain_db: float = 10.0
    max_psnr_db: float = 45.0
    min_lr_psnr_db: float = 20.0


def implausible(sr: np.ndarray, lr: np.ndarray, hr: np.ndarray, bicubic_up: np.ndarray, scale: int,
                config: PlausibilityConfig = PlausibilityConfig()) -> str | None:
    """Why ``sr`` (``(H, W, 3)`` uint8) cannot be an honest ×``scale`` output of ``lr`` (``(h, w, 3)`` uint8),
    given the ``hr`` original and the ``bicubic_up`` upscale (both ``(H, W, 3)`` uint8); ``None`` when it can."""
    from sr_utils.imresize import imresize
    from sr_utils.metrics import psnr, to_y_uint8_levels

    def y_psnr(a, b, border):
        return psnr(to_y_uint8_levels(a), to_y_uint8_levels(b), border)

    p = y_psnr(sr, hr, scale)
    base = y_psnr(bicubic_up, hr, scale)
    if math.isinf(p) or p >= min(base + config.max_gain_db, config.max_psnr_db):
        shown = "identical to" if math.isinf(p) else f"{p:.1f} dB from"
        return (f"is {shown} the HR original (bicubic: {base:.1f} dB; no published x{scale} model gains more than "
                f"{config.max_gain_db:g} dB over bicubic): refused, check by hand")
    back = imresize(sr, 1 / scale)
    if back.shape != lr.shape:
        return None  # sizes were checked before; nothing more to say
    lp = y_psnr(back, lr, 0)
    if lp < config.min_lr_psnr_db:
        return (f"is not consistent with its LR image (downscaled back: {lp:.1f} dB against the LR image, an honest "
                f"output gives over {config.min_lr_psnr_db:g}): refused, check by hand")
    return None
