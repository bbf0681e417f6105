"""Running a trained model on whole images, and scoring it with the kit's evaluation convention."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .color import to_uint8
from .metrics import evaluate_sr

__all__ = ["super_resolve", "bicubic_upscale", "evaluate_split"]


def super_resolve(model, lr: np.ndarray, device=None, tile: int | None = None,
                  overlap: int | None = None) -> np.ndarray:
    """Super-resolve one image.

    Args:
        model: maps ``(1, 3, h, w)`` float32 RGB in [0, 1] to ``(1, 3, s*h, s*w)`` in [-1, 1] (SRResNet, Generator).
        lr: ``(h, w, 3)`` uint8 RGB.
        tile: None runs the whole image at once; an int runs it in ``tile`` x ``tile`` LR tiles with ``overlap``
            LR pixels of context (default 48 >= SRResNet x4's receptive-field radius 40), see
            :func:`sr_utils.tiling.tiled_forward`: the same output up to float rounding, bounded memory.
    Returns:
        ``(s*h, s*w, 3)`` uint8 RGB, rounded half away from zero. The model's train/eval mode is restored.
    """
    import torch

    if lr.dtype != np.uint8 or lr.ndim != 3 or lr.shape[2] != 3:
        raise ValueError(f"super_resolve: expected an (h, w, 3) uint8 RGB image, got {lr.shape} {lr.dtype}")
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.from_numpy(lr).permute(2, 0, 1).unsqueeze(0).to(device, torch.float32) / 255.0
            if tile is None:
                y = model(x)
            else:
                from .tiling import tiled_forward

                y = tiled_forward(model, x, None, tile=tile, overlap=overlap, on_oom="halve")
            y = y.clamp(-1, 1)
    finally:
        model.train(was_training)
    return to_uint8(((y[0].permute(1, 2, 0).double().cpu().numpy() + 1.0) * 127.5))


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic upscaling of a uint8 image (the baseline row of every table)."""
    from .imresize import imresize

    return imresize(lr, scale)


def evaluate_split(upscale: Callable[[np.ndarray], np.ndarray], list_file, progress: bool = True) -> list[dict]:
    """Per-image ``{"image", "psnr", "ssim"}`` of ``upscale(lr) -> sr`` (uint8) over a prepared split."""
    from tqdm.auto import tqdm

    from .datasets import SREvalDataset

    ds = SREvalDataset(list_file)
    rows = []
    for i in tqdm(range(len(ds)), desc=f"evaluate {ds.split}", disable=not progress, leave=False):
        name, lr, hr = ds[i]
        p, s = evaluate_sr(upscale(lr), hr, ds.scale)
        rows.append({"image": name, "psnr": p, "ssim": s})
    return rows
