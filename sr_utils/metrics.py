"""PSNR and SSIM as the published SR tables compute them.

The kit's evaluation convention ("MATLAB uint8 Y", called A3 in ``../shared/data/benchmark/README.md``):

1. the SR image is quantised to uint8 first (round half away from zero, clip to 0..255);
2. the HR image is cropped top-left to the SR size when it is larger (an HR that is not a multiple of the scale);
3. both are converted to luma as MATLAB's ``rgb2ycbcr`` does on uint8 images: BT.601
   ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``, rounded to integer levels; a single-channel image is its own Y;
4. ``scale`` pixels are shaved from every border;
5. PSNR = ``10 log10(255^2 / MSE)`` in float64; SSIM = Wang et al.'s ``ssim_index`` (11x11 Gaussian window,
   sigma 1.5, K = (0.01, 0.03), L = 255, mean over the 'valid' region).

Bicubic x4 under this convention reproduces MATLAB's per-image numbers to 1e-4 dB (Set5 28.4177 / 0.8101,
Set14 25.9933 / 0.7023); the published tables' means (Set5 28.42 / 0.8104) come from a float-resize variant,
also reproduced by the tests. BasicSR/RCAN keep Y unrounded: about +0.01 dB.

SSIM is scikit-image's ``structural_similarity`` with ``gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255``: the same formula as ``ssim_index``, checked against MATLAB's
numbers to 1e-6 by the tests (not the tutorial's 7x7 uniform window, whose numbers are not comparable).
"""
from __future__ import annotations

import math

import numpy as np

from .color import rgb_to_y, to_uint8
from .i18n import tr

__all__ = ["psnr", "ssim", "evaluate_sr", "to_y_uint8_levels", "CONVENTION", "convention"]

#: One line describing the evaluation convention, printed under every table the kit writes.
CONVENTION = ("Y channel (BT.601, MATLAB rgb2ycbcr on uint8, rounded), SR quantised to uint8, "
              "{scale} px shaved per border; PSNR peak 255; SSIM 11x11 Gaussian (sigma 1.5), 'valid'")


def convention(scale: int) -> str:
    """:data:`CONVENTION` for ``scale``, in the student's language (:mod:`sr_utils.i18n`)."""
    return tr(CONVENTION, scale=scale)


def _prepare_pair(a, b, crop_border: int, fn: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(tr("{fn}: expects 2-D (H, W) arrays in 0..255 (e.g. Y channels), got {a} and {b}", fn=fn,
                            a=a.shape, b=b.shape))
    if a.shape != b.shape:
        raise ValueError(tr("{fn}: images differ in size: {a} vs {b}", fn=fn, a=a.shape, b=b.shape))
    if crop_border < 0:
        raise ValueError(tr("{fn}: crop_border must be >= 0, got {crop_border}", fn=fn, crop_border=crop_border))
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.size == 0:
        raise ValueError(tr("{fn}: nothing left after shaving {crop_border} px from a {shape} image", fn=fn,
                            crop_border=crop_border, shape=a.shape))
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a, b, crop_border: int = 0) -> float:
    """PSNR in dB of two ``(H, W)`` arrays in 0..255 (uint8 or float), peak 255, float64; ``inf`` when equal."""
    a, b = _prepare_pair(a, b, crop_border, "psnr")
    mse = np.mean((a - b) ** 2)
    return math.inf if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim(a, b, crop_border: int = 0) -> float:
    """SSIM of two ``(H, W)`` arrays in 0..255, exactly MATLAB ``ssim_index`` (11x11 Gaussian sigma 1.5, 'valid')."""
    from skimage.metrics import structural_similarity

    a, b = _prepare_pair(a, b, crop_border, "ssim")
    if min(a.shape) < 11:
        raise ValueError(tr("ssim: needs at least 11x11 pixels after shaving, got {shape}", shape=a.shape))
    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=255.0, K1=0.01, K2=0.03))


def to_y_uint8_levels(img) -> np.ndarray:
    """Luma at integer levels as MATLAB ``rgb2ycbcr`` gives for a uint8 image: float64 ``(H, W)`` in [16, 235].

    ``(H, W, 3)`` RGB or ``(H, W)`` / ``(H, W, 1)`` grey, uint8 or float in 0..255 (quantised to uint8 first).
    A single-channel image is its own Y.
    """
    img = to_uint8(np.asarray(img))
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.ndim == 3 and img.shape[2] == 3:
        return to_uint8(rgb_to_y(img)).astype(np.float64)
    raise ValueError(tr("expected an (H, W, 3) RGB or (H, W) grey image, got shape {shape}", shape=img.shape))


def evaluate_sr(sr, hr, scale: int) -> tuple[float, float]:
    """(PSNR, SSIM) of a super-resolved image against its ground truth, with the kit's convention (module doc).

    Args:
        sr: ``(H, W, 3)`` RGB or ``(H, W)`` grey, uint8 or float in 0..255 (rounded half away from zero and
            clipped to uint8 first), or a ``PIL.Image``.
        hr: same layouts; at least as large as ``sr`` (cropped top-left to the SR size).
        scale: the SR factor; that many pixels are shaved from every border.
    """
    sr = np.asarray(sr)
    hr = np.asarray(hr)
    if sr.ndim != hr.ndim or (sr.ndim == 3 and sr.shape[2] != hr.shape[2]):
        raise ValueError(tr("evaluate_sr: SR {sr} and HR {hr} differ in channels", sr=sr.shape, hr=hr.shape))
    h, w = sr.shape[:2]
    if hr.shape[0] < h or hr.shape[1] < w or hr.shape[0] - h >= scale or hr.shape[1] - w >= scale:
        raise ValueError(tr("evaluate_sr: SR {sr_w}x{sr_h} does not match HR {hr_w}x{hr_h} at x{scale}: SR must be "
                            "HR cropped to a multiple of {scale}", sr_w=w, sr_h=h, hr_w=hr.shape[1], hr_h=hr.shape[0],
                            scale=scale))
    y_sr = to_y_uint8_levels(sr)
    y_hr = to_y_uint8_levels(hr[:h, :w])
    return psnr(y_sr, y_hr, crop_border=scale), ssim(y_sr, y_hr, crop_border=scale)
