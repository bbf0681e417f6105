"""How fast a trained generator super-resolves: parameters, FLOPs and milliseconds per image on this device.

``python -m sr_utils benchmark-inference CHECKPOINT`` measures, for a Set5-sized image (LR 128x128 -> 512x512) and
a 1080p frame (LR 480x270 -> 1920x1080): FLOPs (PyTorch's own counter, ``torch.utils.flop_counter``; a
multiply-add counts 2), and the time of :func:`sr_utils.inference.super_resolve` — what ``super-resolve`` and the
evaluation run, uint8 in and out — untiled and in LR tiles, median of ``repeats`` runs after a warm-up. Written as
``results/inference_speed.{md,csv,png}``; the report shows the figure.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["SIZES", "count_parameters", "count_flops", "time_super_resolve", "benchmark_inference",
           "write_speed", "speed_figure"]

#: Images measured: name -> LR (height, width).
SIZES = {"Set5-sized (LR 128x128)": (128, 128), "1080p frame (LR 480x270)": (270, 480)}


def count_parameters(net: torch.nn.Module) -> int:
    """Number of parameters (weights and biases) of ``net``."""
    return sum(p.numel() for p in net.parameters())


def count_flops(net: torch.nn.Module, lr_hw: tuple[int, int], device="cpu") -> int:
    """FLOPs of one forward pass on a ``(1, 3, h, w)`` float32 input in [0, 1] (``lr_hw`` = (h, w))."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, *lr_hw, device=device)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x)
    finally:
        net.train(was_training)
    return int(counter.get_total_flops())


def time_super_resolve(net, lr: np.ndarray, tile: int | None = None, repeats: int = 3, device=None) -> float:
    """Median milliseconds of :func:`sr_utils.inference.super_resolve` on ``lr`` (``(h, w, 3)`` uint8 RGB), after
    one warm-up run (cuDNN autotuning, allocator)."""
    from .inference import super_resolve

    super_resolve(net, lr, device=device, tile=tile)
    times = []
    for _ in range(max(1, repeats)):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        super_resolve(net, lr, device=device, tile=tile)  # returns a numpy array: the GPU work is finished
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def benchmark_inference(net, device=None, tile: int = 128, repeats: int = 3, sizes=None, log=print) -> list[dict]:
    """Rows ``{"image", "lr", "sr", "params", "gflops", "ms_untiled", "ms_tiled", "tile", "device"}``, one per
    entry of ``sizes`` (default :data:`SIZES`)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    net = net.to(device).eval()
    rng = np.random.default_rng(0)
    params = count_parameters(net)
    with torch.no_grad():
        scale = int(net(torch.rand(1, 3, 8, 8, device=device)).shape[-1] // 8)
    rows = []
    for name, (h, w) in (sizes or SIZES).items():
        lr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        flops = count_flops(net, (h, w), device)
        row = {"image": name, "lr": f"{w}x{h}", "sr": f"{w * scale}x{h * scale}", "params": params,
               "gflops": flops / 1e9, "tile": tile, "device": device.type,
               "ms_untiled": time_super_resolve(net, lr, None, repeats, device),
               "ms_tiled": time_super_resolve(net, lr, tile, repeats, device)}
        log(f"{name}: {row['gflops']:.1f} GFLOPs, {row['ms_untiled']:.0f} ms untiled, {row['ms_tiled']:.0f} ms in "
            f"{tile}x{tile} tiles ({device.type})")
        rows.append(row)
    return rows


def speed_figure(rows: list[dict], path=None, title: str = "inference time"):
    """Bars of ms per image, untiled and tiled, per image size (a ``matplotlib`` Figure; saved when ``path``)."""
    from matplotlib.figure import Figure

    from .plotting import _save

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["ms_untiled"] for r in rows], 0.4, label="untiled")
    ax.bar(x + 0.2, [r["ms_tiled"] for r in rows], 0.4, label=f"tiles of {rows[0]['tile'] if rows else ''} LR px")
    ax.set_xticks(x, [f"{r['image']}\n{r['gflops']:.0f} GFLOPs" for r in rows])
    ax.set_ylabel("ms per image")
    ax.set_yscale("log")
    ax.set_title(f"{title} ({rows[0]['device'] if rows else ''}, {rows[0]['params'] / 1e6 if rows else 0:.2f} M "
                 "parameters)")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    _save(fig, path)
    return fig


def write_speed(rows: list[dict], out_dir) -> list[Path]:
    """``<out_dir>/inference_speed.md``, ``.csv`` and ``.png``."""
    import csv
    import io

    from .files import atomic_write_bytes

    out = Path(out_dir)
    lines = ["| image | LR -> SR | parameters | GFLOPs | ms untiled | ms tiled | device |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['image']} | {r['lr']} -> {r['sr']} | {r['params']:,} | {r['gflops']:.1f} | {r['ms_untiled']:.0f} | "
              f"{r['ms_tiled']:.0f} ({r['tile']} px tiles) | {r['device']} |" for r in rows]
    atomic_write_bytes(out / "inference_speed.md", ("\n".join(lines) + "\n").encode())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["image"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out / "inference_speed.csv", buf.getvalue().encode())
    speed_figure(rows, path=out / "inference_speed.png")
    return [out / "inference_speed.md", out / "inference_speed.csv", out / "inference_speed.png"]
