"""MATLAB-exact ``imresize``.

Every low-resolution image of DIV2K and of the Set5/Set14/B100/Urban100 packs was made with MATLAB's
``imresize(HR, 1/4, 'bicubic')``; an LR made any other way (PIL, OpenCV, ``F.interpolate``) shifts every
PSNR by up to several dB. This module reproduces MATLAB bit for bit on uint8 images:

* Keys' cubic kernel (a = -0.5), or the triangle kernel for ``method="bilinear"``;
* when downscaling, the kernel is widened by ``1 / scale`` (antialiasing);
* ``u = x / scale + 0.5 * (1 - 1 / scale)``, ``left = floor(u - width / 2)``, ``ceil(width) + 2`` taps,
  each row of weights normalised to sum 1 and all-zero tap columns dropped;
* output size ``ceil(scale * size)``; the dimension with the smaller scale is resized first, height first
  on ties;
* uint8 images stay uint8 between the two 1-D passes: each pass rounds half away from zero and clips to
  0..255 (MATLAB's ``uint8()``); accumulation is float64, taps summed in order;
* source indices past the border are mirrored (``edge="symmetric"``: ``[1..n, n..1]``, newer MATLAB, the
  DIV2K/EDSR packs) or clamped (``edge="replicate"``: older MATLAB, the SelfExSR/RCAN packs).

Float numpy input is computed in float64 with no rounding and no clipping. Torch float tensors
``(C, H, W)`` or ``(N, C, H, W)`` go through the same maths on their own device (batched).

The numpy paths run in compiled loops (numba, parallel over rows); see ``benchmarks/imresize_bench.py``.
"""
from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Sequence

import numpy as np

__all__ = ["imresize", "modcrop", "contributions", "output_size"]

_METHODS = {"bicubic": 4.0, "bilinear": 2.0}  # kernel name -> support width at scale 1
_EDGES = ("symmetric", "replicate")


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((1 < ax) & (ax <= 2))


def _triangle(x: np.ndarray) -> np.ndarray:
    """Triangle kernel (MATLAB ``triangle``, used by ``bilinear``)."""
    return (x + 1) * ((-1 <= x) & (x < 0)) + (1 - x) * ((0 <= x) & (x <= 1))


def output_size(in_size: int, scale: float) -> int:
    """MATLAB's output length for one dimension: ``ceil(scale * in_size)``."""
    return int(math.ceil(scale * in_size))


@lru_cache(maxsize=256)
def contributions(in_len: int, out_len: int, scale: float, method: str = "bicubic",
                  edge: str = "symmetric") -> tuple[np.ndarray, np.ndarray]:
    """Weights and source indices of one 1-D resize, exactly as MATLAB's ``contributions``.

    Returns ``(weights, indices)``, both ``(out_len, P)``: ``weights`` float64 with rows summing to 1,
    ``indices`` int64, 0-based into the input and already mapped inside it by the ``edge`` rule.
    Output ``i`` is ``sum_k weights[i, k] * input[indices[i, k]]`` summed over ``k`` in order.
    The arrays are cached and read-only.
    """
    kernel = _cubic if method == "bicubic" else _triangle
    width = _METHODS[method]
    if scale < 1:  # antialiasing: stretch the kernel by 1/scale
        def h(x):
            return scale * kernel(scale * x)
        width = width / scale
    else:
        h = kernel
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates, as MATLAB
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based source coordinates
    weights = h(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)
    idx0 = idx.astype(np.int64) - 1
    if edge == "symmetric":  # MATLAB: aux = [1:n, n:-1:1]; idx = aux(mod(idx-1, 2n) + 1)
        aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
        idx0 = aux[np.mod(idx0, 2 * in_len)]
    else:  # replicate: clamp to [0, n-1]
        idx0 = np.clip(idx0, 0, in_len - 1)
    keep = np.any(weights != 0, axis=0)  # MATLAB drops all-zero tap columns
    weights = np.ascontiguousarray(weights[:, keep])
    idx0 = np.ascontiguousarray(idx0[:, keep])
    weights.setflags(write=False)
    idx0.setflags(write=False)
    return weights, idx0


# ----------------------------------------------------------------------------------------------------------
# Compiled numpy kernels (numba). Compiled lazily on first use, cached on disk next to this module.
# ----------------------------------------------------------------------------------------------------------
_kernels = None
_kernel_lock = threading.Lock()  # numba's default threading layer must not be entered by two threads at once


def _get_kernels():
    global _kernels
    if _kernels is None:
        import numba

        @numba.njit(parallel=True, cache=True, fastmath=False)
        def resize_rows(src, weights, indices, out, quantize):  # pragma: no cover - compiled
            # src (H, L) -> out (H_out, L), L = W * C: out[o] = sum_k w[o, k] * src[idx[o, k]]
            n_out, taps = weights.shape
            length = src.shape[1]
            for o in numba.prange(n_out):
                acc = np.zeros(length, dtype=np.float64)
                for k in range(taps):
                    w = weights[o, k]
                    row = src[indices[o, k]]
                    for j in range(length):
                        acc[j] += w * row[j]
                if quantize:
                    for j in range(length):
                        v = acc[j]
                        r = math.floor(v)
                        if v - r >= 0.5:
                            r += 1.0
                        out[o, j] = min(max(r, 0.0), 255.0)
                else:
                    for j in range(length):
                        out[o, j] = acc[j]

        @numba.njit(parallel=True, cache=True, fastmath=False)
        def resize_cols(src, weights, indices, out, quantize):  # pragma: no cover - compiled
            # src (H, W, C) -> out (H, W_out, C): out[:, o] = sum_k w[o, k] * src[:, idx[o, k]]
            n_out, taps = weights.shape
            height, chans = src.shape[0], src.shape[2]
            for i in numba.prange(height):
                for o in range(n_out):
                    for c in range(chans):
                        v = 0.0
                        for k in range(taps):
                            v += weights[o, k] * src[i, indices[o, k], c]
                        if quantize:
                            r = math.floor(v)
                            if v - r >= 0.5:
                                r += 1.0
                            v = min(max(r, 0.0), 255.0)
                        out[i, o, c] = v

        _kernels = (resize_rows, resize_cols)
    return _kernels


def compile_kernels() -> None:
    """Compile (or load from numba's on-disk cache) the kernels for every input dtype ``imresize`` accepts on
    numpy arrays (uint8, float32, float64; float16 is computed as float64), downscaling and upscaling.

    Call it once where the cache can be written (``$NUMBA_CACHE_DIR``, else next to this module) so that later
    processes only load the compiled code. The grader does this for its sandboxes, whose code folders are
    read-only (course/sandbox/)."""
    for dtype in (np.uint8, np.float32, np.float64):
        for scale in (1 / 4, 4):
            imresize(np.zeros((8, 8, 3), dtype=dtype), scale)


def prepare_compiler() -> None:
    """Set up numba's CPU target (its typing and lowering registries), the first step of every process that compiles
    or loads a kernel (about 0.5 s of CPU; nothing the second time). It starts no thread of its own (loading the
    kernels does: numba's OpenMP threads); it loads scipy's BLAS, whose threads, like numpy's, make themselves again
    in a forked child. So a process that forks can do it once for all its children (the grader's fork server does),
    which then load :func:`compile_kernels`'s kernels from the cache in a few hundredths of a second."""
    from numba.core.registry import cpu_target

    cpu_target.typing_context.refresh()
    cpu_target.target_context.refresh()


def _resize_axis_numpy(img: np.ndarray, axis: int, out_len: int, scale: float, method: str,
                       edge: str, out_dtype) -> np.ndarray:
    """One 1-D pass over axis 0 or 1 of an ``(H, W, C)`` array."""
    weights, indices = contributions(img.shape[axis], out_len, scale, method, edge)
    resize_rows, resize_cols = _get_kernels()
    shape = list(img.shape)
    shape[axis] = out_len
    out = np.empty(shape, dtype=out_dtype)
    quantize = out_dtype == np.uint8
    with _kernel_lock:
        if axis == 0:  # rows of (H, W*C): contiguous, vectorised inner loop
            resize_rows(img.reshape(img.shape[0], -1), weights, indices, out.reshape(out_len, -1), quantize)
        else:
            resize_cols(img, weights, indices, out, quantize)
    return out


def _resize_axis_torch(x, axis: int, out_len: int, scale: float, method: str, edge: str):
    """One 1-D pass over ``axis`` (-2 = height, -1 = width) of a float64 tensor ``(N, C, H, W)``."""
    import torch

    weights, indices = contributions(x.shape[axis], out_len, scale, method, edge)
    w = torch.tensor(weights, dtype=torch.float64, device=x.device)
    idx = torch.tensor(indices, dtype=torch.int64, device=x.device)
    if axis == -2:
        g = x[..., idx.reshape(-1), :].reshape(*x.shape[:-2], out_len, idx.shape[1], x.shape[-1])
        return torch.einsum("nchkw,hk->nchw", g, w)
    g = x[..., idx.reshape(-1)].reshape(*x.shape[:-1], out_len, idx.shape[1])
    return torch.einsum("nchwk,wk->nchw", g, w)


def _plan(in_hw: Sequence[int], scale, output_shape) -> list[tuple[int, int, float]]:
    """Resolve scale/output_shape into MATLAB's ordered list of passes ``(axis, out_len, scale)``."""
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize: give exactly one of `scale` and `output_shape` "
                         f"(got scale={scale!r}, output_shape={output_shape!r})")
    h, w = in_hw
    if h < 1 or w < 1:
        raise ValueError(f"imresize: input image is empty ({h}x{w}, HxW)")
    if scale is not None:
        if isinstance(scale, (tuple, list)):
            if len(scale) != 2:
                raise ValueError(f"imresize: `scale` must be a number or (scale_h, scale_w), got {scale!r}")
            sh, sw = float(scale[0]), float(scale[1])
        else:
            sh = sw = float(scale)
        if not (sh > 0 and sw > 0 and math.isfinite(sh) and math.isfinite(sw)):
            raise ValueError(f"imresize: `scale` must be positive and finite, got {scale!r}")
        oh, ow = output_size(h, sh), output_size(w, sw)
    else:
        if len(output_shape) != 2:
            raise ValueError(f"imresize: `output_shape` must be (height, width), got {output_shape!r}")
        oh, ow = (int(v) for v in output_shape)
        if oh < 1 or ow < 1:
            raise ValueError(f"imresize: `output_shape` {output_shape!r} would give an empty output: "
                             "both sizes must be positive")
        sh, sw = oh / h, ow / w
    # MATLAB: [~, order] = sort(scale) -> the smaller scale first, height first on ties
    passes = [(0, oh, sh), (1, ow, sw)]
    if sw < sh:
        passes.reverse()
    return passes


def imresize(image, scale=None, output_shape=None, *, method: str = "bicubic", edge: str = "symmetric"):
    """Resize an image exactly as MATLAB's ``imresize`` does.

    Args:
        image: one of
            * numpy ``(H, W)`` or ``(H, W, C)`` uint8, values 0..255 -> uint8 ``(H', W'[, C])`` with MATLAB
              semantics (round half away from zero and clip to 0..255 after each 1-D pass);
            * numpy float16/32/64 of the same layouts, any value range -> same float dtype, computed in
              float64, no rounding, no clipping;
            * torch floating tensor ``(C, H, W)`` or ``(N, C, H, W)`` on any device -> same dtype and
              device, computed in float64, no rounding, no clipping.
            Channels are independent: any number of channels is accepted (1, 3, 4, ...).
        scale: a positive number, or ``(scale_h, scale_w)``. Output size is ``ceil(scale * size)``.
        output_shape: ``(height, width)`` instead of ``scale``; the scale of each axis is then
            ``out / in``, as MATLAB does.
        method: ``"bicubic"`` (Keys, a = -0.5) or ``"bilinear"``; both antialias when downscaling.
        edge: ``"symmetric"`` (mirror, newer MATLAB, DIV2K/EDSR packs) or ``"replicate"`` (clamp,
            older MATLAB, SelfExSR/RCAN packs).

    Raises:
        TypeError: unsupported array/tensor type or dtype.
        ValueError: bad shape, both or neither of ``scale``/``output_shape``, empty input or output,
            unknown ``method``/``edge``.

    Example:
        >>> lr = imresize(hr, 1 / 4)                   # (H/4, W/4, 3) uint8, as MATLAB
        >>> lr = imresize(hr, 1 / 4, edge="replicate")  # the Set5/Set14 LR of the SelfExSR pack
    """
    if method not in _METHODS:
        raise ValueError(f"imresize: method must be one of {sorted(_METHODS)}, got {method!r}")
    if edge not in _EDGES:
        raise ValueError(f"imresize: edge must be one of {list(_EDGES)}, got {edge!r}")

    if isinstance(image, np.ndarray):
        return _imresize_numpy(image, scale, output_shape, method, edge)
    torch = _torch_if_tensor(image)
    if torch is not None:
        return _imresize_torch(torch, image, scale, output_shape, method, edge)
    raise TypeError(f"imresize: expected a numpy array or a torch tensor, got {type(image).__name__}")


def _torch_if_tensor(obj):
    """The torch module if ``obj`` is a tensor (without importing torch when it is not loaded)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        return torch
    return None


def _imresize_numpy(image: np.ndarray, scale, output_shape, method: str, edge: str) -> np.ndarray:
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize: numpy input must be (H, W) or (H, W, C), got shape {image.shape}")
    if image.ndim == 3 and not 1 <= image.shape[2] <= 4:
        hint = " (it looks like (C, H, W): transpose to (H, W, C))" if 1 <= image.shape[0] <= 4 else ""
        raise ValueError(f"imresize: numpy input must be (H, W) or (H, W, C) with 1-4 channels, "
                         f"got shape {image.shape}{hint}")
    if image.dtype == np.uint8:
        mid_dtype = out_dtype = np.uint8
    elif image.dtype in (np.float16, np.float32, np.float64):
        mid_dtype, out_dtype = np.float64, image.dtype
    else:
        raise TypeError(f"imresize: numpy dtype {image.dtype} is not supported: use uint8 (MATLAB semantics) "
                        "or float16/32/64 (no rounding)")
    passes = _plan(image.shape[:2], scale, output_shape)
    x = image if image.ndim == 3 else image[:, :, None]
    if x.dtype == np.float16:
        x = x.astype(np.float64)
    x = np.ascontiguousarray(x)
    for axis, out_len, s in passes:
        x = _resize_axis_numpy(x, axis, out_len, s, method, edge, mid_dtype)
    if image.ndim == 2:
        x = x[:, :, 0]
    return x.astype(out_dtype, copy=False)


def _imresize_torch(torch, image, scale, output_shape, method: str, edge: str):
    if not image.is_floating_point():
        raise TypeError(f"imresize: torch input must be a floating tensor, got {image.dtype}; "
                        "for uint8 MATLAB semantics pass a numpy (H, W, C) uint8 array")
    if image.dim() not in (3, 4):
        raise ValueError(f"imresize: torch input must be (C, H, W) or (N, C, H, W), got shape {tuple(image.shape)}")
    if not 1 <= image.shape[-3] <= 4:
        raise ValueError(f"imresize: torch input must have 1-4 channels in dim -3, got shape {tuple(image.shape)} "
                         "(is it (N, H, W, C)? permute to (N, C, H, W))")
    passes = _plan(image.shape[-2:], scale, output_shape)
    x = image.to(torch.float64)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    for axis, out_len, s in passes:
        x = _resize_axis_torch(x, axis - 2, out_len, s, method, edge)
    if image.dim() == 3:
        x = x.squeeze(0)
    return x.to(image.dtype)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``(H, W[, C])`` top-left to a multiple of ``scale`` (as the benchmark packs do)."""
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"modcrop: image {w}x{h} is smaller than the scale {scale}")
    return img[: h - h % scale, : w - w % scale]
