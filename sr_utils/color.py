"""Colour conversion and the image conventions the notebooks and models need.

Conventions used throughout the kit (say which one a tensor is in, always):

=====================  ==============================================  ===============================
name                   what it is                                      used by
=====================  ==============================================  ===============================
``"pil"``              ``PIL.Image`` in mode RGB                        loading and saving files
``"[0, 255]"``         float tensor ``(N, 3, H, W)`` / ``(3, H, W)``    metrics on tensors
``"[0, 1]"``           float tensor, RGB                                LR input of SRResNet
``"[-1, 1]"``          float tensor, RGB                                SRResNet's tanh output, HR target
``"imagenet-norm"``    ``([0, 1] - mean) / std`` per channel, RGB       VGG19 input
``"y-channel"``        BT.601 luma in [16, 235], ``(N, H, W)`` float    PSNR/SSIM
=====================  ==============================================  ===============================

Luma is MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, "studio swing"):
``Y = 16 + (65.481 R + 128.553 G + 24.966 B)`` with R, G, B in [0, 1].

No tensor is built at import time: constants are made on the caller's device and dtype at call time.
"""
from __future__ import annotations

import numpy as np

from .i18n import tr

__all__ = [
    "rgb_to_y", "rgb_to_ycbcr", "ycbcr_to_rgb", "IMAGENET_MEAN", "IMAGENET_STD",
    "pil_to_tensor", "tensor_to_pil", "to_uint8", "convert_image", "load_rgb",
]

# MATLAB rgb2ycbcr for R, G, B in [0, 1] -> Y, Cb, Cr in [0, 255]-scale units (offsets 16, 128, 128).
_YCBCR_MATRIX = np.array([[65.481, 128.553, 24.966],
                          [-37.797, -74.203, 112.0],
                          [112.0, -93.786, -18.214]], dtype=np.float64)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)

#: ImageNet statistics of torchvision's pretrained VGG19 (RGB, for inputs in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _is_tensor(x) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _check_rgb_numpy(img: np.ndarray, fn: str) -> None:
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(tr("{fn}: expected an (H, W, 3) RGB array, got shape {shape}", fn=fn, shape=img.shape))
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        raise TypeError(tr("{fn}: expected uint8 (0..255) or float ([0, 1]) input, got {dtype}", fn=fn,
                           dtype=img.dtype))


def rgb_to_y(img):
    """BT.601 luma of an RGB image, exactly MATLAB ``rgb2ycbcr(img)(:, :, 1)`` before its final rounding.

    * numpy uint8 ``(H, W, 3)`` in 0..255 -> float64 ``(H, W)`` in [16, 235], not rounded
      (``np.round``-half-away of it, see :func:`to_uint8`, is MATLAB's uint8 ``rgb2ycbcr``).
    * numpy float ``(H, W, 3)`` in [0, 1] -> float64 ``(H, W)`` in [16/255, 235/255].
    * torch float ``(..., 3, H, W)`` in [0, 1] -> ``(..., H, W)`` in [16/255, 235/255], same dtype/device.
    """
    if _is_tensor(img):
        if img.dim() < 3 or img.shape[-3] != 3:
            raise ValueError(tr("rgb_to_y: expected a (..., 3, H, W) tensor, got shape {shape}",
                                shape=tuple(img.shape)))
        if not img.is_floating_point():
            raise TypeError(tr("rgb_to_y: expected a float tensor in [0, 1], got {dtype}", dtype=img.dtype))
        r, g, b = img.unbind(-3)
        return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    img = np.asarray(img)
    _check_rgb_numpy(img, "rgb_to_y")
    return _linear_combination(img, 0)


def _linear_combination(img: np.ndarray, row: int) -> np.ndarray:
    """One output channel of MATLAB ``rgb2ycbcr``, in MATLAB's own operation order (``imlincomb``):
    ``(T[row, 0] / 255) * R + (T[row, 1] / 255) * G + (T[row, 2] / 255) * B + offset``, float64.
    The order matters: Y is later rounded to integer levels, and ties must fall as in MATLAB."""
    t = _YCBCR_MATRIX[row] / 255.0
    offset = _YCBCR_OFFSET[row] if img.dtype == np.uint8 else _YCBCR_OFFSET[row] / 255.0
    x = img.astype(np.float64)
    return t[0] * x[..., 0] + t[1] * x[..., 1] + t[2] * x[..., 2] + offset


def rgb_to_ycbcr(img) -> np.ndarray:
    """RGB -> YCbCr (BT.601, MATLAB ``rgb2ycbcr``), numpy ``(H, W, 3)``.

    uint8 0..255 in -> float64 in [16, 235] (Y) / [16, 240] (Cb, Cr), not rounded.
    float [0, 1] in -> float64 in the same ranges divided by 255.
    """
    img = np.asarray(img)
    _check_rgb_numpy(img, "rgb_to_ycbcr")
    return np.stack([_linear_combination(img, row) for row in range(3)], axis=-1)


def ycbcr_to_rgb(img, dtype=None) -> np.ndarray:
    """YCbCr -> RGB, the inverse of :func:`rgb_to_ycbcr` (MATLAB ``ycbcr2rgb``), numpy ``(H, W, 3)``.

    ``dtype=np.uint8``: input in 0..255 units (as from a uint8 image) -> uint8 RGB, rounded and clipped.
    Otherwise: input in [0, 1] units -> float64 RGB in [0, 1] (not clipped).
    """
    x = np.asarray(img, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(tr("ycbcr_to_rgb: expected an (H, W, 3) array, got shape {shape}", shape=x.shape))
    inv = np.linalg.inv(_YCBCR_MATRIX)
    if dtype == np.uint8:
        return to_uint8((x - _YCBCR_OFFSET) @ inv.T * 255.0)
    return (x * 255.0 - _YCBCR_OFFSET) @ inv.T


def to_uint8(x) -> np.ndarray:
    """Quantise values in 0..255 to uint8 as MATLAB's ``uint8()``: round half away from zero, clip."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    r = np.floor(x)
    r = r + ((x - r) >= 0.5)
    return np.clip(r, 0, 255).astype(np.uint8)


def load_rgb(path) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` uint8 RGB array.

    Greyscale (L, I;16 scaled to 8 bit), palette (P) and RGBA/LA images are converted explicitly:
    grey is replicated to 3 channels, palettes are expanded, alpha is dropped (not composited).
    Raises ``FileNotFoundError`` or ``ValueError`` naming the file when it is missing or unreadable.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64)
                a = to_uint8(a / (65535.0 if im.mode.startswith("I;16") else max(a.max(), 1.0)) * 255.0)
                return np.repeat(a[:, :, None], 3, axis=2)
            if im.mode != "RGB":
                im = im.convert("RGBA" if im.mode == "P" and "transparency" in im.info else im.mode)
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise FileNotFoundError(tr("image file not found: {path}", path=path)) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(tr("cannot read image {path}: {error} (truncated or corrupt file?)", path=path,
                            error=e)) from e


# ---------------------------------------------------------------------------------------------------------
# Tensor conventions (torch imported lazily)
# ---------------------------------------------------------------------------------------------------------
def pil_to_tensor(img):
    """``PIL.Image`` (any mode) -> float32 tensor ``(3, H, W)`` in [0, 1], RGB (modes converted as in :func:`load_rgb`)."""
    import torch

    if img.mode != "RGB":
        img = img.convert("RGBA" if img.mode == "P" and "transparency" in img.info else img.mode).convert("RGB")
    a = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div_(255.0)


def tensor_to_pil(t):
    """Float tensor ``(3, H, W)`` in [0, 1] (RGB) -> ``PIL.Image`` RGB; values clipped, rounded half away from zero."""
    from PIL import Image

    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(tr("tensor_to_pil: expected a (3, H, W) tensor in [0, 1], got shape {shape}",
                            shape=tuple(t.shape)))
    a = t.detach().to("cpu", dtype=t.dtype if t.is_floating_point() else None).double().permute(1, 2, 0).numpy()
    return Image.fromarray(to_uint8(a * 255.0), mode="RGB")


def _stats(x, values):
    return x.new_tensor(values).view(*([1] * (x.dim() - 3)), 3, 1, 1)


_SOURCES = ("pil", "[0, 1]", "[-1, 1]")
_TARGETS = ("pil", "[0, 255]", "[0, 1]", "[-1, 1]", "imagenet-norm", "y-channel")


def convert_image(img, source: str, target: str):
    """Convert an image between the kit's conventions (the tutorial's ``convert_image``, done cleanly).

    Args:
        img: ``PIL.Image`` when ``source == "pil"``; otherwise a float tensor ``(3, H, W)`` or ``(N, 3, H, W)``, RGB.
        source: ``"pil"``, ``"[0, 1]"`` or ``"[-1, 1]"``.
        target: ``"pil"``, ``"[0, 255]"``, ``"[0, 1]"``, ``"[-1, 1]"``, ``"imagenet-norm"`` or ``"y-channel"``
            (BT.601 luma in [16, 235], ``(H, W)`` / ``(N, H, W)``, unrounded; evaluation uses uint8 images,
            see :func:`sr_utils.metrics.evaluate_sr`).

    ``[-1, 1]`` inputs (a tanh output) are clamped to [-1, 1] first; nothing else is clamped.
    """
    if source not in _SOURCES:
        raise ValueError(tr("convert_image: source must be one of {known}, got {value!r}", known=_SOURCES,
                            value=source))
    if target not in _TARGETS:
        raise ValueError(tr("convert_image: target must be one of {known}, got {value!r}", known=_TARGETS,
                            value=target))
    if source == "pil":
        x = pil_to_tensor(img)
    else:
        if not _is_tensor(img) or not img.is_floating_point() or img.dim() not in (3, 4) or img.shape[-3] != 3:
            raise ValueError(tr("convert_image: source {source!r} needs a float tensor (3, H, W) or (N, 3, H, W), "
                                "got {got}", source=source, got=getattr(img, "shape", type(img).__name__)))
        x = (img.clamp(-1, 1) + 1.0) / 2.0 if source == "[-1, 1]" else img
    if target == "pil":
        if x.dim() == 4:
            return [tensor_to_pil(t) for t in x]
        return tensor_to_pil(x)
    if target == "[0, 1]":
        return x
    if target == "[0, 255]":
        return x * 255.0
    if target == "[-1, 1]":
        return x * 2.0 - 1.0
    if target == "imagenet-norm":
        return (x - _stats(x, IMAGENET_MEAN)) / _stats(x, IMAGENET_STD)
    return rgb_to_y(x) * 255.0  # y-channel
