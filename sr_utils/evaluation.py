"""Scoring super-resolution methods on prepared splits: the kit's one evaluation loop.

A *method* is any ``upscale(lr) -> sr`` on ``(h, w, 3)`` uint8 RGB arrays (:func:`bicubic`,
:func:`model_upscaler`, or your own). :func:`evaluate_split` scores one method on one split with
:func:`sr_utils.metrics.evaluate_sr` (the published tables' convention); everything else that reports a number —
the command line's tables, validation during training, the demo, the hidden checks' recomputation — calls it.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .i18n import tr
from .metrics import evaluate_sr

__all__ = ["bicubic", "model_upscaler", "methods_for", "evaluate_split", "evaluate_methods", "mean_rows",
           "split_outputs"]

Upscale = Callable[[np.ndarray], np.ndarray]


def bicubic(scale: int = 4) -> Upscale:
    """MATLAB bicubic upscaling by ``scale`` (the baseline row of every table)."""
    from .inference import bicubic_upscale

    return lambda lr: bicubic_upscale(lr, scale)


def model_upscaler(net, device=None, tile: int | None = None) -> Upscale:
    """``lr -> super_resolve(net, lr)`` (see :func:`sr_utils.inference.super_resolve`)."""
    from .inference import super_resolve

    return lambda lr: super_resolve(net, lr, device=device, tile=tile)


def methods_for(nets: Mapping[str, object], scale: int = 4, tile: int | None = None) -> dict[str, Upscale]:
    """``{"bicubic": ..., <label>: model_upscaler(net), ...}`` in that order."""
    return {"bicubic": bicubic(scale), **{label: model_upscaler(net, tile=tile) for label, net in nets.items()}}


def evaluate_split(upscale: Upscale, list_file, progress: bool = True, limit: int | None = None,
                   lpips=None) -> list[dict]:
    """Per-image ``{"image", "psnr", "ssim"}`` of ``upscale`` over a prepared split (its first ``limit`` images
    when given). HR is the list's modcropped ground truth; PSNR/SSIM on Y, ``scale`` pixels shaved. With ``lpips``
    (a :class:`sr_utils.lpips_metric.LPIPSMetric`) rows also hold ``"lpips"`` (RGB, same shave; lower is better)."""
    from tqdm.auto import tqdm

    from .datasets import SREvalDataset

    ds = SREvalDataset(list_file)
    n = len(ds) if limit is None else min(limit, len(ds))
    rows = []
    for i in tqdm(range(n), desc=tr("evaluate {split}", split=ds.split), disable=not progress, leave=False):
        name, lr, hr = ds[i]
        sr = upscale(lr)
        p, s = evaluate_sr(sr, hr, ds.scale)
        rows.append({"image": name, "psnr": p, "ssim": s})
        if lpips is not None:
            rows[-1]["lpips"] = lpips.distance(sr, hr, shave=ds.scale)
    return rows


def evaluate_methods(methods: Mapping[str, Upscale], test_sets: Mapping[str, object],
                     progress: bool = True, lpips=None) -> list[dict]:
    """Per-image rows ``{"set", "method", "image", "psnr", "ssim"[, "lpips"]}`` of every method on every split."""
    return [{"set": set_name, "method": method, **row}
            for set_name, list_file in test_sets.items()
            for method, upscale in methods.items()
            for row in evaluate_split(upscale, list_file, progress=progress, lpips=lpips)]


def mean_rows(rows: list[dict]) -> list[dict]:
    """Means per (set, method) of per-image rows, in first-seen order."""
    keys = list(dict.fromkeys((r["set"], r["method"]) for r in rows))
    out = []
    for s, m in keys:
        mine = [r for r in rows if (r["set"], r["method"]) == (s, m)]
        out.append({"set": s, "method": m, "psnr": float(np.mean([r["psnr"] for r in mine])),
                    "ssim": float(np.mean([r["ssim"] for r in mine]))})
        if all("lpips" in r for r in mine):
            out[-1]["lpips"] = float(np.mean([r["lpips"] for r in mine]))
    return out


def split_outputs(methods: Mapping[str, Upscale], list_file, n_images: int = 3) -> list[dict]:
    """For the first ``n_images`` of a split: ``{"name", "images": {method: sr, ..., "HR": hr}, "scores":
    {method: (psnr, ssim)}}`` — what :func:`sr_utils.plotting.comparison_grid` draws."""
    from .datasets import SREvalDataset

    ds = SREvalDataset(list_file)
    out = []
    for i in range(min(n_images, len(ds))):
        name, lr, hr = ds[i]
        images = {m: up(lr) for m, up in methods.items()}
        scores = {m: evaluate_sr(img, hr, ds.scale) for m, img in images.items()}
        out.append({"name": name, "images": {**images, "HR": hr}, "scores": scores})
    return out
