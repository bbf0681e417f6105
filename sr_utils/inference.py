"""Running a trained model on whole images: one array, image files, or every LR image of a prepared split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .color import to_uint8
from .i18n import tr

__all__ = ["super_resolve", "bicubic_upscale", "super_resolve_files", "super_resolve_split"]


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
        raise ValueError(tr("super_resolve: expected an (h, w, 3) uint8 RGB image, got {shape} {dtype}",
                            shape=lr.shape, dtype=lr.dtype))
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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def super_resolve_files(model, inputs, out_dir, tile: int | None = None) -> list[Path]:
    """Super-resolve an image file, or every image of a folder, into ``out_dir/<stem>.png`` (uint8 RGB PNG,
    written atomically). Returns the written paths."""
    from .color import load_rgb
    from .files import write_png

    src = Path(inputs)
    if not src.exists():
        raise FileNotFoundError(tr("{path} does not exist: give an image file or a folder of images", path=src))
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if src.is_dir() else [src]
    if not files:
        raise FileNotFoundError(tr("no image ({suffixes}) in {path}", suffixes=", ".join(IMAGE_SUFFIXES), path=src))
    written = []
    for f in files:
        write_png(Path(out_dir) / f"{f.stem}.png", super_resolve(model, load_rgb(f), tile=tile))
        written.append(Path(out_dir) / f"{f.stem}.png")
    return written


def super_resolve_split(model, list_file, out_dir, tile: int | None = None) -> list[Path]:
    """``out_dir/<name>.png`` = the model's SR of every LR image of a prepared split (e.g. Set5, for the human
    evaluation). Returns the written paths."""
    from .datasets import SREvalDataset
    from .files import write_png

    ds = SREvalDataset(list_file)
    written = []
    for i in range(len(ds)):
        name, lr, _ = ds[i]
        write_png(Path(out_dir) / f"{name}.png", super_resolve(model, lr, tile=tile))
        written.append(Path(out_dir) / f"{name}.png")
    return written
