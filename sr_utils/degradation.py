"""Realistic degradation of training pairs: LR made from the HR crop by blur, bicubic downscaling, noise and JPEG.

This is a **different task** from the course's benchmark: the benchmark's LR images are MATLAB-bicubic downscales
of clean photos (the contract's LR files), and every test table keeps using those. A model trained on degraded
pairs (``TrainConfig.degradation="realistic"``) is meant for real photos (camera blur, sensor noise, compression);
it usually scores lower on the bicubic benchmark, and its run is labelled "realistic degradation" in listings.

Each batch's randomness comes from a generator seeded with (seed, iteration), so resumed runs see the same pairs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["degrade", "batch_generator", "BLUR_SIGMA", "NOISE_SIGMA", "JPEG_QUALITY"]

#: Ranges drawn uniformly per image: Gaussian blur sigma (HR pixels), Gaussian noise sigma (of [0, 1]), JPEG quality.
BLUR_SIGMA = (0.2, 2.0)
NOISE_SIGMA = (0.0, 10 / 255)
JPEG_QUALITY = (30, 95)


def batch_generator(seed: int, iteration: int) -> torch.Generator:
    """The random generator of one training batch: a pure function of (seed, iteration)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + iteration)


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).to(img)
    img = F.pad(img[None], (radius, radius, radius, radius), mode="reflect")
    img = F.conv2d(img, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(img, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]


def _jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """``(3, h, w)`` float in [0, 1] through an 8-bit JPEG at ``quality`` (PIL, 4:2:0 chroma like most cameras)."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    pixels = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    with Image.open(buf) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def degrade(hr: torch.Tensor, scale: int, generator: torch.Generator) -> torch.Tensor:
    """LR images made from ``hr``: ``(N, 3, H, W)`` float32 RGB in [-1, 1] (the trainer's HR batches, CPU) ->
    ``(N, 3, H/scale, W/scale)`` float32 RGB in [0, 1] (like the LR batches), each image with its own random Gaussian
    blur, antialiased bicubic downscale, Gaussian noise and JPEG compression (ranges: module constants)."""
    if hr.ndim != 4 or hr.shape[1] != 3:
        raise ValueError(f"hr must be (N, 3, H, W), got {tuple(hr.shape)}")
    out = []
    for img in (hr.detach().float().cpu() + 1) / 2:
        u = torch.rand(3, generator=generator).tolist()
        sigma = BLUR_SIGMA[0] + u[0] * (BLUR_SIGMA[1] - BLUR_SIGMA[0])
        lr = F.interpolate(_blur(img, sigma)[None], scale_factor=1 / scale, mode="bicubic", antialias=True,
                           align_corners=False)[0]
        noise = NOISE_SIGMA[0] + u[1] * (NOISE_SIGMA[1] - NOISE_SIGMA[0])
        lr = lr + noise * torch.randn(lr.shape, generator=generator)
        quality = int(round(JPEG_QUALITY[0] + u[2] * (JPEG_QUALITY[1] - JPEG_QUALITY[0])))
        out.append(_jpeg(lr, quality))
    return torch.stack(out)
