"""Tiled inference: run a super-resolution network on a large image tile by tile (Real-ESRGAN style).

A whole DIV2K image (about 2040x1356 HR, 510x339 LR at x4) through SRResNet needs several GB of activations at the
HR resolution (64 channels at 4x). :func:`tiled_forward` cuts the LR image into ``tile`` x ``tile`` tiles, extends
each by ``overlap`` LR pixels on every side (clamped at the image border: an image is never padded artificially),
runs the model on each extended tile and pastes only the *core* of each output tile (the part that corresponds to
the tile without its overlap, ``scale`` times larger) into the output. When ``overlap`` is at least the model's
receptive-field radius in LR pixels, every output pixel sees exactly the same inputs as in the untiled forward,
so the result equals ``model(lr)`` up to float rounding (convolution algorithms may round differently for
different input sizes: about 1e-6 in float32).

Receptive-field radius of SRResNet x4 (Ledig et al. 2017), in LR pixels: the 9x9 head convolution (radius 4), the
16 residual blocks (2 convolutions 3x3 each: 16 * 2 * 1 = 32), the 3x3 convolution after the trunk (1), the first
sub-pixel convolution 3x3 at 1x (1), the second one at 2x (1 pixel at 2x = 0.5 LR pixel), the last 9x9 convolution
at 4x (4 pixels at 4x = 1 LR pixel): 4 + 32 + 1 + 1 + 0.5 + 1 = 39.5. Counted in whole LR pixels (an HR pixel ``y``
belongs to LR pixel ``y // 4``) the last two terms give 2, not 1.5, so the radius is 40, which is what
:func:`receptive_field_radius` measures; the default overlap, :data:`DEFAULT_OVERLAP` = 48, leaves a margin. The
radius depends on the depth and kernel sizes only, not on the number of channels.

Example::

    model.eval()
    with torch.no_grad():
        sr = tiled_forward(model, lr, scale=4, tile=128)          # == model(lr), in much less memory
"""
from __future__ import annotations

import copy
import numbers
import warnings
from collections import deque

import torch
from torch import nn

__all__ = ["DEFAULT_OVERLAP", "tiled_forward", "receptive_field_radius"]

#: Default overlap in LR pixels: SRResNet x4's receptive-field radius (40, see the module docstring) plus a margin.
DEFAULT_OVERLAP = 48

_OOM = torch.cuda.OutOfMemoryError  # also raised (as torch.OutOfMemoryError) by other accelerators in torch >= 2.5
_ON_OOM = ("raise", "halve")


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _grid(y0: int, y1: int, x0: int, x1: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Cores ``(y0, y1, x0, x1)`` of the ``tile`` x ``tile`` tiles covering a region, row by row."""
    return [(ty, min(ty + tile, y1), tx, min(tx + tile, x1))
            for ty in range(y0, y1, tile) for tx in range(x0, x1, tile)]


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def tiled_forward(model, lr: torch.Tensor, scale: int | None, tile: int = 128, overlap: int | None = None,
                  receptive_field: int | None = None, *, on_oom: str = "raise", min_tile: int = 32,
                  device=None) -> torch.Tensor:
    """Run a super-resolution model on ``lr`` tile by tile; same result as ``model(lr)`` in far less memory.

    The LR image is split into ``tile`` x ``tile`` tiles (row by row; the last row and column of tiles are smaller
    when ``tile`` does not divide the size; an image smaller than a tile is one tile). Each tile is extended by
    ``overlap`` pixels on every side, clamped at the image border (never padded), the model is run on the extended
    tile, and the core of its output (the tile without the overlap, times ``scale``) is pasted into the output.
    With ``overlap`` >= the model's receptive-field radius in LR pixels (:func:`receptive_field_radius`; 40 for
    SRResNet x4) the result equals ``model(lr)`` up to float rounding; with less, seams appear at tile borders.

    The caller puts the model in eval mode (a BatchNorm in train mode would use per-tile batch statistics; a
    warning is issued) and calls this under ``torch.no_grad()`` (otherwise every tile's graph is kept alive and
    nothing is saved). The model's mode and parameters are never changed.

    Args:
        model (Callable): maps float ``(N, C, h, w)`` to ``(N, C', scale*h, scale*w)`` (e.g. SRResNet: LR RGB in
            [0, 1] -> SR RGB in [-1, 1]). It is called only on extended tiles, on ``device``.
        lr (Tensor): LR images, float (any floating dtype), shape ``(N, C, H, W)``, any device; value range and
            channel order are whatever the model expects (RGB in [0, 1] for the course's SRResNet). N > 1 is fine:
            every tile holds the whole batch.
        scale (int | None): the model's upscaling factor (4 for SRResNet x4). ``None``: learned from the first tile
            (output size / input size, which must be the same integer for height and width).
        tile (int): core tile side in LR pixels (>= 1). Default 128: with the default overlap an interior tile
            is 224x224, and the largest activations of a 64-channel SRResNet x4 are 896x896x64 float32 maps at
            4x, 205 MB each per image (a few are alive at once). The overlap is computed twice: interior tiles cost
            (tile + 2*overlap)^2 / tile^2 (3x here) the work of their core, so use the largest tile that fits.
        overlap (int | None): extension of each tile on every side, in LR pixels (>= 0; 0 gives visible seams on
            any convolutional model). Default: ``receptive_field`` if given, else :data:`DEFAULT_OVERLAP` (48).
        receptive_field (int | None): the model's receptive-field radius in LR pixels (>= 0), used as the default
            ``overlap``; a warning is issued if an explicit ``overlap`` is smaller.
        on_oom (str): what to do when the model raises ``torch.cuda.OutOfMemoryError`` on a tile: ``"raise"``
            (default) re-raises it with the tile size in the message; ``"halve"`` empties the CUDA cache, halves
            the size of the failing tile (not below ``min_tile``) and retries; the smaller size is kept for the
            remaining tiles.
            When a tile of ``min_tile`` (or smaller, if ``tile`` started below it) still does not fit, an
            ``OutOfMemoryError`` naming the tile sizes tried is raised. Results do not depend on the tile size.
        min_tile (int): the smallest tile ``"halve"`` goes down to (>= 1). Default 32.
        device (torch.device | str | None): where tiles are sent for the model. Default: ``lr.device``. With the
            model on a GPU and ``lr`` on the CPU, only one extended tile at a time is on the GPU and the (large)
            output stays on the CPU.

    Returns:
        Tensor: ``(N, C', scale*H, scale*W)`` on ``lr``'s device with ``lr``'s dtype (allocated once the first
        tile tells ``C'``), in the model's output range.

    Raises:
        ValueError: a malformed argument, or a model output of the wrong shape (the message names both).
        torch.cuda.OutOfMemoryError: see ``on_oom``.
    """
    if not isinstance(lr, torch.Tensor):
        raise ValueError(f"tiled_forward: lr must be a torch.Tensor (N, C, H, W), got {type(lr).__name__}")
    if lr.ndim != 4:
        raise ValueError(f"tiled_forward: lr must be 4-D (N, C, H, W), got shape {tuple(lr.shape)}")
    if not lr.is_floating_point():
        raise ValueError(f"tiled_forward: lr must be a floating-point tensor, got {lr.dtype}")
    if min(lr.shape) == 0:
        raise ValueError(f"tiled_forward: lr is empty, shape {tuple(lr.shape)}")
    if scale is not None:
        scale = _check_int("scale", scale, 1)
    tile = _check_int("tile", tile, 1)
    min_tile = _check_int("min_tile", min_tile, 1)
    if receptive_field is not None:
        receptive_field = _check_int("receptive_field", receptive_field, 0)
    if overlap is None:
        overlap = receptive_field if receptive_field is not None else DEFAULT_OVERLAP
    else:
        overlap = _check_int("overlap", overlap, 0)
        if receptive_field is not None and overlap < receptive_field:
            warnings.warn(f"tiled_forward: overlap {overlap} < receptive_field {receptive_field}: the tiled output "
                          "will differ from the untiled one near tile borders", stacklevel=2)
    if on_oom not in _ON_OOM:
        raise ValueError(f"tiled_forward: on_oom must be one of {_ON_OOM}, got {on_oom!r}")
    if isinstance(model, nn.Module) and model.training:
        warnings.warn("tiled_forward: the model is in training mode; call model.eval() first (BatchNorm would use "
                      "each tile's statistics, so tiles would not match the untiled output)", stacklevel=2)
    device = lr.device if device is None else torch.device(device)

    n, _, h, w = lr.shape
    first_tile, tried = tile, []  # tried: sides of the tiles that ran out of memory
    out = None
    pending = deque(_grid(0, h, 0, w, tile))
    while pending:
        core = pending.popleft()
        y0, y1, x0, x1 = core
        if y1 - y0 > tile or x1 - x0 > tile:  # the tile size was halved after an OOM: split this core
            pending.extendleft(reversed(_grid(y0, y1, x0, x1, tile)))
            continue
        ey0, ey1, ex0, ex1 = max(y0 - overlap, 0), min(y1 + overlap, h), max(x0 - overlap, 0), min(x1 + overlap, w)
        oom = False
        try:
            sr = model(lr[:, :, ey0:ey1, ex0:ex1].to(device))
        except _OOM as e:
            side = min(tile, max(y1 - y0, x1 - x0))  # an edge tile, or an image smaller than a tile, is smaller
            tried.append(side)
            where = (f"a {y1 - y0}x{x1 - x0} LR tile (model input {n}x{lr.shape[1]}x{ey1 - ey0}x{ex1 - ex0} with "
                     f"overlap {overlap})")
            if on_oom == "raise":
                raise _OOM(f"tiled_forward: out of memory with tile={tile} on {where}; pass a smaller tile, or "
                           f"on_oom='halve' to retry with smaller tiles. Original error: {e}") from e
            if side <= min_tile:
                raise _OOM(f"tiled_forward: out of memory with tile={side} on {where}, after trying tile sizes "
                           f"{tried} (tile={first_tile} halved down to min_tile={min_tile}); reduce the batch "
                           f"or the overlap, or free device memory. Original error: {e}") from e
            oom = True
        if oom:  # outside the except block, so that the traceback's tensors are freed before retrying
            _empty_cache(device)
            tile = max(tried[-1] // 2, min_tile)
            pending.appendleft(core)
            continue

        eh, ew = ey1 - ey0, ex1 - ex0
        if not isinstance(sr, torch.Tensor) or sr.ndim != 4 or sr.shape[0] != n:
            got = tuple(sr.shape) if isinstance(sr, torch.Tensor) else type(sr).__name__
            raise ValueError(f"tiled_forward: the model must return (N={n}, C', s*h, s*w) for an input "
                             f"({n}, {lr.shape[1]}, {eh}, {ew}), got {got}")
        if scale is None:
            if sr.shape[2] % eh or sr.shape[3] % ew or sr.shape[2] // eh != sr.shape[3] // ew:
                raise ValueError(f"tiled_forward: cannot infer the scale: the model maps {eh}x{ew} to "
                                 f"{sr.shape[2]}x{sr.shape[3]}; pass scale explicitly")
            scale = sr.shape[2] // eh
        if sr.shape[2] != scale * eh or sr.shape[3] != scale * ew or (out is not None and sr.shape[1] != out.shape[1]):
            expected = f"({n}, {'C' if out is None else out.shape[1]}, {scale * eh}, {scale * ew})"
            raise ValueError(f"tiled_forward: for an input tile ({n}, {lr.shape[1]}, {eh}, {ew}) at scale {scale} "
                             f"the model must return {expected}, got {tuple(sr.shape)}")
        if out is None:
            out = torch.empty((n, sr.shape[1], scale * h, scale * w), dtype=lr.dtype, device=lr.device)
        s = scale
        out[:, :, s * y0:s * y1, s * x0:s * x1] = \
            sr[:, :, s * (y0 - ey0):s * (y1 - ey0), s * (x0 - ex0):s * (x1 - ex0)].to(out.device, out.dtype)
        del sr
    return out


def _first_conv_in_channels(model) -> int | None:
    if isinstance(model, nn.Module):
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                return m.in_channels
    return None


def _changed_radius(model, scale: int, half: int, in_channels: int, method: str, dtype, device, gen,
                    atol: float) -> int:
    """Radius, in LR pixels, of the output region that changes when the centre pixel of a (2*half+1)^2 input
    changes; -1 if nothing changes."""
    size, p = 2 * half + 1, half
    if method == "nan":
        bases = (torch.full((1, in_channels, size, size), 0.5, dtype=dtype),)
    else:
        bases = (torch.full((1, in_channels, size, size), 0.5, dtype=dtype),
                 torch.rand((1, in_channels, size, size), generator=gen, dtype=dtype))
    radius = -1
    for base in bases:
        bumped = base.clone()
        if method == "nan":
            bumped[0, :, p, p] = float("nan")
        else:
            bumped[0, :, p, p] += 0.5 + 0.5 * torch.rand(in_channels, generator=gen, dtype=dtype)
        y0, y1 = model(base.to(device)), model(bumped.to(device))
        if not isinstance(y0, torch.Tensor) or y0.ndim != 4 or tuple(y0.shape[2:]) != (scale * size, scale * size):
            got = tuple(y0.shape) if isinstance(y0, torch.Tensor) else type(y0).__name__
            raise ValueError(f"receptive_field_radius: for an input (1, {in_channels}, {size}, {size}) at scale "
                             f"{scale} the model must return (1, C', {scale * size}, {scale * size}), got {got}")
        if method == "nan":
            if torch.isnan(y0).any():
                raise ValueError("receptive_field_radius: the model returns NaN on a constant input")
            changed = torch.isnan(y1).any(dim=1).any(dim=0).cpu()
        else:
            changed = ((y1 - y0).abs().amax(dim=(0, 1)) > atol).cpu()
        rows, cols = torch.nonzero(changed.any(dim=1)).flatten(), torch.nonzero(changed.any(dim=0)).flatten()
        if len(rows):
            radius = max(radius, int((rows // scale - p).abs().max()), int((cols // scale - p).abs().max()))
    return radius


def receptive_field_radius(model, scale: int, max_radius: int = 128, *, method: str = "nan",
                           in_channels: int | None = None, dtype: torch.dtype | None = None, device="cpu",
                           atol: float | None = None, seed: int = 0) -> int:
    """Measure a super-resolution model's receptive-field radius in LR pixels (the overlap :func:`tiled_forward`
    needs).

    One LR pixel (all channels) at the centre of a ``(1, C, 2r+1, 2r+1)`` input of 0.5 is changed, and the radius
    is the largest ``|y // scale - centre|`` over the output rows and columns ``y`` that change. ``r`` starts at 8
    and doubles (up to ``max_radius``) until the changed region stays strictly inside the input, so small models
    are measured on small inputs. Two ways to change the pixel:

    * ``method="nan"`` (default): the pixel is set to NaN, which every convolution, BatchNorm, activation and
      pixel shuffle propagates to each output it reaches, however small the weights: this is the exact
      *structural* radius (40 for SRResNet x4, the sum in the module docstring), the overlap that guarantees the
      tiled output equals the untiled one. A model that replaces NaNs (``nan_to_num``) cannot be measured this way;
      an FFT or Winograd convolution (cuDNN may pick them, hence the CPU default) spreads NaNs further and
      overestimates the radius, which is safe.
    * ``method="delta"``: the pixel is increased by 0.5 to 1 (once on the constant input, once on a seeded uniform
      random one) and outputs changing by more than ``atol`` count. Dependence decays roughly exponentially with
      distance in a deep convolutional network, so this gives the *effective* radius at that tolerance, smaller
      than the structural one (about 23 instead of 40 for a narrow 16-block SRResNet at ``atol=1e-10``).

    For an ``nn.Module`` the measurement runs on a deep copy in eval mode converted to ``dtype`` and moved to
    ``device``; the model itself is not touched. Other callables are called as they are with inputs of ``dtype``
    on ``device``.

    Args:
        model (nn.Module | Callable): maps float ``(1, C, h, w)`` to ``(1, C', scale*h, scale*w)``.
        scale (int): the upscaling factor (>= 1).
        max_radius (int): the largest radius measured (>= 1); a larger receptive field (or a global one: pooling,
            attention) raises ``ValueError``. Default 128 (inputs up to 259x259).
        method (str): ``"nan"`` (structural radius) or ``"delta"`` (effective radius at ``atol``).
        in_channels (int | None): ``C``; default: ``in_channels`` of the model's first ``nn.Conv2d``.
        dtype (torch.dtype | None): dtype of the probe inputs and of the copied model. Default: float32 for
            ``"nan"`` (NaN propagation does not depend on precision, and float32 is much faster on CPU), float64
            for ``"delta"`` (so that rounding noise cannot pass for a dependence).
        device (torch.device | str): where the probe runs. Default CPU.
        atol (float | None): ``"delta"`` only: smallest output change counted. Default 1e-10 for float64, else 1e-4.
        seed (int): ``"delta"`` only: seed of the random input and of the perturbation.

    Returns:
        int: the radius in LR pixels (0 for a model whose output pixel depends only on its own LR pixel).
    """
    scale = _check_int("scale", scale, 1)
    max_radius = _check_int("max_radius", max_radius, 1)
    if method not in ("nan", "delta"):
        raise ValueError(f"receptive_field_radius: method must be 'nan' or 'delta', got {method!r}")
    in_channels = in_channels if in_channels is not None else _first_conv_in_channels(model)
    if in_channels is None:
        raise ValueError("receptive_field_radius: the model has no nn.Conv2d to read in_channels from; "
                         "pass in_channels")
    in_channels = _check_int("in_channels", in_channels, 1)
    if dtype is None:
        dtype = torch.float32 if method == "nan" else torch.float64
    if atol is None:
        atol = 1e-10 if dtype == torch.float64 else 1e-4
    device = torch.device(device)
    probe = copy.deepcopy(model).to(device=device, dtype=dtype).eval() if isinstance(model, nn.Module) else model
    gen = torch.Generator().manual_seed(seed)
    r = min(8, max_radius)
    with torch.no_grad():
        while True:
            measured = _changed_radius(probe, scale, r + 1, in_channels, method, dtype, device, gen, atol)
            if measured < 0:
                raise ValueError(f"receptive_field_radius: changing the centre LR pixel changed no output pixel "
                                 f"(method={method!r}, atol={atol}); the model does not depend on its input, or "
                                 "atol is too large")
            if measured <= r:
                return measured
            if r >= max_radius:
                raise ValueError(f"receptive_field_radius: the receptive-field radius exceeds max_radius={max_radius} "
                                 "LR pixels (or the model is global: pooling, attention); raise max_radius")
            r = min(2 * r, max_radius)
