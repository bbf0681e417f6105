"""Benchmark: SRResNet x4 inference (the paper's 16 blocks x 64 channels, random weights: speed does not depend on
them) through the kit's ``super_resolve``, untiled and tiled, beside MATLAB-bicubic upscaling of the same image.

Side by side in one process, per image size (Set5-sized LR 128x128, a 1080p frame from LR 480x270): GFLOPs
(``torch.utils.flop_counter``), ms untiled, ms in 128-pixel LR tiles, ms of ``sr_utils.inference.bicubic_upscale``
(the baseline every table has) and the ratios. The same measurement as ``python -m sr_utils benchmark-inference``.

    .venv/bin/python benchmarks/inference_bench.py [--repeats 3] [--tile 128]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tile", type=int, default=128)
    args = ap.parse_args(argv)
    import torch  # (after the arguments: --help answers at once)

    from course.reference import load_reference
    from sr_utils.inference import bicubic_upscale
    from sr_utils.speed import SIZES, benchmark_inference

    models, _ = load_reference()
    torch.manual_seed(0)
    net = models.SRResNet()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"SRResNet x4 (16 blocks x 64 channels), {device} ({torch.get_num_threads()} threads), "
          f"torch {torch.__version__}")
    rows = benchmark_inference(net, tile=args.tile, repeats=args.repeats, log=lambda *a: None)
    rng = np.random.default_rng(0)
    print(f"{'image':<28} {'GFLOPs':>7} {'untiled ms':>11} {'tiled ms':>9} {'bicubic ms':>11} {'tiled/untiled':>14} "
          f"{'SR/bicubic':>11}")
    for row, (h, w) in zip(rows, SIZES.values()):
        lr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        bicubic_upscale(lr, 4)
        times = []
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            bicubic_upscale(lr, 4)
            times.append((time.perf_counter() - t0) * 1000)
        bic = statistics.median(times)
        print(f"{row['image']:<28} {row['gflops']:7.1f} {row['ms_untiled']:11.0f} {row['ms_tiled']:9.0f} {bic:11.1f} "
              f"{row['ms_tiled'] / row['ms_untiled']:13.2f}x {row['ms_untiled'] / bic:10.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
